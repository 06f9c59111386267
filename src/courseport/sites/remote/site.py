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
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterator, Sequence

from ..._locks import lock_wait
from ...datastore import Entity, JsonRow, Key
from ...datastore.client import DatastoreClient
from ...datastore.wire import key_from_json, key_to_json, wire_lines
from ..base import CourseInfo, JobCourse, Reading, Site
from ..protocol import API, LEASE_HEADER, MAX_ITEMS
from .jobs import RemoteCourse, RemoteDatastore
from .reading import RemoteReading
from .transport import (
    IN_FLIGHT,
    MALFORMED,
    RETRIES,
    SEND_BYTES,
    Credentials,
    Http,
    RemoteError,
    checked_answers,
    chunks,
    course_info_from,
    decode_entity,
    malformed,
)

log = logging.getLogger("courseport.remote")


@checked_answers
class RemoteSite(Site):
    """A courseport server, through its remote API."""

    min_batch_size = 2000  # a page or a put is a round trip

    def __init__(self, base_url: str, credentials: Credentials, *, ca_file: str | None = None,
                 timeout: float = 120.0) -> None:
        self.description = base_url
        self.http = Http(base_url, credentials, ca_file=ca_file, timeout=timeout)
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

    def course(self, prefix: str) -> CourseInfo:
        return course_info_from(self.http.json("GET", "/course", params={"prefix": prefix}))

    @contextlib.contextmanager
    def reading(self) -> Iterator[Reading]:
        reading = RemoteReading(self)
        try:
            yield reading
        finally:
            reading.close()

    def _kind_counts(self, namespace: str) -> dict[str, int]:
        counts = self.http.json("GET", "/kinds", params={"namespace": namespace})["kinds"]
        if not all(isinstance(kind, str) and kind and type(count) is int for kind, count in counts.items()):
            raise TypeError(f"kinds are names with counts, not {counts!r:.100}")
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
        for chunk in chunks(list(keys), MAX_ITEMS):
            found.extend(self.http.json("POST", "/lookup", json={
                "keys": [key_to_json(k) for k in chunk], "keys_only": True})["found"])
        return found

    def get_rows(self, keys: Sequence[Key]) -> list | None:
        return self.get_multi(keys)

    def get_multi(self, keys: Sequence[Key]) -> list[Entity | None]:
        found: list[Entity | None] = []
        for chunk in chunks(list(keys), MAX_ITEMS):
            lines = self.http.json("POST", "/lookup", json={"keys": [key_to_json(k) for k in chunk]})["entities"]
            found.extend(None if line is None else decode_entity(line) for line in lines)
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
            if batch and (len(batch) >= MAX_ITEMS or size + len(line) > SEND_BYTES):
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
        for chunk in chunks(list(keys), MAX_ITEMS):
            self.http.json("POST", "/delete", json={"keys": [key_to_json(k) for k in chunk]})

    def remove_course(self, course: CourseInfo) -> None:
        self.http.request("DELETE", "/course", params={"prefix": course.slug})

    def exclusive(self, what: str) -> contextlib.AbstractContextManager[None]:
        return _Lease(self.http, what)

    def job_binding(self, prefix: str) -> tuple[JobCourse, DatastoreClient]:
        return RemoteCourse(self, self.course(prefix)), RemoteDatastore(self)

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


class _Lease:
    """The server's writer lease, held (and renewed) while a command changes the site."""

    def __init__(self, http: Http, what: str) -> None:
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
                if exc.status != 409 or time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)
        try:
            self.lease, seconds = str(taken["lease"]), float(taken["seconds"])
        except MALFORMED as exc:
            raise malformed(self.http.base_url, exc) from None
        self.http.client.headers[LEASE_HEADER] = self.lease  # each write names it: the server checks
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
        self.http.client.headers.pop(LEASE_HEADER, None)
