"""Synthetic learners in Course Builder's shapes, made by the course server's own builders
(populate.py over learning/records.py and learning/progress.py; spec §1.8, §3.2-§3.6, §5.8, §6.3, §6.5, §7.3)."""

from __future__ import annotations

import datetime as dt
import json
import pickle
import re
import time
from pathlib import Path

import pytest

from conftest import dump_file, dump_raw
from courseport.courses.learning.outline import Outline
from courseport.courses.learning.progress import Progress
from courseport.courses.learning.records import Learners, User, py2_round
from courseport.courses.populate import PopulateError, course_structure, populate
from courseport.courses.rules import parse_rule
from courseport.courses.sample import install_sample
from courseport.courses.site import Site
from courseport.datastore import Key, SqliteBackend, Text

NS = "ns_sample"
LEARNER_KINDS = {
    "Student", "StudentEnrollmentEventEntity", "StudentPreferencesEntity", "StudentPropertyEntity",
    "StudentAnswersEntity", "Submission", "EventEntity",
}
PAGE_SOURCES = {"enter-page", "exit-page", "tag-youtube-milestone", "click-link"}
TOKEN = re.compile(r"^\d+/[A-Za-z0-9_-]{22}==$")
PROGRESS_KEY = re.compile(r"^(r\.0|u\.\d+(\.l\.\d+(\.h\.0(\.c\.[A-Za-z0-9]+)?)?)?|s\.\d+|u\.\d+\.s\.\d+)$")
COUNT_KEY = re.compile(r"^(s\.\d+|u\.\d+\.s\.\d+|.*\.c\.[A-Za-z0-9]+)$")  # counts, not states
LOC_KEYS = {"page_locale", "locale", "language", "country", "region", "city", "lat", "long"}
ANSWER_KEYS = {"version", "answers", "individualScores", "containedTypes", "quids", "rawScore", "totalWeight",
               "percentScore"}


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
    assert counts["StudentEnrollmentEventEntity"] == counts["StudentPreferencesEntity"] == 50
    assert 0 < counts["StudentAnswersEntity"] <= 50
    # the sample has one (auto-graded) assessment: one Submission for each learner who took it
    assert counts["Submission"] == counts["StudentAnswersEntity"]
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
        # a registration POST: every field in form order, the XSRF token first (spec §3.2)
        assert [name for name, _ in pairs] == ["xsrf_token", "form01"]
        assert TOKEN.match(pairs[0][1]), pairs[0][1]
        assert pairs[1][1] == s["name"]
        issued = int(pairs[0][1].partition("/")[0])
        enrolled = int((s["enrolled_on"] - dt.datetime(1970, 1, 1)).total_seconds())
        assert enrolled - 3600 <= issued <= enrolled  # issued with the form, shortly before the POST
        assert type(s["enrolled_on"]) is dt.datetime and type(s["last_seen_on"]) is dt.datetime
        assert s["enrolled_on"] <= s["last_seen_on"]
        assert s["is_enrolled"] is True
        assert s["labels"] == "" and s["group_id"] is None
        if s["scores"] is not None:
            assert isinstance(s["scores"], Text)
            scores = json.loads(s["scores"])
            assert isinstance(scores, dict) and set(scores) == {unit_id}
            assert all(type(v) is int and 0 <= v <= 100 for v in scores.values()), scores
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
        # the 1.11 client's answers object (spec §6.3)
        assert set(submission) == ANSWER_KEYS | set(instances)
        for part in ("answers", "individualScores", "containedTypes", "quids"):
            assert set(submission[part]) == set(instances), part
        for instance in instances:
            assert instance in submission
            assert submission["individualScores"][instance] in (0, 1)
            assert submission["containedTypes"][instance] in ("McQuestion", "SaQuestion")
            quid = submission["quids"][instance]
            assert isinstance(quid, str) and store.get(Key("QuestionEntity", int(quid), namespace=NS)) is not None
            if submission["containedTypes"][instance] == "McQuestion":
                assert isinstance(submission["answers"][instance], list)
                assert all(type(b) is bool for b in submission[instance])
            else:
                assert isinstance(submission["answers"][instance], str)
                assert submission[instance] == {"response": submission["answers"][instance]}
        for part in ("rawScore", "totalWeight", "percentScore"):
            assert type(submission[part]) in (int, float), part
        assert submission["rawScore"] == sum(submission["individualScores"].values())
        assert submission["totalWeight"] == len(instances)
        assert submission["percentScore"] == round(100 * submission["rawScore"] / len(instances), 2)
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
        assert type(p["updated_on"]) is dt.datetime
        value = json.loads(p["value"])
        assert isinstance(value, dict) and value
        for code, state in value.items():
            assert PROGRESS_KEY.match(code), code
            assert type(state) is int
            assert state >= 1 if COUNT_KEY.match(code) else state in (0, 1, 2), (code, state)


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
            # the client's payload, enriched by the server (spec §7.1, §7.3)
            assert data["location"].startswith("http") and "/sample/" in data["location"]
            assert isinstance(data["loc"], dict) and set(data["loc"]) == LOC_KEYS, data["loc"]
            loc = data["loc"]
            assert loc["page_locale"] == loc["locale"] == "en_US"
            assert loc["country"] and all(isinstance(loc[k], str) for k in ("language", "country", "region", "city"))
            assert type(loc["lat"]) is float and type(loc["long"]) is float
            assert data["user_agent"].startswith("Mozilla/")
        if e["source"] == "submit-assessment":
            # written by POST /answer itself: no loc, no user agent (spec §6.5)
            assert set(data) == {"type", "values", "location"}
            assert data["type"] == f"assessment-{unit_id}"
            assert data["location"] == "AnswerHandler"
            assert set(data["values"]) >= ANSWER_KEYS and data["values"]["version"] == "1.5"
        if e["source"] == "exit-page":
            assert type(data["duration"]) is int and data["duration"] > 0
    # every learner left some trace
    assert {e["user_id"] for e in events} == user_ids


