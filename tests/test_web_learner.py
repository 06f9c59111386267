"""The learner's web over HTTP (server spec §10 checklist): a real ``courseport serve``,
learners with their own cookies, and the rows they leave in the store."""

from __future__ import annotations

import json
import re
from typing import Iterator

import pytest

from servers import Server
from web import Learner, assessment_token, course_server, event_token, form_token, home_store

SLUG = "/cbsample"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with course_server(tmp_path_factory.mktemp("web"), live_sample=SLUG) as running:
        yield running


def rows(server: Server, kind: str, namespace: str = "ns_cbsample") -> list[dict]:
    """Every row of a kind, read through a download (what a user would get)."""
    proc = server.cli("download", "datastore", SLUG, "local", "--archive_path",
                      str(server.home.parent / "dl.zip"), "--datastore_types", kind, "--force_overwrite")
    assert proc.returncode == 0, proc.stderr
    import zipfile

    with zipfile.ZipFile(server.home.parent / "dl.zip") as zf:
        names = [n for n in zf.namelist() if n == f"models/{kind}.json"]
        return json.loads(zf.read(names[0]))["rows"] if names else []


def learner(server: Server, name: str) -> Learner:
    person = Learner(server.url, f"{name}@example.com")
    assert person.sign_up().status_code == 302
    return person


def enrolled(server: Server, name: str) -> Learner:
    person = learner(server, name)
    answer = person.register(SLUG, name.title())
    assert answer.status_code == 302
    assert answer.headers["location"] == f"{SLUG}/course#registration_confirmation"
    return person


def test_unknown_paths_and_preview_are_404(server: Server) -> None:
    anonymous = Learner(server.url, "nobody@example.com")
    for path in (f"{SLUG}/preview", f"{SLUG}/no/such/page", "/no-such-course/x"):
        assert anonymous.get(path).status_code == 404, path


def test_register_needs_sign_in_and_a_token(server: Server) -> None:
    anonymous = Learner(server.url, "anon@example.com")
    answer = anonymous.get(f"{SLUG}/register")
    assert answer.status_code == 302 and answer.headers["location"].startswith("/accounts/signin?continue=")
    person = learner(server, "tokenless")
    assert person.post(f"{SLUG}/register", {"form01": "x"}).status_code == 403
    assert person.post(f"{SLUG}/register", {"form01": "x", "xsrf_token": "1/AAAAAAAAAAAAAAAAAAAAAA=="}).status_code == 403


def test_registration_writes_course_builders_student_row(server: Server) -> None:
    person = learner(server, "Registrant")
    person.register(SLUG, "Reggie", extra=[("extra_q", "yes"), ("extra_q", "twice")])
    student = next(r for r in rows(server, "Student") if r["email"] == "registrant@example.com")
    from courseport.courses.learning import user_id_for_email

    assert student["key.name"] == student["user_id"] == user_id_for_email("registrant@example.com")
    pairs = json.loads(student["additional_fields"])
    assert [p[0] for p in pairs] == ["xsrf_token", "form01", "extra_q", "extra_q"]
    assert re.fullmatch(r"\d+/[A-Za-z0-9_-]{22}==", pairs[0][1])
    assert pairs[1:] == [["form01", "Reggie"], ["extra_q", "yes"], ["extra_q", "twice"]]
    assert student["labels"] == "" and student["scores"] is None and student["is_enrolled"] is True
    enrollments = rows(server, "StudentEnrollmentEventEntity")
    assert any(json.loads(r["data"])["metric"] == "enrolled" for r in enrollments)


def test_first_course_view_sets_last_seen_progress_row_and_location(server: Server) -> None:
    person = enrolled(server, "firstview")
    assert person.get(f"{SLUG}/course").status_code == 200
    from courseport.courses.learning import user_id_for_email

    uid = user_id_for_email("firstview@example.com")
    student = next(r for r in rows(server, "Student") if r["user_id"] == uid)
    assert student["last_seen_on"] is not None
    progress = next(r for r in rows(server, "StudentPropertyEntity") if r["key.name"] == f"{uid}-linear-course-completion")
    assert progress["value"] is None and progress["updated_on"] is None
    prefs = next(r for r in rows(server, "StudentPreferencesEntity") if r["key.name"] == uid)
    assert json.loads(prefs["data"]) == {"version": "1.0", "show_hooks": False, "show_jinja_context": False,
                                         "last_location": f"{SLUG}/course"}


