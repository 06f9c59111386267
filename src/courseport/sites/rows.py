"""Archive rows: entities to ``models/<Kind>.json`` rows and back (spec §1.6, §1.7).

A row is the entity's properties in Course Builder's value encoding plus
``key.name`` (the literal ``"None"`` for id keys), ``key.id`` (null for name
keys) and ``key``, the App Engine key string with the source's app id and
namespace.

The embedded store already keeps properties in that encoding, so a plain
download splices the stored JSON into the row without decoding it. A
privacy download decodes, applies the kind's privacy rules and encodes.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from typing import Any, Callable

from .._json import dumps
from ..datastore import Entity, JsonRow, Key, RawRow
from ..datastore.keys import KeyStringEncoder, reference_is_root
from ..datastore.values import encode_properties, encode_value
from ..errors import UserError
from ..models import ExportContext, SchemaError, export_private, schema_for
from ..models.schema import (
    INT64_MAX,
    INT64_MIN,
    Prop,
    Transform,
    check_value,
    coerce_value,
)

KEY_FIELDS = ("key", "key.id", "key.name")
_KEY_FIELD_SET = frozenset(KEY_FIELDS)


def _untyped(value: Any) -> Any:
    """Marks a property the kind's schema does not type (never called)."""
    return value


class RowError(UserError, ValueError):
    """An archive row that cannot be loaded."""


def _row_text(ident: Any, data: str, key_string: str) -> str:
    """An archive row: ``key.name``/``key.id``, the stored properties, ``key``."""
    head = f'{{"key.name": "None", "key.id": {ident}' if type(ident) is int else \
        f'{{"key.name": {dumps(ident)}, "key.id": null'
    body = data[1:-1]
    return f'{head}{", " if body else ""}{body}, "key": "{key_string}"}}'


def _has_keys(signature: dict[str, Any]) -> bool:
    for code in signature.values():
        if code == "key" or (isinstance(code, list) and "key" in code):
            return True
    return False


#: signatures whose verdicts a RowEncoder keeps (a kind has a handful)
_MAX_SIGNATURES = 1024


def _canonical(signature: dict[str, Any]) -> Any:
    """A hashable form of ``signature``: equal for equal signatures, whatever the objects."""
    return frozenset((name, tuple(code) if isinstance(code, list) else code)
                     for name, code in signature.items())


