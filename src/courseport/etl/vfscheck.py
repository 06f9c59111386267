"""An upload must leave every course file it touches readable.

A course file is a ``FileMetadataEntity`` (its size) and ``FileDataEntity``
shards (see courses.vfs). A datastore upload writes those rows as it writes
any other, so an archive could leave a file whose metadata and data
disagree (a row edited, one kind left out with ``--exclude_types``): the
course could then read neither that file nor, for ``/course.yaml``,
itself, and every later command on it would fail. The upload is refused
instead, naming the file.

The check runs once every row has been staged: on a site that writes in one
transaction, against what the site then holds (the upload's own rows
included); elsewhere, before anything is written, against the archive's
rows laid over what the site holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..archive import iter_rows, kind_member
from ..courses.vfs import MAX_FILE_SIZE, shard_names
from ..datastore import Key
from ..sites import RowDecoder, RowError
from .errors import EtlError

META, DATA = "FileMetadataEntity", "FileDataEntity"
_MISSING = object()


@dataclass
class ArchiveFiles:
    """What the archive's rows of the two kinds say: sizes by path, data lengths by shard name."""

    sizes: dict[str, object] = field(default_factory=dict)
    lengths: dict[str, int] = field(default_factory=dict)

    def paths(self) -> set[str]:
        out = set(self.sizes)
        for name in self.lengths:
            head, sep, tail = name.rpartition(":shard:")
            out.add(head if sep and tail.isdigit() else name)
        return out


def read_archive_files(reader, members: dict[str, str], namespace: str) -> ArchiveFiles:
    """The rows of ``members`` (kind -> member name) of the two kinds; keys that are not paths are no files."""
    found = ArchiveFiles()
    for kind, member in members.items():
        decoder = RowDecoder(kind, namespace)
        with reader.open(member) as stream:
            for number, row in enumerate(iter_rows(stream, member), 1):
                try:
                    entity = decoder.decode(row)
                except (RowError, ValueError) as exc:
                    raise EtlError(f"{member}: row {number} {exc}") from None
                name = entity.key.name
                if entity.key.parent is not None or not isinstance(name, str) or not name.startswith("/"):
                    continue
                if kind == META:
                    found.sizes[name] = entity.get("size")
                else:
                    data = entity.get("data")
                    found.lengths[name] = len(data) if isinstance(data, (bytes, str)) else 0
    return found


#: the rows a site holds: ``lookup(keys)`` gives each entity's properties, or None where absent
Lookup = Callable[[list[Key]], list]


def check_files(paths: set[str], namespace: str, lookup: Lookup, overlay: ArchiveFiles | None = None,
                member: str = kind_member(META)) -> None:
    """EtlError naming the first of ``paths`` that the course could not read.

    ``overlay``: rows about to be written, taken before what ``lookup`` finds.
    """
    for path in sorted(paths):
        size = _MISSING
        if overlay is not None and path in overlay.sizes:
            size = overlay.sizes[path]
        else:
            (meta,) = lookup([Key(META, path, namespace=namespace)])
            if meta is not None:
                size = meta.get("size")
        if size is _MISSING:
            continue  # no metadata: no file (data alone is never read)
        if size is None:
            size = 0  # what the course reads
        if type(size) is not int or not 0 <= size <= MAX_FILE_SIZE:
            raise EtlError(f"{member}: course file {path!r} would have size {size!r}, not 0 to "
                           f"{MAX_FILE_SIZE:,} bytes: fix its FileMetadataEntity row")
        names = shard_names(path, size)
        lengths: list[int | None] = []
        wanted = [name for name in names if overlay is None or name not in overlay.lengths]
        stored = dict(zip(wanted, lookup([Key(DATA, name, namespace=namespace) for name in wanted]))) \
            if wanted else {}
        for name in names:
            if overlay is not None and name in overlay.lengths:
                lengths.append(overlay.lengths[name])
            else:
                row = stored.get(name)
                data = row.get("data") if row is not None else None
                lengths.append(None if row is None else len(data) if isinstance(data, (bytes, str)) else 0)
        if None in lengths:
            missing = names[lengths.index(None)]
            raise EtlError(f"{member}: course file {path!r} ({size:,} bytes) would have no FileDataEntity row "
                           f"{missing!r}, so the course could not read it: upload its data too, or leave "
                           "both kinds out (--exclude_types FileDataEntity,FileMetadataEntity)")
        total = sum(lengths)  # type: ignore[arg-type]
        if total != size:
            raise EtlError(f"{member}: course file {path!r} would have {total:,} bytes of data but a size of "
                           f"{size:,} in its metadata, so the course could not read it: fix the "
                           "FileMetadataEntity and FileDataEntity rows, or leave both kinds out "
                           "(--exclude_types FileDataEntity,FileMetadataEntity)")
