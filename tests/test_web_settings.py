"""Site and course switches as learners meet them: event recording off by default
and per course, sign-up open or by invitation; and the forms' CSRF guard."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from conftest import assert_one_line_error, cli_at
from servers import Server
from web import Learner, course_server, event_token, form_token, home_store

SLUG = "/sample"


def open_sample(home: Path) -> None:
    assert cli_at(home, "settings", "set", "--course", SLUG, "availability", "registration_optional").returncode == 0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with course_server(tmp_path, live_sample=None, prepare=open_sample) as running:
        yield running


def event_rows(server: Server) -> int:
    with home_store(server.home) as store:
        return store.count("EventEntity", "ns_sample")


def enrolled(server: Server, email: str) -> Learner:
    person = Learner(server.url, email)
    assert person.sign_up().status_code == 302
    assert person.register(SLUG, "Someone").status_code == 302
    return person


def test_events_are_off_until_the_site_turns_them_on_and_the_course_allows(server: Server) -> None:
    person = enrolled(server, "events@example.com")
    page = person.get(f"{SLUG}/unit?unit=1").text
    assert "gcbCanRecordStudentEvents" not in page and "var eventXsrfToken = ''" in page
    before = event_rows(server)
    answer = person.event(SLUG, "enter-page", {}, token="x", location="http://x/")
    assert answer.status_code == 200 and answer.text == "" and event_rows(server) == before

    assert cli_at(server.home, "settings", "set", "record_events", "on").returncode == 0
    import time

    time.sleep(2.2)  # workers re-read settings every 2 s
    page = person.get(f"{SLUG}/unit?unit=1").text
    assert "var gcbCanRecordStudentEvents = true" in page
    assert person.event(SLUG, "enter-page", {}, token=event_token(page), location="http://x/").status_code == 200
    assert event_rows(server) == before + 1

    assert cli_at(server.home, "settings", "set", "--course", SLUG, "can_record_student_events",
                  "false").returncode == 0
    time.sleep(2.2)
    page = person.get(f"{SLUG}/unit?unit=1").text
    assert "gcbCanRecordStudentEvents" not in page
    person.event(SLUG, "enter-page", {}, token="x", location="http://x/")
    assert event_rows(server) == before + 1


def test_invitation_only_sign_up(server: Server) -> None:
    assert cli_at(server.home, "settings", "set", "signup", "invitation").returncode == 0
    import time

    time.sleep(2.2)
    stranger = Learner(server.url, "stranger@example.com")
    answer = stranger.sign_up()
    assert answer.status_code == 400 and "invitation" in answer.text
    assert cli_at(server.home, "users", "invite", "Guest@Example.com").returncode == 0
    guest = Learner(server.url, "guest@example.com")
    assert guest.sign_up().status_code == 302
    assert guest.get(f"{SLUG}/register").status_code == 200  # signed in


def test_forms_refuse_a_missing_or_foreign_token(server: Server) -> None:
    person = enrolled(server, "csrf@example.com")
    other = enrolled(server, "other@example.com")
    foreign = form_token(other.get(f"{SLUG}/student/unenroll").text, "student/unenroll")
    assert person.post(f"{SLUG}/student/unenroll", {"xsrf_token": foreign}).status_code == 403
    assert person.post(f"{SLUG}/student/unenroll", {}).status_code == 403
    assert person.post("/accounts/signout", {}).status_code == 403
    fresh = Learner(server.url, "fresh@example.com")
    assert fresh.post("/accounts/signin", {"email": "csrf@example.com", "password": "x" * 10}).status_code == 403


def test_settings_errors_are_one_line(server: Server) -> None:
    for args in (("settings", "set", "record_events", "maybe"),
                 ("settings", "set", "no_such", "1"),
                 ("settings", "set", "--course", SLUG, "availability", "open"),
                 ("settings", "set", "--course", "/nope", "availability", "public")):
        assert_one_line_error(cli_at(server.home, *args))


def test_no_access_log_unless_asked(server: Server) -> None:
    person = Learner(server.url, "quiet@example.com")
    for _ in range(3):
        assert person.get(f"{SLUG}/course").status_code == 200
    assert '"GET /sample/course' not in server.log_text()
