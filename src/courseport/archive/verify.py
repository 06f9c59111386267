"""Integrity check of a whole archive against its manifest."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from .errors import ArchiveError
from .framing import count_rows
from .manifest import MANIFEST_NAME, Manifest
from .members import is_models_member, member_kind
from .readers import ArchiveReader, open_reader
from .streams import HashingReader


@dataclass
class MemberCheck:
    """What was found in one member."""

    name: str
    bytes: int
    sha256: str
    rows: int | None = None  # for models/<Kind>.json members


@dataclass
class VerifyReport:
    """Problems make an archive bad; warnings (e.g. absent listed members,
    which Course Builder's own manifests have) do not."""

    path: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    members: dict[str, MemberCheck] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def rows(self) -> dict[str, int]:
        """Row counts by kind."""
        return {member_kind(m.name) or m.name: m.rows for m in self.members.values()
                if m.rows is not None}


def verify_archive(path: str | os.PathLike[str], archive_type: str | None = None,
                   **limits: Any) -> VerifyReport:
    """Open with the guards, then check every member against the manifest."""
    report = VerifyReport(os.fspath(path))
    try:
        reader = open_reader(path, archive_type, **limits)
    except ArchiveError as err:
        report.problems.append(str(err))
        return report
    with reader:
        manifest = _manifest(reader, report)
        for name in reader.names():
            if name != MANIFEST_NAME:
                _check(reader, name, manifest, report)
        if manifest is not None:
            for entry in manifest.entries:
                if not reader.has(entry.path):
                    report.warnings.append(f"{entry.path}: listed in manifest.json "
                                           "but absent from the archive")
    return report


def _manifest(reader: ArchiveReader, report: VerifyReport) -> Manifest | None:
    try:
        return reader.manifest()
    except ArchiveError as err:
        report.problems.append(str(err))
        return None


def _check(reader: ArchiveReader, name: str, manifest: Manifest | None,
           report: VerifyReport) -> None:
    entry = manifest.entry(name) if manifest is not None else None
    if manifest is not None and entry is None:
        report.problems.append(f"{name}: in the archive but not listed in manifest.json")
    try:
        check = _scan(reader, name, report)
    except ArchiveError as err:
        report.problems.append(str(err))
        return
    report.members[name] = check
    if entry is None:
        return
    if entry.rows is not None:
        if check.rows is None:
            report.warnings.append(f"{name}: manifest gives rows for a member that "
                                   "is not models/<Kind>.json")
        elif check.rows != entry.rows:
            report.problems.append(f"{name}: has {check.rows} rows, manifest.json "
                                   f"says {entry.rows}")
    if entry.sha256 is not None and entry.sha256 != check.sha256:
        report.problems.append(f"{name}: sha256 {check.sha256} does not match "
                               f"manifest.json's {entry.sha256}")


def _scan(reader: ArchiveReader, name: str, report: VerifyReport) -> MemberCheck:
    with reader.open(name) as stream:
        hashing = HashingReader(stream)
        rows = None
        if member_kind(name):
            rows = count_rows(hashing, name)
        elif is_models_member(name):
            report.warnings.append(f"{name}: not a models/<Kind>.json member; not parsed")
        hashing.drain()
    return MemberCheck(name, hashing.bytes, hashing.sha256.hexdigest(), rows)
