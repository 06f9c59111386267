"""``manifest.json``: the list of members, the raw course string, the version.

Course Builder writes it with sorted keys, ``indent=2`` and Python 2's item
separator ``", "`` (so lines end in ``", "``), entries sorted by path, no
trailing newline (spec §1.4). ``rows`` and ``sha256`` are courseport's own
optional additions; Course Builder's reader ignores them.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .. import _json
from .errors import ArchiveError, show
from .members import FILES_PREFIX, MODELS_PREFIX, is_file_member, member_kind
from .names import check_member_name

MANIFEST_NAME = "manifest.json"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PREFIXES = (FILES_PREFIX, MODELS_PREFIX)


@dataclass
class ManifestEntry:
    """One member the manifest announces."""

    path: str
    is_draft: bool | None = False
    rows: int | None = None
    sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"is_draft": self.is_draft, "path": self.path}
        if self.rows is not None:
            out["rows"] = self.rows
        if self.sha256 is not None:
            out["sha256"] = self.sha256
        return out


@dataclass
class Manifest:
    """The parsed ``manifest.json``; ``entries`` are kept sorted by path."""

    raw: str = ""
    version: str = ""
    entries: list[ManifestEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        entries = sorted(self.entries, key=_path)
        for before, after in zip(entries, entries[1:]):
            if before.path == after.path:
                raise ArchiveError(f"manifest.json: duplicate entry {show(after.path)}")
        self.entries = entries

    def kinds(self) -> list[str]:
        """Kind names of the ``models/<Kind>.json`` entries, sorted."""
        return [kind for e in self.entries if (kind := member_kind(e.path))]

    def files(self) -> list[ManifestEntry]:
        """Entries under ``files/``."""
        return [e for e in self.entries if is_file_member(e.path)]

    def entry(self, path: str) -> ManifestEntry | None:
        """The entry for ``path``, or None."""
        return next((e for e in self.entries if e.path == path), None)

    def add(self, entry: ManifestEntry) -> None:
        """Add ``entry`` in path order, replacing any entry with the same path."""
        for i, old in enumerate(self.entries):
            if old.path == entry.path:
                self.entries[i] = entry
                return
        bisect.insort(self.entries, entry, key=_path)

    def to_json(self) -> bytes:
        """Serialise in Course Builder's layout."""
        doc = {
            "entities": [e.to_dict() for e in sorted(self.entries, key=_path)],
            "raw": self.raw,
            "version": self.version,
        }
        text = _json.dumps(doc, sort_keys=True, indent=2, separators=(", ", ": "))
        return text.encode("ascii")

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse and validate ``manifest.json`` bytes."""
        try:
            doc = _json.check_depth(_json.STRICT.decode(data.decode("utf-8")))
        except UnicodeDecodeError as err:
            raise ArchiveError(f"{MANIFEST_NAME}: not valid UTF-8 ({err.reason})") from None
        except json.JSONDecodeError as err:
            raise ArchiveError(f"{MANIFEST_NAME}: not valid JSON ({err})") from None
        except (ValueError, RecursionError) as err:  # NaN, nesting, a number too long
            raise ArchiveError(f"{MANIFEST_NAME}: {_json.describe_failure(err)}") from None
        if not isinstance(doc, dict):
            raise ArchiveError(f"{MANIFEST_NAME}: top level is not a JSON object")
        entities = doc.get("entities")
        if not isinstance(entities, list):
            raise ArchiveError(f"{MANIFEST_NAME}: 'entities' is missing or not a list")
        raw = _string_field(doc, "raw")
        version = _string_field(doc, "version")
        entries = [_parse_entry(item, i) for i, item in enumerate(entities)]
        return cls(raw=raw, version=version, entries=entries)


def _path(entry: ManifestEntry) -> str:
    return entry.path


def _string_field(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key, "")
    if not isinstance(value, str):
        raise ArchiveError(f"{MANIFEST_NAME}: '{key}' is not a string")
    return value


def _parse_entry(item: Any, index: int) -> ManifestEntry:
    where = f"{MANIFEST_NAME}: entity {index}"
    if not isinstance(item, dict):
        raise ArchiveError(f"{where} is not a JSON object")
    path = item.get("path")
    if not isinstance(path, str):
        raise ArchiveError(f"{where} has no string 'path'")
    where = f"{MANIFEST_NAME}: entry {show(path)}"
    try:
        check_member_name(path, label="entry")
    except ArchiveError as err:
        raise ArchiveError(f"{MANIFEST_NAME}: {err}") from None
    if not path.startswith(_PREFIXES):
        raise ArchiveError(f"{where} is neither under files/ nor under models/")
    is_draft = item.get("is_draft")
    if is_draft is not None and not isinstance(is_draft, bool):
        raise ArchiveError(f"{where}: 'is_draft' is not true, false or null")
    rows = item.get("rows")
    if rows is not None and (type(rows) is not int or rows < 0):
        raise ArchiveError(f"{where}: 'rows' is not a non-negative integer")
    sha256 = item.get("sha256")
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
        raise ArchiveError(f"{where}: 'sha256' is not 64 lowercase hex digits")
    return ManifestEntry(path=path, is_draft=is_draft, rows=rows, sha256=sha256)
