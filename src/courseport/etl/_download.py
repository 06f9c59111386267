"""``download course`` and ``download datastore`` (spec §6.1–§6.3).

Everything is decided before the archive is opened: the course, its model
version, the kinds (unknown names fail, listing the available ones) and the
files. Then every member streams from one consistent read of the site
into an archive written under a temporary name, renamed into place when
complete. ``--resume`` continues an interrupted download: finished members
are kept, the rest is written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..errors import UserError
from ..archive import (
    ArchiveError, ArchiveWriter, Manifest, ManifestEntry, RowsWriter, check_target, file_member, kind_member,
    member_kind, open_reader, target_lock,
)
from ..archive.fsutil import fsync_dir
from ..archive.members import is_models_member
from ..models import COURSE_KINDS, EXCLUDED_KINDS, is_internal_kind, schema_for
from ..sites import CourseInfo, Reading, Site
from .args import EtlArgs
from .errors import EtlError, check_app_id
from .progress import Progress, announce
from .resume import DownloadRecord

log = logging.getLogger("courseport.etl")

_MIN_VERSION = "1.3"
_STATIC_ONLY = ("/course.yaml", "/data/course.json")


@dataclass
class DownloadResult:
    path: Path
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    resumed: list[str] = field(default_factory=list)

    @property
    def entities(self) -> int:
        return sum(self.rows.values())


def select_kinds(args: EtlArgs, available: list[str], verb: str) -> list[str]:
    """``--datastore_types`` (default: every available kind) less ``--exclude_types``, sorted.

    A requested kind that is not available fails, naming the available ones
    (download and delete alike); an excluded one that is not there is a warning.
    """
    available = sorted(available)
    requested = args.datastore_types or available
    missing = sorted(set(requested) - set(available))
    if missing:
        raise EtlError(
            f"Requested types not found: {', '.join(missing)}. "
            f"Available types are: {', '.join(available) or '(none)'}"
        )
    unknown_excludes = sorted(set(args.exclude_types) - set(available))
    if unknown_excludes:
        log.warning("--exclude_types names kinds that are not here: %s", ", ".join(unknown_excludes))
    kinds = sorted(set(requested) - set(args.exclude_types))
    if not kinds:
        raise EtlError(f"no kinds left to {verb}. Available types are: {', '.join(available) or '(none)'}")
    return kinds


def plan_kinds(args: EtlArgs, reading: Reading, course: CourseInfo) -> list[str]:
    """The kinds to download, sorted; unknown requests fail naming the available ones."""
    if args.type == "course":
        return list(COURSE_KINDS)
    available = [
        kind for kind in reading.kinds(course.namespace)
        if not is_internal_kind(kind) and kind not in EXCLUDED_KINDS
    ]
    kinds = select_kinds(args, available, "download")
    if args.privacy:
        unruled = [kind for kind in kinds if schema_for(kind) is None]
        if unruled:
            raise EtlError(
                f"--privacy cannot tell what identifies a learner in {', '.join(unruled)} "
                f"(no privacy rules for these kinds): add --exclude_types {','.join(unruled)}"
            )
    return kinds


def _manifest_info(path: Path, archive_type: str) -> dict[str, dict]:
    """Rows and checksums of a finished archive's members, to keep on resume."""
    try:
        with open_reader(path, archive_type) as reader:
            manifest = reader.manifest()
    except ArchiveError:
        return {}
    return {e.path: {"rows": e.rows, "sha256": e.sha256} for e in manifest.entries if e.rows is not None}


@contextlib.contextmanager
def _discard_when_refused(writer: ArchiveWriter, path: Path, resuming: bool) -> Iterator[None]:
    """A download refused on its data leaves nothing; an interrupted one
    (killed, a full disk, a bug) stays resumable."""
    try:
        yield
    except UserError:  # not an OSError (a full disk) nor a bug: those keep the partial
        if not resuming:
            writer.discard()
            DownloadRecord.remove(path)
            shutil.rmtree(ranges_dir(path), ignore_errors=True)
        raise


def download(args: EtlArgs, site: Site, *, progress: bool = True) -> DownloadResult:
    path = args.archive_path
    assert path is not None
    course = site.course(args.course_url_prefix)
    check_app_id(args.application_id, site.app_id)
    if args.type == "course" and course.version < _MIN_VERSION:
        raise EtlError(
            f"course {course.slug} is a model {course.version} course: cannot download courses "
            "made with Course Builder versions earlier than 1.3.0 (its files are on disk already)"
        )
    with target_lock(path, f"courseport download {args.type} {course.slug}"):
        check_target(path, args.archive_type, replace=args.force_overwrite, resume=args.resume)
        with site.reading() as reading:
            return _download(args, site, reading, course, path, progress)


