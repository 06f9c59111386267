"""The Site that etl talks to, and its local implementation.

etl never touches the store itself: it asks a :class:`EtlSite` for a
course, its files and its rows, already encoded as archive rows (with the
privacy transform applied where the data lives), and hands it entities to
write. :class:`LocalSite` is the embedded store; a remote site speaks the
same interface over the server's API.
"""

from __future__ import annotations

import abc
import contextlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

from ..courses.site import Course, Site
from ..courses.vfs import DatastoreFileSystem, FileInfo
from ..datastore import Backend, Entity, Key, Reader
from ..models import make_transform
from .rows import RowEncoder

#: first path parts a folder course's files may have in a course archive
_FOLDER_WHITELIST = ("course.yaml", "assets", "data")
_FOLDER_EXCLUDES = ("assets/lib",)


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
    def count(self, kind: str, namespace: str) -> int: ...

    @abc.abstractmethod
    def rows_page(
        self, kind: str, namespace: str, *, batch_size: int, cursor: str | None, secret: str | None
    ) -> RowsPage:
        """Up to ``batch_size`` archive rows of ``kind`` after ``cursor``."""

    def change_count(self, namespace: str) -> int | None:
        """The store's change count of ``namespace`` in this view (see
        ``Reader.change_count``); None where the site cannot tell."""
        return None


class EtlSite(abc.ABC):
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
    def reading(self) -> "contextmanager[Reading]":  # type: ignore[valid-type]
        """A context manager giving one consistent :class:`Reading`."""

    @abc.abstractmethod
    def kinds(self, namespace: str) -> list[str]: ...

    @abc.abstractmethod
    def count(self, kind: str, namespace: str) -> int: ...

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

    #: whether :meth:`atomic` makes a whole upload land together or not at all
    atomic_writes = False

    def atomic(self):
        """A context in which the site's writes land together (where it can)."""
        return contextlib.nullcontext()

    def row_preparer(self):
        """A picklable ``prepare_rows`` that needs no connection, so other
        processes can prepare rows; None where the site has none."""
        return None

    def prepare_rows(self, rows: Sequence) -> list:
        """Decoded archive rows (JsonRow or Entity, in order) made ready to write."""
        from ..datastore.values import decode_properties

        return self.prepare(
            [r if isinstance(r, Entity) else Entity(r.key, decode_properties(dict(r.props), r.signature, None)) for r in rows]  # type: ignore[arg-type]
        )

    @abc.abstractmethod
    def keys_page(self, kind: str, namespace: str, *, batch_size: int, cursor: str | None) -> tuple[list[Key], str | None]: ...

    @abc.abstractmethod
    def delete(self, keys: Sequence[Key]) -> None: ...

    @abc.abstractmethod
    def remove_course(self, course: CourseInfo) -> None: ...

    def close(self) -> None:
        pass


def course_info(course: Course) -> CourseInfo:
    return CourseInfo(
        slug=course.slug, raw=course.raw, namespace=course.namespace, version=course.version,
        title=course.title, editable=course.fs.editable,
    )


def _folder_file_allowed(path: str) -> bool:
    rel = path.lstrip("/")
    return rel.split("/", 1)[0] in _FOLDER_WHITELIST and not any(
        rel == ex or rel.startswith(ex + "/") for ex in _FOLDER_EXCLUDES
    )


