"""Synthetic learners in Course Builder's shapes (populate.py; spec §3.3-§3.6, §5)."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path

import pytest

from conftest import dump_file, dump_raw
from courseport.courses.populate import PopulateError, populate
from courseport.courses.rules import parse_rule
from courseport.courses.sample import install_sample
from courseport.courses.site import Site
from courseport.datastore import SqliteBackend, Text

NS = "ns_sample"
LEARNER_KINDS = {"Student", "StudentPropertyEntity", "StudentAnswersEntity", "EventEntity"}
PAGE_SOURCES = {"enter-page", "exit-page", "tag-youtube-milestone", "click-link"}


def _populated(path: Path, students: int, seed: int, workers: int | None = 1) -> tuple[SqliteBackend, dict]:
    store = SqliteBackend(path)
    course = install_sample(Site(store))
    counts = populate(course, students, seed, workers=workers)
    return store, counts


def _learner_rows(store) -> dict:
    """Raw rows of every kind except the sample's own file metadata (its times are the clock)."""
    return {k: v for k, v in dump_raw(store).items() if k != (NS, "FileMetadataEntity")}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """/sample with 50 students, seed 7 (shared: the tests below only read it)."""
    path = tmp_path_factory.mktemp("cohort") / "store.db"
    store, counts = _populated(path, 50, 7)
    course = Site(store).course("/sample")
    yield store, course, counts
    store.close()


def _entities(store, kind: str) -> list:
    return list(store.query(kind, NS))


# --- determinism -----------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_same_seed_gives_the_same_bytes(tmp_path: Path, cohort, workers: int) -> None:
    first = cohort[0]
    second, counts = _populated(tmp_path / "b.db", 50, 7, workers=workers)
    try:
        assert counts == cohort[2]
        a, b = _learner_rows(first), _learner_rows(second)
        assert set(a) == set(b)
        assert {kind for ns, kind in a if ns == NS} >= LEARNER_KINDS
        for slot in a:
            assert a[slot] == b[slot], slot
    finally:
        second.close()


def test_another_seed_gives_other_learners(tmp_path: Path, cohort) -> None:
    other, _ = _populated(tmp_path / "c.db", 50, 8)
    try:
        a, b = _learner_rows(cohort[0]), _learner_rows(other)
        for kind in LEARNER_KINDS:
            assert a[(NS, kind)] != b[(NS, kind)], kind
        ids_a = {e["user_id"] for e in _entities(cohort[0], "Student")}
        ids_b = {e["user_id"] for e in _entities(other, "Student")}
        assert not ids_a & ids_b
        # the course itself is the same
        assert a[(NS, "QuestionEntity")] == b[(NS, "QuestionEntity")]
    finally:
        other.close()


def test_worker_count_does_not_change_the_data(tmp_path: Path) -> None:
    # enough learners for several work chunks, so two workers really share them
    one, counts_one = _populated(tmp_path / "w1.db", 1_100, 3, workers=1)
    two, counts_two = _populated(tmp_path / "w2.db", 1_100, 3, workers=2)
    try:
        assert counts_one == counts_two and counts_one["Student"] == 1_100
        a, b = _learner_rows(one), _learner_rows(two)
        assert set(a) == set(b)
        for slot in a:
            assert a[slot] == b[slot], slot
    finally:
        one.close()
        two.close()


# --- counts and shapes -------------------------------------------------------------------------


def test_counts(cohort) -> None:
    store, _, counts = cohort
    assert set(counts) == LEARNER_KINDS
    for kind, n in counts.items():
        assert store.count(kind, NS) == n, kind
    assert counts["Student"] == 50
    assert counts["StudentPropertyEntity"] == 50
    assert 0 < counts["StudentAnswersEntity"] <= 50
    assert 5 <= counts["EventEntity"] / 50 <= 15


def _assessment(course):
    [unit] = [u for u in course.data().units if u["type"] == "A"]
    return str(unit["unit_id"]), re.findall(r'instanceid="([^"]+)"', unit["html_content"])


def test_students(cohort) -> None:
    store, course, _ = cohort
    students = _entities(store, "Student")
    unit_id, _ = _assessment(course)
    emails = set()
    for s in students:
        assert re.fullmatch(r"\d{21}", s["user_id"]), s["user_id"]
        assert s.key.name == s["user_id"]
        assert s["email"] == s["email"].lower() and s["email"].endswith("@example.com")
        emails.add(s["email"])
        assert s["name"].strip()
        assert isinstance(s["additional_fields"], Text)
        pairs = json.loads(s["additional_fields"])
        assert isinstance(pairs, list) and pairs
        assert all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in pairs)
        assert type(s["enrolled_on"]) is dt.datetime and type(s["last_seen_on"]) is dt.datetime
        assert s["enrolled_on"] <= s["last_seen_on"]
        assert s["is_enrolled"] is True
        if s["scores"] is not None:
            assert isinstance(s["scores"], Text)
            scores = json.loads(s["scores"])
            assert isinstance(scores, dict) and set(scores) == {unit_id}
            assert all(0 <= v <= 100 for v in scores.values())
    assert len(emails) == len(students) == len({s["user_id"] for s in students})