def _download(args: EtlArgs, site: Site, reading: Reading, course: CourseInfo, path: Path,
              progress: bool) -> DownloadResult:
    batch = max(args.batch_size, site.min_batch_size)
    changes = reading.change_count(course.namespace)
    record = DownloadRecord.load(path) if args.resume else None
    if record is not None:
        record.continue_with(args, course, changes)
        reading.pin(course.namespace, record.changes)
        if changes is None:
            log.warning("--resume: %s keeps no change count, so whether course %s changed since this download "
                        "began cannot be checked; the rows fetched before the interruption are kept as they were",
                        site.description, course.slug)
    kinds = plan_kinds(args, reading, course)
    files = reading.files(course) if args.type == "course" else []
    if args.no_static_files:
        files = [info for info in files if info.path in _STATIC_ONLY]
    finished = _manifest_info(path, args.archive_type) if args.resume and record is None and path.exists() else {}
    result = DownloadResult(path)
    with ArchiveWriter(path, archive_type=args.archive_type, resume=args.resume) as writer, \
            _discard_when_refused(writer, path, args.resume):
        done = set(writer.completed())
        extra = sorted(
            name for name in done
            if is_models_member(name) and member_kind(name) not in kinds
        )
        if extra:
            raise EtlError(
                f"--resume: the partial archive holds {', '.join(extra)}, which this download "
                "does not ask for: resume with the same arguments, or start again with --force_overwrite"
            )
        if record is None:
            todo = [kind for kind in kinds if kind_member(kind) not in done]
            if done and todo:
                # no record of the earlier run: its privacy, secret and snapshot are unknown
                raise EtlError(
                    f"--resume: {path} has no record of the download that wrote it, so the rest "
                    "could not be known to match it; start it again with --force_overwrite"
                )
            record = DownloadRecord.begin(args, course, changes)
            record.members.update(finished)
        record.save(path)
        secret = record.secret_for(args)
        reading.expect(course.namespace, [kind for kind in kinds if kind_member(kind) not in done],
                       secret=secret, batch_size=batch)
        manifest = Manifest(raw=course.raw, version=course.version, entries=[])
        announce(lambda: _totals(site, course, files, kinds, done), enabled=progress)
        result.files = _write_files(writer, reading, course, files, done, manifest, args, progress)
        for kind in kinds:
            member = kind_member(kind)
            if member in done:
                known = record.members.get(member, {})
                manifest.add(ManifestEntry(member, False, known.get("rows"), known.get("sha256")))
                result.resumed.append(member)
                log.info("%s: already in the partial archive, skipped", member)
                continue
            if kind in record.ranges or args.readers > 1:
                rows, digest = _write_kind_in_ranges(writer, reading, course, kind, batch, secret, args, progress,
                                                     record, path)
            else:
                rows, digest = _write_kind(writer, reading, course, kind, batch, secret, args, progress)
            manifest.add(ManifestEntry(member, False, rows, digest))
            record.members[member] = {"rows": rows, "sha256": digest}
            record.changes = reading.change_count(course.namespace)  # the state the rows came from
            record.save(path)
            result.rows[kind] = rows
        writer.commit(manifest)
    DownloadRecord.remove(path)
    shutil.rmtree(ranges_dir(path), ignore_errors=True)
    return result


def _totals(site: Site, course: CourseInfo, files, kinds: list[str], done: set[str]) -> dict[str, int | None]:
    """What is left to write, for --progress_json's plan: counted from the site, not the
    reading (a remote reading streams kinds in order, counting each as it comes)."""
    totals: dict[str, int | None] = {"files": len(files)} if files else {}
    totals.update((kind, site.estimated_count(kind, course.namespace))
                  for kind in kinds if kind_member(kind) not in done)
    return totals


def _write_files(writer, reading: Reading, course: CourseInfo, files, done, manifest, args, progress) -> int:
    bar = Progress("files", len(files), enabled=progress and bool(files))
    written = 0
    for info in files:
        member = file_member(info.path)
        manifest.add(ManifestEntry(member, info.is_draft if course.editable else False))
        if member in done:
            continue
        data = reading.read_file(course, info.path)
        writer.write_member(member, data)
        written += 1
        if args.verbose:
            log.info("file %s (%d bytes)", member, len(data))
        bar.advance(1)
    if files:
        bar.finish()
    return written


