"""Datastore keys, and App Engine's URL-safe key string (spec §1.6.1).

A key is a path of (kind, id-or-name) pairs in a namespace. Its string form
is the URL-safe base64 (padding stripped) of App Engine's serialized
``Reference`` protocol buffer::

    Reference { app = 13: string; path = 14: Path; name_space = 20: string }
    Path      { repeated group Element = 1 { type = 2: string;
                                             id = 3: int64; name = 4: string } }

which is what Course Builder writes into the ``key`` field of archive rows.
"""

from __future__ import annotations

import base64
import binascii
from functools import total_ordering
from typing import Callable, Union

from ..errors import UserError

IdOrName = Union[int, str]

_MAX_ID = 2**63 - 1


class KeyError_(UserError, ValueError):
    """A key that cannot be built or decoded."""


@total_ordering
class Key:
    """An immutable datastore key: ``Key("Student", "1234", namespace="ns_x")``.

    ``Key("Parent", 1, "Child", "a")`` builds a child key. The last element
    may be incomplete (kind only), as for an entity whose id is yet to be
    allocated.
    """

    __slots__ = ("_path", "_namespace", "_hash")

    def __init__(self, *path_args: IdOrName, namespace: str = "") -> None:
        if not path_args:
            raise KeyError_("a key needs at least a kind")
        pairs: list[tuple[str, IdOrName | None]] = []
        args = list(path_args)
        while args:
            kind = args.pop(0)
            if not isinstance(kind, str) or not kind:
                raise KeyError_(f"key kind must be a non-empty string, not {kind!r}")
            ident = args.pop(0) if args else None
            if ident is not None:
                _check_ident(ident)
            elif args:
                raise KeyError_("only the last element of a key path may be incomplete")
            pairs.append((kind, ident))
        self._path: tuple[tuple[str, IdOrName | None], ...] = tuple(pairs)
        self._namespace = namespace or ""
        self._hash = hash((self._path, self._namespace))

    @classmethod
    def from_path(
        cls, path: tuple[tuple[str, IdOrName | None], ...] | list, namespace: str = ""
    ) -> "Key":
        flat: list[IdOrName] = []
        for kind, ident in path:
            flat.append(kind)
            if ident is not None:
                flat.append(ident)
        return cls(*flat, namespace=namespace)

    @property
    def path(self) -> tuple[tuple[str, IdOrName | None], ...]:
        return self._path

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def kind(self) -> str:
        return self._path[-1][0]

    @property
    def id_or_name(self) -> IdOrName | None:
        return self._path[-1][1]

    @property
    def id(self) -> int | None:
        ident = self._path[-1][1]
        return ident if isinstance(ident, int) else None

    @property
    def name(self) -> str | None:
        ident = self._path[-1][1]
        return ident if isinstance(ident, str) else None

    @property
    def is_complete(self) -> bool:
        return self._path[-1][1] is not None

    @property
    def parent(self) -> "Key | None":
        if len(self._path) == 1:
            return None
        return Key.from_path(self._path[:-1], self._namespace)

    def with_id(self, ident: IdOrName) -> "Key":
        """This (incomplete) key completed with ``ident``."""
        _check_ident(ident)
        return Key._make(self._path[:-1] + ((self.kind, ident),), self._namespace)

    @classmethod
    def _make(cls, path: tuple[tuple[str, IdOrName | None], ...], namespace: str) -> "Key":
        """A key from an already-valid path, skipping validation."""
        key = object.__new__(cls)
        key._path = path
        key._namespace = namespace
        key._hash = hash((path, namespace))
        return key

    def __reduce__(self):
        return (Key._make, (self._path, self._namespace))

    def with_namespace(self, namespace: str) -> "Key":
        return Key.from_path(self._path, namespace)

    def sort_key(self) -> bytes:
        """Bytes whose order is datastore key order (ids before names)."""
        return encode_sort_path(self._path)

    def to_urlsafe(self, app_id: str) -> str:
        """App Engine's URL-safe key string for this key in ``app_id``."""
        return encode_reference(app_id, self._path, self._namespace)

    @classmethod
    def from_urlsafe(cls, text: str) -> tuple[str, "Key"]:
        """Decode a key string: returns ``(app_id, key)``."""
        app, path, namespace = decode_reference(text)
        return app, cls.from_path(path, namespace)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return self._path == other._path and self._namespace == other._namespace

    def __lt__(self, other: "Key") -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return (self._namespace, self.sort_key()) < (other._namespace, other.sort_key())

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        parts = ", ".join(f"{k!r}, {i!r}" if i is not None else repr(k) for k, i in self._path)
        ns = f", namespace={self._namespace!r}" if self._namespace else ""
        return f"Key({parts}{ns})"


