"""Course Builder archives: containers, manifest, member framing, checks.

Only the standard library and ``courseport._json`` are used here.
"""

from .errors import ArchiveError
from .framing import RowsWriter, count_rows, iter_rows
from .manifest import MANIFEST_NAME, Manifest, ManifestEntry, kind_of
from .names import check_member_name
from .readers import (
    ArchiveReader,
    DirectoryArchiveReader,
    Limits,
    ZipArchiveReader,
    open_reader,
)
from .verify import MemberCheck, VerifyReport, verify_archive
from .writers import ArchiveWriter

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
    "RowsWriter",
    "VerifyReport",
    "ZipArchiveReader",
    "check_member_name",
    "count_rows",
    "iter_rows",
    "kind_of",
    "open_reader",
    "verify_archive",
]
