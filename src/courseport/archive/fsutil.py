"""Small file-system helpers for the writers."""

from __future__ import annotations

import os
import shutil
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
    """Write ``data`` to ``path`` through a synced temporary file."""
    tmp = path + TMP_SUFFIX
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
