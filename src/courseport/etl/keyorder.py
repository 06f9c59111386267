"""Two rows of one member with the same key: found cheaply, named exactly.

Uploading both would keep one row and lose the other while reporting two.
Archives that Course Builder and courseport write list a kind's rows in
datastore key order, so the check is, row by row, that each key sorts
strictly after the one before it: one comparison a row and no memory, and
an equal neighbour is the duplicate, named at once.

Where the order breaks (a hand-made or merged archive, a privacy export
listed by the original keys), nothing more is kept while rows are staged;
once the member has been read, its keys are read again (parsed, not typed;
by the worker processes for large members in Course Builder's line layout)
and remembered as 8-byte keyed BLAKE2b hashes in one open-addressing table:
16 bytes a row, for such members only. A hash seen twice is looked up by
reading the member again up to that row, so a collision never refuses a
good archive and a duplicate is named with both of its rows.

Keys are compared as the store keeps them (:func:`row_key`), so two
spellings of one key (``"key.id": 5`` and ``"key.name": 5``, or a ``key``
string without a parent) are the same key.
"""

from __future__ import annotations

import hashlib
import os
from array import array
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable

from .._json import STRICT
from ..archive import NotLineLayout, iter_rows
from ..datastore import Key
from ..datastore.keys import decode_sort_path, encode_sort_path
from ..sites import RowError, row_key
from .errors import EtlError

HASH_KEY = os.urandom(16)  # keyed, so that no archive can be made to collide on purpose


def order_token(key: Key) -> tuple:
    """Orders one kind's keys (of one namespace) as the store does: ids
    before names, ids by value, names by their UTF-8 bytes; equal only for
    the same key."""
    path = key._path
    if len(path) == 1:
        ident = path[0][1]
        return (0, ident) if type(ident) is int else (1, ident)
    return (2, encode_sort_path(path))


@dataclass(frozen=True)
class ChunkOrder:
    """What one run of consecutive rows says about key order."""

    first: tuple | None  # token of its first key
    last: tuple | None  # token of its last key
    sorted: bool  # strictly increasing within the run
    duplicate: tuple[int, int, Key] | None = None  # (earlier row, later row, key) of equal neighbours


def chunk_order(keys: list[Key], first_row: int) -> ChunkOrder:
    """The order of ``keys``, the rows numbered from ``first_row`` (runs in workers too)."""
    if not keys:
        return ChunkOrder(None, None, True)
    tokens = [order_token(key) for key in keys]
    previous = tokens[0]
    for index in range(1, len(tokens)):
        token = tokens[index]
        if not previous < token:
            duplicate = (first_row + index - 1, first_row + index, keys[index]) if previous == token else None
            return ChunkOrder(tokens[0], tokens[-1], False, duplicate)
        previous = token
    return ChunkOrder(tokens[0], tokens[-1], True)


class KeyOrder:
    """Follows one member's keys, run by run, in row order."""

    def __init__(self, member: str) -> None:
        self.member = member
        self.sorted = True
        self._last: tuple | None = None
        self._last_row = 0
        self._rows = 0

    def add_keys(self, keys: list[Key]) -> None:
        """The next rows' keys (this process)."""
        self.add(chunk_order(keys, self._rows + 1), len(keys))

    def add(self, order: ChunkOrder, count: int) -> None:
        """The next ``count`` rows, summed up by :func:`chunk_order`."""
        if order.duplicate is not None:
            raise duplicate_error(self.member, *order.duplicate)
        first_row = self._rows + 1
        self._rows += count
        if order.first is None:
            return
        if self.sorted and self._last is not None and not self._last < order.first:
            if self._last == order.first:
                raise EtlError(_message(self.member, self._last_row, first_row, _describe_token(order.first)))
            self.sorted = False
        if not order.sorted:
            self.sorted = False
        self._last, self._last_row = order.last, self._rows


def duplicate_error(member: str, earlier: int, later: int, key: Key) -> EtlError:
    return EtlError(_message(member, earlier, later, _describe(key)))


def _message(member: str, earlier: int, later: int, key: str) -> str:
    return (f"{member}: rows {earlier} and {later} have the same key {key}: only one of them "
            "would be kept; remove or re-key one of them")