def test_student_answers(cohort) -> None:
    store, course, _ = cohort
    unit_id, instances = _assessment(course)
    assert instances
    students = {s.key.name: s for s in _entities(store, "Student")}
    answers = _entities(store, "StudentAnswersEntity")
    assert answers
    for entity in answers:
        assert entity.key.name in students
        assert type(entity["updated_on"]) is dt.datetime
        assert isinstance(entity["data"], Text)
        data = json.loads(entity["data"])
        assert set(data) == {unit_id}
        submission = data[unit_id]
        assert submission["version"] == "1.5"
        for part in ("answers", "individualScores", "containedTypes"):
            assert set(submission[part]) == set(instances), part
        for instance in instances:
            assert instance in submission
            assert submission["individualScores"][instance] in (0, 1)
            assert submission["containedTypes"][instance] in ("McQuestion", "SaQuestion")
        # a student with answers has a score for that assessment
        assert set(json.loads(students[entity.key.name]["scores"])) == {unit_id}
    # and a student without answers has no scores
    answered = {e.key.name for e in answers}
    assert all(s["scores"] is None for name, s in students.items() if name not in answered)


def test_student_properties(cohort) -> None:
    store, _, _ = cohort
    user_ids = {s["user_id"] for s in _entities(store, "Student")}
    props = _entities(store, "StudentPropertyEntity")
    assert {p.key.name for p in props} == {f"{u}-linear-course-completion" for u in user_ids}
    for p in props:
        assert p["name"] == "linear-course-completion"
        assert isinstance(p["value"], Text)
        value = json.loads(p["value"])
        assert isinstance(value, dict) and value
        for code, state in value.items():
            assert re.fullmatch(r"r\.0|u\.\d+(\.l\.\d+)?|s\.\d+", code), code
            assert state in (0, 1, 2)


def test_events(cohort) -> None:
    store, course, _ = cohort
    unit_id, _ = _assessment(course)
    user_ids = {s["user_id"] for s in _entities(store, "Student")}
    events = _entities(store, "EventEntity")
    sources = {e["source"] for e in events}
    assert {"enter-page", "exit-page", "tag-youtube-milestone", "submit-assessment", "click-link"} <= sources
    for e in events:
        assert e.key.id is not None  # numeric ids, as Course Builder allocates them
        assert e["user_id"] in user_ids
        assert type(e["recorded_on"]) is dt.datetime
        assert isinstance(e["data"], Text)
        data = json.loads(e["data"])
        assert isinstance(data, dict)
        if e["source"] in PAGE_SOURCES:
            assert data["location"].startswith("http") and "/sample/" in data["location"]
            assert isinstance(data["loc"], dict) and data["loc"]["country"]
            assert data["user_agent"].startswith("Mozilla/")
        if e["source"] == "submit-assessment":
            assert data["type"] == f"assessment-{unit_id}"
            assert data["values"]["version"] == "1.5"
    # every learner left some trace
    assert {e["user_id"] for e in events} == user_ids


def test_populate_other_course_without_units(store) -> None:
    site = Site(store)
    course = site.add_course("/physics", "Physics")
    counts = populate(course, 5, 1)
    assert counts["Student"] == 5 and store.count("Student", "ns_physics") == 5
    assert store.count("Student", NS) == 0


# --- refusals ----------------------------------------------------------------------------------


def test_populating_a_course_with_students_fails_and_writes_nothing(store) -> None:
    course = install_sample(Site(store))
    populate(course, 5, 1)
    before = dump_file(store.path)
    with pytest.raises(PopulateError) as info:
        populate(course, 5, 2)
    assert "already has" in str(info.value)
    assert dump_file(store.path) == before


@pytest.mark.parametrize("students", [0, -1])
def test_no_students_is_refused(store, students: int) -> None:
    course = install_sample(Site(store))
    before = dump_file(store.path)
    with pytest.raises(PopulateError):
        populate(course, students, 1)
    assert dump_file(store.path) == before


def test_folder_course_cannot_be_populated(store, tmp_path: Path) -> None:
    site = Site(store)
    root = tmp_path / "legacy"
    root.mkdir()
    (root / "course.yaml").write_text("course:\n  title: Legacy\n")
    site.save_rules([parse_rule(f"course:/legacy:{root}")])
    before = dump_file(store.path)
    with pytest.raises(PopulateError) as info:
        populate(site.course("/legacy"), 3, 1)
    assert "read-only" in str(info.value)
    assert dump_file(store.path) == before


# --- scale ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_hundred_thousand_students(tmp_path: Path) -> None:
    store = SqliteBackend(tmp_path / "big.db")
    try:
        course = install_sample(Site(store))
        started = time.perf_counter()
        counts = populate(course, 100_000, 11)
        elapsed = time.perf_counter() - started
        total = sum(counts.values())
        assert counts["Student"] == store.count("Student", NS) == 100_000
        assert store.count("EventEntity", NS) == counts["EventEntity"]
        assert 5 <= counts["EventEntity"] / 100_000 <= 15
        user_ids = {k.name for k in store.query("Student", NS, keys_only=True)}
        assert len(user_ids) == 100_000
    finally:
        store.close()
    size = (tmp_path / "big.db").stat().st_size
    print(f"\npopulate 100,000 students: {total:,} entities in {elapsed:.1f}s "
          f"= {total / elapsed:,.0f} entities/s; store {size / 1e6:,.1f} MB on disk")
