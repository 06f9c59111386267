"""The backend interface every store implements, and what it hands back.

A backend stores entities with Course Builder's datastore semantics:
batched get/put/delete, queries of one kind in one namespace in key order
(integer ids ascending, then names), opaque resumable cursors, keys-only
queries, kind and namespace listings, id allocation, and read snapshots in
which a multi-kind scan sees one consistent state.
"""

from __future__ import annotations

import abc
import base64
import contextlib
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

from ..errors import UserError
from .entity import Entity
from .keys import Key
from .values import decode_properties


class DatastoreError(UserError):
    """A store that cannot be opened or used."""


class BadCursorError(DatastoreError, ValueError):
    """A cursor that this store did not make, or for another query."""


def cursor_text(raw: bytes) -> str:
    """A cursor's bytes as the opaque text handed out (URL-safe base64, unpadded)."""
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def cursor_bytes(text: str) -> bytes:
    """The bytes of a cursor's text; BadCursorError for what is not one."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise BadCursorError(f"not a cursor: {text!r:.40}") from None


@dataclass
class Page:
    """One page of a query: entities (or keys) and the cursor after them."""

    items: list[Any]
    cursor: str | None  # None when the query is exhausted
    more: bool = field(default=False)


@dataclass(slots=True)
class RawRow:
    """A stored row as the embedded store keeps it (for fast export).

    ``data`` is the properties' JSON object text in Course Builder's value
    encoding (spec §1.6.2); ``signature`` says which properties are not
    plain JSON types (see :mod:`courseport.datastore.values`).
    """

    key: Key
    data: str
    signature: dict[str, Any]

    def __reduce__(self):  # a plain tuple pickles several times faster than a dataclass
        return (RawRow, (self.key, self.data, self.signature))


@dataclass
class JsonRow:
    """An entity typed but still in Course Builder's JSON encoding, ready to store.

    ``props`` are in the encoding of :mod:`courseport.datastore.values`
    without key values (those rows are Entities); ``signature`` says which
    properties are not plain JSON types. Archive row decoders produce them;
    a store's ``prepare_decoded`` takes them without decoding.
    """

    key: Key
    props: dict[str, Any]
    signature: dict[str, Any]

    def entity(self) -> Entity:
        """The row decoded into an Entity (for stores that take only entities)."""
        return Entity(self.key, decode_properties(dict(self.props), self.signature, _no_key_values))


def _no_key_values(value: Any) -> Key:
    raise AssertionError("a JsonRow holds no key values")


class Reader(abc.ABC):
    """The read half of a store; a snapshot is a Reader."""

    app_id: str

    @abc.abstractmethod
    def get_multi(self, keys: Sequence[Key]) -> list[Entity | None]: ...

    @abc.abstractmethod
    def fetch_page(
        self,
        kind: str,
        namespace: str = "",
        *,
        cursor: str | None = None,
        limit: int = 1000,
        keys_only: bool = False,
    ) -> Page:
        """Up to ``limit`` entities (or keys) of ``kind`` after ``cursor``."""

    @abc.abstractmethod
    def kinds(self, namespace: str = "") -> list[str]:
        """Kinds that have at least one entity in ``namespace``, sorted."""

    @abc.abstractmethod
    def namespaces(self) -> list[str]:
        """Namespaces that hold at least one entity, sorted ('' first)."""

    @abc.abstractmethod
    def count(self, kind: str, namespace: str = "") -> int: ...

    def fetch_raw_page(
        self, kind: str, namespace: str = "", *, cursor: str | None = None, limit: int = 1000
    ) -> tuple[list[RawRow], str | None] | None:
        """Stored rows without decoding, or None where the store cannot."""
        return None

    def exists_multi(self, keys: Sequence[Key]) -> list[bool]:
        return [entity is not None for entity in self.get_multi(keys)]

    def fetch_export_page(
        self, kind: str, namespace: str = "", *, cursor: str | None = None, limit: int = 1000
    ) -> tuple[list[tuple[Any, str, dict[str, Any]]], str | None] | None:
        """Stored rows as ``(id or name, data, signature)``, the id or name
        replaced by the whole Key for keys with a parent; None where the
        store cannot (see :meth:`fetch_raw_page`)."""
        page = self.fetch_raw_page(kind, namespace, cursor=cursor, limit=limit)
        if page is None:
            return None
        rows, next_cursor = page
        return [
            (r.key if r.key.parent else r.key.id_or_name, r.data, r.signature) for r in rows
        ], next_cursor

    def estimated_count(self, kind: str, namespace: str = "") -> int | None:
        """About how many entities ``kind`` holds, for progress, where the store can tell
        without a scan (the exact count, for a store that counts cheaply); else None."""
        return self.count(kind, namespace)

    def split_points(self, kind: str, namespace: str, pieces: int) -> list[Key]:
        """Keys that cut ``kind`` into about ``pieces`` ranges of like size, for readers
        that fetch the ranges at once; [] where the store has no use for it (one
        reader is as fast) or cannot tell."""
        return []

    def fetch_range_page(self, kind: str, namespace: str, *, start: Key | None, end: Key | None,
                         cursor: str | None = None, limit: int = 1000) -> Page:
        """Like :meth:`fetch_page`, within ``start <= key < end`` (None: unbounded)."""
        raise NotImplementedError

    def decode_raw(self, raw: RawRow) -> Entity:
        """The entity of a row from :meth:`fetch_raw_page`."""
        raise NotImplementedError

    def change_count(self, namespace: str = "") -> int | None:
        """How many write transactions have changed ``namespace`` so far (as
        this reader sees the store); None where the store cannot tell. Two
        equal counts mean the namespace's data did not change in between."""
        return None

    def get(self, key: Key) -> Entity | None:
        return self.get_multi([key])[0]

    def query(
        self,
        kind: str,
        namespace: str = "",
        *,
        batch_size: int = 1000,
        cursor: str | None = None,
        keys_only: bool = False,
    ) -> Iterator[Any]:
        """Every entity (or key) of ``kind``, in key order, paged."""
        while True:
            page = self.fetch_page(
                kind, namespace, cursor=cursor, limit=batch_size, keys_only=keys_only
            )
            yield from page.items
            if page.cursor is None:
                return
            cursor = page.cursor