def _describe(key: Key) -> str:
    if key.parent is None:
        return repr(key.id_or_name)
    return " / ".join(f"{kind} {ident!r}" for kind, ident in key.path)


def _describe_token(token: tuple) -> str:
    if token[0] == 2:
        return " / ".join(f"{kind} {ident!r}" for kind, ident in decode_sort_path(token[1]))
    return repr(token[1])


def _digest(key: Key, hash_key: bytes = HASH_KEY) -> int:
    data = repr(key._path).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, key=hash_key).digest(), "little")


class _DigestSet:
    """Nonzero 64-bit hashes in one array, open addressing, at most half full: 16 bytes a key."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        self.table = array("Q", bytes(8 * capacity))
        self.count = 0

    def add(self, digest: int) -> bool:
        """Add ``digest``; False if it was there already."""
        digest = digest or 1
        if 2 * (self.count + 1) > len(self.table):
            old = self.table
            self.table = array("Q", bytes(16 * len(old)))
            self.count = 0
            for item in old:
                if item:
                    self.add(item)
        table = self.table
        mask = len(table) - 1
        index = digest & mask
        while True:
            slot = table[index]
            if slot == 0:
                table[index] = digest
                self.count += 1
                return True
            if slot == digest:
                return False
            index = (index + 1) & mask


class _Seen:
    """The fallback's memory: the hashes of the keys read so far. A hash seen
    again is looked up by reading the member again up to that row (a real
    duplicate is refused then; a collision, one in 2**64 a pair, costs the read)."""

    def __init__(self, open_member: Callable[[], BinaryIO], member: str, kind: str, namespace: str) -> None:
        self.where = (open_member, member, kind, namespace)
        self.digests = _DigestSet()

    def add(self, number: int, digest: int, key: Key | None = None) -> None:
        if self.digests.add(digest):
            return
        open_member, member, kind, namespace = self.where
        if key is None:
            key = _key_at(open_member, member, kind, namespace, number)
        for row, other in _keys(open_member, member, kind, namespace):
            if row >= number:
                break
            if other == key:
                raise duplicate_error(member, row, number, key)


def find_duplicate(open_member: Callable[[], BinaryIO], member: str, kind: str, namespace: str,
                   chunks: Iterable[tuple[int, array]] | None = None) -> None:
    """Read the member's keys again; EtlError naming the first key that appears twice.

    ``chunks``: the keys' hashes as :func:`chunk_digests` gives them (worker
    processes read the member), in row order, instead of reading it here.
    """
    seen = _Seen(open_member, member, kind, namespace)
    if chunks is None:
        for number, key in _keys(open_member, member, kind, namespace):
            seen.add(number, _digest(key), key)
        return
    for first, digests in chunks:
        for offset, digest in enumerate(digests):
            seen.add(first + offset, digest)


def chunk_digests(job: tuple) -> tuple[int, array]:
    """Worker: the key hashes of one chunk of row lines (see :func:`archive.line_chunks`)."""
    kind, namespace, member, first, lines, hash_key = job
    out = array("Q")
    for offset, line in enumerate(lines):
        try:
            row = STRICT.decode(line)
        except (ValueError, RecursionError):
            raise NotLineLayout(member) from None
        if type(row) is not dict:
            raise NotLineLayout(member)
        try:
            out.append(_digest(row_key(row, kind, namespace), hash_key))
        except (RowError, ValueError) as exc:  # already refused while staging, in fact
            raise EtlError(f"{member}: row {first + offset} {exc}") from None
    return first, out


def _keys(open_member: Callable[[], BinaryIO], member: str, kind: str,
          namespace: str) -> Iterable[tuple[int, Key]]:
    with open_member() as stream:
        for number, row in enumerate(iter_rows(stream, member), 1):
            try:
                yield number, row_key(row, kind, namespace)
            except (RowError, ValueError) as exc:  # already refused while staging, in fact
                raise EtlError(f"{member}: row {number} {exc}") from None


def _key_at(open_member: Callable[[], BinaryIO], member: str, kind: str, namespace: str, wanted: int) -> Key:
    for number, key in _keys(open_member, member, kind, namespace):
        if number == wanted:
            return key
    raise EtlError(f"{member}: changed while it was read (row {wanted} is gone)")
