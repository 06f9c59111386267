"""Course Builder's project-wide JSON writer and reader (spec §1.6.4).

``dumps`` is ASCII-only JSON with ``<`` and ``>`` escaped as ``\\u003C`` and
``\\u003E``, as ``transforms.dumps`` writes it; ``loads`` accepts the XSSI
prefix ``)]}'`` that Course Builder's REST handlers put in front.
"""

from __future__ import annotations

import json
from typing import Any

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
    """Parse JSON, tolerating a leading XSSI prefix as Course Builder does."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return json.loads(text.lstrip(_XSSI_CHARS))
