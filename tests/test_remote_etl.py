"""Every ETL mode through a real ``courseport serve`` equals the same command against ``local``,
on the embedded store and on Cloud Datastore (its emulator).

The server serves one copy of a store and ``local`` is another copy of it
(the same app id, the same ids: see copies.py), so archives must be equal
byte for byte, and uploads and deletes must leave equal stores.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from conftest import cli_env, make_store_template
from copies import StoreCopy, copy_store
from emulator import datastore_emulator, require_emulator  # noqa: F401
from servers import Proxy, Server

STUDENTS = 300


@pytest.fixture(scope="module", params=["sqlite", "cloud"])
def emulator(request: pytest.FixtureRequest) -> str | None:
    """None: the copies are sqlite files; else the emulator's ``host:port``, which holds them."""
    if request.param == "sqlite":
        return None
    require_emulator()
    return request.getfixturevalue("datastore_emulator")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store_template(tmp_path_factory.mktemp("remote_template") / "home", students=STUDENTS)


@pytest.fixture(scope="module")
def served(template: Path, emulator: str | None, tmp_path_factory: pytest.TempPathFactory) -> StoreCopy:
    """The copy the server serves."""
    return copy_store(template, tmp_path_factory.mktemp("served") / "home", emulator)


@pytest.fixture(scope="module")
def server(served: StoreCopy) -> Iterator[Server]:
    running = served.serve()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def local(template: Path, emulator: str | None, tmp_path: Path) -> StoreCopy:
    """Another copy, for the command line to use directly."""
    return copy_store(template, tmp_path / "local", emulator)


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stderr
    return proc


def remote(server: Server) -> list[str]:
    return ["localhost", "--port", str(server.port)]


def both(server: Server, served: StoreCopy, local: StoreCopy) -> list[tuple[StoreCopy, list[str], object]]:
    """(a copy, the ETL target that reaches it, the command line to use) for the served copy
    (through the server) and for ``local`` (directly)."""
    return [(served, remote(server), server.cli), (local, [local.target], local.cli)]


@pytest.mark.parametrize("argv", [
    ["course"],
    ["datastore"],
    ["datastore", "--privacy", "--privacy_secret", "s3cret"],
    ["datastore", "--datastore_types", "Student,StudentAnswersEntity"],
    ["datastore", "--exclude_types", "EventEntity", "--batch_size", "7"],
], ids=["course", "datastore", "privacy", "types", "exclude"])
def test_download_equals_local(server: Server, local: StoreCopy, tmp_path: Path, argv: list[str]) -> None:
    kind, *flags = argv
    ok(server.cli("download", kind, "/sample", *remote(server), "--archive_path", tmp_path / "r.zip", *flags))
    ok(local.cli("download", kind, "/sample", local.target, "--archive_path", tmp_path / "l.zip", *flags))
    got, want = members(tmp_path / "r.zip"), members(tmp_path / "l.zip")
    assert sorted(got) == sorted(want)
    assert got == want
    if "--privacy" in flags:  # no learner's email crossed the network
        assert not re.search(rb"[a-z]+\.[a-z]+\d+@example\.com", b"".join(got.values()))


def test_download_with_the_app_id_and_a_url(server: Server, served: StoreCopy, tmp_path: Path) -> None:
    with served.open() as store:
        app_id = store.app_id
    ok(server.cli("download", "datastore", "/sample", app_id, f"http://127.0.0.1:{server.port}",
                  "--archive_path", tmp_path / "r.zip", "--datastore_types", "Student"))
    proc = server.cli("download", "datastore", "/sample", "otherapp", *remote(server),
                      "--archive_path", tmp_path / "x.zip")
    assert proc.returncode == 1 and f"'otherapp' does not match the target's {app_id!r}" in proc.stderr


