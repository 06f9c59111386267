"""Checks of what API requests carry: keys, namespaces, and batches of entities.

They run in the server's worker processes too (see :mod:`.batches`), so
they raise :class:`ApiError` (a status and a message) and touch no store.
"""

from __future__ import annotations

import json
from typing import Any

from ..courses.rules import ACCOUNTS_NAMESPACE
from ..datastore import Entity, JsonRow, Key, RawRow
from ..datastore.values import decode_properties
from ..datastore.wire import WireError, key_from_json, parse_line
from ..sites.protocol import MAX_ENTITY_BYTES


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_text(value: str, what: str) -> str:
    """``value``, refused where no store can keep it: a lone surrogate (JSON's ``"\\ud800"``)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, f"{what} is not valid unicode: it holds a lone surrogate") from None
    return value


def check_namespace(namespace: str) -> str:
    check_text(namespace, "the namespace")
    if namespace == ACCOUNTS_NAMESPACE:
        raise ApiError(403, f"namespace {namespace!r} holds the server's accounts: it is not served")
    return namespace


def check_key(key: Key) -> Key:
    """``key``, refused where it names the accounts' namespace or holds text no store can keep."""
    check_namespace(key.namespace)
    for kind, ident in key.path:
        check_text(kind, "a key's kind")
        if isinstance(ident, str):
            check_text(ident, "a key's name")
    return key


def wire_rows(lines: list[bytes], first: int = 1) -> list[Entity | JsonRow | RawRow]:
    """The batch's rows, their values checked by decoding them: rows holding key
    values as Entities, the rest as the line gave them (a RawRow keeps the
    properties' text, a JsonRow their JSON), which a store takes without
    encoding them again. ``first`` numbers the lines in messages."""
    rows: list[Entity | JsonRow | RawRow] = []
    for number, line in enumerate(lines, first):
        if len(line) > MAX_ENTITY_BYTES:
            raise ApiError(413, f"entity {number} is over the {MAX_ENTITY_BYTES:,}-byte limit for one entity")
        try:
            key, data, signature, text = parse_line(line)
            check_key(key)
            if signature:
                decoded = decode_properties(dict(data), signature, key_from_json)  # a shallow copy: data stays JSON
                if holds_keys(signature):
                    rows.append(Entity(key, decoded))
                    continue
            rows.append(RawRow(key, text, signature) if text is not None else JsonRow(key, data, signature))
        except (WireError, ValueError, TypeError) as exc:
            raise ApiError(400, f"entity {number}: {exc}") from None
    return rows


def as_entity(row: JsonRow | RawRow) -> Entity:
    if isinstance(row, RawRow):
        return Entity(row.key, decode_properties(json.loads(row.data), row.signature, key_from_json))
    return row.entity()


def holds_keys(signature: dict[str, Any]) -> bool:
    codes = signature.values()
    return "key" in codes or any(type(code) is list and "key" in code for code in codes)


def check_batch(job: tuple) -> tuple:
    """Worker: check one chunk of a put and make it ready for the store.

    ``job`` is ``(lines, number of the first, the store's prepare_decoded)``.
    Returns ``("prepared", rows ready to write)`` when every key is complete,
    ``("rows", rows)`` when some key awaits an id, or ``("error", status, message)``.
    """
    lines, first, prepare = job
    try:
        rows = wire_rows(lines, first)
        if not all(row.key.is_complete for row in rows):
            return ("rows", rows)
        try:
            return ("prepared", prepare(rows))
        except ValueError as exc:  # a key the store cannot hold
            raise ApiError(400, f"entities {first}-{first + len(lines) - 1}: {exc}") from None
    except ApiError as exc:
        return ("error", exc.status, str(exc))
