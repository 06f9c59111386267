"""The end of a zip file: central directory and end records.

Only what resume needs: find where the central directory starts in a zip
that has no archive comment, and rewrite the directory without some members.
Record layouts as in zipfile (PKWARE APPNOTE 4.3.12-4.3.16).
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from .errors import ArchiveError

_EOCD = struct.Struct("<4s4H2LH")          # end of central directory, 22 bytes
_LOCATOR = struct.Struct("<4sLQL")          # zip64 end locator, 20 bytes
_EOCD64 = struct.Struct("<4sQ2H2L4Q")      # zip64 end record, 56 bytes
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # central directory file header, 46 bytes
_EOCD_SIG, _LOCATOR_SIG, _EOCD64_SIG = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"
_CENTRAL_SIG = b"PK\x01\x02"
_COUNT_LIMIT = 0xFFFF
_ZIP64_LIMIT = (1 << 31) - 1  # zipfile's threshold for zip64 end records


def directory_span(f: BinaryIO, end: int) -> tuple[int, int, int]:
    """(offset, size, count) of the central directory of a comment-less zip
    whose end records finish at ``end``."""
    if end < _EOCD.size:
        raise ArchiveError("zip end record missing (file too short)")
    f.seek(end - _EOCD.size)
    sig, _, _, _, count, size, offset, comment = _EOCD.unpack(f.read(_EOCD.size))
    if sig != _EOCD_SIG or comment:
        raise ArchiveError("zip end record missing or followed by a comment")
    locator_at = end - _EOCD.size - _LOCATOR.size
    if locator_at >= 0:
        f.seek(locator_at)
        lsig, _, record_at, _ = _LOCATOR.unpack(f.read(_LOCATOR.size))
        if lsig == _LOCATOR_SIG:
            f.seek(record_at)
            fields = _EOCD64.unpack(f.read(_EOCD64.size))
            if fields[0] != _EOCD64_SIG:
                raise ArchiveError("zip64 end record missing")
            count, size, offset = fields[7], fields[8], fields[9]
    return offset, size, count


def end_records(count: int, size: int, offset: int) -> bytes:
    """End records for a central directory, zip64 when needed (as zipfile)."""
    out = b""
    if count > _COUNT_LIMIT or size > _ZIP64_LIMIT or offset > _ZIP64_LIMIT:
        out += _EOCD64.pack(_EOCD64_SIG, 44, 45, 45, 0, 0, count, count, size, offset)
        out += _LOCATOR.pack(_LOCATOR_SIG, 0, offset + size, 1)
        count, size, offset = min(count, 0xFFFF), min(size, 0xFFFFFFFF), min(offset, 0xFFFFFFFF)
    return out + _EOCD.pack(_EOCD_SIG, 0, 0, count, count, size, offset, 0)


def split_directory(data: bytes) -> list[tuple[str, bytes]]:
    """Split central directory bytes into (member name, record bytes)."""
    records = []
    pos = 0
    while pos < len(data):
        fields = _CENTRAL.unpack_from(data, pos)
        if fields[0] != _CENTRAL_SIG:
            raise ArchiveError(f"zip central directory is corrupt at offset {pos}")
        flags, name_len, extra_len, comment_len = fields[5], fields[12], fields[13], fields[14]
        start = pos + _CENTRAL.size
        raw_name = data[start:start + name_len]
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437")
        length = _CENTRAL.size + name_len + extra_len + comment_len
        records.append((name, data[pos:pos + length]))
        pos += length
    return records


def drop_members(f: BinaryIO, end: int, drop: set[str], cut: int | None) -> int:
    """Rewrite the directory of a comment-less zip without the ``drop`` members.

    The directory is written at ``cut`` (the header offset of a dropped member
    that was last in the file) or where it was. Returns the new end.
    """
    offset, size, _ = directory_span(f, end)
    f.seek(offset)
    kept = [record for name, record in split_directory(f.read(size)) if name not in drop]
    directory = b"".join(kept)
    start = offset if cut is None else cut
    f.seek(start)
    f.write(directory)
    f.write(end_records(len(kept), len(directory), start))
    f.truncate()
    return f.tell()