def test_viewing_a_question_free_lesson_completes_it_and_cascades(server: Server) -> None:
    person = enrolled(server, "viewer")
    assert person.get(f"{SLUG}/unit?unit=2&lesson=3").status_code == 200
    from courseport.courses.learning import user_id_for_email

    uid = user_id_for_email("viewer@example.com")
    progress = next(r for r in rows(server, "StudentPropertyEntity") if r["key.name"] == f"{uid}-linear-course-completion")
    values = json.loads(progress["value"])
    assert values["u.2.l.3.h.0"] == 2 and values["u.2.l.3"] == 2
    assert values["u.2"] == 1 and values["r.0"] == 1


def test_events_are_stored_with_location_locale_and_agent(server: Server) -> None:
    person = enrolled(server, "eventful")
    page = person.get(f"{SLUG}/unit?unit=2&lesson=3").text
    token = event_token(page)
    location = f"{server.url}{SLUG}/unit?unit=2&lesson=3"
    answer = person.event(SLUG, "enter-page", {}, token=token, location=location)
    assert answer.status_code == 200 and answer.text == ""
    bad = person.event(SLUG, "enter-page", {}, token="1/bad", location=location)
    assert bad.status_code == 200 and bad.text.startswith(")]}'\n")
    assert json.loads(bad.text[5:])["status"] == 403
    from courseport.courses.learning import user_id_for_email

    uid = user_id_for_email("eventful@example.com")
    mine = [r for r in rows(server, "EventEntity") if r["user_id"] == uid]
    assert len(mine) == 1
    data = json.loads(mine[0]["data"])
    assert data["location"] == location and data["user_agent"] == "courseport-tests/1.0"
    assert set(data["loc"]) >= {"page_locale", "locale", "language", "country", "region", "city"}
    assert data["loc"]["language"] == "en-US,en;q=0.8"


def test_non_student_events_go_under_a_session_pseudonym(server: Server) -> None:
    person = learner(server, "visitor")
    page = person.get(f"{SLUG}/unit?unit=2&lesson=3").text
    answer = person.event(SLUG, "enter-page", {}, token=event_token(page), location=f"{server.url}{SLUG}/course")
    assert answer.status_code == 200
    cookie = person.http.cookies.get("session_id")
    assert cookie and re.fullmatch(r"RND_[0-9a-f]{32}", cookie)
    assert any(r["user_id"] == cookie for r in rows(server, "EventEntity"))


def test_tag_assessment_counts_a_component(server: Server) -> None:
    person = enrolled(server, "questioner")
    token = event_token(person.get(f"{SLUG}/unit?unit=2&lesson=3").text)
    from courseport.courses.site import Site

    with home_store(server.home) as opened:
        data = Site(opened).course(SLUG).data()
    lesson = next(l for l in data.lessons if 'instanceid="' in (l.get("objectives") or "") and "<question " in l["objectives"])
    instance = re.search(r'<question [^>]*instanceid="([^"]+)"', lesson["objectives"]).group(1)
    where = f"{server.url}{SLUG}/unit?unit={lesson['unit_id']}&lesson={lesson['lesson_id']}"
    person.event(SLUG, "tag-assessment", {"instanceid": instance, "quid": "1", "answer": [0], "score": 1,
                                          "type": "McQuestion"}, token=token, location=where)
    from courseport.courses.learning import user_id_for_email

    uid = user_id_for_email("questioner@example.com")
    progress = next(r for r in rows(server, "StudentPropertyEntity") if r["key.name"] == f"{uid}-linear-course-completion")
    values = json.loads(progress["value"])
    assert values[f"u.{lesson['unit_id']}.l.{lesson['lesson_id']}.h.0.c.{instance}"] == 1


