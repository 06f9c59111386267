"""Archives from the browser (issue 9): downloads and uploads run as jobs on a real
server, for admins only, with the command line's options, checks and errors."""

from __future__ import annotations

import io
import os
import stat
import time
import zipfile
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import cli_at
from servers import Server, free_port, start_server
from web import Learner, course_server, form_token, home_store, signed_in_admin

SECRET = "a secret of the admin's own"
STUDENTS = 300


def _prepare(home: Path) -> None:
    assert cli_at(home, "populate", "/sample", "--students", str(STUDENTS)).returncode == 0
    assert cli_at(home, "courses", "add", "/empty").returncode == 0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with course_server(tmp_path_factory.mktemp("archives"), live_sample=None, prepare=_prepare) as running:
        yield running


@pytest.fixture(scope="module")
def admin(server: Server) -> Learner:
    return signed_in_admin(server)


def token(admin: Learner) -> str:
    return form_token(admin.get("/admin/archives").text, "/admin/archives")


def start_download(admin: Learner, **fields: str) -> str:
    """Start a download job from the page's form; its id."""
    answer = admin.post("/admin/archives", {"xsrf_token": token(admin), "action": "export", **fields})
    assert answer.status_code == 303, answer.text[:500]
    return answer.headers["location"].rpartition("started=")[2]


def start_upload(admin: Learner, archive: bytes, **fields: str) -> httpx.Response:
    return admin.http.post("/admin/archives/import", data={"xsrf_token": token(admin), **fields},
                           files={"archive": ("course.zip", archive, "application/zip")})


def jobs(admin: Learner) -> dict[str, dict[str, Any]]:
    answer = admin.get("/admin/archives/jobs")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    return {job["id"]: job for job in answer.json()["jobs"]}


def wait(admin: Learner, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = jobs(admin)[job_id]
        if job["state"] != "running":
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still running after {timeout}s")


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist() if name != "manifest.json"}


# --- who may ------------------------------------------------------------------


def test_archive_pages_and_files_refuse_visitors_and_learners(server: Server, admin: Learner) -> None:
    done = wait(admin, start_download(admin, course="/sample", type="course"))
    assert done["state"] == "done", done
    anonymous = Learner(server.url, "nobody@example.com")
    learner = Learner(server.url, "learner-archives@example.com")
    assert learner.sign_up().status_code == 302
    for path in ("/admin/archives", "/admin/archives/jobs", f"/admin/archives/file?id={done['id']}"):
        answer = anonymous.get(path)
        assert answer.status_code == 302 and answer.headers["location"].startswith("/accounts/signin"), path
        refused = learner.get(path)
        assert refused.status_code == 403 and "PK" not in refused.text and done["id"] not in refused.text, path
    for who in (anonymous, learner):
        assert who.post("/admin/archives", {"action": "export", "course": "/sample", "type": "course"}).status_code \
            in (302, 403)
        assert who.http.post("/admin/archives/import", data={"course": "/empty", "type": "course"},
                             files={"archive": ("a.zip", b"PK", "application/zip")}).status_code in (302, 403)
    fetched = admin.get(f"/admin/archives/file?id={done['id']}")
    assert fetched.status_code == 200 and fetched.content.startswith(b"PK")
    assert fetched.headers["cache-control"] == "no-store"
    assert "attachment" in fetched.headers["content-disposition"]


def test_forms_need_the_pages_token(server: Server, admin: Learner) -> None:
    before = set(jobs(admin))
    other = form_token(admin.get("/admin/settings").text, "/admin/settings")
    for bad in (None, "", other, "1/" + "x" * 24):
        fields = {"action": "export", "course": "/sample", "type": "course"}
        if bad is not None:
            fields["xsrf_token"] = bad
        assert admin.post("/admin/archives", fields).status_code == 403, bad
        data = {"course": "/empty", "type": "course", **({"xsrf_token": bad} if bad is not None else {})}
        assert admin.http.post("/admin/archives/import", data=data,
                               files={"archive": ("a.zip", b"PK", "application/zip")}).status_code == 403, bad
    assert set(jobs(admin)) == before


