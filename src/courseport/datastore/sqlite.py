"""The embedded default store: one sqlite file in WAL mode.

Each entity is one row of a clustered (WITHOUT ROWID) table keyed by
(namespace, kind, sort key), so a kind's rows come out in datastore key
order by a range scan. Properties are kept as the JSON object Course
Builder's archives use (see :mod:`.values`), with their type signature
interned in a side table.

A snapshot is a second connection holding a read transaction open: WAL
gives it one consistent state while the main connection goes on writing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from .._json import dumps
from .._locks import LockedError, exclusive, lock_wait
from . import lease
from .backend import Backend, BadCursorError, DatastoreError, JsonRow, Page, RawRow, Reader, cursor_bytes, cursor_text
from .entity import Entity
from .keys import Key, decode_sort_path, encode_sort_path
from .values import decode_properties, encode_properties
from .wire import key_from_json as _key_from_json, key_to_json as _key_to_json

DEFAULT_APP_ID = "courseport"
#: the largest id counter sqlite can hold (2**63-1, which is also the largest key id)
_MAX_COUNTER = 2**63 - 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS signatures (id INTEGER PRIMARY KEY, sig TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS entities (
    ns TEXT NOT NULL,
    kind TEXT NOT NULL,
    pkey BLOB NOT NULL,
    data TEXT NOT NULL,
    sig INTEGER NOT NULL,
    PRIMARY KEY (ns, kind, pkey)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS id_counters (
    ns TEXT NOT NULL,
    kind TEXT NOT NULL,
    next_id INTEGER NOT NULL,
    PRIMARY KEY (ns, kind)
) WITHOUT ROWID;
"""

_KINDS_SQL = """
WITH RECURSIVE k(kind) AS (
    SELECT MIN(kind) FROM entities WHERE ns = ?1
    UNION ALL
    SELECT (SELECT MIN(kind) FROM entities WHERE ns = ?1 AND kind > k.kind)
    FROM k WHERE k.kind IS NOT NULL
) SELECT kind FROM k WHERE kind IS NOT NULL
"""

_NAMESPACES_SQL = """
WITH RECURSIVE n(ns) AS (
    SELECT MIN(ns) FROM entities
    UNION ALL
    SELECT (SELECT MIN(ns) FROM entities WHERE ns > n.ns) FROM n WHERE n.ns IS NOT NULL
) SELECT ns FROM n WHERE ns IS NOT NULL
"""


_NO_SIGNATURE: dict[str, Any] = {}


def _by_key(param: tuple) -> tuple:
    return param[0], param[1], param[2]


def _check_storable(key: Key) -> None:
    for kind, ident in key.path:
        if "\x00" in kind or (isinstance(ident, str) and "\x00" in ident):
            raise ValueError(f"{key!r}: kinds and key names may not contain NUL")


#: a row ready to write: (namespace, kind, sort key or None, parent path of an
#: incomplete key or None, explicit id or None, properties JSON, signature JSON)
Prepared = tuple

_SIGNATURE_TEXTS: dict[str, str] = {}


def _signature_text_cached(signature: dict[str, Any]) -> str:
    if not signature:
        return ""
    shape = repr(signature)
    text = _SIGNATURE_TEXTS.get(shape)
    if text is None:
        text = signature_text(signature)
        if len(_SIGNATURE_TEXTS) < 10_000:
            _SIGNATURE_TEXTS[shape] = text
    return text


def prepare_row(key: Key, data: str, signature: dict[str, Any]) -> Prepared:
    sig = _signature_text_cached(signature)
    path = key._path
    if len(path) == 1:  # the common root key, without the general machinery
        kind, ident = path[0]
        if type(ident) is int:
            return (key._namespace, kind, kind.encode("utf-8") + b"\x00\x01" + ident.to_bytes(8, "big"),
                    None, ident, data, sig)
        if type(ident) is str and "\x00" not in ident and "\x00" not in kind:
            return (key._namespace, kind, kind.encode("utf-8") + b"\x00\x02" + ident.encode("utf-8") + b"\x00",
                    None, None, data, sig)
    _check_storable(key)
    if key.is_complete:
        return (key.namespace, key.kind, key.sort_key(), None, key.id, data, sig)
    return (key.namespace, key.kind, None, key.path[:-1], None, data, sig)


