"""Course Builder's own archives round-trip through courseport (fixtures README).

Every archive in ``../shared/fixtures/coursebuilder`` uploads into a new, empty
course (``upload course`` for course archives, ``upload datastore`` for
datastore ones) and downloads again with the same rows, ``key`` aside (it
names the app id and namespace of the server that wrote it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import (
    FIXTURES,
    archive_members,
    db_path,
    etl,
    kind_rows,
    params_or_skip,
    require_fixtures,
    without,
)
from courseport.courses.site import Site
from courseport.datastore import Key, SqliteBackend
from courseport.etl import verify


def _fixture_archives() -> list[str]:
    if not FIXTURES.is_dir():
        return []
    dirs = [p for p in sorted(FIXTURES.glob("*/*")) if p.is_dir() and p.name in ("course", "datastore")]
    zips = sorted(FIXTURES.glob("*/*.zip"))
    return [p.relative_to(FIXTURES).as_posix() for p in dirs + zips]


ARCHIVES = _fixture_archives()


def _archive_type(name: str) -> str:
    if name.endswith(".zip"):
        return "course" if Path(name).name.startswith("course") else "datastore"
    return Path(name).name


def test_the_fixtures_are_all_there() -> None:
    root = require_fixtures()
    assert sorted(ARCHIVES) == sorted([
        "click_link/course", "click_link/datastore", "multiple/datastore", "scoring/datastore",
        "simple_questions/course", "live_sample/course_no_static_files.zip",
        "live_sample/datastore.zip", "live_sample/datastore_privacy_s3cret.zip",
    ]), root


def _comparable(row: dict) -> dict:
    """A row minus ``key``; key strings inside (``key_by_user_id``) by their decoded path."""
    out = without(row, "key")
    if isinstance(out.get("key_by_user_id"), str):
        out["key_by_user_id"] = Key.from_urlsafe(out["key_by_user_id"])[1].path
    return out


def _canonical(rows: list[dict]) -> list[str]:
    return sorted(json.dumps(_comparable(r), sort_keys=True) for r in rows)


@pytest.mark.parametrize("name", params_or_skip(ARCHIVES))
def test_fixture_round_trip(name: str, home: Path, tmp_path: Path) -> None:
    source = require_fixtures() / name
    kind = _archive_type(name)
    with SqliteBackend(db_path(home)) as store:
        Site(store).add_course("/fixture")
    original = archive_members(source)
    manifest = json.loads(original["manifest.json"])
    result = etl("upload", kind, "/fixture", "local", "--archive_path", source)
    theirs = kind_rows(original)
    assert theirs, "a fixture without models"
    if kind == "datastore":
        assert result.rows == {k: len(rows) for k, rows in theirs.items()}

    again = tmp_path / "again.zip"
    etl("download", kind, "/fixture", "local", "--archive_path", again)
    assert verify(again).ok
    ours = kind_rows(archive_members(again))
    for k, rows in theirs.items():
        assert k in ours, f"{k} did not come back"
        # as multisets: Course Builder's own files are not always in key order
        # (scoring's EventEntity; privacy rows keep the order of the original keys)
        assert _canonical(ours[k]) == _canonical(rows), k
        for row in ours[k]:
            _, key = Key.from_urlsafe(row["key"])
            assert key.namespace == "ns_fixture" and key.kind == k
    for k in set(ours) - set(theirs):
        # a course download carries every course kind; those the archive lacks are empty,
        # apart from the new course's own files in a datastore download
        assert ours[k] == [] or k in ("FileMetadataEntity", "FileDataEntity"), k
    if kind == "course":
        members = archive_members(again)
        for member in ("files/course.yaml", "files/data/course.json"):
            if member in original:
                assert members[member] == original[member], member
        listed = {e["path"]: e["is_draft"] for e in manifest["entities"]}
        ours_listed = {e["path"]: e["is_draft"] for e in json.loads(members["manifest.json"])["entities"]}
        for member, is_draft in listed.items():
            if member.startswith("files/") and member in original:
                assert ours_listed[member] == is_draft, member


@pytest.mark.parametrize("name", params_or_skip([a for a in ARCHIVES if "datastore" in a]))
def test_student_pii_survives(name: str, home: Path, tmp_path: Path) -> None:
    """Course Builder's upload nulled Student email, name, additional_fields; courseport keeps them."""
    source = require_fixtures() / name
    students = kind_rows(archive_members(source)).get("Student", [])
    if not students:
        pytest.skip(f"{name} has no Student rows")
    with SqliteBackend(db_path(home)) as store:
        Site(store).add_course("/fixture")
    etl("upload", "datastore", "/fixture", "local", "--archive_path", source, "--datastore_types", "Student")
    with SqliteBackend(db_path(home), create=False) as store:
        stored = {s.key.name: s for s in store.query("Student", "ns_fixture")}
    assert len(stored) == len(students)
    kept = 0
    for row in students:
        entity = stored[row["key.name"]]
        for field in ("email", "name", "additional_fields"):
            if field in row:
                assert entity.get(field) == row[field], (row["key.name"], field)
                kept += row[field] is not None
    if "privacy" not in name:
        assert kept, f"{name}: no PII fields to keep"


def test_generic_kinds_are_carried(home: Path, tmp_path: Path) -> None:
    source = require_fixtures() / "click_link" / "datastore"
    theirs = kind_rows(archive_members(source))
    assert {"EditorPrefsEntity", "StudentEnrollmentEventEntity"} <= set(theirs)
    with SqliteBackend(db_path(home)) as store:
        Site(store).add_course("/fixture")
    etl("upload", "datastore", "/fixture", "local", "--archive_path", source,
        "--datastore_types", "EditorPrefsEntity,StudentEnrollmentEventEntity")
    again = tmp_path / "again.zip"
    etl("download", "datastore", "/fixture", "local", "--archive_path", again,
        "--datastore_types", "EditorPrefsEntity,StudentEnrollmentEventEntity")
    ours = kind_rows(archive_members(again))
    for k in ("EditorPrefsEntity", "StudentEnrollmentEventEntity"):
        assert [without(r, "key") for r in ours[k]] == [without(r, "key") for r in theirs[k]]


def test_manifest_listing_absent_members_is_tolerated() -> None:
    root = require_fixtures()
    quirky = []
    for name in ARCHIVES:
        members = archive_members(root / name)
        listed = [e["path"] for e in json.loads(members["manifest.json"])["entities"]]
        if any(path not in members for path in listed):
            quirky.append(name)
            report = verify(root / name)
            assert report.ok, report.lines()
            assert any("absent" in w for w in report.archive.warnings)
    assert quirky, "the fixtures are known to list absent members"
