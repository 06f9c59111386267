"""Tests for courseport.courses.legacy (spec §4.7)."""

from __future__ import annotations

import pytest

from courseport.courses.coursejson import (
    LESSON_DEFAULTS, LESSON_REQUIRED, UNIT_DEFAULTS, UNIT_REQUIRED, CourseDataError)
from courseport.courses.legacy import (
    LEGACY_HUMAN_GRADER_WORKFLOW, LESSONS_HEADER, UNITS_HEADER, load_legacy_course)

# Shaped like Course Builder 1.2's sample course (Power Searching with Google).
UNIT_CSV = """\
id,type,unit_id,title,release_date,now_available
1,A,Pre,Pre-course assessment,,True
2,U,1,Introduction,2012-10-01,False
"""

LESSON_CSV = """\
unit_id,unit_title,lesson_id,lesson_title,lesson_activity,lesson_activity_name,lesson_notes,lesson_video_id,lesson_objectives
1,Introduction,1,Introduction,yes,Lesson 1.1 Activity,https://docs.google.com/notes1,Kdg2drcUjYI,"<ul><li>Know what the course covers.</li>
<li>Know how to get help.</li></ul>"
1,Introduction,2,Filter results,,,,XJk8ijAUCiI,<p>Filter by type.</p>
1,Introduction,3,"Search, then refine",Yes,Lesson 1.3 Activity,,DndOoEVCWfI,
"""

UNIT_HEADER_LINE = ",".join(UNITS_HEADER)
LESSON_HEADER_LINE = ",".join(LESSONS_HEADER)


def _error(unit_csv: str, lesson_csv: str) -> str:
    with pytest.raises(CourseDataError) as info:
        load_legacy_course(unit_csv, lesson_csv)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_sample_course() -> None:
    data = load_legacy_course(UNIT_CSV, LESSON_CSV)
    assert data.version == "1.2"
    assert data.next_id == 0
    assert [u["unit_id"] for u in data.units] == ["Pre", "1"]
    assert [lesson["lesson_id"] for lesson in data.lessons_of("1")] == [1, 2, 3]
    assert data.lessons_of("Pre") == []


def test_unit_mapping() -> None:
    pre, intro = load_legacy_course(UNIT_CSV, LESSON_CSV).units
    assert pre == {
        "unit_id": "Pre", "type": "A", "title": "Pre-course assessment",
        "release_date": "", "href": None, "weight": 0,
        **{**UNIT_DEFAULTS, "availability": "course"}}
    assert intro["type"] == "U"
    assert intro["release_date"] == "2012-10-01"
    assert intro["availability"] == "private"
    assert intro["weight"] == 1
    for unit in (pre, intro):
        assert set(UNIT_REQUIRED) | set(UNIT_DEFAULTS) == set(unit)


def test_lesson_mapping() -> None:
    first, second, third = load_legacy_course(UNIT_CSV, LESSON_CSV).lessons
    assert first == {
        "lesson_id": 1, "unit_id": "1", "title": "Introduction",
        "objectives": "<ul><li>Know what the course covers.</li>\n<li>Know how to get help.</li></ul>",
        "video": "Kdg2drcUjYI", "notes": "https://docs.google.com/notes1",
        "duration": "", "has_activity": True, "activity_title": "Lesson 1.1 Activity",
        **LESSON_DEFAULTS}
    assert second["has_activity"] is False
    assert second["notes"] == ""
    assert third["title"] == "Search, then refine"
    # Course Builder 1.2 compares with 'yes' exactly.
    assert third["has_activity"] is False
    for lesson in (first, second, third):
        assert set(LESSON_REQUIRED) | set(LESSON_DEFAULTS) == set(lesson)


def test_defaults_are_copies() -> None:
    data = load_legacy_course(UNIT_CSV, LESSON_CSV)
    data.units[0]["properties"]["x"] = 1
    data.lessons[0]["properties"]["x"] = 1
    assert data.units[1]["properties"] == {}
    assert data.lessons[1]["properties"] == {}
    assert UNIT_DEFAULTS["properties"] == {} and LESSON_DEFAULTS["properties"] == {}


