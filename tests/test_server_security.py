"""The security of ``courseport serve``'s remote API, against a real server process.

Every test talks to a server on 127.0.0.1 (one, shared by the module, unless
the test needs its own options): with httpx for raw requests, and with the
real command line where a user would use it. Sign-in (HTTP Basic with an
admin's email and an app-specific password; never a sign-in password),
admins only, throttling and lock-out of one account, no credential in any
log, output or store, no plain http off loopback, size limits, hostile
bodies and query strings (hypothesis), the accounts' namespace never served
nor archived, TLS, and the OpenAPI document.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import archive_members, assert_one_line_error, cli_at, db_path, make_store_template
from copies import serving_copy
from servers import ADMIN, ADMIN_PASSWORD, Server, add_admin, free_port, start_server

API = "/api/v1"
ACCOUNTS_NAMESPACE = "_courseport_accounts"
STUDENTS = 5
MIB = 1 << 20
#: every status a hostile request may get: never a 5xx
ALLOWED = {200, 201, 400, 403, 404, 409, 413}


# --- servers and clients -----------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store_template(tmp_path_factory.mktemp("security_template") / "home", students=STUDENTS)


@pytest.fixture(scope="module")
def server(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # with the access log on: the tests check that no line of it carries a secret
    with serving_copy(template, tmp_path_factory.mktemp("secured"), "--access_log") as running:
        yield running


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[httpx.Client]:
    """Raw requests to the API, signed in as the admin."""
    with httpx.Client(base_url=server.url + API, auth=(ADMIN, server.app_password), timeout=60) as client:
        yield client


def compact(token: str) -> str:
    return "".join(token.split())


def json_error(response: httpx.Response, status: int) -> str:
    """The response is ``status`` with a JSON ``{"error": "..."}``; returns the message."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert isinstance(body["error"], str) and body["error"].strip(), body
    return body["error"]


def site(server: Server, auth: Any = None, **kwargs: Any) -> httpx.Response:
    return httpx.get(f"{server.url}{API}/site", auth=auth, timeout=30, **kwargs)


def signed_in(server: Server) -> None:
    """The admin's own app password works (which also ends its run of failures)."""
    response = site(server, (ADMIN, server.app_password))
    assert response.status_code == 200, response.text
    assert response.json()["app_id"]


def log_tail(server: Server, since: int) -> str:
    return server.log.read_bytes()[since:].decode("utf-8", errors="replace")


def log_size(server: Server) -> int:
    return server.log.stat().st_size


def assert_healthy_log(text: str) -> None:
    assert "Traceback" not in text, text[-3000:]
    assert not re.search(r'" 5\d\d\b', text), text[-3000:]


# --- 1. who may sign in ---------------------------------------------------------------------


def test_no_credentials_is_401_with_a_challenge(server: Server) -> None:
    response = site(server)
    assert "sign in" in json_error(response, 401)
    assert response.headers["www-authenticate"].lower().startswith('basic realm="courseport"')
    token = compact(server.app_password)
    for header in (f"Bearer {token}", f"Basic {ADMIN}:{token}",  # not Basic, not base64
                   "Basic " + base64.b64encode(f"{ADMIN}{token}".encode()).decode(),  # no colon
                   "Basic", "Basic !!!!"):
        response = site(server, headers={"Authorization": header})
        json_error(response, 401)
        assert "www-authenticate" in response.headers
    signed_in(server)


def test_a_wrong_app_password_is_401(server: Server) -> None:
    token = compact(server.app_password)
    one_off = token[:-1] + ("a" if token[-1] != "a" else "b")
    for wrong in ("abcd efgh ijkm npqr stuv wxyz", one_off, token[:-1], token + "a", ""):
        response = site(server, (ADMIN, wrong))
        assert "wrong email or app-specific password" in json_error(response, 401)
        assert response.headers["www-authenticate"].lower().startswith("basic")
        signed_in(server)  # the spaced form the CLI printed; never more than one failure in a row
    assert site(server, (ADMIN, token)).status_code == 200  # spaces are optional


def test_an_unknown_email_is_401(server: Server) -> None:
    for email in ("nobody@example.com", "not an email", "", "admin@example.com.evil"):
        json_error(site(server, (email, server.app_password)), 401)
    signed_in(server)


