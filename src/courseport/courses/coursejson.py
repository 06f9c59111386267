"""``data/course.json``: units and lessons of a model 1.3 course (spec §4.3-§4.5)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from courseport import _json
from ..errors import UserError
from .text import as_text

SOURCE = "data/course.json"
VERSION = "1.3"
AVAILABILITY_VALUES = ("private", "course", "public")

UNIT_TYPES = {"U": "Unit", "A": "Assessment", "O": "Link", "X": "Custom unit"}

UNIT_REQUIRED: tuple[str, ...] = (
    "unit_id", "type", "title", "release_date", "href", "weight")
UNIT_DEFAULTS: dict[str, Any] = {
    "availability": "course",
    "shown_when_unavailable": None,
    "properties": {},
    "labels": "",
    "workflow_yaml": "grader: auto\n",
    "html_content": "",
    "html_check_answers": False,
    "html_review_form": "",
    "pre_assessment": None,
    "post_assessment": None,
    "show_contents_on_one_page": False,
    "manual_progress": False,
    "description": None,
    "unit_header": None,
    "unit_footer": None,
    "custom_unit_type": None,
}

LESSON_REQUIRED: tuple[str, ...] = (
    "lesson_id", "unit_id", "title", "objectives", "video", "notes",
    "duration", "has_activity", "activity_title")
LESSON_DEFAULTS: dict[str, Any] = {
    "activity_listed": True,
    "scored": False,
    "properties": {},
    "auto_index": True,
    "manual_progress": False,
    "availability": "course",
    "shown_when_unavailable": None,
}


class CourseDataError(UserError, ValueError):
    """Course unit/lesson data is not valid."""


@dataclass
class CourseData:
    """A course's units and lessons; dicts carry every field, defaults applied."""

    version: str
    next_id: int
    units: list[dict] = field(default_factory=list)
    lessons: list[dict] = field(default_factory=list)

    def lessons_of(self, unit_id: Any) -> list[dict]:
        """Lessons of a unit, in order (ids compared as strings, as CB does)."""
        key = str(unit_id)
        return [lesson for lesson in self.lessons if str(lesson["unit_id"]) == key]

    def unit(self, unit_id: Any) -> dict | None:
        """The unit with this id, or None."""
        return _find(self.units, "unit_id", unit_id)

    def lesson(self, lesson_id: Any) -> dict | None:
        """The lesson with this id, or None."""
        return _find(self.lessons, "lesson_id", lesson_id)


def _find(items: list[dict], key: str, value: Any) -> dict | None:
    wanted = str(value)
    return next((item for item in items if str(item[key]) == wanted), None)


def new_course_data() -> CourseData:
    """An empty model 1.3 course."""
    return CourseData(version=VERSION, next_id=1, units=[], lessons=[])


def dump_course_json(data: CourseData) -> str:
    """Serialise as Course Builder writes ``data/course.json``."""
    return _json.dumps({
        "version": data.version,
        "next_id": data.next_id,
        "units": data.units,
        "lessons": data.lessons,
    })


def load_course_json(text: str | bytes, source: str = SOURCE) -> CourseData:
    """Parse and validate ``data/course.json``; ``source`` names it in errors."""
    doc = _parse(text, source)
    _check_version(doc, source)
    units = [
        _unit(item, n, source)
        for n, item in enumerate(_list_field(doc, "units", source), 1)]
    lessons = [
        _lesson(item, n, source)
        for n, item in enumerate(_list_field(doc, "lessons", source), 1)]
    max_id = _check_ids(units, lessons, source)
    _check_parents(units, lessons, source)
    next_id = _next_id(doc, max_id, source)
    return CourseData(version=VERSION, next_id=next_id, units=units, lessons=lessons)


def _parse(text: str | bytes, source: str) -> dict:
    text = as_text(text, source, CourseDataError)
    try:
        doc = _json.loads(text)
    except _json.JsonError as error:  # bad syntax, NaN, nesting, a number too long
        problem = str(error)
        raise CourseDataError(f"{source} is {problem}" if problem.startswith("not valid JSON")
                              else f"{source}: {problem}") from None
    if not isinstance(doc, dict):
        raise CourseDataError(
            f"{source} must hold a JSON object, not {_type_name(doc)}")
    return doc