def encode_entities(entities: Sequence[Entity]) -> list[Prepared]:
    """Entities as rows ready to write (pure, and cheap to pickle: runs in any process)."""
    rows = []
    for entity in entities:
        data, signature = encode_properties(entity, _key_to_json)
        rows.append(prepare_row(entity.key, dumps(data), signature))
    return rows


def prepare_decoded(rows: Sequence[Entity | JsonRow | RawRow]) -> list[Prepared]:
    """Entities, :class:`JsonRow` (rows already in JSON form) or :class:`RawRow`
    (rows already in this store's form), ready to write (pure: runs in any process)."""
    out: list[Prepared] = []
    for row in rows:
        if isinstance(row, Entity):
            out.extend(encode_entities([row]))
        elif isinstance(row, RawRow):
            out.append(prepare_row(row.key, row.data, row.signature))
        else:
            out.append(prepare_row(row.key, dumps(row.props), row.signature))
    return out


class _Signatures:
    """Interned property type signatures, shared by a store and its snapshots."""

    def __init__(self) -> None:
        self.by_id: dict[int, dict[str, Any]] = {0: {}}
        self.by_text: dict[str, int] = {"{}": 0}
        self.by_shape: dict[str, int] = {}
        self.uncommitted: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def lookup(self, conn: sqlite3.Connection, sig_id: int) -> dict[str, Any]:
        try:
            return self.by_id[sig_id]
        except KeyError:
            row = conn.execute("SELECT sig FROM signatures WHERE id = ?", (sig_id,)).fetchone()
            if row is None:
                raise DatastoreError(f"store is corrupt: unknown signature {sig_id}") from None
            with self.lock:
                self.by_id[sig_id] = json.loads(row[0])
                self.by_text[row[0]] = sig_id
            return self.by_id[sig_id]

    def intern(self, conn: sqlite3.Connection, signature: dict[str, Any]) -> int:
        if not signature:
            return 0
        shape = repr(signature)  # same-shaped entities repeat it: a cheap cache key
        sig_id = self.by_shape.get(shape)
        if sig_id is not None:
            return sig_id
        sig_id = self.intern_text(conn, signature_text(signature))
        self.by_shape[shape] = sig_id
        return sig_id

    def intern_text(self, conn: sqlite3.Connection, text: str) -> int:
        sig_id = self.by_text.get(text)
        if sig_id is not None:
            return sig_id
        signature = json.loads(text)
        conn.execute("INSERT OR IGNORE INTO signatures (sig) VALUES (?)", (text,))
        sig_id = conn.execute("SELECT id FROM signatures WHERE sig = ?", (text,)).fetchone()[0]
        with self.lock:
            self.by_text[text] = sig_id
            self.by_id[sig_id] = signature
            self.uncommitted.append((text, sig_id))
        return sig_id

    def committed(self) -> None:
        self.uncommitted.clear()

    def rolled_back(self) -> None:
        """Forget signatures interned by a transaction that did not commit."""
        with self.lock:
            lost = {sig_id for _, sig_id in self.uncommitted}
            for text, sig_id in self.uncommitted:
                self.by_text.pop(text, None)
                self.by_id.pop(sig_id, None)
            self.by_shape = {k: v for k, v in self.by_shape.items() if v not in lost}
            self.uncommitted.clear()


def signature_text(signature: dict[str, Any]) -> str:
    return json.dumps(signature, sort_keys=True, separators=(",", ":"))


def _cursor_tag(namespace: str, kind: str) -> bytes:
    return hashlib.sha1(f"{namespace}\x00{kind}".encode("utf-8")).digest()[:4]


def make_cursor(namespace: str, kind: str, pkey: bytes) -> str:
    return cursor_text(_cursor_tag(namespace, kind) + pkey)