def test_a_revoked_app_password_is_401(server: Server) -> None:
    made = server.cli("app-password", "create", "--email", ADMIN, "--name", "to revoke")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    assert site(server, (ADMIN, token)).status_code == 200
    listed = server.cli("app-password", "list", "--email", ADMIN)
    assert listed.returncode == 0, listed.stderr
    ids = [line.split("\t")[0] for line in listed.stdout.splitlines() if line.split("\t")[2] == "to revoke"]
    assert len(ids) == 1, listed.stdout
    revoked = server.cli("app-password", "revoke", "--email", ADMIN, ids[0])
    assert revoked.returncode == 0 and ids[0] in revoked.stdout, revoked.stderr
    for form in (token, compact(token)):
        assert "wrong email or app-specific password" in json_error(site(server, (ADMIN, form)), 401)
    signed_in(server)  # the admin's other app password is untouched


def test_the_sign_in_password_is_refused(server: Server) -> None:
    from courseport.datastore import SqliteBackend
    from courseport.server.accounts import Accounts

    with SqliteBackend(db_path(server.home), create=False) as store:  # it is the admin's password
        assert Accounts(store).check_sign_in(ADMIN, ADMIN_PASSWORD) is not None
    response = site(server, (ADMIN, ADMIN_PASSWORD))
    assert "sign-in password is not accepted" in json_error(response, 401)
    signed_in(server)


# --- 2. admins only -----------------------------------------------------------------------------


def test_a_non_admin_is_403(server: Server) -> None:
    email = "learner@example.com"
    token = add_admin(server.home, email, admin=False)
    assert "not an admin" in json_error(site(server, (email, token)), 403)
    response = httpx.post(f"{server.url}{API}/courses", json={"prefix": "/by_learner"}, auth=(email, token))
    json_error(response, 403)
    lookup = httpx.post(f"{server.url}{API}/lookup", auth=(email, token),
                        json={"keys": [{"ns": "", "path": [["Student", "x"]]}]})
    json_error(lookup, 403)
    course = httpx.get(f"{server.url}{API}/course", params={"prefix": "/by_learner"},
                       auth=(ADMIN, server.app_password))
    json_error(course, 404)  # the learner's request created nothing


# --- 3. throttling and lock-out -----------------------------------------------------------------


def test_repeated_failures_are_slowed_then_lock_the_account(server: Server) -> None:
    email = "throttled@example.com"  # its own account: the admin's is not locked for the other tests
    token = add_admin(server.home, email)
    assert site(server, (email, token)).status_code == 200
    wrong = (email, "abcd efgh ijkm npqr stuv wxyz")
    took = []
    for _ in range(5):
        start = time.monotonic()
        json_error(site(server, wrong), 401)
        took.append(time.monotonic() - start)
    assert took[0] < 0.4 and took[4] >= 0.4, took
    assert site(server, (email, token)).status_code == 200  # five did not lock it; this ends the run
    start = time.monotonic()
    with ThreadPoolExecutor(10) as pool:  # ten at once: each one counts
        statuses = list(pool.map(lambda _: site(server, wrong).status_code, range(10)))
    assert statuses == [401] * 10
    assert time.monotonic() - start >= 0.4
    response = site(server, (email, token))  # the right password, now too late
    assert "too many failed sign-ins" in json_error(response, 429)
    assert 0 < int(response.headers["retry-after"]) <= 15 * 60
    json_error(site(server, wrong), 429)
    json_error(site(server, (email, token)), 429)  # a locked account stays locked
    signed_in(server)  # another account is not affected


# --- 4. no credential where it should not be -------------------------------------------------


def secrets_of(server: Server) -> dict[str, bytes]:
    token = compact(server.app_password)
    found = {"app password": token.encode(), "spaced app password": server.app_password.encode(),
             "sign-in password": ADMIN_PASSWORD.encode()}
    for name, secret in list(found.items()):
        found[f"{name} as Basic"] = base64.b64encode(f"{ADMIN}:".encode() + secret)
    return found


def assert_secret_free(text: str | bytes, secrets: dict[str, bytes], where: str) -> None:
    data = text.encode("utf-8", errors="replace") if isinstance(text, str) else text
    for name, secret in secrets.items():
        assert secret not in data, f"the {name} is in {where}"
        assert secret.lower() not in data.lower(), f"the {name} is in {where}"


