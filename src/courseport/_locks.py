"""Exclusive locks between courseport processes, on lock files.

A lock is ``flock`` on a small file that names its holder (what it does, its
pid, since when), so that a refused process can say who is in the way. The
kernel drops the lock when its holder dies, however it dies, so a killed run
never leaves a stale lock behind. The file is removed on release; a waiter
that locked a file already removed tries again on the new one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import time
from collections.abc import Iterator

from .errors import UserError


#: seconds a command waits for another that holds a lock it needs
DEFAULT_WAIT = 30.0
ENV_WAIT = "COURSEPORT_LOCK_WAIT"


def lock_wait() -> float:
    """``$COURSEPORT_LOCK_WAIT`` seconds, else 30."""
    try:
        return max(0.0, float(os.environ.get(ENV_WAIT, DEFAULT_WAIT)))
    except ValueError:
        return DEFAULT_WAIT


class LockedError(UserError):
    """Another process holds the lock."""


def holder_of(path: str, patience: float = 0.5) -> str | None:
    """Who holds (or last held) the lock at ``path``, as words; None where
    the file is gone (its holder has just finished).

    A holder writes who it is just after it takes the lock: a reader that
    comes in between finds the file empty or half-written, and looks again.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            with open(path, "rb") as f:
                info = json.loads(f.read(4096))
            what, pid, since = info["what"], int(info["pid"]), float(info["since"])
            break
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            if time.monotonic() >= deadline:
                return "another courseport process"
            time.sleep(0.01)
    started = time.strftime("%H:%M:%S", time.localtime(since))
    return f"'{what}' (pid {pid}, running since {started})"


def _open_lock_file(path: str) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UserError(f"{path} is a symbolic link, not a courseport lock file: remove it") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserError(f"{path} is not a regular file, not a courseport lock file: remove it")
    return fd


def _still_linked(fd: int, path: str) -> bool:
    try:
        here = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino)


@contextlib.contextmanager
def exclusive(path: str, what: str, *, subject: str, fix: str, wait: float = 0.0) -> Iterator[None]:
    """Hold the lock at ``path`` while the block runs; ``what`` names this process's work.

    Waits up to ``wait`` seconds for a holder to finish, then raises
    LockedError: "<subject> is in use by <holder>: <fix>".
    """
    deadline = time.monotonic() + wait
    vanished = 0
    while True:
        fd = _open_lock_file(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                holder = holder_of(path)
                if holder is None and vanished < 3:  # it finished as we looked: try again
                    vanished += 1
                    continue
                raise LockedError(f"{subject} is in use by {holder or 'another courseport process'}: {fix}") from None
            time.sleep(0.1)
            continue
        except BaseException:
            os.close(fd)
            raise
        if _still_linked(fd, path):
            break
        os.close(fd)  # its holder removed it as we locked it: lock the new one
    try:
        info = json.dumps({"what": what, "pid": os.getpid(), "since": time.time()}).encode("utf-8")
        os.pwrite(fd, info, 0)
        os.ftruncate(fd, len(info))
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def is_held(path: str) -> bool | None:
    """Whether a live process holds the lock at ``path``: True, False (its holder
    died without removing it), or None (no such lock file: its holder finished)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError:
        return True  # not ours to judge (a link, a permission): say it is in use
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