def _check_ident(ident: object) -> None:
    if isinstance(ident, bool) or not isinstance(ident, (int, str)):
        raise KeyError_(f"key id must be an int or a name string, not {ident!r}")
    if isinstance(ident, int) and not 0 < ident <= _MAX_ID:
        raise KeyError_(f"key id must be between 1 and 2**63-1, not {ident}")
    if isinstance(ident, str) and not ident:
        raise KeyError_("key name must not be empty")


# --- sort order -------------------------------------------------------------
# Each element: kind bytes, NUL, then 0x01 + 8-byte big-endian id or
# 0x02 + UTF-8 name. memcmp order of the result is datastore key order.


def encode_sort_path(path: tuple[tuple[str, IdOrName | None], ...]) -> bytes:
    out = bytearray()
    for kind, ident in path:
        out += kind.encode("utf-8")
        out += b"\x00"
        if isinstance(ident, int):
            out += b"\x01" + ident.to_bytes(8, "big")
        elif ident is None:
            out += b"\x00"
        else:
            out += b"\x02" + ident.encode("utf-8") + b"\x00"
    return bytes(out)


def decode_sort_path(data: bytes) -> tuple[tuple[str, IdOrName | None], ...]:
    path: list[tuple[str, IdOrName | None]] = []
    pos = 0
    while pos < len(data):
        end = data.index(b"\x00", pos)
        kind = data[pos:end].decode("utf-8")
        tag = data[end + 1]
        if tag == 1:
            ident: IdOrName | None = int.from_bytes(data[end + 2 : end + 10], "big")
            pos = end + 10
        elif tag == 2:
            name_end = data.index(b"\x00", end + 2)
            ident = data[end + 2 : name_end].decode("utf-8")
            pos = name_end + 1
        else:
            ident = None
            pos = end + 2
        path.append((kind, ident))
    return tuple(path)


# --- Reference protocol buffer -----------------------------------------------

_T_APP = 0x6A  # field 13, length-delimited
_T_PATH = 0x72  # field 14, length-delimited
_T_NAMESPACE = b"\xa2\x01"  # field 20, length-delimited
_T_ELEMENT_START = 0x0B  # group 1 start
_T_ELEMENT_END = 0x0C  # group 1 end
_T_TYPE = 0x12  # field 2, string
_T_ID = 0x18  # field 3, varint
_T_NAME = 0x22  # field 4, string


def _varint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return bytes((value,))
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(tag: bytes | int, text: str) -> bytes:
    raw = text.encode("utf-8")
    head = bytes([tag]) if isinstance(tag, int) else tag
    return head + _varint(len(raw)) + raw


def encode_reference(
    app_id: str, path: tuple[tuple[str, IdOrName | None], ...], namespace: str = ""
) -> str:
    elements = bytearray()
    for kind, ident in path:
        elements.append(_T_ELEMENT_START)
        elements += _string(_T_TYPE, kind)
        if isinstance(ident, int):
            elements.append(_T_ID)
            elements += _varint(ident)
        elif ident is not None:
            elements += _string(_T_NAME, ident)
        elements.append(_T_ELEMENT_END)
    out = bytearray(_string(_T_APP, app_id))
    out.append(_T_PATH)
    out += _varint(len(elements))
    out += elements
    if namespace:
        out += _string(_T_NAMESPACE, namespace)
    return base64.urlsafe_b64encode(bytes(out)).rstrip(b"=").decode("ascii")