def _check_version(doc: dict, source: str) -> None:
    if "version" not in doc:
        raise CourseDataError(
            f"{source} has no 'version'; only course model version '1.3' is supported")
    if doc["version"] != VERSION:
        raise CourseDataError(
            f"{source} has version {doc['version']!r}; only course model "
            "version '1.3' is supported")


def _list_field(doc: dict, key: str, source: str) -> list:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise CourseDataError(
            f"{source}: {key!r} must be a JSON list, not {_type_name(value)}")
    return value


def _unit(item: Any, n: int, source: str) -> dict:
    unit = _record(item, n, "unit", UNIT_REQUIRED, UNIT_DEFAULTS, source)
    if unit["type"] not in UNIT_TYPES:
        choices = ", ".join(f"{code} ({name})" for code, name in UNIT_TYPES.items())
        raise CourseDataError(
            f"{source}: {_label('unit', n, unit)} has type {unit['type']!r}; "
            f"it must be one of {choices}")
    return unit


def _lesson(item: Any, n: int, source: str) -> dict:
    return _record(item, n, "lesson", LESSON_REQUIRED, LESSON_DEFAULTS, source)


def _record(item: Any, n: int, kind: str, required: tuple[str, ...],
            defaults: dict[str, Any], source: str) -> dict:
    """Check one unit/lesson object and return a copy with defaults applied."""
    if not isinstance(item, dict):
        raise CourseDataError(
            f"{source}: {kind} #{n} must be a JSON object, not {_type_name(item)}")
    label = _label(kind, n, item)
    for key in required:
        if key not in item:
            raise CourseDataError(
                f"{source}: {label} is missing required field {key!r}")
    id_key = f"{kind}_id"
    if not _is_int(item[id_key]):
        raise CourseDataError(
            f"{source}: {label} has {id_key} {item[id_key]!r}; it must be an "
            f"integer, not {_type_name(item[id_key])}")
    record = dict(item)
    for key, value in defaults.items():
        if key not in record:
            record[key] = copy.deepcopy(value)
    if record["availability"] not in AVAILABILITY_VALUES:
        raise CourseDataError(
            f"{source}: {label} has availability {record['availability']!r}; "
            f"it must be one of {', '.join(AVAILABILITY_VALUES)}")
    return record


def _check_ids(units: list[dict], lessons: list[dict], source: str) -> int:
    """Check ids are unique across units and lessons; return the largest (or 0)."""
    owners: dict[int, str] = {}
    labelled = [("unit", n, u) for n, u in enumerate(units, 1)]
    labelled += [("lesson", n, lesson) for n, lesson in enumerate(lessons, 1)]
    for kind, n, item in labelled:
        item_id = item[f"{kind}_id"]
        label = _label(kind, n, item)
        if item_id in owners:
            raise CourseDataError(
                f"{source}: {label} reuses id {item_id}, already used by "
                f"{owners[item_id]}; units and lessons share one id space")
        owners[item_id] = label
    return max(owners, default=0)


def _check_parents(units: list[dict], lessons: list[dict], source: str) -> None:
    unit_ids = {str(unit["unit_id"]) for unit in units}
    for n, lesson in enumerate(lessons, 1):
        if str(lesson["unit_id"]) not in unit_ids:
            raise CourseDataError(
                f"{source}: {_label('lesson', n, lesson)} belongs to unit_id "
                f"{lesson['unit_id']!r}, which is not a unit of this course")


def _next_id(doc: dict, max_id: int, source: str) -> int:
    if "next_id" not in doc:
        return max_id + 1
    next_id = doc["next_id"]
    if not _is_int(next_id):
        raise CourseDataError(
            f"{source}: next_id {next_id!r} must be an integer, not "
            f"{_type_name(next_id)}")
    if next_id <= max_id:
        raise CourseDataError(
            f"{source}: next_id {next_id} must be greater than the largest id "
            f"{max_id}, since Course Builder allocates new ids from next_id "
            f"(set it to {max_id + 1})")
    return next_id


def _label(kind: str, n: int, item: dict) -> str:
    item_id = item.get(f"{kind}_id")
    if _is_int(item_id):
        return f"{kind} #{n} ({kind}_id {item_id})"
    return f"{kind} #{n}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_name(value: Any) -> str:
    """JSON's name for a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
