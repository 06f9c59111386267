"""The one base class of the errors a user can cause.

Every error that bad input, a bad archive, a busy store or a full disk can
raise derives from :class:`UserError`: the command line prints it as one
line and exits with status 1. Anything else that escapes a command is a bug
in courseport, reported as an internal error (see ``cli.py``).

Subclasses keep ``ValueError`` as a second base where they always had it, so
existing ``except ValueError`` translations go on working; what changed is
that a bare ``ValueError`` no longer counts as the user's fault.
"""

from __future__ import annotations

import errno as _errno
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path


class UserError(Exception):
    """Something the user can fix: the message names the problem and the fix."""


def one_line(text: str) -> str:
    """``text`` with its unprintable characters escaped (a newline as ``\\n``), so that a
    message quoting what the user typed still prints as one line."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


#: exit statuses of every command (docs/guarantees.md)
EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_INTERNAL_ERROR = 70  # BSD's EX_SOFTWARE
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a tool whose reader went away

_OS_FIXES = {
    _errno.ENOSPC: "free some space, then run the same command again (with --resume for a download or upload)",
    _errno.EDQUOT: "free some space, then run the same command again (with --resume for a download or upload)",
    _errno.EFBIG: "the file grew past the size this machine allows; write to another file system",
    _errno.EROFS: "the file system is read-only; choose a writable folder",
    _errno.EACCES: "check the permissions, or choose another path",
    _errno.EPERM: "check the permissions, or choose another path",
    _errno.ENOENT: "check the path",
    _errno.ENOTDIR: "check the path",
    _errno.EISDIR: "name a file, not a directory",
    _errno.EIO: "the device failed; check it and run again",
}


def describe_os_error(exc: OSError) -> str:
    """One line for an error the machine raised: what failed, where, and the fix."""
    what = exc.strerror or str(exc) or type(exc).__name__
    where = f" ({exc.filename})" if exc.filename else ""
    fix = _OS_FIXES.get(exc.errno or 0, "fix that and run again")
    return f"{what}{where}: {fix}"


def crash_dir() -> Path:
    """Where internal errors' tracebacks go: ``$COURSEPORT_HOME/crashes``."""
    home = os.environ.get("COURSEPORT_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".courseport"
    return base / "crashes"


def write_crash_report(exc: BaseException) -> str:
    """Write ``exc``'s traceback to a new private file; its path (or a note where none could be written)."""
    text = "".join(traceback.format_exception(exc))
    header = f"courseport internal error at {time.strftime('%Y-%m-%dT%H:%M:%S')}\nargv: {sys.argv!r}\n\n"
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    for folder in (crash_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = folder / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as f:
                f.write(header + text)
            return str(path)
        except OSError:
            continue
    sys.stderr.write(text)
    return "the lines above (no folder could take the report)"
