"""The zip partial: checkpoints after members, and resume from them.

After a completed member the zip is closed (so it has a central directory),
its tail from the directory on is saved in ``<partial>.resume``, and it is
reopened for appending. After a crash, resume truncates the partial at the
saved offset and puts the saved tail back, which gives exactly the
checkpointed members.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import time
import zipfile
from typing import Any, BinaryIO, Literal

from .errors import ArchiveError
from .fsutil import create, refuse_special, remove_file, write_atomically
from .manifest import MANIFEST_NAME
from .partial import Partial
from .readers import ZipArchiveReader
from .zipend import directory_span, drop_members

RESUME_SUFFIX = ".resume"
_CHECKPOINT_FORMAT = "courseport-zip-checkpoint/1"
# Checkpoints reread the central directory (cost grows with the member count),
# so their total time is held to this allowance plus a share of the run time.
_CHECKPOINT_FREE_SECONDS = 0.5
_CHECKPOINT_SHARE = 0.05


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


class ZipPartial(Partial):
    """``<path>.partial``, a zip, with its checkpoint sidecar."""

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
            remove_file(self.sidecar)
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
        refuse_special(self.partial, ('file', 'link'))
        remove_file(self.partial)
        remove_file(self.sidecar)
        self.file = create(lambda: open(self.partial, "w+b"), self.partial)
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

    def _zipfile(self, mode: Literal["w", "a"]) -> zipfile.ZipFile:
        return zipfile.ZipFile(self.guard, mode, zipfile.ZIP_DEFLATED,
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
        write_atomically(self.sidecar, json.dumps(state).encode("ascii"))
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
        remove_file(self.sidecar)

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


def _check_adoptable(path: str) -> None:
    """Refuse to continue a zip that this writer could not have written."""
    try:
        ZipArchiveReader(path).close()  # every hostile-input guard
    except ArchiveError as err:
        raise ArchiveError(f"cannot resume {path}: {err}") from None
