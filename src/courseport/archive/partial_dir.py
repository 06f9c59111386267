"""The directory partial: each member is written as ``<member>.courseport.tmp``
and renamed when complete, so the files present are the completed members."""

from __future__ import annotations

import os
from typing import BinaryIO

from .errors import ArchiveError
from .fsutil import TMP_SUFFIX, create, fsync_dir, refuse_special, remove, write_atomically
from .manifest import MANIFEST_NAME
from .partial import Partial
from .readers import Limits, scan_directory


class DirectoryPartial(Partial):
    """``<path>.partial/``, a directory."""

    def __init__(self, path: str, partial: str, resume: bool) -> None:
        self.partial = partial
        if resume and not os.path.lexists(partial) and os.path.lexists(path):
            if not os.path.isdir(path) or os.path.islink(path):
                raise ArchiveError(f"cannot resume {path}: not a directory")
            os.replace(path, partial)
        if resume and os.path.isdir(partial) and not os.path.islink(partial):
            self.members = self._recover()
        else:
            refuse_special(partial, ("file", "directory", "link"))
            remove(partial)
            create(lambda: os.mkdir(partial), partial)
            self.members = []

    def _recover(self) -> list[str]:
        for folder, _, files in os.walk(self.partial):
            for leftover in (f for f in files if f.endswith(TMP_SUFFIX)):
                os.unlink(os.path.join(folder, leftover))
        remove(os.path.join(self.partial, MANIFEST_NAME))  # rewritten by commit
        return sorted(scan_directory(os.path.realpath(self.partial), Limits()))

    def _target(self, name: str) -> str:
        return os.path.join(self.partial, *name.split("/"))

    def begin(self, name: str) -> BinaryIO:
        target = self._target(name)
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            return open(target + TMP_SUFFIX, "wb")
        except OSError as err:
            raise ArchiveError(f"{name}: cannot create ({err.strerror})") from None

    def finish(self, name: str, stream: BinaryIO) -> None:
        stream.flush()
        os.fsync(stream.fileno())
        stream.close()
        os.replace(self._target(name) + TMP_SUFFIX, self._target(name))
        self.members.append(name)

    def fail(self, name: str, stream: BinaryIO) -> None:
        stream.close()
        remove(self._target(name) + TMP_SUFFIX)

    def finalize(self, manifest: bytes) -> None:
        write_atomically(os.path.join(self.partial, MANIFEST_NAME), manifest)
        for folder, _, _ in os.walk(self.partial):
            fsync_dir(folder)
