"""What a download records beside its partial archive, so that ``--resume``
continues the same download or refuses.

The record (``<archive>.partial.manifest``, readable by its owner only) holds
what was asked (type, course, privacy), the privacy secret when courseport
drew it at random (a resume must pseudonymise with the same one, or the
kinds written after it would join nothing written before), a check value of
a secret the user gave, the store's change count for the course when the
download began, each finished member's rows and checksum, and, for a kind
read by several readers (``--readers``), its key ranges and which of them
are fetched already (each into a file of its own beside the partial archive,
so that a resume fetches only the others).

A resume whose request differs, whose secret differs, or whose course
changed since the download began is refused before anything is written.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..archive.fsutil import read_small_file, remove_file, write_atomically
from ..models.privacy import hmac_sha256_hex
from ..sites import CourseInfo
from .args import EtlArgs
from .errors import EtlError

FORMAT = "courseport-download/2"
_CHECK_MESSAGE = "courseport --resume secret check"
_RESTART = "start it again with --force_overwrite"


def record_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial.manifest")


@dataclass
class DownloadRecord:
    type: str
    course: str
    namespace: str
    privacy: bool
    secret: str | None = None  # kept only when drawn at random
    secret_check: str | None = None
    changes: int | None = None
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: a kind being read by several readers: its key ranges, and the rows of each one fetched
    ranges: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def begin(cls, args: EtlArgs, course: CourseInfo, changes: int | None) -> DownloadRecord:
        secret = None
        if args.privacy:
            secret = args.privacy_secret if args.privacy_secret is not None else str(secrets.randbits(128))
        record = cls(args.type, course.raw, course.namespace, args.privacy, changes=changes)
        if secret is not None:
            record.secret_check = hmac_sha256_hex(secret, _CHECK_MESSAGE)
            if args.privacy_secret is None:
                record.secret = secret
        return record

    def to_json(self) -> bytes:
        data = {"format": FORMAT, **self.__dict__}
        return json.dumps(data).encode("utf-8")

    @classmethod
    def load(cls, path: Path) -> DownloadRecord | None:
        """The record beside ``path``'s partial; None where there is none."""
        raw = read_small_file(str(record_path(path)))
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError("unknown format")
            record = cls(
                type=_typed(data, "type", str), course=_typed(data, "course", str),
                namespace=_typed(data, "namespace", str), privacy=_typed(data, "privacy", bool),
                secret=_typed(data, "secret", str, optional=True),
                secret_check=_typed(data, "secret_check", str, optional=True),
                changes=_typed(data, "changes", int, optional=True), members=_typed(data, "members", dict),
                ranges=_typed(data, "ranges", dict, optional=True) or {},
            )
        except (ValueError, TypeError, RecursionError) as exc:
            raise EtlError(
                f"cannot resume: {record_path(path)} is unreadable ({exc}); {_RESTART}"
            ) from None
        return record

    def save(self, path: Path) -> None:
        write_atomically(str(record_path(path)), self.to_json())

    @staticmethod
    def remove(path: Path) -> None:
        remove_file(str(record_path(path)))

    def continue_with(self, args: EtlArgs, course: CourseInfo, changes: int | None) -> None:
        """Refuse ``args`` that would not continue this download (see the module's doc)."""
        if (self.type, self.course, self.namespace) != (args.type, course.raw, course.namespace):
            raise EtlError(
                f"--resume: the partial archive is a download of {self.type} {self.course!r}, not of "
                f"{args.type} {course.raw!r}: resume with the same arguments, or {_RESTART}"
            )
        if self.privacy != args.privacy:
            had = "with" if self.privacy else "without"
            raise EtlError(
                f"--resume: the interrupted download ran {had} --privacy: resume it {had} --privacy, or {_RESTART}"
            )
        if self.privacy:
            if args.privacy_secret is None:
                if self.secret is None:
                    raise EtlError(
                        "--resume: the interrupted download used a --privacy_secret of its own: "
                        "pass the same one, or its pseudonyms would not join the rest"
                    )
            else:
                if hmac_sha256_hex(args.privacy_secret, _CHECK_MESSAGE) != self.secret_check:
                    raise EtlError(
                        "--resume: this --privacy_secret is not the one the interrupted download used, "
                        f"so its pseudonyms would not join the rest: pass the same secret, or {_RESTART}"
                    )
        if self.changes is not None and changes is not None and changes != self.changes:
            raise EtlError(
                f"--resume: the data of course {course.slug} changed since this download started, "
                f"so the rest would not match what is in the partial archive; {_RESTART}"
            )

    def secret_for(self, args: EtlArgs) -> str | None:
        if not self.privacy:
            return None
        return args.privacy_secret if args.privacy_secret is not None else self.secret


def _typed(data: dict, name: str, kind: type, *, optional: bool = False) -> Any:
    """``data[name]``, which must be a ``kind`` (or missing or null where ``optional``)."""
    value = data.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"bad {name!r}")
    return value
