"""What a user sees on a long run (issue 6): a bar that fits the terminal, an
upload's progress before its commit, nothing for empty kinds, plain log
lines when stderr is not a terminal, and a help text for every option.

Bars are tested twice: rendered into a fake terminal of a given width, and
end to end, the real command line with stderr on a pseudo-terminal.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import cli_at, cli_env, db_path, etl
from courseport.datastore import Entity, Key, SqliteBackend
from courseport.etl.progress import Progress

pty = pytest.importorskip("pty")
fcntl = pytest.importorskip("fcntl")
termios = pytest.importorskip("termios")

CLEAR = "\x1b[K"


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal; its width comes from COLUMNS (it has no fd)."""

    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


def columns(text: str) -> int:
    """Display columns of ``text`` on a terminal: East Asian wide characters take two."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in text)


def redraws(output: str) -> list[str]:
    """Each line a terminal shows in turn: the text between carriage returns and newlines."""
    return [seg.replace(CLEAR, "") for seg in re.split(r"[\r\n]", output) if seg.replace(CLEAR, "")]


# --- the bar, rendered --------------------------------------------------------------------------


def test_bar_at_80_columns_never_exceeds_79(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    stream = FakeTerminal()
    bar = Progress("StudentAnswersEntity", 1_234_567, stream=stream, interval=0)
    for _ in range(300):
        bar.advance(4_115)
    bar.finish()
    lines = redraws(stream.getvalue())
    assert len(lines) == 301  # every advance redrew (interval 0), then the final line
    assert max(map(columns, lines)) <= 79
    assert all(line.startswith("StudentAnswersEntity") for line in lines)
    assert "1,234,500/1,234,567" in lines[-2] and "1,234,500 in " not in lines[-2]
    assert re.search(r"1,234,500/1,234,567 in \d+\.\ds, [\d,]+/s$", lines[-1]), lines[-1]
    assert stream.getvalue().endswith(CLEAR + "\n") and stream.getvalue().count("\n") == 1
    assert "ETA" not in lines[-1] and "<" in lines[1]  # the live lines carry the time left


@settings(max_examples=150, deadline=None)
@given(
    label=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80),
    total=st.one_of(st.none(), st.integers(0, 10**12)),
    steps=st.lists(st.integers(0, 10**9), max_size=8),
    width=st.integers(2, 300),
)
def test_bar_fits_any_width_and_label(label: str, total: int | None, steps: list[int], width: int) -> None:
    stream = FakeTerminal()
    bar = Progress(label, total, stream=stream, interval=0, width=width)
    for step in steps:
        bar.advance(step)
    bar.finish()
    output = stream.getvalue()
    if not sum(steps):  # a task that did nothing says nothing
        assert output == ""
        return
    for line in redraws(output):
        assert columns(line) <= width - 1, (width, line)
        assert line.isprintable(), repr(line)  # a kind's control characters never reach the terminal
    assert output.endswith("\n") and output.count("\n") == 1


def test_not_a_terminal_logs_plain_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="courseport")
    stream = io.StringIO()  # a pipe or a file: no bar
    bar = Progress("Student", 20_000, stream=stream, log_every=0)
    for _ in range(4):
        bar.advance(5_000)
    bar.finish()
    assert stream.getvalue() == ""
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 5
    assert messages[0].startswith("Student: 5,000/20,000 (25%), ") and "ETA" in messages[0]
    assert re.fullmatch(r"Student: 20,000 in \d+\.\ds, [\d,]+/s", messages[-1]), messages[-1]
    assert not any("\x1b" in m or "\r" in m for m in messages)


@pytest.mark.parametrize("tty", [True, False])
def test_an_empty_task_says_nothing(caplog: pytest.LogCaptureFixture, tty: bool) -> None:
    caplog.set_level(logging.INFO, logger="courseport")
    stream = FakeTerminal() if tty else io.StringIO()
    for total in (0, None):
        bar = Progress("LabelEntity", total, stream=stream, interval=0, log_every=0, width=80)
        bar.advance(0)
        bar.finish()
    assert stream.getvalue() == "" and caplog.records == []


# --- end to end, under a pseudo-terminal ----------------------------------------------------------


def run_in_pty(home: Path, argv: list, columns: int = 80, wrapper: str | None = None,
               timeout: float = 120) -> tuple[int, str, str]:
    """``python -m courseport ARGV`` with stderr on a pty ``columns`` wide; (status, stdout, stderr)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = cli_env(home)
    env["COLUMNS"] = str(columns)
    command = [sys.executable, "-c", wrapper] if wrapper else [sys.executable, "-m", "courseport"]
    proc = subprocess.Popen([*command, *map(str, argv)], env=env, cwd=home.parent,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                proc.kill()
                raise AssertionError(f"no output for {timeout}s")
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its side
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    stdout = proc.stdout.read().decode()  # type: ignore[union-attr]
    proc.stdout.close()  # type: ignore[union-attr]
    status = proc.wait(timeout)
    return status, stdout, b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


@pytest.fixture
def wide_home(sample_home: Path) -> Path:
    """The sample store, with kinds whose names are long and wide."""
    with SqliteBackend(db_path(sample_home), create=False) as store:
        for kind in ("K" * 120, "学生の回答" * 6):
            store.put_multi([Entity(Key(kind, i, namespace="ns_sample"), {"n": i}) for i in range(1, 4)])
    return sample_home


def test_download_under_a_real_terminal_fits_80_columns(wide_home: Path) -> None:
    archive = wide_home.parent / "d.zip"
    status, stdout, stderr = run_in_pty(wide_home, ["download", "datastore", "/sample", "local",
                                                    "--archive_path", archive])
    assert status == 0, stderr
    lines = redraws(stderr)
    assert lines, "no progress on a terminal"
    assert max(map(columns, lines)) <= 79, max(lines, key=columns)
    finals = [line for line in stderr.split("\n") if line]
    for kind in ("EventEntity", "Student", "KKKKKKKKKK", "学生の回答"):
        assert any(kind in line.rsplit("\r", 1)[-1] for line in finals), kind  # each kind's last line stays
    assert "downloaded datastore /sample" in stdout


def test_course_download_says_nothing_of_empty_kinds(sample_home: Path) -> None:
    with SqliteBackend(db_path(sample_home), create=False) as store:
        counts = {kind: store.count(kind, "ns_sample") for kind in store.kinds("ns_sample")}
    from courseport.models import COURSE_KINDS

    empty = [kind for kind in COURSE_KINDS if not counts.get(kind)]
    full = [kind for kind in COURSE_KINDS if counts.get(kind)]
    assert len(empty) >= 5 and full  # most course kinds of the sample are empty
    archive = sample_home.parent / "c.zip"
    status, _, stderr = run_in_pty(sample_home, ["download", "course", "/sample", "local",
                                                 "--archive_path", archive])
    assert status == 0, stderr
    piped = cli_at(sample_home, "download", "course", "/sample", "local", "--archive_path",
                   sample_home.parent / "c2.zip")
    assert piped.returncode == 0, piped.stderr
    for output in (stderr, piped.stderr):
        for kind in empty:
            assert kind not in output
        for kind in full:
            assert kind in output
    assert "\x1b" not in piped.stderr and "\r" not in piped.stderr


def test_empty_kinds_of_an_upload_and_a_delete_say_nothing(sample_home: Path) -> None:
    archive = sample_home.parent / "c.zip"
    etl("download", "course", "/sample", "local", "--archive_path", archive)  # 10 course kinds, most empty
    assert cli_at(sample_home, "courses", "add", "/copy").returncode == 0
    upload = cli_at(sample_home, "upload", "course", "/copy", "local", "--archive_path", archive)
    assert upload.returncode == 0, upload.stderr
    assert [line for line in upload.stderr.splitlines() if "Entity:" in line] == \
        [line for line in upload.stderr.splitlines() if line.startswith("INFO: QuestionEntity: 5 in ")]
    delete = cli_at(sample_home, "delete", "course", "/copy", "local", input="YES, DELETE\n")
    assert delete.returncode == 0, delete.stderr
    assert "LabelEntity" not in delete.stderr and "INFO: QuestionEntity: 5 in " in delete.stderr


SLOW_UPLOAD = r'''
import contextlib, sys, time
from courseport.sites import LocalSite
LocalSite.min_batch_size = 1                 # let --batch_size make many small batches
_write = LocalSite.write_prepared
def write_prepared(self, prepared):
    time.sleep(0.06)                         # a slow store: a few redraws per kind
    return _write(self, prepared)
LocalSite.write_prepared = write_prepared
_atomic = LocalSite.atomic
@contextlib.contextmanager
def atomic(self):
    with _atomic(self):
        yield
    sys.stderr.write("<<COMMITTED>>\n")      # the transaction has committed: everything after is after
    sys.stderr.flush()
LocalSite.atomic = atomic
from courseport.cli import main
sys.exit(main(sys.argv[1:]))
'''


def test_upload_shows_progress_before_its_commit(sample_home: Path) -> None:
    archive = sample_home.parent / "d.zip"
    etl("download", "datastore", "/sample", "local", "--archive_path", archive)
    assert cli_at(sample_home, "courses", "add", "/copy").returncode == 0
    status, stdout, stderr = run_in_pty(sample_home, ["upload", "datastore", "/copy", "local", "--archive_path",
                                                      archive, "--batch_size", "10"], wrapper=SLOW_UPLOAD)
    assert status == 0, stderr
    assert "uploaded datastore /copy: 310 entities" in stdout
    before, marker, after = stderr.partition("<<COMMITTED>>")
    assert marker, stderr
    live = redraws(before)
    assert max(map(columns, live)) <= 79
    counts = [int(m.group(1).replace(",", "")) for line in live
              if line.startswith("EventEntity") and (m := re.search(r"\| ([\d,]+)/185 \[", line))]
    assert len(counts) >= 3 and counts == sorted(counts) and counts[0] < 185, live  # live, rising
    assert any("ETA" in line or "<" in line for line in live if line.startswith("EventEntity"))
    assert not re.search(r"EventEntity .* in \d", before)  # the kind's final line waits for the commit
    final = redraws(after)
    assert any(re.search(r"^EventEntity .*185/185 in \d+\.\ds, [\d,]+/s$", line) for line in final), final
    assert re.search(r"committed 310 entities in \d+\.\ds \([\d,]+ entities/s\)", final[-1]), final


def test_a_refusal_mid_bar_is_on_a_line_of_its_own(sample_home: Path) -> None:
    archive = sample_home.parent / "d.zip"
    etl("download", "datastore", "/sample", "local", "--archive_path", archive)
    # uploading into the same course: EventEntity (first) goes in, Student's keys exist
    with SqliteBackend(db_path(sample_home), create=False) as store:
        store.delete_multi(store.fetch_page("EventEntity", "ns_sample", limit=1000, keys_only=True).items)
    status, _, stderr = run_in_pty(sample_home, ["upload", "datastore", "/sample", "local", "--archive_path",
                                                 archive, "--batch_size", "10"], wrapper=SLOW_UPLOAD)
    assert status == 1
    assert "<<COMMITTED>>" not in stderr
    error = [line for line in stderr.split("\n") if "courseport: error:" in line]
    assert len(error) == 1 and error[0].startswith("courseport: error: Object #"), stderr


# --- help texts -------------------------------------------------------------------------------------


def _parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    from courseport.cli import build_parser as cli_parser
    from courseport.etl.args import build_parser as etl_parser

    found, todo = [], [("courseport", cli_parser()), ("courseport download|upload|delete|run", etl_parser())]
    while todo:
        name, parser = todo.pop()
        found.append((name, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend((f"{name} {sub}", p) for sub, p in action.choices.items())
    return found


def test_every_option_and_positional_has_a_help_text() -> None:
    missing = []
    parsers = _parsers()
    assert {"courseport populate", "courseport verify", "courseport courses add"} <= {n for n, _ in parsers}
    for name, parser in parsers:
        for action in parser._actions:
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name}: {'/'.join(action.option_strings) or action.dest}")
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{name} {choice.dest}" for choice in action._choices_actions if not choice.help]
    assert missing == []


@pytest.mark.parametrize("argv", [["-h"], ["populate", "-h"], ["verify", "-h"], ["courses", "add", "-h"],
                                  ["download", "-h"], ["delete", "-h"]])
def test_help_lists_the_texts(home: Path, argv: list[str]) -> None:
    proc = cli_at(home, *argv)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout
    if argv[0] == "populate":
        assert "how many learners to write" in proc.stdout
    if argv[0] == "delete":
        assert "--datastore_types" in proc.stdout and "download, upload, delete" in proc.stdout


# --- progress for programs (--progress_json) -----------------------------------------------


def _json_lines(stderr: str) -> list[dict]:
    import json

    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_progress_json_plans_then_reports_each_task(sample_template: Path, tmp_path: Path) -> None:
    """A download says its plan (every task and its total) first, then each task's
    counts, ending with a final line per task whose count is the total."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(db_path(sample_template), db_path(home))
    target = tmp_path / "a.zip"
    proc = cli_at(home, "download", "datastore", "/sample", "local", "--archive_path", target,
                  "--progress_json", "--log_level", "WARNING")
    assert proc.returncode == 0, proc.stderr
    lines = _json_lines(proc.stderr)
    assert lines and "plan" in lines[0] and all("plan" not in line for line in lines[1:])
    plan = lines[0]["plan"]
    finals = {line["task"]: line for line in lines[1:] if line["final"]}
    assert finals and set(finals) <= set(plan)
    for task, line in finals.items():
        assert line["done"] == line["total"] == plan[task] > 0 and line["seconds"] >= 0
    assert sum(plan.values()) == sum(line["done"] for line in finals.values())
    assert not [line for line in proc.stderr.splitlines() if line and not line.startswith("{")]
    # an upload plans its kinds from the archive's manifest
    assert cli_at(home, "courses", "add", "/copy").returncode == 0
    proc = cli_at(home, "upload", "datastore", "/copy", "local", "--archive_path", target, "--progress_json")
    assert proc.returncode == 0, proc.stderr
    uploaded = _json_lines(proc.stderr)
    assert uploaded[0]["plan"] == plan


def test_no_json_without_the_flag(sample_template: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(db_path(sample_template), db_path(home))
    proc = cli_at(home, "download", "datastore", "/sample", "local", "--archive_path", tmp_path / "a.zip")
    assert proc.returncode == 0 and not _json_lines(proc.stderr)
