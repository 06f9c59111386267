"""Course Builder's project-wide JSON writer and reader (spec §1.6.4).

``dumps`` is ASCII-only JSON with ``<`` and ``>`` escaped as ``\\u003C`` and
``\\u003E``, as ``transforms.dumps`` writes it; ``loads`` accepts the XSSI
prefix ``)]}'`` that Course Builder's REST handlers put in front.

JSON read from an archive is hostile input. ``loads`` and ``STRICT`` (the
decoder the row readers use) refuse ``NaN`` and ``Infinity``, which are not
JSON; ``describe_failure`` turns every way a parse can fail (bad syntax,
nesting deep enough to exhaust the stack, an integer too long to convert)
into one line, so that no parse of archive content ends in a traceback;
``check_depth`` bounds the nesting of what was parsed (:data:`MAX_DEPTH`).
"""

from __future__ import annotations

import json
from typing import Any

from .errors import UserError

#: the deepest nesting a JSON value read from an archive may have (the value
#: itself is level 1). Course Builder's own archives nest at most 7 levels,
#: rows at most 5; 100 keeps every later recursive walk far from the stack's end.
MAX_DEPTH = 100


class JsonError(UserError, ValueError):
    """JSON an archive may not hold; the message says what is wrong (the caller, where)."""


def _refuse_constant(name: str) -> Any:
    raise JsonError(f"{name} is not a JSON number (numbers must be finite)")


#: the decoder of archive content: strict JSON (no NaN, Infinity, -Infinity)
STRICT = json.JSONDecoder(parse_constant=_refuse_constant)


def describe_failure(exc: BaseException) -> str | None:
    """What went wrong in a JSON parse, in a few words; None if ``exc`` is not a parse failure.

    A :class:`json.JSONDecodeError` gives its message and offset (callers that
    know lines add them); a ``RecursionError`` is nesting too deep for the stack;
    any other ``ValueError`` is a number Python will not convert.
    """
    if isinstance(exc, JsonError):
        return str(exc)
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, RecursionError):
        return f"JSON nested more than {MAX_DEPTH} levels deep"
    if isinstance(exc, ValueError):
        text = str(exc)
        if "integer string conversion" in text:
            return "an integer with more than 4300 digits"
        return f"not valid JSON: {text.splitlines()[0][:200] if text else type(exc).__name__}"
    return None


def depth_exceeded(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests more than ``limit`` levels (a scalar is level 0,
    an empty or flat list or object level 1). Iterative: any depth is safe."""
    if type(value) is not dict and type(value) is not list:
        return False
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > limit:
            return True
        children = item.values() if type(item) is dict else item
        for child in children:
            if type(child) is dict or type(child) is list:
                stack.append((child, level + 1))
    return False


def check_depth(value: Any, limit: int = MAX_DEPTH) -> Any:
    """``value``, or JsonError where it nests more than ``limit`` levels."""
    if depth_exceeded(value, limit):
        raise JsonError(f"JSON nested more than {limit} levels deep")
    return value


XSSI_PREFIX = ")]}'\n"
_XSSI_CHARS = ")]}'\n"

_encoder = json.JSONEncoder(ensure_ascii=True, default=lambda o: _default(o))


def _default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def escape_xss(text: str) -> str:
    """Rewrite ``<`` and ``>`` as Course Builder's uppercase escapes."""
    if "<" in text or ">" in text:
        text = text.replace("<", "\\u003C").replace(">", "\\u003E")
    return text


def dumps(obj: Any, **kwargs: Any) -> str:
    """Serialise like Course Builder's ``transforms.dumps``."""
    if kwargs:
        kwargs.setdefault("ensure_ascii", True)
        kwargs.setdefault("default", _default)
        text = json.dumps(obj, **kwargs)
    else:
        text = _encoder.encode(obj)
    return escape_xss(text)


def loads(text: str | bytes) -> Any:
    """Parse JSON, tolerating a leading XSSI prefix as Course Builder does.

    Strict and bounded (see the module's doc): every failure is a JsonError,
    a UnicodeDecodeError for bytes that are not UTF-8 aside.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        value = STRICT.decode(text.lstrip(_XSSI_CHARS))
    except (ValueError, RecursionError) as exc:
        raise JsonError(describe_failure(exc)) from None
    return check_depth(value)
