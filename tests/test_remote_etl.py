"""Every ETL mode through a real ``courseport serve`` equals the same command against ``local``.

The server serves one copy of a store and ``local`` is another copy of it
(the same app id), so archives must be equal byte for byte, and uploads and
deletes must leave equal stores.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from conftest import cli_at, cli_env, db_path, dump_raw, make_store_template
from servers import Proxy, Server, serving_copy

STUDENTS = 300


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store_template(tmp_path_factory.mktemp("remote_template") / "home", students=STUDENTS)


@pytest.fixture(scope="module")
def server(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving_copy(template, tmp_path_factory.mktemp("served")) as running:
        yield running


@pytest.fixture
def local(template: Path, tmp_path: Path) -> Path:
    """A home holding another copy of the served store (plus the server's accounts)."""
    home = tmp_path / "local"
    home.mkdir()
    shutil.copyfile(db_path(template), db_path(home))
    return home


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stderr
    return proc


def remote(server: Server) -> list[str]:
    return ["localhost", "--port", str(server.port)]


_WRITTEN_AT = re.compile(r'"(created_on|updated_on)": "[^"]*"')


def namespace_rows(home: Path, namespace: str) -> dict:
    """Every row of ``namespace``; course files' write times (stamped as they are written) masked."""
    from courseport.datastore import SqliteBackend

    with SqliteBackend(db_path(home), create=False) as store:
        return {kind: [(key, _WRITTEN_AT.sub(r'"\1": "T"', data) if kind == "FileMetadataEntity" else data)
                       for key, data in rows]
                for (ns, kind), rows in dump_raw(store).items() if ns == namespace}


@pytest.mark.parametrize("argv", [
    ["course"],
    ["datastore"],
    ["datastore", "--privacy", "--privacy_secret", "s3cret"],
    ["datastore", "--datastore_types", "Student,StudentAnswersEntity"],
    ["datastore", "--exclude_types", "EventEntity", "--batch_size", "7"],
], ids=["course", "datastore", "privacy", "types", "exclude"])
def test_download_equals_local(server: Server, local: Path, tmp_path: Path, argv: list[str]) -> None:
    kind, *flags = argv
    ok(server.cli("download", kind, "/sample", *remote(server), "--archive_path", tmp_path / "r.zip", *flags))
    ok(cli_at(local, "download", kind, "/sample", "local", "--archive_path", tmp_path / "l.zip", *flags))
    got, want = members(tmp_path / "r.zip"), members(tmp_path / "l.zip")
    assert sorted(got) == sorted(want)
    assert got == want
    if "--privacy" in flags:  # no learner's email crossed the network
        assert not re.search(rb"[a-z]+\.[a-z]+\d+@example\.com", b"".join(got.values()))


def test_download_with_the_app_id_and_a_url(server: Server, tmp_path: Path) -> None:
    ok(server.cli("download", "datastore", "/sample", "courseport", f"http://127.0.0.1:{server.port}",
                  "--archive_path", tmp_path / "r.zip", "--datastore_types", "Student"))
    proc = server.cli("download", "datastore", "/sample", "otherapp", *remote(server),
                      "--archive_path", tmp_path / "x.zip")
    assert proc.returncode == 1 and "'otherapp' does not match the target's 'courseport'" in proc.stderr


def test_upload_and_delete_equal_local(server: Server, local: Path, tmp_path: Path) -> None:
    course, data = tmp_path / "course.zip", tmp_path / "data.zip"
    ok(cli_at(local, "download", "course", "/sample", "local", "--archive_path", course))
    ok(cli_at(local, "download", "datastore", "/sample", "local", "--archive_path", data,
              "--exclude_types", "FileDataEntity,FileMetadataEntity,QuestionEntity"))
    for home, target, run in ((server.home, remote(server), server.cli), (local, ["local"], _local_cli(local))):
        ok(run("courses", "add", "/up"))
        ok(run("upload", "course", "/up", *target, "--archive_path", course))
        ok(run("upload", "datastore", "/up", *target, "--archive_path", data))
    served, here = namespace_rows(server.home, "ns_up"), namespace_rows(local, "ns_up")
    assert served == here
    assert sum(len(rows) for rows in served.values()) > STUDENTS * 3
    for home, target, run in ((server.home, remote(server), server.cli), (local, ["local"], _local_cli(local))):
        ok(run("delete", "datastore", "/up", *target, "--datastore_types", "EventEntity", input="YES, DELETE\n"))
    assert namespace_rows(server.home, "ns_up") == namespace_rows(local, "ns_up")
    assert "EventEntity" not in namespace_rows(server.home, "ns_up")
    for home, target, run in ((server.home, remote(server), server.cli), (local, ["local"], _local_cli(local))):
        ok(run("delete", "datastore", "/up", *target, input="YES, DELETE\n"))
    assert namespace_rows(server.home, "ns_up") == namespace_rows(local, "ns_up") == {}


def _local_cli(home: Path):
    return lambda *args, **kwargs: cli_at(home, *args, **kwargs)


def test_run_course_job_equals_local(server: Server, local: Path, tmp_path: Path) -> None:
    job = "courseport.jobs.examples.StoreStats"
    got = ok(server.cli("run", job, "/sample", *remote(server))).stdout
    want = ok(cli_at(local, "run", job, "/sample", "local")).stdout
    store_bytes = "store bytes on disk"  # the embedded store's own line: a remote client cannot tell
    assert got == "".join(line for line in want.splitlines(keepends=True) if store_bytes not in line)
    emails = "courseport.jobs.examples.WriteStudentEmailsToFile"
    ok(server.cli("run", emails, "/sample", *remote(server), "--job_args", f"{tmp_path / 'r.txt'} --batch_size 50"))
    ok(cli_at(local, "run", emails, "/sample", "local", "--job_args", str(tmp_path / "l.txt")))
    assert (tmp_path / "r.txt").read_text() == (tmp_path / "l.txt").read_text()
    assert len((tmp_path / "r.txt").read_text().splitlines()) == STUDENTS


def test_a_job_writes_through_the_server(server: Server, tmp_path: Path) -> None:
    source = tmp_path / "hello.txt"
    source.write_bytes(b"hello from a job")
    ok(server.cli("courses", "add", "/jobs"))  # not /sample: the other tests compare it with local
    ok(server.cli("run", "courseport.jobs.examples.UploadFileToCourse", "/jobs", *remote(server),
                  "--job_args", f"{source} assets/hello.txt"))
    ok(server.cli("download", "course", "/jobs", *remote(server), "--archive_path", tmp_path / "c.zip"))
    assert members(tmp_path / "c.zip")["files/assets/hello.txt"] == b"hello from a job"


def test_a_dropped_connection_resumes_at_the_cursor(server: Server, local: Path, tmp_path: Path) -> None:
    proxy = Proxy(server.port, cut_after=300_000)
    try:
        proc = server.cli("download", "datastore", "/sample", "localhost", "--port", str(proxy.port),
                          "--archive_path", tmp_path / "r.zip")
    finally:
        proxy.close()
    ok(proc)
    assert proxy.cuts == 1 and "resuming at the last cursor" in proc.stderr
    ok(cli_at(local, "download", "datastore", "/sample", "local", "--archive_path", tmp_path / "l.zip"))
    assert members(tmp_path / "r.zip") == members(tmp_path / "l.zip")


def test_resume_after_sigkill_equals_local(server: Server, local: Path, tmp_path: Path) -> None:
    archive = tmp_path / "r.zip"
    record = Path(f"{archive}.partial.manifest")
    proxy = Proxy(server.port, delay=0.02, chunk=8192)  # about 400 KB/s: slow enough to kill halfway
    env = cli_env(server.home)
    env.update(server.env)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "courseport", "download", "datastore", "/sample", "localhost",
             "--port", str(proxy.port), "--archive_path", str(archive), "--privacy", "--privacy_secret", "k"],
            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while b'"rows"' not in (record.read_bytes() if record.exists() else b""):  # a member is done
            assert process.poll() is None and time.monotonic() < deadline, "finished before it was killed"
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
    finally:
        proxy.close()
    assert not archive.exists()
    ok(server.cli("download", "datastore", "/sample", *remote(server), "--archive_path", archive, "--resume",
                  "--privacy", "--privacy_secret", "k"))
    ok(cli_at(local, "download", "datastore", "/sample", "local", "--archive_path", tmp_path / "l.zip",
              "--privacy", "--privacy_secret", "k"))
    assert members(archive) == members(tmp_path / "l.zip")