def parse_cursor(namespace: str, kind: str, cursor: str) -> bytes:
    raw = cursor_bytes(cursor)
    if raw[:4] != _cursor_tag(namespace, kind):
        raise BadCursorError(f"cursor {cursor!r:.40} is not for kind {kind!r} in namespace {namespace!r}")
    return raw[4:]


class _SqliteReader(Reader):
    def __init__(self, conn: sqlite3.Connection, signatures: _Signatures, lock: threading.RLock) -> None:
        self._conn = conn
        self._signatures = signatures
        self._lock = lock

    @property
    def app_id(self) -> str:  # type: ignore[override]
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE name = 'app_id'").fetchone()
        return row[0] if row else DEFAULT_APP_ID

    def _entity(self, key: Key, data: str, sig_id: int) -> Entity:
        signature = self._signatures.lookup(self._conn, sig_id) if sig_id else {}
        return Entity(key, decode_properties(json.loads(data), signature, _key_from_json))

    def decode_raw(self, raw: RawRow) -> Entity:
        return Entity(raw.key, decode_properties(json.loads(raw.data), raw.signature, _key_from_json))

    def _lookup(self, keys: Sequence[Key], columns: str) -> dict[tuple[str, str, bytes], tuple]:
        """Rows of ``keys`` that exist, by (namespace, kind, sort key)."""
        groups: dict[tuple[str, str], list[bytes]] = {}
        for key in keys:
            groups.setdefault((key.namespace, key.kind), []).append(key.sort_key())
        found: dict[tuple[str, str, bytes], tuple] = {}
        with self._lock:
            for (namespace, kind), pkeys in groups.items():
                for start in range(0, len(pkeys), 500):
                    chunk = pkeys[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    for row in self._conn.execute(
                        f"SELECT pkey{columns} FROM entities WHERE ns = ? AND kind = ? AND pkey IN ({marks})",
                        (namespace, kind, *chunk),
                    ):
                        found[(namespace, kind, row[0])] = row[1:]
        return found

    def get_multi(self, keys: Sequence[Key]) -> list[Entity | None]:
        found = self._lookup(keys, ", data, sig")
        out: list[Entity | None] = []
        for key in keys:
            row = found.get((key.namespace, key.kind, key.sort_key()))
            out.append(None if row is None else self._entity(key, row[0], row[1]))
        return out

    def exists_multi(self, keys: Sequence[Key]) -> list[bool]:
        found = self._lookup(keys, "")
        return [(key.namespace, key.kind, key.sort_key()) in found for key in keys]

    def _rows(
        self, columns: str, kind: str, namespace: str, cursor: str | None, limit: int
    ) -> list[tuple]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        start = parse_cursor(namespace, kind, cursor) if cursor else b""
        with self._lock:
            return self._conn.execute(
                f"SELECT pkey{columns} FROM entities WHERE ns = ? AND kind = ? AND pkey > ?"
                " ORDER BY pkey LIMIT ?",
                (namespace, kind, start, limit + 1),
            ).fetchall()

    def _page_cursor(self, rows: list[tuple], namespace: str, kind: str, limit: int) -> str | None:
        if len(rows) > limit:
            return make_cursor(namespace, kind, rows[limit - 1][0])
        return None

    def fetch_page(
        self,
        kind: str,
        namespace: str = "",
        *,
        cursor: str | None = None,
        limit: int = 1000,
        keys_only: bool = False,
    ) -> Page:
        rows = self._rows("" if keys_only else ", data, sig", kind, namespace, cursor, limit)
        next_cursor = self._page_cursor(rows, namespace, kind, limit)
        rows = rows[:limit]
        to_key = _KeyDecoder(kind, namespace)
        if keys_only:
            items: list[Any] = [to_key(row[0]) for row in rows]
        else:
            items = [self._entity(to_key(row[0]), row[1], row[2]) for row in rows]
        return Page(items, next_cursor, next_cursor is not None)

    def fetch_raw_page(
        self, kind: str, namespace: str = "", *, cursor: str | None = None, limit: int = 1000
    ) -> tuple[list[RawRow], str | None]:
        rows = self._rows(", data, sig", kind, namespace, cursor, limit)
        next_cursor = self._page_cursor(rows, namespace, kind, limit)
        to_key = _KeyDecoder(kind, namespace)
        lookup = self._signatures.lookup
        conn = self._conn
        return (
            [
                RawRow(to_key(pkey), data, lookup(conn, sig) if sig else _NO_SIGNATURE)
                for pkey, data, sig in rows[:limit]
            ],
            next_cursor,
        )

    def fetch_export_page(
        self, kind: str, namespace: str = "", *, cursor: str | None = None, limit: int = 1000
    ) -> tuple[list[tuple[Any, str, dict[str, Any]]], str | None]:
        rows = self._rows(", data, sig", kind, namespace, cursor, limit)
        next_cursor = self._page_cursor(rows, namespace, kind, limit)
        ident = _KeyDecoder(kind, namespace).ident
        lookup = self._signatures.lookup
        conn = self._conn
        return (
            [(ident(pkey), data, lookup(conn, sig) if sig else _NO_SIGNATURE) for pkey, data, sig in rows[:limit]],
            next_cursor,
        )

    def kinds(self, namespace: str = "") -> list[str]:
        with self._lock:
            return [row[0] for row in self._conn.execute(_KINDS_SQL, (namespace,))]

    def namespaces(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._conn.execute(_NAMESPACES_SQL)]

    def change_count(self, namespace: str = "") -> int | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (_changes_name(namespace),)).fetchone()
        return int(row[0]) if row else 0

    def count(self, kind: str, namespace: str = "") -> int:
        with self._lock:
            return self._conn.execute(
                "SELECT COUNT(*) FROM entities WHERE ns = ? AND kind = ?", (namespace, kind)
            ).fetchone()[0]


