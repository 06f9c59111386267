"""Tests for courseport.courses.coursejson (spec §4.3-§4.5)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from courseport.courses.coursejson import (
    LESSON_DEFAULTS, LESSON_REQUIRED, UNIT_DEFAULTS, UNIT_REQUIRED, UNIT_TYPES,
    CourseData, CourseDataError, dump_course_json, load_course_json,
    new_course_data)

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "coursebuilder"
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"Course Builder fixtures not found at {FIXTURES}")


def _unit(unit_id: int, **extra: Any) -> dict:
    unit = {"unit_id": unit_id, "type": "U", "title": f"Unit {unit_id}",
            "release_date": "", "href": None, "weight": 1}
    unit.update(extra)
    return unit


def _lesson(lesson_id: int, unit_id: Any, **extra: Any) -> dict:
    lesson = {"lesson_id": lesson_id, "unit_id": unit_id, "title": "New Lesson",
              "objectives": "", "video": "", "notes": "", "duration": "",
              "has_activity": False, "activity_title": ""}
    lesson.update(extra)
    return lesson


def _doc(**overrides: Any) -> dict:
    doc = {"version": "1.3", "next_id": 4,
           "units": [_unit(1)], "lessons": [_lesson(2, "1"), _lesson(3, 1)]}
    doc.update(overrides)
    return doc


def _load(doc: Any) -> CourseData:
    return load_course_json(json.dumps(doc))


def _error(doc: Any) -> str:
    with pytest.raises(CourseDataError) as info:
        _load(doc)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_field_tables_match_spec() -> None:
    assert UNIT_TYPES == {"U": "Unit", "A": "Assessment", "O": "Link", "X": "Custom unit"}
    assert UNIT_REQUIRED == ("unit_id", "type", "title", "release_date", "href", "weight")
    assert set(UNIT_DEFAULTS) == {
        "availability", "shown_when_unavailable", "properties", "labels",
        "workflow_yaml", "html_content", "html_check_answers", "html_review_form",
        "pre_assessment", "post_assessment", "show_contents_on_one_page",
        "manual_progress", "description", "unit_header", "unit_footer",
        "custom_unit_type"}
    assert UNIT_DEFAULTS["workflow_yaml"] == "grader: auto\n"
    assert LESSON_REQUIRED == (
        "lesson_id", "unit_id", "title", "objectives", "video", "notes",
        "duration", "has_activity", "activity_title")
    assert LESSON_DEFAULTS == {
        "activity_listed": True, "scored": False, "properties": {},
        "auto_index": True, "manual_progress": False, "availability": "course",
        "shown_when_unavailable": None}


def test_load_minimal_applies_defaults() -> None:
    data = _load(_doc())
    assert data.version == "1.3"
    assert data.next_id == 4
    assert data.units == [{**_unit(1), **UNIT_DEFAULTS}]
    assert data.lessons[0] == {**_lesson(2, "1"), **LESSON_DEFAULTS}


def test_defaults_are_deep_copies() -> None:
    data = _load(_doc())
    data.units[0]["properties"]["x"] = 1
    data.lessons[0]["properties"]["y"] = 2
    assert UNIT_DEFAULTS["properties"] == {}
    assert LESSON_DEFAULTS["properties"] == {}
    assert data.lessons[1]["properties"] == {}


def test_present_optional_fields_win() -> None:
    doc = _doc(units=[_unit(1, availability="public", properties={"a": [1]})])
    unit = _load(doc).units[0]
    assert unit["availability"] == "public"
    assert unit["properties"] == {"a": [1]}


def test_extra_keys_are_kept() -> None:
    doc = _doc(units=[_unit(1, now_available=True, custom="x")],
               lessons=[_lesson(2, 1, now_available=False)])
    data = _load(doc)
    assert data.units[0]["now_available"] is True
    assert data.units[0]["custom"] == "x"
    assert data.lessons[0]["now_available"] is False
    assert load_course_json(dump_course_json(data)) == data


def test_accessors() -> None:
    data = _load(_doc(units=[_unit(1), _unit(5)], next_id=6))
    assert [lesson["lesson_id"] for lesson in data.lessons_of(1)] == [2, 3]
    assert [lesson["lesson_id"] for lesson in data.lessons_of("1")] == [2, 3]
    assert data.lessons_of(5) == []
    assert data.unit(5)["title"] == "Unit 5"
    assert data.unit("1")["unit_id"] == 1
    assert data.unit(9) is None
    assert data.lesson(3)["unit_id"] == 1
    assert data.lesson(1) is None


def test_empty_document() -> None:
    data = load_course_json('{"version": "1.3"}')
    assert data == CourseData(version="1.3", next_id=1, units=[], lessons=[])


def test_missing_next_id_defaults_to_max_plus_one() -> None:
    doc = _doc()
    del doc["next_id"]
    assert _load(doc).next_id == 4


def test_bytes_and_xssi_prefix() -> None:
    text = json.dumps(_doc())
    assert load_course_json(text.encode("utf-8")) == _load(_doc())
    assert load_course_json(")]}'\n" + text) == _load(_doc())


def test_new_course_data() -> None:
    data = new_course_data()
    assert data == CourseData(version="1.3", next_id=1, units=[], lessons=[])
    assert dump_course_json(data) == '{"version": "1.3", "next_id": 1, "units": [], "lessons": []}'
    assert load_course_json(dump_course_json(data)) == data


def test_dump_format() -> None:
    data = _load(_doc(units=[_unit(1, title="<b>Caf\u00e9</b>")]))
    text = dump_course_json(data)
    assert text.startswith('{"version": "1.3", "next_id": 4, "units": [{"unit_id": 1,')
    assert "\\u003Cb\\u003ECaf\\u00e9\\u003C/b\\u003E" in text
    assert "\n" not in text and text.isascii()


def test_round_trip() -> None:
    data = _load(_doc())
    again = load_course_json(dump_course_json(data))
    assert again == data
    assert dump_course_json(again) == dump_course_json(data)


# --- errors ---------------------------------------------------------------

def test_not_json() -> None:
    with pytest.raises(CourseDataError, match=r"^data/course.json is not valid JSON: .* at line 1 column 2$"):
        load_course_json("{oops")


def test_not_utf8() -> None:
    with pytest.raises(CourseDataError, match="is not UTF-8 text"):
        load_course_json(b'{"version": "\xff"}')


def test_not_an_object() -> None:
    assert _error([1, 2]) == "data/course.json must hold a JSON object, not a list"


def test_source_names_the_file() -> None:
    with pytest.raises(CourseDataError, match="^files/data/course.json must hold"):
        load_course_json("[]", source="files/data/course.json")


def test_version_missing() -> None:
    doc = _doc()
    del doc["version"]
    assert "has no 'version'; only course model version '1.3' is supported" in _error(doc)


@pytest.mark.parametrize("version", ["1.2", 1.3, None, ""])
def test_version_wrong(version: Any) -> None:
    message = _error(_doc(version=version))
    assert f"has version {version!r}; only course model version '1.3' is supported" in message


@pytest.mark.parametrize("key", ["units", "lessons"])
def test_units_lessons_not_lists(key: str) -> None:
    assert _error(_doc(**{key: {}})) == f"data/course.json: '{key}' must be a JSON list, not an object"
    assert "not null" in _error(_doc(**{key: None}))


def test_unit_not_object() -> None:
    assert _error(_doc(units=[_unit(1), "x"])) == (
        "data/course.json: unit #2 must be a JSON object, not a string")


def test_lesson_not_object() -> None:
    assert _error(_doc(lessons=[None])) == (
        "data/course.json: lesson #1 must be a JSON object, not null")


@pytest.mark.parametrize("field", UNIT_REQUIRED)
def test_unit_missing_required(field: str) -> None:
    units = [_unit(1), _unit(5), _unit(7)]
    del units[2][field]
    message = _error(_doc(units=units, next_id=8))
    where = "unit #3" if field == "unit_id" else "unit #3 (unit_id 7)"
    assert message == f"data/course.json: {where} is missing required field '{field}'"


@pytest.mark.parametrize("field", LESSON_REQUIRED)
def test_lesson_missing_required(field: str) -> None:
    lessons = [_lesson(2, 1), _lesson(3, 1)]
    del lessons[1][field]
    message = _error(_doc(lessons=lessons))
    where = "lesson #2" if field == "lesson_id" else "lesson #2 (lesson_id 3)"
    assert message == f"data/course.json: {where} is missing required field '{field}'"


@pytest.mark.parametrize("unit_type", ["u", "Unit", "", None, "Z"])
def test_unit_bad_type(unit_type: Any) -> None:
    message = _error(_doc(units=[_unit(1, type=unit_type)]))
    assert message == (
        f"data/course.json: unit #1 (unit_id 1) has type {unit_type!r}; it must be one "
        "of U (Unit), A (Assessment), O (Link), X (Custom unit)")


@pytest.mark.parametrize("bad_id, kind", [
    ("1", "a string"), (1.0, "a number"), (True, "a boolean"), (None, "null")])
def test_unit_id_not_int(bad_id: Any, kind: str) -> None:
    message = _error(_doc(units=[_unit(bad_id)], lessons=[]))
    assert message == (
        f"data/course.json: unit #1 has unit_id {bad_id!r}; it must be an integer, not {kind}")


@pytest.mark.parametrize("bad_id", ["2", False, 2.5])
def test_lesson_id_not_int(bad_id: Any) -> None:
    message = _error(_doc(lessons=[_lesson(bad_id, 1)]))
    assert f"lesson #1 has lesson_id {bad_id!r}; it must be an integer" in message


def test_duplicate_unit_ids() -> None:
    message = _error(_doc(units=[_unit(1), _unit(1)], lessons=[]))
    assert message == (
        "data/course.json: unit #2 (unit_id 1) reuses id 1, already used by unit #1 "
        "(unit_id 1); units and lessons share one id space")


def test_lesson_id_clashes_with_unit_id() -> None:
    message = _error(_doc(lessons=[_lesson(2, 1), _lesson(1, 1)]))
    assert message == (
        "data/course.json: lesson #2 (lesson_id 1) reuses id 1, already used by "
        "unit #1 (unit_id 1); units and lessons share one id space")


def test_duplicate_lesson_ids() -> None:
    assert "lesson #2 (lesson_id 2) reuses id 2, already used by lesson #1" in _error(
        _doc(lessons=[_lesson(2, 1), _lesson(2, 1)]))


@pytest.mark.parametrize("parent", [9, "9", None, "01"])
def test_lesson_of_unknown_unit(parent: Any) -> None:
    message = _error(_doc(lessons=[_lesson(2, parent)]))
    assert message == (
        f"data/course.json: lesson #1 (lesson_id 2) belongs to unit_id {parent!r}, "
        "which is not a unit of this course")


@pytest.mark.parametrize("kind", ["unit", "lesson"])
@pytest.mark.parametrize("value", ["hidden", "Public", None, True])
def test_bad_availability(kind: str, value: Any) -> None:
    doc = _doc()
    target = doc["units"][0] if kind == "unit" else doc["lessons"][0]
    target["availability"] = value
    item_id = target[f"{kind}_id"]
    assert _error(doc) == (
        f"data/course.json: {kind} #1 ({kind}_id {item_id}) has availability {value!r}; "
        "it must be one of private, course, public")


@pytest.mark.parametrize("value", ["4", 4.0, True, None])
def test_next_id_not_int(value: Any) -> None:
    assert f"next_id {value!r} must be an integer" in _error(_doc(next_id=value))


@pytest.mark.parametrize("value", [3, 0, -1])
def test_next_id_too_small(value: int) -> None:
    assert _error(_doc(next_id=value)) == (
        f"data/course.json: next_id {value} must be greater than the largest id 3, "
        "since Course Builder allocates new ids from next_id (set it to 4)")


def test_error_is_value_error() -> None:
    assert issubclass(CourseDataError, ValueError)


# --- real Course Builder files --------------------------------------------

def _fixture_text(name: str) -> str:
    if name == "live_sample":
        with zipfile.ZipFile(FIXTURES / "live_sample" / "course_no_static_files.zip") as archive:
            return archive.read("files/data/course.json").decode("utf-8")
    return (FIXTURES / name / "course" / "files" / "data" / "course.json").read_text("utf-8")


@needs_fixtures
@pytest.mark.parametrize("name, next_id, unit_ids, lesson_counts", [
    ("click_link", 4, [1], {1: 2}),
    ("simple_questions", 6, [1, 4], {1: 3, 4: 0}),
    ("live_sample", 66, [1, 2, 14, 25, 35, 36, 47, 57, 64, 65],
     {1: 0, 2: 11, 14: 10, 25: 9, 35: 0, 36: 10, 47: 9, 57: 6, 64: 0, 65: 0}),
])
def test_real_course_json(name: str, next_id: int, unit_ids: list[int],
                          lesson_counts: dict[int, int]) -> None:
    text = _fixture_text(name)
    data = load_course_json(text)
    assert data.version == "1.3"
    assert data.next_id == next_id
    assert [unit["unit_id"] for unit in data.units] == unit_ids
    assert {uid: len(data.lessons_of(uid)) for uid in unit_ids} == lesson_counts
    for unit in data.units:
        assert set(UNIT_REQUIRED) | set(UNIT_DEFAULTS) <= set(unit)
    for lesson in data.lessons:
        assert set(LESSON_REQUIRED) | set(LESSON_DEFAULTS) <= set(lesson)
    # Nothing from the real file is lost or changed.
    raw = json.loads(text)
    for loaded, original in zip(data.units + data.lessons, raw["units"] + raw["lessons"]):
        assert {k: loaded[k] for k in original} == original
    assert load_course_json(dump_course_json(data)) == data


@needs_fixtures
def test_real_click_link_details() -> None:
    data = load_course_json(_fixture_text("click_link"))
    assert [lesson["unit_id"] for lesson in data.lessons] == ["1", "1"]
    assert data.lesson(2)["properties"] == {"modules.skill_map.skill_list": []}
    assert data.lesson(3)["notes"] == "https://example.com"


@needs_fixtures
def test_real_simple_questions_gets_default_availability() -> None:
    data = load_course_json(_fixture_text("simple_questions"))
    assert all("availability" not in item for item in json.loads(_fixture_text("simple_questions"))["lessons"])
    assert [lesson["availability"] for lesson in data.lessons] == ["course"] * 3
    assert [lesson["shown_when_unavailable"] for lesson in data.lessons] == [None] * 3
    assert data.unit(4)["type"] == "A"
    assert data.unit(4)["weight"] == 11
    assert data.lesson(3)["scored"] is True
    assert data.lesson(2)["now_available"] is True  # legacy extra key kept


@needs_fixtures
def test_real_live_sample_types() -> None:
    data = load_course_json(_fixture_text("live_sample"))
    assert [unit["type"] for unit in data.units] == ["A", "U", "U", "U", "A", "U", "U", "U", "A", "A"]
    assert data.unit(1)["title"] == "Pre-course assessment"
    assert len(data.lessons) == 55