class RowEncoder:
    """Encodes one kind's rows for an archive, with or without privacy."""

    def __init__(self, app_id: str, kind: str, transform: Transform | None = None) -> None:
        self.app_id = app_id
        self.kind = kind
        self.transform = transform
        self.schema = schema_for(kind)
        if transform is not None and self.schema is None:
            raise RowError(f"{kind} has no privacy rules")
        self._key_string = KeyStringEncoder(app_id)
        # whether rows of a signature can be spliced as stored, by the
        # signature's canonical form (see _is_plain)
        self._plain: dict[Any, bool] = {}
        # the last signature object seen and its verdict: a store hands out
        # one object per interned signature, so runs of rows repeat it
        self._last: tuple[dict[str, Any] | None, bool] = (None, True)
        self._contexts: dict[str, ExportContext] = {}
        # App Engine keeps a DateProperty as a timestamp at midnight (Cloud Datastore has no
        # date type), which Course Builder's models read back, and export, as the date
        self._dates = tuple(prop.name for prop in self.schema.properties
                            if prop.type == "date" and not prop.repeated) if self.schema else ()

    def _context(self, namespace: str) -> ExportContext:
        """The privacy rules' context for rows of ``namespace`` (safe keys are built there)."""
        ctx = self._contexts.get(namespace)
        if ctx is None:
            assert self.transform is not None
            ctx = self._contexts[namespace] = ExportContext(self.transform, self.app_id, namespace)
        return ctx

    def row(self, key: Key, props: dict[str, Any]) -> str:
        for name in self._dates:
            value = props.get(name)
            if type(value) is _dt.datetime and value.tzinfo is None and value.time() == _dt.time():
                props = {**props, name: value.date()}
        if self.transform is not None:
            assert self.schema is not None
            key, props = export_private(self.schema, key, props, self._context(key.namespace))
        data, _ = encode_properties(props, self._key_string)
        return self._splice(key, dumps(data))

    def raw(self, raw: RawRow, decode: Callable[[RawRow], Entity]) -> str:
        """A stored row; spliced without decoding types when no key values need changing."""
        if not self._is_plain(raw.signature):
            entity = decode(raw)
            return self.row(entity.key, entity)
        if self.transform is None:
            return self._splice(raw.key, raw.data)
        # privacy rules only drop, hash, rewrite and add members: they apply
        # to the JSON form as well as to typed values
        assert self.schema is not None
        key, props = export_private(self.schema, raw.key, json.loads(raw.data), self._context(raw.key.namespace))
        added = props.get("key_by_user_id")  # the one Key a JSON-form export gains
        if isinstance(added, Key):
            props["key_by_user_id"] = self._key_string(added)
        return self._splice(key, dumps(props))

    def export_page(
        self, namespace: str, items: list[tuple[Any, str, dict[str, Any]]],
        decode: Callable[[RawRow], Entity],
    ) -> list[str]:
        """Rows of one page from :meth:`Reader.fetch_export_page`, in order."""
        if self.transform is None:
            root = self._key_string.root(self.kind, namespace)
            out = []
            for ident, data, signature in items:
                if type(ident) is not Key and self._is_plain(signature):
                    out.append(_row_text(ident, data, root(ident)))
                else:
                    out.append(self.raw(self._raw_row(namespace, ident, data, signature), decode))
            return out
        return [self.raw(self._raw_row(namespace, ident, data, signature), decode)
                for ident, data, signature in items]

    def _raw_row(self, namespace: str, ident: Any, data: str, signature: dict[str, Any]) -> RawRow:
        key = ident if type(ident) is Key else Key._make(((self.kind, ident),), namespace)
        return RawRow(key, data, signature)

    def _is_plain(self, signature: dict[str, Any]) -> bool:
        """Whether rows of this signature can be spliced as stored (no key values)."""
        last, plain = self._last
        if last is signature:  # the object itself is held, so this is no reused id
            return plain
        if not signature:
            return True
        form = _canonical(signature)
        plain = self._plain.get(form)  # type: ignore[assignment]
        if plain is None:
            if len(self._plain) >= _MAX_SIGNATURES:
                self._plain.clear()
            plain = self._plain[form] = not _has_keys(signature)
        self._last = (signature, plain)
        return plain

    def _splice(self, key: Key, data: str) -> str:
        return _row_text(key.id_or_name, data, self._key_string(key))


def row_key(row: dict[str, Any], kind: str, namespace: str) -> Key:
    """The key an uploaded row gets in the target namespace.

    Course Builder builds it from ``key.id`` (if truthy) else ``key.name``;
    where the ``key`` string carries a parent path for the same id, that
    path is kept too.
    """
    ident = row.get("key.id") or row.get("key.name")
    if isinstance(ident, bool) or not isinstance(ident, (int, str)) or ident == "":
        raise RowError("has neither a usable 'key.id' nor 'key.name'")
    encoded = row.get("key")
    if isinstance(encoded, str) and encoded and not reference_is_root(encoded):
        try:
            _, original = Key.from_urlsafe(encoded)
        except ValueError:
            original = None
        if original is not None and original.kind == kind and original.id_or_name == ident and original.parent:
            return Key.from_path(original.path, namespace)
    if isinstance(ident, int) and 0 < ident < 2**63:
        return Key._make(((kind, ident),), namespace)
    try:
        return Key(kind, ident, namespace=namespace)
    except ValueError as exc:
        raise RowError(str(exc)) from None


_CANONICAL_DT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")
_CANONICAL_DATE = re.compile(r"\d{4}-\d\d-\d\d\Z")


#: the value code (see datastore.values) of each property type that has one
_CODES = {"text": "text", "datetime": "dt", "date": "date", "bytes": "bytes"}


