"""Reading archives: zip files and directories, behind hostile-input guards.

Every guard runs when the archive is opened, over the whole archive, before
any member is read: names, duplicates, links, special files, declared sizes,
compression ratios, and for zips that each local header matches its
directory entry without overlapping another member (spec §1.2).
"""

from __future__ import annotations

import io
import lzma
import os
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from .errors import ArchiveError, show
from .manifest import MANIFEST_NAME, Manifest
from .names import check_member_name, check_no_conflicts

GiB = 1 << 30
READ_WHOLE_LIMIT = 64 << 20
BOMB_MIN_BYTES = 10_000_000
# Deflate cannot exceed about 1032:1, so a larger bound would never fire for
# deflated members; real row JSON compresses 10-30:1.
DEFAULT_MAX_RATIO = 1000
_SUPPORTED = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError,
               struct.error, NotImplementedError, ValueError, lzma.LZMAError)


@dataclass(frozen=True)
class Limits:
    """Bounds on what an archive may declare."""

    max_member_bytes: int = 8 * GiB
    max_total_bytes: int = 64 * GiB
    max_ratio: float = DEFAULT_MAX_RATIO


def open_reader(path: str | os.PathLike[str], archive_type: str | None = None,
                **limits: Any) -> ArchiveReader:
    """Open a zip or directory archive; ``archive_type`` None guesses from ``path``.

    ``limits`` are :class:`Limits` fields.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ArchiveError(f"archive {path} does not exist")
    if archive_type is None:
        archive_type = "directory" if os.path.isdir(path) else "zip"
    if archive_type == "zip":
        return ZipArchiveReader(path, Limits(**limits))
    if archive_type == "directory":
        return DirectoryArchiveReader(path, Limits(**limits))
    raise ArchiveError(f"unknown archive type {archive_type!r} (expected 'zip' or 'directory')")


class ArchiveReader:
    """The reading interface common to both container types."""

    archive_type = ""

    def __init__(self, path: str, sizes: dict[str, int]) -> None:
        self.path = path
        self._sizes = sizes
        self._manifest: Manifest | None = None

    def names(self) -> list[str]:
        """Every member (files only), sorted."""
        return sorted(self._sizes)

    def has(self, name: str) -> bool:
        return name in self._sizes

    def size(self, name: str) -> int:
        """Uncompressed size of a member, as declared."""
        return self._sizes[self._known(name)]

    def open(self, name: str) -> BinaryIO:
        """A streaming binary reader for one member."""
        raise NotImplementedError

    def read(self, name: str, limit: int = READ_WHOLE_LIMIT) -> bytes:
        """The whole of a small member."""
        size = self.size(name)
        if size > limit:
            raise ArchiveError(f"{name}: {size} bytes is too large to read whole "
                               f"(limit {limit}); stream it instead")
        with self.open(name) as stream:
            return stream.read()

    def manifest(self) -> Manifest:
        """The parsed ``manifest.json``."""
        if self._manifest is None:
            if not self.has(MANIFEST_NAME):
                raise ArchiveError(f"{self.path}: no manifest.json: not a Course Builder archive")
            self._manifest = Manifest.from_json(self.read(MANIFEST_NAME))
        return self._manifest

    def close(self) -> None:
        pass

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _known(self, name: str) -> str:
        if name not in self._sizes:
            raise ArchiveError(f"{name}: no such member in {self.path}")
        return name


class ZipArchiveReader(ArchiveReader):
    """A zip archive, as Course Builder and courseport write them."""

    archive_type = "zip"

    def __init__(self, path: str, limits: Limits = Limits()) -> None:
        if os.path.isdir(path):
            raise ArchiveError(f"{path} is not a zip archive (it is a directory)")
        if not os.path.isfile(path):
            raise ArchiveError(f"{path} is not a zip archive (not a regular file)")
        try:
            self._zip = zipfile.ZipFile(path)
        except OSError as err:
            raise ArchiveError(f"{path}: cannot open ({err.strerror or err})") from None
        except _ZIP_ERRORS as err:
            raise ArchiveError(f"{path} is not a zip archive ({err})") from None
        try:
            self._infos = guard_zip_members(self._zip.infolist(), limits)
            with open(path, "rb") as raw:
                check_zip_layout(raw, self._zip.infolist(), getattr(self._zip, "start_dir", None))
        except BaseException:
            self._zip.close()
            raise
        super().__init__(path, {n: i.file_size for n, i in self._infos.items()})

    def open(self, name: str) -> BinaryIO:
        info = self._infos[self._known(name)]
        try:
            inner = self._zip.open(info)
        except _ZIP_ERRORS as err:
            raise ArchiveError(f"{name}: corrupt zip member ({err})") from None
        except OSError as err:
            if err.errno is not None:
                raise
            raise ArchiveError(f"{name}: corrupt zip member ({err})") from None
        # typeshed says only IO[bytes]; for reading, zipfile hands back a ZipExtFile
        assert isinstance(inner, zipfile.ZipExtFile)
        # cast: a BufferedIOBase is a binary stream, but typing.BinaryIO is nominal
        # and typeshed declares no io class outside the standard ones as one
        return cast(BinaryIO, _ZipMemberStream(inner, name, info.file_size))

    def close(self) -> None:
        self._zip.close()


def guard_zip_members(infos: list[zipfile.ZipInfo], limits: Limits) -> dict[str, zipfile.ZipInfo]:
    """Check every member of a zip; return the file members by name."""
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        if "\0" in info.orig_filename:  # zipfile silently cuts names at NUL
            raise ArchiveError(f"zip member {show(info.orig_filename)} contains a NUL character")
        if not info.filename:  # ZipInfo.is_dir() would fail on it
            raise ArchiveError("a zip member has an empty name")
        if info.is_dir():
            check_member_name(info.filename[:-1], label="zip directory")
            continue
        name = check_member_name(info.filename, label="zip member")
        _check_zip_member(name, info, limits)
        if name in members:
            raise ArchiveError(f"zip member {show(name)} appears more than once")
        total += info.file_size
        if total > limits.max_total_bytes:
            raise ArchiveError(f"zip member {show(name)} takes the archive past "
                               f"{limits.max_total_bytes} bytes uncompressed")
        members[name] = info
    check_no_conflicts(list(members), label="zip member")
    return members


_LOCAL = struct.Struct("<4s2B4HL2L2H")  # local file header, 30 bytes
_DESCRIPTOR_SIGNATURE = b"PK\x07\x08"
_FLAG_DESCRIPTOR = 0x08  # crc and sizes follow the data (the local header holds zeros)
_FLAGS_REFUSED = 0x01 | 0x20 | 0x40  # encrypted, patched data, strong encryption
_ZIP64_MARK = 0xFFFFFFFF


def check_zip_layout(raw: BinaryIO, infos: list[zipfile.ZipInfo], directory_start: int | None = None) -> None:
    """Each entry's local header must agree with its central directory entry
    (name, compression method, CRC-32, sizes; where flag bit 3 says so, the
    data descriptor after the data holds the CRC and sizes), and no two
    entries' data may overlap each other (the trick of "overlapping" zip
    bombs) or the central directory at ``directory_start``."""
    end = 0
    previous = ""
    for info in sorted(infos, key=lambda i: i.header_offset):
        label = f"zip member {show(info.filename)}"
        if info.header_offset < 0:  # zipfile's reading of some ZIP64 end records
            raise ArchiveError(f"{label} has no local header at offset {info.header_offset} "
                               "(the central directory is corrupt, or a ZIP64 layout that cannot be read)")
        raw.seek(info.header_offset)
        header = raw.read(_LOCAL.size)
        if len(header) < _LOCAL.size or header[:4] != b"PK\x03\x04":
            raise ArchiveError(f"{label} has no local header at offset {info.header_offset}")
        (_, _, _, flags, method, _, _, crc, compressed, size, name_len, extra_len) = _LOCAL.unpack(header)
        local_name = raw.read(name_len)
        if local_name != info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437",
                                                   "surrogateescape"):
            raise ArchiveError(f"{label}: its local header names another file")
        if info.header_offset < end:
            raise ArchiveError(f"{label} overlaps member {show(previous)} (possible zip bomb)")
        extra = raw.read(extra_len)
        if len(extra) < extra_len:
            raise ArchiveError(f"{label}: its local header is cut off")
        if flags & _FLAGS_REFUSED:
            raise ArchiveError(f"{label} is encrypted or patched (local header flags {flags:#06x})")
        disagree = f"{label}: its local header disagrees with the central directory"
        if method != info.compress_type:
            raise ArchiveError(f"{disagree} (compression method {method}, not {info.compress_type}): "
                               "the archive is corrupt or was tampered with")
        data_end = info.header_offset + _LOCAL.size + name_len + extra_len + info.compress_size
        if compressed == _ZIP64_MARK or size == _ZIP64_MARK:
            size, compressed = _zip64_local_sizes(extra, size, compressed, label)
        if flags & _FLAG_DESCRIPTOR:
            # zeros here are the norm; values, where a writer gave them, must agree
            for what, local, central in (("CRC-32", crc, info.CRC), ("compressed size", compressed, info.compress_size),
                                         ("size", size, info.file_size)):
                if local not in (0, central):
                    raise ArchiveError(f"{disagree} ({what} {local}, not {central}): "
                                       "the archive is corrupt or was tampered with")
            raw.seek(data_end)
            data_end += _check_descriptor(raw.read(24), info, disagree)
        else:
            for what, local, central in (("CRC-32", crc, info.CRC), ("compressed size", compressed, info.compress_size),
                                         ("size", size, info.file_size)):
                if local != central:
                    raise ArchiveError(f"{disagree} ({what} {local}, not {central}): "
                                       "the archive is corrupt or was tampered with")
        if directory_start is not None and data_end > directory_start:
            raise ArchiveError(f"{label}: its data runs into the central directory (the archive is corrupt)")
        end = data_end
        previous = info.filename


def _zip64_local_sizes(extra: bytes, size: int, compressed: int, label: str) -> tuple[int, int]:
    """The sizes a ZIP64 extra field of a local header gives (those marked 0xFFFFFFFF)."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4: pos + 4 + length]
        if tag == 0x0001:
            values = [v for (v,) in struct.iter_unpack("<Q", body[: len(body) // 8 * 8])]
            if size == _ZIP64_MARK and values:
                size = values.pop(0)
            if compressed == _ZIP64_MARK and values:
                compressed = values.pop(0)
            break
        pos += 4 + length
    if size == _ZIP64_MARK or compressed == _ZIP64_MARK:
        raise ArchiveError(f"{label}: its local header has no ZIP64 sizes (the archive is corrupt)")
    return size, compressed


def _check_descriptor(data: bytes, info: zipfile.ZipInfo, disagree: str) -> int:
    """The length of the data descriptor at the start of ``data``, which must
    give the central directory's CRC-32 and sizes (32- or 64-bit, with or
    without its signature)."""
    for start in ((4, 0) if data[:4] == _DESCRIPTOR_SIGNATURE else (0,)):
        for layout, length in (("<LLL", 12), ("<LQQ", 20)):
            if len(data) >= start + length:
                crc, compressed, size = struct.unpack_from(layout, data, start)
                if (crc, compressed, size) == (info.CRC, info.compress_size, info.file_size):
                    return start + length
    raise ArchiveError(f"{disagree}: the data descriptor after its data does not give its "
                       f"CRC-32 {info.CRC} and sizes {info.compress_size}/{info.file_size} "
                       "(the archive is corrupt or was tampered with)")


def _check_zip_member(name: str, info: zipfile.ZipInfo, limits: Limits) -> None:
    label = f"zip member {show(name)}"
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise ArchiveError(f"{label} is a symbolic link")
    if kind not in (0, stat.S_IFREG):
        raise ArchiveError(f"{label} is a special file (mode {kind:o})")
    if info.flag_bits & 0x1:
        raise ArchiveError(f"{label} is encrypted")
    if info.compress_type not in _SUPPORTED:
        raise ArchiveError(f"{label} uses unsupported compression method {info.compress_type}")
    if info.file_size > limits.max_member_bytes:
        raise ArchiveError(f"{label} declares {info.file_size} bytes, more than the "
                           f"limit of {limits.max_member_bytes}")
    ratio = info.file_size / max(1, info.compress_size)
    if info.file_size > BOMB_MIN_BYTES and ratio > limits.max_ratio:
        raise ArchiveError(f"{label} looks like a zip bomb (compression ratio "
                           f"{ratio:.0f}:1, limit {limits.max_ratio:.0f}:1)")


class _ZipMemberStream(io.BufferedIOBase):
    """A zip member reader that turns corruption into ArchiveError and
    refuses to deliver more than the declared size."""

    def __init__(self, inner: zipfile.ZipExtFile, name: str, declared: int) -> None:
        self._inner = inner
        self._name = name
        self._left = declared

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return self._guarded(self._inner.read, -1 if size is None else size)

    def read1(self, size: int = -1) -> bytes:
        return self._guarded(self._inner.read1, size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._guarded(self._inner.readline, -1 if size is None else size)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()

    def _guarded(self, method: Any, size: int) -> bytes:
        try:
            data = method(size)
        except _ZIP_ERRORS as err:
            raise ArchiveError(f"{self._name}: corrupt zip member ({err})") from None
        except OSError as err:
            if err.errno is not None:  # the disk's, not the data's
                raise
            raise ArchiveError(f"{self._name}: corrupt zip member ({err})") from None  # bz2's "Invalid data stream"
        self._left -= len(data)
        if self._left < 0:
            raise ArchiveError(f"{self._name}: more data than its declared size")
        return data


class DirectoryArchiveReader(ArchiveReader):
    """A directory archive: member ``a/b`` is the file ``<root>/a/b``."""

    archive_type = "directory"

    def __init__(self, path: str, limits: Limits = Limits()) -> None:
        if not os.path.isdir(path):
            raise ArchiveError(f"{path} is not a directory archive (not a directory)")
        self._root = os.path.realpath(path)
        super().__init__(path, scan_directory(self._root, limits))

    def open(self, name: str) -> BinaryIO:
        path = os.path.join(self._root, self._known(name))
        # O_NOFOLLOW: the file may have been swapped for a link since the scan.
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError as err:
            raise ArchiveError(f"{name}: cannot open ({err.strerror})") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ArchiveError(f"{name}: not a regular file")
        return os.fdopen(fd, "rb")


def scan_directory(root: str, limits: Limits = Limits()) -> dict[str, int]:
    """Walk a directory archive without following links; return sizes by name."""
    sizes: dict[str, int] = {}
    total = 0
    pending = [("", root)]
    while pending:
        prefix, folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                name = prefix + entry.name
                label = f"member {show(name)}"
                if entry.is_symlink():
                    raise ArchiveError(f"{label} is a symbolic link")
                if entry.is_dir(follow_symlinks=False):
                    check_member_name(name, label="directory")
                    pending.append((name + "/", entry.path))
                    continue
                if not entry.is_file(follow_symlinks=False):
                    raise ArchiveError(f"{label} is a special file")
                check_member_name(name)
                if not os.path.realpath(entry.path).startswith(root + os.sep):
                    raise ArchiveError(f"{label} resolves outside the archive")
                size = entry.stat(follow_symlinks=False).st_size
                if size > limits.max_member_bytes:
                    raise ArchiveError(f"{label} is {size} bytes, more than the "
                                       f"limit of {limits.max_member_bytes}")
                total += size
                if total > limits.max_total_bytes:
                    raise ArchiveError(f"{label} takes the archive past "
                                       f"{limits.max_total_bytes} bytes")
                sizes[name] = size
    return sizes
