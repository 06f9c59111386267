"""Course Builder's etl command line (seed page, spec §1.1), parsed and validated.

``courseport MODE TYPE COURSE_URL_PREFIX [APPLICATION_ID] SERVER [options]``

Every rule is checked here, before anything is opened or written.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, Sequence

from ..errors import UserError

MODES = ("delete", "download", "run", "upload")
TYPES = ("course", "datastore")
ARCHIVE_TYPES = ("zip", "directory")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_BATCH_SIZE = 20
MAX_BATCH_SIZE = 1_000_000
MAX_READERS = 64
DEFAULT_PORT = 8081
#: the privacy secret, read when --privacy is given without --privacy_secret (an
#: environment keeps it out of the process list, where a flag is seen by all)
ENV_PRIVACY_SECRET = "COURSEPORT_PRIVACY_SECRET"
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


class EtlUsageError(UserError, ValueError):
    """Arguments that break one of etl's rules."""


@dataclass
class EtlArgs:
    mode: str
    type: str
    course_url_prefix: str
    server: str
    application_id: str | None = None
    archive_path: Path | None = None
    archive_type: str = "zip"
    batch_size: int = DEFAULT_BATCH_SIZE
    datastore_types: list[str] = field(default_factory=list)
    exclude_types: list[str] = field(default_factory=list)
    disable_remote: bool = False
    force_overwrite: bool = False
    internal: bool = False
    job_args: list[str] = field(default_factory=list)
    log_level: str = "INFO"
    no_static_files: bool = False
    port: int = DEFAULT_PORT
    ca_file: Path | None = None
    privacy: bool = False
    privacy_secret: str | None = None
    resume: bool = False
    verbose: bool = False
    progress_json: bool = False
    readers: int = 1
    archive_type_given: bool = False


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage dump
        raise EtlUsageError(message)


def _flag(parser: argparse.ArgumentParser, name: str, **kwargs) -> None:
    """``--snake_case`` and its ``--dashed-spelling``."""
    spellings = [f"--{name}"]
    if "_" in name:
        spellings.append(f"--{name.replace('_', '-')}")
    parser.add_argument(*spellings, dest=name, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="courseport",
        usage="courseport {download,upload,delete,run} TYPE COURSE_URL_PREFIX [APPLICATION_ID] SERVER [options]",
        description="Course Builder's etl: download, upload, delete or run jobs on course data. "
        "SERVER is 'local' (the store under COURSEPORT_HOME), sqlite:///path/file.db, "
        "datastore://PROJECT (Google Cloud Datastore), or a courseport "
        "server: localhost[:PORT], host.name (https) or http(s)://host:port (docs/server.md).",
    )
    parser.add_argument("mode", choices=MODES, help="delete, download, run or upload")
    parser.add_argument(
        "type", help="course or datastore; for run, the dotted path of a courseport Job subclass"
    )
    parser.add_argument("course_url_prefix", help="the course's URL prefix, e.g. /sample")
    parser.add_argument(
        "targets", nargs="+", metavar="[APPLICATION_ID] SERVER",
        help="the application id (optional; must match the target's) and the server",
    )
    _flag(parser, "archive_path", help="the archive: a zip file, or a directory")
    _flag(parser, "archive_type", choices=ARCHIVE_TYPES, default=None,
          help="zip (default) or directory")
    _flag(parser, "batch_size", type=int, default=DEFAULT_BATCH_SIZE,
          help=f"entities per datastore fetch or put (default {DEFAULT_BATCH_SIZE})")
    _flag(parser, "datastore_types", default=None,
          help="datastore type (download, upload, delete): comma-separated kinds to process (default: all)")
    _flag(parser, "exclude_types", default=None,
          help="datastore type (download, upload, delete): comma-separated kinds to leave alone")
    _flag(parser, "disable_remote", action="store_true",
          help="run: skip remote set-up, for jobs that run locally")
    _flag(parser, "force_overwrite", action="store_true",
          help="download: overwrite an existing archive; upload: overwrite existing files and entities")
    _flag(parser, "internal", action="store_true", help="unlock developer flags")
    _flag(parser, "job_args", default="", help="run: arguments for the job, split on whitespace")
    _flag(parser, "log_level", default="INFO", type=str.upper, choices=LOG_LEVELS,
          help="logging level (default INFO)")
    _flag(parser, "no_static_files", action="store_true",
          help="download course: only course.yaml and data/course.json as files")
    _flag(parser, "port", type=int, default=DEFAULT_PORT,
          help=f"port of a localhost server (default {DEFAULT_PORT})")
    _flag(parser, "ca_file", type=Path, default=None,
          help="a remote server's private CA certificate (PEM), to verify its TLS certificate by")
    _flag(parser, "privacy", action="store_true",
          help="download datastore: strip or hash what identifies a learner")
    _flag(parser, "privacy_secret", default=None,
          help=f"download datastore --privacy: the HMAC secret (default: ${ENV_PRIVACY_SECRET}, "
               "else a random one per run)")
    _flag(parser, "resume", action="store_true", help="resume an interrupted download or upload")
    _flag(parser, "verbose", action="store_true", help="log every file and entity")
    _flag(parser, "readers", type=int, default=1,
          help="download from Cloud Datastore: readers that fetch one kind at once, in key ranges (default 1)")
    _flag(parser, "progress_json", action="store_true",
          help="progress as JSON lines on stderr, for programs (docs/etl.md)")
    return parser


