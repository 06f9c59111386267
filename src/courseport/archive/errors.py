"""The one exception type of the archive layer."""

from __future__ import annotations

from ..errors import UserError


class ArchiveError(UserError, ValueError):
    """A bad archive, member or archive operation.

    The message is one line and starts with (or names) the member concerned,
    e.g. ``models/Student.json: row 17 is not a JSON object``.
    """


def show(name: str, limit: int = 80) -> str:
    """Quote a member name for a one-line message (repr, shortened)."""
    text = repr(name)
    if len(text) > limit:
        text = text[: limit - 4] + "...'"
    return text
