"""Course Builder archives: containers, manifest, member framing, checks.

Only the standard library, ``courseport._json`` and ``courseport.errors`` are used here.
"""

from .errors import ArchiveError
from .framing import NotLineLayout, RowsWriter, count_rows, iter_rows, line_chunks
from .manifest import MANIFEST_NAME, Manifest, ManifestEntry
from .members import file_member, kind_member, member_file, member_kind
from .names import check_member_name
from .readers import (
    ArchiveReader,
    DirectoryArchiveReader,
    Limits,
    ZipArchiveReader,
    open_reader,
)
from .verify import MemberCheck, VerifyReport, verify_archive
from .writers import ArchiveWriter, check_target, target_lock

__all__ = [
    "MANIFEST_NAME",
    "ArchiveError",
    "ArchiveReader",
    "ArchiveWriter",
    "DirectoryArchiveReader",
    "Limits",
    "Manifest",
    "ManifestEntry",
    "MemberCheck",
    "NotLineLayout",
    "RowsWriter",
    "VerifyReport",
    "ZipArchiveReader",
    "check_member_name",
    "check_target",
    "target_lock",
    "count_rows",
    "iter_rows",
    "file_member",
    "kind_member",
    "member_file",
    "member_kind",
    "line_chunks",
    "open_reader",
    "verify_archive",
]