def test_exports_are_kept_where_only_this_user_reads(server: Server, admin: Learner) -> None:
    wait(admin, start_download(admin, course="/sample", type="course"))
    folder = server.home / "exports"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


# --- downloads ----------------------------------------------------------------------


def test_a_privacy_download_matches_the_command_lines(server: Server, admin: Learner, tmp_path: Path) -> None:
    job_id = start_download(admin, course="/sample", type="datastore", privacy="on", secret=SECRET)
    job = wait(admin, job_id)
    assert job["state"] == "done", job
    assert job["options"] == "privacy, with the admin's secret" and SECRET not in str(job)
    data = admin.get(f"/admin/archives/file?id={job_id}").content
    assert len(data) == job["size"]
    import hashlib
    assert hashlib.sha256(data).hexdigest() == job["sha256"]
    exported = tmp_path / "browser.zip"
    exported.write_bytes(data)
    assert cli_at(server.home, "verify", "--archive_path", str(exported)).returncode == 0
    by_cli = tmp_path / "cli.zip"
    proc = cli_at(server.home, "download", "datastore", "/sample", "local", "--archive_path", str(by_cli),
                  "--privacy", "--privacy_secret", SECRET)
    assert proc.returncode == 0, proc.stderr
    assert members(data) == members(by_cli.read_bytes())
    assert job["rows"] == job["done"] > STUDENTS
    log = admin.get("/admin/log").text
    assert f"job {job_id}" in log and SECRET not in log


def test_kinds_to_include_and_leave_out(server: Server, admin: Learner) -> None:
    only = wait(admin, start_download(admin, course="/sample", type="datastore", kinds="Student, EventEntity"))
    assert only["state"] == "done", only
    names = members(admin.get(f"/admin/archives/file?id={only['id']}").content)
    assert sorted(names) == ["models/EventEntity.json", "models/Student.json"]
    left = wait(admin, start_download(admin, course="/sample", type="datastore", exclude="EventEntity"))
    names = members(admin.get(f"/admin/archives/file?id={left['id']}").content)
    assert "models/EventEntity.json" not in names and "models/Student.json" in names


def test_the_command_lines_errors_are_shown_on_the_job(server: Server, admin: Learner) -> None:
    failed = wait(admin, start_download(admin, course="/sample", type="datastore", kinds="Student,NoSuchKind"))
    assert failed["state"] == "failed"
    assert failed["message"].startswith("Requested types not found: NoSuchKind. Available types are: ")
    assert failed["file"] is None
    assert admin.get(f"/admin/archives/file?id={failed['id']}").status_code == 404
    assert not [name for name in os.listdir(server.home / "exports") if failed["id"] in name]


def test_mistakes_in_the_form_are_said_on_the_page(server: Server, admin: Learner) -> None:
    before = set(jobs(admin))
    for fields, said in (({"course": "/nowhere", "type": "datastore"}, "no course at"),
                         ({"course": "/sample", "type": "everything"}, "type must be"),
                         ({"course": "/sample", "type": "datastore", "kinds": "--force_overwrite"}, "not a kind name"),
                         ({"course": "/sample", "type": "course", "privacy": "on"}, "apply to a datastore"),
                         ({"course": "/sample", "type": "datastore", "secret": "s"}, "goes with privacy")):
        answer = admin.post("/admin/archives", {"xsrf_token": token(admin), "action": "export", **fields})
        assert answer.status_code == 400 and said in answer.text, (fields, answer.text[-800:])
    assert set(jobs(admin)) == before