def test_legacy_weights_links_and_review_workflow() -> None:
    units = (
        f"{UNIT_HEADER_LINE}\n"
        "1,A,Mid,Mid-course assessment,,True\n"
        "2,A,Fin,Post-course assessment,,True\n"
        "3,A,ReviewAssessmentExample,Peer review,,True\n"
        "4,O,http://example.com/forum,Forum,,True\n")
    data = load_legacy_course(units, LESSON_HEADER_LINE + "\n")
    assert [u["weight"] for u in data.units] == [30, 70, 1, 1]
    assert data.units[2]["workflow_yaml"] == LEGACY_HUMAN_GRADER_WORKFLOW
    assert data.units[0]["workflow_yaml"] == "grader: auto\n"
    assert data.units[3]["href"] == "http://example.com/forum"
    assert data.lessons == []


def test_crlf_blank_lines_bom_and_bytes() -> None:
    units = ("\ufeff" + UNIT_CSV).replace("\n", "\r\n") + "\r\n"
    data = load_legacy_course(units.encode("utf-8"), LESSON_CSV.encode("utf-8"))
    assert data == load_legacy_course(UNIT_CSV, LESSON_CSV)


def test_lookup_by_string_unit_id() -> None:
    data = load_legacy_course(UNIT_CSV, LESSON_CSV)
    assert data.unit("Pre")["title"] == "Pre-course assessment"
    assert data.unit(1)["title"] == "Introduction"
    assert len(data.lessons_of(1)) == 3


# --- errors ---------------------------------------------------------------

def test_wrong_unit_header() -> None:
    units = UNIT_CSV.replace("now_available", "available")
    assert _error(units, LESSON_CSV) == (
        "data/unit.csv has header 'id,type,unit_id,title,release_date,available'; "
        "expected 'id,type,unit_id,title,release_date,now_available'")


def test_wrong_lesson_header() -> None:
    lessons = LESSON_CSV.replace("lesson_video_id,", "")
    assert _error(UNIT_CSV, lessons).startswith("data/lesson.csv has header 'unit_id,")


def test_empty_file() -> None:
    assert _error("", LESSON_CSV) == (
        f"data/unit.csv is empty; expected header {UNIT_HEADER_LINE}")


def test_lesson_of_unknown_unit() -> None:
    lessons = LESSON_CSV + "7,Nowhere,1,Lost,,,,,\n"
    assert _error(UNIT_CSV, lessons) == (
        "data/lesson.csv line 6: unit_id '7' is not a unit in data/unit.csv")


def test_wrong_field_count() -> None:
    units = UNIT_CSV + "3,U,2,Short row\n"
    assert _error(units, LESSON_CSV) == (
        "data/unit.csv line 4 has 4 fields; expected 6 "
        "(id,type,unit_id,title,release_date,now_available)")


def test_bad_unit_type() -> None:
    units = UNIT_CSV + "3,Q,2,Quiz,,True\n"
    assert _error(units, LESSON_CSV) == (
        "data/unit.csv line 4: unit '2' has type 'Q'; it must be one of U, A, O, X")


def test_empty_unit_id() -> None:
    assert _error(UNIT_CSV + "3,U,,Untitled,,True\n", LESSON_CSV) == (
        "data/unit.csv line 4 has an empty unit_id")


def test_duplicate_unit_id() -> None:
    assert _error(UNIT_CSV + "3,U,1,Again,,True\n", LESSON_CSV) == (
        "data/unit.csv line 4: unit_id '1' is already used on line 3")


def test_bad_lesson_id() -> None:
    lessons = LESSON_CSV + "1,Introduction,four,Four,,,,,\n"
    assert _error(UNIT_CSV, lessons) == (
        "data/lesson.csv line 6: lesson_id 'four' must be an integer "
        "(the lesson's 1-based position in its unit)")


def test_duplicate_lesson_in_unit() -> None:
    lessons = LESSON_CSV + "1,Introduction,2,Again,,,,,\n"
    assert _error(UNIT_CSV, lessons) == (
        "data/lesson.csv line 6: unit '1' already has a lesson 2 (line 4)")


def test_bad_csv_and_encoding() -> None:
    huge = UNIT_CSV + "3,U,2," + "x" * 200_000 + ",,True\n"
    assert "data/unit.csv line 4 is not valid CSV: field larger than field limit" in _error(huge, LESSON_CSV)
    assert "data/lesson.csv is not UTF-8 text" in _error(UNIT_CSV, b"\xff\xfe")
