"""etl's errors: each a one-line message naming the problem and the fix."""

from __future__ import annotations

from ..errors import UserError


class EtlError(UserError, ValueError):
    """A request etl refuses, before writing anything."""


def _bare(app_id: str) -> str:
    for prefix in ("dev~", "s~", "e~"):
        if app_id.startswith(prefix):
            return app_id[len(prefix):]
    return app_id


def check_app_id(given: str | None, actual: str) -> None:
    """The seed's optional APPLICATION_ID must name the target (``dev~``/``s~`` aside)."""
    if given is not None and _bare(given) != _bare(actual):
        raise EtlError(
            f"application id {given!r} does not match the target's {actual!r}: "
            f"pass {_bare(actual)!r} or leave it out"
        )
