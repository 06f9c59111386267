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
    assert first.rows["EventEntity"] == 185 and not first.course_removed
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


# --- --datastore_types and --exclude_types (Course Builder ignored them; issue 6, defect 4) ------

import os
import shutil
import subprocess
import sys
import tempfile

from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import cli_env

#: the kinds of /sample in ``sample_template`` (checked by the test that uses them)
SAMPLE_KINDS = ["EventEntity", "FileDataEntity", "FileMetadataEntity", "QuestionEntity", "Student",
                "StudentAnswersEntity", "StudentEnrollmentEventEntity", "StudentPreferencesEntity",
                "StudentPropertyEntity", "Submission"]


def _listed(stdout: str) -> list[str]:
    """The kinds the confirmation names (its indented ``Kind  count`` lines)."""
    return [line.split()[0] for line in stdout.splitlines() if line.startswith("  ") and line.split()[-1][0].isdigit()]


@settings(max_examples=12, deadline=None)
@given(types=st.lists(st.sampled_from(SAMPLE_KINDS), unique=True, max_size=4),
       exclude=st.lists(st.sampled_from(SAMPLE_KINDS + ["NotHere"]), unique=True, max_size=3))
@example(types=[], exclude=[])  # no flags: every kind
@example(types=["Student"], exclude=["Student", "NotHere"])  # nothing left: refused
def test_delete_datastore_deletes_exactly_the_chosen_kinds(sample_template: Path, types: list[str],
                                                            exclude: list[str]) -> None:
    chosen = sorted(set(types or SAMPLE_KINDS) - set(exclude))
    argv = ["delete", "datastore", "/sample", "local"]
    if types:
        argv += ["--datastore_types", ",".join(types)]
    if exclude:
        argv += ["--exclude_types", ",".join(exclude)]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        shutil.copyfile(db_path(sample_template), db_path(home))
        before = snapshot_store(db_path(home))
        assert sorted({row[1] for row in before["entities"] if row[0] == "ns_sample"}) == SAMPLE_KINDS
        proc = cli_at(home, *argv, input="YES, DELETE\n")
        after = snapshot_store(db_path(home))
    if not chosen:  # everything asked for was excluded (after a warning, as a download, for NotHere)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.splitlines()[-1].startswith("courseport: error: no kinds left to delete. ")
        assert "YES, DELETE" not in proc.stdout  # refused before asking
        assert after == before
        return
    assert proc.returncode == 0, proc.stderr
    assert _listed(proc.stdout) == chosen  # the confirmation names exactly what goes
    if types or set(exclude) & set(SAMPLE_KINDS):
        assert f"{len(chosen)} of the {len(SAMPLE_KINDS)} kinds of course /sample" in proc.stdout
    gone = [row for row in before["entities"] if row[0] == "ns_sample" and row[1] in chosen]
    assert f"deleted {len(gone):,} entities from namespace 'ns_sample'" in proc.stdout
    # every other kind's rows (and every other table) stay, byte for byte
    assert after["entities"] == [row for row in before["entities"] if row not in gone]
    assert _rest(after) == _rest(before)


def _rest(snapshot: dict) -> dict:
    """A store's tables but its entities, less the change counters a delete bumps."""
    return {table: [row for row in rows if not (table == "meta" and str(row[0]).startswith("changes"))]
            for table, rows in snapshot.items() if table != "entities"}


def test_delete_unknown_kind_is_refused_before_asking(two_courses: Path) -> None:
    before = snapshot_store(db_path(two_courses))
    proc = cli_at(two_courses, "delete", "datastore", "/sample", "local",
                  "--datastore_types", "Student,Nope,Zilch", input="YES, DELETE\n")
    line = assert_error_line(proc)
    assert "Requested types not found: Nope, Zilch. Available types are: EventEntity, FileDataEntity" in line
    assert "YES, DELETE" not in proc.stdout  # nothing was asked
    assert snapshot_store(db_path(two_courses)) == before


