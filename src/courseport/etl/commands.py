"""``courseport download|upload|delete``: parse, open the site, act, report."""

from __future__ import annotations

import logging
import sys
import time
from typing import Sequence

from ..models import SchemaError
from ..sites import RowError
from .args import EtlArgs, parse_args
from .delete import delete
from .download import download
from .errors import EtlError
from .open import open_site
from .progress import LineAwareHandler, end_line
from .upload import upload

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


def run_mode(args: EtlArgs) -> int:
    try:
        return _run_mode(args)
    except (SchemaError, RowError) as exc:
        # data the kind's rules cannot handle (e.g. a key a privacy rule cannot hash):
        # the user's problem, reported in one line like every other
        raise EtlError(str(exc)) from None


def _run_mode(args: EtlArgs) -> int:
    site = open_site(args)
    started = time.perf_counter()
    # progress is said at INFO: --log_level WARNING quiets the bars on a terminal too
    progress = logging.getLogger("courseport.etl").isEnabledFor(logging.INFO)
    try:
        if args.mode == "download":
            downloaded = download(args, site, progress=progress)
            elapsed = time.perf_counter() - started
            print(
                f"downloaded {args.type} {args.course_url_prefix}: {downloaded.entities:,} entities"
                + (f", {downloaded.files} files" if args.type == "course" else "")
                + f" in {elapsed:.1f}s to {downloaded.path}"
            )
        elif args.mode == "upload":
            with site.exclusive(_describe(args)):
                uploaded = upload(args, site, progress=progress)
            elapsed = time.perf_counter() - started
            skipped = sum(uploaded.skipped.values())
            print(
                f"uploaded {args.type} {args.course_url_prefix}: {uploaded.entities:,} entities"
                + (f", {uploaded.files} files ({uploaded.files_skipped} already there)" if args.type == "course" else "")
                + (f", {skipped:,} already uploaded" if skipped else "")
                + f" in {elapsed:.1f}s from {args.archive_path}"
            )
        else:
            with site.exclusive(_describe(args)):
                deleted = delete(args, site, progress=progress)
            print(
                f"deleted {sum(deleted.rows.values()):,} entities from namespace {deleted.namespace!r}"
                + (f" and removed course {args.course_url_prefix}" if deleted.course_removed else "")
            )
    finally:
        end_line()  # an error or an interrupt is printed on a line of its own
        site.close()
    return 0


def _describe(args: EtlArgs) -> str:
    """The command as others are told of it (never its secrets)."""
    return f"courseport {args.mode} {args.type} {args.course_url_prefix}"


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    if args.mode == "run":
        from ..jobs.runner import run_job

        return run_job(args)
    return run_mode(args)