class _LocalReading(Reading):
    def __init__(self, site: Site, reader: Reader) -> None:
        self.site = site
        self.reader = reader
        self._encoders: dict[tuple[str, str | None], RowEncoder] = {}
        self._courses: dict[str, Course] = {}
        self._transforms: dict[str, object] = {}

    def _course(self, course: CourseInfo) -> Course:
        found = self._courses.get(course.slug)
        if found is None:
            found = self._courses[course.slug] = self.site.course(course.slug)
            if course.editable:  # its files as the snapshot sees them
                found.fs = DatastoreFileSystem(self.site.store, course.namespace, reader=self.reader)
        return found

    def files(self, course: CourseInfo) -> list[FileInfo]:
        fs = self._course(course).fs
        infos = fs.infos()
        if not course.editable:
            infos = [info for info in infos if _folder_file_allowed(info.path)]
        return sorted(infos, key=lambda info: info.path)

    def read_file(self, course: CourseInfo, path: str) -> bytes:
        data = self._course(course).fs.get(path)
        if data is None:
            raise FileNotFoundError(f"course file {path} vanished during the download")
        return data

    def kinds(self, namespace: str) -> list[str]:
        return self.reader.kinds(namespace)

    def count(self, kind: str, namespace: str) -> int:
        return self.reader.count(kind, namespace)

    def change_count(self, namespace: str) -> int | None:
        return self.reader.change_count(namespace)

    def _encoder(self, kind: str, secret: str | None) -> RowEncoder:
        slot = (kind, secret)
        encoder = self._encoders.get(slot)
        if encoder is None:
            transform = None
            if secret is not None:
                transform = self._transforms.get(secret)
                if transform is None:
                    transform = self._transforms[secret] = make_transform(secret)
            encoder = self._encoders[slot] = RowEncoder(self.reader.app_id, kind, transform)  # type: ignore[arg-type]
        return encoder

    def rows_page(
        self, kind: str, namespace: str, *, batch_size: int, cursor: str | None, secret: str | None
    ) -> RowsPage:
        encoder = self._encoder(kind, secret)
        exported = self.reader.fetch_export_page(kind, namespace, cursor=cursor, limit=batch_size)
        if exported is not None:
            items, next_cursor = exported
            return RowsPage(encoder.export_page(namespace, items, self.reader.decode_raw), next_cursor)
        page = self.reader.fetch_page(kind, namespace, cursor=cursor, limit=batch_size)
        return RowsPage([encoder.row(e.key, e) for e in page.items], page.cursor)


class LocalSite(EtlSite):
    """The embedded store, used directly."""

    min_batch_size = 5000  # no round trip to save

    def __init__(self, store: Backend) -> None:
        self.store = store
        self.site = Site(store)
        self.description = store.url
        self._courses: dict[str, Course] = {}

    @property
    def app_id(self) -> str:  # type: ignore[override]
        return self.store.app_id

    def _course(self, course: CourseInfo) -> Course:
        found = self._courses.get(course.slug)
        if found is None:
            found = self._courses[course.slug] = self.site.course(course.slug)
        return found

    def course(self, prefix: str) -> CourseInfo:
        return course_info(self.site.course(prefix))

    @contextmanager
    def reading(self) -> Iterator[Reading]:
        with self.store.snapshot() as snapshot:
            yield _LocalReading(self.site, snapshot)

    def kinds(self, namespace: str) -> list[str]:
        return self.store.kinds(namespace)

    def count(self, kind: str, namespace: str) -> int:
        return self.store.count(kind, namespace)

    def file_paths(self, course: CourseInfo) -> list[str]:
        return self._course(course).fs.list()

    def write_file(self, course: CourseInfo, path: str, data: bytes, is_draft: bool | None) -> None:
        self._course(course).fs.put(path, data, is_draft=is_draft)

    def exists(self, keys: Sequence[Key]) -> list[bool]:
        return self.store.exists_multi(keys)

    def put(self, entities: Sequence[Entity]) -> None:
        self.store.put_multi(entities)

    def get_rows(self, keys: Sequence[Key]) -> list | None:
        return self.store.get_multi(list(keys))

    def prepare(self, entities: Sequence[Entity]) -> list:
        return self.store.prepare(entities)

    def write_prepared(self, prepared: list) -> None:
        self.store.write_prepared(prepared)

    def prepare_rows(self, rows: Sequence) -> list:
        if self.store.prepare_decoded is not None:
            return self.store.prepare_decoded(rows)
        return super().prepare_rows(rows)

    def row_preparer(self):
        return self.store.prepare_decoded

    @property
    def atomic_writes(self) -> bool:  # type: ignore[override]
        return self.store.atomic

    def atomic(self):
        return self.store.transaction()

    def keys_page(self, kind: str, namespace: str, *, batch_size: int, cursor: str | None) -> tuple[list[Key], str | None]:
        page = self.store.fetch_page(kind, namespace, cursor=cursor, limit=batch_size, keys_only=True)
        return page.items, page.cursor

    def delete(self, keys: Sequence[Key]) -> None:
        self.store.delete_multi(keys)

    def exclusive(self, what: str) -> contextlib.AbstractContextManager[None]:
        return self.store.exclusive(what)

    def remove_course(self, course: CourseInfo) -> None:
        self.site.remove_rule(course.slug)
        self._courses.pop(course.slug, None)

    def close(self) -> None:
        self.store.close()
