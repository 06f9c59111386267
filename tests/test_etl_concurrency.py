"""Two commands at once on the same store or the same archive.

Every pair of ``download``, ``upload``, ``delete``, ``populate`` and ``run``
is started at the same moment on one store (downloads also to one archive
path). Either both end right, or one refuses in one line naming the other;
never a traceback, never a corrupt archive, never a broken store.

Commands that change a store hold its writer lock (``<store>.lock``) and a
download holds its archive's (``<archive>.lock``); a second one waits up to
``COURSEPORT_LOCK_WAIT`` seconds, then is refused. The pairs run with no
wait, so that overlapping runs are refused rather than queued, and once
with the default wait, where they queue and both succeed.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import assert_one_line_error, cli_at, cli_env, db_path, make_store_template
from courseport.datastore import SqliteBackend
from courseport.etl import verify

MODES = ("download", "upload", "delete", "populate", "run")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    home = make_store_template(tmp_path_factory.mktemp("pairs") / "home", students=150, seed=4)
    source = home.parent / "source.zip"
    proc = cli_at(home, "download", "datastore", "/sample", "local", "--archive_path", source)
    assert proc.returncode == 0, proc.stderr
    for course in ("/copy", "/empty"):
        assert cli_at(home, "courses", "add", course).returncode == 0
    (home.parent / "handout.txt").write_text("a handout")
    return home


@pytest.fixture
def home(tmp_path: Path, template: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(db_path(template), db_path(home))
    for name in ("source.zip", "handout.txt"):
        shutil.copyfile(template.parent / name, tmp_path / name)
    return home


def _argv(mode: str, home: Path, slot: int) -> tuple[list[str], str | None]:
    """The command line of ``mode`` (and what it reads on stdin); both of a pair share the store."""
    root = home.parent
    if mode == "download":
        return ["download", "datastore", "/sample", "local", "--archive_path", str(root / "out.zip")], None
    if mode == "upload":
        return ["upload", "datastore", "/copy", "local", "--archive_path", str(root / "source.zip"),
                "--force_overwrite"], None
    if mode == "delete":
        return ["delete", "datastore", "/sample", "local", "--datastore_types", "EventEntity"], "YES, DELETE\n"
    if mode == "populate":
        return ["populate", "/empty", "--students", "60", "--seed", str(slot)], None
    return ["run", "courseport.jobs.examples.UploadFileToCourse", "/sample", "local",
            "--job_args", f"{root / 'handout.txt'} assets/handout-{slot}.txt"], None


def _start(home: Path, argv: list[str], stdin: str | None, wait: str) -> subprocess.Popen:
    env = dict(cli_env(home), COURSEPORT_LOCK_WAIT=wait)
    return subprocess.Popen([sys.executable, "-m", "courseport", *argv], env=env, cwd=home.parent,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _outcome(proc: subprocess.Popen, stdin: str | None) -> subprocess.CompletedProcess:
    out, err = proc.communicate(stdin or "", timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _store_is_sound(home: Path) -> None:
    conn = sqlite3.connect(db_path(home))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()
    with SqliteBackend(db_path(home), create=False) as store:
        assert store.count("Student", "ns_sample") == 150


#: what the second of two identical commands rightly says when it runs after the first
AFTER_THE_SAME = ("already exists", "Requested types not found: EventEntity", "already has 60 students")

PAIRS = list(itertools.combinations_with_replacement(MODES, 2))


@pytest.mark.parametrize("first,second", PAIRS, ids=[f"{a}+{b}" for a, b in PAIRS])
def test_a_pair_at_once_ends_right_or_one_refuses_naming_the_other(home: Path, first: str, second: str) -> None:
    (a_argv, a_in), (b_argv, b_in) = _argv(first, home, 1), _argv(second, home, 2)
    procs = [_start(home, a_argv, a_in, "0"), _start(home, b_argv, b_in, "0")]
    results = [_outcome(procs[0], a_in), _outcome(procs[1], b_in)]
    refused = 0
    for mine, other, result in ((first, second, results[0]), (second, first, results[1])):
        assert result.returncode in (0, 1), (mine, result.returncode, result.stderr)
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        if result.returncode == 1:
            refused += 1
            line = assert_one_line_error(result)
            after_the_other = mine == other and any(phrase in line for phrase in AFTER_THE_SAME)
            assert f"in use by 'courseport {other}" in line or after_the_other, line
    assert refused <= 1, "both refused: one of them should have gone ahead"
    if first == "download" or second == "download":
        out = home.parent / "out.zip"
        assert out.exists() and verify(out).ok, verify(out).lines()
        assert not Path(f"{out}.partial").exists() and not Path(f"{out}.lock").exists()
    _store_is_sound(home)


@pytest.mark.parametrize("first,second", [("upload", "populate"), ("delete", "run"), ("upload", "upload")])
def test_with_the_default_wait_the_second_queues_and_both_succeed(home: Path, first: str, second: str) -> None:
    (a_argv, a_in), (b_argv, b_in) = _argv(first, home, 1), _argv(second, home, 2)
    procs = [_start(home, a_argv, a_in, "60"), _start(home, b_argv, b_in, "60")]
    for proc, stdin in zip(procs, (a_in, b_in)):
        result = _outcome(proc, stdin)
        assert result.returncode == 0, result.stderr
    _store_is_sound(home)


PAUSE = r'''
import os, pathlib, sys, time
marker, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
from courseport.etl.progress import Progress
original = Progress.advance
def advance(self, count):
    original(self, count)
    if not marker.exists():  # the first progress: the command holds its locks by now
        marker.write_text(str(os.getpid()))
        while not go.exists():
            time.sleep(0.01)
Progress.advance = advance
from courseport.cli import main
sys.exit(main(sys.argv[3:]))
'''


class Paused:
    """A command stopped at its first progress report, with its locks held, until released."""

    def __init__(self, home: Path, argv: list[str], stdin: str | None = None) -> None:
        root = home.parent
        script, self.marker, self.go = root / "pause.py", root / "paused.marker", root / "go.marker"
        script.write_text(PAUSE)
        self.marker.unlink(missing_ok=True)
        self.go.unlink(missing_ok=True)
        self.stdin = stdin
        env = dict(cli_env(home), COURSEPORT_LOCK_WAIT="0")
        self.proc = subprocess.Popen([sys.executable, str(script), str(self.marker), str(self.go), *argv],
                                     env=env, cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not self.marker.exists():
            assert self.proc.poll() is None, self.proc.communicate()
            assert time.monotonic() < deadline, "the command never reported progress"
            time.sleep(0.005)
        self.pid = self.proc.pid

    def release(self) -> subprocess.CompletedProcess:
        self.go.write_text("go")
        return _outcome(self.proc, self.stdin)


def test_two_downloads_to_one_archive_the_second_is_refused_naming_the_first(home: Path) -> None:
    """Defect 1: both used <path>.partial; one died, the other reported a broken archive as done."""
    out = home.parent / "out.zip"
    argv, _ = _argv("download", home, 1)
    first = Paused(home, argv)
    try:
        for flags in ([], ["--force_overwrite"], ["--resume"]):
            line = assert_one_line_error(cli_at(home, *argv, *flags))
            assert f"the archive {out} is in use by 'courseport download datastore /sample' (pid {first.pid}" in line
    finally:
        result = first.release()
    assert result.returncode == 0, result.stderr
    assert verify(out).ok
    assert sorted(p.name for p in home.parent.iterdir() if p.name.startswith("out")) == ["out.zip"]


def test_a_writer_is_refused_while_another_holds_the_store(home: Path) -> None:
    lock = Path(f"{db_path(home)}.lock")
    argv, stdin = _argv("upload", home, 1)
    first = Paused(home, argv)
    try:
        for mode in ("upload", "delete", "populate", "run"):
            b_argv, b_in = _argv(mode, home, 2)
            proc = _start(home, b_argv, b_in, "0.3")
            line = assert_one_line_error(_outcome(proc, b_in))
            assert f"in use by 'courseport upload datastore /copy' (pid {first.pid}" in line, line
        proc = cli_at(home, "download", "datastore", "/sample", "local", "--archive_path", home.parent / "r.zip")
        assert proc.returncode == 0, proc.stderr  # readers are never in the way
    finally:
        result = first.release()
    assert result.returncode == 0, result.stderr
    assert not lock.exists()


def test_a_killed_holder_leaves_no_stale_lock(home: Path) -> None:
    lock = Path(f"{db_path(home)}.lock")
    argv, _ = _argv("upload", home, 1)
    first = Paused(home, argv)
    assert lock.exists()
    os.kill(first.pid, signal.SIGKILL)
    first.proc.communicate(timeout=30)
    assert lock.exists()  # left behind by the kill, but not held: the next command takes it
    proc = _start(home, *_argv("populate", home, 2), "0")
    result = _outcome(proc, None)
    assert result.returncode == 0, result.stderr
