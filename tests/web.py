"""A learner in tests: an HTTP client with its own cookies, signing up and
using a real ``courseport serve`` the way a browser without JavaScript does,
plus what the page's script would post (events, assessment answers)."""

from __future__ import annotations

import contextlib
import html
import json
import re
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx

from conftest import cli_at, require_fixtures
from copies import StoreCopy
from servers import ADMIN, ADMIN_PASSWORD, Server, start_server

PASSWORD = "learner password 1"
LIVE_COURSE = "live_sample/course_no_static_files.zip"
_TOKEN = re.compile(r'name="xsrf_token" value="([^"]*)"')
_EVENT_TOKEN = re.compile(r"var eventXsrfToken = '([^']*)'")
_ASSESSMENT_TOKEN = re.compile(r'data-xsrf-token="([^"]*)"')


def form_token(page: str, action: str | None = None) -> str:
    """The xsrf_token of the page's form posting to ``action`` (default: the last form's)."""
    forms = re.findall(r'<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>', page, re.DOTALL)
    for target, body in reversed(forms):
        found = _TOKEN.search(body)
        if found and (action is None or target == action):
            return html.unescape(found.group(1))
    raise AssertionError(f"no form to {action!r} with an xsrf_token in the page: {page[:300]}")


def event_token(page: str) -> str:
    found = _EVENT_TOKEN.search(page)
    assert found, "no eventXsrfToken in the page"
    return found.group(1)


def assessment_token(page: str) -> str:
    found = _ASSESSMENT_TOKEN.search(page)
    assert found, "no assessment token in the page"
    return html.unescape(found.group(1))


class Learner:
    """One person's browser session against ``base`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, base: str, email: str, *, user_agent: str = "courseport-tests/1.0") -> None:
        self.base = base
        self.email = email
        self.http = httpx.Client(base_url=base, follow_redirects=False, timeout=30,
                                 headers={"User-Agent": user_agent, "Accept-Language": "en-US,en;q=0.8"})

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, path: str, data: Any, **kwargs: Any) -> httpx.Response:
        """A form post; ``data`` may be a list of pairs (repeated names, in order)."""
        pairs = list(data.items()) if isinstance(data, dict) else list(data)
        return self.http.post(path, content=urllib.parse.urlencode(pairs).encode(),
                              headers={"Content-Type": "application/x-www-form-urlencoded"}, **kwargs)

    def sign_up(self, password: str = PASSWORD) -> httpx.Response:
        page = self.get("/accounts/signup").text
        return self.post("/accounts/signup", {"xsrf_token": form_token(page), "email": self.email,
                                              "password": password, "continue": "/"})

    def sign_in(self, password: str = PASSWORD) -> httpx.Response:
        page = self.get("/accounts/signin").text
        return self.post("/accounts/signin", {"xsrf_token": form_token(page), "email": self.email,
                                              "password": password, "continue": "/"})

    def register(self, slug: str, name: str, extra: list[tuple[str, str]] | None = None) -> httpx.Response:
        page = self.get(f"{slug}/register")
        assert page.status_code == 200, (page.status_code, page.headers.get("location"))
        fields = [("xsrf_token", form_token(page.text)), ("form01", name), *(extra or [])]
        return self.post(f"{slug}/register", fields)

    def event(self, slug: str, source: str, payload: dict, *, token: str, location: str) -> httpx.Response:
        body = dict(payload)
        body.setdefault("location", location)
        body.setdefault("loc", {"page_locale": "en_US"})
        request = {"source": source, "payload": json.dumps(body), "xsrf_token": token}
        return self.post(f"{slug}/rest/events", {"request": json.dumps(request)})

    def submit(self, slug: str, unit_id: str, score: str, answers: Any, *, token: str) -> httpx.Response:
        return self.post(f"{slug}/answer", {"assessment_type": unit_id, "score": score,
                                            "answers": json.dumps(answers), "xsrf_token": token})


def signed_in_admin(server: Server) -> Learner:
    """The site's admin (made by ``course_server``), signed in through the form."""
    person = Learner(server.url, ADMIN)
    assert person.sign_in(ADMIN_PASSWORD).status_code == 302
    return person


def install_live_sample(home: Path, slug: str = "/cbsample", availability: str = "registration_optional",
                        datastore: str = "local", env: dict[str, str] | None = None) -> None:
    """Course Builder's own sample course (live_sample), uploaded into a new course at ``slug``."""
    archive = require_fixtures() / LIVE_COURSE
    store = ("--datastore", datastore)
    for args in (("courses", "add", slug, *store),
                 ("upload", "course", slug, datastore, "--archive_path", str(archive), "--force_overwrite"),
                 ("settings", "set", "--course", slug, "availability", availability, *store),
                 ("settings", "set", "record_events", "on", *store)):
        proc = cli_at(home, *args, extra_env=env)
        assert proc.returncode == 0, (args, proc.stderr)


@contextlib.contextmanager
def course_server(where: Path, *, live_sample: str | None = "/cbsample",
                  availability: str = "registration_optional",
                  prepare: Callable[[Path], None] | None = None, datastore: str = "local",
                  env: dict[str, str] | None = None) -> Iterator[Server]:
    """A server on a new store (in ``where``/home, or ``datastore`` with ``env``): ``courseport
    init``, Course Builder's sample uploaded at ``live_sample`` (unless None) with events on,
    then ``prepare(home)``."""
    home = where / "home"
    home.mkdir()
    assert cli_at(home, "init", "--datastore", datastore, extra_env=env).returncode == 0
    if live_sample is not None:
        install_live_sample(home, live_sample, availability, datastore=datastore, env=env)
    if prepare is not None:
        prepare(home)
    running = start_server(home, datastore=datastore, env=env)
    running.extra.update(datastore=datastore, env=env or {})
    try:
        yield running
    finally:
        running.stop()


def server_store(server: Server) -> Any:
    """The store a ``course_server`` serves, opened beside it (close it after)."""
    return StoreCopy(server.home, server.extra.get("datastore", "local"), server.extra.get("env", {})).open()


def home_store(home: Path) -> Any:
    """The store under a test's COURSEPORT_HOME, opened beside its server (close it after)."""
    from courseport.datastore import open_store

    return open_store(f"sqlite:///{home / 'courseport.db'}", create=False)
