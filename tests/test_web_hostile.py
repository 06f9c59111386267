"""Hostile learners: generated form fields, event requests, cookies and raw bytes never
make the server fail (no 5xx), never store what is not JSON, and what a learner
typed comes back escaped."""

from __future__ import annotations

import html
import json
import re
import socket
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import cli_at
from servers import Server, start_server
from web import Learner, event_token, form_token

SLUG = "/sample"
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("hostile") / "home"
    home.mkdir()
    for args in (("init",), ("settings", "set", "--course", SLUG, "availability", "registration_optional"),
                 ("settings", "set", "record_events", "on")):
        assert cli_at(home, *args).returncode == 0
    running = start_server(home)
    try:
        yield running
    finally:
        running.stop()
        assert "Traceback" not in running.log_text(), running.log_text()[-3000:]


@pytest.fixture(scope="module")
def student(server: Server) -> Learner:
    person = Learner(server.url, "hostile@example.com")
    assert person.sign_up().status_code == 302
    assert person.register(SLUG, "Hostile").status_code == 302
    return person


@SETTINGS
@given(fields=st.lists(st.tuples(text, text), max_size=8), name=text)
def test_registration_fields_are_kept_as_pairs_and_shown_escaped(server: Server, student: Learner,
                                                                 fields: list, name: str) -> None:
    token = form_token(_register_page(student), "register")
    answer = student.post(f"{SLUG}/register", [("xsrf_token", token), ("form01", name), *fields])
    assert answer.status_code == 302
    home = student.get(f"{SLUG}/student/home")
    assert home.status_code == 200
    cell = re.search(r'<td id="student-name">(.*?)</td>', home.text, re.DOTALL)
    assert cell and "<" not in cell.group(1) and html.unescape(cell.group(1)) == name
    from courseport.courses.learning import user_id_for_email
    from courseport.datastore import Key, open_store

    with open_store(f"sqlite:///{server.home / 'courseport.db'}", create=False) as store:
        row = store.get(Key("Student", user_id_for_email("hostile@example.com"), namespace="ns_sample"))
    pairs = json.loads(row["additional_fields"])
    assert pairs[0][0] == "xsrf_token" and pairs[1:] == [["form01", name], *[[k, v] for k, v in fields]]


def _register_page(person: Learner) -> str:
    """The registration form, reached even when enrolled: through unenrol first."""
    page = person.get(f"{SLUG}/student/unenroll")
    if page.status_code == 200:
        person.post(f"{SLUG}/student/unenroll", {"xsrf_token": form_token(page.text, "student/unenroll")})
    return person.get(f"{SLUG}/register").text


@SETTINGS
@given(source=text, payload=st.one_of(text, st.dictionaries(text, st.one_of(text, st.integers(), st.none()),
                                                            max_size=5)))
def test_generated_events_never_fail_the_server(server: Server, student: Learner, source: str, payload) -> None:
    token = event_token(student.get(f"{SLUG}/unit?unit=1").text)
    body = json.dumps({"source": source, "payload": payload if isinstance(payload, str) else json.dumps(payload),
                       "xsrf_token": token})
    answer = student.post(f"{SLUG}/rest/events", {"request": body})
    assert answer.status_code in (200, 400)


@SETTINGS
@given(raw=st.binary(max_size=300))
def test_raw_bytes_as_a_form_body_never_fail_the_server(server: Server, student: Learner, raw: bytes) -> None:
    for path in (f"{SLUG}/rest/events", f"{SLUG}/register", f"{SLUG}/answer", "/accounts/signin"):
        answer = student.http.post(path, content=raw, headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert answer.status_code < 500, (path, raw)


@SETTINGS
@given(cookie=st.text(st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters=';,"\\'), max_size=300))
def test_any_session_cookie_is_refused_or_ignored(server: Server, cookie: str) -> None:
    visitor = Learner(server.url, "cookie@example.com")
    visitor.http.cookies.set("courseport_session", cookie)
    for path in (f"{SLUG}/course", f"{SLUG}/student/home", "/"):
        assert visitor.get(path).status_code in (200, 302)


def test_oversized_bodies_are_refused(server: Server, student: Learner) -> None:
    answer = student.http.post(f"{SLUG}/rest/events", content=b"request=" + b"x" * (2 << 20),
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code in (400, 413)


def test_a_slow_half_request_does_not_stop_others(server: Server, student: Learner) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST /sample/rest/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nrequest=")
        assert student.get(f"{SLUG}/course").status_code == 200


@SETTINGS
@given(depth=st.integers(80, 5000), constant=st.sampled_from(["NaN", "Infinity", "-Infinity", "1"]))
def test_deep_or_non_finite_json_is_refused_not_stored(server: Server, student: Learner, depth: int,
                                                       constant: str) -> None:
    deep = "[" * depth + constant + "]" * depth
    page = student.get(f"{SLUG}/assessment?name=13")  # the sample's assessment
    token = _assessment_token_or_none(page.text)
    assert token is not None, page.text[:300]
    answer = student.http.post(f"{SLUG}/answer", data={"assessment_type": "13", "score": "50",
                                                       "answers": deep, "xsrf_token": token})
    from courseport.server.web.forms import MAX_POSTED_DEPTH

    assert answer.status_code == (200 if depth <= MAX_POSTED_DEPTH and constant == "1" else 400)
    event = json.dumps({"source": "enter-page", "payload": json.dumps({"x": None})[:-1] + ', "deep": ' + deep + "}",
                        "xsrf_token": event_token(student.get(f"{SLUG}/unit?unit=1").text)})
    assert student.post(f"{SLUG}/rest/events", {"request": event}).status_code in (200, 400)
    for score in ("nan", "inf", "-inf", "1e999", "", "x"):
        assert student.http.post(f"{SLUG}/answer", data={"assessment_type": "13", "score": score, "answers": "{}",
                                                         "xsrf_token": token}).status_code == (200 if score == "" else 400)


def _assessment_token_or_none(page: str) -> str | None:
    found = re.search(r'data-xsrf-token="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def test_dot_segments_in_asset_paths_never_leave_the_course(server: Server) -> None:
    for path in ("/sample/assets/../course.yaml", "/sample/assets/%2e%2e/course.yaml",
                 "/sample/assets//etc/passwd", "/sample/assets/img/%00.png"):
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        status = int(reply.split(b" ", 2)[1])
        assert status in (400, 404), (path, reply[:200])
        assert b"title:" not in reply
