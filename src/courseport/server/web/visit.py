"""One request to a course: who asks, which course, what they may see."""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from ...courses.learning import Learners, User, Viewer
from ...datastore import Entity
from ..accounts import Accounts
from .sessions import Session, Sessions
from .state import CourseState, SiteState

ADMIN_TTL = 2.0


def login_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/accounts/signin?" + urllib.parse.urlencode({"continue": here})


class Admins:
    """Whose accounts are admins, cached for a moment per worker."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        self._cache: dict[str, tuple[float, bool]] = {}

    def is_admin(self, email: str) -> bool:
        now = time.monotonic()
        found = self._cache.get(email)
        if found is None or now - found[0] > ADMIN_TTL:
            account = self.accounts.account(email)
            found = (now, bool(account and account.admin))
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[email] = found
        return found[1]


class RecentStudents:
    """Student rows read in the last :data:`STUDENT_TTL` seconds, for event posts
    only: an event needs just whether its sender is enrolled and their user id, and
    a learner sends several a page. Pages always read afresh."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], tuple[float, Entity | None]] = {}

    def get(self, learners: Learners, user_id: str) -> Entity | None:
        key = (learners.ns, user_id)
        now = time.monotonic()
        found = self._rows.get(key)
        if found is None or now - found[0] > STUDENT_TTL:
            if len(self._rows) > 50_000:
                self._rows.clear()
            found = (now, learners.student(user_id))
            self._rows[key] = found
        return found[1]

    def forget(self, learners: Learners, user_id: str) -> None:
        """After this worker changed the learner's enrolment."""
        self._rows.pop((learners.ns, user_id), None)


STUDENT_TTL = 2.0


@dataclass
class Visit:
    request: Request
    session: Session | None
    state: CourseState
    learners: Learners
    student: Entity | None
    admin: bool
    records_events: bool

    @property
    def user(self) -> User | None:
        return self.session.user if self.session else None

    @property
    def enrolled(self) -> bool:
        return bool(self.student is not None and self.student.get("is_enrolled"))

    @property
    def viewer(self) -> Viewer:
        user = self.user
        return Viewer(enrolled=self.enrolled, admin=self.admin, email=user.email if user else None)

    @property
    def slug(self) -> str:
        return self.state.course.slug

    @property
    def path_qs(self) -> str:
        url = self.request.url
        return url.path + (f"?{url.query}" if url.query else "")

    def course_url(self, rest: str) -> str:
        """An absolute path under the course's slug (redirects)."""
        return self.slug.rstrip("/") + "/" + rest.lstrip("/")


def open_visit(request: Request, state: CourseState, sessions: Sessions, admins: Admins,
               site: SiteState, recent: RecentStudents | None = None) -> Visit:
    session = sessions.read(request)
    user = session.user if session else None
    outline = state.outline
    admin = bool(user and (user.email.lower() in outline.admins() or admins.is_admin(user.email)))
    learners = Learners(state.course)
    if user is None:
        student = None
    else:
        student = recent.get(learners, user.user_id) if recent is not None else learners.student(user.user_id)
    records = bool(site.setting("record_events")) and outline.records_events
    return Visit(request, session, state, learners, student, admin, records)


def page_values(visit: Visit, sessions: Sessions, **values: Any) -> dict[str, Any]:
    """What every course page's chrome needs (spec §1.5)."""
    request = visit.request
    outline = visit.state.outline
    hooks = _hooks(outline.settings)
    user = visit.user
    base = f"{request.url.scheme}://{request.url.netloc}{visit.slug.rstrip('/')}/"
    common = {
        "title": outline.title or visit.slug,
        "site_title": outline.title or visit.slug,
        "home_href": "course",
        "base_href": base,
        "course_nav": True,
        "enrolled": visit.enrolled,
        "transient": not visit.enrolled,
        "can_register": outline.can_register,
        "email": user.email if user else None,
        "login_url": login_url(request),
        "signout_token": sessions.token(visit.session, "signout") if visit.session else "",
        "record_events": bool(user) and visit.records_events,
        "event_token": sessions.token(visit.session, "event-post") if user and visit.records_events else "",
        "hooks": hooks,
        "locale": _locale(outline.settings),
    }
    common.update(values)
    return common


def _locale(settings: dict) -> str:
    course = settings.get("course")
    locale = course.get("locale") if isinstance(course, dict) else None
    return locale if isinstance(locale, str) and locale else "en_US"


def _hooks(settings: dict) -> dict[str, Any]:
    """html_hooks from course.yaml, flattened as ``base.after_body_tag_begins`` → ``after_body_tag_begins``
    and ``unit.after_leftnav_begins`` → ``unit_after_leftnav_begins``."""
    from .render import trusted

    hooks = settings.get("html_hooks")
    out: dict[str, Any] = {}
    if not isinstance(hooks, dict):
        return out
    for group, prefix in (("base", ""), ("unit", "unit_")):
        section = hooks.get(group)
        if isinstance(section, dict):
            for name, html in section.items():
                if isinstance(html, str):
                    out[prefix + str(name)] = trusted(html)
    return out
