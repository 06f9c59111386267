"""Entities and keys as JSON that crosses a process or a network.

The form is the embedded store's own (see :mod:`.values`): a key is
``{"ns": namespace, "path": [[kind, id or name or null], ...]}``, and an
entity is one line of JSON, ``{"k": key, "s": signature, "d": properties}``,
its properties in Course Builder's value encoding with key values as keys
above. The server's API and the remote site speak it; it carries no
application id, so it means the same on every site.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator, Sequence

from .._json import MAX_DEPTH, depth_exceeded, describe_failure, dumps
from .backend import JsonRow
from .entity import Entity
from .keys import Key
from .values import ValueDecodeError, decode_properties, encode_properties


class WireError(ValueError):
    """A line that is not an entity or a key in the wire form; says which and why."""


def key_to_json(key: Key) -> dict[str, Any]:
    return {"ns": key.namespace, "path": [list(pair) for pair in key.path]}


def key_from_json(value: Any) -> Key:
    """The key ``value`` describes; WireError where it is not one."""
    if type(value) is not dict or type(value.get("path")) is not list or not value["path"]:
        raise WireError(f"not a key: {value!r:.80}")
    namespace = value.get("ns", "")
    if type(namespace) is not str:
        raise WireError(f"a key's namespace must be a string: {value!r:.80}")
    elements = value["path"]
    if len(elements) == 1:  # the common root key: checked here, built without the general machinery
        pair = elements[0]
        if type(pair) is list and len(pair) == 2 and type(pair[0]) is str and pair[0]:
            ident = pair[1]
            if (type(ident) is int and 0 < ident < 2**63) or (type(ident) is str and ident):
                return Key._make(((pair[0], ident),), namespace)
    path = []
    last = len(value["path"]) - 1
    for index, pair in enumerate(value["path"]):
        if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
            raise WireError(f"not a key path element: {pair!r:.80}")
        if not (pair[1] is None or type(pair[1]) in (int, str)):
            raise WireError(f"a key's id or name must be an integer or a string: {pair!r:.80}")
        if pair[1] is None and index != last:
            raise WireError(f"only a key's last element may lack an id or name: {value!r:.80}")
        path.append((pair[0], pair[1]))
    try:
        return Key.from_path(path, namespace)
    except (ValueError, TypeError) as exc:
        raise WireError(f"not a key: {exc}") from None


def entity_line(entity: Entity) -> str:
    data, signature = encode_properties(entity, key_to_json)
    return _line(entity.key, dumps(data), signature)


def json_row_line(row: JsonRow) -> str:
    return _line(row.key, dumps(row.props), row.signature)


def _line(key: Key, data: str, signature: dict[str, Any]) -> str:
    sig = dumps(signature) if signature else "{}"
    return f'{{"k":{dumps(key_to_json(key))},"s":{sig},"d":{data}}}'


def wire_lines(rows: Sequence[Entity | JsonRow]) -> list[bytes]:
    """Entities or JsonRows as wire lines, one each with its newline (pure and
    picklable: runs in worker processes)."""
    return [(entity_line(row) if isinstance(row, Entity) else json_row_line(row)).encode("utf-8") + b"\n"
            for row in rows]


def _int64(text: str) -> int:
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise WireError(f"integer {text[:30]}{'...' if len(text) > 30 else ''} is beyond 64 bits")
    return value


def _refuse_constant(name: str) -> Any:
    raise WireError(f"{name} is not a JSON number (numbers must be finite)")


#: strict JSON (no NaN or Infinity), integers within 64 bits
_WIRE = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_int64)


def parse_line(line: bytes | str) -> tuple[Key, dict[str, Any], dict[str, Any], str | None]:
    """``(key, properties still encoded, signature, the properties' JSON text)`` of one wire line.

    The text is given where the line is in the order this module writes (k, s,
    d) and holds only ASCII without ``<`` or ``>``, as :func:`dumps` writes it,
    so that a store can keep it without encoding the properties again; else None.
    """
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
        key_value, signature, data, data_text = _split(text)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        if isinstance(exc, WireError):
            raise
        raise WireError(describe_failure(exc) or f"not JSON: {exc}") from None
    if type(data) is not dict or type(signature) is not dict:
        raise WireError("an entity's d (properties) and s (signature) must be objects")
    if data_text is None or text.count("[") + text.count("{") > MAX_DEPTH:
        if depth_exceeded(data):
            raise WireError("an entity's properties nest too deep")
    if data_text is not None and not (data_text.isascii() and "<" not in data_text and ">" not in data_text):
        data_text = None
    return key_from_json(key_value), data, signature, data_text


def _split(text: str) -> tuple[Any, Any, Any, str | None]:
    """The line's key, signature, properties and, in the usual order, the properties' text."""
    if text.startswith('{"k":'):
        try:
            key, at = _WIRE.raw_decode(text, 5)
            if text.startswith(',"s":', at):
                signature, at = _WIRE.raw_decode(text, at + 5)
                if text.startswith(',"d":', at):
                    start = at + 5
                    data, end = _WIRE.raw_decode(text, start)
                    if end == len(text) - 1 and text[end] == "}":
                        return key, signature, data, text[start:end]
        except WireError:
            raise
        except ValueError:
            pass  # another layout (spaces, another order): the whole line is parsed below, and says why
    value = _WIRE.decode(text)
    if type(value) is not dict or set(value) - {"k", "s", "d"}:
        raise WireError("an entity line is an object with k (key), s (signature) and d (properties)")
    return value.get("k"), value.get("s", {}), value.get("d", {}), None


def decode_line(line: bytes | str) -> Entity:
    """The entity of one wire line, its values checked."""
    key, data, signature, _ = parse_line(line)
    try:
        return Entity(key, decode_properties(data, signature, key_from_json))
    except (ValueDecodeError, ValueError, TypeError) as exc:
        raise WireError(f"entity {key!r}: {exc}") from None


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Whole lines (without their newline) from a stream of byte chunks."""
    tail = b""
    for chunk in chunks:
        if not chunk:
            continue
        lines = (tail + chunk).split(b"\n")
        tail = lines.pop()
        yield from lines
    if tail:
        yield tail