def test_no_credential_in_logs_output_or_store(server: Server, tmp_path: Path) -> None:
    secrets = secrets_of(server)
    token = compact(server.app_password)
    # good requests, both forms
    for auth in ((ADMIN, server.app_password), (ADMIN, token)):
        assert site(server, auth).status_code == 200
    # bad ones: the sign-in password, another email, headers that are not Basic or not base64
    json_error(site(server, (ADMIN, ADMIN_PASSWORD)), 401)
    json_error(site(server, ("someone@example.com", server.app_password)), 401)
    for header in (f"Bearer {token}", f"Basic {ADMIN}:{token}", f"Basic {ADMIN}:{ADMIN_PASSWORD}"):
        json_error(site(server, headers={"Authorization": header}), 401)
    signed_in(server)
    # the command line, through the server, with its most talkative log
    ran = [server.cli("download", "datastore", "/sample", "localhost", "--port", server.port,
                      "--archive_path", tmp_path / "a.zip", "--log_level", "DEBUG")]
    assert ran[0].returncode == 0, ran[0].stderr
    assert "DEBUG" in ran[0].stderr  # it was talkative
    for env in ({"COURSEPORT_APP_PASSWORD": ADMIN_PASSWORD},  # refused: the sign-in password
                {"COURSEPORT_EMAIL": "someone@example.com"}):  # refused: the app password, for nobody
        proc = server.cli("download", "datastore", "/sample", "localhost", "--port", server.port,
                          "--archive_path", tmp_path / "b.zip", "--log_level", "DEBUG", extra_env=env)
        assert proc.returncode == 1 and "refused (401)" in proc.stderr, proc.stderr
        ran.append(proc)
    signed_in(server)
    for proc in ran:
        assert_secret_free(proc.stdout, secrets, "the client's stdout")
        assert_secret_free(proc.stderr, secrets, "the client's stderr")
    time.sleep(0.2)  # the access log is written after each response
    log = server.log_text()
    requests = [line for line in log.splitlines() if re.search(r'"(GET|POST|PUT|DELETE) /', line)]
    assert any("/api/v1/export" in line for line in requests), log[-2000:]  # the CLI's, logged
    for line in requests:
        assert_secret_free(line, secrets, f"the access log line {line!r}")
    assert_secret_free(log, secrets, "the server's log")
    for path in (db_path(server.home), Path(f"{db_path(server.home)}-wal")):
        if path.exists():
            assert_secret_free(path.read_bytes(), secrets, path.name)


# --- 5. no plain http off loopback ------------------------------------------------------------


