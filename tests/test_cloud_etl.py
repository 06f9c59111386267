"""The command line and the server on Google Cloud Datastore (its emulator), issue 10:
every store command takes ``--datastore datastore://...``, every ETL mode takes it as
its server, directly and through a ``courseport serve`` that runs on it."""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from emulator import cloud_url, datastore_emulator, require_emulator  # noqa: F401
from copies import StoreCopy
from servers import Server
from web import Learner, signed_in_admin

STUDENTS = 40
SECRET = "a cloud secret"


def populated(home: Path, emulator: str, students: int) -> StoreCopy:
    """A store on the emulator (a namespace prefix of its own) with the sample course and
    ``students`` learners, made by the command line."""
    home.mkdir()
    store = StoreCopy(home, cloud_url(), {"DATASTORE_EMULATOR_HOST": emulator})
    for args in (("init",), ("populate", "/sample", "--students", str(students))):
        ok(store.cli(*args, *store.datastore))
    return store


@pytest.fixture(scope="module")
def cloud(datastore_emulator: str, tmp_path_factory: pytest.TempPathFactory) -> StoreCopy:
    require_emulator()
    return populated(tmp_path_factory.mktemp("cloud") / "home", datastore_emulator, STUDENTS)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stderr
    return proc


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist() if name != "manifest.json"}


def rows(path: Path, kind: str) -> list[dict]:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(f"models/{kind}.json"))["rows"]


def test_the_store_commands_take_a_cloud_datastore(cloud: StoreCopy) -> None:
    status = ok(cloud.cli("status", "--datastore", cloud.target)).stdout
    assert "app id 's~courseport-test'" in status and "/sample" in status
    assert re.search(rf"^\s+Student\s+{STUDENTS}$", status, re.MULTILINE), status
    listed = ok(cloud.cli("courses", "list", "--datastore", cloud.target)).stdout
    assert listed.startswith("/sample\tcourse:/sample::ns_sample")


def test_the_etl_round_trip(cloud: StoreCopy, tmp_path: Path) -> None:
    """Download course and datastore (plain and --privacy), upload into a new course of a
    new store on the emulator, download again: the same rows."""
    url = cloud.target
    course, data, private = tmp_path / "course.zip", tmp_path / "data.zip", tmp_path / "private.zip"
    ok(cloud.cli("download", "course", "/sample", url, "--archive_path", course))
    ok(cloud.cli("download", "datastore", "/sample", url, "--archive_path", data))
    ok(cloud.cli("download", "datastore", "/sample", url, "--archive_path", private, "--privacy",
           "--privacy_secret", SECRET))
    for archive in (course, data, private):
        ok(cloud.cli("verify", "--archive_path", archive))
    assert len(rows(data, "Student")) == STUDENTS
    assert not any("email" in row for row in rows(private, "Student"))
    again = cloud_url()
    ok(cloud.cli("init", "--datastore", again))
    ok(cloud.cli("delete", "datastore", "/sample", again, input="YES, DELETE\n"))
    ok(cloud.cli("upload", "course", "/sample", again, "--archive_path", course, "--force_overwrite"))
    ok(cloud.cli("upload", "datastore", "/sample", again, "--archive_path", data,
           "--exclude_types", "FileDataEntity,FileMetadataEntity,QuestionEntity"))
    round_trip, course_again = tmp_path / "again.zip", tmp_path / "course-again.zip"
    ok(cloud.cli("download", "datastore", "/sample", again, "--archive_path", round_trip))
    ok(cloud.cli("download", "course", "/sample", again, "--archive_path", course_again))
    upload_dated = "models/FileMetadataEntity.json"  # a course upload writes its files anew, dated now
    assert members(round_trip).keys() == members(data).keys()
    assert {k: v for k, v in members(round_trip).items() if k != upload_dated} == \
        {k: v for k, v in members(data).items() if k != upload_dated}
    assert members(course_again) == members(course)