def _write_kind(writer, reading: Reading, course: CourseInfo, kind: str, batch: int,
                secret: str | None, args: EtlArgs, progress: bool) -> tuple[int, str]:
    bar = Progress(kind, reading.count(kind, course.namespace), enabled=progress)
    member = kind_member(kind)
    with writer.open_member(member) as stream:
        rows = RowsWriter(stream, member)
        cursor = None
        while True:
            page = reading.rows_page(kind, course.namespace, batch_size=batch, cursor=cursor, secret=secret)
            rows.write_rows(page.rows)
            if args.verbose:
                for row in page.rows:
                    log.info("%s %s", kind, row[:120])
            bar.advance(len(page.rows))
            if page.cursor is None:
                break
            cursor = page.cursor
        rows.close()
    elapsed = bar.finish()
    log.debug("%s: %d rows in %.2fs", kind, rows.rows, elapsed)
    return rows.rows, stream.sha256.hexdigest()


#: about how many rows one range of a kind read by several readers holds
RANGE_ROWS = 2000
_MAX_RANGES = 1000


def ranges_dir(path: Path) -> Path:
    """Where the ranges of kinds read by several readers wait, beside the partial archive."""
    return path.with_name(path.name + ".partial.ranges")


def _write_kind_in_ranges(writer, reading: Reading, course: CourseInfo, kind: str, batch: int,
                          secret: str | None, args: EtlArgs, progress: bool, record: DownloadRecord,
                          path: Path) -> tuple[int, str]:
    """``kind`` read by ``--readers`` at once, a key range each, into files of their own
    (recorded as each is done, so a resume fetches only the rest), then framed into the
    member in key order. Where the site cannot split the kind, it is read as one."""
    state = record.ranges.get(kind)
    if state is None:
        total = reading.count(kind, course.namespace)
        pieces = min(max(args.readers * 4, (total or 0) // RANGE_ROWS), _MAX_RANGES)
        bounds = reading.key_ranges(kind, course.namespace, pieces)
        if not bounds:
            return _write_kind(writer, reading, course, kind, batch, secret, args, progress)
        state = record.ranges[kind] = {"bounds": [list(b) for b in bounds], "done": {}}
    folder = _range_folder(path, kind)
    ranges = [tuple(b) for b in state["bounds"]]
    # a range's file gets its name only once whole (written, synced, renamed): every one there
    # is taken, recorded or not (the run may have been killed between the rename and the record)
    done = {i: state["done"].get(str(i)) or _lines(folder / f"{i}.rows")
            for i in range(len(ranges)) if (folder / f"{i}.rows").is_file()}
    state["done"] = {str(i): n for i, n in done.items()}
    record.save(path)
    if done:
        log.info("%s: %d of %d key ranges already fetched by the interrupted download", kind, len(done), len(ranges))
    bar = Progress(kind, reading.count(kind, course.namespace), enabled=progress)
    bar.advance(sum(done.values()))

    def fetch(index: int) -> tuple[int, int]:
        rows = 0
        part = folder / f"{index}.rows.tmp"
        with open(part, "w", encoding="utf-8", newline="\n") as out:
            for page in reading.range_rows(kind, course.namespace, ranges[index], batch_size=batch, secret=secret):
                if page:
                    out.write("\n".join(page) + "\n")
                    rows += len(page)
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, folder / f"{index}.rows")
        fsync_dir(str(folder))
        return index, rows

    with ThreadPoolExecutor(max_workers=args.readers, thread_name_prefix="courseport-reader") as pool:
        futures = [pool.submit(fetch, i) for i in range(len(ranges)) if i not in done]
        try:
            for future in as_completed(futures):
                index, rows = future.result()
                state["done"][str(index)] = rows
                record.save(path)
                bar.advance(rows)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    member = kind_member(kind)
    with writer.open_member(member) as stream:
        framed = RowsWriter(stream, member)
        for index in range(len(ranges)):
            with open(folder / f"{index}.rows", encoding="utf-8", newline="\n") as rows_file:
                page: list[str] = []
                for line in rows_file:
                    page.append(line[:-1])
                    if len(page) >= 5000:
                        framed.write_rows(page)
                        page = []
                framed.write_rows(page)
        framed.close()
    elapsed = bar.finish()
    log.debug("%s: %d rows in %d ranges in %.2fs", kind, framed.rows, len(ranges), elapsed)
    shutil.rmtree(folder, ignore_errors=True)
    record.ranges.pop(kind, None)
    return framed.rows, stream.sha256.hexdigest()


def _lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def _range_folder(path: Path, kind: str) -> Path:
    """A kind's folder of range files (named by the kind's bytes in hex: a kind's name is
    the store's, not a safe file name); never a link."""
    top = ranges_dir(path)
    folder = top / kind.encode("utf-8").hex()[:200]
    for place in (top, folder):
        if place.is_symlink() or (place.exists() and not place.is_dir()):
            raise EtlError(f"{place} is in the way of the download's key ranges: remove it, or choose "
                           "another --archive_path")
        place.mkdir(mode=0o700, exist_ok=True)
    return folder