class KeyStringEncoder:
    """Fast :meth:`Key.to_urlsafe` for many keys of one app (the download hot path).

    Root keys, nearly all of them, are built from byte pieces cached per
    (kind, namespace); other keys take the general path.
    """

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self._app = _string(_T_APP, app_id) + bytes([_T_PATH])
        self._roots: dict[tuple[str, str], Callable[[IdOrName], str]] = {}

    def root(self, kind: str, namespace: str) -> Callable[[IdOrName], str]:
        """A function from an id or name to the key string of ``kind/ident``."""
        encode = self._roots.get((kind, namespace))
        if encode is None:
            encode = self._roots[(kind, namespace)] = self._root(kind, namespace)
        return encode

    def _root(self, kind: str, namespace: str) -> Callable[[IdOrName], str]:
        head = bytes([_T_ELEMENT_START]) + _string(_T_TYPE, kind)
        tail = _string(_T_NAMESPACE, namespace) if namespace else b""
        app, head_id, head_name = self._app, head + bytes([_T_ID]), head + bytes([_T_NAME])
        end = bytes([_T_ELEMENT_END])
        b2a, table = binascii.b2a_base64, _TO_URLSAFE

        def encode(ident: IdOrName) -> str:
            if type(ident) is int:
                element = head_id + _varint(ident) + end
            else:
                raw = ident.encode("utf-8")  # type: ignore[union-attr]
                element = head_name + _varint(len(raw)) + raw + end
            data = app + _varint(len(element)) + element + tail
            return b2a(data, newline=False).translate(table).rstrip(b"=").decode("ascii")

        return encode

    def __call__(self, key: Key) -> str:
        path = key._path
        if len(path) == 1:
            kind, ident = path[0]
            if ident is not None:
                return self.root(kind, key._namespace)(ident)
        return encode_reference(self.app_id, path, key._namespace)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def done(self) -> bool:
        return self.pos >= len(self.data)

    def varint(self) -> int:
        shift = result = 0
        while True:
            if self.pos >= len(self.data):
                raise KeyError_("truncated key string")
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 63:
                raise KeyError_("malformed varint in key string")
        return result - (1 << 64) if result >= 1 << 63 else result

    def chunk(self) -> bytes:
        size = self.varint()
        if size < 0 or self.pos + size > len(self.data):
            raise KeyError_("truncated key string")
        start, self.pos = self.pos, self.pos + size
        return self.data[start : self.pos]

    def skip(self, wire_type: int) -> None:
        if wire_type == 0:
            self.varint()
        elif wire_type == 2:
            self.chunk()
        elif wire_type == 1:
            self.pos += 8
        elif wire_type == 5:
            self.pos += 4
        else:
            raise KeyError_(f"unsupported wire type {wire_type} in key string")


def _decode_path(data: bytes) -> tuple[tuple[str, IdOrName | None], ...]:
    reader = _Reader(data)
    path: list[tuple[str, IdOrName | None]] = []
    while not reader.done():
        tag = reader.varint()
        if tag != _T_ELEMENT_START:
            raise KeyError_("malformed key path")
        kind: str | None = None
        ident: IdOrName | None = None
        while True:
            tag = reader.varint()
            if tag == _T_ELEMENT_END:
                break
            if tag == _T_TYPE:
                kind = reader.chunk().decode("utf-8")
            elif tag == _T_ID:
                ident = reader.varint()
            elif tag == _T_NAME:
                ident = reader.chunk().decode("utf-8")
            else:
                reader.skip(tag & 7)
        if not kind:
            raise KeyError_("key path element without a kind")
        path.append((kind, ident))
    if not path:
        raise KeyError_("key string has an empty path")
    return tuple(path)


def reference_is_root(text: str) -> bool:
    """Whether a key string's path has one element (a cheap partial parse).

    False when it has more, or cannot be read this way (the caller then
    decodes it in full).
    """
    try:
        data = binascii.a2b_base64(text.encode("ascii").translate(_FROM_URLSAFE) + b"=" * (-len(text) % 4))
        if data[0] != _T_APP:
            return False
        pos = 2 + data[1]
        if data[1] & 0x80 or data[pos] != _T_PATH:
            return False
        path_len = data[pos + 1]
        if path_len & 0x80:
            return False
        start = pos + 2
        if data[start] != _T_ELEMENT_START or data[start + 1] != _T_TYPE:
            return False
        kind_len = data[start + 2]
        if kind_len & 0x80:
            return False
        cursor = start + 3 + kind_len
        tag = data[cursor]
        if tag == _T_ID:
            cursor += 1
            while data[cursor] & 0x80:
                cursor += 1
            cursor += 1
        elif tag == _T_NAME:
            name_len = data[cursor + 1]
            if name_len & 0x80:
                return False
            cursor += 2 + name_len
        else:
            return False
        return data[cursor] == _T_ELEMENT_END and cursor + 1 - start == path_len
    except (IndexError, ValueError, TypeError, binascii.Error, UnicodeEncodeError):
        return False


_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")


def decode_reference(text: str) -> tuple[str, tuple[tuple[str, IdOrName | None], ...], str]:
    """Decode a URL-safe key string into ``(app_id, path, namespace)``."""
    if not isinstance(text, str) or not text:
        raise KeyError_(f"not a key string: {text!r}")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise KeyError_(f"not a key string: {text!r}") from exc
    reader = _Reader(data)
    app = namespace = ""
    path: tuple[tuple[str, IdOrName | None], ...] | None = None
    try:
        while not reader.done():
            tag = reader.varint()
            if tag == _T_APP:
                app = reader.chunk().decode("utf-8")
            elif tag == _T_PATH:
                path = _decode_path(reader.chunk())
            elif tag == 162:
                namespace = reader.chunk().decode("utf-8")
            else:
                reader.skip(tag & 7)
    except (IndexError, UnicodeDecodeError) as exc:
        raise KeyError_(f"malformed key string: {text!r}") from exc
    if path is None:
        raise KeyError_(f"key string has no path: {text!r}")
    return app, path, namespace