def _json_typer(kind: str, prop: Prop) -> Callable[[Any], Any] | None:
    """Types one property's JSON value without leaving JSON.

    None where the value must become a Python value first (keys, lists).
    """
    if prop.repeated or prop.type == "key":
        return None
    slow = lambda value: encode_value(coerce_value(kind, prop, value), _no_keys)[0]  # noqa: E731
    if prop.type == "int":  # App Engine's ints are 64-bit
        return lambda value: value if type(value) is int and INT64_MIN <= value <= INT64_MAX else slow(value)
    if prop.type == "float":  # finite (x - x is NaN for an infinity)
        return lambda value: value if type(value) is float and value - value == 0.0 else slow(value)
    simple = {"str": str, "bool": bool, "text": str}.get(prop.type)
    if simple is not None:
        return lambda value: value if type(value) is simple else slow(value)
    if prop.type == "datetime":
        return lambda value: value if type(value) is str and _is_canonical_datetime(value) else slow(value)
    if prop.type == "date":
        return lambda value: value if type(value) is str and _is_canonical_date(value) else slow(value)
    if prop.type == "json":
        where = f"{kind}.{prop.name}"
        return lambda value: check_value(where, value)
    return slow  # bytes: validated and normalised by decoding


def _is_canonical_datetime(value: str) -> bool:
    if not _CANONICAL_DT.match(value):
        return False
    try:
        _dt.datetime.fromisoformat(value[:-1])
    except ValueError:
        return False
    return True


def _is_canonical_date(value: str) -> bool:
    if not _CANONICAL_DATE.match(value):
        return False
    try:
        _dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _no_keys(key: Key) -> Any:
    raise AssertionError("key values take the entity path")


class RowDecoder:
    """Archive rows of one kind to rows the store keeps."""

    def __init__(self, kind: str, namespace: str) -> None:
        self.kind = kind
        self.namespace = namespace
        self.schema = schema_for(kind)
        self._typers: dict[str, Callable[[Any], Any] | None] = {}
        self._codes: dict[str, str] = {}
        if self.schema is not None:
            for prop in self.schema.properties:
                self._typers[prop.name] = _json_typer(kind, prop)
                if prop.type in _CODES:
                    self._codes[prop.name] = _CODES[prop.type]

    def decode_json(self, row: dict[str, Any]) -> JsonRow | Entity:
        """The row typed in its JSON form; an Entity where that cannot be done."""
        key = row_key(row, self.kind, self.namespace)
        props: dict[str, Any] = {}
        signature: dict[str, Any] = {}
        typers, codes, generic = self._typers, self._codes, self.schema is None
        try:
            for name, value in row.items():
                if name in _KEY_FIELD_SET:
                    continue
                typer = typers.get(name, _untyped)
                if value is None or typer is _untyped:
                    if type(value) in _CHECKED:  # numbers within App Engine's range, bounded nesting
                        _check_generic(self.kind, {name: value}, generic)
                    props[name] = value
                elif typer is None:
                    return self.decode(row)
                else:
                    props[name] = typer(value)
                    code = codes.get(name)
                    if code is not None:
                        signature[name] = code
        except SchemaError as exc:
            raise RowError(str(exc)) from None
        return JsonRow(key, props, signature)

    def decode(self, row: dict[str, Any]) -> Entity:
        key = row_key(row, self.kind, self.namespace)
        props = {name: value for name, value in row.items() if name not in KEY_FIELDS}
        if self.schema is not None:
            try:
                props = {name: self.schema.coerce(name, value) for name, value in props.items()}
            except SchemaError as exc:
                raise RowError(str(exc)) from None
        else:
            _check_generic(self.kind, props, True)
        return Entity(key, props)


#: the types of untyped values that need a look: numbers, and containers of them
_CHECKED = frozenset((int, float, list, dict))


def _check_generic(kind: str, props: dict[str, Any], generic: bool) -> None:
    """Values of a kind carried generically are stored as the JSON they are:
    within App Engine's limits, and (``generic``: a kind without a schema) no
    list holding lists or objects."""
    for name, value in props.items():
        if generic and isinstance(value, list) and any(isinstance(v, (list, dict)) for v in value):
            raise RowError(f"property {name!r}: lists of lists or objects cannot be stored")
        try:
            check_value(f"{kind}.{name}", value)
        except SchemaError as exc:
            raise RowError(str(exc)) from None
