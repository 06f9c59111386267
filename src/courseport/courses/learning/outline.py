"""A course as a learner sees it: availability, the syllabus, navigation (server spec §1.6, §4, §5.1, §5.7).

An :class:`Outline` is built once from a course's settings and units and
shared by every request until the course changes; what one viewer may see is
asked of it with a :class:`Viewer`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

import yaml

from ..coursejson import CourseData
from ..settings import availability

#: question and question-group tags with an instance id: the trackable components of a lesson
_COMPONENT = re.compile(
    r"<(?:question|question-group)\b[^>]*?\binstanceid\s*=\s*[\"']?([A-Za-z0-9_.-]+)", re.IGNORECASE)
_WHITELIST_SPLIT = re.compile(r"[\s,\[\]]+")


@dataclass(frozen=True)
class Viewer:
    """Who looks: an enrolled student, an admin (sees drafts), or neither (transient)."""

    enrolled: bool = False
    admin: bool = False
    email: str | None = None


@dataclass(frozen=True)
class Entry:
    """One element in a unit's sequence: a pre-assessment, a lesson or a post-assessment."""

    kind: str  # "lesson" or "assessment"
    unit_id: str
    element: dict

    @property
    def id(self) -> str:
        return str(self.element["lesson_id"] if self.kind == "lesson" else self.element["unit_id"])

    @property
    def url(self) -> str:
        param = "lesson" if self.kind == "lesson" else "assessment"
        return f"unit?unit={self.unit_id}&{param}={self.id}"


def _grader(unit: dict) -> Any:
    try:
        workflow = yaml.safe_load(unit.get("workflow_yaml") or "")
    except yaml.YAMLError:
        return None
    return workflow.get("grader") if isinstance(workflow, dict) else None


def _section(settings: dict, name: str) -> dict:
    value = settings.get(name)
    return value if isinstance(value, dict) else {}


def _flag(section: Any, name: str, default: bool) -> bool:
    value = section.get(name, default) if isinstance(section, dict) else default
    return bool(value)


