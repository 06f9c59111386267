"""``courseport download|upload|delete|run``: parse, call the library (etl.api), print."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Sequence, TextIO

from . import api
from ..sites import Site
from .args import EtlArgs, parse_args
from .open import using_site
from .progress import LineAwareHandler, end_line, report_as_json

log = logging.getLogger("courseport.etl")


def configure_logging(level: str) -> None:
    logger = logging.getLogger("courseport")
    logger.setLevel(level)
    if not any(getattr(h, "_courseport", False) for h in logger.handlers):
        handler = LineAwareHandler(sys.stderr)  # clears a bar's line before a log line
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        handler._courseport = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.propagate = False


def call(args: EtlArgs, *, progress: bool = True, stdin: TextIO | None = None,
         stdout: TextIO | None = None) -> Any:
    """One parsed command as the library call it stands for; the call's result."""
    if args.mode == "run":
        from ..jobs.runner import run  # jobs stand on etl: imported when asked for

        return run(args, args.server)  # the job sees every parsed flag as job.etl_args
    with using_site(args.server, port=args.port, ca_file=args.ca_file) as site:
        return _call(args, site, progress=progress, stdin=stdin, stdout=stdout)


def _call(args: EtlArgs, site: Site, *, progress: bool, stdin: TextIO | None, stdout: TextIO | None) -> Any:
    type_: api.DataType = "course" if args.type == "course" else "datastore"  # parse_args checked it
    archive_type: api.ArchiveType | None = None
    if args.archive_type_given:
        archive_type = "directory" if args.archive_type == "directory" else "zip"
    if args.mode == "download":
        assert args.archive_path is not None  # parse_args checked it
        return api.download(
            site, args.course_url_prefix, type=type_, archive_path=args.archive_path,
            archive_type=archive_type, application_id=args.application_id, batch_size=args.batch_size,
            datastore_types=args.datastore_types, exclude_types=args.exclude_types,
            privacy=args.privacy, privacy_secret=args.privacy_secret, resume=args.resume,
            force_overwrite=args.force_overwrite, no_static_files=args.no_static_files,
            verbose=args.verbose, progress=progress, readers=args.readers,
        )
    if args.mode == "upload":
        assert args.archive_path is not None
        return api.upload(
            site, args.course_url_prefix, type=type_, archive_path=args.archive_path,
            archive_type=archive_type, application_id=args.application_id, batch_size=args.batch_size,
            datastore_types=args.datastore_types, exclude_types=args.exclude_types,
            resume=args.resume, force_overwrite=args.force_overwrite, verbose=args.verbose,
            progress=progress,
        )
    return api.delete(
        site, args.course_url_prefix, type=type_, application_id=args.application_id,
        batch_size=args.batch_size, datastore_types=args.datastore_types,
        exclude_types=args.exclude_types, stdin=stdin, stdout=stdout, progress=progress,
    )


def summary(args: EtlArgs, result: Any, elapsed: float) -> str:
    """The one line a finished download, upload or delete prints."""
    if isinstance(result, api.DownloadResult):
        return (
            f"downloaded {args.type} {args.course_url_prefix}: {result.entities:,} entities"
            + (f", {result.files} files" if args.type == "course" else "")
            + f" in {elapsed:.1f}s to {result.path}"
        )
    if isinstance(result, api.UploadResult):
        skipped = sum(result.skipped.values())
        return (
            f"uploaded {args.type} {args.course_url_prefix}: {result.entities:,} entities"
            + (f", {result.files} files ({result.files_skipped} already there)" if args.type == "course" else "")
            + (f", {skipped:,} already uploaded" if skipped else "")
            + f" in {elapsed:.1f}s from {args.archive_path}"
        )
    assert isinstance(result, api.DeleteResult)
    return (
        f"deleted {sum(result.rows.values()):,} entities from namespace {result.namespace!r}"
        + (f" and removed course {args.course_url_prefix}" if result.course_removed else "")
    )


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    if args.mode == "run":
        call(args)
        return 0
    started = time.perf_counter()
    # progress is said at INFO: --log_level WARNING quiets the bars on a terminal too
    progress = log.isEnabledFor(logging.INFO) or args.progress_json
    if args.progress_json:
        report_as_json(sys.stderr)
    try:
        result = call(args, progress=progress)
    finally:
        end_line()  # an error or an interrupt is printed on a line of its own
    print(summary(args, result, time.perf_counter() - started))
    return 0
