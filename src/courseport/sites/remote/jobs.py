"""What a job gets through a server: its course's files and a datastore client over the API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Sequence

from ...courses.vfs import FileInfo
from ...datastore import Entity, Key, Page
from ...datastore.wire import key_from_json, key_to_json, wire_lines
from ..base import CourseInfo
from ..protocol import MAX_ITEMS
from .transport import (
    RETRIES,
    RemoteCourseNotFound,
    checked_answers,
    chunks,
    decode_entity,
)

if TYPE_CHECKING:
    from .site import RemoteSite

@checked_answers
class RemoteFiles:
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


class RemoteCourse:
    def __init__(self, site: RemoteSite, info: CourseInfo) -> None:
        self.info = info
        self._fs = RemoteFiles(site, info)

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
    def fs(self) -> RemoteFiles:
        return self._fs


@checked_answers
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
        for chunk in chunks(list(entities), 1000):
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
        items = [key_from_json(k) for k in page["keys"]] if keys_only else [decode_entity(e) for e in page["entities"]]
        return Page(items, page["cursor"], more=page["cursor"] is not None)

    def query(self, kind: str, namespace: str = "", *, batch_size: int = 1000, cursor: str | None = None,
              keys_only: bool = False) -> Iterator[Any]:
        while True:
            page = self.fetch_page(kind, namespace, cursor=cursor, limit=batch_size, keys_only=keys_only)
            yield from page.items
            if page.cursor is None:
                return
            cursor = page.cursor
