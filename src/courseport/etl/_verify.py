"""``courseport verify --archive_path X``: re-read an archive and say what is wrong.

The archive layer checks the container, the manifest, every member's
framing, row counts and checksums; on top of that the course files are
loaded as a course would load them and every row is typed by its kind's
schema, as an upload would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..archive import ArchiveError, VerifyReport, file_member, iter_rows, member_kind, open_reader, verify_archive
from ..courses.coursejson import load_course_json
from ..courses.settings import load_course_yaml
from ..sites import RowDecoder

_COURSE_FILES = {
    file_member("/data/course.json"): lambda data, name: load_course_json(data, source=name),
    file_member("/course.yaml"): lambda data, name: load_course_yaml(data),
}


@dataclass
class Verification:
    archive: VerifyReport
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.archive.ok and not self.problems

    def lines(self) -> list[str]:
        out = [f"{self.archive.path}: {'OK' if self.ok else 'BROKEN'}"]
        for name, check in sorted(self.archive.members.items()):
            rows = f", {check.rows:,} rows" if check.rows is not None else ""
            out.append(f"  {name}: {check.bytes:,} bytes{rows}")
        out += [f"  warning: {w}" for w in self.archive.warnings]
        out += [f"  problem: {p}" for p in self.archive.problems + self.problems]
        return out


def verify(path: str | os.PathLike[str], archive_type: str | None = None) -> Verification:
    report = verify_archive(path, archive_type)
    result = Verification(report)
    if not report.ok:
        return result
    with open_reader(path, archive_type) as reader:
        for name in reader.names():
            check = _COURSE_FILES.get(name)
            if check is not None:
                try:
                    check(reader.read(name), name)
                except ValueError as exc:
                    result.problems.append(str(exc))
            kind = member_kind(name)
            if kind is not None:
                _check_rows(reader, name, kind, result)
    return result


def _check_rows(reader, name: str, kind: str, result: Verification) -> None:
    decoder = RowDecoder(kind, "")
    try:
        with reader.open(name) as stream:
            for number, row in enumerate(iter_rows(stream, name), 1):
                try:
                    decoder.decode(row)
                except ValueError as exc:
                    result.problems.append(f"{name}: row {number} {exc}")
                    return
    except ArchiveError as exc:
        result.problems.append(str(exc))
