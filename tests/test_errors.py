"""The command line's error contract: user errors are one line and exit 1;
anything else is an internal error, one line naming a private traceback
file, exit 70."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from conftest import SRC

from courseport.errors import EXIT_INTERNAL_ERROR, EXIT_USER_ERROR, UserError, describe_os_error


def _run(code: str, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, COURSEPORT_HOME=str(home), PYTHONPATH=str(SRC))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)


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
    proc = _run("import sys, courseport.cli as c\n"
                "from courseport.errors import UserError\n"
                "def bad():\n    raise UserError('the thing is wrong: fix it')\n"
                "sys.exit(c._guard(bad))", tmp_path)
    assert proc.returncode == EXIT_USER_ERROR
    assert proc.stderr == "courseport: error: the thing is wrong: fix it\n"
    assert not (tmp_path / "crashes").exists()


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
                    "free some space, then run the same command again with --resume")