def test_two_downloads_of_one_course_at_once(server: Server, admin: Learner) -> None:
    first = start_download(admin, course="/sample", type="datastore")
    second = start_download(admin, course="/sample", type="datastore")
    one, two = wait(admin, first), wait(admin, second)
    assert one["state"] == two["state"] == "done", (one, two)
    assert one["file"] != two["file"] and one["rows"] == two["rows"] > STUDENTS
    assert members(admin.get(f"/admin/archives/file?id={first}").content) == \
        members(admin.get(f"/admin/archives/file?id={second}").content)


def test_deleting_a_job_removes_its_archive(server: Server, admin: Learner) -> None:
    job = wait(admin, start_download(admin, course="/sample", type="course"))
    path = server.home / "exports" / job["file"]
    assert path.is_file()
    answer = admin.post("/admin/archives", {"xsrf_token": token(admin), "action": "delete", "id": job["id"]})
    assert answer.status_code == 200 and f"Deleted job {job['id']}" in answer.text
    assert not path.exists() and job["id"] not in jobs(admin)
    assert admin.get(f"/admin/archives/file?id={job['id']}").status_code == 404


# --- uploads ------------------------------------------------------------------------


def test_an_upload_into_an_empty_course_and_the_command_lines_refusal(server: Server, admin: Learner) -> None:
    course = wait(admin, start_download(admin, course="/sample", type="course"))
    archive = admin.get(f"/admin/archives/file?id={course['id']}").content
    answer = start_upload(admin, archive, course="/empty", type="course")
    assert answer.status_code == 303, answer.text[-500:]
    done = wait(admin, answer.headers["location"].rpartition("started=")[2])
    assert done["state"] == "done", done
    assert done["message"].startswith("uploaded course /empty: ") and str(server.home) not in done["message"]
    listed = cli_at(server.home, "download", "course", "/empty", "local", "--archive_path",
                    str(server.home.parent / "empty-course.zip"))
    assert listed.returncode == 0, listed.stderr
    again = wait(admin, start_upload(admin, archive, course="/empty", type="course")
                 .headers["location"].rpartition("started=")[2])
    assert again["state"] == "failed"
    assert again["message"].startswith("course /empty is not empty (") and "--force_overwrite" in again["message"]
    assert not list((server.home / "imports").iterdir())


def test_an_upload_of_something_that_is_not_an_archive(server: Server, admin: Learner) -> None:
    answer = start_upload(admin, b"not a zip at all", course="/empty", type="datastore")
    failed = wait(admin, answer.headers["location"].rpartition("started=")[2])
    assert failed["state"] == "failed" and "zip" in failed["message"].lower(), failed
    assert str(server.home) not in failed["message"]
    missing = admin.http.post("/admin/archives/import", data={"xsrf_token": token(admin), "course": "/empty",
                                                               "type": "datastore"})
    assert missing.status_code == 400 and "choose an archive" in missing.text


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(fields=st.dictionaries(st.sampled_from(["course", "type", "kinds", "exclude", "secret", "privacy", "action", "id"]),
                              st.text(max_size=40)))
def test_any_form_is_answered_without_a_server_error(server: Server, admin: Learner,
                                                     fields: dict[str, str]) -> None:
    fields = {**fields, "action": fields.get("action", "export")}
    if fields["action"] == "export" and fields.get("course") == "/sample" and fields.get("type") in (
            "course", "datastore"):
        fields["course"] = "/nowhere"  # no jobs started by the hundred
    answer = admin.post("/admin/archives", {"xsrf_token": token(admin), **fields})
    assert answer.status_code in (200, 303, 400), (fields, answer.status_code)
    ids = ["", "..", "../../etc/passwd", "x" * 100, fields.get("id", "")]
    for job_id in ids:
        assert admin.get("/admin/archives/file", params={"id": job_id}).status_code == 404