def test_resume_refuses_when_the_server_data_changed(server: Server, tmp_path: Path) -> None:
    archive = tmp_path / "r.zip"
    ok(server.cli("courses", "add", "/changing"))
    ok(server.cli("populate", "/changing", "--students", "5"))
    proxy = Proxy(server.port, delay=0.05, chunk=4096)
    env = cli_env(server.home)
    env.update(server.env)
    record = Path(f"{archive}.partial.manifest")
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "courseport", "download", "datastore", "/changing", "localhost",
             "--port", str(proxy.port), "--archive_path", str(archive)],
            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not record.exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        proxy.close()
    (tmp_path / "new.txt").write_text("a change")
    ok(server.cli("run", "courseport.jobs.examples.UploadFileToCourse", "/changing", *remote(server),
                  "--job_args", f"{tmp_path / 'new.txt'} assets/new.txt"))
    proc = server.cli("download", "datastore", "/changing", *remote(server), "--archive_path", archive, "--resume")
    assert proc.returncode == 1 and "changed since this download started" in proc.stderr, proc.stderr


def test_several_workers_serve_together(template: Path, tmp_path: Path, local: Path) -> None:
    with serving_copy(template, tmp_path, "--workers", "2") as running:
        for n in range(3):  # new connections: either worker may answer
            ok(running.cli("download", "datastore", "/sample", "localhost", "--port", str(running.port),
                           "--archive_path", tmp_path / f"r{n}.zip"))
    ok(cli_at(local, "download", "datastore", "/sample", "local", "--archive_path", tmp_path / "l.zip"))
    for n in range(3):
        assert members(tmp_path / f"r{n}.zip") == members(tmp_path / "l.zip")


