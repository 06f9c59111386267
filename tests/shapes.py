"""Kind-by-kind shape comparison of downloaded rows with Course Builder's own.

A row's shape is each property's JSON type (a datetime string counts as
``datetime``), and for the JSON held in text properties (scores, progress,
answers, event data, registration fields) the shape of what it holds. Real
Course Builder rows come from ``../shared/fixtures/coursebuilder``: the live
sample for what it has, ``click_link`` and ``scoring`` (real learners' clicks)
for the rest.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

from conftest import require_fixtures

DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
TOKEN = re.compile(r"\d+/[A-Za-z0-9_-]{22}==")
PROGRESS_KEY = re.compile(r"r\.0|u\.\d+(\.l\.\d+(\.h\.0(\.c\.[A-Za-z0-9_.-]+)?|\.a\.0(\.b\.\d+)?)?)?|s\.\d+|u\.\d+\.s\.\d+")


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "datetime" if DATETIME.fullmatch(value) else "str"
    return type(value).__name__


def property_types(rows: list[dict]) -> dict[str, set[str]]:
    types: dict[str, set[str]] = {}
    for row in rows:
        for name, value in row.items():
            types.setdefault(name, set()).add(json_type(value))
    return types


def fixture_rows() -> dict[str, list[dict]]:
    """Course Builder's rows by kind: the live sample's, then click_link's and scoring's for other kinds."""
    root = require_fixtures()
    kinds: dict[str, list[dict]] = {}
    with zipfile.ZipFile(root / "live_sample" / "datastore.zip") as zf:
        for name in zf.namelist():
            if name.startswith("models/"):
                kinds[name[7:-5]] = json.loads(zf.read(name))["rows"]
    for folder in ("click_link", "scoring"):
        for path in sorted((root / folder / "datastore" / "models").glob("*.json")):
            kinds.setdefault(path.stem, []).extend(json.loads(path.read_text())["rows"])
    return kinds


def archive_rows(archive: Path) -> dict[str, list[dict]]:
    with zipfile.ZipFile(archive) as zf:
        return {n[7:-5]: json.loads(zf.read(n))["rows"] for n in zf.namelist() if n.startswith("models/")}


def assert_same_property_types(kind: str, ours: list[dict], theirs: list[dict]) -> None:
    mine, real = property_types(ours), property_types(theirs)
    assert set(mine) == set(real), f"{kind}: properties differ: ours {sorted(mine)}, Course Builder's {sorted(real)}"
    for name, types in mine.items():
        allowed = real[name] | ({"null"} if name in ("scores", "last_seen_on", "value", "updated_on") else set())
        assert types <= allowed, f"{kind}.{name}: ours are {sorted(types)}, Course Builder's {sorted(real[name])}"


def assert_student(rows: list[dict]) -> None:
    for row in rows:
        pairs = json.loads(row["additional_fields"])
        assert all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in pairs)
        assert pairs[0][0] == "xsrf_token" and TOKEN.fullmatch(pairs[0][1]), pairs[:1]
        if row["scores"] is not None:
            scores = json.loads(row["scores"])
            assert all(isinstance(k, str) and type(v) is int for k, v in scores.items()), scores


def assert_progress(rows: list[dict]) -> None:
    for row in rows:
        if row["value"] is None:
            assert row["updated_on"] is None
            continue
        values = json.loads(row["value"])
        for key, value in values.items():
            assert PROGRESS_KEY.fullmatch(key), key
            assert type(value) is int and (value in (0, 1, 2) or ".c." in key or ".s." in key
                                           or key.startswith("s.")), (key, value)


def assert_answers(rows: list[dict], real: list[dict]) -> None:
    def fields(submission: dict) -> set[str]:  # the object's own keys, not its questions' saved states
        return set(submission) - set(submission.get("answers") or {})

    real_keys = set()
    for row in real:
        for value in json.loads(row["data"]).values():
            if isinstance(value, dict):
                real_keys |= fields(value)
    for row in rows:
        for unit, submission in json.loads(row["data"]).items():
            assert unit.isdigit() and isinstance(submission, dict)
            keys = fields(submission)
            assert real_keys <= keys, real_keys - keys
            assert {"quids", "rawScore", "totalWeight", "percentScore"} <= keys


def assert_events(rows: list[dict], real: list[dict]) -> None:
    real_by_source: dict[tuple[str, Any], set[str]] = {}  # (source, data's "type"): its keys
    for row in real:
        data = json.loads(row["data"])
        if "loc" in data or row["source"] == "submit-assessment":
            real_by_source.setdefault((row["source"], data.get("type")), set()).update(data)
    loc_keys = {"page_locale", "locale", "language", "country", "region", "city"}
    for row in rows:
        data = json.loads(row["data"])
        source = row["source"]
        if source == "submit-assessment":
            assert set(data) == {"type", "values", "location"} and data["location"] == "AnswerHandler"
            continue
        assert "location" in data and "user_agent" in data and loc_keys <= set(data["loc"]), (source, data)
        expected = real_by_source.get((source, data.get("type")))
        if expected is not None:
            assert expected <= set(data), (source, expected - set(data))


def assert_like_course_builder(ours: dict[str, list[dict]], *, kinds: set[str]) -> None:
    """Every kind in ``kinds`` is present in ``ours`` and has Course Builder's shapes."""
    real = fixture_rows()
    missing = kinds - set(ours)
    assert not missing, f"kinds missing from the download: {sorted(missing)}"
    for kind in sorted(kinds):
        assert ours[kind], f"no {kind} rows"
        if kind in real:
            assert_same_property_types(kind, ours[kind], real[kind])
    assert_student(ours["Student"])
    assert_progress([r for r in ours["StudentPropertyEntity"] if r["name"] == "linear-course-completion"])
    assert_answers(ours["StudentAnswersEntity"], real["StudentAnswersEntity"])
    assert_events(ours["EventEntity"], real["EventEntity"])
    for row in ours.get("StudentEnrollmentEventEntity", []):
        data = json.loads(row["data"])
        assert set(data) == {"timestamp", "metric"} and type(data["timestamp"]) is int
        assert data["metric"] in ("enrolled", "unenrolled") and row["key.name"] == "None"
    for row in ours.get("Submission", []):
        assert re.fullmatch(r"\(submission:\d+:\d+\)", row["key.name"]), row["key.name"]
        assert isinstance(row["reviewee_key"], str) and row["instance_id"] is None
        assert json_type(row["updated_on"]) == "datetime" and isinstance(json.loads(row["contents"]), dict)
    for row in ours.get("StudentPreferencesEntity", []):
        assert set(json.loads(row["data"])) >= {"version", "show_hooks", "show_jinja_context", "last_location"}