def test_an_upload_the_disk_has_no_room_for_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """The free space a posted archive must leave (COURSEPORT_DISK_RESERVE_MB) is checked
    against its Content-Length before its first byte is read; a body of unknown length is
    refused (411)."""
    home = tmp_path / "home"
    home.mkdir()
    assert cli_at(home, "init").returncode == 0
    assert cli_at(home, "courses", "add", "/empty").returncode == 0
    running = start_server(home, env={"COURSEPORT_DISK_RESERVE_MB": str(10 ** 12)})
    try:
        admin = signed_in_admin(running)
        answer = start_upload(admin, b"PK" + b"\0" * 100_000, course="/empty", type="datastore")
        assert answer.status_code == 413, answer.text[-300:]
        assert "would leave less than" in answer.text and "free some space" in answer.text
        assert not jobs(admin) and not (home / "imports").exists()

        def chunks() -> Iterator[bytes]:
            yield b"--x\r\n"

        unknown = admin.http.post("/admin/archives/import", content=chunks(),
                                  headers={"Content-Type": "multipart/form-data; boundary=x"})
        assert unknown.status_code == 411
    finally:
        running.stop()
    refused = cli_at(home, "serve", "--port", free_port(), extra_env={"COURSEPORT_DISK_RESERVE_MB": "lots"})
    assert refused.returncode == 1 and "COURSEPORT_DISK_RESERVE_MB='lots' is not a number of MiB" in refused.stderr


# --- a server killed while a job runs -----------------------------------------------------


def test_a_job_cut_short_by_a_killed_server_shows_failed(tmp_path: Path) -> None:
    def prepare(home: Path) -> None:
        assert cli_at(home, "populate", "/sample", "--students", "6000").returncode == 0

    with course_server(tmp_path, live_sample=None, prepare=prepare) as first:
        admin = signed_in_admin(first)
        job_id = start_download(admin, course="/sample", type="datastore")
        deadline = time.monotonic() + 60
        while jobs(admin)[job_id]["done"] == 0:
            assert time.monotonic() < deadline and jobs(admin)[job_id]["state"] == "running", jobs(admin)[job_id]
            time.sleep(0.05)
        first.kill()
        home = first.home
        assert [name for name in os.listdir(home / "exports") if name.endswith(".partial")], "the kill came too late"
        time.sleep(3)  # time enough for an orphaned download to finish, had it gone on
        assert not [name for name in os.listdir(home / "exports") if name.endswith(".zip")]
    second = start_server(home, app_password=first.app_password)
    try:
        admin = signed_in_admin(second)
        job = jobs(admin)[job_id]
        assert job["state"] == "failed" and "server stopped" in job["message"] and job["file"] is None
        assert admin.get(f"/admin/archives/file?id={job_id}").status_code == 404
        assert not [name for name in os.listdir(home / "exports") if job_id in name]
        again = wait(admin, start_download(admin, course="/sample", type="datastore"), timeout=120)
        assert again["state"] == "done", again
        assert not [name for name in os.listdir(home / "exports") if ".partial" in name]
    finally:
        second.stop()


# --- cancelling -------------------------------------------------------------------------


def test_a_running_download_cancelled_from_the_page_stops_and_leaves_nothing(tmp_path: Path) -> None:
    """The request is a record any worker may write (two here); the worker that runs the
    job kills its child within a second and removes the partial archive."""
    home = tmp_path / "home"
    home.mkdir()
    for args in (("init",), ("populate", "/sample", "--students", "15000")):
        assert cli_at(home, *args).returncode == 0
    running = start_server(home, "--workers", "2")
    try:
        admin = signed_in_admin(running)
        job_id = start_download(admin, course="/sample", type="datastore", privacy="on")
        deadline = time.monotonic() + 60
        while jobs(admin)[job_id]["done"] == 0:
            assert time.monotonic() < deadline and jobs(admin)[job_id]["state"] == "running", jobs(admin)[job_id]
            time.sleep(0.05)
        page = admin.get("/admin/archives").text
        assert 'value="cancel"' in page and ">Cancel</button>" in page
        asked = admin.post("/admin/archives", {"xsrf_token": token(admin), "action": "cancel", "id": job_id})
        assert asked.status_code == 200 and f"Cancelling job {job_id}" in asked.text
        job = wait(admin, job_id, timeout=10)
        assert job["state"] == "cancelled" and job["message"].startswith("cancelled by admin@example.com"), job
        assert job["file"] is None and admin.get(f"/admin/archives/file?id={job_id}").status_code == 404
        time.sleep(1)  # a child left alive would go on writing
        assert not [name for name in os.listdir(home / "exports") if job_id in name and not name.endswith(".lock")]
        again = admin.post("/admin/archives", {"xsrf_token": token(admin), "action": "cancel", "id": job_id})
        assert again.status_code == 400 and "has ended already (cancelled)" in again.text
        assert "cancel archive job" in admin.get("/admin/log").text
        assert admin.post("/admin/archives", {"xsrf_token": token(admin), "action": "delete",
                                              "id": job_id}).status_code == 200
    finally:
        running.stop()