def test_answer_keeps_python2_rounding_and_only_a_higher_score(server: Server) -> None:
    person = enrolled(server, "scorer")
    page = person.get(f"{SLUG}/assessment?name=1")
    assert page.status_code == 200
    token = assessment_token(page.text)
    answers = {"version": "1.5", "answers": {}, "individualScores": {}, "containedTypes": {}, "quids": {},
               "rawScore": 0, "totalWeight": 0, "percentScore": 66.5}
    first = person.submit(SLUG, "1", "66.50", answers, token=token)
    assert first.status_code == 200 and "67%" in first.text
    second = person.submit(SLUG, "1", "10.00", dict(answers, percentScore=10), token=token)
    assert second.status_code == 200
    from courseport.courses.learning import user_id_for_email

    uid = user_id_for_email("scorer@example.com")
    student = next(r for r in rows(server, "Student") if r["user_id"] == uid)
    assert json.loads(student["scores"]) == {"1": 67}
    stored = json.loads(next(r for r in rows(server, "StudentAnswersEntity") if r["key.name"] == uid)["data"])
    assert stored["1"]["percentScore"] == 10  # answers always replaced
    submission = next(r for r in rows(server, "Submission") if r["key.name"] == f"(submission:1:{uid})")
    assert submission["unit_id"] == "1"
    events = [json.loads(r["data"]) for r in rows(server, "EventEntity")
              if r["user_id"] == uid and r["source"] == "submit-assessment"]
    assert len(events) == 2 and all(e["location"] == "AnswerHandler" and "loc" not in e for e in events)
    progress = next(r for r in rows(server, "StudentPropertyEntity") if r["key.name"] == f"{uid}-linear-course-completion")
    assert json.loads(progress["value"])["s.1"] == 2
    assert person.submit(SLUG, "1", "50", answers, token="1/forged").status_code == 403
    assert person.submit(SLUG, "999", "50", answers, token=token).status_code == 404


def test_unenroll_then_register_again(server: Server) -> None:
    person = enrolled(server, "leaver")
    page = person.get(f"{SLUG}/student/unenroll")
    assert person.post(f"{SLUG}/student/unenroll", {"xsrf_token": form_token(page.text)}).status_code == 200
    from courseport.courses.learning import user_id_for_email

    uid = user_id_for_email("leaver@example.com")
    before = next(r for r in rows(server, "Student") if r["user_id"] == uid)
    assert before["is_enrolled"] is False and before["name"] == "Leaver"
    person.register(SLUG, "Back Again")
    after = next(r for r in rows(server, "Student") if r["user_id"] == uid)
    assert after["is_enrolled"] is True and after["enrolled_on"] == before["enrolled_on"]
    assert json.loads(after["additional_fields"])[1] == ["form01", "Back Again"]


def test_sign_in_is_rate_limited_and_checks_the_password(server: Server) -> None:
    person = learner(server, "locksmith")
    other = Learner(server.url, "locksmith@example.com")
    assert other.sign_in("wrong password").status_code == 401
    assert other.sign_in().status_code == 302
    for _ in range(10):
        other.sign_in("still wrong")
    assert other.sign_in().status_code == 429  # the account is locked for a while
    del person


def test_session_cookie_is_httponly_and_samesite(server: Server) -> None:
    person = Learner(server.url, "cookie@example.com")
    page = person.get("/accounts/signup")
    answer = person.post("/accounts/signup", {"xsrf_token": form_token(page.text), "email": "cookie@example.com",
                                              "password": "a long password", "continue": "//evil.example/"})
    assert answer.status_code == 302 and answer.headers["location"] == "/"
    header = answer.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=lax" in header and "secure" not in header  # plain http on loopback


def test_forged_or_foreign_session_cookie_is_ignored(server: Server) -> None:
    person = enrolled(server, "victim")
    stolen = person.http.cookies.get("courseport_session")
    body, _, signature = stolen.rpartition(".")
    forged = Learner(server.url, "x@example.com")
    forged.http.cookies.set("courseport_session", body + "." + signature[::-1])
    page = forged.get(f"{SLUG}/student/home")
    assert page.status_code == 302 and page.headers["location"].startswith("/accounts/signin")
