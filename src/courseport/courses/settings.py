"""``course.yaml``: a course's settings (spec §4.2)."""

from __future__ import annotations

from typing import Any, Collection

import yaml

from .. import _json
from ..errors import UserError
from .text import as_text

SOURCE = "course.yaml"
#: how deep course.yaml may nest (Course Builder's nests 4 levels)
MAX_DEPTH = _json.MAX_DEPTH
#: how many values it may hold, aliases expanded (Course Builder's holds about 100)
MAX_VALUES = 100_000

# (now_available, browsable, reg_form.can_register) of each availability preset.
AVAILABILITY_PRESETS: dict[str, tuple[bool, bool, bool]] = {
    "private": (False, False, False),
    "registration_required": (True, False, True),
    "registration_optional": (True, True, True),
    "public": (True, True, False),
}


class CourseSettingsError(UserError, ValueError):
    """A course.yaml file is not valid."""


def load_course_yaml(text: str | bytes) -> dict:
    """Parse course.yaml; an empty file gives ``{}``."""
    text = as_text(text, SOURCE, CourseSettingsError)
    try:
        settings = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CourseSettingsError(_yaml_error_message(error)) from None
    except RecursionError:
        raise CourseSettingsError(f"{SOURCE} nests more than {MAX_DEPTH} levels deep") from None
    except (ValueError, OverflowError) as error:  # a value PyYAML's constructors will not convert
        problem = "an integer with more than 4300 digits" if "integer string conversion" in str(error) \
            else (str(error).splitlines() or [type(error).__name__])[0][:200]
        raise CourseSettingsError(f"{SOURCE} holds a value that cannot be read: {problem}") from None
    if settings is None:
        return {}
    _check_shape(settings)
    _check(settings)
    return settings


def _check_shape(settings: Any) -> None:
    """Bounded nesting, a bounded number of values once aliases are expanded
    (``&a [*b, *b, ...]`` chains grow exponentially), 64-bit integers."""
    stack: list[tuple[Collection[Any], int]] = [([settings], 0)]
    seen = 0
    while stack:
        item, level = stack.pop()
        if level > MAX_DEPTH:
            raise CourseSettingsError(f"{SOURCE} nests more than {MAX_DEPTH} levels deep")
        children = list(item.keys()) + list(item.values()) if isinstance(item, dict) else item
        for child in children:
            seen += 1
            if seen > MAX_VALUES:
                raise CourseSettingsError(f"{SOURCE} holds more than {MAX_VALUES:,} values "
                                          "(counting each use of an alias)")
            if isinstance(child, (dict, list, tuple, set)):  # !!omap and !!pairs give tuples, !!set a set
                stack.append((child, level + 1))
            elif isinstance(child, int) and not -(1 << 63) <= child < (1 << 63):
                # 0x... integers have no digit limit, but printing one does
                raise CourseSettingsError(f"{SOURCE} holds an integer beyond 64 bits: write a smaller number")


def _yaml_error_message(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or getattr(error, "context", None) or str(error)
    where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
    return " ".join(f"{SOURCE} is not valid YAML{where}: {problem}".split())


def _check(settings: Any) -> None:
    if not isinstance(settings, dict):
        raise CourseSettingsError(
            f"{SOURCE} must be a mapping of settings, not a {type(settings).__name__}")
    course = settings.get("course", {})
    if not isinstance(course, dict):
        raise CourseSettingsError(
            f"{SOURCE}: 'course' must be a mapping of settings, not "
            f"{_describe(course)}")
    title = course.get("title", "")
    if not isinstance(title, str):
        raise CourseSettingsError(
            f"{SOURCE}: course.title must be a string, not {_describe(title)}; "
            "quote it")


def _describe(value: Any) -> str:
    if value is None:
        return "empty"
    return f"{type(value).__name__} {value!r}"


def dump_course_yaml(settings: dict) -> str:
    """Serialise settings as YAML (block style, sorted keys, ASCII)."""
    return yaml.safe_dump(
        settings, default_flow_style=False, sort_keys=True, allow_unicode=False)


def course_title(settings: dict) -> str:
    """The course title, or '' if there is none."""
    course = settings.get("course")
    if isinstance(course, dict) and isinstance(course.get("title"), str):
        return course["title"]
    return ""


def blank_course_yaml(title: str, admin_email: str = "admin@example.com") -> str:
    """The course.yaml Course Builder's admin UI writes for a new course."""
    for name, value in (("title", title), ("admin email", admin_email)):
        if not value.isprintable():
            raise CourseSettingsError(
                f"course {name} {value!r} must be one line of printable text")
    return (
        "# my new course.yaml\n"
        "course:\n"
        f"  title: {_single_quoted(title)}\n"
        f"  admin_user_emails: {_single_quoted('[' + admin_email + ']')}\n"
        "  now_available: False\n")


def _single_quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def availability(settings: dict) -> str:
    """The availability preset the settings match, or ``"custom"``.

    Absent flags take Course Builder's defaults for an existing course.yaml:
    now_available true, browsable false, can_register true (an empty file
    gets now_available false).
    """
    course = _mapping(settings, "course")
    reg_form = _mapping(settings, "reg_form")
    flags = (
        course.get("now_available", bool(settings)),
        course.get("browsable", False),
        reg_form.get("can_register", True),
    )
    for name, preset in AVAILABILITY_PRESETS.items():
        # Compare like CB's ==, but don't let 1/0 pass for True/False.
        if all(type(f) is bool and f == p for f, p in zip(flags, preset)):
            return name
    return "custom"


def _mapping(settings: dict, key: str) -> dict:
    value = settings.get(key)
    return value if isinstance(value, dict) else {}


#: course settings ``courseport settings set --course`` changes, and how each is written
COURSE_SETTINGS = ("availability", "can_record_student_events", "title", "registration_header",
                   "registration_fields")


def with_course_setting(settings: dict, name: str, value: str) -> dict:
    """A copy of ``settings`` with one setting changed as Course Builder's
    dashboard writes it (spec §8.4): ``availability`` sets its three flags."""
    changed = dict(settings)
    course = dict(_mapping(changed, "course"))
    if name == "availability":
        if value not in AVAILABILITY_PRESETS:
            raise CourseSettingsError(
                f"availability {value!r} is not one of: {', '.join(AVAILABILITY_PRESETS)}")
        now_available, browsable, can_register = AVAILABILITY_PRESETS[value]
        reg_form = dict(_mapping(changed, "reg_form"))
        course["now_available"], course["browsable"] = now_available, browsable
        reg_form["can_register"] = can_register
        changed["reg_form"] = reg_form
    elif name == "can_record_student_events":
        lowered = value.strip().lower()
        if lowered not in ("true", "false"):
            raise CourseSettingsError(f"can_record_student_events is true or false, not {value!r}")
        course[name] = lowered == "true"
    elif name in ("registration_header", "registration_fields"):
        # authored HTML, shown as written (Course Builder's reg_form:header_text and
        # reg_form:additional_registration_fields)
        reg_form = dict(_mapping(changed, "reg_form"))
        reg_form["header_text" if name == "registration_header" else "additional_registration_fields"] = value
        changed["reg_form"] = reg_form
    elif name == "title":
        if not value.strip() or not value.isprintable():
            raise CourseSettingsError("a course title is one line of printable text")
        course["title"] = value
    else:
        raise CourseSettingsError(f"no course setting {name!r} (course settings: {', '.join(COURSE_SETTINGS)})")
    changed["course"] = course
    return changed