def test_an_upload_is_not_cancelled_halfway(server: Server, admin: Learner) -> None:
    from courseport.server.archives import ArchiveJob

    upload = ArchiveJob("20260101000000-0badc0de", "upload", "datastore", "/empty", "admin@example.com",
                        "from a.zip")  # running, on another machine (no lock file here)
    with home_store(server.home) as store:
        store.put(upload.entity())
    try:
        page = admin.get("/admin/archives").text
        row = page[page.index(f'data-job="{upload.id}"'):].split("</tr>")[0]
        assert "Cancel" not in row and "Delete" not in row
        refused = admin.post("/admin/archives", {"xsrf_token": token(admin), "action": "cancel", "id": upload.id})
        assert refused.status_code == 400 and "is an upload: stopped halfway it would leave course /empty" in refused.text
        assert jobs(admin)[upload.id]["state"] == "running"
    finally:
        with home_store(server.home) as store:
            store.delete(upload.entity().key)


# --- retention -------------------------------------------------------------------------


def test_archives_older_than_the_retention_go(tmp_path: Path) -> None:
    import datetime as dt
    from courseport.server.archives import ArchiveJobs

    home = tmp_path / "home"
    home.mkdir()
    assert cli_at(home, "init").returncode == 0
    store = home_store(home)
    try:
        archives = ArchiveJobs(store, home)
        job = archives.start_download("a@example.com", "/sample", "course")
        deadline = time.monotonic() + 60
        while archives.get(job.id).state == "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        path = home / "exports" / str(archives.get(job.id).file)
        assert path.is_file()
        assert archives.expire(7) == []  # not old yet
        later = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(days=7, minutes=1)
        assert [gone.id for gone in archives.expire(7, now=later)] == [job.id]
        assert not path.exists() and archives.all() == []
    finally:
        store.close()


@pytest.mark.parametrize("what", ["file", "symlink", "fifo"])
def test_an_exports_folder_that_is_not_a_folder_is_refused(tmp_path: Path, what: str) -> None:
    from courseport.server.archives import ArchiveJobError, ArchiveJobs

    home = tmp_path / "home"
    home.mkdir()
    assert cli_at(home, "init").returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    exports = home / "exports"
    if what == "file":
        exports.write_text("not a folder")
    elif what == "symlink":
        exports.symlink_to(elsewhere)
    else:
        os.mkfifo(exports)
    store = home_store(home)
    try:
        with pytest.raises(ArchiveJobError, match="is not a folder"):
            ArchiveJobs(store, home).start_download("a@example.com", "/sample", "course")
        assert ArchiveJobs(store, home).all() == []
    finally:
        store.close()
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o755 and not list(elsewhere.iterdir())


@pytest.mark.parametrize("days", ["0", "3651", "seven", ""])
def test_a_bad_retention_is_a_one_line_error_and_changes_nothing(tmp_path: Path, days: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert cli_at(home, "init").returncode == 0
    proc = cli_at(home, "settings", "set", "export_retention_days", days)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "days" in proc.stderr, proc.stderr
    assert "export_retention_days\t7\t" in cli_at(home, "settings", "list").stdout
