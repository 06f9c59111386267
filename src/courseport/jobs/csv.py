"""``JsonToCsv``: a ``models/<Kind>.json`` member as one CSV (spec §7.3's CsvGenerator).

``courseport run courseport.jobs.csv.JsonToCsv /sample local --disable_remote
--job_args 'archive.zip models/Student.json students.csv'``

Members holding JSON in a string (``data``, ``scores``, ``value`` ...) are
expanded into ``parent_child`` columns; columns are sorted, numbers in
names compared as numbers.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path
from typing import Any, Iterator

from .. import _json
from ..archive import iter_rows, open_reader
from .base import Job, JobError


# a JSON string (kept as it is) or a comma before a closing bracket (dropped)
_TRAILING_COMMA = re.compile(r'("(?:[^"\\]|\\.)*")|,\s*(?=[}\]])')


def _loads_lenient(text: str) -> Any:
    """JSON, tolerating trailing commas as Course Builder's lenient reader did.

    ValueError also where it nests too deeply to flatten (kept as a string then).
    """
    try:
        try:
            value = json.loads(text)
        except ValueError:
            value = json.loads(_TRAILING_COMMA.sub(lambda m: m.group(1) or "", text))
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if _json.depth_exceeded(value):
        raise ValueError("nested too deeply")
    return value


def flatten(row: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested objects and JSON-in-string members become ``a_b_c`` columns.

    A string that is not JSON (even leniently, trailing commas aside) is kept.
    """
    out: dict[str, str] = {}
    for name, value in row.items():
        column = f"{prefix}{name}"
        if isinstance(value, str) and value[:1] in "{[":
            try:
                value = _loads_lenient(value)
            except ValueError:
                pass
        if isinstance(value, dict):
            out.update(flatten(value, column + "_"))
        elif isinstance(value, (list, bool)) or value is None:
            out[column] = "" if value is None else json.dumps(value)
        else:
            out[column] = str(value)
    return out


def _natural(column: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", column)]


class JsonToCsv(Job):
    """``--job_args='<archive> <member> <out.csv>'``, or ``'<file.json> <out.csv>'``."""

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("paths", nargs="+", help="ARCHIVE MEMBER OUT.csv, or FILE.json OUT.csv")

    def _rows(self) -> tuple[Iterator[dict], Path, Any]:
        assert self.args is not None
        paths = self.args.paths
        if len(paths) == 3:
            reader = open_reader(Path(paths[0]))
            member = paths[1]
            if not reader.has(member):
                reader.close()
                raise JobError(f"{paths[0]} has no member {member}")
            stream = reader.open(member)
            return iter_rows(stream, member), Path(paths[2]), (stream, reader)
        if len(paths) == 2:
            source = Path(paths[0])
            if not source.is_file():
                raise JobError(f"no such file {source}")
            stream = open(source, "rb")
            return iter_rows(stream, str(source)), Path(paths[1]), (stream,)
        raise JobError("expected ARCHIVE MEMBER OUT.csv, or FILE.json OUT.csv")

    def main(self) -> int:
        assert self.args is not None  # set by run(); _rows() needs it too
        rows, target, handles = self._rows()
        try:
            if target.exists():
                raise JobError(f"{target} already exists: name a new file")
            columns: set[str] = set()
            tmp = target.with_name(target.name + ".rows")
            count = 0
            # two passes over a spill file keep memory flat: the header needs every column
            with open(tmp, "w", encoding="utf-8") as spill:
                for row in rows:
                    if _json.depth_exceeded(row):  # flatten() recurses once a level
                        raise JobError(f"{' '.join(self.args.paths[:-1])}: row {count + 1} nests more than "
                                       f"{_json.MAX_DEPTH} levels: it cannot be made columns")
                    flat = flatten(row)
                    columns.update(flat)
                    spill.write(json.dumps(flat) + "\n")
                    count += 1
            header = sorted(columns, key=_natural)
            with open(tmp, encoding="utf-8") as spill, open(target, "w", newline="", encoding="utf-8") as out:
                writer = csv.DictWriter(out, fieldnames=header, restval="")
                writer.writeheader()
                for line in spill:
                    writer.writerow(json.loads(line))
            tmp.unlink()
        finally:
            for handle in handles:
                handle.close()
        sys.stdout.write(f"wrote {count:,} rows, {len(header)} columns to {target}\n")
        return count