def _split_types(value: str | None, flag: str) -> list[str]:
    if value is None:
        return []
    names = [name.strip() for name in value.split(",")]
    if not all(names):
        raise EtlUsageError(f"--{flag} has an empty kind name in {value!r}: use Kind1,Kind2")
    return names


def parse_args(argv: Sequence[str]) -> EtlArgs:
    """Parse and validate; raises EtlUsageError naming the broken rule."""
    ns = build_parser().parse_intermixed_args(list(argv))
    if len(ns.targets) > 2:
        raise EtlUsageError(
            f"too many positional arguments {ns.targets}: expected [APPLICATION_ID] SERVER"
        )
    app_id, server = (ns.targets if len(ns.targets) == 2 else (None, ns.targets[0]))
    args = EtlArgs(
        mode=ns.mode,
        type=ns.type,
        course_url_prefix=ns.course_url_prefix,
        server=server,
        application_id=app_id,
        archive_path=Path(ns.archive_path).expanduser() if ns.archive_path else None,
        archive_type=ns.archive_type or "zip",
        archive_type_given=ns.archive_type is not None,
        batch_size=ns.batch_size,
        datastore_types=_split_types(ns.datastore_types, "datastore_types"),
        exclude_types=_split_types(ns.exclude_types, "exclude_types"),
        disable_remote=ns.disable_remote,
        force_overwrite=ns.force_overwrite,
        internal=ns.internal,
        job_args=ns.job_args.split(),
        log_level=ns.log_level,
        no_static_files=ns.no_static_files,
        port=ns.port,
        ca_file=ns.ca_file,
        privacy=ns.privacy,
        privacy_secret=_privacy_secret(ns),
        resume=ns.resume,
        verbose=ns.verbose,
        progress_json=ns.progress_json,
        readers=ns.readers,
    )
    validate(args)
    return args


def _privacy_secret(ns: argparse.Namespace) -> str | None:
    if ns.privacy_secret is not None or not (ns.privacy and ns.mode == "download" and ns.type == "datastore"):
        return ns.privacy_secret
    return os.environ.get(ENV_PRIVACY_SECRET) or None


