"""Writing archives: into ``<path>.partial``, renamed onto ``path`` on commit.

How a partial survives a crash is up to its container type: see
``partial_zip`` and ``partial_dir``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import Any, BinaryIO

from .errors import ArchiveError, show
from .._locks import exclusive
from .fsutil import TMP_SUFFIX, file_type, fsync_dir, remove
from .manifest import MANIFEST_NAME, Manifest
from .members import FILES_DIR, MODELS_DIR
from .names import check_member_name
from .partial_dir import DirectoryPartial
from .partial import Partial
from .partial_zip import ZipPartial
from .streams import BackgroundWriter


class ArchiveWriter:
    """Write an archive member by member; ``commit`` puts it in place."""

    def __init__(self, path: str | os.PathLike[str], archive_type: str = "zip",
                 compresslevel: int = 1, resume: bool = False,
                 threaded: bool | None = None) -> None:
        self.path = os.fspath(path)
        self.partial = self.path + ".partial"
        self.archive_type = archive_type
        if archive_type == "zip":
            self._impl: Partial = ZipPartial(self.path, self.partial, compresslevel, resume)
        elif archive_type == "directory":
            self._impl = DirectoryPartial(self.path, self.partial, resume)
        else:
            raise ArchiveError(f"unknown archive type {archive_type!r} "
                               "(expected 'zip' or 'directory')")
        self._threaded = archive_type == "zip" if threaded is None else threaded
        self._names = set(self._impl.members)
        self._dirs = {d for n in self._names for d in _parents(n)}
        self._open: str | None = None
        self._state = "open"

    def completed(self) -> list[str]:
        """Members fully written (including those recovered by resume)."""
        return list(self._impl.members)

    @contextlib.contextmanager
    def open_member(self, name: str, threaded: bool | None = None) -> Iterator[BinaryIO]:
        """Stream one member; it counts only if the block ends without error.

        A failed member leaves no trace: the next member overwrites it.
        """
        self._check_new(name)
        raw = self._impl.begin(name)
        self._open = name
        stream = BackgroundWriter(raw, self._threaded if threaded is None else threaded)
        try:
            yield stream  # type: ignore[misc]
            stream.finish()
        except BaseException:
            stream.discard()
            self._end_member(name, raw, ok=False)
            raise
        self._end_member(name, raw, ok=True)

    def write_member(self, name: str, data: bytes) -> None:
        """Write a whole member from bytes."""
        with self.open_member(name, threaded=False) as stream:
            stream.write(data)

    def checkpoint(self) -> None:
        """Make every completed member survive a crash now."""
        self._check_state()
        self._impl.checkpoint()

    def commit(self, manifest: Manifest) -> None:
        """Write ``manifest.json`` last, close, and rename onto ``path``."""
        self._check_state()
        try:
            self._impl.finalize(manifest.to_json())
            _install(self.partial, self.path)
        except BaseException:
            self._state = "broken"
            raise
        self._state = "committed"
        self._impl.cleanup()

    def abort(self) -> None:
        """Close, leaving the partial (and its checkpoint) for a later resume."""
        if self._state in ("open", "broken"):
            self._impl.abort(keep=self._state == "open")
            self._state = "aborted"

    def discard(self) -> None:
        """Abort and remove the partial and its checkpoint: as if never begun."""
        self.abort()
        self._impl.cleanup()
        if os.path.isdir(self.partial):
            shutil.rmtree(self.partial, ignore_errors=True)
        elif os.path.exists(self.partial):
            os.remove(self.partial)

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.abort()

    def _end_member(self, name: str, raw: BinaryIO, ok: bool) -> None:
        self._open = None
        try:
            if ok:
                self._impl.finish(name, raw)
            else:
                self._impl.fail(name, raw)
        except BaseException:
            self._state = "broken"  # only abort() now; resume picks up the pieces
            raise
        if ok:
            self._names.add(name)
            self._dirs.update(_parents(name))
        elif len(self._names) != len(self._impl.members):  # rolled back further
            self._names = set(self._impl.members)
            self._dirs = {d for n in self._names for d in _parents(n)}

    def _check_state(self) -> None:
        if self._state == "broken":
            raise ArchiveError(f"archive {self.path}: an earlier write failed; "
                               "abort() and resume")
        if self._state != "open":
            raise ArchiveError(f"archive {self.path} is already {self._state}")
        if self._open is not None:
            raise ArchiveError(f"{self._open}: member is still being written")

    def _check_new(self, name: str) -> None:
        self._check_state()
        check_member_name(name)
        if name == MANIFEST_NAME:
            raise ArchiveError(f"{name}: written by commit(), not as a member")
        if name.endswith(TMP_SUFFIX):
            raise ArchiveError(f"{name}: names ending in {TMP_SUFFIX} are reserved")
        if name in self._names:
            raise ArchiveError(f"{name}: member already written")
        if name in self._dirs:
            raise ArchiveError(f"{name}: conflicts with the members under {show(name + '/')} "
                               "(a file cannot also be a directory)")
        clash = next((p for p in _parents(name) if p in self._names), None)
        if clash is not None:
            raise ArchiveError(f"{name}: conflicts with member {show(clash)} "
                               "(a file cannot also be a directory)")


#: what the top of a directory archive may hold (and so may be replaced)
_ARCHIVE_TOP_LEVEL = {MANIFEST_NAME, MODELS_DIR, FILES_DIR}


def target_lock(path: str | os.PathLike[str], what: str) -> contextlib.AbstractContextManager[None]:
    """Hold ``<path>.lock`` while an archive is written at ``path``: a second
    writer of the same archive is refused, naming the first."""
    path = os.fspath(path)
    return exclusive(path + ".lock", what, subject=f"the archive {path}",
                     fix="wait for it to finish, or choose another --archive_path")


def check_target(path: str | os.PathLike[str], archive_type: str, *, replace: bool, resume: bool) -> None:
    """Refuse a target an archive of ``archive_type`` must not be written to.

    A missing path is fine. An existing one needs ``replace`` or ``resume``;
    even then only a file (or a link, itself replaced, never followed) or an
    archive directory is replaced: never a FIFO, a device, a socket, nor a
    directory that is not an archive.
    """
    path = os.fspath(path)
    found = file_type(path)
    if found is None:
        return
    if not (replace or resume):
        raise ArchiveError(f"{path} already exists: pass --force_overwrite to replace it or --resume to continue it")
    if found == "directory":
        if not set(os.listdir(path)) <= _ARCHIVE_TOP_LEVEL:
            raise ArchiveError(f"{path} is a directory that holds more than an archive: "
                               "courseport replaces only archives; choose another --archive_path")
        if resume and archive_type == "zip":
            raise ArchiveError(f"cannot resume {path}: it is a directory, not a zip archive")
    elif found == "file":
        if resume and archive_type == "directory":
            raise ArchiveError(f"cannot resume {path}: it is a file, not a directory archive")
    elif found != "link":
        raise ArchiveError(f"{path} is a {found}, not an archive: courseport never replaces "
                           "special files; choose another --archive_path")


def _parents(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _install(partial: str, path: str) -> None:
    """Move ``partial`` onto ``path``; an old ``path`` goes only once replaced."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.lexists(path) and (os.path.isdir(path) or os.path.isdir(partial)):
        aside = f"{path}.old-{os.getpid()}"
        remove(aside)
        os.replace(path, aside)
        os.replace(partial, path)
        remove(aside)
    else:
        os.replace(partial, path)
    fsync_dir(parent)
