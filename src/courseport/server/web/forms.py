"""What pages post: forms (read fast, bounded), their XSRF token, and JSON inside them."""

from __future__ import annotations

import urllib.parse
from typing import Any

from starlette.requests import Request

from ... import _json
from .sessions import Session, Sessions

MAX_FORM_BYTES = 1 << 20
#: how deep a posted JSON value may nest: stored inside a row (answers under their
#: unit, an event's values), it stays within what archives may hold (_json.MAX_DEPTH)
MAX_POSTED_DEPTH = _json.MAX_DEPTH - 10
NOT_JSON = object()

Fields = list[tuple[str, str]]


async def form_of(request: Request) -> Fields | None:
    """The posted form's fields in order, or None if it is too big or not a form."""
    size = request.headers.get("content-length")
    if size is not None and (not size.isdigit() or int(size) > MAX_FORM_BYTES):
        return None
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":  # what every page posts: parsed directly, fast
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return None
        try:
            return urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, encoding="utf-8",
                                          errors="replace", max_num_fields=1000)
        except ValueError:  # more fields than allowed
            return None
    try:
        form = await request.form(max_files=0, max_fields=1000)
    except Exception:  # starlette raises several kinds for a malformed body
        return None
    return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]


def first(fields: Fields, name: str) -> str | None:
    return next((v for k, v in fields if k == name), None)


async def checked_form(request: Request, sessions: Sessions, session: Session | None, action: str) -> Fields | None:
    """The posted form, if it carries this session's XSRF token for ``action``; else None (a 403)."""
    fields = await form_of(request)
    if fields is None or not sessions.check(session, action, first(fields, "xsrf_token")):
        return None
    return fields


def parse_json(text: str) -> Any:
    """A posted JSON value, or ``NOT_JSON``: strict (no NaN), and nested at most
    :data:`MAX_POSTED_DEPTH` levels, so that what is stored reads back."""
    try:
        value = _json.STRICT.decode(text)
    except (ValueError, RecursionError):
        return NOT_JSON
    return NOT_JSON if _json.depth_exceeded(value, MAX_POSTED_DEPTH) else value
