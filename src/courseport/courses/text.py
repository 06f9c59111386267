"""Course files as text: UTF-8 (a byte-order mark allowed), or a one-line error."""

from __future__ import annotations


def as_text(data: str | bytes, source: str, error: type[ValueError]) -> str:
    """``data`` decoded; ``error`` naming ``source`` and the bad byte if it is not UTF-8."""
    if isinstance(data, str):
        return data.lstrip("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{source} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
