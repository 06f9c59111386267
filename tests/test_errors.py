"""The command line's error contract: user errors are one line and exit 1;
anything else is an internal error, one line naming a private traceback
file, exit 70."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from hypothesis import given, strategies as st

from conftest import SRC

from courseport.errors import EXIT_INTERNAL_ERROR, EXIT_USER_ERROR, UserError, describe_os_error, one_line


def _run(code: str, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, COURSEPORT_HOME=str(home), PYTHONPATH=str(SRC))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)


def _raise_user_error(message: str, home: Path) -> subprocess.CompletedProcess:
    """A command that raises ``UserError(<message, a Python literal>)``, run as the CLI runs one."""
    return _run("import sys, courseport.cli as c\n"
                "from courseport.errors import UserError\n"
                f"def bad():\n    raise UserError({message})\n"
                "sys.exit(c._guard(bad))", home)


def test_a_bug_is_an_internal_error_with_a_private_traceback_file(tmp_path):
    proc = _run("import sys, courseport.cli as c\n"
                "def boom():\n    raise ValueError('bare value error from a bug')\n"
                "sys.exit(c._guard(boom))", tmp_path)
    assert proc.returncode == EXIT_INTERNAL_ERROR
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error (ValueError)" in lines[0]
    reports = list((tmp_path / "crashes").iterdir())
    assert len(reports) == 1 and str(reports[0]) in lines[0]
    assert "bare value error from a bug" in reports[0].read_text()
    assert "Traceback" in reports[0].read_text()
    assert stat.S_IMODE(reports[0].stat().st_mode) == 0o600


def test_a_user_error_is_one_line_and_status_1(tmp_path):
    proc = _raise_user_error("'the thing is wrong: fix it'", tmp_path)
    assert proc.returncode == EXIT_USER_ERROR
    assert proc.stderr == "courseport: error: the thing is wrong: fix it\n"
    assert not (tmp_path / "crashes").exists()


def test_a_user_error_quoting_a_line_break_is_still_one_line(tmp_path):
    """Whatever text of the user's a message quotes raw (a newline, a tab, an unpaired
    surrogate from a bytes argument), it prints as one line, escaped."""
    proc = _raise_user_error("'no course /a\\nb\\tc\\udcff\\x1b[31m: add it'", tmp_path)
    assert proc.returncode == EXIT_USER_ERROR
    assert proc.stderr == "courseport: error: no course /a\\nb\\tc\\udcff\\x1b[31m: add it\n"


@given(st.text())
def test_one_line_escapes_exactly_what_would_not_print(text: str) -> None:
    shown = one_line(text)
    assert shown.isprintable()
    assert (shown == text) == text.isprintable()


def test_every_error_class_of_the_project_is_a_user_error():
    from courseport.archive import ArchiveError
    from courseport.courses.site import CourseNotFoundError
    from courseport.datastore import DatastoreError
    from courseport.etl.args import EtlUsageError
    from courseport.etl.errors import EtlError
    from courseport.models import SchemaError

    for cls in (ArchiveError, CourseNotFoundError, DatastoreError, EtlUsageError, EtlError, SchemaError):
        assert issubclass(cls, UserError), cls


def test_os_errors_name_the_file_and_the_fix():
    import errno

    text = describe_os_error(OSError(errno.ENOSPC, "No space left on device", "/x/a.zip.partial"))
    assert text == ("No space left on device (/x/a.zip.partial): "
                    "free some space, then run the same command again (with --resume for a download or upload)")


BUGGY = r'''
import sys
from courseport.etl.progress import Progress
original = Progress.advance
def advance(self, count):
    original(self, count)
    if self.label == "Student":
        raise RuntimeError("a bug in the middle of a kind")
Progress.advance = advance
from courseport.cli import main
sys.exit(main(sys.argv[1:]))
'''


def test_a_bug_mid_download_leaves_the_partial_resumable(tmp_path):
    from conftest import cli_at, cli_env, make_store_template
    from courseport.etl import verify

    home = make_store_template(tmp_path / "home", students=30, seed=1)
    archive = tmp_path / "a.zip"
    argv = ["download", "datastore", "/sample", "local", "--archive_path", str(archive), "--batch_size", "1"]
    script = tmp_path / "buggy.py"
    script.write_text(BUGGY)
    proc = subprocess.run([sys.executable, str(script), *argv], env=cli_env(home), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == EXIT_INTERNAL_ERROR, proc.stderr
    assert "internal error (RuntimeError)" in proc.stderr and "--resume" in proc.stderr
    assert Path(f"{archive}.partial").exists() and not archive.exists()
    resumed = cli_at(home, *argv, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert verify(archive).ok


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    from conftest import cli_env, make_store_template

    home = make_store_template(tmp_path / "home", students=0)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written
    try:
        proc = subprocess.run([sys.executable, "-m", "courseport", "status"], env=cli_env(home), stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert proc.stderr == ""