def test_a_local_writer_and_a_remote_one_exclude_each_other(server: Server, tmp_path: Path) -> None:
    """The store lock (a local command's) and the server's writer lease (a remote command's)."""
    import httpx

    from courseport.datastore import SqliteBackend

    archive = tmp_path / "d.zip"
    ok(server.cli("download", "datastore", "/sample", "local", "--archive_path", archive,
                  "--datastore_types", "Student"))
    ok(server.cli("courses", "add", "/locks"))
    no_wait = {"COURSEPORT_LOCK_WAIT": "0"}
    with SqliteBackend(db_path(server.home), create=False) as store, store.exclusive("a local upload"):
        proc = server.cli("upload", "datastore", "/locks", *remote(server), "--archive_path", archive,
                          extra_env=no_wait)
    assert proc.returncode == 1 and "in use by 'a local upload'" in proc.stderr, proc.stderr
    auth = (server.env["COURSEPORT_EMAIL"], server.env["COURSEPORT_APP_PASSWORD"])
    taken = httpx.post(f"{server.url}/api/v1/leases", json={"what": "a remote upload"}, auth=auth)
    assert taken.status_code == 201, taken.text
    try:
        proc = server.cli("upload", "datastore", "/locks", "local", "--archive_path", archive, extra_env=no_wait)
        assert proc.returncode == 1 and "in use by 'a remote upload' (through the server" in proc.stderr
        proc = server.cli("upload", "datastore", "/locks", *remote(server), "--archive_path", archive,
                          extra_env=no_wait)
        assert proc.returncode == 1 and "in use by 'a remote upload'" in proc.stderr
        # a write is refused unless it names the live lease
        line = b'{"k":{"ns":"ns_locks","path":[["Note","x"]]},"s":{},"d":{"n":1}}'
        held = taken.json()["lease"]
        refused = httpx.post(f"{server.url}/api/v1/put", content=line, auth=auth)
        assert refused.status_code == 409 and "in use by 'a remote upload'" in refused.json()["error"]
        named = httpx.post(f"{server.url}/api/v1/put", content=line, auth=auth, headers={"X-Courseport-Lease": held})
        assert named.status_code == 200, named.text
    finally:
        httpx.delete(f"{server.url}/api/v1/leases/{taken.json()['lease']}", auth=auth)
    lapsed = httpx.post(f"{server.url}/api/v1/put", content=line, auth=auth, headers={"X-Courseport-Lease": held})
    assert lapsed.status_code == 409 and "lease lapsed" in lapsed.json()["error"]
    assert httpx.post(f"{server.url}/api/v1/delete", auth=auth,
                      json={"keys": [{"ns": "ns_locks", "path": [["Note", "x"]]}]}).status_code == 200
    assert namespace_rows(server.home, "ns_locks").keys() <= {"FileDataEntity", "FileMetadataEntity", "Note"}
    ok(server.cli("upload", "datastore", "/locks", *remote(server), "--archive_path", archive))
    assert len(namespace_rows(server.home, "ns_locks")["Student"]) == STUDENTS


