"""Entities: a key and typed properties.

Property values are plain Python values, and their Python type is their
datastore type:

==================  ==============================================
``str``             StringProperty (short, indexed)
``Text``            TextProperty (a ``str`` subclass; long, unindexed)
``int``             IntegerProperty
``float``           FloatProperty
``bool``            BooleanProperty
``datetime``        DateTimeProperty (naive UTC, microseconds)
``date``            DateProperty
``bytes``           BlobProperty
``Key``             a key value (e.g. a reference)
``list``            ListProperty of any of the above
``dict``            a JSON object value (rare in Course Builder)
``None``            no value, whatever the type
==================  ==============================================
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from .keys import Key


class Text(str):
    """A long, unindexed string (Course Builder's ``db.TextProperty``)."""

    __slots__ = ()


class Entity(dict):
    """A ``dict`` of property values with a ``key``."""

    __slots__ = ("key",)

    def __init__(self, key: Key, properties: dict[str, Any] | None = None) -> None:
        super().__init__(properties or ())
        self.key = key

    @property
    def kind(self) -> str:
        return self.key.kind

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Entity):
            return self.key == other.key and dict.__eq__(self, other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Entity({self.key!r}, {dict.__repr__(self)})"


SCALAR_TYPES = (str, int, float, bool, _dt.datetime, _dt.date, bytes, Key, type(None))


def check_value(name: str, value: Any) -> None:
    """Raise TypeError for a value the datastore cannot hold."""
    if isinstance(value, list):
        for item in value:
            if isinstance(item, (list, dict)):
                raise TypeError(f"property {name!r}: lists may not nest lists or objects")
            check_value(name, item)
    elif isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            raise TypeError(f"property {name!r}: datetimes are naive UTC, not {value!r}")
    elif not isinstance(value, SCALAR_TYPES + (dict,)):
        raise TypeError(
            f"property {name!r}: unsupported value type {type(value).__name__}"
        )