def test_resume_on_a_cloud_datastore(cloud: StoreCopy, tmp_path: Path) -> None:
    """Killed once a member is written, a download resumes with what it had and gives the whole
    archive; with no change count on Cloud Datastore, it says it could not check for changes."""
    import os
    import signal
    import sys
    import time

    from conftest import cli_env

    whole, target = tmp_path / "whole.zip", tmp_path / "resumed.zip"
    ok(cloud.cli("download", "datastore", "/sample", cloud.target, "--archive_path", whole))
    record = Path(f"{target}.partial.manifest")
    process = subprocess.Popen(
        [sys.executable, "-m", "courseport", "download", "datastore", "/sample", cloud.target, "--archive_path",
         str(target), "--batch_size", "5"],
        env={**cli_env(cloud.home), **cloud.env}, cwd=tmp_path, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while b'"rows"' not in (record.read_bytes() if record.exists() else b""):  # a member is done
        assert process.poll() is None and time.monotonic() < deadline, "finished before it was killed"
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert not target.exists()
    resumed = ok(cloud.cli("download", "datastore", "/sample", cloud.target, "--archive_path", target, "--resume"))
    assert "already in the partial archive, skipped" in resumed.stderr, resumed.stderr
    assert "keeps no change count, so whether course /sample changed" in resumed.stderr, resumed.stderr
    assert members(target) == members(whole)


@pytest.fixture(scope="module")
def server(cloud: StoreCopy) -> Iterator[Server]:
    running = cloud.serve()
    try:
        yield running
    finally:
        running.stop()


def test_every_etl_mode_through_a_server_on_it(cloud: StoreCopy, server: Server, tmp_path: Path) -> None:
    through = ["localhost", "--port", str(server.port)]
    signed_in = server.env
    direct, remote = tmp_path / "direct.zip", tmp_path / "remote.zip"
    ok(cloud.cli("download", "datastore", "/sample", cloud.target, "--archive_path", direct))
    ok(cloud.cli("download", "datastore", "/sample", *through, "--archive_path", remote, extra_env=signed_in))
    assert members(remote) == members(direct)
    course = tmp_path / "course.zip"
    ok(cloud.cli("download", "course", "/sample", *through, "--archive_path", course, extra_env=signed_in))
    ok(cloud.cli("courses", "add", "/copy", "--datastore", cloud.target))
    ok(cloud.cli("upload", "course", "/copy", *through, "--archive_path", course, "--force_overwrite",
           extra_env=signed_in))
    copied = tmp_path / "copied.zip"
    ok(cloud.cli("download", "course", "/copy", cloud.target, "--archive_path", copied))
    assert members(copied).keys() == members(course).keys()
    deleted = ok(cloud.cli("delete", "datastore", "/copy", *through, input="YES, DELETE\n", extra_env=signed_in))
    assert "from namespace 'ns_copy'" in deleted.stdout
    with cloud.open() as store:
        assert store.kinds("ns_copy") == []
    stats = ok(cloud.cli("run", "courseport.jobs.examples.StoreStats", "/sample", *through, extra_env=signed_in))
    assert f"  Student{STUDENTS:>{30 - len('Student') + 12},}" in stats.stdout


def test_learners_and_an_admin_on_a_server_on_it(cloud: StoreCopy, server: Server) -> None:
    ok(cloud.cli("settings", "set", "--course", "/sample", "availability", "registration_optional",
           "--datastore", cloud.target))
    learner = Learner(server.url, "cloud-learner@example.com")
    assert learner.sign_up().status_code == 302
    assert learner.register("/sample", "Cloud Learner").status_code in (302, 303)
    assert learner.get("/sample/course").status_code == 200
    admin = signed_in_admin(server)
    assert admin.get("/admin").status_code == 200 and "/sample" in admin.get("/admin").text
    assert "cloud-learner@example.com" in admin.get("/admin/users").text


@pytest.fixture(scope="module")
def bigger(datastore_emulator: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[StoreCopy, Path]:
    """A store of 500 learners (an EventEntity kind of about 4,500 rows), and its download by one reader."""
    store = populated(tmp_path_factory.mktemp("bigger") / "home", datastore_emulator, 500)
    whole = store.home.parent / "whole.zip"
    ok(store.cli("download", "datastore", "/sample", store.target, "--archive_path", whole))
    return store, whole


def test_several_readers_download_what_one_does(bigger: tuple[StoreCopy, Path], tmp_path: Path) -> None:
    """--readers 8 cuts each big kind into key ranges at __scatter__ split points, fetched at
    once: the archive is the one a single reader writes, row for row, in key order."""
    store, one = bigger
    eight = tmp_path / "eight.zip"
    ok(store.cli("download", "datastore", "/sample", store.target, "--archive_path", eight, "--readers", "8",
                 "--log_level", "DEBUG"))
    assert members(eight) == members(one)
    assert len(rows(one, "EventEntity")) > 4000
    refused = store.cli("upload", "datastore", "/sample", store.target, "--archive_path", one, "--readers", "2")
    assert refused.returncode == 1 and "--readers is only allowed with download" in refused.stderr


def test_a_killed_download_of_several_readers_resumes_its_ranges(bigger: tuple[StoreCopy, Path],
                                                                 tmp_path: Path) -> None:
    """Killed while its readers fetch the key ranges of EventEntity, a --readers download
    resumes with the ranges it had fetched, and fetches only the others: the archive is
    the one a single reader writes."""
    import os
    import signal
    import sys
    import time

    from conftest import cli_env

    store, whole = bigger
    target = tmp_path / "resumed.zip"
    ranges = tmp_path / "resumed.zip.partial.ranges" / "EventEntity".encode().hex()
    command = [sys.executable, "-m", "courseport", "download", "datastore", "/sample", store.target,
               "--archive_path", str(target), "--readers", "2", "--batch_size", "100"]
    process = subprocess.Popen(command, env={**cli_env(store.home), **store.env}, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (ranges.is_dir() and any(name.endswith(".rows") for name in os.listdir(ranges))):
        assert process.poll() is None and time.monotonic() < deadline, "finished before it could be killed"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    fetched = sorted(name for name in os.listdir(ranges) if name.endswith(".rows"))
    assert fetched and not target.exists()
    resumed = ok(store.cli("download", "datastore", "/sample", store.target, "--archive_path", target,
                           "--readers", "2", "--resume"))
    said = re.search(r"EventEntity: (\d+) of (\d+) key ranges already fetched", resumed.stderr)
    # every range fetched before the kill is taken, not fetched again (the kill may come after the last one)
    assert said and len(fetched) <= int(said.group(1)) <= int(said.group(2)), resumed.stderr
    assert members(target) == members(whole)
    assert not (tmp_path / "resumed.zip.partial.ranges").exists()


def test_a_dropped_connection_to_a_server_on_it_resumes_at_the_cursor(cloud: StoreCopy, server: Server,
                                                                       tmp_path: Path) -> None:
    """The export stream, cut mid-way, resumes at the last Cloud Datastore cursor it was sent."""
    from servers import Proxy

    direct, remote = tmp_path / "direct.zip", tmp_path / "remote.zip"
    ok(cloud.cli("download", "datastore", "/sample", cloud.target, "--archive_path", direct))
    proxy = Proxy(server.port, cut_after=60_000)
    try:
        proc = cloud.cli("download", "datastore", "/sample", "localhost", "--port", str(proxy.port),
                   "--archive_path", remote, "--batch_size", "50", extra_env=server.env)
    finally:
        proxy.close()
    ok(proc)
    assert proxy.cuts == 1 and "resuming at the last cursor" in proc.stderr
    assert members(remote) == members(direct)


def test_an_archive_job_of_the_admin_pages_on_it(cloud: StoreCopy, server: Server, tmp_path: Path) -> None:
    """A download started from /admin/archives runs its command line on the same Cloud Datastore."""
    import time

    from web import form_token

    admin = signed_in_admin(server)
    token = form_token(admin.get("/admin/archives").text, "/admin/archives")
    started = admin.post("/admin/archives", {"xsrf_token": token, "action": "export", "course": "/sample",
                                             "type": "datastore", "privacy": "on", "secret": SECRET})
    assert started.status_code == 303, started.text[-500:]
    job_id = started.headers["location"].rpartition("started=")[2]
    deadline = time.monotonic() + 120
    while True:
        job = next(j for j in admin.get("/admin/archives/jobs").json()["jobs"] if j["id"] == job_id)
        if job["state"] != "running":
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert job["state"] == "done", job
    fetched = tmp_path / "browser.zip"
    fetched.write_bytes(admin.get(f"/admin/archives/file?id={job_id}").content)
    direct = tmp_path / "direct.zip"
    ok(cloud.cli("download", "datastore", "/sample", cloud.target, "--archive_path", direct, "--privacy",
           "--privacy_secret", SECRET))
    assert members(fetched) == members(direct)


def test_two_servers_on_it_share_a_learners_session(cloud: StoreCopy, server: Server) -> None:
    """Servers on one Cloud Datastore are stateless: a learner signed up on one goes on on
    the other (its session, its form tokens, its registration), and the other's admin sees it."""
    other = cloud.serve(app_password=server.app_password)
    try:
        ok(cloud.cli("settings", "set", "--course", "/sample", "availability", "registration_optional",
               "--datastore", cloud.target))
        learner = Learner(server.url, "two-servers@example.com")
        assert learner.sign_up().status_code == 302
        learner.http.base_url = other.url  # the same cookies (they name the host, not the port)
        assert learner.register("/sample", "Two Servers").status_code in (302, 303)
        learner.http.base_url = server.url
        home = learner.get("/sample/student/home")
        assert home.status_code == 200 and "Two Servers" in home.text
        assert "two-servers@example.com" in signed_in_admin(other).get("/admin/users").text
    finally:
        other.stop()


def test_a_reloaded_app_password_form_makes_no_second_one_on_it(cloud: StoreCopy, server: Server) -> None:
    """The create form's nonce, checked and kept in one Cloud Datastore transaction."""
    from concurrent.futures import ThreadPoolExecutor

    from web import form_token

    admin = signed_in_admin(server)
    page = admin.get("/admin/app-passwords").text
    form = {"xsrf_token": form_token(page, "/admin/app-passwords"), "action": "create", "name": "cloud-once",
            "once": re.search(r'name="once" value="([^"]+)"', page).group(1)}
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: admin.post("/admin/app-passwords", form), range(4)))
    assert sorted(a.status_code for a in answers) == [200, 400, 400, 400], [a.text[-300:] for a in answers]
    listed = ok(cloud.cli("app-password", "list", "--datastore", cloud.target)).stdout
    assert listed.count("cloud-once") == 1, listed


def test_a_course_builder_projects_datastore_downloads_as_course_builder_exports_it(
        datastore_emulator: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Entities as App Engine's models wrote them (google's own client here), in a project
    whose course is Course Builder's default one ("course:/::", the default namespace): the
    archive has Course Builder's values: a DateProperty (a timestamp at midnight in the
    store) as its date, datetimes with microseconds, Text as strings, App Engine's key strings."""
    import datetime as dt

    from google.cloud import datastore

    from emulator import PROJECT, fresh_prefix

    prefix = fresh_prefix()
    monkeypatch.setenv("DATASTORE_EMULATOR_HOST", datastore_emulator)
    google = datastore.Client(project=PROJECT, namespace=prefix)
    config = datastore.Entity(google.key("ConfigPropertyEntity", "gcb_courses_config"), exclude_from_indexes=("value",))
    config.update({"value": "course:/::", "is_draft": False})
    profile = datastore.Entity(google.key("PersonalProfile", "108"))
    profile.update({"email": "ann@example.com", "legal_name": "Ann", "nick_name": "ann", "course_info": None,
                    "date_of_birth": dt.datetime(1990, 5, 17, tzinfo=dt.timezone.utc)})
    student = datastore.Entity(google.key("Student", "108"), exclude_from_indexes=("additional_fields",))
    student.update({"name": "Ann", "additional_fields": '[["form01", "Ann"]]', "is_enrolled": True,
                    "user_id": "108", "enrolled_on": dt.datetime(2016, 4, 6, 20, 14, 27, 542076, tzinfo=dt.timezone.utc)})
    google.put_multi([config, profile, student])
    (tmp_path / "home").mkdir()
    project = StoreCopy(tmp_path / "home", cloud_url(prefix), {"DATASTORE_EMULATOR_HOST": datastore_emulator})
    archive = tmp_path / "cb.zip"
    ok(project.cli("download", "datastore", "/", PROJECT, project.target, "--archive_path", archive))
    [row] = rows(archive, "PersonalProfile")
    assert row["date_of_birth"] == "1990-05-17"
    assert row["key"] == google.key("PersonalProfile", "108", namespace=None).to_legacy_urlsafe(
        location_prefix="s~").decode()
    [learner] = rows(archive, "Student")
    assert learner["enrolled_on"] == "2016-04-06T20:14:27.542076Z"
    assert learner["additional_fields"] == '[["form01", "Ann"]]'