def test_delete_the_same_refusal_as_download(two_courses: Path, tmp_path: Path) -> None:
    """One rule for both: the same words for the same unknown kind."""
    with pytest.raises(EtlError) as download_refusal:
        etl("download", "datastore", "/sample", "local", "--archive_path", tmp_path / "x.zip",
            "--datastore_types", "Nope")
    with pytest.raises(EtlError) as delete_refusal:
        etl("delete", "datastore", "/sample", "local", "--datastore_types", "Nope", stdin="YES, DELETE\n")
    assert str(delete_refusal.value) == str(download_refusal.value)


def test_delete_exclude_keeps_the_kind_and_says_so(two_courses: Path) -> None:
    before = _state(two_courses)
    proc = cli_at(two_courses, "delete", "datastore", "/sample", "local", "--exclude-types", "Student",
                  input="YES, DELETE\n")
    assert proc.returncode == 0, proc.stderr
    assert "Kept: Student" in proc.stdout and "Student " not in proc.stdout.split("Kept:")[0]
    after = _state(two_courses)
    assert after[("ns_sample", "Student")] == before[("ns_sample", "Student")]
    assert [kind for (ns, kind), rows in after.items() if ns == "ns_sample" and rows] == ["Student"]


# --- a stdin that gives no answer (issue 6, defect 13) ---------------------------------------------


def _delete_with(home: Path, stdin, shell_redirect: str = "") -> subprocess.CompletedProcess:
    """``courseport delete datastore /sample local``, stdin as given (or as the shell redirects it)."""
    argv = [sys.executable, "-m", "courseport", "delete", "datastore", "/sample", "local"]
    if shell_redirect:
        argv = ["sh", "-c", f'exec "$@" {shell_redirect}', "sh", *argv]
    return subprocess.run(argv, env=cli_env(home), cwd=home.parent, stdin=stdin,
                          capture_output=True, timeout=120)


def _text(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


@pytest.mark.parametrize("case", ["closed", "at its end", "write-only"])
def test_delete_without_an_answer_says_how_to_confirm(two_courses: Path, tmp_path: Path, case: str) -> None:
    before = snapshot_store(db_path(two_courses))
    if case == "closed":  # `courseport delete ... <&-`: Python's sys.stdin is None
        proc = _delete_with(two_courses, subprocess.DEVNULL, "<&-")
    elif case == "at its end":
        proc = _delete_with(two_courses, subprocess.DEVNULL)
    else:
        with open(tmp_path / "out", "w") as not_readable:
            proc = _delete_with(two_courses, not_readable)
    line = assert_error_line(_text(proc))
    assert line.startswith("courseport: error: Delete not confirmed: standard input "), line
    assert "Type 'YES, DELETE' at the prompt, or pipe it: echo 'YES, DELETE' | courseport delete" in line
    assert line.endswith("nothing was deleted")
    assert "Traceback" not in proc.stderr.decode()
    assert snapshot_store(db_path(two_courses)) == before


@pytest.mark.parametrize("answer", [b"\xff\xfe YES\n", b"\0" * 100_000])
def test_delete_answer_that_is_not_text_or_never_ends(two_courses: Path, answer: bytes) -> None:
    before = snapshot_store(db_path(two_courses))
    proc = subprocess.run([sys.executable, "-m", "courseport", "delete", "datastore", "/sample", "local"],
                          env=cli_env(two_courses), cwd=two_courses.parent, input=answer,
                          capture_output=True, timeout=120)
    assert "Delete not confirmed" in assert_error_line(_text(proc))
    assert snapshot_store(db_path(two_courses)) == before


def test_delete_stdin_a_directory_deletes_nothing(two_courses: Path, tmp_path: Path) -> None:
    """Python itself refuses to start with a directory on stdin (before courseport runs):
    not courseport's one line, but a non-zero exit with nothing deleted."""
    before = snapshot_store(db_path(two_courses))
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        proc = _delete_with(two_courses, fd)
    finally:
        os.close(fd)
    assert proc.returncode != 0
    assert snapshot_store(db_path(two_courses)) == before