def _by_user(entities) -> dict:
    out: dict = {}
    for e in entities:
        out.setdefault(e["user_id"], []).append(e)
    return out


def test_submissions(cohort) -> None:
    store, course, _ = cohort
    unit_id, _ = _assessment(course)
    answers = {e.key.name: e for e in _entities(store, "StudentAnswersEntity")}
    submissions = _entities(store, "Submission")
    assert submissions and len(submissions) == len(answers)
    for sub in submissions:
        user_id = sub.key.name.rpartition(":")[2].rstrip(")")
        assert sub.key.name == f"(submission:{unit_id}:{user_id})"
        assert sub["unit_id"] == unit_id
        assert sub["reviewee_key"] == Key("Student", user_id, namespace=NS)
        assert store.get(sub["reviewee_key"]) is not None
        assert isinstance(sub["contents"], Text) and sub["instance_id"] is None
        assert type(sub["updated_on"]) is dt.datetime
        # the latest attempt, as in the learner's answers
        latest = answers[user_id]
        assert json.loads(sub["contents"]) == json.loads(latest["data"])[unit_id]
        assert sub["updated_on"] == latest["updated_on"]


def test_scores_are_the_best_rounded_percent(cohort) -> None:
    """Student.scores: ``py2_round`` of each posted percent, a higher one replacing a lower (spec §6.5)."""
    store, course, _ = cohort
    unit_id, _ = _assessment(course)
    posted = {user: [json.loads(e["data"])["values"] for e in rows if e["source"] == "submit-assessment"]
              for user, rows in _by_user(_entities(store, "EventEntity")).items()}
    retakes = 0
    for s in _entities(store, "Student"):
        attempts = posted.get(s["user_id"], [])
        if not attempts:
            assert s["scores"] is None
            continue
        retakes += len(attempts) > 1
        best = max(py2_round(f"{a['percentScore']:.2f}") for a in attempts)
        assert json.loads(s["scores"]) == {unit_id: best}
    assert retakes  # some learners took the assessment twice


def test_enrollment_events(cohort) -> None:
    store, _, _ = cohort
    events = _entities(store, "StudentEnrollmentEventEntity")
    assert len(events) == 50
    stamps = []
    for e in events:
        assert e.key.id is not None and e.key.name is None
        assert set(e) == {"data"} and isinstance(e["data"], Text)
        data = json.loads(e["data"])
        assert list(data) == ["timestamp", "metric"]
        assert type(data["timestamp"]) is int and data["metric"] == "enrolled"
        stamps.append(data["timestamp"])
    enrolled = [int((s["enrolled_on"] - dt.datetime(1970, 1, 1)).total_seconds()) for s in _entities(store, "Student")]
    assert sorted(stamps) == sorted(enrolled)


def test_preferences_hold_the_last_page(cohort) -> None:
    store, _, _ = cohort
    events = _by_user(_entities(store, "EventEntity"))
    prefs = _entities(store, "StudentPreferencesEntity")
    assert {p.key.name for p in prefs} == {s["user_id"] for s in _entities(store, "Student")}
    for p in prefs:
        assert isinstance(p["data"], Text)
        data = json.loads(p["data"])
        assert set(data) == {"version", "show_hooks", "show_jinja_context", "last_location"}
        assert data["version"] == "1.0" and data["show_hooks"] is False and data["show_jinja_context"] is False
        location = data["last_location"]
        assert re.fullmatch(r"/sample/(course|unit\?unit=\d+&lesson=\d+|assessment\?name=\d+)", location), location
        # the page of the learner's last enter-page event
        entered = sorted((e for e in events[p.key.name] if e["source"] == "enter-page"), key=lambda e: e["recorded_on"])
        last_page = json.loads(entered[-1]["data"])["location"]
        assert last_page.endswith(location) and last_page.startswith("http")


