"""RemoteSite: the Site over a courseport server's remote API (HTTP).

One keep-alive connection (httpx) carries every request, signed with an
admin's email and app-specific password (HTTP Basic). A download's rows come
in one streamed response from one snapshot on the server, already encoded as
archive rows (with --privacy applied there). A dropped connection or a 5xx
answer is retried with backoff; a broken stream resumes from its last cursor,
on the condition that the server's data has not changed since.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import inspect
import ipaddress
import json
import logging
import ssl
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence
from urllib.parse import urlsplit

import httpx

from .. import __version__
from .._locks import lock_wait
from ..courses.vfs import FileInfo
from ..datastore import Entity, JsonRow, Key, Page
from ..datastore.client import DatastoreClient
from ..datastore.wire import WireError, decode_line, entity_line, iter_lines, json_row_line, key_from_json, key_to_json
from ..errors import UserError
from .base import CourseInfo, JobCourse, Reading, RowsPage, Site

log = logging.getLogger("courseport.remote")

DEFAULT_PORT = 8081
API = "/api/v1"
#: the API's limits (server/api.py): rows and bytes of one put, keys of one request
MAX_ITEMS = 20_000
MAX_BATCH_BYTES = 32 << 20
RETRIES = 5
#: batches of puts on their way at once
IN_FLIGHT = 2


class RemoteError(UserError):
    """A server that cannot be reached, refuses, or answers what it should not."""


class RemoteCourseNotFound(RemoteError, LookupError):
    pass


_MALFORMED = (KeyError, IndexError, TypeError, AttributeError, ValueError, UnicodeDecodeError)


def _malformed(where: str, exc: BaseException) -> RemoteError:
    return RemoteError(f"{where}: the server's answer is not what a courseport server sends "
                       f"({type(exc).__name__}: {str(exc)[:120]}); is it one, of this version?")


def _checked_answers(cls: type) -> type:
    """Every public method of ``cls`` turns an answer of the wrong shape (a server that
    is not courseport's, or a broken one) into one RemoteError, never a traceback."""
    def guard(method: Callable) -> Callable:
        if inspect.isgeneratorfunction(method):
            @functools.wraps(method)
            def generator(self: Any, *args: Any, **kwargs: Any) -> Any:
                try:
                    yield from method(self, *args, **kwargs)
                except UserError:
                    raise
                except _MALFORMED as exc:
                    raise _malformed(_where(self), exc) from None
            return generator

        @functools.wraps(method)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except UserError:
                raise
            except _MALFORMED as exc:
                raise _malformed(_where(self), exc) from None
        return call

    for name, value in list(vars(cls).items()):
        if callable(value) and not name.startswith("_"):
            setattr(cls, name, guard(value))
    return cls


def _where(obj: Any) -> str:
    for path in ("description", "site.description", "base_url"):
        target = obj
        for part in path.split("."):
            target = getattr(target, part, None)
        if isinstance(target, str):
            return target
    return "the server"


@dataclass(frozen=True)
class Credentials:
    email: str
    password: str  # an app-specific password

    def __repr__(self) -> str:  # never in a log or a traceback
        return f"Credentials(email={self.email!r}, password=...)"


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_remote_server(server: str) -> bool:
    """Whether a server argument names a courseport server (not a store)."""
    return server.startswith(("http://", "https://")) or (
        "://" not in server and server not in ("local",) and bool(server)
    )


def server_url(server: str, port: int = DEFAULT_PORT) -> str:
    """The base URL a server argument names (DESIGN.md, "The server argument").

    ``localhost`` and ``127.0.0.1`` take ``port``; ``localhost:PORT`` its own;
    ``host.name[:PORT]`` is https; ``http(s)://host[:port]`` is as given.
    Plain http to a host off loopback is refused: credentials would cross
    the network in clear.
    """
    if "://" in server:
        parts = urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteError(f"{server}: not a server address; use http(s)://host[:port], host.name or localhost")
        if parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
            raise RemoteError(f"{server}: give the server as scheme://host[:port] only "
                              "(credentials come from COURSEPORT_EMAIL / COURSEPORT_APP_PASSWORD)")
        scheme, host, given = parts.scheme, parts.hostname, parts.port
    else:
        host, sep, port_text = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
        if not sep:
            host = server
        if not host or any(c in host for c in "/?#@ "):
            raise RemoteError(f"{server!r}: not a server address; use localhost[:PORT], host.name or https://host")
        try:
            given = int(port_text) if port_text else None
        except ValueError:
            raise RemoteError(f"{server}: the port {port_text!r} is not a number") from None
        scheme = "http" if is_loopback_host(host) else "https"
        if given is None and scheme == "http":
            given = port
    if given is not None and not 0 < given < 65536:
        raise RemoteError(f"{server}: the port must be between 1 and 65535")
    if scheme == "http" and not is_loopback_host(host):
        raise RemoteError(f"{server}: refusing to send credentials over plain http to another machine; "
                          "use https://")
    netloc = f"[{host}]" if ":" in host else host
    return f"{scheme}://{netloc}{'' if given is None else f':{given}'}"


class _Http:
    """Requests with retries, one-line errors, and no credential in any message."""

    def __init__(self, base_url: str, credentials: Credentials, *, ca_file: str | None, timeout: float) -> None:
        self.base_url = base_url
        self.client = httpx.Client(
            base_url=base_url, auth=httpx.BasicAuth(credentials.email, credentials.password),
            verify=_tls_context(ca_file) if ca_file else True, timeout=httpx.Timeout(timeout, connect=10.0),
            headers={"User-Agent": f"courseport/{__version__}"}, follow_redirects=False,
        )

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201), retries: int = RETRIES,
                **kwargs: Any) -> httpx.Response:
        delay = 0.5
        for attempt in range(retries + 1):
            try:
                response = self.client.request(method, API + path, **kwargs)
            except httpx.TransportError as exc:
                if attempt == retries:
                    again = f" (after {retries} retries)" if retries else ""
                    raise RemoteError(f"{self.base_url}: {_describe(exc)}{again}") from None
                log.warning("%s: %s; retrying in %.1fs", self.base_url, _describe(exc), delay)
            else:
                if response.status_code < 500 or attempt == retries:
                    return self.check(response, ok)
                log.warning("%s answered %d; retrying in %.1fs", self.base_url, response.status_code, delay)
            time.sleep(delay)
            delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise RemoteError(f"{self.base_url}{API}{path}: the server's answer is not JSON") from None

    def check(self, response: httpx.Response, ok: tuple[int, ...]) -> httpx.Response:
        if response.status_code in ok:
            return response
        with contextlib.suppress(httpx.HTTPError):
            response.read()
        try:
            message = response.json().get("error") or response.text[:200]
        except (ValueError, AttributeError):
            message = response.text[:200].strip() or response.reason_phrase
        status = response.status_code
        fix = {
            401: " (set COURSEPORT_EMAIL and COURSEPORT_APP_PASSWORD to an admin's email and an app-specific "
                 "password: 'courseport app-password create' on the server)",
            429: "",
        }.get(status, "")
        error = RemoteCourseNotFound if status == 404 else RemoteError
        raise error(f"{self.base_url} refused ({status}): {message}{fix}")


