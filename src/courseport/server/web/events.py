"""``rest/events``: what learners' pages report (server spec §7.2, §7.3).

Rows are written by the worker's :class:`~.writer.Writer` (group commit): a
busy worker writes many events a commit, and each request still answers only
once its row is stored.
"""

from __future__ import annotations

import secrets
import urllib.parse
from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import Response

from ..._json import dumps
from ...courses.learning import Learners
from ...courses.learning.records import enrich, event_row
from ...datastore import Backend, utcnow
from .forms import form_of, parse_json
from .sessions import Sessions
from .visit import Visit
from .writer import Writer

MAX_EVENT_BYTES = 256 << 10
SESSION_ID = "session_id"


def envelope(status: int, message: str) -> Response:
    """Course Builder's REST answer: HTTP 200 whatever ``status`` says (spec §2.4)."""
    body = ")]}'\n" + dumps({"status": status, "message": message})
    return Response(body, status_code=200, headers={
        "Content-Type": "application/javascript; charset=utf-8", "X-Content-Type-Options": "nosniff",
        "Content-Disposition": "attachment"})


class Events:
    def __init__(self, sessions: Sessions, writer: Writer) -> None:
        self.sessions = sessions
        self.writer = writer

    async def post(self, visit: Visit) -> Response:
        request = visit.request
        if not visit.records_events:
            return Response(b"", status_code=200)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_EVENT_BYTES:
            return Response(b"event too large", status_code=413)
        fields = await form_of(request)
        parsed = _request_of(fields)
        if parsed is None:
            return Response(b"a form field 'request' holding a JSON object is required", status_code=400)
        if not self.sessions.check(visit.session, "event-post", parsed.get("xsrf_token")):
            return envelope(403, "Bad XSRF token. Please reload the page and try again")
        user = visit.user
        if user is None:
            return Response(b"", status_code=200)
        source = parsed.get("source")
        payload = _payload_of(parsed.get("payload"))
        if not isinstance(source, str) or not source or len(source) > 500 or payload is None:
            return Response(b"an event needs a 'source' string and a 'payload' JSON object", status_code=400)
        response = Response(b"", status_code=200)
        if visit.enrolled and visit.student is not None:
            user_id = visit.student["user_id"]
        else:
            user_id = _pseudonym(request, response, visit.slug)
        enrich(payload, locale=_locale(payload), language=request.headers.get("accept-language"),
               user_agent=request.headers.get("user-agent"))
        row = event_row(visit.state.course.namespace, source, user_id, payload, utcnow())
        track = self.tracking(visit, source, payload) if visit.enrolled else None
        course = visit.state.course

        def write(store: Backend) -> None:
            store.put(row)
            if track is not None:
                track(Learners(course, store=store))

        await self.writer.run(write)
        return response

    def tracking(self, visit: Visit, source: str, payload: dict) -> Callable[[Learners], Any] | None:
        """The progress an event makes (spec §7.3 step 7), as a change to write, if any."""
        outline = visit.state.outline
        location = payload.get("location")
        if source not in ("tag-assessment", "attempt-lesson") or not isinstance(location, str):
            return None
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
        unit_id = (query.get("unit") or [""])[0]
        unit = outline.unit(unit_id)
        if unit is None or unit["type"] != "U":
            return None
        lesson_id = (query.get("lesson") or [""])[0]
        if not lesson_id:
            lessons = outline.lessons_of(unit_id)
            lesson_id = str(lessons[0]["lesson_id"]) if lessons else ""
        lesson = outline.lesson(lesson_id)
        if lesson is None or str(lesson["unit_id"]) != str(unit["unit_id"]):
            return None
        user_id = visit.student["user_id"]  # type: ignore[index]
        unit_key, lesson_key = str(unit["unit_id"]), str(lesson["lesson_id"])
        if source == "tag-assessment":
            instance = payload.get("instanceid")
            if not isinstance(instance, str) or instance not in outline.components(lesson_key):
                return None
            return lambda learners: learners.update_progress(
                user_id, outline, lambda p: p.component_attempted(unit_key, lesson_key, instance))
        if lesson.get("manual_progress"):
            return None
        return lambda learners: learners.update_progress(
            user_id, outline, lambda p: p.html_completed(unit_key, lesson_key))


def _request_of(fields: list[tuple[str, str]] | None) -> dict | None:
    if fields is None:
        return None
    text = next((v for k, v in fields if k == "request"), None)
    if text is None:
        return None
    parsed = parse_json(text)
    return parsed if isinstance(parsed, dict) else None


def _payload_of(value: Any) -> dict | None:
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        return None
    parsed = parse_json(value)
    return parsed if isinstance(parsed, dict) else None


def _locale(payload: dict) -> str:
    loc = payload.get("loc")
    page_locale = loc.get("page_locale") if isinstance(loc, dict) else None
    return page_locale if isinstance(page_locale, str) and len(page_locale) < 20 else "en_US"


def _pseudonym(request: Request, response: Response, slug: str) -> str:
    """A non-learner's events go under ``RND_<32 hex>`` from the ``session_id`` cookie (spec §7.3 step 4)."""
    found = request.cookies.get(SESSION_ID) or ""
    if found.startswith("RND_") and len(found) == 36 and all(c in "0123456789abcdef" for c in found[4:]):
        return found
    made = "RND_" + secrets.token_hex(16)
    response.set_cookie(SESSION_ID, made, path=slug, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")
    return made
