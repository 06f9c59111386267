"""The learner's web: sign-in, the catalog and every course's pages, beside the remote API.

Global paths (``/``, ``/accounts/...``, ``/static/courseport/...``) come
first, as Course Builder's global routes do; every other path goes to the
course whose slug is its longest prefix.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ...courses.learning import Learners
from ...courses.learning import Viewer
from ...courses.site import Course, Site
from ...courses.vfs import FileSystemError, normalize_path
from ...datastore import Backend
from ..accounts import AccountError, Accounts, normalize_email
from ..archives import ArchiveJobs
from .admin import AdminPages
from .admin_archives import ArchivePages
from .events import Events
from .forms import checked_form
from .pages import CoursePages, redirect
from .render import NO_CACHE, page, status_page
from .sessions import Session, Sessions
from .state import SiteState
from .visit import Admins, RecentStudents, open_visit
from .writer import Writer

log = logging.getLogger("courseport.server")
STATIC = Path(__file__).with_name("static")
THROTTLE_WINDOW = 600.0
THROTTLE_PER_CLIENT = 30
_TYPES = {".css": "text/css", ".js": "text/javascript", ".png": "image/png", ".jpg": "image/jpeg",
          ".jpeg": "image/jpeg", ".gif": "image/gif", ".svg": "image/svg+xml", ".html": "text/html",
          ".ico": "image/x-icon", ".json": "application/json", ".txt": "text/plain", ".mp4": "video/mp4",
          ".webm": "video/webm", ".pdf": "application/pdf", ".woff": "font/woff", ".woff2": "font/woff2"}


def safe_continue(target: str | None) -> str:
    """Only a path on this site: never ``//host`` or ``/\\host`` (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or any(
            c in target for c in "\r\n\\"):
        return "/"
    return target


class ClientThrottle:
    """Failed sign-ins per client address in this worker (the per-account lock lives in the store)."""

    def __init__(self) -> None:
        self._failures: dict[str, list[float]] = {}

    def blocked(self, client: str) -> bool:
        now = time.monotonic()
        recent = [t for t in self._failures.get(client, []) if now - t < THROTTLE_WINDOW]
        self._failures[client] = recent
        return len(recent) >= THROTTLE_PER_CLIENT

    def failed(self, client: str) -> None:
        if len(self._failures) > 100_000:
            self._failures.clear()
        self._failures.setdefault(client, []).append(time.monotonic())