def test_progress_is_the_servers(cohort) -> None:
    """Replaying a learner's lesson views and submissions through the server's tracker gives their row."""
    store, course, _ = cohort
    outline = Outline(course.settings(), course.data())
    events = _by_user(_entities(store, "EventEntity"))
    props = {p.key.name: p for p in _entities(store, "StudentPropertyEntity")}
    for user_id, rows in events.items():
        progress = Progress(outline)
        for e in sorted(rows, key=lambda e: e["recorded_on"]):
            data = json.loads(e["data"])
            if e["source"] == "enter-page":
                lesson = re.search(r"unit\?unit=(\d+)&lesson=(\d+)$", data["location"])
                if lesson:
                    progress.html_viewed(lesson.group(1), lesson.group(2))
            elif e["source"] == "submit-assessment":
                progress.assessment_submitted(data["type"].partition("-")[2])
        assert json.loads(props[f"{user_id}-linear-course-completion"]["value"]) == progress.values


def test_structure_goes_to_workers_whole(cohort) -> None:
    """The outline a worker gets is the course's (pickled with the structure)."""
    _, course, _ = cohort
    structure = course_structure(course)
    copy = pickle.loads(pickle.dumps(structure))
    assert copy.outline.units == structure.outline.units and copy.outline.settings == structure.outline.settings
    assert copy.memo_token == structure.memo_token


def test_rows_have_the_shapes_the_server_writes(cohort, tmp_path: Path) -> None:
    """Every populate row has the properties, and value types, of the row the server writes for a real learner."""
    store, course, _ = cohort
    clock = [dt.datetime(2026, 9, 1, 9, 0, 0)]

    def now() -> dt.datetime:
        clock[0] += dt.timedelta(seconds=30)
        return clock[0]

    real_store = SqliteBackend(tmp_path / "real.db")
    try:
        real = install_sample(Site(real_store))
        outline = Outline(real.settings(), real.data())
        learners = Learners(real, clock=now)
        student = learners.register(User("Ada@Example.com", "1" + "2" * 20), "Ada",
                                    [("xsrf_token", "1790000000/" + "A" * 22 + "=="), ("form01", "Ada")])
        learners.saw_page(student["user_id"], "/sample/course", outline_shown=True)
        learners.update_progress(student["user_id"], outline, lambda p: p.html_viewed("1", "2"))
        learners.saw_page(student["user_id"], "/sample/unit?unit=1&lesson=2")
        learners.record_event("enter-page", student["user_id"], {"location": "http://x/sample/unit?unit=1&lesson=2"})
        sample = json.loads(next(iter(_entities(store, "StudentAnswersEntity")))["data"])
        unit_id = next(iter(sample))
        learners.submit(learners.student(student["user_id"]) or student, outline, unit_id, "66.67", sample[unit_id])
        real_rows = {kind: list(real_store.query(kind, NS)) for kind in LEARNER_KINDS}
    finally:
        real_store.close()

    def shape(entity) -> dict:
        return {name: type(value) for name, value in entity.items() if value is not None}

    for kind in LEARNER_KINDS:
        assert real_rows[kind], kind
        names = {tuple(sorted(e)) for e in real_rows[kind]}
        shapes = {tuple(sorted(shape(e).items(), key=str)) for e in real_rows[kind]}
        for row in _entities(store, kind):
            assert tuple(sorted(row)) in names, (kind, sorted(row))
            if kind != "Student" or row["scores"] is not None:
                assert tuple(sorted(shape(row).items(), key=str)) in shapes, (kind, shape(row))


def test_course_that_records_no_events(store) -> None:
    """``can_record_student_events: false``: no page events, no progress from lesson views;
    POST /answer still writes its event, answers, Submission and progress (spec §5.8, §6.5, §7.4)."""
    course = install_sample(Site(store))
    text = course.fs.get("/course.yaml").decode("utf-8")
    assert "can_record_student_events: true" in text
    course.save_settings_text(text.replace("can_record_student_events: true", "can_record_student_events: false"))
    counts = populate(course, 30, 5)
    assert counts["Student"] == 30 and counts["StudentPreferencesEntity"] == 30
    events = _entities(store, "EventEntity")
    assert {e["source"] for e in events} == {"submit-assessment"}
    assert len(events) >= counts["Submission"] > 0
    for p in _entities(store, "StudentPropertyEntity"):
        if p["value"] is None:
            assert p["updated_on"] is None  # the empty row of the course page (spec §3.3)
        else:
            # a submission counts, and the course is under way; no lesson was tracked
            assert all(re.fullmatch(r"s\.\d+|r\.0", code) for code in json.loads(p["value"])), p["value"]


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
