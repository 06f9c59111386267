"""A zip archive as plain fields, to change any of them and write the bytes again.

``parse`` reads a zip (as any writer made it: stored or deflated, with or
without data descriptors) into :class:`Entry` objects; ``build`` writes
entries back: each entry's local header, data, optional data descriptor,
then the central directory and its end record. ``local`` and ``central``
override single header fields of one side only, e.g.
``entry.local["crc"] = 0`` makes the local header disagree with the
central directory.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass, field

LOCAL = struct.Struct("<IHHHHHIIIHH")
LOCAL_FIELDS = ("signature", "version", "flags", "method", "time", "date", "crc", "csize", "usize",
                "name_len", "extra_len")
CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
CENTRAL_FIELDS = ("signature", "made_by", "version", "flags", "method", "time", "date", "crc", "csize",
                  "usize", "name_len", "extra_len", "comment_len", "disk", "internal", "external", "offset")
END = struct.Struct("<IHHHHIIH")
DESCRIPTOR_SIGNATURE = 0x08074B50


@dataclass
class Entry:
    name: bytes
    data: bytes  # as stored (compressed)
    method: int = 0
    flags: int = 0
    crc: int = 0
    csize: int = 0
    usize: int = 0
    time: int = 0
    date: int = 0x21
    version: int = 20
    made_by: int = 0x031E
    external: int = 0o100644 << 16
    local_extra: bytes = b""
    central_extra: bytes = b""
    descriptor: bytes = b""  # written after the data (flag bit 3)
    local: dict = field(default_factory=dict)
    central: dict = field(default_factory=dict)

    @classmethod
    def stored(cls, name: str, content: bytes, **kw) -> "Entry":
        import zlib

        crc = zlib.crc32(content)
        return cls(name.encode(), content, crc=crc, csize=len(content), usize=len(content), **kw)


def parse(data: bytes) -> list[Entry]:
    """The entries of a zip (in central directory order)."""
    entries = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            fields = dict(zip(LOCAL_FIELDS, LOCAL.unpack_from(data, info.header_offset)))
            start = info.header_offset + LOCAL.size
            name = data[start:start + fields["name_len"]]
            extra = data[start + fields["name_len"]:start + fields["name_len"] + fields["extra_len"]]
            body_at = start + fields["name_len"] + fields["extra_len"]
            body = data[body_at:body_at + info.compress_size]
            descriptor = b""
            if fields["flags"] & 0x08:
                after = body_at + info.compress_size
                length = 4 if data[after:after + 4] == struct.pack("<I", DESCRIPTOR_SIGNATURE) else 0
                zip64 = info.file_size >= 0xFFFFFFFF or info.compress_size >= 0xFFFFFFFF or \
                    fields["csize"] == 0xFFFFFFFF
                length += 20 if zip64 else 12
                descriptor = data[after:after + length]
            entries.append(Entry(
                name=name, data=body, method=info.compress_type, flags=info.flag_bits, crc=info.CRC,
                csize=info.compress_size, usize=info.file_size, time=fields["time"], date=fields["date"],
                version=fields["version"], external=info.external_attr, local_extra=extra,
                central_extra=info.extra, descriptor=descriptor,
                made_by=(info.create_system << 8) | info.create_version,
            ))
    return entries


def build(entries: list[Entry], comment: bytes = b"") -> bytes:
    out = io.BytesIO()
    offsets = []
    for entry in entries:
        offsets.append(out.tell())
        descriptor = entry.flags & 0x08
        values = {
            "signature": 0x04034B50, "version": entry.version, "flags": entry.flags,
            "method": entry.method, "time": entry.time, "date": entry.date,
            "crc": 0 if descriptor else entry.crc, "csize": 0 if descriptor else entry.csize,
            "usize": 0 if descriptor else entry.usize, "name_len": len(entry.name),
            "extra_len": len(entry.local_extra),
        }
        if descriptor and entry.local_extra[:2] == b"\x01\x00":
            values["csize"] = values["usize"] = 0xFFFFFFFF
        values.update(entry.local)
        out.write(LOCAL.pack(*(values[f] & (0xFFFFFFFF if f in ("signature", "crc", "csize", "usize") else 0xFFFF)
                               for f in LOCAL_FIELDS)))
        out.write(entry.name + entry.local_extra + entry.data + entry.descriptor)
    start = out.tell()
    for entry, offset in zip(entries, offsets):
        values = {
            "signature": 0x02014B50, "made_by": entry.made_by, "version": entry.version,
            "flags": entry.flags, "method": entry.method, "time": entry.time, "date": entry.date,
            "crc": entry.crc, "csize": entry.csize, "usize": entry.usize, "name_len": len(entry.name),
            "extra_len": len(entry.central_extra), "comment_len": 0, "disk": 0, "internal": 0,
            "external": entry.external, "offset": offset,
        }
        values.update(entry.central)
        out.write(CENTRAL.pack(*(values[f] & (0xFFFFFFFF if f in ("signature", "crc", "csize", "usize", "external",
                                                                  "offset") else 0xFFFF)
                                 for f in CENTRAL_FIELDS)))
        out.write(entry.name + entry.central_extra)
    size = out.tell() - start
    out.write(END.pack(0x06054B50, 0, 0, len(entries), len(entries), size, start, len(comment)) + comment)
    return out.getvalue()


def descriptor_for(entry: Entry, signature: bool = True, zip64: bool = False) -> bytes:
    """The data descriptor that belongs after ``entry``'s data."""
    layout = "<IQQ" if zip64 else "<III"
    body = struct.pack(layout, entry.crc, entry.csize, entry.usize)
    return (struct.pack("<I", DESCRIPTOR_SIGNATURE) if signature else b"") + body


def zip64_extra(usize: int, csize: int) -> bytes:
    return struct.pack("<HHQQ", 1, 16, usize, csize)


def streamed_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED,
                 force_zip64: bool = False) -> bytes:
    """A zip as Python writes it to a stream it cannot seek: every member with a data descriptor."""

    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.buffer = io.BytesIO()

        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            return self.buffer.write(data)

    sink = Unseekable()
    with zipfile.ZipFile(sink, "w", compression) as zf:
        for name, data in members.items():
            with zf.open(name, "w", force_zip64=force_zip64) as member:
                member.write(data)
    return sink.buffer.getvalue()