def lan_address() -> str | None:
    """This machine's IPv4 address off loopback, if it has one."""
    for probe in ("192.0.2.1", "10.255.255.255", "8.8.8.8"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect((probe, 9))  # UDP: nothing is sent
                address = sock.getsockname()[0]
            except OSError:
                continue
        if address and not address.startswith("127.") and address != "0.0.0.0":
            return address
    return None


@pytest.fixture(scope="module")
def lan() -> str:
    address = lan_address()
    if address is None:
        pytest.skip("this machine has no IPv4 address off loopback")
    return address


def test_plain_http_off_loopback_is_refused(server: Server, lan: str) -> None:
    auth = (ADMIN, server.app_password)
    strict = start_server(server.home, host="0.0.0.0", app_password=server.app_password)
    try:
        response = httpx.get(f"http://{lan}:{strict.port}{API}/site", auth=auth, timeout=30)
        assert "https" in json_error(response, 403)
        response = httpx.post(f"http://{lan}:{strict.port}{API}/lookup", auth=auth, timeout=30,
                              json={"keys": [{"ns": "", "path": [["Student", "x"]]}]})
        assert "https" in json_error(response, 403)
        assert httpx.get(f"http://127.0.0.1:{strict.port}{API}/site", auth=auth).status_code == 200
    finally:
        strict.stop()
    trusting = start_server(server.home, "--allow_insecure_http", host="0.0.0.0", app_password=server.app_password)
    try:
        response = httpx.get(f"http://{lan}:{trusting.port}{API}/site", auth=auth, timeout=30)
        assert response.status_code == 200, response.text
    finally:
        trusting.stop()


def test_the_cli_never_sends_credentials_over_plain_http_off_loopback(server: Server, lan: str,
                                                                       tmp_path: Path) -> None:
    received: list[bytes] = []
    done = threading.Event()

    def listen(listener: socket.socket) -> None:  # what would receive them: keeps what it is sent
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    received.append(conn.recv(65536))
                except OSError:
                    received.append(b"")

    with socket.socket() as listener:
        listener.bind((lan, 0))
        listener.listen(4)
        listener.settimeout(0.1)
        thread = threading.Thread(target=listen, args=(listener,), daemon=True)
        thread.start()
        try:
            proc = server.cli("download", "datastore", "/sample", f"http://{lan}:{listener.getsockname()[1]}",
                              "--archive_path", tmp_path / "a.zip")
        finally:
            done.set()
            thread.join()
    assert received == [], received  # not even a connection
    line = assert_one_line_error(proc)
    assert "plain http" in line and "https" in line, line
    assert not (tmp_path / "a.zip").exists()


# --- 6. size limits ---------------------------------------------------------------------------


def _key(name: str, namespace: str = "fuzz") -> dict:
    return {"ns": namespace, "path": [["Fuzz", name]]}


def _line(name: str, data: dict) -> bytes:
    return json.dumps({"k": _key(name), "s": {}, "d": data}).encode() + b"\n"


def _chunked(data: bytes, size: int = MIB) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def _big_put() -> bytes:
    """Just over 64 MiB of small, valid entities (fewer than 20,000 of them)."""
    line = _line("big", {"x": "y" * 4000})
    body = line * (64 * MIB // len(line) + 1)
    assert 64 * MIB < len(body) < 65 * MIB and body.count(b"\n") < 20_000
    return body


LIMITS: dict[str, tuple[str, str, Callable[[], Any], bool]] = {
    # name: (method, path, the body (JSON or bytes), whether to stream it without a Content-Length)
    "json body": ("POST", "/lookup", lambda: b'{"keys": [' + b" " * (8 * MIB) + b"]}", False),
    "json body streamed": ("POST", "/query", lambda: b'{"kind": "Fuzz", "x": "' + b"x" * (8 * MIB) + b'"}', True),
    "put body": ("POST", "/put", _big_put, False),
    "put body streamed": ("POST", "/put", _big_put, True),
    "entity line": ("POST", "/put", lambda: _line("one", {"x": "y" * MIB}), False),
    "keys": ("POST", "/lookup", lambda: {"keys": [_key(f"k{n}") for n in range(20_001)]}, False),
    "deleted keys": ("POST", "/delete", lambda: {"keys": [_key(f"k{n}") for n in range(20_001)]}, False),
    "entities": ("POST", "/put", lambda: b"".join(_line(f"e{n}", {}) for n in range(20_001)), False),
    "page_size": ("POST", "/export", lambda: {"kinds": ["Student"], "namespace": "ns_sample", "page_size": 20_001},
                  False),
    "limit": ("POST", "/query", lambda: {"kind": "Student", "namespace": "ns_sample", "limit": 20_001}, False),
}


@pytest.mark.parametrize("limit", list(LIMITS))
def test_over_a_limit_is_413_and_the_server_keeps_serving(server: Server, admin: httpx.Client,
                                                          limit: str) -> None:
    method, path, make_body, streamed = LIMITS[limit]
    body = make_body()
    since = log_size(server)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = admin.request(method, path, content=_chunked(content) if streamed else content,
                             headers={"Content-Type": "application/json"})
    message = json_error(response, 413)
    assert "limit" in message or "at most" in message, message
    assert admin.get("/site").status_code == 200
    assert admin.post("/query", json={"kind": "Fuzz", "namespace": "fuzz", "limit": 20_000}).status_code == 200
    # nothing of an over-limit batch was written
    found = admin.post("/lookup", json={"keys": [_key("big"), _key("one"), _key("e0"), _key("e20000")],
                                        "keys_only": True})
    assert found.json() == {"found": [False] * 4}
    assert_healthy_log(log_tail(server, since))


def test_at_the_limits_is_fine(admin: httpx.Client) -> None:
    keys = [_key(f"k{n}", "fuzz_at_limit") for n in range(20_000)]
    assert admin.post("/lookup", json={"keys": keys, "keys_only": True}).json()["found"] == [False] * 20_000
    assert admin.post("/query", json={"kind": "Student", "namespace": "ns_sample", "limit": 20_000}).status_code == 200
    line = json.dumps({"k": _key("at_limit", "fuzz_at_limit"), "s": {}, "d": {"x": ""}}).encode()
    line = json.dumps({"k": _key("at_limit", "fuzz_at_limit"), "s": {},
                       "d": {"x": "y" * (MIB - len(line))}}).encode()
    assert len(line) == MIB
    assert admin.post("/put", content=line).status_code == 200
    assert admin.post("/delete", json={"keys": [_key("at_limit", "fuzz_at_limit")]}).status_code == 200


# --- 7. hostile inputs ---------------------------------------------------------------------------

_scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True)
            | st.text(max_size=12))
