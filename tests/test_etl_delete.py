"""``delete datastore`` and ``delete course`` (spec §6.7): confirmation, scope, effect."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import assert_error_line, cli_at, db_path, dump_raw, etl, snapshot_store
from courseport.courses.site import Site
from courseport.datastore import SqliteBackend
from courseport.etl.errors import EtlError


@pytest.fixture
def two_courses(sample_home: Path, tmp_path: Path) -> Path:
    """/sample (populated) and /other, a copy of its data in another namespace."""
    archive = tmp_path / "d.zip"
    etl("download", "datastore", "/sample", "local", "--archive_path", archive)
    with SqliteBackend(db_path(sample_home), create=False) as store:
        Site(store).add_course("/other")
    etl("upload", "datastore", "/other", "local", "--archive_path", archive)
    return sample_home


def _state(home: Path) -> dict:
    with SqliteBackend(db_path(home), create=False) as store:
        return dump_raw(store)


def _others(state: dict, namespace: str) -> dict:
    return {slot: rows for slot, rows in state.items() if slot[0] != namespace}


def test_delete_datastore_confirmed_empties_the_namespace(two_courses: Path) -> None:
    before = _state(two_courses)
    assert any(ns == "ns_sample" for ns, _ in before)
    proc = cli_at(two_courses, "delete", "datastore", "/sample", "local", input="YES, DELETE\n")
    assert proc.returncode == 0, proc.stderr
    for kind in ("EventEntity", "Student", "StudentAnswersEntity", "FileMetadataEntity", "FileDataEntity"):
        assert kind in proc.stdout
    assert "ns_sample" in proc.stdout and "An Introduction to Data Privacy" in proc.stdout
    assert "YES, DELETE" in proc.stdout
    total = sum(len(rows) for (ns, _), rows in before.items() if ns == "ns_sample")
    assert f"deleted {total:,} entities from namespace 'ns_sample'" in proc.stdout
    after = _state(two_courses)
    assert not [slot for slot, rows in after.items() if slot[0] == "ns_sample" and rows]
    assert _others(after, "ns_sample") == _others(before, "ns_sample")  # /other and the site untouched
    with SqliteBackend(db_path(two_courses), create=False) as store:
        assert store.kinds("ns_sample") == []
        assert [c.slug for c in Site(store).courses()] == ["/sample", "/other"]  # the course stays


@pytest.mark.parametrize("answer", ["", "\n", "no\n", "yes\n", "YES\n", "yes, delete\n", "YES,DELETE\n",
                                    "YES, DELETE!\n", "Y\n", " YES, DELETE\n", "YES, DELETE \n"])
def test_anything_else_aborts_and_deletes_nothing(two_courses: Path, answer: str) -> None:
    before = snapshot_store(db_path(two_courses))
    with pytest.raises(EtlError, match="Delete not confirmed"):
        etl("delete", "datastore", "/sample", "local", stdin=answer)
    assert snapshot_store(db_path(two_courses)) == before


def test_cli_wrong_confirmation(two_courses: Path) -> None:
    before = snapshot_store(db_path(two_courses))
    proc = cli_at(two_courses, "delete", "datastore", "/sample", "local", input="yes\n")
    line = assert_error_line(proc)
    assert "Delete not confirmed" in line and "Aborting" in line and "nothing was deleted" in line
    assert "Type 'YES, DELETE' to confirm" in proc.stdout
    assert snapshot_store(db_path(two_courses)) == before


def test_cli_no_stdin_aborts(two_courses: Path) -> None:
    before = snapshot_store(db_path(two_courses))
    proc = cli_at(two_courses, "delete", "course", "/sample", "local")  # stdin at EOF
    assert "Delete not confirmed" in assert_error_line(proc)
    assert snapshot_store(db_path(two_courses)) == before


def test_delete_datastore_twice(two_courses: Path) -> None:
    first = etl("delete", "datastore", "/other", "local", "--batch_size", "1", stdin="YES, DELETE\n")
    assert first.rows["EventEntity"] == 179 and not first.course_removed
    second = etl("delete", "datastore", "/other", "local", stdin="YES, DELETE\n")
    assert second.rows == {}
    with SqliteBackend(db_path(two_courses), create=False) as store:
        assert store.kinds("ns_other") == []
        assert store.count("Student", "ns_sample") == 20


def test_delete_course_removes_the_course(two_courses: Path, tmp_path: Path) -> None:
    listed = cli_at(two_courses, "courses", "list")
    assert "/other\tcourse:/other::ns_other" in listed.stdout
    before = _state(two_courses)
    proc = cli_at(two_courses, "delete", "course", "/other", "local", input="YES, DELETE\n")
    assert proc.returncode == 0, proc.stderr
    assert "and removed course /other" in proc.stdout
    listed = cli_at(two_courses, "courses", "list")
    assert listed.returncode == 0
    assert "/other" not in listed.stdout and "/sample" in listed.stdout
    after = _state(two_courses)
    assert not [slot for slot, rows in after.items() if slot[0] == "ns_other" and rows]
    assert {s: r for s, r in after.items() if s[0] == "ns_sample"} == \
        {s: r for s, r in before.items() if s[0] == "ns_sample"}
    # the prefix is free again, and gone for etl
    with pytest.raises(Exception, match="no course found with course_url_prefix '/other'"):
        etl("download", "datastore", "/other", "local", "--archive_path", tmp_path / "x.zip")
    with SqliteBackend(db_path(two_courses), create=False) as store:
        course = Site(store).add_course("/other")
        assert course.fs.list() == ["/course.yaml"]


def test_delete_unknown_course(two_courses: Path) -> None:
    before = snapshot_store(db_path(two_courses))
    proc = cli_at(two_courses, "delete", "course", "/nope", "local", input="YES, DELETE\n")
    assert "'/nope'" in assert_error_line(proc)
    assert snapshot_store(db_path(two_courses)) == before


def test_deleting_a_default_namespace_course_keeps_the_site_settings(sample_home: Path) -> None:
    """The course list lives in the default namespace too; deleting such a course keeps it."""
    from courseport.courses.rules import parse_rule

    with SqliteBackend(db_path(sample_home), create=False) as store:
        site = Site(store)
        site.save_rules(site.rules() + [parse_rule("course:/::")])
        root = site.course("/")
        root.fs.put("/course.yaml", b"course:\n  title: Root\n")
    etl("delete", "datastore", "/", "local", stdin="YES, DELETE\n")
    with SqliteBackend(db_path(sample_home), create=False) as store:
        assert store.kinds("") == ["ConfigPropertyEntity"]
        assert [c.slug for c in Site(store).courses()] == ["/sample", "/"]