def test_upload_and_delete_equal_local(server: Server, served: StoreCopy, local: StoreCopy, tmp_path: Path) -> None:
    course, data = tmp_path / "course.zip", tmp_path / "data.zip"
    ok(local.cli("download", "course", "/sample", local.target, "--archive_path", course))
    ok(local.cli("download", "datastore", "/sample", local.target, "--archive_path", data,
                 "--exclude_types", "FileDataEntity,FileMetadataEntity,QuestionEntity"))
    for copy, target, run in both(server, served, local):
        ok(copy.cli("courses", "add", "/up", *copy.datastore))
        ok(run("upload", "course", "/up", *target, "--archive_path", course))
        ok(run("upload", "datastore", "/up", *target, "--archive_path", data))
    assert served.rows("ns_up") == local.rows("ns_up")
    assert sum(len(rows) for rows in served.rows("ns_up").values()) > STUDENTS * 3
    for copy, target, run in both(server, served, local):
        ok(run("delete", "datastore", "/up", *target, "--datastore_types", "EventEntity", input="YES, DELETE\n"))
    assert served.rows("ns_up") == local.rows("ns_up")
    assert "EventEntity" not in served.rows("ns_up")
    for copy, target, run in both(server, served, local):
        ok(run("delete", "datastore", "/up", *target, input="YES, DELETE\n"))
    assert served.rows("ns_up") == local.rows("ns_up") == {}


def test_run_course_job_equals_local(server: Server, local: StoreCopy, tmp_path: Path) -> None:
    job = "courseport.jobs.examples.StoreStats"
    got = ok(server.cli("run", job, "/sample", *remote(server))).stdout
    want = ok(local.cli("run", job, "/sample", local.target)).stdout
    store_bytes = "store bytes on disk"  # the embedded store's own line: a remote client cannot tell
    assert got == "".join(line for line in want.splitlines(keepends=True) if store_bytes not in line)
    emails = "courseport.jobs.examples.WriteStudentEmailsToFile"
    ok(server.cli("run", emails, "/sample", *remote(server), "--job_args", f"{tmp_path / 'r.txt'} --batch_size 50"))
    ok(local.cli("run", emails, "/sample", local.target, "--job_args", str(tmp_path / "l.txt")))
    assert (tmp_path / "r.txt").read_text() == (tmp_path / "l.txt").read_text()
    assert len((tmp_path / "r.txt").read_text().splitlines()) == STUDENTS


def test_a_job_writes_through_the_server(server: Server, served: StoreCopy, tmp_path: Path) -> None:
    source = tmp_path / "hello.txt"
    source.write_bytes(b"hello from a job")
    ok(served.cli("courses", "add", "/jobs", *served.datastore))  # not /sample: other tests compare it with local
    ok(server.cli("run", "courseport.jobs.examples.UploadFileToCourse", "/jobs", *remote(server),
                  "--job_args", f"{source} assets/hello.txt"))
    ok(server.cli("download", "course", "/jobs", *remote(server), "--archive_path", tmp_path / "c.zip"))
    assert members(tmp_path / "c.zip")["files/assets/hello.txt"] == b"hello from a job"


def test_a_dropped_connection_resumes_at_the_cursor(server: Server, local: StoreCopy, tmp_path: Path) -> None:
    proxy = Proxy(server.port, cut_after=300_000)
    try:
        proc = server.cli("download", "datastore", "/sample", "localhost", "--port", str(proxy.port),
                          "--archive_path", tmp_path / "r.zip")
    finally:
        proxy.close()
    ok(proc)
    assert proxy.cuts == 1 and "resuming at the last cursor" in proc.stderr
    ok(local.cli("download", "datastore", "/sample", local.target, "--archive_path", tmp_path / "l.zip"))
    assert members(tmp_path / "r.zip") == members(tmp_path / "l.zip")


def killed_while(process: subprocess.Popen, started: object, what: str = "finished before it was killed") -> None:
    """SIGKILL ``process`` once ``started()`` is true (within 60 s, and while it runs)."""
    deadline = time.monotonic() + 60
    while not started():  # type: ignore[operator]
        assert process.poll() is None and time.monotonic() < deadline, what
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL


