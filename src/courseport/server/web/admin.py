"""The admin's pages, part one: site settings, users and roles, app-specific
passwords, and the log of what admins did (server spec §8; issue 9).

Every page needs an admin's session: a visitor who is not signed in is sent
to sign in, a learner gets 403. Every form carries an XSRF token for its page.
Changes are the same records the command line changes (`courseport settings`,
`users`, `app-password`), and each is logged without secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ...courses.rules import validate_course_name
from ...courses.sample import install_sample
from ...courses.settings import (
    availability,
    dump_course_yaml,
    with_course_setting,
)
from ...courses.site import Course
from ...courses.site_settings import SETTINGS
from ...errors import UserError
from ..accounts import Account, Accounts, form_nonce, format_token
from ..adminlog import AdminLog
from .forms import checked_form
from .render import page, status_page
from .sessions import Session, Sessions
from .state import SiteState
from .visit import login_url

Handler = Callable[[Request, Session, Account], Awaitable[Response]]


@dataclass(frozen=True)
class Outcome:
    """What a page's form post did: a message, or a user's error and its status."""

    message: str | None = None
    error: str | None = None
    status: int = 200
AVAILABILITIES = (("private", "Private: admins only"),
                  ("registration_required", "Registration required"),
                  ("registration_optional", "Registration optional"),
                  ("public", "Public: no registration"))
_CHOICES = {"record_events": ("on", "off"), "signup": ("open", "invitation")}


class AdminPages:
    def __init__(self, site: SiteState, accounts: Accounts, sessions: Sessions) -> None:
        self.site = site
        self.accounts = accounts
        self.sessions = sessions
        self.log = AdminLog(accounts.store)

    def routes(self) -> list[Route]:
        admin = self.guard
        return [
            Route("/admin", admin(self.courses), methods=["GET", "POST"]),
            Route("/admin/course", admin(self.course), methods=["GET", "POST"]),
            Route("/admin/settings", admin(self.settings), methods=["GET", "POST"]),
            Route("/admin/users", admin(self.users), methods=["GET", "POST"]),
            Route("/admin/app-passwords", admin(self.app_passwords), methods=["GET", "POST"]),
            Route("/admin/log", admin(self.show_log), methods=["GET"]),
        ]

    def guard(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = self.sessions.read(request)
            if session is None or session.email is None:
                return RedirectResponse(login_url(request), status_code=302)
            account = await run_in_threadpool(self.accounts.account, session.email)
            if account is None or not account.admin:
                return page("message.html", 403, **self.chrome(request, session), heading="Admins only",
                            lines=[f"{session.email} is not an admin of this site."], link=("/", "Courses"))
            return await handler(request, session, account)
        return endpoint

    def chrome(self, request: Request, session: Session) -> dict[str, Any]:
        return {"title": "Admin", "site_title": "courseport admin", "home_href": "/admin",
                "email": session.email, "login_url": login_url(request),
                "signout_token": self.sessions.token(session, "signout")}

    def render(self, request: Request, session: Session, tab: str, status: int = 200, **values: Any) -> Response:
        return page("admin.html", status, **self.chrome(request, session), tab=tab,
                    form_token=self.sessions.token(session, f"admin-{tab}"), **values)

    async def _form(self, request: Request, session: Session, tab: str) -> dict[str, str] | None:
        """The posted form, if its XSRF token is this session's for this page."""
        fields = await checked_form(request, self.sessions, session, f"admin-{tab}")
        return None if fields is None else dict(fields)

    async def post(self, request: Request, session: Session, tab: str,
                    change: Callable[[dict[str, str]], Awaitable[str | Response]]) -> Outcome | Response:
        """A page's form post: refused (403) without this page's token; a user's
        error is shown on the page (400); ``change`` may answer a response of its own."""
        if request.method != "POST":
            return Outcome()
        form = await self._form(request, session, tab)
        if form is None:
            return status_page(403, "/admin")
        try:
            done = await change(form)
        except UserError as exc:
            return Outcome(error=str(exc), status=400)
        return done if isinstance(done, Response) else Outcome(message=done)

    # --- pages ---------------------------------------------------------------------

    async def courses(self, request: Request, session: Session, who: Account) -> Response:
        async def create(form: dict[str, str]) -> str:
            message = await run_in_threadpool(self._create_course, who, form)
            self.site.forget_rules()
            return message

        outcome = await self.post(request, session, "courses", create)
        if isinstance(outcome, Response):
            return outcome

        def rows() -> list[dict]:
            out = []
            for rule in self.site.rules():
                state = self.site.course_for(rule.slug)
                settings = state.outline.settings if state else {}
                out.append({"slug": rule.slug, "rule": rule.raw, "href": rule.slug.rstrip("/") + "/course",
                            "title": (state.outline.title if state else "") or rule.slug,
                            "availability": availability(settings),
                            "learners": self.site.site.store.count("Student", rule.namespace)})
            return out
        return self.render(request, session, "courses", outcome.status, courses=await run_in_threadpool(rows),
                          message=outcome.message, error=outcome.error)

    def _create_course(self, who: Account, form: dict[str, str]) -> str:
        name, title = form.get("name", "").strip(), form.get("title", "").strip() or None
        site = self.site.site
        if form.get("template") == "sample":
            prefix = "/" + validate_course_name(name)
            course = install_sample(site, prefix)
            if course is None:
                raise UserError(f"a course is already at {prefix}")
            if title:
                course.save_settings_text(dump_course_yaml(with_course_setting(course.settings(), "title", title)))
        else:
            course = site.add_course(name, title)
        self.log.record(who.email, "create course", f"{course.slug} ({form.get('template') or 'blank'})")
        return f"Added {course.slug}."

    async def course(self, request: Request, session: Session, who: Account) -> Response:
        slug = request.query_params.get("slug", "")
        state = self.site.course_for(slug) if slug.startswith("/") else None
        if state is None or state.course.slug != slug:
            return self.render(request, session, "courses", 404, courses=[], error=f"no course at {slug!r}")
        course = state.course

        async def change(form: dict[str, str]) -> str | Response:
            if form.get("action") == "delete":
                if form.get("confirm", "").strip() != course.slug.strip("/"):
                    raise UserError(f"type {course.slug.strip('/')!r} to delete this course")
                removed = await run_in_threadpool(self.site.site.delete_course, course.slug)
                self.site.forget_rules()
                self.log.record(who.email, "delete course", f"{course.slug} ({removed:,} entities)")
                return RedirectResponse("/admin", status_code=303)
            changed = await run_in_threadpool(self._save_course, course, form)
            if changed:
                self.log.record(who.email, "course settings", f"{course.slug}: {', '.join(changed)}")
            return "Saved." if changed else "Nothing changed."

        outcome = await self.post(request, session, "course", change)
        if isinstance(outcome, Response):
            return outcome
        outline = self.site.course_state(course, fresh=outcome.message is not None).outline
        values = {"slug": course.slug, "name": course.slug.strip("/"), "title": outline.title,
                  "availability": availability(outline.settings), "records": outline.records_events,
                  "header": outline.reg_form.get("header_text") or "",
                  "fields": outline.reg_form.get("additional_registration_fields") or ""}
        return self.render(request, session, "course", outcome.status, course=values, message=outcome.message,
                          error=outcome.error, availabilities=AVAILABILITIES)

    @staticmethod
    def _save_course(course: Course, form: dict[str, str]) -> list[str]:
        settings = course.settings()
        updated = settings
        wanted = {"title": form.get("title", ""), "availability": form.get("availability", ""),
                  "can_record_student_events": "true" if form.get("can_record_student_events") else "false",
                  "registration_header": form.get("registration_header", ""),
                  "registration_fields": form.get("registration_fields", "")}
        for name, value in wanted.items():
            updated = with_course_setting(updated, name, value)
        if updated == settings:
            return []
        course.save_settings_text(dump_course_yaml(updated))
        return [name for name in wanted if with_course_setting(settings, name, wanted[name]) != settings]

    async def settings(self, request: Request, session: Session, who: Account) -> Response:
        async def save(form: dict[str, str]) -> str:
            for name in SETTINGS:
                if name in form:
                    before = self.site.settings.get(name)
                    value = self.site.settings.set(name, form[name])
                    if value != before:
                        self.log.record(who.email, "site setting", f"{name} = {_shown(value)}")
            self.site.forget_settings()
            return "Saved."

        outcome = await self.post(request, session, "settings", save)
        if isinstance(outcome, Response):
            return outcome
        current = self.site.settings.all()
        rows = [{"name": name, "value": _shown(current[name]), "choices": _CHOICES.get(name, ()),
                 "help": setting.help} for name, setting in SETTINGS.items()]
        return self.render(request, session, "settings", outcome.status, settings=rows, message=outcome.message,
                          error=outcome.error)

    async def users(self, request: Request, session: Session, who: Account) -> Response:
        async def change(form: dict[str, str]) -> str:
            return await run_in_threadpool(self._change_user, who, form.get("action", ""), form.get("email", ""))

        outcome = await self.post(request, session, "users", change)
        if isinstance(outcome, Response):
            return outcome
        users = await run_in_threadpool(self.accounts.users)
        return self.render(request, session, "users", outcome.status, users=sorted(users, key=lambda u: u.email),
                          message=outcome.message, error=outcome.error)

    def _change_user(self, who: Account, action: str, email: str) -> str:
        if action == "invite":
            invited = self.accounts.invite(email)
            self.log.record(who.email, "invite", invited)
            return f"Invited {invited}: it may now sign up."
        if action in ("admin", "learner", "remove") and self.accounts.account(email) == who:
            raise UserError("you cannot change your own role or remove yourself: ask another admin")
        if action in ("admin", "learner"):
            account = self.accounts.set_admin(email, action == "admin")
            self.log.record(who.email, "make admin" if account.admin else "make learner", account.email)
            return f"{account.email} is now {'an admin' if account.admin else 'a learner'}."
        if action == "remove":
            account = self.accounts.remove_user(email)
            self.log.record(who.email, "remove user", account.email)
            return f"Removed {account.email} and its app-specific passwords."
        raise UserError(f"unknown action {action!r}")

    async def app_passwords(self, request: Request, session: Session, who: Account) -> Response:
        made: dict[str, str] = {}

        async def change(form: dict[str, str]) -> str:
            if form.get("action") == "create":
                info, token = await run_in_threadpool(partial(self.accounts.create_app_password, who.email,
                                                              form.get("name"), request=form.get("once") or None))
                self.log.record(who.email, "create app password", f"{info.name!r} (id {info.id})")
                made.update(password=format_token(token), name=info.name)
                return ""
            if form.get("action") == "revoke":
                info = await run_in_threadpool(self.accounts.revoke_app_password, form.get("email", ""),
                                               form.get("id", ""))
                self.log.record(who.email, "revoke app password", f"{info.name!r} (id {info.id}) of {info.email}")
                return f"Revoked {info.name!r} of {info.email}."
            raise UserError("unknown action")

        outcome = await self.post(request, session, "app-passwords", change)
        if isinstance(outcome, Response):
            return outcome
        passwords = [{"id": p.id, "name": p.name, "email": p.email, "created": f"{p.created:%Y-%m-%d %H:%M}",
                      "last_used": f"{p.last_used:%Y-%m-%d %H:%M}" if p.last_used else "never"}
                     for p in await run_in_threadpool(self.accounts.app_passwords)]
        response = self.render(request, session, "app-passwords", outcome.status, passwords=passwords,
                              message=outcome.message or None, error=outcome.error,
                              new_password=made.get("password"), new_name=made.get("name"), once=form_nonce())
        if made:
            response.headers["Cache-Control"] = "no-store"  # the password is on this page only
        return response

    async def show_log(self, request: Request, session: Session, who: Account) -> Response:
        return self.render(request, session, "log", entries=await run_in_threadpool(self.log.recent))


def _shown(value: object) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else str(value)