json_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=10)
_names = st.sampled_from(["a", "b", "c"]) | st.text(max_size=6)
_ids = (st.none() | st.integers(-(2**70), 2**70) | st.integers(-3, 3) | st.text(max_size=12)
        | st.sampled_from(["", "\x00", "\ud800", "a" * 600]) | json_values)
_kinds = st.sampled_from(["Student", "Fuzz", "CourseportAccount", "", "\ud800"]) | st.text(max_size=8) | json_values
_pairs = st.tuples(_kinds, _ids).map(list) | st.lists(_kinds | _ids, max_size=3) | json_values
_any_namespace = (st.sampled_from(["", "fuzz", "ns_sample", ACCOUNTS_NAMESPACE, "\x00", "\ud800"])
                  | st.text(max_size=10) | json_values)


def keys(namespaces: st.SearchStrategy) -> st.SearchStrategy:
    """Key-shaped JSON (often not a key) in one of ``namespaces``."""
    return st.fixed_dictionaries({"ns": namespaces, "path": st.lists(_pairs, max_size=3)})


def fuzz_keys() -> st.SearchStrategy:
    return keys(st.just("fuzz"))


def writes_nothing_outside_fuzz(value: Any) -> bool:
    """A random JSON value that cannot name a key outside the fuzz namespace."""
    text = json.dumps(value)
    return '"path"' not in text


_signature_codes = st.sampled_from(["text", "dt", "date", "bytes", "key", None]) | json_values
_data_values = (json_values | st.sampled_from(["2016-04-06T20:14:27.542076Z", "2016-02-30", "9999-99-99",
                                                "\ud800", "\x00"])
                | st.fixed_dictionaries({"type": st.just("binary"), "encoding": st.just("base64"),
                                         "content": st.text(max_size=12)})
                | fuzz_keys())
wire_lines = st.fixed_dictionaries({
    "k": fuzz_keys(),
    "s": st.dictionaries(_names, _signature_codes | st.lists(_signature_codes, max_size=3), max_size=3) | json_values,
    "d": st.dictionaries(_names, _data_values | st.lists(_data_values, max_size=3), max_size=3) | json_values,
}).map(json.dumps)


def as_json(values: st.SearchStrategy) -> st.SearchStrategy:
    return values.map(lambda value: json.dumps(value).encode())


#: random bytes, and random JSON, that cannot name a key (outside the fuzz namespace)
_noise = (st.binary(max_size=200).filter(lambda data: b"path" not in data)
          | as_json(json_values.filter(writes_nothing_outside_fuzz)))
put_bodies = st.lists(wire_lines, min_size=1, max_size=4).map(lambda lines: "\n".join(lines).encode()) | _noise
delete_bodies = as_json(st.fixed_dictionaries({"keys": st.lists(fuzz_keys(), max_size=4)})) | _noise
allocate_bodies = as_json(st.fixed_dictionaries({}, optional={
    "key": keys(st.sampled_from(["fuzz", ACCOUNTS_NAMESPACE])),
    "count": json_values | st.integers(-2, 1_000_001)})) | _noise
# these only read: keys and namespaces anywhere
lookup_bodies = as_json(st.fixed_dictionaries({"keys": st.lists(keys(_any_namespace) | json_values, max_size=4)},
                                              optional={"keys_only": json_values}) | json_values) | _noise
query_bodies = as_json(st.fixed_dictionaries({}, optional={
    "namespace": _any_namespace, "kind": _kinds, "cursor": json_values | st.text(max_size=40),
    "limit": json_values | st.integers(-2, 30), "keys_only": json_values}) | json_values) | _noise
export_bodies = as_json(st.fixed_dictionaries({}, optional={
    "namespace": _any_namespace, "kinds": st.lists(_kinds, max_size=3) | json_values,
    "cursor": json_values | st.text(max_size=40), "secret": json_values,
    "page_size": json_values | st.integers(-2, 30), "changes": json_values}) | json_values) | _noise

