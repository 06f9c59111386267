"""A download's view of a server: one export stream from one snapshot, resumed at its cursor."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any, Sequence

import httpx

from ...courses.vfs import FileInfo
from ...datastore.wire import iter_lines
from ..base import CourseInfo, Reading, RowsPage
from ..protocol import API, MAX_ITEMS
from .transport import (
    RETRIES,
    RemoteCourseNotFound,
    RemoteError,
    checked_answers,
)

if TYPE_CHECKING:
    from .site import RemoteSite

log = logging.getLogger("courseport.remote")

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


@checked_answers
class RemoteReading(Reading):
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

    def count(self, kind: str, namespace: str) -> int | None:
        stream = self._positioned(kind, namespace, None, want_header=True)
        if stream is None:
            return self.site.count(kind, namespace)
        return stream.count  # None where the server's store could not tell

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