class Outline:
    """One course's settings and units, indexed for page rendering and progress."""

    def __init__(self, settings: dict, data: CourseData) -> None:
        self.settings = settings
        self.course: dict = _section(settings, "course")
        self.reg_form: dict = _section(settings, "reg_form")
        self.unit_settings: dict = _section(settings, "unit")
        self.policy = availability(settings)
        if self.policy == "custom":
            self.policy = "private" if not _flag(self.course, "now_available", bool(settings)) else "none"
        self.units = list(data.units)
        self._units = {str(u["unit_id"]): u for u in self.units}
        self._lessons: dict[str, list[dict]] = {}
        self._lesson_by_id: dict[str, dict] = {}
        for lesson in data.lessons:
            self._lessons.setdefault(str(lesson["unit_id"]), []).append(lesson)
            self._lesson_by_id[str(lesson["lesson_id"])] = lesson
        self._parent: dict[str, str] = {}
        for unit in self.units:
            for key in ("pre_assessment", "post_assessment"):
                if unit.get(key) not in (None, "", -1):
                    self._parent[str(unit[key])] = str(unit["unit_id"])
        self._human = {str(u["unit_id"]) for u in self.units if u["type"] == "A" and _grader(u) == "human"}
        self._components = {
            lesson_id: _COMPONENT.findall(lesson.get("objectives") or "")
            for lesson_id, lesson in self._lesson_by_id.items()
        }

    # --- settings ---------------------------------------------------------------

    @property
    def title(self) -> str:
        title = self.course.get("title")
        return title if isinstance(title, str) else ""

    @property
    def locale(self) -> str:
        """``course:locale``, else en_US: the page locale events carry."""
        locale = self.course.get("locale")
        return locale if isinstance(locale, str) and locale else "en_US"

    @property
    def can_register(self) -> bool:
        return _flag(self.reg_form, "can_register", True)

    @property
    def browsable(self) -> bool:
        return _flag(self.course, "browsable", False)

    @property
    def records_events(self) -> bool:
        """The course's own switch, ``course:can_record_student_events`` (true unless it says false)."""
        return _flag(self.course, "can_record_student_events", True)

    def whitelist(self) -> list[str]:
        raw = self.reg_form.get("whitelist") or self.course.get("whitelist") or ""
        return [w.lower() for w in _WHITELIST_SPLIT.split(str(raw)) if w]

    def admins(self) -> list[str]:
        return [w.lower() for w in _WHITELIST_SPLIT.split(str(self.course.get("admin_user_emails") or "")) if w]

    def reachable(self, viewer: Viewer) -> bool:
        """Spec §1.1 step 4: may this viewer reach the course at all?"""
        if viewer.admin:
            return True
        if self.policy == "private":
            return False
        allowed = self.whitelist()
        if not allowed:
            return True
        email = (viewer.email or "").lower()
        domain = email.partition("@")[2]
        return bool(email) and (email in allowed or domain in allowed or "@" + domain in allowed)

    # --- elements ---------------------------------------------------------------

    def unit(self, unit_id: Any) -> dict | None:
        return self._units.get(str(unit_id))

    def lesson(self, lesson_id: Any) -> dict | None:
        return self._lesson_by_id.get(str(lesson_id))

    def lessons_of(self, unit_id: Any) -> list[dict]:
        return self._lessons.get(str(unit_id), [])

    def parent_of(self, assessment_id: Any) -> str | None:
        """The unit whose pre/post assessment this is, if any."""
        return self._parent.get(str(assessment_id))

    def human_graded(self, unit_id: Any) -> bool:
        """Whether an assessment's workflow says ``grader: human`` (peer review: score 0, one submission)."""
        return str(unit_id) in self._human

    def components(self, lesson_id: Any) -> list[str]:
        return self._components.get(str(lesson_id), [])

    def unit_index(self, unit: dict) -> int | None:
        """1-based among units of type U."""
        index = 0
        for candidate in self.units:
            if candidate["type"] == "U":
                index += 1
                if candidate is unit:
                    return index
        return None

    def lesson_index(self, lesson: dict) -> int | None:
        """1-based among the unit's auto-indexed lessons; None if not indexed."""
        if not lesson.get("auto_index", True):
            return None
        index = 0
        for candidate in self.lessons_of(lesson["unit_id"]):
            if candidate.get("auto_index", True):
                index += 1
            if candidate is lesson:
                return index
        return None

    def display(self, element: dict, viewer: Viewer) -> tuple[bool, bool]:
        """(name shown, content linked) for an element (spec §1.6 element table)."""
        if viewer.admin:
            return True, True
        if self.policy in ("private", "none"):
            return False, False
        level = element.get("availability") or "course"
        if level == "public":
            return True, True
        if level == "private":
            return bool(element.get("shown_when_unavailable")), False
        if self.policy == "registration_required" and not viewer.enrolled:
            return True, False
        return True, True

    def unit_entries(self, unit: dict, viewer: Viewer) -> list[Entry]:
        """A unit's linked sequence: pre-assessment, lessons, post-assessment."""
        unit_id = str(unit["unit_id"])
        entries: list[Entry] = []
        pre = self.unit(unit.get("pre_assessment")) if unit.get("pre_assessment") not in (None, "") else None
        post = self.unit(unit.get("post_assessment")) if unit.get("post_assessment") not in (None, "") else None
        if pre is not None and self.display(pre, viewer)[1]:
            entries.append(Entry("assessment", unit_id, pre))
        for lesson in self.lessons_of(unit_id):
            if self.display(lesson, viewer)[1]:
                entries.append(Entry("lesson", unit_id, lesson))
        if post is not None and self.display(post, viewer)[1]:
            entries.append(Entry("assessment", unit_id, post))
        return entries

    def syllabus(self, viewer: Viewer) -> Iterable[tuple[dict, bool]]:
        """Top-level elements shown on the course page, with whether each is linked."""
        for unit in self.units:
            if unit["type"] == "A" and self.parent_of(unit["unit_id"]):
                continue
            shown, linked = self.display(unit, viewer)
            if shown:
                yield unit, linked

    def top_assessments(self) -> list[dict]:
        return [u for u in self.units if u["type"] == "A" and not self.parent_of(u["unit_id"])]
