"""Read-only model 1.2 courses: ``data/unit.csv`` and ``data/lesson.csv`` (spec §4.7).

Units and lessons come out in the same dict shapes as model 1.3, but ids keep
1.2's meaning: a unit_id is the CSV text (``'1'``, ``'Pre'``) and a lesson_id
is the lesson's 1-based position within its unit, so lesson ids repeat
across units.
"""

from __future__ import annotations

import copy
import csv
import io
from typing import Any, Iterator

from .text import as_text

from courseport.courses.coursejson import (
    LESSON_DEFAULTS, UNIT_DEFAULTS, UNIT_TYPES, CourseData, CourseDataError)

VERSION = "1.2"
UNIT_FILE = "data/unit.csv"
LESSON_FILE = "data/lesson.csv"
UNITS_HEADER = ("id", "type", "unit_id", "title", "release_date", "now_available")
LESSONS_HEADER = (
    "unit_id", "unit_title", "lesson_id", "lesson_title", "lesson_activity",
    "lesson_activity_name", "lesson_notes", "lesson_video_id", "lesson_objectives")

# Course Builder gives the 1.2 sample course's assessments these weights.
LEGACY_ASSESSMENT_WEIGHTS = {"Pre": 0, "Mid": 30, "Fin": 70}
LEGACY_REVIEW_ASSESSMENT = "ReviewAssessmentExample"
LEGACY_HUMAN_GRADER_WORKFLOW = (
    "grader: human\n"
    "matcher: peer\n"
    "review_due_date: '2099-03-21 12:00'\n"
    "review_min_count: 2\n"
    "review_window_mins: 60\n"
    "submission_due_date: '2099-03-14 12:00'\n")


def load_legacy_course(unit_csv: str | bytes, lesson_csv: str | bytes) -> CourseData:
    """Load a 1.2 course; ``next_id`` is 0 because 1.2 has no id counter."""
    units: list[dict] = []
    unit_lines: dict[str, int] = {}
    for line, row in _rows(unit_csv, UNIT_FILE, UNITS_HEADER):
        unit = _unit(row, line)
        if unit["unit_id"] in unit_lines:
            raise CourseDataError(
                f"{UNIT_FILE} line {line}: unit_id {unit['unit_id']!r} is already "
                f"used on line {unit_lines[unit['unit_id']]}")
        unit_lines[unit["unit_id"]] = line
        units.append(unit)
    lessons: list[dict] = []
    seen: dict[tuple[str, int], int] = {}
    for line, row in _rows(lesson_csv, LESSON_FILE, LESSONS_HEADER):
        lesson = _lesson(row, line, unit_lines)
        key = (lesson["unit_id"], lesson["lesson_id"])
        if key in seen:
            raise CourseDataError(
                f"{LESSON_FILE} line {line}: unit {key[0]!r} already has a lesson "
                f"{key[1]} (line {seen[key]})")
        seen[key] = line
        lessons.append(lesson)
    return CourseData(version=VERSION, next_id=0, units=units, lessons=lessons)


def _rows(text: str | bytes, source: str,
          header: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (first line number, row dict) for each non-blank data row."""
    text = as_text(text, source, CourseDataError)
    reader = csv.reader(io.StringIO(text, newline=""))
    found_header = False
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row:
                continue
            if not found_header:
                _check_header(row, source, header)
                found_header = True
                continue
            if len(row) != len(header):
                raise CourseDataError(
                    f"{source} line {line} has {len(row)} fields; expected "
                    f"{len(header)} ({','.join(header)})")
            yield line, dict(zip(header, row))
    except csv.Error as error:
        raise CourseDataError(
            f"{source} line {reader.line_num} is not valid CSV: {error}") from None
    if not found_header:
        raise CourseDataError(f"{source} is empty; expected header {','.join(header)}")


def _check_header(row: list[str], source: str, header: tuple[str, ...]) -> None:
    if tuple(row) != header:
        raise CourseDataError(
            f"{source} has header {','.join(row)!r}; expected {','.join(header)!r}")


def _unit(row: dict[str, str], line: int) -> dict[str, Any]:
    unit_id, unit_type = row["unit_id"], row["type"]
    if not unit_id:
        raise CourseDataError(f"{UNIT_FILE} line {line} has an empty unit_id")
    if unit_type not in UNIT_TYPES:
        raise CourseDataError(
            f"{UNIT_FILE} line {line}: unit {unit_id!r} has type {unit_type!r}; "
            f"it must be one of {', '.join(UNIT_TYPES)}")
    unit: dict[str, Any] = {
        "unit_id": unit_id,
        "type": unit_type,
        "title": row["title"],
        "release_date": row["release_date"],
        "href": unit_id if unit_type == "O" else None,  # 1.2 links keep the URL in unit_id
        "weight": _weight(unit_id, unit_type),
    }
    unit.update(copy.deepcopy(UNIT_DEFAULTS))
    # Course Builder reads now_available as `value == 'True'`.
    unit["availability"] = "course" if row["now_available"] == "True" else "private"
    if unit_id == LEGACY_REVIEW_ASSESSMENT:
        unit["workflow_yaml"] = LEGACY_HUMAN_GRADER_WORKFLOW
    return unit


def _weight(unit_id: str, unit_type: str) -> int:
    if unit_type == "A":
        return LEGACY_ASSESSMENT_WEIGHTS.get(unit_id, 1)
    return 1


def _lesson(row: dict[str, str], line: int, unit_ids: dict[str, int]) -> dict[str, Any]:
    unit_id = row["unit_id"]
    if unit_id not in unit_ids:
        raise CourseDataError(
            f"{LESSON_FILE} line {line}: unit_id {unit_id!r} is not a unit in "
            f"{UNIT_FILE}")
    try:
        lesson_id = int(row["lesson_id"])
    except ValueError:
        raise CourseDataError(
            f"{LESSON_FILE} line {line}: lesson_id {row['lesson_id']!r} must be an "
            "integer (the lesson's 1-based position in its unit)") from None
    lesson: dict[str, Any] = {
        "lesson_id": lesson_id,
        "unit_id": unit_id,
        "title": row["lesson_title"],
        "objectives": row["lesson_objectives"],
        "video": row["lesson_video_id"],
        "notes": row["lesson_notes"],
        "duration": "",
        "has_activity": row["lesson_activity"] == "yes",
        "activity_title": row["lesson_activity_name"],
    }
    lesson.update(copy.deepcopy(LESSON_DEFAULTS))
    return lesson
