"""Small file-system helpers for the writers."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from typing import Any

from .errors import ArchiveError

TMP_SUFFIX = ".courseport.tmp"  # never a member name; removed by resume


def create(make: Any, path: str) -> Any:
    """Run ``make()``; an OSError becomes an ArchiveError naming ``path``."""
    try:
        return make()
    except OSError as err:
        raise ArchiveError(f"cannot create {path} ({err.strerror or err})") from None


def write_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a synced temporary file, readable by
    its owner only; links and special files in the way are refused, not followed."""
    refuse_special(path)
    tmp = path + TMP_SUFFIX
    remove_file(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def file_type(path: str) -> str | None:
    """'file', 'directory', 'link', a special file's type, or None where nothing is."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "link"
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def refuse_special(path: str, allowed: tuple[str, ...] = ("file",)) -> None:
    """Raise ArchiveError where ``path`` holds something courseport must not replace."""
    found = file_type(path)
    if found is not None and found not in allowed:
        raise ArchiveError(
            f"{path} is a {found}, which courseport never replaces or writes through: "
            "remove it, or choose another path"
        )


def read_small_file(path: str, limit: int = 16 << 20) -> bytes | None:
    """A helper file's bytes, None where it is missing; never follows a link
    or opens a special file (a FIFO would block)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ArchiveError(f"{path} is a symbolic link: remove it") from None
        raise
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ArchiveError(f"{path} is not a regular file: remove it")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ArchiveError(f"{path} is larger than {limit} bytes: not a courseport file; remove it")
    return data


def remove_file(path: str) -> None:
    """Delete a helper file or link if it exists; anything else there is refused."""
    refuse_special(path, ("file", "link"))
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove(path: str) -> None:
    """Delete a file, link or directory tree if it exists."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def fsync_dir(path: str) -> None:
    """Make renames inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
