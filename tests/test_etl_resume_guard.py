"""A resumed download continues the same download, or is refused.

Killed with SIGKILL between kinds (the kill helper of test_etl_resume), a
download is resumed: with ``--privacy`` and no secret it pseudonymises with
the secret it drew at first, so every kind still joins; a different secret,
a different privacy choice, other arguments, or a course whose data changed
since the download began are refused in one line, writing nothing.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from conftest import archive_members, assert_one_line_error, cli_at, db_path, kind_rows, make_store_template
from courseport.datastore import Entity, Key, SqliteBackend
from courseport.etl import verify
from test_etl_resume import _kill_midway

PRIVATE = "Student,StudentAnswersEntity,EventEntity,StudentPropertyEntity"


@pytest.fixture(scope="module")
def learners(tmp_path_factory) -> Path:
    return make_store_template(tmp_path_factory.mktemp("guard") / "home", students=300, seed=5)


@pytest.fixture
def home(home: Path, learners: Path) -> Path:
    """conftest's empty home, holding a copy of the module's store."""
    shutil.copyfile(db_path(learners), db_path(home))
    return home


def _privacy_argv(archive: Path, *extra: str) -> list:
    return ["download", "datastore", "/sample", "local", "--archive_path", archive, "--batch_size", "1",
            "--datastore_types", PRIVATE, "--privacy", *extra]


def _killed_in_student(home: Path, argv: list) -> Path:
    """EventEntity is finished, Student is not: SIGKILL between the two."""
    _kill_midway(home, "Student", 1, argv)
    partial = Path(f"{argv[5]}.partial")
    assert partial.exists()
    return partial


def _pseudonyms_join(archive: Path) -> None:
    rows = kind_rows(archive_members(archive))
    students = {row["key.name"] for row in rows["Student"]}
    assert len(students) == 300
    assert {row["user_id"] for row in rows["EventEntity"]} <= students
    assert {row["key.name"] for row in rows["StudentAnswersEntity"]} <= students
    assert {row["key.name"][:64] for row in rows["StudentPropertyEntity"]} <= students


def test_a_random_secret_is_kept_for_the_resume(home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "private.zip"
    argv = _privacy_argv(archive)
    _killed_in_student(home, argv)
    record = Path(f"{archive}.partial.manifest")
    assert stat.S_IMODE(record.stat().st_mode) == 0o600  # it holds the secret
    proc = cli_at(home, *argv, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert "models/EventEntity.json: already in the partial archive" in proc.stderr
    _pseudonyms_join(archive)
    assert verify(archive).ok
    assert not record.exists()  # the secret goes with the finished download


def test_a_resume_with_another_secret_is_refused(home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "private.zip"
    argv = _privacy_argv(archive, "--privacy_secret", "first")
    partial = _killed_in_student(home, argv)
    before = partial.read_bytes()
    for other in (["--privacy_secret", "second"], []):
        line = assert_one_line_error(cli_at(home, *argv[:-2], *other, "--resume"))
        assert "--privacy_secret" in line and "same" in line
        assert partial.read_bytes() == before and not archive.exists()
    secret_file = Path(f"{archive}.partial.manifest").read_text()
    assert "first" not in secret_file  # a secret the user gave is never written down
    proc = cli_at(home, *argv, "--resume")
    assert proc.returncode == 0, proc.stderr
    _pseudonyms_join(archive)


@pytest.mark.parametrize("change", [
    pytest.param(["--privacy"], id="privacy dropped"),
    pytest.param(["--datastore_types", "Student"], id="other kinds"),
])
def test_a_resume_with_other_arguments_is_refused(home: Path, tmp_path: Path, change: list) -> None:
    archive = tmp_path / "private.zip"
    argv = _privacy_argv(archive, "--privacy_secret", "s")
    partial = _killed_in_student(home, argv)
    before = partial.read_bytes()
    if change == ["--privacy"]:
        other = [a for a in argv if a not in ("--privacy", "--privacy_secret", "s")]
    else:
        other = [a for a in argv if a != PRIVATE and a != "--datastore_types"]
        other += ["--datastore_types", "Student"]  # EventEntity, already written, is not asked for
    line = assert_one_line_error(cli_at(home, *other, "--resume"))
    assert "resume" in line
    assert partial.read_bytes() == before


def test_a_resume_after_the_course_changed_is_refused(home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "plain.zip"
    argv = ["download", "datastore", "/sample", "local", "--archive_path", archive, "--batch_size", "1",
            "--datastore_types", "EventEntity,Student"]
    partial = _killed_in_student(home, argv)
    before = partial.read_bytes()
    with SqliteBackend(db_path(home), create=False) as store:  # another course: not a change of this one
        store.put_multi([Entity(Key("Student", "elsewhere", namespace="ns_other"), {"name": "x"})])
    with SqliteBackend(db_path(home), create=False) as store:
        store.put_multi([Entity(Key("Student", "late-comer", namespace="ns_sample"), {"name": "late"})])
    line = assert_one_line_error(cli_at(home, *argv, "--resume"))
    assert "changed since this download started" in line and "--force_overwrite" in line
    assert partial.read_bytes() == before and not archive.exists()
    proc = cli_at(home, *argv, "--force_overwrite")
    assert proc.returncode == 0, proc.stderr
    names = [row["key.name"] for row in kind_rows(archive_members(archive))["Student"]]
    assert "late-comer" in names


def test_writes_elsewhere_do_not_stop_a_resume(home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "plain.zip"
    argv = ["download", "datastore", "/sample", "local", "--archive_path", archive, "--batch_size", "1",
            "--datastore_types", "EventEntity,Student"]
    _killed_in_student(home, argv)
    with SqliteBackend(db_path(home), create=False) as store:
        store.put_multi([Entity(Key("Student", "elsewhere", namespace="ns_other"), {"name": "x"})])
    proc = cli_at(home, *argv, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert verify(archive).ok
