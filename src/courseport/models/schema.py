"""Declarative schemas of Course Builder's kinds (spec §3).

A :class:`KindSchema` says what a kind's properties are and of which type,
how its keys are made, and what its privacy rules are: how its *safe key*
is built from the original one, which fields are removed and which are
hashed. Kinds without a schema are carried generically by the layers above.
"""

from __future__ import annotations

from ..errors import UserError

import datetime as _dt
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..datastore import Entity, Key, Text
from ..datastore.values import decode_bytes, parse_date, parse_datetime

Transform = Callable[[Any], str]

#: property type names and the Python types that hold them
TYPES = ("str", "text", "int", "float", "bool", "datetime", "date", "bytes", "key", "json")

# key schemes: how a kind's keys are made
ID = "id"  # auto-allocated numeric id
NAME = "name"  # key name (user id, path, property name ...)


class SchemaError(UserError, ValueError):
    """A value that does not fit its property's declared type."""


@dataclass(frozen=True)
class Prop:
    name: str
    type: str
    repeated: bool = False
    required: bool = False

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"unknown property type {self.type!r}")


def _identity_safe_key(key: Key, transform: Transform) -> Key:
    return key


def hash_name_safe_key(key: Key, transform: Transform) -> Key:
    """``Kind/<hmac(id_or_name)>``: Student, StudentAnswersEntity, ..."""
    return Key(key.kind, transform(key.id_or_name), namespace=key.namespace)


def hash_prefix_safe_key(separator: str) -> Callable[[Key, Transform], Key]:
    """``Kind/<hmac(user_id)><sep><rest>``, splitting at the first ``sep``."""

    def safe_key(key: Key, transform: Transform) -> Key:
        name = str(key.id_or_name)
        if separator not in name:
            raise SchemaError(
                f"{key.kind} key name {name!r} has no {separator!r}: "
                f"expected '<user_id>{separator}<name>'"
            )
        user_id, rest = name.split(separator, 1)
        return Key(key.kind, f"{transform(user_id)}{separator}{rest}", namespace=key.namespace)

    return safe_key


@dataclass(frozen=True)
class KindSchema:
    kind: str
    properties: tuple[Prop, ...]
    key_scheme: str = ID
    #: where the kind lives: in each course's namespace, or the default one
    scope: str = "course"
    safe_key: Callable[[Key, Transform], Key] = _identity_safe_key
    #: fields removed on a privacy export (``field`` or ``field.sub``)
    blacklist: tuple[str, ...] = ()
    #: fields replaced by their HMAC on a privacy export
    hashed: tuple[str, ...] = ()
    #: a privacy export adds ``key_by_user_id`` = ``Kind/<hmac(user_id)>``
    key_by_user_id: bool = False
    description: str = ""
    _by_name: dict[str, Prop] = field(default_factory=dict, compare=False, repr=False)
    _converters: dict[str, Callable[[Any], Any]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({prop.name: prop for prop in self.properties})

    def prop(self, name: str) -> Prop | None:
        return self._by_name.get(name)

    @property
    def property_names(self) -> tuple[str, ...]:
        return tuple(prop.name for prop in self.properties)

    @property
    def has_blob(self) -> bool:
        return any(prop.type == "bytes" for prop in self.properties)

    def coerce(self, name: str, value: Any) -> Any:
        """A JSON value from an archive row as this kind's typed value.

        Undeclared members are carried as they are (generic JSON values).
        """
        if value is None:
            return None
        convert = self._converters.get(name)
        if convert is None:
            prop = self._by_name.get(name)
            if prop is None:
                return value
            convert = self._converters[name] = _converter(self.kind, prop)
        return convert(value)


_FAST_TYPES: dict[str, type] = {"str": str, "int": int, "bool": bool}


def _converter(kind: str, prop: Prop) -> Callable[[Any], Any]:
    """A function typing one property's JSON values; the common case first."""
    if prop.repeated:
        def convert_list(value: Any) -> Any:
            if not isinstance(value, list):
                raise SchemaError(f"{kind}.{prop.name}: expected a list, got {_short(value)}")
            return [_coerce(kind, prop, item) for item in value]
        return convert_list
    fast = _FAST_TYPES.get(prop.type)
    if fast is not None:
        return lambda value: value if type(value) is fast else _coerce(kind, prop, value)
    if prop.type == "text":
        return lambda value: Text(value) if type(value) is str else _coerce(kind, prop, value)
    return lambda value: _coerce(kind, prop, value)


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _coerce(kind: str, prop: Prop, value: Any) -> Any:
    where = f"{kind}.{prop.name}"
    kind_of = prop.type
    try:
        if kind_of == "str":
            if isinstance(value, str):
                return value
        elif kind_of == "text":
            if isinstance(value, str):
                return Text(value)
        elif kind_of == "int":
            if isinstance(value, bool):
                pass
            elif isinstance(value, int):
                return value
            elif isinstance(value, float) and value.is_integer():
                return int(value)
            elif isinstance(value, str):
                return int(value) if value.strip() else 0
        elif kind_of == "float":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, str):
                return float(value)
        elif kind_of == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
        elif kind_of == "datetime":
            if isinstance(value, str):
                return parse_datetime(value)
        elif kind_of == "date":
            if isinstance(value, str):
                return parse_date(value)
        elif kind_of == "bytes":
            return decode_bytes(value)
        elif kind_of == "key":
            if isinstance(value, str):
                return Key.from_urlsafe(value)[1]
        elif kind_of == "json":
            return value
    except ValueError as exc:
        raise SchemaError(f"{where}: {exc}") from None
    raise SchemaError(f"{where}: expected {kind_of}, got {_short(value)}")


def python_type_ok(prop: Prop, value: Any) -> bool:
    """Whether a Python value is of the property's declared type."""
    checks: Mapping[str, Callable[[Any], bool]] = {
        "str": lambda v: isinstance(v, str),
        "text": lambda v: isinstance(v, str),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "datetime": lambda v: isinstance(v, _dt.datetime),
        "date": lambda v: isinstance(v, _dt.date) and not isinstance(v, _dt.datetime),
        "bytes": lambda v: isinstance(v, bytes),
        "key": lambda v: isinstance(v, Key),
        "json": lambda v: True,
    }
    if value is None:
        return True
    if prop.repeated:
        return isinstance(value, list) and all(checks[prop.type](v) for v in value)
    return checks[prop.type](value)


def new_entity(schema: KindSchema, key: Key, **values: Any) -> Entity:
    """An entity of ``schema`` with every declared property (None if unset)."""
    unknown = set(values) - set(schema.property_names)
    if unknown:
        raise SchemaError(f"{schema.kind} has no propert{'y' if len(unknown) == 1 else 'ies'} {sorted(unknown)}")
    props = {}
    for prop in schema.properties:
        value = values.get(prop.name)
        if not python_type_ok(prop, value):
            raise SchemaError(f"{schema.kind}.{prop.name}: expected {prop.type}, got {value!r:.40}")
        props[prop.name] = value
    return Entity(key, props)
