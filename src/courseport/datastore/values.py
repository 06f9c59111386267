"""Property values to and from JSON, in Course Builder's encoding (spec §1.6.2).

The embedded store keeps each entity's properties as one JSON object in
exactly the encoding that Course Builder's archives use, so that a download
can copy it out without decoding. What JSON cannot tell apart (a Text from a
str, a datetime from a string, bytes) is kept beside it in a *signature*:
``{property: code}`` for every property whose type is not plain JSON.

Codes: ``text``, ``dt`` (datetime), ``date``, ``bytes``, ``key``; a list
property with such elements has a list of element codes (``None`` for
plain ones).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import re
from typing import Any, Callable

from ..errors import UserError
from .entity import Text
from .keys import Key

KeyEncoder = Callable[[Key], Any]
KeyDecoder = Callable[[Any], Key]


class ValueDecodeError(UserError, ValueError):
    """A JSON value that does not decode to the type it should have."""


def utcnow() -> _dt.datetime:
    """Now, as the store keeps times: UTC, without a tzinfo (as App Engine's datastore)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


def format_datetime(value: _dt.datetime) -> str:
    return value.isoformat(timespec="microseconds") + "Z"


def format_date(value: _dt.date) -> str:
    return value.isoformat()


_DATETIME_RE = re.compile(
    r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2}))?"
    r"(?:[.,](\d{1,6})\d*)?)?Z?$"
)


def parse_datetime(text: str) -> _dt.datetime:
    """Parse the canonical form or any variant Course Builder's upload accepts."""
    if len(text) == 27 and text[-1] == "Z" and text[10] == "T":
        try:
            return _dt.datetime.fromisoformat(text[:-1])
        except ValueError:
            pass
    match = _DATETIME_RE.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueDecodeError(f"not a datetime: {text!r}")
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        return _dt.datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0),
            int(second or 0), int((fraction or "0").ljust(6, "0")),
        )
    except ValueError as exc:
        raise ValueDecodeError(f"not a datetime: {text!r} ({exc})") from None


def parse_date(text: str) -> _dt.date:
    match = re.match(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$", text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueDecodeError(f"not a date: {text!r}")
    try:
        return _dt.date(*(int(part) for part in match.groups()))
    except ValueError as exc:
        raise ValueDecodeError(f"not a date: {text!r} ({exc})") from None


_BASE64 = re.compile(r"[A-Za-z0-9_-]*={0,2}\Z")


def encode_bytes(value: bytes) -> Any:
    """Course Builder's quirk: ASCII bytes are a plain string, others wrapped."""
    if value.isascii():
        return value.decode("ascii")
    return {
        "type": "binary",
        "encoding": "base64",
        "content": base64.urlsafe_b64encode(value).decode("ascii"),
    }


def decode_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and value.get("type") == "binary":
        if value.get("encoding") != "base64" or not isinstance(value.get("content"), str):
            raise ValueDecodeError("binary value must have base64 'content'")
        content = value["content"]
        if not _BASE64.match(content) or len(content) % 4:
            raise ValueDecodeError("binary value 'content' is not padded URL-safe base64")
        try:
            return base64.urlsafe_b64decode(content)
        except (binascii.Error, ValueError) as exc:
            raise ValueDecodeError(f"bad base64 in binary value: {exc}") from None
    raise ValueDecodeError(f"not a binary value: {value!r:.60}")


def encode_value(value: Any, key_encoder: KeyEncoder) -> tuple[Any, Any]:
    """Return ``(json_value, code)`` for one property value."""
    if value is None or value is True or value is False:
        return value, None
    if isinstance(value, str):
        return str(value), ("text" if isinstance(value, Text) else None)
    if isinstance(value, (int, float)):
        return value, None
    if isinstance(value, _dt.datetime):
        return format_datetime(value), "dt"
    if isinstance(value, _dt.date):
        return format_date(value), "date"
    if isinstance(value, bytes):
        return encode_bytes(value), "bytes"
    if isinstance(value, Key):
        return key_encoder(value), "key"
    if isinstance(value, list):
        items, codes = [], []
        for item in value:
            encoded, code = encode_value(item, key_encoder)
            items.append(encoded)
            codes.append(code)
        return items, (codes if any(c is not None for c in codes) else None)
    if isinstance(value, dict):
        return value, None
    raise TypeError(f"unsupported property value type {type(value).__name__}")


def decode_value(value: Any, code: Any, key_decoder: KeyDecoder) -> Any:
    """Inverse of :func:`encode_value`, given the code it returned."""
    if code is None or value is None:
        return value
    if isinstance(code, list):
        if not isinstance(value, list):
            raise ValueDecodeError(f"expected a list, got {value!r:.60}")
        return [decode_value(v, c, key_decoder) for v, c in zip(value, code)]
    if code == "text":
        return Text(value)
    if code == "dt":
        return parse_datetime(value)
    if code == "date":
        return parse_date(value)
    if code == "bytes":
        return decode_bytes(value)
    if code == "key":
        return key_decoder(value)
    raise ValueDecodeError(f"unknown value code {code!r}")


def encode_properties(
    properties: dict[str, Any], key_encoder: KeyEncoder
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Encode every property; returns ``(json_object, signature)``."""
    out: dict[str, Any] = {}
    signature: dict[str, Any] = {}
    for name, value in properties.items():
        encoded, code = encode_value(value, key_encoder)
        out[name] = encoded
        if code is not None:
            signature[name] = code
    return out, signature


def decode_properties(
    data: dict[str, Any], signature: dict[str, Any], key_decoder: KeyDecoder
) -> dict[str, Any]:
    if not signature:
        return data
    for name, code in signature.items():
        if name in data:
            data[name] = decode_value(data[name], code, key_decoder)
    return data