def _tls_context(ca_file: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (ssl.SSLError, OSError) as exc:
        raise RemoteError(f"--ca_file {ca_file}: not a CA certificate in PEM form ({exc})") from None


def _describe(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return f"its TLS certificate is not trusted ({text}); pass --ca_file with its CA"
        return f"cannot connect ({text}): is 'courseport serve' running there?"
    return text


def _course(value: dict) -> CourseInfo:
    fields = {name: value[name] for name in ("slug", "raw", "namespace", "version", "title")}
    if not all(isinstance(text, str) for text in fields.values()) or not isinstance(value["editable"], bool):
        raise TypeError(f"a course is strings and a boolean, not {value!r:.100}")
    return CourseInfo(**fields, editable=value["editable"])


def wire_lines(rows: Sequence[Entity | JsonRow]) -> list[bytes]:
    """Rows as the API's wire lines, one each (picklable: runs in worker processes)."""
    return [(entity_line(row) if isinstance(row, Entity) else json_row_line(row)).encode("utf-8") + b"\n"
            for row in rows]


@_checked_answers
class RemoteSite(Site):
    """A courseport server, through its remote API."""

    min_batch_size = 2000  # a page or a put is a round trip

    def __init__(self, base_url: str, credentials: Credentials, *, ca_file: str | None = None,
                 timeout: float = 120.0) -> None:
        self.description = base_url
        self.http = _Http(base_url, credentials, ca_file=ca_file, timeout=timeout)
        try:
            info = self.http.json("GET", "/site", retries=0)  # a server that is not there: say so now
        except BaseException:
            self.http.close()
            raise
        if not (isinstance(info, dict) and isinstance(info.get("app_id"), str) and info["app_id"]):
            self.http.close()
            raise RemoteError(f"{base_url} answers, but not as a courseport server does (no app id at "
                              f"{API}/site): is it the right address and port?")
        self.app_id = info["app_id"]
        self._sender = _Sender(self._post_lines)
        self._counts: dict[str, dict[str, int]] = {}

    def course(self, prefix: str) -> CourseInfo:
        return _course(self.http.json("GET", "/course", params={"prefix": prefix}))

    def courses(self) -> list[CourseInfo]:
        return [_course(c) for c in self.http.json("GET", "/site")["courses"]]

    def create_course(self, prefix: str, title: str | None = None) -> CourseInfo:
        return _course(self.http.json("POST", "/courses", json={"prefix": prefix, "title": title}))

    @contextlib.contextmanager
    def reading(self) -> Iterator[Reading]:
        reading = _RemoteReading(self)
        try:
            yield reading
        finally:
            reading.close()

    def _kind_counts(self, namespace: str) -> dict[str, int]:
        counts = self.http.json("GET", "/kinds", params={"namespace": namespace})["kinds"]
        if not all(isinstance(kind, str) and kind and type(count) is int for kind, count in counts.items()):
            raise TypeError(f"kinds are names with counts, not {counts!r:.100}")
        self._counts[namespace] = counts
        return counts

    def kinds(self, namespace: str) -> list[str]:
        return sorted(self._kind_counts(namespace))

    def count(self, kind: str, namespace: str) -> int:
        return int(self._kind_counts(namespace).get(kind, 0))

    def file_paths(self, course: CourseInfo) -> list[str]:
        paths = list(self.http.json("GET", "/files", params={"prefix": course.slug, "all": "1"})["paths"])
        if not all(isinstance(path, str) for path in paths):
            raise TypeError("course file paths are strings")
        return paths

    def write_file(self, course: CourseInfo, path: str, data: bytes, is_draft: bool | None) -> None:
        draft = {True: "true", False: "false", None: "none"}[is_draft]
        self.http.request("PUT", "/file", params={"prefix": course.slug, "path": path, "draft": draft},
                          content=data)

    def exists(self, keys: Sequence[Key]) -> list[bool]:
        found: list[bool] = []
        for chunk in _chunks(list(keys), MAX_ITEMS):
            found.extend(self.http.json("POST", "/lookup", json={
                "keys": [key_to_json(k) for k in chunk], "keys_only": True})["found"])
        return found

    def get_rows(self, keys: Sequence[Key]) -> list | None:
        return self.get_multi(keys)

    def get_multi(self, keys: Sequence[Key]) -> list[Entity | None]:
        found: list[Entity | None] = []
        for chunk in _chunks(list(keys), MAX_ITEMS):
            lines = self.http.json("POST", "/lookup", json={"keys": [key_to_json(k) for k in chunk]})["entities"]
            found.extend(None if line is None else _decode(line) for line in lines)
        return found

    def put(self, entities: Sequence[Entity]) -> None:
        self.write_prepared(self.prepare(entities))
        self.flush()

    def prepare(self, entities: Sequence[Entity]) -> list:
        return wire_lines(entities)

    def prepare_rows(self, rows: Sequence[Entity | JsonRow]) -> list:
        return wire_lines(rows)

    def row_preparer(self) -> Callable[[Sequence[Entity | JsonRow]], list]:
        return wire_lines

    def write_prepared(self, prepared: list) -> None:
        """Post the lines in batches, each while the server still writes the one before."""
        batch: list[bytes] = []
        size = 0
        for line in prepared:
            if batch and (len(batch) >= MAX_ITEMS or size + len(line) > MAX_BATCH_BYTES):
                self._sender.send(batch)
                batch, size = [], 0
            batch.append(line)
            size += len(line)
        if batch:
            self._sender.send(batch)

    def flush(self) -> None:
        self._sender.wait()

    def _post_lines(self, lines: list[bytes], *, retries: int = RETRIES) -> dict:
        """Write wire lines; a retry of lines whose keys are complete writes the same again."""
        return self.http.json("POST", "/put", content=b"".join(lines), retries=retries,
                              headers={"Content-Type": "application/x-ndjson"})

    def keys_page(self, kind: str, namespace: str, *, batch_size: int, cursor: str | None) -> tuple[list[Key], str | None]:
        page = self.http.json("POST", "/query", json={
            "namespace": namespace, "kind": kind, "cursor": cursor, "limit": min(batch_size, MAX_ITEMS),
            "keys_only": True})
        return [key_from_json(k) for k in page["keys"]], page["cursor"]

    def delete(self, keys: Sequence[Key]) -> None:
        for chunk in _chunks(list(keys), MAX_ITEMS):
            self.http.json("POST", "/delete", json={"keys": [key_to_json(k) for k in chunk]})

    def remove_course(self, course: CourseInfo) -> None:
        self.http.request("DELETE", "/course", params={"prefix": course.slug})

    def exclusive(self, what: str) -> contextlib.AbstractContextManager[None]:
        return _Lease(self.http, what)

    def job_binding(self, prefix: str) -> tuple[JobCourse, DatastoreClient]:
        return _RemoteCourse(self, self.course(prefix)), RemoteDatastore(self)

    def close(self) -> None:
        self._sender.close()
        self.http.close()


class _Sender:
    """Posts batches of wire lines from background threads, :data:`IN_FLIGHT` at
    a time: the caller prepares the next batch, and the server checks one batch
    while it writes another. An error is raised by the next call."""

    def __init__(self, post: Callable[[list[bytes]], dict]) -> None:
        self.post = post
        self._pool: ThreadPoolExecutor | None = None
        self._pending: collections.deque[Future] = collections.deque()

    def send(self, lines: list[bytes]) -> None:
        while len(self._pending) >= IN_FLIGHT:
            self._pending.popleft().result()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="courseport-put")
        self._pending.append(self._pool.submit(self.post, lines))

    def wait(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _decode(line: str) -> Entity:
    try:
        return decode_line(line)
    except WireError as exc:
        raise RemoteError(f"the server sent an entity that is not one: {exc}") from None


class _Lease:
    """The server's writer lease, held (and renewed) while a command changes the site."""

    def __init__(self, http: _Http, what: str) -> None:
        self.http, self.what = http, what
        self.lease: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> None:
        deadline = time.monotonic() + lock_wait()
        while True:  # another writer: wait for it a while, as for the store's own lock
            try:
                taken = self.http.json("POST", "/leases", json={"what": self.what}, retries=0)
                break
            except RemoteError as exc:
                if " refused (409)" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)
        try:
            self.lease, seconds = str(taken["lease"]), float(taken["seconds"])
        except _MALFORMED as exc:
            raise _malformed(self.http.base_url, exc) from None
        self._thread = threading.Thread(target=self._renew, args=(max(seconds / 3, 1.0),), daemon=True)
        self._thread.start()

    def _renew(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.http.request("PUT", f"/leases/{self.lease}")
            except RemoteError as exc:
                log.warning("could not renew the server's writer lease: %s", exc)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(RemoteError):
            self.http.request("DELETE", f"/leases/{self.lease}")


def _change_count(value: Any) -> int | None:
    if value is not None and type(value) is not int:
        raise TypeError(f"a change count is an integer, not {value!r:.40}")
    return value


class _Stream:
    """One streamed export: pages of rows and the control records between them."""

    def __init__(self, response: httpx.Response, kinds: list[str], base_url: str) -> None:
        self.response = response
        self.kinds = kinds
        self.base_url = base_url
        self._lines = iter_lines(response.iter_raw())
        self.changes: int | None = None
        self.kind: str | None = None  # the kind whose rows come next
        self.cursor: str | None = None  # where in it
        self.count: int | None = None
        self.at_header = True
        self.ended = False
        first = self._control()
        if "changes" not in first:
            raise RemoteError(f"{base_url}: the server's export stream does not begin as it should")
        self.changes = _change_count(first["changes"])

    def _control(self) -> dict:
        line = next(self._lines, None)
        if line is None:
            raise httpx.ReadError("the export stream ended early")
        if not line.startswith(b"!"):
            raise RemoteError(f"{self.base_url}: the server's export stream is out of order")
        record = json.loads(line[1:])
        if "error" in record:
            raise RemoteError(f"{self.base_url}: the export failed on the server: {record['error']}")
        return record

    def header(self) -> None:
        """Read the next kind's header (its name and count)."""
        record = self._control()
        if "end" in record:
            self.ended, self.kind = True, None
            return
        self.kind, self.count, self.cursor, self.at_header = record["kind"], record["count"], None, False

    def page(self) -> RowsPage:
        rows: list[str] = []
        for line in self._lines:
            if line.startswith(b"!"):
                record = json.loads(line[1:])
                if "error" in record:
                    raise RemoteError(f"{self.base_url}: the export failed on the server: {record['error']}")
                self.cursor = record["cursor"]
                if self.cursor is None:
                    self.at_header = True
                return RowsPage(rows, self.cursor)
            rows.append(line.decode("utf-8"))
        raise httpx.ReadError("the export stream ended early")

    def close(self) -> None:
        self.response.close()


@_checked_answers
class _RemoteReading(Reading):
    """A download's view of the server: one export stream from one snapshot."""

    def __init__(self, site: RemoteSite) -> None:
        self.site = site
        self.http = site.http
        self._plan: dict[str, tuple[list[str], str | None, int]] = {}
        self._changes: dict[str, int | None] = {}
        self._pinned: set[str] = set()
        self._stream: _Stream | None = None
        self._stream_namespace: str | None = None

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def files(self, course: CourseInfo) -> list[FileInfo]:
        found = self.http.json("GET", "/files", params={"prefix": course.slug})["files"]
        infos = [FileInfo(f["path"], int(f["size"]), f["is_draft"]) for f in found]
        if not all(isinstance(i.path, str) and i.is_draft in (True, False, None) for i in infos):
            raise TypeError("course files are paths, sizes and draft flags")
        return infos

    def read_file(self, course: CourseInfo, path: str) -> bytes:
        try:
            return self.http.request("GET", "/file", params={"prefix": course.slug, "path": path}).content
        except RemoteCourseNotFound:
            raise FileNotFoundError(f"course file {path} vanished during the download") from None

    def kinds(self, namespace: str) -> list[str]:
        return self.site.kinds(namespace)

    def change_count(self, namespace: str) -> int | None:
        if namespace not in self._changes:
            self._changes[namespace] = _change_count(
                self.http.json("GET", "/changes", params={"namespace": namespace})["changes"])
        return self._changes[namespace]

    def expect(self, namespace: str, kinds: Sequence[str], *, secret: str | None, batch_size: int) -> None:
        self._plan[namespace] = (list(kinds), secret, batch_size)

    def pin(self, namespace: str, changes: int | None) -> None:
        self._changes[namespace] = changes
        self._pinned.add(namespace)

    def count(self, kind: str, namespace: str) -> int:
        stream = self._positioned(kind, namespace, None, want_header=True)
        if stream is None:
            return self.site.count(kind, namespace)
        assert stream.count is not None
        return stream.count

    def rows_page(self, kind: str, namespace: str, *, batch_size: int, cursor: str | None,
                  secret: str | None) -> RowsPage:
        delay = 0.5
        for attempt in range(RETRIES + 1):
            stream = self._positioned(kind, namespace, cursor, secret=secret, batch_size=batch_size)
            assert stream is not None
            try:
                return stream.page()
            except (httpx.TransportError, httpx.StreamError) as exc:
                self.close()
                if attempt == RETRIES:
                    raise RemoteError(f"{self.site.description}: the export stream broke: {exc}") from None
                log.warning("%s: the export stream broke (%s); resuming at the last cursor in %.1fs",
                            self.site.description, exc, delay)
                self._pinned.add(namespace)  # the rest must come from the same state
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")

    def _positioned(self, kind: str, namespace: str, cursor: str | None, *, want_header: bool = False,
                    secret: str | None = None, batch_size: int | None = None) -> _Stream | None:
        """The export stream, positioned at ``kind`` (its header, or ``cursor`` in it)."""
        stream = self._stream
        if stream is not None and self._stream_namespace == namespace:
            if stream.at_header and not stream.ended and want_header:
                stream.header()
            if stream.kind == kind and stream.cursor == cursor and not stream.at_header:
                return stream
        if want_header and namespace not in self._plan:
            return None
        self.close()
        planned, planned_secret, planned_batch = self._plan.get(namespace, ([kind], secret, batch_size or 5000))
        kinds = planned[planned.index(kind):] if kind in planned else [kind]
        self._stream = self._open(namespace, kinds, cursor, planned_secret if want_header else secret,
                                  planned_batch if batch_size is None else batch_size)
        self._stream_namespace = namespace
        self._stream.header()
        if self._stream.kind != kind:
            raise RemoteError(f"{self.site.description}: the export stream sent {self._stream.kind}, not {kind}")
        self._stream.cursor = cursor
        return self._stream

    def _open(self, namespace: str, kinds: list[str], cursor: str | None, secret: str | None,
              batch_size: int) -> _Stream:
        body = {"namespace": namespace, "kinds": kinds, "cursor": cursor, "secret": secret,
                "page_size": min(max(batch_size, 1), MAX_ITEMS),
                "changes": self._changes.get(namespace) if namespace in self._pinned else None}
        delay = 0.5
        for attempt in range(RETRIES + 1):
            try:
                request = self.http.client.build_request("POST", API + "/export", json=body)
                response = self.http.client.send(request, stream=True)
                if response.status_code >= 500 and attempt < RETRIES:
                    response.close()
                    raise httpx.RemoteProtocolError(f"the server answered {response.status_code}")
                if response.status_code == 409:
                    response.read()
                    raise RemoteError(
                        f"{self.site.description}: the data of this course changed on the server since the "
                        "download began, so the rest could not match it; start the download again from the "
                        "beginning (--force_overwrite where a partial archive is kept)")
                self.http.check(response, (200,))
                stream = _Stream(response, kinds, self.site.description)
                break
            except (httpx.TransportError, httpx.StreamError) as exc:
                if attempt == RETRIES:
                    raise RemoteError(f"{self.site.description}: {exc} (after {RETRIES} retries)") from None
                log.warning("%s: %s; retrying in %.1fs", self.site.description, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
        self._changes[namespace] = stream.changes
        self._pinned.add(namespace)
        return stream


@_checked_answers
class _RemoteFiles:
    """A course's files through the API, as a job sees them."""

    def __init__(self, site: RemoteSite, course: CourseInfo) -> None:
        self.site, self.course = site, course

    def list(self, prefix: str = "/") -> list[str]:
        return [p for p in self.site.file_paths(self.course) if p.startswith(prefix)]

    def get(self, path: str) -> bytes | None:
        try:
            return self.site.http.request("GET", "/file", params={"prefix": self.course.slug, "path": path}).content
        except RemoteCourseNotFound:
            return None

    def put(self, path: str, data: bytes, is_draft: bool | None = False) -> FileInfo:
        answer = self.site.http.request(
            "PUT", "/file", params={"prefix": self.course.slug, "path": path,
                                    "draft": {True: "true", False: "false", None: "none"}[is_draft]},
            content=data).json()
        return FileInfo(answer["path"], int(answer["size"]), is_draft)

    def delete(self, path: str) -> bool:
        return bool(self.site.http.json("DELETE", "/file", params={"prefix": self.course.slug, "path": path})["deleted"])


class _RemoteCourse:
    def __init__(self, site: RemoteSite, info: CourseInfo) -> None:
        self.info = info
        self._fs = _RemoteFiles(site, info)

    @property
    def slug(self) -> str:
        return self.info.slug

    @property
    def namespace(self) -> str:
        return self.info.namespace

    @property
    def title(self) -> str:
        return self.info.title

    @property
    def fs(self) -> _RemoteFiles:
        return self._fs


@_checked_answers
class RemoteDatastore:
    """A job's datastore client over the API: query, get, put, delete, allocate ids."""

    def __init__(self, site: RemoteSite) -> None:
        self.site = site
        self.app_id = site.app_id

    def kinds(self, namespace: str = "") -> list[str]:
        return self.site.kinds(namespace)

    def count(self, kind: str, namespace: str = "") -> int:
        return self.site.count(kind, namespace)

    def get_multi(self, keys: Sequence[Key]) -> list[Entity | None]:
        return self.site.get_multi(keys)

    def get(self, key: Key) -> Entity | None:
        return self.get_multi([key])[0]

    def put_multi(self, entities: Sequence[Entity]) -> list[Key]:
        keys: list[Key] = []
        for chunk in _chunks(list(entities), 1000):
            # an incomplete key gets a new id each time: such a batch is sent once, never retried
            complete = all(entity.key.is_complete for entity in chunk)
            answer = self.site._post_lines(wire_lines(chunk), retries=RETRIES if complete else 0)
            if "keys" in answer:
                for entity, value in zip(chunk, answer["keys"]):
                    entity.key = key_from_json(value)
            keys.extend(entity.key for entity in chunk)
        return keys

    def put(self, entity: Entity) -> Key:
        return self.put_multi([entity])[0]

    def delete_multi(self, keys: Sequence[Key]) -> None:
        self.site.delete(keys)

    def delete(self, key: Key) -> None:
        self.site.delete([key])

    def allocate_ids(self, incomplete: Key, count: int) -> list[int]:
        return list(self.site.http.json("POST", "/allocate_ids", retries=0,
                                        json={"key": key_to_json(incomplete), "count": count})["ids"])

    def fetch_page(self, kind: str, namespace: str = "", *, cursor: str | None = None, limit: int = 1000,
                   keys_only: bool = False) -> Page:
        page = self.site.http.json("POST", "/query", json={
            "namespace": namespace, "kind": kind, "cursor": cursor, "limit": min(limit, MAX_ITEMS),
            "keys_only": keys_only})
        items = [key_from_json(k) for k in page["keys"]] if keys_only else [_decode(e) for e in page["entities"]]
        return Page(items, page["cursor"], more=page["cursor"] is not None)

    def query(self, kind: str, namespace: str = "", *, batch_size: int = 1000, cursor: str | None = None,
              keys_only: bool = False) -> Iterator[Any]:
        while True:
            page = self.fetch_page(kind, namespace, cursor=cursor, limit=batch_size, keys_only=keys_only)
            yield from page.items
            if page.cursor is None:
                return
            cursor = page.cursor