def _changes_name(namespace: str) -> str:
    return f"changes:{namespace}"


class _KeyDecoder:
    """Sort key bytes back to a Key, with a fast path for root keys."""

    def __init__(self, kind: str, namespace: str) -> None:
        self.kind = kind
        self.namespace = namespace
        prefix = kind.encode("utf-8") + b"\x00"
        self.id_prefix = prefix + b"\x01"
        self.name_prefix = prefix + b"\x02"
        self.id_len = len(self.id_prefix) + 8

    def __call__(self, pkey: bytes) -> Key:
        ident = self.ident(pkey)
        return ident if type(ident) is Key else Key._make(((self.kind, ident),), self.namespace)

    def ident(self, pkey: bytes) -> Any:
        """The id or name of a root key; the whole Key of any other."""
        if len(pkey) == self.id_len and pkey.startswith(self.id_prefix):
            return int.from_bytes(pkey[-8:], "big")
        if pkey.startswith(self.name_prefix) and pkey.find(b"\x00", len(self.name_prefix)) == len(pkey) - 1:
            return pkey[len(self.name_prefix) : -1].decode("utf-8")
        return Key.from_path(decode_sort_path(pkey), self.namespace)


def _describe_sqlite_error(path: Path, exc: sqlite3.OperationalError) -> str:
    text = str(exc)
    if "full" in text:
        return f"the disk holding the store {path} is full ({text}): free some space and run again; nothing was written"
    if "readonly" in text or "read-only" in text:
        return f"the store {path} cannot be written ({text}): check its permissions and its file system"
    if "locked" in text or "busy" in text:
        return f"the store {path} is busy with another write ({text}); try again when it is done"
    return f"the store {path} failed: {text}"