def test_a_killed_remote_upload_resumes_at_once(server: Server, local: Path, tmp_path: Path) -> None:
    """Its lease lapses by itself within seconds: the resume waits for it, then finishes the upload."""
    archive = tmp_path / "d.zip"
    ok(cli_at(local, "download", "datastore", "/sample", "local", "--archive_path", archive))
    ok(server.cli("courses", "add", "/killed"))
    proxy = Proxy(server.port, delay=0.01, chunk=4096)  # slow enough to be killed halfway
    env = cli_env(server.home)
    env.update(server.env)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "courseport", "upload", "datastore", "/killed", "localhost",
             "--port", str(proxy.port), "--archive_path", str(archive)],
            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not namespace_rows(server.home, "ns_killed").get("EventEntity"):  # some rows landed
            assert process.poll() is None and time.monotonic() < deadline, "finished before it was killed"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        proxy.close()
    started = time.monotonic()
    ok(server.cli("upload", "datastore", "/killed", *remote(server), "--archive_path", archive, "--resume"))
    assert time.monotonic() - started < 25
    ok(cli_at(local, "courses", "add", "/killed"))
    ok(cli_at(local, "upload", "datastore", "/killed", "local", "--archive_path", archive))
    assert namespace_rows(server.home, "ns_killed") == namespace_rows(local, "ns_killed")


def test_a_half_written_course_yaml_does_not_stop_a_resume(server: Server, local: Path, tmp_path: Path) -> None:
    """An upload killed between course.yaml's data and its metadata leaves them apart: the
    course must still resolve (its slug for a title) so that `--resume` can finish the upload."""
    from courseport.datastore import Key, SqliteBackend

    archive = tmp_path / "d.zip"
    ok(cli_at(local, "download", "datastore", "/sample", "local", "--archive_path", archive))
    ok(server.cli("courses", "add", "/halfway"))
    with SqliteBackend(db_path(server.home), create=False) as store:
        meta = store.get(Key("FileMetadataEntity", "/course.yaml", namespace="ns_halfway"))
        meta["size"] = meta["size"] + 7  # its data and its metadata no longer agree
        store.put(meta)
    ok(server.cli("upload", "datastore", "/halfway", *remote(server), "--archive_path", archive, "--resume"))
    ok(cli_at(local, "courses", "add", "/halfway"))
    ok(cli_at(local, "upload", "datastore", "/halfway", "local", "--archive_path", archive))
    assert namespace_rows(server.home, "ns_halfway") == namespace_rows(local, "ns_halfway")