def _entity_list(entities: Sequence[Entity]) -> list[Entity]:
    """The default :attr:`Backend.prepare`: the entities, as ``put_multi`` takes them."""
    return list(entities)


class Backend(Reader):
    """A store: reads, writes, id allocation, snapshots."""

    url: str

    @abc.abstractmethod
    def put_multi(self, entities: Sequence[Entity]) -> list[Key]:
        """Write entities; incomplete keys get allocated ids (set on them)."""

    @abc.abstractmethod
    def delete_multi(self, keys: Sequence[Key]) -> None: ...

    @abc.abstractmethod
    def allocate_ids(self, incomplete: Key, count: int) -> list[int]:
        """Ids for ``incomplete``'s kind that no entity has or will be given."""

    @abc.abstractmethod
    def snapshot(self) -> AbstractContextManager[Reader]:
        """A consistent read view that writers do not disturb."""

    @abc.abstractmethod
    def get_meta(self, name: str) -> str | None: ...

    @abc.abstractmethod
    def set_meta(self, name: str, value: str) -> None: ...

    #: a picklable function turning entities into what ``write_prepared``
    #: takes, so callers can encode in worker processes
    prepare: Callable[[Sequence[Entity]], Any] = staticmethod(_entity_list)

    #: like ``prepare``, for a mix of entities, :class:`JsonRow` (rows still
    #: in JSON form) and :class:`RawRow` (properties as their JSON text, in
    #: the value encoding); None where the store has no such function
    prepare_decoded: Callable[[Sequence[Entity | JsonRow | RawRow]], Any] | None = None

    def write_prepared(self, prepared: Any) -> None:
        """Write what :attr:`prepare` made (keys are not handed back: a
        store's prepared form need not say which ids it allocated)."""
        self.put_multi(prepared)

    def transaction(self) -> AbstractContextManager[None]:
        """Writes inside land together or not at all; a store that cannot
        promise that says so with :attr:`atomic` False."""
        return contextlib.nullcontext()

    #: whether :meth:`transaction` really is all-or-nothing
    atomic = False

    def exclusive(self, what: str, *, wait: float | None = None) -> AbstractContextManager[None]:
        """Hold the store's writer lock while a command that changes it runs:
        another such command waits a while (``wait`` seconds, default
        ``COURSEPORT_LOCK_WAIT``), then is refused naming this one. ``what``
        says what this process does, for that message. A live writer lease
        (see :mod:`.lease`) refuses it too."""
        return contextlib.nullcontext()

    def close(self) -> None:
        pass

    def another(self) -> "Backend":
        """A second handle on the same store, for another thread to write through
        while this one reads. A backend whose handle serializes its callers (one
        sqlite connection) opens a new one, which the caller closes; a thread-safe
        one returns itself."""
        return self

    def put(self, entity: Entity) -> Key:
        return self.put_multi([entity])[0]

    def delete(self, key: Key) -> None:
        self.delete_multi([key])

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