class Web:
    """The learner side's routes over one store."""

    def __init__(self, store: Backend) -> None:
        self.store = store
        self.site = SiteState(Site(store))
        self.accounts = Accounts(store)
        self.sessions = Sessions(store)
        self.admins = Admins(self.accounts)
        self.writer = Writer(store)
        self.recent = RecentStudents()
        self.pages = CoursePages(self.sessions, self.writer, self.recent)
        self.events = Events(self.sessions, self.writer)
        self.throttle = ClientThrottle()
        self.admin = AdminPages(self.site, self.accounts, self.sessions)
        self.jobs = ArchiveJobs(store)
        self.archives = ArchivePages(self.admin, self.jobs)

    def start(self) -> None:
        """At a worker's start: archive jobs whose server stopped are marked failed."""
        for job in self.jobs.recover():
            log.warning("archive job %s (%s %s %s) was cut short by a server stop: marked failed",
                        job.id, job.action, job.type, job.course)

    def close(self) -> None:
        self.jobs.stop()
        self.writer.close()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.catalog, methods=["GET"]),
            Route("/accounts/signin", self.signin, methods=["GET", "POST"]),
            Route("/accounts/signup", self.signup, methods=["GET", "POST"]),
            Route("/accounts/signout", self.signout, methods=["POST"]),
            *self.admin.routes(),
            *self.archives.routes(),
            Mount("/static/courseport", app=StaticFiles(directory=str(STATIC)), name="static"),
            Route("/{path:path}", self.course, methods=["GET", "POST"]),
        ]

    # --- sign-in --------------------------------------------------------------------

    def _signin_page(self, request: Request, session: Session, *, signup: bool, error: str | None = None,
                     status: int = 200, email: str = "", target: str | None = None) -> Response:
        """The sign-in (or sign-up) form; ``target`` is where to go after, else the query's ``continue``."""
        action = "signup" if signup else "signin"
        response = page("signin.html", status, title="Sign up" if signup else "Sign in",
                        heading="Create an account" if signup else "Sign in",
                        button="Sign up" if signup else "Sign in", signup=signup,
                        signup_open=self.site.setting("signup") == "open",
                        action=f"/accounts/{action}", form_token=self.sessions.token(session, action),
                        continue_url=safe_continue(target or request.query_params.get("continue")),
                        error=error, email_value=email, login_url="/accounts/signin")
        self.sessions.write(response, request, session)
        return response

    async def signin(self, request: Request) -> Response:
        return await self._account_form(request, signup=False)

    async def signup(self, request: Request) -> Response:
        return await self._account_form(request, signup=True)

    async def _account_form(self, request: Request, *, signup: bool) -> Response:
        # the form's own session: a visitor's first page of this site starts one
        session = self.sessions.read(request) or self.sessions.new(None)
        if request.method == "GET":
            if signup and self.site.setting("signup") != "open":
                return self._signin_page(request, session, signup=True, status=200,
                                         error="Sign-up is by invitation: an invited email may sign up here.")
            return self._signin_page(request, session, signup=signup)
        fields = await checked_form(request, self.sessions, session, "signup" if signup else "signin")
        if fields is None:
            return status_page(403, "/")
        values = dict(fields)
        email, password, target = values.get("email", "").strip(), values.get("password", ""), values.get("continue")
        client = request.client.host if request.client else "?"
        if self.throttle.blocked(client):
            return self._signin_page(request, session, signup=signup, status=429, email=email, target=target,
                                     error="Too many failed sign-ins from here: wait a few minutes and try again.")
        if signup:
            return await self._create_account(request, session, email, password, target)
        wait = await run_in_threadpool(self.accounts.locked_for, email)
        if wait > 0:
            return self._signin_page(request, session, signup=False, status=429, email=email, target=target,
                                     error=f"Too many failed sign-ins for this account: try again in {int(wait) + 1} s.")
        account = await run_in_threadpool(self.accounts.check_sign_in, email, password)
        if account is None:
            self.throttle.failed(client)
            failures = await run_in_threadpool(self.accounts.failed, email)
            log.warning("web sign-in failed for an account (%d in a row) from %s", failures, client)
            return self._signin_page(request, session, signup=False, status=401, email=email, target=target,
                                     error="Wrong email or password.")
        await run_in_threadpool(self.accounts.succeeded, email)
        return self._signed_in(request, account.email, target)

    async def _create_account(self, request: Request, session: Session, email: str, password: str,
                              target: str | None) -> Response:
        try:
            email = normalize_email(email)
            if self.site.setting("signup") != "open" and not await run_in_threadpool(self.accounts.invited, email):
                raise AccountError(f"sign-up is by invitation, and {email} has no invitation: ask the site's admin")
            account = await run_in_threadpool(self.accounts.add_user, email, password)  # checks the password
        except AccountError as exc:
            self.throttle.failed(request.client.host if request.client else "?")
            return self._signin_page(request, session, signup=True, status=400, email=email, target=target,
                                     error=str(exc))
        return self._signed_in(request, account.email, target)

    def _signed_in(self, request: Request, email: str, target: str | None) -> Response:
        response = RedirectResponse(safe_continue(target), status_code=302)
        self.sessions.write(response, request, self.sessions.new(email))  # a new nonce: no fixation
        return response

    async def signout(self, request: Request) -> Response:
        if await checked_form(request, self.sessions, self.sessions.read(request), "signout") is None:
            return status_page(403, "/")
        response = RedirectResponse("/", status_code=302)
        self.sessions.clear(response)
        return response

    # --- catalog ----------------------------------------------------------------

    async def catalog(self, request: Request) -> Response:
        session = self.sessions.read(request)
        user = session.user if session else None
        admin = bool(user and self.admins.is_admin(user.email))
        cards: list[dict[str, Any]] = []
        for rule in self.site.rules():
            state = self.site.course_state(Course(self.site.site, rule))
            outline = state.outline
            viewer = Viewer(admin=admin or bool(user and user.email.lower() in outline.admins()),
                            email=user.email if user else None)
            if not outline.reachable(viewer):
                continue
            enrolled = False
            if user is not None:
                student = Learners(state.course).student(user.user_id)
                enrolled = bool(student and student.get("is_enrolled"))
            blurb = outline.course.get("blurb")
            cards.append({"href": rule.slug.rstrip("/") + "/course", "title": outline.title or rule.slug,
                          "blurb": blurb if isinstance(blurb, str) else "", "enrolled": enrolled,
                          "open": outline.can_register})
        return page("catalog.html", title="Courses", site_title="courseport", courses=cards,
                    email=user.email if user else None, login_url="/accounts/signin?continue=/",
                    signout_token=self.sessions.token(session, "signout") if session else "")

    # --- courses ------------------------------------------------------------------

    async def course(self, request: Request) -> Response:
        path = request.url.path
        state = self.site.course_for(path)
        if state is None:
            return page("404.html", 404, title="Not found", login_url="/accounts/signin")
        slug = state.course.slug
        remainder = path if slug == "/" else (path[len(slug.rstrip("/")):] or "/")
        request.scope["courseport_remainder"] = remainder
        visit = open_visit(request, state, self.sessions, self.admins, self.site,
                           self.recent if remainder == "/rest/events" else None)
        if not state.outline.reachable(visit.viewer):
            return self.pages.not_found(visit)
        if remainder.startswith("/assets/"):
            return self.asset(visit, remainder) if request.method == "GET" else status_page(405, slug)
        if remainder == "/rest/events":
            return await self.events.post(visit) if request.method == "POST" else self.pages.not_found(visit)
        handler = self.pages.routes.get((request.method, remainder))
        if handler is None:
            return self.pages.not_found(visit)
        return await handler(visit)

    def asset(self, visit: Any, remainder: str) -> Response:
        fs = visit.state.course.fs
        try:
            path = normalize_path(remainder)
        except FileSystemError:
            return self.pages.not_found(visit)
        info = fs.info(path)
        if info is None:
            return self.pages.not_found(visit)
        if info.is_draft and not visit.admin:
            return status_page(403, visit.slug)
        data = fs.get(path)
        if data is None:
            return self.pages.not_found(visit)
        suffix = Path(path).suffix.lower()
        kind = _TYPES.get(suffix, "application/octet-stream")
        headers = {"Cache-Control": "public, max-age=600", "X-Content-Type-Options": "nosniff"}
        if kind == "text/html" or kind == "image/svg+xml":
            # course files are authored content: keep them from running as this site's pages
            headers["Content-Security-Policy"] = "sandbox"
        return Response(data, media_type=kind, headers=headers)


__all__ = ["Web", "NO_CACHE", "redirect"]