def validate(args: EtlArgs) -> None:
    """Course Builder's rules (spec §1.1), and courseport's few more."""
    mode, kind = args.mode, args.type
    if mode == "run":
        if not _DOTTED.match(kind):
            raise EtlUsageError(
                f"run needs the dotted path of a Job class (module.Class), not {kind!r}"
            )
    elif kind not in TYPES:
        raise EtlUsageError(f"type must be 'course' or 'datastore' for {mode}, not {kind!r}")
    if args.archive_type not in ARCHIVE_TYPES:
        raise EtlUsageError(f"--archive_type must be 'zip' or 'directory', not {args.archive_type!r}")
    for flag, names in (("datastore_types", args.datastore_types), ("exclude_types", args.exclude_types)):
        if not all(isinstance(name, str) and name for name in names):
            raise EtlUsageError(f"--{flag} has an empty kind name in {names!r}: use Kind1,Kind2")
    if not args.course_url_prefix.startswith("/"):
        raise EtlUsageError(
            f"course_url_prefix must start with '/', e.g. /sample, not {args.course_url_prefix!r}"
        )
    if mode in ("download", "upload") and args.archive_path is None:
        raise EtlUsageError(f"{mode} needs --archive_path")
    if not 1 <= args.batch_size <= MAX_BATCH_SIZE:
        raise EtlUsageError(
            f"--batch_size must be between 1 and {MAX_BATCH_SIZE:,}, not {args.batch_size}"
        )
    if not 0 < args.port < 65536:
        raise EtlUsageError(f"--port must be between 1 and 65535, not {args.port}")
    if args.disable_remote and mode != "run" and not args.internal:
        raise EtlUsageError("--disable_remote is only allowed with run (or with --internal)")
    if args.force_overwrite and mode not in ("download", "upload"):
        raise EtlUsageError("--force_overwrite is only allowed with download or upload")
    if args.privacy and not (mode == "download" and kind == "datastore"):
        raise EtlUsageError("--privacy is only allowed with download datastore")
    if args.privacy_secret is not None and not (
        mode == "download" and kind == "datastore" and args.privacy
    ):
        raise EtlUsageError("--privacy_secret is only allowed with download datastore --privacy")
    if args.privacy_secret == "":
        raise EtlUsageError("--privacy_secret must not be empty")
    if not 1 <= args.readers <= MAX_READERS:
        raise EtlUsageError(f"--readers must be between 1 and {MAX_READERS}, not {args.readers}")
    if args.readers != 1 and mode != "download":
        raise EtlUsageError("--readers is only allowed with download")
    if args.resume and mode not in ("download", "upload"):
        raise EtlUsageError("--resume is only allowed with download or upload")
    if args.resume and args.force_overwrite and mode == "download":
        raise EtlUsageError("--resume and --force_overwrite contradict each other: choose one")
    if args.no_static_files and not (mode == "download" and kind == "course"):
        raise EtlUsageError("--no_static_files is only allowed with download course")
    if (args.datastore_types or args.exclude_types) and kind != "datastore":
        raise EtlUsageError(
            "--datastore_types and --exclude_types apply to the datastore type; "
            "a course carries its course kinds"
        )
    if args.job_args and mode != "run":
        raise EtlUsageError("--job_args is only allowed with run")
    if mode == "download":
        _validate_download_target(args)
    if mode == "upload":
        _validate_upload_source(args)


def _validate_download_target(args: EtlArgs) -> None:
    path = args.archive_path
    assert path is not None
    if path.exists() and not (args.force_overwrite or args.resume):
        raise EtlUsageError(
            f"{path} already exists: pass --force_overwrite to replace it or --resume to continue it"
        )
    if path.exists() and args.archive_type_given:
        if (args.archive_type == "directory") != path.is_dir():
            raise EtlUsageError(
                f"{path} is a {'directory' if path.is_dir() else 'file'}, "
                f"not a {args.archive_type} archive"
            )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise EtlUsageError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise EtlUsageError(f"cannot write {path}: folder {parent} is not writable")


def _validate_upload_source(args: EtlArgs) -> None:
    path = args.archive_path
    assert path is not None
    if not path.exists():
        raise EtlUsageError(f"archive {path} does not exist")
    if path.is_dir():
        args.archive_type = "directory"
    elif args.archive_type == "directory":
        raise EtlUsageError(f"{path} is a file, not a directory archive")
