"""The admin's pages (issue 9, first part): site settings, users and roles,
app-specific passwords and the admin log, for admins only, with CSRF on every
form, and the same records as the command line's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest

from conftest import cli_at
from servers import ADMIN, Server
from web import Learner, course_server, form_token, signed_in_admin

PAGES = ("/admin", "/admin/course?slug=/sample", "/admin/settings", "/admin/users", "/admin/app-passwords",
         "/admin/log")
FORMS = ("/admin", "/admin/course?slug=/sample", "/admin/settings", "/admin/users", "/admin/app-passwords")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with course_server(tmp_path_factory.mktemp("admin"), live_sample=None) as running:
        yield running


@pytest.fixture(scope="module")
def admin(server: Server) -> Learner:
    return signed_in_admin(server)


def test_admin_pages_refuse_visitors_and_learners(server: Server) -> None:
    anonymous = Learner(server.url, "nobody@example.com")
    learner = Learner(server.url, "learner@example.com")
    assert learner.sign_up().status_code == 302
    for path in PAGES:
        answer = anonymous.get(path)
        assert answer.status_code == 302 and answer.headers["location"].startswith("/accounts/signin"), path
        assert learner.get(path).status_code == 403, path
    for path in FORMS:
        assert anonymous.post(path, {"action": "invite", "email": "x@example.com"}).status_code == 302
        assert learner.post(path, {"action": "invite", "email": "x@example.com"}).status_code == 403
    assert not any("x@example.com" in line for line in cli_at(server.home, "users", "list").stdout.splitlines())


def test_forms_need_this_pages_token(server: Server, admin: Learner) -> None:
    settings_token = form_token(admin.get("/admin/settings").text, "/admin/settings")
    for path in FORMS:
        assert admin.post(path, {"action": "create", "name": "x"}).status_code == 403, path
    # a token of another page is refused too
    assert admin.post("/admin/users", {"xsrf_token": settings_token, "action": "invite",
                                       "email": "y@example.com"}).status_code == 403


def test_site_settings_are_the_command_lines(server: Server, admin: Learner) -> None:
    page = admin.get("/admin/settings").text
    answer = admin.post("/admin/settings", {"xsrf_token": form_token(page, "/admin/settings"),
                                            "record_events": "on", "signup": "invitation"})
    assert answer.status_code == 200 and "Saved." in answer.text
    listed = cli_at(server.home, "settings", "list").stdout
    assert re.search(r"^record_events\ton", listed, re.M) and re.search(r"^signup\tinvitation", listed, re.M)
    bad = admin.post("/admin/settings", {"xsrf_token": form_token(page, "/admin/settings"), "signup": "everyone"})
    assert bad.status_code == 400 and "not one of" in bad.text
    log = admin.get("/admin/log").text
    assert "record_events = on" in log and "signup = invitation" in log


def test_users_invite_promote_and_remove(server: Server, admin: Learner) -> None:
    def post(action: str, email: str):  # type: ignore[no-untyped-def]
        token = form_token(admin.get("/admin/users").text, "/admin/users")
        return admin.post("/admin/users", {"xsrf_token": token, "action": action, "email": email})

    assert post("invite", "Newbie@Example.com").status_code == 200
    newbie = Learner(server.url, "newbie@example.com")
    assert newbie.sign_up().status_code == 302
    assert newbie.get("/admin").status_code == 403
    assert post("admin", "newbie@example.com").status_code == 200
    assert newbie.get("/admin").status_code == 200
    assert post("remove", ADMIN).status_code == 400  # not oneself
    assert post("remove", "newbie@example.com").status_code == 200
    assert "newbie@example.com" not in cli_at(server.home, "users", "list").stdout
    assert newbie.get("/admin").status_code == 403  # its session names an account that is gone
    log = admin.get("/admin/log").text
    assert "newbie@example.com" in log and "remove user" in log


def test_app_password_made_in_the_page_works_for_the_command_line(server: Server, admin: Learner,
                                                                  tmp_path: Path) -> None:
    page = admin.get("/admin/app-passwords").text
    made = admin.post("/admin/app-passwords", {"xsrf_token": form_token(page, "/admin/app-passwords"),
                                               "action": "create", "name": "browser-made"})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    password = re.search(r'<code id="new-password">([a-z0-9 ]+)</code>', made.text).group(1)
    assert password not in admin.get("/admin/app-passwords").text  # shown once
    proc = cli_at(server.home, "download", "datastore", "/sample", "localhost", "--port", str(server.port),
                  "--archive_path", str(tmp_path / "a.zip"),
                  extra_env={"COURSEPORT_EMAIL": ADMIN, "COURSEPORT_APP_PASSWORD": password})
    assert proc.returncode == 0, proc.stderr
    listing = admin.get("/admin/app-passwords").text
    row = re.search(r"<tr><td>browser-made</td>.*?</tr>", listing, re.DOTALL).group(0)
    assert "never" not in row  # last used
    ident = re.search(r'name="id" value="([0-9a-f]+)"', row).group(1)
    token = form_token(listing, "/admin/app-passwords")
    assert admin.post("/admin/app-passwords", {"xsrf_token": token, "action": "revoke", "email": ADMIN,
                                               "id": ident}).status_code == 200
    proc = cli_at(server.home, "download", "datastore", "/sample", "localhost", "--port", str(server.port),
                  "--archive_path", str(tmp_path / "b.zip"),
                  extra_env={"COURSEPORT_EMAIL": ADMIN, "COURSEPORT_APP_PASSWORD": password})
    assert proc.returncode == 1 and "401" in proc.stderr
    log = admin.get("/admin/log").text
    assert "browser-made" in log and password not in log and password.replace(" ", "") not in log


def test_a_reloaded_create_form_makes_no_second_password(server: Server, admin: Learner) -> None:
    """Reloading the page that showed a new password sends its form again: refused, saying
    which password that form made; a fresh form (a new nonce) makes another."""
    page = admin.get("/admin/app-passwords").text
    once = re.search(r'name="once" value="([^"]+)"', page).group(1)
    form = {"xsrf_token": form_token(page, "/admin/app-passwords"), "action": "create", "name": "reloaded",
            "once": once}
    assert admin.post("/admin/app-passwords", form).status_code == 200
    again = admin.post("/admin/app-passwords", form)
    assert again.status_code == 400 and "this form was sent already" in again.text
    assert "&#39;reloaded&#39;" in again.text and 'id="new-password"' not in again.text
    listing = cli_at(server.home, "app-password", "list").stdout
    assert listing.count("reloaded") == 1, listing
    fresh = re.search(r'name="once" value="([^"]+)"', again.text).group(1)
    assert fresh != once
    assert admin.post("/admin/app-passwords", {**form, "once": fresh}).status_code == 200
    assert cli_at(server.home, "app-password", "list").stdout.count("reloaded") == 2
    forged = admin.post("/admin/app-passwords", {**form, "once": "../not-ours"})
    assert forged.status_code == 400 and "not one this server made" in forged.text


def test_one_create_form_sent_at_once_many_times_makes_one_password(server: Server, admin: Learner) -> None:
    from concurrent.futures import ThreadPoolExecutor

    page = admin.get("/admin/app-passwords").text
    form = {"xsrf_token": form_token(page, "/admin/app-passwords"), "action": "create", "name": "raced",
            "once": re.search(r'name="once" value="([^"]+)"', page).group(1)}
    with ThreadPoolExecutor(6) as pool:
        statuses = sorted(pool.map(lambda _: admin.post("/admin/app-passwords", form).status_code, range(6)))
    assert statuses == [200] + [400] * 5, statuses
    assert cli_at(server.home, "app-password", "list").stdout.count("raced") == 1


def test_courses_are_listed(server: Server, admin: Learner) -> None:
    page = admin.get("/admin").text
    assert "/sample" in page and "course:/sample::ns_sample" in page


def test_courses_are_created_changed_and_deleted_from_the_page(server: Server, admin: Learner,
                                                              tmp_path: Path) -> None:
    token = form_token(admin.get("/admin").text, "/admin")
    assert admin.post("/admin", {"xsrf_token": token, "name": "physics", "title": "Physics 101",
                                 "template": "blank"}).status_code == 200
    assert admin.post("/admin", {"xsrf_token": token, "name": "copy", "title": "A Copy",
                                 "template": "sample"}).status_code == 200
    bad = admin.post("/admin", {"xsrf_token": token, "name": "Bad Name!", "template": "blank"})
    assert bad.status_code == 400 and "may contain only" in bad.text
    listed = cli_at(server.home, "courses", "list").stdout
    assert "/physics" in listed and "/copy" in listed
    assert "A Copy" in admin.get("/admin").text
    assert cli_at(server.home, "settings", "list", "--course", "/copy").stdout.count("A Copy") == 1

    page = admin.get("/admin/course?slug=/physics").text
    token = form_token(page, "/admin/course?slug=/physics")
    saved = admin.post("/admin/course?slug=/physics", {
        "xsrf_token": token, "action": "save", "title": "Physics for Poets", "availability": "public",
        "registration_header": "<b>Hello</b>", "registration_fields": "<li>Why? <input name=why></li>"})
    assert saved.status_code == 200 and "Saved." in saved.text
    shown = cli_at(server.home, "settings", "list", "--course", "/physics").stdout
    assert "availability = public" in shown and "title = Physics for Poets" in shown
    assert "can_record_student_events = off" in shown  # the box was left unchecked
    archive = tmp_path / "physics.zip"
    assert cli_at(server.home, "download", "course", "/physics", "local", "--archive_path", str(archive)).returncode == 0
    import zipfile

    with zipfile.ZipFile(archive) as zf:
        text = zf.read("files/course.yaml").decode()
    assert "Physics for Poets" in text and "now_available: true" in text and "can_register: false" in text

    refused = admin.post("/admin/course?slug=/physics", {"xsrf_token": token, "action": "delete", "confirm": "phys"})
    assert refused.status_code == 400 and "/physics" in cli_at(server.home, "courses", "list").stdout
    gone = admin.post("/admin/course?slug=/physics", {"xsrf_token": token, "action": "delete", "confirm": "physics"})
    assert gone.status_code == 303
    assert "/physics" not in cli_at(server.home, "courses", "list").stdout
    from web import home_store

    with home_store(server.home) as store:
        assert store.kinds("ns_physics") == []
    log = admin.get("/admin/log").text
    assert "create course" in log and "delete course" in log and "course settings" in log
