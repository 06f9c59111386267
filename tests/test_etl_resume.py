"""``--resume`` after an interrupted ``download`` or ``upload`` (spec §6.3, §6.6).

A real ``courseport`` process is SIGKILLed in the middle of a kind. To stop
it at a known place without any hook in courseport itself, the child runs
``courseport.cli.main`` behind a small wrapper that pauses (and says so in a
marker file) when a chosen kind asks for a chosen page or batch; the test
waits for the marker, then kills. The same command with ``--resume`` must
then finish with exactly what a clean run gives. Interruptions by an
exception (in this process) cover more variants cheaply.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import (
    archive_members,
    assert_one_line_error,
    cli_at,
    cli_env,
    db_path,
    etl,
    kind_rows,
    make_store_template,
    snapshot_store,
    without,
)
from courseport.courses.site import Site
from courseport.datastore import Entity, Key, SqliteBackend
from courseport.etl.progress import Progress
from courseport.etl.errors import EtlError
from courseport.etl import verify

STUDENTS = 800  # about 7,500 EventEntity rows: several pages and batches however large they get
FIRST_KIND = "AnnouncementEntity"  # a small kind sorted before EventEntity: the kill comes after it
KILL_TIMEOUT = 20.0

WRAPPER = r'''
import pathlib, sys, time
marker, kind, after = sys.argv[1], sys.argv[2], int(sys.argv[3])
argv = sys.argv[4:]
# etl reports each kind's progress after every page (download) or batch (upload)
# it has written: pause there once the kind has done `after` of them
from courseport.etl.progress import Progress
calls = {"n": 0}
original = Progress.advance
def advance(self, count):
    original(self, count)
    if self.label == kind:
        calls["n"] += 1
        if calls["n"] >= after:
            pathlib.Path(marker).write_text("paused")
            time.sleep(300)
Progress.advance = advance
import os
if os.environ.get("COURSEPORT_TEST_STAGED"):  # the path of sites that cannot write atomically
    from courseport.sites import LocalSite
    LocalSite.atomic_writes = False
from courseport.cli import main
sys.exit(main(argv))
'''


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """A home whose /sample has 800 learners (about 10,000 rows); do not modify."""
    home = make_store_template(tmp_path_factory.mktemp("resume") / "home", students=STUDENTS, seed=3)
    with SqliteBackend(db_path(home), create=False) as store:
        store.put_multi([Entity(Key(FIRST_KIND, i, namespace="ns_sample"), {"text": f"news {i}"})
                         for i in (1, 2, 3)])
    return home


@pytest.fixture
def big_home(home: Path, cohort: Path) -> Path:
    shutil.copyfile(db_path(cohort), db_path(home))
    return home


@pytest.fixture(scope="module")
def clean(cohort: Path, tmp_path_factory) -> dict[str, Path]:
    """Clean downloads of the cohort, zip and directory."""
    root = tmp_path_factory.mktemp("clean")
    server = f"sqlite:///{db_path(cohort)}"
    out = {"zip": root / "clean.zip", "directory": root / "clean_dir"}
    etl("download", "datastore", "/sample", server, "--archive_path", out["zip"])
    etl("download", "datastore", "/sample", server, "--archive_path", out["directory"], "--archive_type", "directory")
    return out


def _kill_midway(home: Path, kind: str, after: int, argv: list, staged: bool = False) -> None:
    """Run ``courseport ARGV`` in a child; SIGKILL it once ``kind`` has written ``after`` pages/batches."""
    wrapper = home.parent / "wrapper.py"
    wrapper.write_text(WRAPPER)
    marker = home.parent / "paused.marker"
    marker.unlink(missing_ok=True)
    env = dict(cli_env(home), **({"COURSEPORT_TEST_STAGED": "1"} if staged else {}))
    proc = subprocess.Popen([sys.executable, str(wrapper), str(marker), kind, str(after), *map(str, argv)],
                            env=env, cwd=home.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + KILL_TIMEOUT
    try:
        while not marker.exists():
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"the child ended (status {proc.returncode}) before reaching {kind}: {err.decode()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the child did not get through {after} pages of {kind} in {KILL_TIMEOUT}s")
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=KILL_TIMEOUT)
    assert proc.returncode == -signal.SIGKILL


def _partial_members(partial: Path) -> list[str]:
    with zipfile.ZipFile(partial) as zf:
        return zf.namelist()


# --- download -------------------------------------------------------------------------------------


@pytest.mark.parametrize("archive_type", ["zip", "directory"])
def test_download_killed_mid_kind_resumes(big_home: Path, clean: dict, archive_type: str) -> None:
    archive = big_home.parent / ("out.zip" if archive_type == "zip" else "out_dir")
    argv = ["download", "datastore", "/sample", "local", "--archive_path", archive, "--batch_size", "2",
            "--archive_type", archive_type]
    _kill_midway(big_home, "EventEntity", 1, argv)  # the first page of events is out, the rest is not
    partial = Path(f"{archive}.partial")
    assert not archive.exists() and partial.exists()
    if archive_type == "directory":
        done = sorted(p.name for p in (partial / "models").iterdir())
        assert f"{FIRST_KIND}.json" in done and "EventEntity.json" not in done
    before = snapshot_store(db_path(big_home))
    proc = cli_at(big_home, *argv, "--resume")
    assert proc.returncode == 0, proc.stderr
    # finished kinds were kept, not redone; the one killed midway was written again
    assert f"models/{FIRST_KIND}.json: already in the partial archive, skipped" in proc.stderr
    assert "models/EventEntity.json: already in the partial archive" not in proc.stderr
    assert snapshot_store(db_path(big_home)) == before
    assert verify(archive).ok, verify(archive).lines()
    ours, reference = archive_members(archive), archive_members(clean[archive_type])  # no duplicate members
    assert sorted(ours) == sorted(reference)
    for name in reference:
        assert ours[name] == reference[name], name
    assert sorted(p.name for p in big_home.parent.iterdir() if p.name.startswith("out")) == [archive.name]


def test_download_killed_in_the_first_kind_resumes(big_home: Path, clean: dict) -> None:
    archive = big_home.parent / "out.zip"
    argv = ["download", "datastore", "/sample", "local", "--archive_path", archive, "--exclude_types", FIRST_KIND]
    _kill_midway(big_home, "EventEntity", 2, argv)
    assert Path(f"{archive}.partial").exists()
    proc = cli_at(big_home, *argv, "--resume")
    assert proc.returncode == 0, proc.stderr
    ours, reference = archive_members(archive), archive_members(clean["zip"])
    assert sorted(ours) == sorted(set(reference) - {f"models/{FIRST_KIND}.json"})
    for name in ours:
        if name != "manifest.json":
            assert ours[name] == reference[name], name


def test_rerun_without_resume_is_refused_then_force_starts_again(big_home: Path, clean: dict) -> None:
    archive = big_home.parent / "out.zip"
    etl("download", "datastore", "/sample", "local", "--archive_path", archive, "--datastore_types", "Student")
    line = assert_one_line_error(cli_at(big_home, "download", "datastore", "/sample", "local",
                                        "--archive_path", archive))
    assert "already exists" in line
    etl("download", "datastore", "/sample", "local", "--archive_path", archive, "--force_overwrite")
    assert archive_members(archive) == archive_members(clean["zip"])


class _Interrupt(Exception):
    pass


def _interrupt_at(monkeypatch: pytest.MonkeyPatch, kind: str, after: int) -> None:
    """Raise once ``kind`` has written ``after`` pages (download) or batches (upload)."""
    original = Progress.advance
    calls = {"n": 0}

    def advance(self, count):
        original(self, count)
        if self.label == kind:
            calls["n"] += 1
            if calls["n"] >= after:
                raise _Interrupt(f"interrupted in {kind}")

    monkeypatch.setattr(Progress, "advance", advance)


@pytest.mark.parametrize("archive_type", ["zip", "directory"])
def test_course_download_resume_has_no_duplicate_files(sample_home: Path, monkeypatch, archive_type: str) -> None:
    archive = sample_home.parent / ("c.zip" if archive_type == "zip" else "c_dir")
    reference = sample_home.parent / ("ref.zip" if archive_type == "zip" else "ref_dir")
    argv = ["download", "course", "/sample", "local", "--archive_type", archive_type]
    etl(*argv, "--archive_path", reference)
    with monkeypatch.context() as patch:
        _interrupt_at(patch, "QuestionEntity", 1)  # the files and three kinds are done
        with pytest.raises(_Interrupt):
            etl(*argv, "--archive_path", archive)
    assert not archive.exists() and Path(f"{archive}.partial").exists()
    etl(*argv, "--archive_path", archive, "--resume")
    assert archive_members(archive) == archive_members(reference)  # archive_members refuses duplicates
    # and the resumed archive uploads into a new course
    _add(sample_home, "/copy")
    result = etl("upload", "course", "/copy", "local", "--archive_path", archive)
    assert result.rows["QuestionEntity"] == 5


def test_resume_with_other_types_is_refused(sample_home: Path, monkeypatch) -> None:
    archive = sample_home.parent / "d.zip"
    with monkeypatch.context() as patch:
        _interrupt_at(patch, "Student", 1)
        with pytest.raises(_Interrupt):
            etl("download", "datastore", "/sample", "local", "--archive_path", archive)
    partial = Path(f"{archive}.partial")
    state = partial.read_bytes()
    with pytest.raises(EtlError, match="does not ask for"):
        etl("download", "datastore", "/sample", "local", "--archive_path", archive, "--resume",
            "--datastore_types", "Student")
    assert not archive.exists()
    etl("download", "datastore", "/sample", "local", "--archive_path", archive, "--resume")
    assert verify(archive).ok
    assert len(state) > 0


def test_resume_without_a_partial_starts_fresh(sample_home: Path) -> None:
    archive = sample_home.parent / "d.zip"
    reference = sample_home.parent / "ref.zip"
    etl("download", "datastore", "/sample", "local", "--archive_path", reference)
    result = etl("download", "datastore", "/sample", "local", "--archive_path", archive, "--resume")
    assert result.resumed == []
    assert archive_members(archive) == archive_members(reference)


def test_resume_of_a_finished_archive_keeps_its_members(sample_home: Path) -> None:
    archive = sample_home.parent / "d.zip"
    etl("download", "datastore", "/sample", "local", "--archive_path", archive)
    first = archive_members(archive)
    result = etl("download", "datastore", "/sample", "local", "--archive_path", archive, "--resume")
    assert sorted(result.resumed) == sorted(n for n in first if n.startswith("models/"))
    again = archive_members(archive)
    assert sorted(again) == sorted(first)
    assert {n: d for n, d in again.items() if n != "manifest.json"} == {n: d for n, d in first.items() if n != "manifest.json"}
    assert verify(archive).ok


def test_resume_of_a_finished_archive_keeps_its_manifest(sample_home: Path) -> None:
    archive = sample_home.parent / "d.zip"
    etl("download", "datastore", "/sample", "local", "--archive_path", archive)
    first = archive_members(archive)["manifest.json"]
    etl("download", "datastore", "/sample", "local", "--archive_path", archive, "--resume")
    assert archive_members(archive)["manifest.json"] == first


# --- upload -----------------------------------------------------------------------------------------


def _add(home: Path, prefix: str) -> None:
    with SqliteBackend(db_path(home), create=False) as store:
        Site(store).add_course(prefix)


def _rows(home: Path, prefix: str, tmp: Path) -> dict[str, list[dict]]:
    target = tmp / f"check{prefix.strip('/')}.zip"
    etl("download", "datastore", prefix, "local", "--archive_path", target)
    return {k: [without(r, "key") for r in rows] for k, rows in kind_rows(archive_members(target)).items()}


def test_upload_killed_mid_kind_leaves_nothing_then_loads(big_home: Path, clean: dict, tmp_path: Path) -> None:
    """The embedded store takes an upload in one transaction: a kill leaves nothing behind."""
    _add(big_home, "/target")
    argv = ["upload", "datastore", "/target", "local", "--archive_path", clean["zip"], "--batch_size", "3"]
    before = snapshot_store(db_path(big_home))
    _kill_midway(big_home, "EventEntity", 1, argv)  # one batch of events was written, not committed
    assert snapshot_store(db_path(big_home)) == before
    for extra in ((), ("--resume",)):  # a plain rerun loads everything; so does a resume after it
        proc = cli_at(big_home, *argv, *extra)
        assert proc.returncode == 0, proc.stderr
    expected = kind_rows(archive_members(clean["zip"]))
    with SqliteBackend(db_path(big_home), create=False) as store:
        for kind, rows in expected.items():
            assert store.count(kind, "ns_target") == len(rows), kind
    got = _rows(big_home, "/target", tmp_path)
    for kind, rows in expected.items():
        assert got[kind] == [without(r, "key") for r in rows], kind


def test_upload_killed_mid_kind_resumes(big_home: Path, clean: dict, tmp_path: Path) -> None:
    """Where uploads are written as they go (sites that cannot write atomically)."""
    _add(big_home, "/target")
    argv = ["upload", "datastore", "/target", "local", "--archive_path", clean["zip"], "--batch_size", "3"]
    _kill_midway(big_home, "EventEntity", 1, argv, staged=True)  # one batch of events is in
    total = len(kind_rows(archive_members(clean["zip"]))["EventEntity"])
    with SqliteBackend(db_path(big_home), create=False) as store:
        assert store.count(FIRST_KIND, "ns_target") == 3
        assert 0 < store.count("EventEntity", "ns_target") < total, "not killed in the middle of EventEntity"
        assert store.count("Student", "ns_target") == 0
    # without --resume the rows already there are a conflict, and nothing more is written
    before = snapshot_store(db_path(big_home))
    line = assert_one_line_error(cli_at(big_home, *argv))
    assert "already exists" in line
    assert snapshot_store(db_path(big_home)) == before
    proc = cli_at(big_home, *argv, "--resume")
    assert proc.returncode == 0, proc.stderr
    expected = kind_rows(archive_members(clean["zip"]))
    with SqliteBackend(db_path(big_home), create=False) as store:
        for kind, rows in expected.items():
            assert store.count(kind, "ns_target") == len(rows), kind  # each row exactly once
    got = _rows(big_home, "/target", tmp_path)
    for kind, rows in expected.items():
        assert got[kind] == [without(r, "key") for r in rows], kind


def test_upload_resume_when_everything_is_there(sample_home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "d.zip"
    etl("download", "datastore", "/sample", "local", "--archive_path", archive, "--datastore_types", "Student")
    _add(sample_home, "/target")
    etl("upload", "datastore", "/target", "local", "--archive_path", archive)
    before = snapshot_store(db_path(sample_home))
    proc = cli_at(sample_home, "upload", "datastore", "/target", "local", "--archive_path", archive, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert "All 20 entities of Student already uploaded; skipping." in proc.stderr
    assert "20 already uploaded" in proc.stdout
    assert snapshot_store(db_path(sample_home)) == before


def test_upload_interrupted_on_the_embedded_store_leaves_nothing(sample_home: Path, tmp_path: Path,
                                                                 monkeypatch) -> None:
    archive = tmp_path / "d.zip"
    etl("download", "datastore", "/sample", "local", "--archive_path", archive)
    _add(sample_home, "/target")
    before = snapshot_store(db_path(sample_home))
    with monkeypatch.context() as patch:
        _interrupt_at(patch, "Student", 1)
        with pytest.raises(_Interrupt):
            etl("upload", "datastore", "/target", "local", "--archive_path", archive)
    assert snapshot_store(db_path(sample_home)) == before
    result = etl("upload", "datastore", "/target", "local", "--archive_path", archive, "--resume")
    assert not result.skipped and result.rows["Student"] == 20
    assert _rows(sample_home, "/target", tmp_path) == _rows(sample_home, "/sample", tmp_path)


def test_upload_resume_after_an_interrupted_batch(sample_home: Path, tmp_path: Path, monkeypatch) -> None:
    """Where uploads are written as they go (sites that cannot write atomically)."""
    from courseport.sites import LocalSite

    archive = tmp_path / "d.zip"
    etl("download", "datastore", "/sample", "local", "--archive_path", archive)
    _add(sample_home, "/target")
    with monkeypatch.context() as patch:
        patch.setattr(LocalSite, "atomic_writes", False)
        _interrupt_at(patch, "Student", 1)  # Student's one batch is in, the kinds after it are not
        with pytest.raises(_Interrupt):
            etl("upload", "datastore", "/target", "local", "--archive_path", archive)
    with SqliteBackend(db_path(sample_home), create=False) as store:
        assert store.count("EventEntity", "ns_target") == 185 and store.count("Student", "ns_target") == 20
        assert store.count("StudentPropertyEntity", "ns_target") == 0
    result = etl("upload", "datastore", "/target", "local", "--archive_path", archive, "--resume")
    assert result.rows["StudentPropertyEntity"] == 20 and result.rows["Student"] == 0
    assert result.skipped.get("EventEntity") == 185 and result.skipped.get("Student") == 20
    assert _rows(sample_home, "/target", tmp_path) == _rows(sample_home, "/sample", tmp_path)


# --- the same, found by polling (no wrapper) ------------------------------------------------------


@pytest.mark.slow
def test_download_killed_by_polling_the_partial(home: Path, tmp_path_factory) -> None:
    """Kill a plain ``courseport download`` once its first kind is finished, found by polling."""
    template = make_store_template(tmp_path_factory.mktemp("poll") / "home", students=3000, seed=4)
    shutil.copyfile(db_path(template), db_path(home))
    archive = home.parent / "out.zip"
    reference = home.parent / "ref.zip"
    etl("download", "datastore", "/sample", "local", "--archive_path", reference)
    sidecar = Path(f"{archive}.partial.manifest")
    argv = [sys.executable, "-m", "courseport", "download", "datastore", "/sample", "local",
            "--archive_path", str(archive), "--batch_size", "1"]
    proc = subprocess.Popen(argv, env=cli_env(home), cwd=home.parent, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + KILL_TIMEOUT
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if "models/EventEntity.json" in json.loads(sidecar.read_text()):
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.001)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=KILL_TIMEOUT)
    if proc.returncode != -signal.SIGKILL:
        pytest.fail("the download finished before it could be killed: the poll was too slow")
    assert not archive.exists()
    done = cli_at(home, *argv[3:], "--resume")
    assert done.returncode == 0, done.stderr
    assert archive_members(archive) == archive_members(reference)


def test_upload_resume_replaces_the_new_courses_blank_course_yaml(sample_home: Path, tmp_path: Path,
                                                                  monkeypatch) -> None:
    """A clean upload of a datastore archive replaces the new course's blank course.yaml; so must a resumed one."""
    archive = tmp_path / "d.zip"
    etl("download", "datastore", "/sample", "local", "--archive_path", archive)
    _add(sample_home, "/target")
    with monkeypatch.context() as patch:
        _interrupt_at(patch, "EventEntity", 1)  # before FileDataEntity and FileMetadataEntity
        with pytest.raises(_Interrupt):
            etl("upload", "datastore", "/target", "local", "--archive_path", archive)
    etl("upload", "datastore", "/target", "local", "--archive_path", archive, "--resume")
    with SqliteBackend(db_path(sample_home), create=False) as store:
        site = Site(store)
        assert site.course("/target").title == site.course("/sample").title
        fs_target, fs_sample = site.course("/target").fs, site.course("/sample").fs
        assert fs_target.get("/course.yaml") == fs_sample.get("/course.yaml")
    assert _rows(sample_home, "/target", tmp_path) == _rows(sample_home, "/sample", tmp_path)