class SqliteBackend(_SqliteReader, Backend):
    """The embedded store in one sqlite file (created when missing)."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise DatastoreError(f"no store at {self.path}: run 'courseport init' first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.url = f"sqlite:///{self.path}"
        self._check_is_store(create)
        self._in_transaction = False
        self._touched: set[str] = set()  # namespaces the open transaction changed
        conn = self._connect()
        with conn:
            conn.executescript(_SCHEMA)
        super().__init__(conn, _Signatures(), threading.RLock())

    def _check_is_store(self, create: bool) -> None:
        """Refuse, untouched, a sqlite file that some other program owns."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            try:
                tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            raise DatastoreError(f"{self.path} is not a courseport store: {exc}") from None
        if "entities" not in tables and (tables or not create):
            raise DatastoreError(
                f"{self.path} is not a courseport store (it has tables of another program); "
                "name a new file"
            )

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            # rows of 0.3-1 KB: large pages keep them out of overflow chains
            conn.execute("PRAGMA page_size=32768")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA cache_size=-65536")  # 64 MiB
        except sqlite3.DatabaseError as exc:
            raise DatastoreError(f"{self.path} is not a courseport store: {exc}") from None
        return conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Every write inside is one transaction: all of it lands, or none."""
        with self._lock:
            if self._in_transaction:
                yield
                return
            with self._translated():  # another process holding the write lock: busy
                self._conn.execute("BEGIN IMMEDIATE")
            self._in_transaction = True
            try:
                with self._translated():
                    yield
                    self._commit()
            except BaseException:
                self._rollback()
                raise
            finally:
                self._in_transaction = False

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write: its own transaction, or part of the one open."""
        with self.transaction():
            yield self._conn

    def _commit(self) -> None:
        """Count the change in every namespace written, then commit."""
        if self._touched:
            self._conn.executemany(
                "INSERT INTO meta (name, value) VALUES (?, '1') ON CONFLICT (name) "
                "DO UPDATE SET value = CAST(value AS INTEGER) + 1",
                [(_changes_name(ns),) for ns in sorted(self._touched)],
            )
        self._conn.execute("COMMIT")
        self._touched.clear()
        self._signatures.committed()

    def _rollback(self) -> None:
        self._touched.clear()
        # sqlite has already rolled back after some errors (a full disk, say)
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.DatabaseError):
                self._conn.execute("ROLLBACK")
        self._signatures.rolled_back()

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """sqlite's errors about the machine, as one-line store errors."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise DatastoreError(_describe_sqlite_error(self.path, exc)) from None

    @contextmanager
    def exclusive(self, what: str, *, wait: float | None = None) -> Iterator[None]:
        deadline = time.monotonic() + (lock_wait() if wait is None else wait)
        while True:
            with exclusive(
                f"{self.path}.lock", what, subject=f"the store {self.path}",
                fix="wait for it to finish, then run again", wait=max(0.0, deadline - time.monotonic()),
            ):
                held = lease.current(self)
                if held is None:
                    yield
                    return
            # a writer through the server holds the lease: wait for it as for the lock
            if time.monotonic() >= deadline:
                raise LockedError(f"the store {self.path} is in use by {held.describe()}: "
                                  "wait for it to finish, then run again")
            time.sleep(0.2)

    def get_meta(self, name: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_meta(self, name: str, value: str) -> None:
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    prepare = staticmethod(encode_entities)
    prepare_decoded = staticmethod(prepare_decoded)
    atomic = True

    def put_multi(self, entities: Sequence[Entity]) -> list[Key]:
        for index, ident in self._write_rows(encode_entities(entities)):
            entities[index].key = entities[index].key.with_id(ident)
        return [entity.key for entity in entities]

    def write_prepared(self, prepared: Sequence[Prepared]) -> None:
        self._write_rows(prepared)

    def put_raw_multi(self, rows: Sequence[RawRow]) -> list[Key]:
        """Write already-encoded rows; incomplete keys get ids (set on the rows)."""
        for index, ident in self._write_rows([prepare_row(r.key, r.data, r.signature) for r in rows]):
            rows[index].key = rows[index].key.with_id(ident)
        return [row.key for row in rows]

    def _write_rows(self, rows: Sequence[Prepared]) -> list[tuple[int, int]]:
        """Write prepared rows; returns (index, id) of each row given a new id."""
        if not rows:
            return []
        intern = self._signatures.intern_text
        allocated: list[tuple[int, int]] = []
        with self._write() as conn:
            # reserve the batch's explicit ids first, so that its incomplete
            # keys cannot be given one of them (and overwrite that entity)
            top_ids: dict[tuple[str, str], int] = {}
            pending: dict[tuple[str, str], list[int]] = {}
            for index, row in enumerate(rows):
                ident = row[4]
                if ident is not None:
                    slot = (row[0], row[1])
                    if ident > top_ids.get(slot, 0):
                        top_ids[slot] = ident
                elif row[2] is None:
                    pending.setdefault((row[0], row[1]), []).append(index)
            self._reserve(conn, top_ids)
            pkeys: dict[int, bytes] = {}
            for (namespace, kind), indexes in pending.items():
                first = self._take_ids(conn, namespace, kind, len(indexes))
                for offset, index in enumerate(indexes):
                    ident = first + offset
                    pkeys[index] = encode_sort_path(rows[index][3] + ((kind, ident),))
                    allocated.append((index, ident))
            self._touched.update(row[0] for row in rows)
            params = [
                (row[0], row[1], row[2] if row[2] is not None else pkeys[index], row[5],
                 intern(conn, row[6]) if row[6] else 0)
                for index, row in enumerate(rows)
            ]
            # in key order the B-tree is walked once, not once per row at random
            params.sort(key=_by_key)
            conn.executemany(
                "INSERT OR REPLACE INTO entities (ns, kind, pkey, data, sig) VALUES (?, ?, ?, ?, ?)",
                params,
            )
        return allocated

    @staticmethod
    def _take_ids(conn: sqlite3.Connection, namespace: str, kind: str, count: int) -> int:
        row = conn.execute(
            "SELECT next_id FROM id_counters WHERE ns = ? AND kind = ?", (namespace, kind)
        ).fetchone()
        first = row[0] if row else 1
        if first + count > _MAX_COUNTER:
            raise DatastoreError(f"no {count:,} ids left for kind {kind!r} in namespace {namespace!r}")
        conn.execute(
            "INSERT OR REPLACE INTO id_counters (ns, kind, next_id) VALUES (?, ?, ?)",
            (namespace, kind, first + count),
        )
        return first

    @staticmethod
    def _reserve(conn: sqlite3.Connection, top_ids: dict[tuple[str, str], int]) -> None:
        if top_ids:
            conn.executemany(
                "INSERT INTO id_counters (ns, kind, next_id) VALUES (?, ?, ?)"
                " ON CONFLICT (ns, kind) DO UPDATE SET next_id = MAX(next_id, excluded.next_id)",
                # clamped: an explicit id 2**63-1 leaves no id to allocate
                [(ns, kind, min(top + 1, _MAX_COUNTER)) for (ns, kind), top in top_ids.items()],
            )

    def allocate_ids(self, incomplete: Key, count: int) -> list[int]:
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._write() as conn:
            first = self._take_ids(conn, incomplete.namespace, incomplete.kind, count)
        return list(range(first, first + count))

    def delete_multi(self, keys: Sequence[Key]) -> None:
        if not keys:
            return
        with self._write() as conn:
            self._touched.update(key.namespace for key in keys)
            conn.executemany(
                "DELETE FROM entities WHERE ns = ? AND kind = ? AND pkey = ?",
                [(key.namespace, key.kind, key.sort_key()) for key in keys],
            )

    @contextmanager
    def snapshot(self) -> Iterator[Reader]:
        conn = self._connect()
        # a snapshot scans kinds in key order, each page once: the OS keeps what is
        # worth keeping, and a server with several downloads at once stays small
        conn.execute("PRAGMA cache_size=-8192")  # 8 MiB
        try:
            conn.execute("BEGIN")
            conn.execute("SELECT COUNT(*) FROM meta").fetchone()  # pins the read snapshot
            yield _SqliteReader(conn, self._signatures, threading.RLock())
        finally:
            try:
                conn.execute("ROLLBACK")
            finally:
                conn.close()

    def size_on_disk(self) -> int:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            candidate = Path(f"{self.path}{suffix}")
            if candidate.exists():
                total += candidate.stat().st_size
        return total

    def another(self) -> "SqliteBackend":
        return SqliteBackend(self.path, create=False)

    def close(self) -> None:
        with self._lock:
            try:
                # don't wait for other connections' readers (a snapshot in
                # another process would block this for the whole timeout):
                # a checkpoint they prevent is simply left for later
                self._conn.execute("PRAGMA busy_timeout=0")
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.DatabaseError:
                pass
            self._conn.close()
