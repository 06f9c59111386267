"""One request to a course: who asks, which course, what they may see."""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from starlette.requests import Request

from ...courses.learning import Learners, User, Viewer
from ...datastore import Entity
from ..accounts import Accounts
from .sessions import Session, Sessions
from .state import CourseState, SiteState

ADMIN_TTL = 2.0
STUDENT_TTL = 2.0
K = TypeVar("K")
V = TypeVar("V")


def login_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/accounts/signin?" + urllib.parse.urlencode({"continue": here})


class Recent(Generic[K, V]):
    """Values read in the last ``ttl`` seconds, per worker (emptied when it holds ``limit``)."""

    def __init__(self, ttl: float, limit: int) -> None:
        self.ttl, self.limit = ttl, limit
        self._values: dict[K, tuple[float, V]] = {}

    def get(self, key: K, read: Callable[[], V]) -> V:
        now = time.monotonic()
        found = self._values.get(key)
        if found is None or now - found[0] > self.ttl:
            if len(self._values) >= self.limit:
                self._values.clear()
            found = (now, read())
            self._values[key] = found
        return found[1]

    def forget(self, key: K) -> None:
        self._values.pop(key, None)


class Admins:
    """Whose accounts are admins, cached for a moment per worker."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        self._recent: Recent[str, bool] = Recent(ADMIN_TTL, 10_000)

    def is_admin(self, email: str) -> bool:
        def read() -> bool:
            account = self.accounts.account(email)
            return bool(account and account.admin)
        return self._recent.get(email, read)


class RecentStudents:
    """Student rows read in the last :data:`STUDENT_TTL` seconds, for event posts
    only: an event needs just whether its sender is enrolled and their user id, and
    a learner sends several a page. Pages always read afresh."""

    def __init__(self) -> None:
        self._recent: Recent[tuple[str, str], Entity | None] = Recent(STUDENT_TTL, 50_000)

    def get(self, learners: Learners, user_id: str) -> Entity | None:
        return self._recent.get((learners.ns, user_id), lambda: learners.student(user_id))

    def forget(self, learners: Learners, user_id: str) -> None:
        """After this worker changed the learner's enrolment."""
        self._recent.forget((learners.ns, user_id))


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
        "hooks": visit.state.hooks,
        "locale": outline.locale,
    }
    common.update(values)
    return common
