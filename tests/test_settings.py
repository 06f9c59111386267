"""Tests for courseport.courses.settings (spec §4.2)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from courseport.courses.settings import (
    AVAILABILITY_PRESETS, CourseSettingsError, availability, blank_course_yaml,
    course_title, dump_course_yaml, load_course_yaml)

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "coursebuilder"
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"Course Builder fixtures not found at {FIXTURES}")


def _error(text: str | bytes) -> str:
    with pytest.raises(CourseSettingsError) as info:
        load_course_yaml(text)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_load_simple() -> None:
    settings = load_course_yaml("course:\n  title: Physics\n  now_available: true\n")
    assert settings == {"course": {"title": "Physics", "now_available": True}}


def test_load_bytes_and_empty() -> None:
    assert load_course_yaml("course: {title: Caf\u00e9}".encode("utf-8")) == {"course": {"title": "Caf\u00e9"}}
    assert load_course_yaml("") == {}
    assert load_course_yaml("# only a comment\n") == {}


def test_load_without_course_key() -> None:
    assert load_course_yaml("unit: {}\n") == {"unit": {}}


def test_syntax_error_names_line() -> None:
    assert _error("{").startswith("course.yaml is not valid YAML at line 1 column 2: ")
    message = _error("course:\n  title: x\n  bad: [1, 2\n")
    assert message.startswith("course.yaml is not valid YAML at line 4 ")


def test_syntax_error_mapping_value() -> None:
    assert _error("a: b: c") == (
        "course.yaml is not valid YAML at line 1 column 5: mapping values are not allowed here")


def test_not_utf8() -> None:
    assert "is not UTF-8 text" in _error(b"course: {title: \xff}")


@pytest.mark.parametrize("text, kind", [("- a\n- b\n", "list"), ("just text", "str"), ("3", "int")])
def test_not_a_mapping(text: str, kind: str) -> None:
    assert _error(text) == f"course.yaml must be a mapping of settings, not a {kind}"


@pytest.mark.parametrize("text, found", [
    ("course: [a]", "list ['a']"), ("course: x", "str 'x'"), ("course:\n", "empty")])
def test_course_not_a_mapping(text: str, found: str) -> None:
    assert _error(text) == f"course.yaml: 'course' must be a mapping of settings, not {found}"


@pytest.mark.parametrize("text, found", [
    ("course: {title: 123}", "int 123"), ("course: {title: true}", "bool True"),
    ("course: {title: [a]}", "list ['a']"), ("course: {title: }", "empty")])
def test_title_not_a_string(text: str, found: str) -> None:
    assert _error(text) == f"course.yaml: course.title must be a string, not {found}; quote it"


def test_error_is_value_error() -> None:
    assert issubclass(CourseSettingsError, ValueError)


def test_dump_is_block_style_sorted_ascii() -> None:
    text = dump_course_yaml({"course": {"title": "Caf\u00e9", "browsable": False}, "a": 1})
    assert text == 'a: 1\ncourse:\n  browsable: false\n  title: "Caf\\xE9"\n'
    assert load_course_yaml(text) == {"a": 1, "course": {"title": "Caf\u00e9", "browsable": False}}


def test_course_title() -> None:
    assert course_title({"course": {"title": "Physics"}}) == "Physics"
    assert course_title({"course": {}}) == ""
    assert course_title({}) == ""
    assert course_title({"course": "oops"}) == ""


def test_blank_course_yaml_text() -> None:
    assert blank_course_yaml("Physics 101", "teacher@example.com") == (
        "# my new course.yaml\n"
        "course:\n"
        "  title: 'Physics 101'\n"
        "  admin_user_emails: '[teacher@example.com]'\n"
        "  now_available: False\n")


@pytest.mark.parametrize("title", [
    "Physics", "Bob's course", "a: b # c", "[x]", "Caf\u00e9", "'quoted'", "", "  spaced  "])
def test_blank_course_round_trip(title: str) -> None:
    settings = load_course_yaml(blank_course_yaml(title))
    assert settings == {"course": {
        "title": title, "admin_user_emails": "[admin@example.com]", "now_available": False}}
    assert course_title(settings) == title
    assert load_course_yaml(dump_course_yaml(settings)) == settings


@pytest.mark.parametrize("title", ["two\nlines", "tab\there", "bell\x07"])
def test_blank_course_rejects_multiline_title(title: str) -> None:
    with pytest.raises(CourseSettingsError, match="must be one line of printable text"):
        blank_course_yaml(title)


@pytest.mark.parametrize("name, flags", list(AVAILABILITY_PRESETS.items()))
def test_availability_presets(name: str, flags: tuple[bool, bool, bool]) -> None:
    now_available, browsable, can_register = flags
    settings = {"course": {"now_available": now_available, "browsable": browsable},
                "reg_form": {"can_register": can_register}}
    assert availability(settings) == name


def test_availability_table() -> None:
    assert AVAILABILITY_PRESETS == {
        "private": (False, False, False),
        "registration_required": (True, False, True),
        "registration_optional": (True, True, True),
        "public": (True, True, False)}


def test_availability_custom() -> None:
    settings = {"course": {"now_available": False, "browsable": True},
                "reg_form": {"can_register": True}}
    assert availability(settings) == "custom"
    assert availability(load_course_yaml(blank_course_yaml("x"))) == "custom"
    settings = {"course": {"now_available": 1, "browsable": 0}, "reg_form": {"can_register": 1}}
    assert availability(settings) == "custom"


def test_availability_defaults_for_absent_flags() -> None:
    # An existing course.yaml defaults to now_available true, browsable false, can_register true.
    assert availability({"course": {"title": "x"}}) == "registration_required"
    assert availability({"course": {"now_available": False}, "reg_form": {"can_register": False}}) == "private"
    assert availability({}) == "custom"


# --- real Course Builder files --------------------------------------------

def _fixture_text(name: str) -> str:
    if name == "live_sample":
        with zipfile.ZipFile(FIXTURES / "live_sample" / "course_no_static_files.zip") as archive:
            return archive.read("files/course.yaml").decode("utf-8")
    return (FIXTURES / name / "course" / "files" / "course.yaml").read_text("utf-8")


@needs_fixtures
@pytest.mark.parametrize("name, title, preset", [
    ("click_link", "clicklinktest", "registration_required"),
    ("simple_questions", "Test Course", "registration_optional"),
    ("live_sample", "Sample Course", "custom"),
])
def test_real_course_yaml(name: str, title: str, preset: str) -> None:
    settings = load_course_yaml(_fixture_text(name))
    assert course_title(settings) == title
    assert settings["course"]["admin_user_emails"].startswith("[")
    assert availability(settings) == preset
    assert load_course_yaml(dump_course_yaml(settings)) == settings


@needs_fixtures
def test_real_course_yaml_details() -> None:
    click = load_course_yaml(_fixture_text("click_link"))
    assert click["_reserved"] == {"context_path": "/clicklinktest", "namespace": "ns_clicklinktest"}
    assert "search.js" in click["html_hooks"]["base"]["before_navbar_ends"]
    simple = load_course_yaml(_fixture_text("simple_questions"))
    assert simple["certificate_criteria"] == [
        {"assessment_id": 4, "custom_criteria": "", "pass_percent": "100"}]
    live = load_course_yaml(_fixture_text("live_sample"))
    assert live["course"]["forum_email"] == "My-Course@googlegroups.com"
    assert live["unit"]["show_unit_links_in_leftnav"] is True
