"""Declarative schemas of Course Builder's kinds (spec §3).

A :class:`KindSchema` says what a kind's properties are and of which type,
how its keys are made, and what its privacy rules are: how its *safe key*
is built from the original one, which fields are removed and which are
hashed. Kinds without a schema are carried generically by the layers above.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .. import _json
from ..datastore import Entity, Key, Text
from ..datastore.values import decode_bytes, parse_date, parse_datetime
from ..errors import UserError

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


@dataclass(frozen=True)
class ExportContext:
    """What privacy rules need besides a row (one per download, kind and namespace).

    ``transform`` is the HMAC; safe keys are built in ``namespace`` (the
    course's, as Course Builder builds them in the current namespace), and
    key strings inside values and key names are written for ``app_id``.
    """

    transform: Transform
    app_id: str = ""
    namespace: str = ""

    def key_string(self, key: Key) -> str:
        return key.to_urlsafe(self.app_id)


#: ``safe_key(key, row, ctx)``: the key as it may leave the store under ``--privacy``.
#: ``row`` holds the properties of the row the key is exported in (the entity's
#: own row, or the row that refers to the key), or None when there is none.
SafeKey = Callable[[Key, "Mapping[str, Any] | None", ExportContext], Key]


def _identity_safe_key(key: Key, row: Mapping[str, Any] | None, ctx: ExportContext) -> Key:
    return key


def _name_of(key: Key) -> str:
    return str(key.id_or_name)


def hash_whole_name(key: Key, ctx: ExportContext) -> Key:
    """``Kind/<hmac(id or name)>`` in the export's namespace."""
    return Key(key.kind, ctx.transform(key.id_or_name), namespace=ctx.namespace)


def hash_name_safe_key(key: Key, row: Mapping[str, Any] | None, ctx: ExportContext) -> Key:
    """``Kind/<hmac(id_or_name)>``: Student, StudentAnswersEntity, ... (and
    courseport's own rule for StudentNewsEntity and StudentGroupMembership)."""
    return Key(key.kind, ctx.transform(key.id_or_name), namespace=ctx.namespace)


def malformed_key(key: Key, expected: str, why: str) -> SchemaError:
    """The one-line refusal for a key name that is not of its kind's form at all."""
    return SchemaError(
        f"{key.kind} key name {_name_of(key)!r} {why}: expected {expected}, so --privacy cannot "
        f"tell the user id in it; fix or delete that entity, or add --exclude_types {key.kind}"
    )


def user_property_safe_key(key: Key, row: Mapping[str, Any] | None, ctx: ExportContext) -> Key:
    """``<user_id>-<name>`` names (StudentPropertyEntity and its subclasses).

    The split point is the row's ``name`` property, not the first ``-``: a
    user id may contain ``-``. Where the key name does not end in
    ``-<name>`` (or there is no row), the whole key name is hashed, so no
    part of a user id is left in clear. A name with no ``-`` at all is not
    of the kind's form and is refused, as Course Builder refused it.
    """
    name = _name_of(key)
    if "-" not in name:
        raise malformed_key(key, "'<user_id>-<name>'", "has no '-'")
    prop = row.get("name") if row is not None else None
    if isinstance(prop, str) and len(name) > len(prop) and name.endswith("-" + prop):
        user_id = name[: len(name) - len(prop) - 1]
        return Key(key.kind, f"{ctx.transform(user_id)}-{prop}", namespace=ctx.namespace)
    return hash_whole_name(key, ctx)


def colon_triple_safe_key(key: Key, row: Mapping[str, Any] | None, ctx: ExportContext) -> Key:
    """``<user_id>:<a>:<b>`` names (EditorPrefsEntity, CompetencyMeasureEntity).

    Course Builder hashes the text before the first ``:``; a user id with a
    ``:`` would leave its tail in clear. The user id is everything before
    the last two ``:``, which holds the whole user id whatever it contains.
    """
    parts = _name_of(key).rsplit(":", 2)
    if len(parts) < 3:
        raise malformed_key(key, "'<user_id>:<a>:<b>'", "has fewer than two ':'")
    user_id, first, second = parts
    return Key(key.kind, f"{ctx.transform(user_id)}:{first}:{second}", namespace=ctx.namespace)


@dataclass(frozen=True)
class KindSchema:
    kind: str
    properties: tuple[Prop, ...]
    key_scheme: str = ID
    #: where the kind lives: in each course's namespace, or the default one
    scope: str = "course"
    safe_key: SafeKey = _identity_safe_key
    #: fields removed on a privacy export (``field`` or ``field.sub``)
    blacklist: tuple[str, ...] = ()
    #: fields replaced by their HMAC on a privacy export
    hashed: tuple[str, ...] = ()
    #: a privacy export adds ``key_by_user_id`` = ``Kind/<hmac(user_id)>``
    key_by_user_id: bool = False
    #: ``rewrite(props, key, ctx)``: the kind's own privacy changes to a row's
    #: properties (values in typed or in JSON form), after the rules above
    rewrite: "Callable[[dict[str, Any], Key, ExportContext], None] | None" = None
    description: str = ""
    _by_name: dict[str, Prop] = field(default_factory=dict, compare=False, repr=False)
    _converters: dict[str, Callable[[Any], Any]] = field(default_factory=dict, compare=False, repr=False)
    #: names of the properties declared as keys (references to other entities)
    key_props: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({prop.name: prop for prop in self.properties})
        object.__setattr__(self, "key_props", tuple(p.name for p in self.properties if p.type == "key"))

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
                return check_value(f"{self.kind}.{name}", value)
            convert = self._converters[name] = _converter(self.kind, prop)
        return convert(value)


#: App Engine's integers are signed 64-bit
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
#: how deep a property's value may nest (its row is one level more)
MAX_VALUE_DEPTH = _json.MAX_DEPTH - 1


def _int_problem(value: int) -> str:
    text = str(value) if abs(value) < 10**40 else f"{str(value)[:20]}... ({len(str(abs(value)))} digits)"
    return f"integer {text} is outside App Engine's 64-bit range (-2**63 to 2**63-1)"


def value_problem(value: Any) -> str | None:
    """Why a JSON value cannot be stored, or None: an integer outside App
    Engine's 64-bit range, a float that is not finite, nesting deeper than
    :data:`MAX_VALUE_DEPTH`, anywhere in the value."""
    kind = type(value)
    if kind is int:
        return None if INT64_MIN <= value <= INT64_MAX else _int_problem(value)
    if kind is float:
        return None if value - value == 0.0 else f"{value} is not a finite number"
    if kind is not dict and kind is not list:
        return None
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        for child in (item.values() if type(item) is dict else item):
            kind = type(child)
            if kind is int:
                if not INT64_MIN <= child <= INT64_MAX:
                    return _int_problem(child)
            elif kind is float:
                if child - child != 0.0:
                    return f"{child} is not a finite number"
            elif kind is dict or kind is list:
                if level >= MAX_VALUE_DEPTH:
                    return f"nested more than {MAX_VALUE_DEPTH} levels deep"
                stack.append((child, level + 1))
    return None


def check_value(where: str, value: Any) -> Any:
    """``value``, or a SchemaError naming ``where`` if it cannot be stored (see :func:`value_problem`)."""
    problem = value_problem(value)
    if problem is not None:
        raise SchemaError(f"{where}: {problem}")
    return value


_FAST_TYPES: dict[str, type] = {"str": str, "bool": bool}


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
    if prop.type == "int":
        return lambda value: value if type(value) is int and INT64_MIN <= value <= INT64_MAX \
            else _coerce(kind, prop, value)
    if prop.type == "text":
        return lambda value: Text(value) if type(value) is str else _coerce(kind, prop, value)
    return lambda value: _coerce(kind, prop, value)


def _short(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**40:
        return f"an integer of {len(str(abs(value)))} digits"
    if _json.depth_exceeded(value, 8):
        return f"a {'list' if isinstance(value, list) else 'object'} nested more than 8 levels deep"
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def coerce_value(kind: str, prop: Prop, value: Any) -> Any:
    """One JSON value of ``kind``'s property ``prop`` (one element, for a
    repeated one) as the Python value the store keeps, accepting what
    Course Builder's upload accepts; SchemaError naming the property if it
    cannot be."""
    return _coerce(kind, prop, value)


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
            number = None
            if isinstance(value, bool):
                pass
            elif isinstance(value, int):
                number = value
            elif isinstance(value, float) and value.is_integer():
                number = int(value)
            elif isinstance(value, str):
                text = value.strip()
                if len(text) > 40:  # beyond 64 bits whatever it says (and int() would be slow)
                    raise SchemaError(f"{where}: {_short(value)} is not a 64-bit integer")
                number = int(text) if text else 0
            if number is not None:
                return check_value(where, number)
        elif kind_of == "float":
            real: float | None = None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                real = float(value)
            elif isinstance(value, str):
                real = float(value)
            if real is not None:
                return check_value(where, real)
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
            return check_value(where, value)
    except SchemaError:
        raise
    except OverflowError:  # float() of an integer beyond a float's range
        raise SchemaError(f"{where}: {_short(value)} is too large for a float") from None
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