#: bodies that once failed the server (a lone surrogate reached the store: 500), always tried
KNOWN_HOSTILE = {
    "/put": [b'{"k": {"ns": "fuzz", "path": [["\\ud800", null]]}, "s": {}, "d": {}}',
             b'{"k": {"ns": "fuzz", "path": [["Fuzz", "\\udfff"]]}, "s": {}, "d": {"x": "\\ud800"}}',
             b'{"k": {"ns": "\\ud800", "path": [["Fuzz", 1]]}, "s": {}, "d": {}}'],
    "/delete": [b'{"keys": [{"ns": "fuzz", "path": [["\\ud800", 1]]}]}',
                b'{"keys": [{"ns": "fuzz", "path": [["Fuzz", "\\udc80"]]}]}'],
    "/lookup": [b'{"keys": [{"ns": "\\ud800", "path": [["A", 1]]}]}',
                b'{"keys": [{"ns": "", "path": [["A", "\\udfff"]]}], "keys_only": true}'],
    "/query": [b'{"kind": "\\ud800"}', b'{"namespace": "\\ud800", "kind": "Student"}',
               b'{"kind": "A", "limit": NaN}'],
    "/export": [b'{"kinds": ["\\ud800"]}', b'{"namespace": "\\ud800", "kinds": ["Student"]}',
                b'{"kinds": ["Student"], "namespace": "ns_sample", "secret": "\\ud800"}'],
    "/allocate_ids": [b'{"key": {"ns": "fuzz", "path": [["\\ud800", null]]}, "count": 1}',
                      b'{"key": {"ns": "fuzz", "path": [["Fuzz", null]]}, "count": 1e400}'],
}

BODIES = {"/put": put_bodies, "/delete": delete_bodies, "/lookup": lookup_bodies, "/query": query_bodies,
          "/export": export_bodies, "/allocate_ids": allocate_bodies}

_param_names = st.sampled_from(["prefix", "path", "namespace", "all", "draft"]) | st.text(max_size=6)
_param_values = (st.sampled_from(["/sample", "/", "", "course.yaml", "/course.yaml", "../../etc/passwd", "\x00",
                                  ACCOUNTS_NAMESPACE, "ns_sample"]) | st.text(max_size=20))
