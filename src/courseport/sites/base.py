"""The Site interface: all etl (and the server's API) knows of where data lives.

A :class:`Site` gives a course, its files and its kinds as archive rows, in
key order from one snapshot (a :class:`Reading`), already encoded (with the
privacy transform applied where the data lives), and takes entities to
write and keys to delete. :class:`~courseport.sites.local.LocalSite` is the
embedded store; a remote site speaks the same interface over the server's API.
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, Sequence

from ..courses.site import Course
from ..courses.vfs import FileInfo
from ..datastore import Entity, JsonRow, Key
from ..datastore.client import DatastoreClient
from ..errors import UserError


@dataclass(frozen=True)
class CourseInfo:
    slug: str
    raw: str
    namespace: str
    version: str
    title: str
    editable: bool


@dataclass(frozen=True)
class RowsPage:
    rows: list[str]
    cursor: str | None


class Reading(abc.ABC):
    """A consistent view of a site for one download."""

    @abc.abstractmethod
    def files(self, course: CourseInfo) -> list[FileInfo]: ...

    @abc.abstractmethod
    def read_file(self, course: CourseInfo, path: str) -> bytes: ...

    @abc.abstractmethod
    def kinds(self, namespace: str) -> list[str]: ...

    @abc.abstractmethod
    def count(self, kind: str, namespace: str) -> int | None:
        """About how many rows ``kind`` holds, for progress; None where the site cannot
        tell without reading them all (Cloud Datastore without statistics)."""

    @abc.abstractmethod
    def rows_page(
        self, kind: str, namespace: str, *, batch_size: int, cursor: str | None, secret: str | None
    ) -> RowsPage:
        """Up to ``batch_size`` archive rows of ``kind`` after ``cursor``."""

    def change_count(self, namespace: str) -> int | None:
        """The store's change count of ``namespace`` in this view (see
        ``Reader.change_count``); None where the site cannot tell."""
        return None

    def key_ranges(self, kind: str, namespace: str, pieces: int) -> list[tuple[str | None, str | None]] | None:
        """``kind`` cut into about ``pieces`` ranges of keys, ``[start, end)`` as key strings
        (None: open), for readers that fetch them at once; None where the site gains nothing
        by it (a store with no round trips) or cannot."""
        return None

    def range_rows(self, kind: str, namespace: str, bounds: tuple[str | None, str | None], *,
                   batch_size: int, secret: str | None) -> Iterator[list[str]]:
        """The archive rows of one of :meth:`key_ranges`, a page at a time; safe to call
        from several threads at once."""
        raise NotImplementedError

    def expect(self, namespace: str, kinds: Sequence[str], *, secret: str | None, batch_size: int) -> None:
        """Say which kinds will be read next, in this order, so that a remote
        site can stream them all from one snapshot."""

    def pin(self, namespace: str, changes: int | None) -> None:
        """From now on, refuse to read ``namespace`` in any state but the one
        with this change count (a resumed download continues the state it began in)."""


class Site(abc.ABC):
    """Where a course's data lives, as etl sees it."""

    app_id: str
    description: str
    #: the fewest rows worth a page or a put (a store with no round trip wants many)
    min_batch_size: int = 1

    def exclusive(self, what: str) -> contextlib.AbstractContextManager[None]:
        """Hold the site's writer lock while a command that changes it runs
        (see ``Backend.exclusive``); ``what`` names the command."""
        return contextlib.nullcontext()

    @abc.abstractmethod
    def course(self, prefix: str) -> CourseInfo:
        """The course at ``prefix``; raises CourseNotFoundError."""

    @abc.abstractmethod
    def reading(self) -> contextlib.AbstractContextManager[Reading]:
        """A context manager giving one consistent :class:`Reading`."""

    @abc.abstractmethod
    def kinds(self, namespace: str) -> list[str]: ...

    @abc.abstractmethod
    def count(self, kind: str, namespace: str) -> int: ...

    def estimated_count(self, kind: str, namespace: str) -> int | None:
        """:meth:`count`, or about it, where that is cheap; else None (for progress)."""
        return self.count(kind, namespace)

    @abc.abstractmethod
    def file_paths(self, course: CourseInfo) -> list[str]: ...

    @abc.abstractmethod
    def write_file(self, course: CourseInfo, path: str, data: bytes, is_draft: bool | None) -> None: ...

    @abc.abstractmethod
    def exists(self, keys: Sequence[Key]) -> list[bool]: ...

    @abc.abstractmethod
    def put(self, entities: Sequence[Entity]) -> None: ...

    def get_rows(self, keys: Sequence[Key]) -> list | None:
        """The properties of the entities at ``keys`` (None where absent), as a write in
        progress sees them; None where the site cannot tell."""
        return None

    def prepare(self, entities: Sequence[Entity]) -> list:
        """Entities made ready for :meth:`write_prepared` (each keeps a ``.key``)."""
        return list(entities)

    def write_prepared(self, prepared: list) -> None:
        self.put(prepared)

    def flush(self) -> None:
        """Wait until every write handed over so far has landed (a site may write
        in the background); raises the error of one that failed."""

    #: whether :meth:`atomic` makes a whole upload land together or not at all
    atomic_writes = False

    def atomic(self) -> contextlib.AbstractContextManager[Any]:
        """A context in which the site's writes land together (where it can)."""
        return contextlib.nullcontext()

    def row_preparer(self) -> Callable[[Sequence[Entity | JsonRow]], list] | None:
        """A picklable ``prepare_rows`` that needs no connection, so other
        processes can prepare rows; None where the site has none."""
        return None

    def prepare_rows(self, rows: Sequence[Entity | JsonRow]) -> list:
        """Decoded archive rows (JsonRow or Entity, in order) made ready to write."""
        return self.prepare([r if isinstance(r, Entity) else r.entity() for r in rows])

    @abc.abstractmethod
    def keys_page(self, kind: str, namespace: str, *, batch_size: int, cursor: str | None) -> tuple[list[Key], str | None]: ...

    @abc.abstractmethod
    def delete(self, keys: Sequence[Key]) -> None: ...

    @abc.abstractmethod
    def remove_course(self, course: CourseInfo) -> None: ...

    @abc.abstractmethod
    def job_binding(self, prefix: str) -> tuple["JobCourse", "DatastoreClient"]:
        """What a CourseJob is handed: the course at ``prefix`` and a datastore client."""

    def close(self) -> None:
        pass


class CourseFiles(Protocol):
    """A course's files, as a job sees them."""

    def list(self, prefix: str = "/") -> list[str]: ...

    def get(self, path: str) -> bytes | None: ...

    def put(self, path: str, data: bytes, is_draft: bool | None = False) -> FileInfo: ...

    def delete(self, path: str) -> bool: ...


class JobCourse(Protocol):
    """A course, as a job sees it."""

    @property
    def slug(self) -> str: ...

    @property
    def namespace(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def fs(self) -> CourseFiles: ...


def course_info(course: Course) -> CourseInfo:
    return CourseInfo(
        slug=course.slug, raw=course.raw, namespace=course.namespace, version=course.version,
        title=_title(course), editable=course.fs.editable,
    )


def _title(course: Course) -> str:
    """The course's title; where its course.yaml cannot be read (a broken file, or
    one half-written by an upload that was killed) its slug, so that the course can
    still be downloaded, resumed into or deleted."""
    try:
        return course.title
    except (UserError, ValueError):
        return course.slug
