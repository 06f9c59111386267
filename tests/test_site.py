"""The site's courses over one store, folder courses, and the bundled sample (spec §2.1, §2.2, §4.7)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import dump_file
from courseport.courses.rules import CourseRuleError, parse_rule
from courseport.courses.sample import install_sample
from courseport.courses.settings import CourseSettingsError
from courseport.courses.site import CourseNotFoundError, Site
from courseport.datastore import Key, Text

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def site(store) -> Site:
    return Site(store)


def test_empty_site(site: Site) -> None:
    assert site.rules() == [] and site.courses() == []
    assert site.find("/x") is None
    with pytest.raises(CourseNotFoundError) as info:
        site.course("/x")
    message = str(info.value)
    assert "'/x'" in message and "courses add" in message and "\n" not in message


def test_add_course(site: Site, store) -> None:
    course = site.add_course("/physics", "Physics")
    assert course.raw == "course:/physics::ns_physics"
    assert course.slug == "/physics" and course.namespace == "ns_physics"
    assert [r.raw for r in site.rules()] == ["course:/physics::ns_physics"]
    assert course.fs.list() == ["/course.yaml"]
    assert store.kinds("ns_physics") == ["FileDataEntity", "FileMetadataEntity"]
    assert store.count("FileDataEntity", "ns_physics") == 1
    assert course.title == "Physics"
    assert course.version == "1.3"
    assert course.data().units == [] and course.data().lessons == []
    found = site.course("/physics")
    assert found.raw == course.raw and found.title == "Physics"


def test_add_course_title_defaults_to_name(site: Site) -> None:
    assert site.add_course("/chem").title == "chem"


def test_rules_live_in_config_property_entity(site: Site, store) -> None:
    site.add_course("/physics", "Physics")
    site.add_course("/chem", "Chemistry")
    entity = store.get(Key("ConfigPropertyEntity", "gcb_courses_config"))
    assert entity is not None and entity.key.namespace == ""
    assert isinstance(entity["value"], Text)
    assert entity["is_draft"] is False
    assert set(re.split(r"[\s,]+", entity["value"].strip())) == {
        "course:/physics::ns_physics", "course:/chem::ns_chem"}
    assert store.kinds("") == ["ConfigPropertyEntity"]
    # a second Site over the same store sees the same courses
    assert [c.raw for c in Site(store).courses()] == [c.raw for c in site.courses()]


def test_draft_config_means_no_courses(site: Site, store) -> None:
    site.add_course("/physics", "Physics")
    entity = store.get(Key("ConfigPropertyEntity", "gcb_courses_config"))
    entity["is_draft"] = True
    store.put(entity)
    assert site.courses() == []


def test_adding_a_course_again_changes_nothing(site: Site, store) -> None:
    site.add_course("/physics", "Physics")
    rules = [r.raw for r in site.rules()]
    before = dump_file(store.path)
    with pytest.raises(CourseRuleError) as info:
        site.add_course("/physics", "Other title")
    assert "already exists" in str(info.value)
    assert [r.raw for r in site.rules()] == rules
    assert dump_file(store.path) == before
    assert site.course("/physics").title == "Physics"


@pytest.mark.parametrize("name", ["/Physics", "/a", "/bad name", "/x/y", "", "/", "/" + "a" * 100,
                                  "/Bad!", "/ns:x", "/é"])
def test_bad_course_names_fail(site: Site, store, name: str) -> None:
    site.add_course("/physics", "Physics")
    before = dump_file(store.path)
    with pytest.raises(CourseRuleError) as info:
        site.add_course(name)
    assert str(info.value) and "\n" not in str(info.value)
    assert dump_file(store.path) == before


def test_namespace_with_data_is_not_reused(site: Site, store) -> None:
    from courseport.datastore import Entity

    store.put(Entity(Key("Student", "u1", namespace="ns_physics"), {"name": "left over"}))
    before = dump_file(store.path)
    with pytest.raises(CourseRuleError):
        site.add_course("/physics")
    assert dump_file(store.path) == before


def test_find_by_prefix(site: Site) -> None:
    site.add_course("/test", "Test")
    assert site.find("/test").slug == "/test"
    for prefix in ("/te", "/tes", "/test/", "/testing", "test", "/"):
        assert site.find(prefix) is None, prefix
    with pytest.raises(CourseNotFoundError) as info:
        site.course("/te")
    assert "/test" in str(info.value)


def test_more_specific_slug_is_found_first(site: Site) -> None:
    site.add_course("/test", "Test")
    site.add_course("/test2", "Test 2")
    assert site.find("/test").title == "Test" and site.find("/test2").title == "Test 2"


def test_course_not_found_lists_known_courses(site: Site) -> None:
    site.add_course("/physics", "Physics")
    site.add_course("/chem", "Chemistry")
    with pytest.raises(CourseNotFoundError) as info:
        site.course("/bio")
    message = str(info.value)
    assert "/bio" in message and "/physics" in message and "/chem" in message


# --- folder courses ------------------------------------------------------------------------

UNIT_CSV = """\
id,type,unit_id,title,release_date,now_available
1,A,Pre,Pre-course assessment,,True
2,U,1,Introduction,2012-10-01,True
3,U,2,Going further,,False
"""

LESSON_CSV = """\
unit_id,unit_title,lesson_id,lesson_title,lesson_activity,lesson_activity_name,lesson_notes,lesson_video_id,lesson_objectives
1,Introduction,1,Welcome,yes,Activity 1.1,,Kdg2drcUjYI,<p>Know the course.</p>
1,Introduction,2,Filter results,,,,XJk8ijAUCiI,<p>Filter by type.</p>
2,Going further,1,Operators,,,,DndOoEVCWfI,
"""


def _folder_course(site: Site, root: Path, files: dict[str, str]):
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    rule = parse_rule(f"course:/legacy:{root}")
    site.save_rules(site.rules() + [rule])
    return site.course("/legacy")


def test_folder_course_with_csvs_is_version_1_2(site: Site, tmp_path: Path) -> None:
    course = _folder_course(site, tmp_path / "legacy", {
        "course.yaml": "course:\n  title: Power Searching\n",
        "data/unit.csv": UNIT_CSV, "data/lesson.csv": LESSON_CSV})
    assert course.raw == f"course:/legacy:{tmp_path / 'legacy'}"
    assert course.fs.editable is False
    assert course.version == "1.2"
    assert course.title == "Power Searching"
    data = course.data()
    assert [(u["unit_id"], u["type"]) for u in data.units] == [("Pre", "A"), ("1", "U"), ("2", "U")]
    assert [lesson["title"] for lesson in data.lessons_of("1")] == ["Welcome", "Filter results"]
    assert [lesson["lesson_id"] for lesson in data.lessons_of("2")] == [1]
    assert data.lessons_of("1")[0]["has_activity"] is True
    assert data.lessons_of("1")[0]["video"] == "Kdg2drcUjYI"


def test_folder_course_with_only_course_yaml_is_version_1_3(site: Site, tmp_path: Path) -> None:
    course = _folder_course(site, tmp_path / "legacy", {"course.yaml": "course:\n  title: New\n"})
    assert course.version == "1.3"
    assert course.title == "New"
    assert course.data().units == []


def test_folder_course_with_one_csv_is_version_1_3(site: Site, tmp_path: Path) -> None:
    course = _folder_course(site, tmp_path / "legacy", {"data/unit.csv": UNIT_CSV})
    assert course.version == "1.3"


def test_folder_course_is_read_only(site: Site, tmp_path: Path, store) -> None:
    from courseport.courses.vfs import FileSystemError

    course = _folder_course(site, tmp_path / "legacy", {"course.yaml": "course:\n  title: New\n"})
    with pytest.raises(FileSystemError):
        course.save_settings_text("course:\n  title: Changed\n")
    assert (tmp_path / "legacy" / "course.yaml").read_text() == "course:\n  title: New\n"


@pytest.mark.parametrize("text", ["course: [unclosed\n", "course:\n  title: [1, 2]\n", "- a\n- b\n",
                                  "course: 5\n"])
def test_broken_course_yaml(site: Site, tmp_path: Path, text: str) -> None:
    course = _folder_course(site, tmp_path / "legacy", {"course.yaml": text})
    with pytest.raises(CourseSettingsError) as info:
        course.settings()
    assert "course.yaml" in str(info.value)
    with pytest.raises(CourseSettingsError):
        course.title


def test_saving_broken_settings_keeps_the_old_ones(site: Site, store) -> None:
    course = site.add_course("/physics", "Physics")
    before = dump_file(store.path)
    with pytest.raises(CourseSettingsError):
        course.save_settings_text("course: [unclosed\n")
    assert dump_file(store.path) == before
    course.save_settings_text("course:\n  title: Physics II\n")
    assert site.course("/physics").title == "Physics II"


# --- the bundled sample --------------------------------------------------------------------


@pytest.fixture
def sample(site: Site):
    course = install_sample(site)
    assert course is not None
    return course


def test_sample_is_installed_at_sample(site: Site, sample, store) -> None:
    assert sample.raw == "course:/sample::ns_sample"
    course = site.course("/sample")
    assert course.title == "An Introduction to Data Privacy"
    assert course.version == "1.3"
    assert course.fs.isfile("/course.yaml") and course.fs.isfile("/data/course.json")
    assert "QuestionEntity" in store.kinds("ns_sample")


def test_sample_units_and_lessons(sample) -> None:
    data = sample.data()
    units = [u for u in data.units if u["type"] == "U"]
    assert len(units) >= 3
    lessons = [lesson for u in units for lesson in data.lessons_of(u["unit_id"])]
    assert len(lessons) >= 8
    for lesson in lessons:
        assert lesson["objectives"].strip(), lesson["title"]
        assert lesson["video"].strip(), lesson["title"]
    links = [u for u in data.units if u["type"] == "O"]
    assert links and all(u["href"].startswith("http") for u in links)


def test_sample_assessment_questions_exist(sample, store) -> None:
    data = sample.data()
    [assessment] = [u for u in data.units if u["type"] == "A"]
    quids = [int(q) for q in re.findall(r'quid="(\d+)"', assessment["html_content"])]
    assert quids
    questions = store.get_multi([Key("QuestionEntity", q, namespace="ns_sample") for q in quids])
    assert all(q is not None for q in questions), dict(zip(quids, questions))
    types = {json.loads(q["data"])["type"] for q in questions}
    assert types == {0, 1}
    for q in questions:
        assert isinstance(q["data"], Text)


def test_sample_assets(sample) -> None:
    data = sample.data()
    with_activity = [lesson for lesson in data.lessons if lesson["has_activity"]]
    assert with_activity
    for lesson in with_activity:
        script = sample.fs.get(f"/assets/js/activity-{lesson['lesson_id']}.js")
        assert script, f"no activity file for lesson {lesson['lesson_id']}"
    files = sample.fs.list()
    assert any(p.startswith("/assets/css/") and p.endswith(".css") for p in files)
    pngs = [p for p in sample.fs.list("/assets/img") if sample.fs.get(p).startswith(PNG_SIGNATURE)]
    assert pngs
    assert not any(p.endswith(("README.md", "questions.json")) for p in files)


def test_install_sample_twice_is_a_no_op(site: Site, sample, store) -> None:
    before = dump_file(store.path)
    assert install_sample(site) is None
    assert dump_file(store.path) == before
    assert [r.raw for r in site.rules()] == ["course:/sample::ns_sample"]


def test_sample_installs_beside_other_courses(site: Site, store) -> None:
    site.add_course("/physics", "Physics")
    install_sample(site)
    assert {c.slug for c in site.courses()} == {"/physics", "/sample"}
    assert site.course("/physics").fs.list() == ["/course.yaml"]
