"""Writing archives: into ``<path>.partial``, renamed onto ``path`` on commit.

A zip partial is checkpointed after completed members: the zip is closed
(so it has a central directory), its tail from the directory on is saved in
``<path>.partial.resume``, and the zip is reopened for appending. After a
crash, resume truncates the partial at the saved offset and puts the saved
tail back, which gives exactly the checkpointed members. A directory partial
writes each member as ``<member>.courseport.tmp`` and renames it when done.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import stat
import time
import zipfile
from collections.abc import Iterator
from typing import Any, BinaryIO

from .errors import ArchiveError, show
from .manifest import MANIFEST_NAME, Manifest
from .names import check_member_name
from .readers import Limits, guard_zip_members, scan_directory
from .streams import BackgroundWriter
from .zipend import directory_span, drop_members

TMP_SUFFIX = ".courseport.tmp"
RESUME_SUFFIX = ".resume"
_CHECKPOINT_FORMAT = "courseport-zip-checkpoint/1"
# Checkpoints reread the central directory (cost grows with the member count),
# so their total time is held to this allowance plus a share of the run time.
_CHECKPOINT_FREE_SECONDS = 0.5
_CHECKPOINT_SHARE = 0.05


class ArchiveWriter:
    """Write an archive member by member; ``commit`` puts it in place."""

    def __init__(self, path: str | os.PathLike[str], archive_type: str = "zip",
                 compresslevel: int = 1, resume: bool = False,
                 threaded: bool | None = None) -> None:
        self.path = os.fspath(path)
        self.partial = self.path + ".partial"
        self.archive_type = archive_type
        if archive_type == "zip":
            self._impl: _Partial = _ZipPartial(self.path, self.partial, compresslevel, resume)
        elif archive_type == "directory":
            self._impl = _DirectoryPartial(self.path, self.partial, resume)
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


def _parents(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


class _Partial:
    """What a container type does with its partial."""

    members: list[str]

    def begin(self, name: str) -> BinaryIO:
        raise NotImplementedError

    def finish(self, name: str, stream: BinaryIO) -> None:
        raise NotImplementedError

    def fail(self, name: str, stream: BinaryIO) -> None:
        raise NotImplementedError

    def checkpoint(self) -> None:
        pass

    def finalize(self, manifest: bytes) -> None:
        raise NotImplementedError

    def abort(self, keep: bool) -> None:
        """Close; with ``keep``, make completed members resumable first."""

    def cleanup(self) -> None:
        pass


class _Poisoned(Exception):
    """Raised by a poisoned file so zipfile forgets a failed member."""


class _GuardedFile:
    """The partial's file as zipfile sees it.

    While ``poisoned``, writes raise: closing a failed member then aborts
    inside zipfile before it registers the member, and the next member
    overwrites its bytes.
    """

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.poisoned = False

    def write(self, data: Any) -> int:
        if self.poisoned:
            raise _Poisoned()
        return self.f.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.f, name)


class _ZipPartial(_Partial):
    def __init__(self, path: str, partial: str, level: int, resume: bool) -> None:
        self.partial = partial
        self.sidecar = partial + RESUME_SUFFIX
        self.level = level
        self.members = []
        self.started = time.monotonic()
        self.checkpoint_seconds = 0.0
        self._zip: zipfile.ZipFile | None = None
        self._modified = False  # anything written since the zip was (re)opened
        if resume and not os.path.lexists(partial) and os.path.lexists(path):
            if not os.path.isfile(path) or os.path.islink(path):
                raise ArchiveError(f"cannot resume {path}: not a zip file")
            _check_adoptable(path)  # before anything moves
            _remove(self.sidecar)
            os.replace(path, partial)
        if resume and os.path.isfile(partial) and os.path.isfile(self.sidecar):
            self._restore()
        elif resume and os.path.isfile(partial) and zipfile.is_zipfile(partial):
            _check_adoptable(partial)
            self._adopt()
        else:
            self._fresh()

    # -- set-up ------------------------------------------------------------

    def _fresh(self) -> None:
        _remove(self.partial)
        _remove(self.sidecar)
        self.file = _create(lambda: open(self.partial, "w+b"), self.partial)
        self.guard = _GuardedFile(self.file)
        self._zip = self._zipfile("w")
        self._modified = True
        self.checkpoint()

    def _restore(self) -> None:
        """Cut the partial back to the saved checkpoint."""
        members, offset, tail = self._read_sidecar()
        self.file = open(self.partial, "r+b")
        self.guard = _GuardedFile(self.file)
        try:
            self.file.seek(0, os.SEEK_END)
            if self.file.tell() < offset:
                raise ArchiveError(f"cannot resume {self.partial}: shorter than its checkpoint")
            self.file.seek(offset)
            self.file.write(tail)
            self.file.truncate()
            self.file.flush()
            self._verify(members)
        except BaseException:
            self.file.close()
            raise
        self.members = members
        self._zip = self._zipfile("a")

    def _adopt(self) -> None:
        """Continue a complete zip (a committed or Course Builder archive)."""
        self.file = open(self.partial, "r+b")
        self.guard = _GuardedFile(self.file)
        archive = zipfile.ZipFile(self.guard, "a")
        infos = archive.infolist()
        names = [i.filename for i in infos if not i.is_dir()]
        archive.comment = b""
        archive.close()
        self.file.truncate()
        if MANIFEST_NAME in names:  # rewritten by commit
            names.remove(MANIFEST_NAME)
            last = max(infos, key=lambda i: i.header_offset)
            cut = last.header_offset if last.filename == MANIFEST_NAME else None
            drop_members(self.file, self.file.tell(), {MANIFEST_NAME}, cut)
        self.members = names
        self._zip = self._zipfile("a")
        self.checkpoint()

    def _verify(self, members: list[str]) -> None:
        try:
            with zipfile.ZipFile(self.guard) as archive:
                names = archive.namelist()
                for info in archive.infolist():
                    self.file.seek(info.header_offset)
                    if self.file.read(4) != b"PK\x03\x04":
                        raise ArchiveError(f"{info.filename}: local header missing")
        except (zipfile.BadZipFile, ArchiveError) as err:
            raise ArchiveError(f"cannot resume {self.partial}: checkpoint does not "
                               f"restore a valid zip ({err})") from None
        if names != members:
            raise ArchiveError(f"cannot resume {self.partial}: restored members "
                               "differ from the checkpoint")

    def _zipfile(self, mode: str) -> zipfile.ZipFile:
        return zipfile.ZipFile(self.guard, mode, zipfile.ZIP_DEFLATED,  # type: ignore[arg-type]
                               allowZip64=True, compresslevel=self.level)

    # -- members -----------------------------------------------------------

    def begin(self, name: str) -> BinaryIO:
        info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = (stat.S_IFREG | 0o644) << 16
        # Python 3.11 has no public per-member level (3.13: compress_level).
        info._compresslevel = self.level  # type: ignore[attr-defined]
        assert self._zip is not None
        self._modified = True
        return self._zip.open(info, "w", force_zip64=True)  # type: ignore[return-value]

    def finish(self, name: str, stream: BinaryIO) -> None:
        stream.close()
        self.members.append(name)
        budget = _CHECKPOINT_FREE_SECONDS + _CHECKPOINT_SHARE * (time.monotonic() - self.started)
        if self.checkpoint_seconds <= budget:
            self.checkpoint()

    def fail(self, name: str, stream: BinaryIO) -> None:
        self.guard.poisoned = True
        try:
            stream.close()
        except _Poisoned:
            pass
        finally:
            self.guard.poisoned = False
        assert self._zip is not None
        if name in self._zip.NameToInfo:  # zipfile changed: fall back to the checkpoint
            self._zip = None
            self.file.close()
            self._restore()

    # -- checkpoints and the end -----------------------------------------

    def checkpoint(self) -> None:
        began = time.monotonic()
        self._close_zip()
        os.fsync(self.file.fileno())
        end = self.file.tell()
        offset, _, _ = directory_span(self.file, end)
        self.file.seek(offset)
        tail = self.file.read(end - offset)
        state = {"format": _CHECKPOINT_FORMAT, "members": self.members,
                 "offset": offset, "tail": base64.b64encode(tail).decode("ascii")}
        _write_atomically(self.sidecar, json.dumps(state).encode("ascii"))
        self._zip = self._zipfile("a")
        self.checkpoint_seconds += time.monotonic() - began

    def finalize(self, manifest: bytes) -> None:
        stream = self.begin(MANIFEST_NAME)
        stream.write(manifest)
        stream.close()
        self._close_zip()
        os.fsync(self.file.fileno())
        self.file.close()

    def abort(self, keep: bool) -> None:
        if self.file.closed:
            return
        try:
            if keep and self._zip is not None:
                self.checkpoint()
        finally:
            self.file.close()

    def cleanup(self) -> None:
        _remove(self.sidecar)

    def _close_zip(self) -> None:
        """Close the zip, leaving the file positioned at its end."""
        assert self._zip is not None
        self._zip.close()
        if self._modified:  # new end records written; a failed member may lie past them
            self.file.truncate()
        else:  # zipfile wrote nothing and left the position at the directory
            self.file.seek(0, os.SEEK_END)
        self.file.flush()
        self._modified = False

    def _read_sidecar(self) -> tuple[list[str], int, bytes]:
        """(members, directory offset, tail bytes) of the last checkpoint."""
        try:
            with open(self.sidecar, "rb") as f:
                state = json.load(f)
            if state.get("format") != _CHECKPOINT_FORMAT:
                raise ValueError("unknown format")
            members, offset = state["members"], state["offset"]
            if not (isinstance(members, list) and all(isinstance(m, str) for m in members)
                    and type(offset) is int and offset >= 0):
                raise ValueError("bad fields")
            tail = base64.b64decode(state["tail"], validate=True)
        except (OSError, ValueError, KeyError, AttributeError, TypeError) as err:
            raise ArchiveError(f"cannot resume: {self.sidecar} is unreadable ({err})") from None
        return members, offset, tail


class _DirectoryPartial(_Partial):
    def __init__(self, path: str, partial: str, resume: bool) -> None:
        self.partial = partial
        if resume and not os.path.lexists(partial) and os.path.lexists(path):
            if not os.path.isdir(path) or os.path.islink(path):
                raise ArchiveError(f"cannot resume {path}: not a directory")
            os.replace(path, partial)
        if resume and os.path.isdir(partial) and not os.path.islink(partial):
            self.members = self._recover()
        else:
            _remove(partial)
            _create(lambda: os.mkdir(partial), partial)
            self.members = []

    def _recover(self) -> list[str]:
        for folder, _, files in os.walk(self.partial):
            for leftover in (f for f in files if f.endswith(TMP_SUFFIX)):
                os.unlink(os.path.join(folder, leftover))
        _remove(os.path.join(self.partial, MANIFEST_NAME))  # rewritten by commit
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
        _remove(self._target(name) + TMP_SUFFIX)

    def finalize(self, manifest: bytes) -> None:
        _write_atomically(os.path.join(self.partial, MANIFEST_NAME), manifest)
        for folder, _, _ in os.walk(self.partial):
            _fsync_dir(folder)


def _check_adoptable(path: str) -> None:
    """Refuse to continue a zip that this writer could not have written."""
    try:
        with zipfile.ZipFile(path) as archive:
            guard_zip_members(archive.infolist(), Limits())
    except (zipfile.BadZipFile, ArchiveError) as err:
        raise ArchiveError(f"cannot resume {path}: {err}") from None


def _install(partial: str, path: str) -> None:
    """Move ``partial`` onto ``path``; an old ``path`` goes only once replaced."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.lexists(path) and (os.path.isdir(path) or os.path.isdir(partial)):
        aside = f"{path}.old-{os.getpid()}"
        _remove(aside)
        os.replace(path, aside)
        os.replace(partial, path)
        _remove(aside)
    else:
        os.replace(partial, path)
    _fsync_dir(parent)


def _create(make: Any, path: str) -> Any:
    try:
        return make()
    except OSError as err:
        raise ArchiveError(f"cannot create {path} ({err.strerror or err})") from None


def _write_atomically(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _remove(path: str) -> None:
    """Delete a file, link or directory tree if it exists."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