def through(proxy: Proxy, server: Server, tmp_path: Path, *args: str) -> subprocess.Popen:
    """``courseport MODE TYPE COURSE localhost --port PROXY REST``, signed in as the server's
    admin, not waited for."""
    command = [*args[:3], "localhost", "--port", str(proxy.port), *args[3:]]
    return subprocess.Popen([sys.executable, "-m", "courseport", *command], env={**cli_env(server.home), **server.env},
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_resume_after_sigkill_equals_local(server: Server, local: StoreCopy, tmp_path: Path) -> None:
    archive = tmp_path / "r.zip"
    record = Path(f"{archive}.partial.manifest")
    proxy = Proxy(server.port, delay=0.02, chunk=8192)  # about 400 KB/s: slow enough to kill halfway
    try:
        process = through(proxy, server, tmp_path, "download", "datastore", "/sample", "--archive_path",
                          str(archive), "--privacy", "--privacy_secret", "k")
        killed_while(process, lambda: b'"rows"' in (record.read_bytes() if record.exists() else b""))  # a member is done
    finally:
        proxy.close()
    assert not archive.exists()
    ok(server.cli("download", "datastore", "/sample", *remote(server), "--archive_path", archive, "--resume",
                  "--privacy", "--privacy_secret", "k"))
    ok(local.cli("download", "datastore", "/sample", local.target, "--archive_path", tmp_path / "l.zip",
                 "--privacy", "--privacy_secret", "k"))
    assert members(archive) == members(tmp_path / "l.zip")


def test_a_resume_after_the_server_data_changed(server: Server, served: StoreCopy, tmp_path: Path) -> None:
    """On sqlite the change count shows the data changed, and the resume refuses. Cloud
    Datastore keeps none: the resume goes on, and says it could not check."""
    archive = tmp_path / "r.zip"
    ok(served.cli("courses", "add", "/changing", *served.datastore))
    ok(served.cli("populate", "/changing", "--students", "5", *served.datastore))
    record = Path(f"{archive}.partial.manifest")
    proxy = Proxy(server.port, delay=0.05, chunk=4096)
    try:
        process = through(proxy, server, tmp_path, "download", "datastore", "/changing", "--archive_path", str(archive))
        killed_while(process, record.exists)
    finally:
        proxy.close()
    (tmp_path / "new.txt").write_text("a change")
    ok(server.cli("run", "courseport.jobs.examples.UploadFileToCourse", "/changing", *remote(server),
                  "--job_args", f"{tmp_path / 'new.txt'} assets/new.txt"))
    proc = server.cli("download", "datastore", "/changing", *remote(server), "--archive_path", archive, "--resume")
    if served.on_cloud:
        assert proc.returncode == 0, proc.stderr
        assert "keeps no change count, so whether course /changing changed" in proc.stderr, proc.stderr
    else:
        assert proc.returncode == 1 and "changed since this download started" in proc.stderr, proc.stderr


def test_several_workers_serve_together(server: Server, served: StoreCopy, local: StoreCopy, tmp_path: Path) -> None:
    running = served.serve("--workers", "2", app_password=server.app_password)
    try:
        for n in range(3):  # new connections: either worker may answer
            ok(running.cli("download", "datastore", "/sample", *remote(running),
                           "--archive_path", tmp_path / f"r{n}.zip"))
    finally:
        running.stop()
    ok(local.cli("download", "datastore", "/sample", local.target, "--archive_path", tmp_path / "l.zip"))
    for n in range(3):
        assert members(tmp_path / f"r{n}.zip") == members(tmp_path / "l.zip")


def test_a_local_writer_and_a_remote_one_exclude_each_other(server: Server, served: StoreCopy,
                                                            tmp_path: Path) -> None:
    """The store's writer lock (a local command's) and the server's writer lease (a remote command's)."""
    import httpx

    archive = tmp_path / "d.zip"
    ok(served.cli("download", "datastore", "/sample", served.target, "--archive_path", archive,
                  "--datastore_types", "Student"))
    ok(served.cli("courses", "add", "/locks", *served.datastore))
    no_wait = {"COURSEPORT_LOCK_WAIT": "0"}
    with served.open() as store, store.exclusive("a local upload"):
        proc = server.cli("upload", "datastore", "/locks", *remote(server), "--archive_path", archive,
                          extra_env=no_wait)
    assert proc.returncode == 1 and "in use by 'a local upload'" in proc.stderr, proc.stderr
    auth = (server.env["COURSEPORT_EMAIL"], server.env["COURSEPORT_APP_PASSWORD"])
    taken = httpx.post(f"{server.url}/api/v1/leases", json={"what": "a remote upload"}, auth=auth)
    assert taken.status_code == 201, taken.text
    try:
        proc = served.cli("upload", "datastore", "/locks", served.target, "--archive_path", archive,
                          extra_env=no_wait)
        assert proc.returncode == 1 and "in use by 'a remote upload' (through the server" in proc.stderr, \
            proc.stderr
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
    assert served.rows("ns_locks").keys() <= {"FileDataEntity", "FileMetadataEntity", "Note"}
    ok(server.cli("upload", "datastore", "/locks", *remote(server), "--archive_path", archive))
    assert len(served.rows("ns_locks")["Student"]) == STUDENTS


def test_a_killed_remote_upload_resumes_at_once(server: Server, served: StoreCopy, local: StoreCopy,
                                                tmp_path: Path) -> None:
    """Its lease lapses by itself within seconds: the resume waits for it, then finishes the upload."""
    archive = tmp_path / "d.zip"
    ok(local.cli("download", "datastore", "/sample", local.target, "--archive_path", archive))
    ok(served.cli("courses", "add", "/killed", *served.datastore))
    proxy = Proxy(server.port, delay=0.01, chunk=4096)  # slow enough to be killed halfway
    try:
        process = through(proxy, server, tmp_path, "upload", "datastore", "/killed", "--archive_path", str(archive))
        with served.open() as store:
            killed_while(process, lambda: "EventEntity" in store.kinds("ns_killed"))  # some rows landed
    finally:
        proxy.close()
    started = time.monotonic()
    ok(server.cli("upload", "datastore", "/killed", *remote(server), "--archive_path", archive, "--resume"))
    assert time.monotonic() - started < 25
    ok(local.cli("courses", "add", "/killed", *local.datastore))
    ok(local.cli("upload", "datastore", "/killed", local.target, "--archive_path", archive))
    assert served.rows("ns_killed") == local.rows("ns_killed")


def test_a_half_written_course_yaml_does_not_stop_a_resume(server: Server, served: StoreCopy, local: StoreCopy,
                                                           tmp_path: Path) -> None:
    """An upload killed between course.yaml's data and its metadata leaves them apart: the
    course must still resolve (its slug for a title) so that `--resume` can finish the upload."""
    from courseport.datastore import Key

    archive = tmp_path / "d.zip"
    ok(local.cli("download", "datastore", "/sample", local.target, "--archive_path", archive))
    ok(served.cli("courses", "add", "/halfway", *served.datastore))
    with served.open() as store:
        meta = store.get(Key("FileMetadataEntity", "/course.yaml", namespace="ns_halfway"))
        meta["size"] = meta["size"] + 7  # its data and its metadata no longer agree
        store.put(meta)
    ok(server.cli("upload", "datastore", "/halfway", *remote(server), "--archive_path", archive, "--resume"))
    ok(local.cli("courses", "add", "/halfway", *local.datastore))
    ok(local.cli("upload", "datastore", "/halfway", local.target, "--archive_path", archive))
    assert served.rows("ns_halfway") == local.rows("ns_halfway")
