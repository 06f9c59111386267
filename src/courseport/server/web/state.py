"""What the pages read on every request, cached per worker and revalidated every second or two.

Course rules, each course's settings and units (as an :class:`Outline`), its
questions and its rendered lesson bodies stay in memory: a lesson page costs
a session check, a learner lookup and a template, not a parse of the course.
Edits made elsewhere (the command line, another worker, an upload) show within
:data:`REVALIDATE` seconds; rendered bodies and questions are kept at most
:data:`BODY_TTL`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from markupsafe import Markup

from ...courses.coursejson import CourseDataError, new_course_data
from ...courses.learning import Outline
from ...courses.settings import CourseSettingsError, load_course_yaml
from ...courses.site import COURSE_JSON, COURSE_YAML, Course, Site
from ...courses.site_settings import SiteSettings
from ...datastore import Key
from .render import trusted

log = logging.getLogger("courseport.server")
REVALIDATE = 2.0
BODY_TTL = 10.0


@dataclass
class CourseState:
    course: Course
    outline: Outline
    signature: bytes
    checked: float
    bodies: dict[Any, tuple[float, Any]] = field(default_factory=dict)
    hooks: dict[str, Markup] = field(init=False)  # course.yaml's html_hooks, for the templates

    def __post_init__(self) -> None:
        self.hooks = html_hooks(self.outline.settings)

    def question(self, kind: str, ident: int) -> dict | None:
        """A QuestionEntity's or QuestionGroupEntity's data, parsed (None if absent or
        unreadable); kept as long as a rendered body, so an edited question shows as soon."""
        return self.body(("question", kind, ident), lambda: self._read_question(kind, ident))

    def _read_question(self, kind: str, ident: int) -> dict | None:
        row = self.course.store.get(Key(kind, ident, namespace=self.course.namespace))
        if row is None:
            return None
        try:
            parsed = json.loads(row.get("data") or "null")
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None

    def body(self, key: Any, make: Callable[[], Any]) -> Any:
        now = time.monotonic()
        found = self.bodies.get(key)
        if found is not None and now - found[0] < BODY_TTL:
            return found[1]
        value = make()
        self.bodies[key] = (now, value)
        return value


class SiteState:
    """The site's courses and settings, as one worker sees them."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.settings = SiteSettings(site.store)
        self._lock = threading.Lock()
        self._rules: tuple[float, list] = (0.0, [])
        self._site_settings: tuple[float, dict] = (0.0, {})
        self._courses: dict[str, CourseState] = {}

    def rules(self) -> list:
        now = time.monotonic()
        if now - self._rules[0] > REVALIDATE:
            self._rules = (now, self.site.rules())
        return self._rules[1]

    def setting(self, name: str) -> Any:
        now = time.monotonic()
        if now - self._site_settings[0] > REVALIDATE:
            self._site_settings = (now, self.settings.all())
        return self._site_settings[1][name]

    def forget_rules(self) -> None:
        """Read the course rules afresh on the next request (this worker changed them)."""
        self._rules = (0.0, [])

    def forget_settings(self) -> None:
        """Read the site settings afresh on the next request (this worker changed them)."""
        self._site_settings = (0.0, {})

    def course_for(self, path: str) -> CourseState | None:
        """The course serving ``path``: the longest slug it starts with (spec §1.1 step 1)."""
        best = None
        for rule in self.rules():
            slug = rule.slug
            if slug == "/" or path == slug or path.startswith(slug.rstrip("/") + "/"):
                if best is None or len(slug) > len(best.slug):
                    best = rule
        return self.course_state(Course(self.site, best)) if best is not None else None

    def course_state(self, course: Course, *, fresh: bool = False) -> CourseState:
        now = time.monotonic()
        with self._lock:
            state = self._courses.get(course.raw)
            if state is not None and now - state.checked < REVALIDATE and not fresh:
                return state
            yaml_bytes = course.fs.get(COURSE_YAML)
            json_bytes = course.fs.get(COURSE_JSON)
            signature = hashlib.sha256((yaml_bytes or b"-") + b"\0" + (json_bytes or b"-")).digest()
            if state is not None and state.signature == signature:
                state.checked = now
                return state
            state = _load(course, yaml_bytes, signature, now)
            self._courses[course.raw] = state
            return state


def html_hooks(settings: dict) -> dict[str, Markup]:
    """html_hooks from course.yaml, flattened as ``base.after_body_tag_begins`` → ``after_body_tag_begins``
    and ``unit.after_leftnav_begins`` → ``unit_after_leftnav_begins`` (authored HTML, shown as written)."""
    hooks = settings.get("html_hooks")
    out: dict[str, Markup] = {}
    if not isinstance(hooks, dict):
        return out
    for group, prefix in (("base", ""), ("unit", "unit_")):
        section = hooks.get(group)
        if isinstance(section, dict):
            for name, html in section.items():
                if isinstance(html, str):
                    out[prefix + str(name)] = trusted(html)
    return out


def _load(course: Course, yaml_bytes: bytes | None, signature: bytes, now: float) -> CourseState:
    """A course's state; one whose course.yaml cannot be read is served as private
    (its settings empty), one whose units cannot be read as empty: said in the log."""
    try:
        settings = load_course_yaml(yaml_bytes) if yaml_bytes is not None else {}
    except CourseSettingsError as exc:
        settings = {}
        log.warning("course %s is served as private: %s", course.slug, exc)
    try:
        data = course.data()
    except CourseDataError as exc:
        data = new_course_data()
        log.warning("course %s is served without units: %s", course.slug, exc)
    return CourseState(course, Outline(settings, data), signature, now)
