"""LocalSite: the Site over a datastore Backend (the embedded store, used directly).

Rows are read from one snapshot and encoded here (privacy applied here too),
so a server that serves a LocalSite sends rows that are already archive rows.
"""

from __future__ import annotations

import contextlib
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

from ..courses.site import Course
from ..courses.site import Site as Courses
from ..courses.vfs import DatastoreFileSystem, FileInfo
from ..datastore import Backend, Entity, JsonRow, Key, Reader
from ..datastore.client import DatastoreClient
from ..models import make_transform
from ..models.schema import Transform
from .base import CourseInfo, JobCourse, Reading, RowsPage, Site, course_info
from .rows import RowEncoder

#: first path parts a folder course's files may have in a course archive
_FOLDER_WHITELIST = ("course.yaml", "assets", "data")
_FOLDER_EXCLUDES = ("assets/lib",)


def _folder_file_allowed(path: str) -> bool:
    rel = path.lstrip("/")
    return rel.split("/", 1)[0] in _FOLDER_WHITELIST and not any(
        rel == ex or rel.startswith(ex + "/") for ex in _FOLDER_EXCLUDES
    )


class _LocalReading(Reading):
    def __init__(self, site: Courses, reader: Reader) -> None:
        self.site = site
        self.reader = reader
        self._counts: dict[tuple[str, str], int | None] = {}
        self._encoders: dict[tuple[str, str | None], RowEncoder] = {}
        self._courses: dict[str, Course] = {}
        self._transforms: dict[str, Transform] = {}

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

    def count(self, kind: str, namespace: str) -> int | None:
        """For progress: the store's estimate, once per kind (a snapshot's does not change)."""
        slot = (kind, namespace)
        if slot not in self._counts:
            self._counts[slot] = self.reader.estimated_count(kind, namespace)
        return self._counts[slot]

    def change_count(self, namespace: str) -> int | None:
        return self.reader.change_count(namespace)

    def _encoder(self, kind: str, secret: str | None) -> RowEncoder:
        slot = (kind, secret)
        encoder = self._encoders.get(slot)
        if encoder is None:
            encoder = self._encoders[slot] = self._new_encoder(kind, secret)
        return encoder

    def _new_encoder(self, kind: str, secret: str | None) -> RowEncoder:
        transform: Transform | None = None
        if secret is not None:
            transform = self._transforms.get(secret)
            if transform is None:
                transform = self._transforms[secret] = make_transform(secret)
        return RowEncoder(self.reader.app_id, kind, transform)

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

    def key_ranges(self, kind: str, namespace: str, pieces: int) -> list[tuple[str | None, str | None]] | None:
        points = [key.to_urlsafe(self.reader.app_id) for key in self.reader.split_points(kind, namespace, pieces)]
        return list(zip([None, *points], [*points, None])) if points else None

    def range_rows(self, kind: str, namespace: str, bounds: tuple[str | None, str | None], *,
                   batch_size: int, secret: str | None) -> Iterator[list[str]]:
        encoder = self._new_encoder(kind, secret)  # one per range: a thread of its own
        start, end = (None if text is None else Key.from_urlsafe(text)[1] for text in bounds)
        cursor = None
        while True:
            page = self.reader.fetch_range_page(kind, namespace, start=start, end=end, cursor=cursor,
                                                limit=batch_size)
            yield [encoder.row(e.key, e) for e in page.items]
            if page.cursor is None:
                return
            cursor = page.cursor


class LocalSite(Site):
    """The embedded store, used directly."""

    min_batch_size = 5000  # no round trip to save

    def __init__(self, store: Backend) -> None:
        self.store = store
        self.site = Courses(store)
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

    def estimated_count(self, kind: str, namespace: str) -> int | None:
        return self.store.estimated_count(kind, namespace)

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

    def prepare_rows(self, rows: Sequence[Entity | JsonRow]) -> list:
        if self.store.prepare_decoded is not None:
            return self.store.prepare_decoded(rows)
        return super().prepare_rows(rows)

    def row_preparer(self) -> Callable[[Sequence[Entity | JsonRow]], list] | None:
        return self.store.prepare_decoded

    @property
    def atomic_writes(self) -> bool:  # type: ignore[override]
        return self.store.atomic

    def atomic(self) -> contextlib.AbstractContextManager[Any]:
        return self.store.transaction()

    def keys_page(self, kind: str, namespace: str, *, batch_size: int, cursor: str | None) -> tuple[list[Key], str | None]:
        page = self.store.fetch_page(kind, namespace, cursor=cursor, limit=batch_size, keys_only=True)
        return page.items, page.cursor

    def delete(self, keys: Sequence[Key]) -> None:
        self.store.delete_multi(keys)

    def exclusive(self, what: str) -> contextlib.AbstractContextManager[None]:
        return self.store.exclusive(what)

    def job_binding(self, prefix: str) -> tuple[JobCourse, DatastoreClient]:
        return self.site.course(prefix), self.store

    def remove_course(self, course: CourseInfo) -> None:
        self.site.remove_rule(course.slug)
        self._courses.pop(course.slug, None)

    def close(self) -> None:
        self.store.close()