query_strings = (st.lists(st.tuples(_param_names, _param_values), max_size=4).map(urllib.parse.urlencode)
                 | st.binary(max_size=60).map(lambda data: urllib.parse.quote_from_bytes(data, safe="=&"))
                 | st.text(max_size=30).map(lambda text: urllib.parse.quote(text, safe="=&/?%")))

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _hostile(server: Server, admin: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    since = log_size(server)
    response = admin.request(method, path, **kwargs)
    assert response.status_code in ALLOWED, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        json_error(response, response.status_code)
    if path == "/export" and response.status_code == 200:  # the stream ends with its end, or an error
        last = response.text.splitlines()[-1]
        assert last == '!{"end":true}' or last.startswith('!{"error":'), response.text[-300:]
    assert_healthy_log(log_tail(server, since))
    return response


@pytest.mark.parametrize("path", list(BODIES))
def test_hostile_bodies_never_fail_the_server(server: Server, admin: httpx.Client, path: str) -> None:
    @FUZZ
    @given(body=BODIES[path])
    def run(body: bytes) -> None:
        _hostile(server, admin, "POST", path, content=body, headers={"Content-Type": "application/json"})

    for body in KNOWN_HOSTILE[path] + [b"[" * 100_000, b'{"a": ' * 50_000, b"\xed\xa0\x80", b"\x00" * 100]:
        run = example(body=body)(run)
    run()
    assert admin.get("/site").status_code == 200


@pytest.mark.parametrize("path", ["/course", "/file", "/kinds"])
def test_hostile_query_strings_never_fail_the_server(server: Server, admin: httpx.Client, path: str) -> None:
    @FUZZ
    @given(query=query_strings)
    def run(query: str) -> None:
        _hostile(server, admin, "GET", f"{path}?{query}")

    run()
    assert admin.get("/site").status_code == 200


def test_the_accounts_namespace_is_never_served(server: Server, admin: httpx.Client) -> None:
    key = {"ns": ACCOUNTS_NAMESPACE, "path": [["CourseportAccount", ADMIN]]}
    requests = [
        ("GET", "/kinds", {"params": {"namespace": ACCOUNTS_NAMESPACE}}),
        ("GET", "/changes", {"params": {"namespace": ACCOUNTS_NAMESPACE}}),
        ("POST", "/export", {"json": {"namespace": ACCOUNTS_NAMESPACE, "kinds": ["CourseportAccount"]}}),
        ("POST", "/query", {"json": {"namespace": ACCOUNTS_NAMESPACE, "kind": "CourseportAccount"}}),
        ("POST", "/query", {"json": {"namespace": ACCOUNTS_NAMESPACE, "kind": "CourseportAppPassword",
                                     "keys_only": True}}),
        ("POST", "/lookup", {"json": {"keys": [key]}}),
        ("POST", "/lookup", {"json": {"keys": [_key("x"), key], "keys_only": True}}),
        ("POST", "/delete", {"json": {"keys": [key]}}),
        ("POST", "/allocate_ids", {"json": {"key": {"ns": ACCOUNTS_NAMESPACE, "path": [["X", None]]}, "count": 1}}),
        ("POST", "/put", {"content": json.dumps({"k": key, "s": {}, "d": {"email": ADMIN, "admin": True}}).encode()}),
        ("POST", "/put", {"content": _line("ok", {}) + json.dumps(
            {"k": {"ns": ACCOUNTS_NAMESPACE, "path": [["CourseportAccount", "evil@example.com"]]}, "s": {},
             "d": {"email": "evil@example.com", "admin": True}}).encode()}),
    ]
    for method, path, kwargs in requests:
        message = json_error(admin.request(method, path, **kwargs), 403)
        assert ACCOUNTS_NAMESPACE in message, message
    assert admin.post("/lookup", json={"keys": [_key("ok")], "keys_only": True}).json() == {"found": [False]}
    from courseport.datastore import Key, SqliteBackend

    with SqliteBackend(db_path(server.home), create=False) as store:
        assert store.get(Key("CourseportAccount", "evil@example.com", namespace=ACCOUNTS_NAMESPACE)) is None
        assert store.get(Key("CourseportAccount", ADMIN, namespace=ACCOUNTS_NAMESPACE))["admin"] is True


# --- 8. accounts never in an archive -------------------------------------------------------------


def test_accounts_are_in_no_archive(server: Server, admin: httpx.Client, tmp_path: Path) -> None:
    from courseport.courses.rules import parse_rule
    from courseport.courses.site import Site
    from courseport.datastore import SqliteBackend

    with SqliteBackend(db_path(server.home), create=False) as store:  # a course in the default namespace
        courses = Site(store)
        if all(rule.slug != "/root" for rule in courses.rules()):
            courses.save_rules(courses.rules() + [parse_rule("course:/root::")])
    written = admin.put("/file", params={"prefix": "/root", "path": "/assets/hello.txt"}, content=b"hello")
    assert written.status_code == 200, written.text
    assert admin.post("/lookup", json={"keys": [{"ns": ACCOUNTS_NAMESPACE, "path": [["CourseportAccount", ADMIN]]}]}
                      ).status_code == 403
    token = compact(server.app_password)
    forbidden = [b"scrypt$", token.encode(), server.app_password.encode(), ADMIN.encode()]
    archives = []
    for mode in ("datastore", "course"):
        for target, run in ((["local"], lambda *a: cli_at(server.home, *a)),
                            (["localhost", "--port", str(server.port)], server.cli)):
            archive = tmp_path / f"{mode}-{target[0]}.zip"
            proc = run("download", mode, "/root", *target, "--archive_path", archive)
            assert proc.returncode == 0, proc.stderr
            archives.append(archive)
    for archive in archives:
        members = archive_members(archive)
        assert members, archive
        kinds = [name for name in members if name.startswith("models/")]
        if "datastore" in archive.name:
            assert kinds, members.keys()  # the default namespace's own kinds are there
        for name, data in members.items():
            assert "courseport" not in name.lower(), (archive.name, name)
            for secret in forbidden:
                assert secret not in data, (archive.name, name, secret)
        raw = archive.read_bytes()
        for secret in forbidden:
            assert secret not in raw, (archive.name, secret)
    assert archive_members(tmp_path / "course-local.zip")["files/assets/hello.txt"] == b"hello"
    assert archive_members(tmp_path / "datastore-local.zip") == archive_members(tmp_path / "datastore-localhost.zip")


def test_no_course_can_use_the_accounts_namespace(server: Server) -> None:
    from courseport.courses.rules import CourseRuleError, parse_rule, parse_rules

    for rule in (f"course:/x::{ACCOUNTS_NAMESPACE}", f"course:/x:/folder:{ACCOUNTS_NAMESPACE}"):
        with pytest.raises(CourseRuleError, match=ACCOUNTS_NAMESPACE):
            parse_rule(rule)
    with pytest.raises(CourseRuleError, match=ACCOUNTS_NAMESPACE):
        parse_rules(f"course:/sample::ns_sample, course:/x::{ACCOUNTS_NAMESPACE}")
    assert parse_rule("course:/x::courseport_accounts").namespace == "courseport_accounts"


# --- 9. TLS -------------------------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test CA")
    where = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=courseport test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=where)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=where)
    (where / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=where)
    return {"ca": where / "ca.pem", "cert": where / "server.pem", "key": where / "server.key"}


