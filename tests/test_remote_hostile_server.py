"""A server that is not courseport's, or a broken one: the client says so in one line, never a traceback.

A small HTTP server on 127.0.0.1 answers each API path with what a test
gives it (generated JSON of any shape, broken export streams, bytes that
are not UTF-8); every etl mode must then end in a UserError.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import etl

GOOD_SITE = {"app_id": "courseport", "api_version": 1, "courses": []}
GOOD_COURSE = {"slug": "/sample", "raw": "course:/sample::ns_sample", "namespace": "ns_sample",
               "version": "1.3", "title": "Sample", "editable": True}


class Bogus:
    """What the fake server answers: path (without the query) -> (status, body bytes)."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, bytes]] = {}

    def set(self, path: str, body: object, status: int = 200) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answers[path] = (status, data)


@pytest.fixture(scope="module")
def bogus() -> Iterator[tuple[Bogus, int]]:
    state = Bogus()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status, body = state.answers.get(self.path.split("?")[0], (404, b'{"error": "no such thing"}'))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSEPORT_EMAIL", "a@example.com")
    monkeypatch.setenv("COURSEPORT_APP_PASSWORD", "x" * 24)


def run_all_modes(port: int, where: Path) -> None:
    """Every etl mode against the fake server: each succeeds or raises a UserError."""
    from courseport.errors import UserError

    archive = where / "a.zip"
    for argv in (
        ("download", "datastore", "/sample", "localhost", "--port", str(port), "--archive_path", archive,
         "--force_overwrite"),
        ("download", "course", "/sample", "localhost", "--port", str(port), "--archive_path", archive,
         "--force_overwrite"),
        ("delete", "datastore", "/sample", "localhost", "--port", str(port)),
        ("run", "courseport.jobs.examples.StoreStats", "/sample", "localhost", "--port", str(port)),
    ):
        try:
            etl(*argv, stdin="YES, DELETE\n")
        except UserError as exc:
            assert "\n" not in str(exc) and str(exc)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(site=_json)
def test_any_site_answer(bogus: tuple[Bogus, int], tmp_path: Path, site: object) -> None:
    state, port = bogus
    state.answers.clear()
    state.set("/api/v1/site", site)
    run_all_modes(port, tmp_path)


_STARTS = [b'!{"changes": 1}', b'!{"kind": "Student", "count": 1}']


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(course=GOOD_COURSE, kinds=None, changes={"changes": 1}, stream=b"", lines=_STARTS + [b"\xff\xfe"])
@example(course=GOOD_COURSE, kinds=None, changes={"changes": 1}, stream=b"", lines=_STARTS + [b"!not json"])
@example(course=GOOD_COURSE, kinds=None, changes={"changes": 1}, stream=b"", lines=_STARTS + [b"!7"])
@example(course=GOOD_COURSE, kinds=None, changes={"changes": 1}, stream=b"", lines=[b'!{"changes": 1}', b"!{}"])
@example(course=GOOD_COURSE, kinds={"kinds": [1]}, changes=None, stream=b"", lines=[])
@example(course={"slug": 1}, kinds=None, changes=None, stream=b"", lines=[])
@given(course=_json | st.just(GOOD_COURSE), kinds=_json, changes=_json, stream=st.binary(max_size=200),
       lines=st.lists(st.sampled_from([
           b'!{"changes": 1}', b'!{"kind": "Student", "count": 1}', b'!{"cursor": null}', b'!{"end": true}',
           b'!{"error": "broken"}', b'{"key.name": "x"}', b"!not json", b"\xff\xfe", b"!{}", b"!7"]), max_size=6))
def test_any_answer_after_a_good_site(bogus: tuple[Bogus, int], tmp_path: Path, course: object, kinds: object,
                                      changes: object, stream: bytes, lines: list[bytes]) -> None:
    state, port = bogus
    state.answers.clear()
    state.set("/api/v1/site", GOOD_SITE)
    state.set("/api/v1/course", course)
    state.set("/api/v1/kinds", {"kinds": {"Student": 1}} if kinds is None else kinds)
    state.set("/api/v1/changes", changes)
    state.set("/api/v1/export", b"\n".join(lines) + b"\n" + stream)
    state.set("/api/v1/files", {"files": []})
    state.set("/api/v1/leases", {"lease": "x", "seconds": 120}, status=201)
    state.set("/api/v1/query", {"keys": [], "cursor": None})
    run_all_modes(port, tmp_path)


def test_a_web_server_that_is_not_courseport(bogus: tuple[Bogus, int], tmp_path: Path) -> None:
    from courseport.errors import UserError

    state, port = bogus
    state.answers.clear()
    state.set("/api/v1/site", b"<html>hello</html>")
    with pytest.raises(UserError, match="not JSON|not as a courseport server"):
        etl("download", "datastore", "/sample", "localhost", "--port", str(port), "--archive_path", tmp_path / "a.zip")
