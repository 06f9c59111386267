"""What a job's datastore client offers, wherever the store is (typing only).

A :class:`~courseport.datastore.Backend` is one (the embedded store, used
directly); a remote site's client is another, speaking the server's API.
"""

from __future__ import annotations

from typing import Any, Iterator, Protocol, Sequence

from .backend import Page
from .entity import Entity
from .keys import Key


class DatastoreClient(Protocol):
    app_id: str

    def kinds(self, namespace: str = "") -> list[str]: ...

    def count(self, kind: str, namespace: str = "") -> int: ...

    def get_multi(self, keys: Sequence[Key]) -> list[Entity | None]: ...

    def get(self, key: Key) -> Entity | None: ...

    def put_multi(self, entities: Sequence[Entity]) -> list[Key]: ...

    def put(self, entity: Entity) -> Key: ...

    def delete_multi(self, keys: Sequence[Key]) -> None: ...

    def delete(self, key: Key) -> None: ...

    def allocate_ids(self, incomplete: Key, count: int) -> list[int]: ...

    def fetch_page(self, kind: str, namespace: str = "", *, cursor: str | None = None, limit: int = 1000,
                   keys_only: bool = False) -> Page: ...

    def query(self, kind: str, namespace: str = "", *, batch_size: int = 1000, cursor: str | None = None,
              keys_only: bool = False) -> Iterator[Any]: ...