def test_https_with_a_ca_file(server: Server, certificates: dict[str, Path], tmp_path: Path) -> None:
    ca = ssl.create_default_context(cafile=str(certificates["ca"]))
    secure = start_server(server.home, "--certfile", str(certificates["cert"]), "--keyfile", str(certificates["key"]),
                          app_password=server.app_password, scheme="https", verify=ca)
    try:
        assert httpx.get(f"https://localhost:{secure.port}{API}/site", auth=(ADMIN, server.app_password),
                         verify=ca).status_code == 200
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):  # without the CA
            httpx.get(f"https://localhost:{secure.port}{API}/site")
        archive = tmp_path / "a.zip"
        proc = secure.cli("download", "datastore", "/sample", f"https://localhost:{secure.port}",
                          "--ca_file", certificates["ca"], "--archive_path", archive)
        assert proc.returncode == 0, proc.stderr
        assert "models/Student.json" in archive_members(archive)
        proc = secure.cli("download", "datastore", "/sample", f"https://localhost:{secure.port}",
                          "--archive_path", tmp_path / "b.zip")
        line = assert_one_line_error(proc)
        assert "--ca_file" in line, line
        assert not (tmp_path / "b.zip").exists()
    finally:
        secure.stop()


@pytest.mark.parametrize("given_", ["--certfile", "--keyfile"])
def test_one_of_certfile_and_keyfile_is_refused(server: Server, certificates: dict[str, Path], given_: str) -> None:
    path = certificates["cert" if given_ == "--certfile" else "key"]
    proc = cli_at(server.home, "serve", "--port", free_port(), given_, path, timeout=30)
    line = assert_one_line_error(proc)
    assert "--certfile" in line and "--keyfile" in line, line


# --- 10. the OpenAPI document ----------------------------------------------------------------


def test_the_openapi_document_names_every_route(server: Server, tmp_path: Path) -> None:
    from courseport.datastore import SqliteBackend
    from courseport.server.api import Api
    from courseport.server.auth import AuthPolicy

    response = httpx.get(f"{server.url}{API}/openapi.json")  # no credentials
    assert response.status_code == 200
    document = response.json()
    assert re.fullmatch(r"3\.\d+\.\d+", document["openapi"]), document["openapi"]
    paths = document["paths"]
    with SqliteBackend(tmp_path / "throwaway.db") as store:
        mounts = Api(store, AuthPolicy()).routes()
    served = set()
    assert [mount.path for mount in mounts] == [API]  # every route under the API's one mount
    for route in (route for mount in mounts for route in mount.routes):
        path = API + route.path
        for method in sorted(route.methods - {"HEAD"}):
            served.add((path, method.lower()))
            assert path in paths, f"{path} is not in the OpenAPI document"
            assert method.lower() in paths[path], f"{method} {path} is not in the OpenAPI document"
    assert len(served) >= 19
    documented = {(path, method) for path, ops in paths.items() for method in ops
                  if method in ("get", "put", "post", "delete", "patch")}
    assert documented == served  # and nothing documented that is not served


def test_serve_refuses_an_address_it_cannot_listen_on(server: Server) -> None:
    for args, says in (
        (("--port", str(server.port)), f"cannot listen on 127.0.0.1:{server.port}"),  # in use
        (("--port", "8", "--host", "no.such.host.invalid"), "not an address of this machine"),
        (("--port", "70000"), "--port must be between 1 and 65535"),
        (("--workers", "0"), "--workers must be between 1 and 64"),
    ):
        line = assert_one_line_error(cli_at(server.home, "serve", *args, timeout=30))
        assert says in line, line
