"""``upload course`` and ``upload datastore`` (spec §6.4–§6.6).

Validate first, then act: the archive is opened behind its hostile-input
guards, and every member to be loaded is read once in full (rows parsed
and typed, course.json and course.yaml checked, keys checked against the
target) before the first write. Only then are files and rows written, in
batches. ``--resume`` skips rows an interrupted upload already wrote.

Course Builder refused ``FileDataEntity`` (a Blob kind) and dropped
Student ``email``, ``name`` and ``additional_fields`` on upload; courseport
loads them all.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import pickle
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from .._json import STRICT
from .._workers import can_fork, worker_pool
from ..archive import (
    ArchiveError, Manifest, NotLineLayout, iter_rows, kind_member, line_chunks, member_file, open_reader,
)
from ..courses.coursejson import load_course_json
from ..courses.settings import load_course_yaml
from ..courses.vfs import MAX_FILE_SIZE, normalize_path
from ..datastore import Entity, Key, batched
from ..models import COURSE_KINDS, VFS_KINDS, is_internal_kind
from ..sites import CourseInfo, RowDecoder, RowError, Site
from .args import EtlArgs
from .errors import EtlError, check_app_id
from .progress import Progress, announce, say
from .keyorder import HASH_KEY, KeyOrder, chunk_digests, chunk_order, find_duplicate
from .vfscheck import DATA, META, check_files, read_archive_files

log = logging.getLogger("courseport.etl")

COURSE_YAML = "/course.yaml"
COURSE_JSON = "/data/course.json"


@dataclass
class UploadResult:
    path: Path
    rows: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    files: int = 0
    files_skipped: int = 0

    @property
    def entities(self) -> int:
        return sum(self.rows.values())


@dataclass
class _KindPlan:
    kind: str
    member: str
    rows: int = 0
    spill: BinaryIO | None = None  # the rows, typed and prepared, between the passes
    expected: int | None = None  # the manifest's row count, for progress (Course Builder's has none)


def _target_is_empty(paths: list[str]) -> bool:
    return not paths or paths == [COURSE_YAML]


def plan_upload_kinds(args: EtlArgs, manifest: Manifest, present: set[str]) -> list[_KindPlan]:
    """The kinds to load, from the manifest, narrowed by the type flags."""
    in_archive = manifest.kinds()
    if args.type == "course":
        in_archive = [kind for kind in in_archive if kind in COURSE_KINDS]
    if not in_archive:
        raise EtlError(f"No entity types to upload found in {args.archive_path}")
    internal = [kind for kind in in_archive if is_internal_kind(kind)]
    if internal:
        # App Engine's metadata kinds: rows put there would be invisible to download and delete
        raise EtlError(
            f"{kind_member(internal[0])}: {internal[0]} is a reserved kind name (__name__): "
            "refusing to upload into it"
        )
    if args.datastore_types:
        unknown = sorted(set(args.datastore_types) - set(in_archive))
        if unknown:
            raise EtlError(
                f"--datastore_types names kinds not in the archive: {', '.join(unknown)}. "
                f"The archive holds: {', '.join(in_archive)}"
            )
    for kind in sorted(set(args.exclude_types) - set(in_archive)):
        log.warning("--exclude_types: %s is not in the archive", kind)
    chosen = sorted(set(args.datastore_types or in_archive) - set(args.exclude_types))
    if not chosen:
        raise EtlError(f"no entity types left to upload. The archive holds: {', '.join(in_archive)}")
    plans = []
    for kind in chosen:
        member = kind_member(kind)
        if member not in present:
            log.warning("Unable to find data file %s; skipping", member)
            continue
        entry = manifest.entry(member)
        plans.append(_KindPlan(kind, member, expected=entry.rows if entry is not None else None))
    return plans


class _Upload:
    def __init__(self, args: EtlArgs, site: Site, progress: bool) -> None:
        self.args = args
        self.site = site
        self.progress = progress
        self._stack = contextlib.ExitStack()
        self._workers: ProcessPoolExecutor | bool | None = None
        self.batch = max(args.batch_size, site.min_batch_size)

    def run(self) -> UploadResult:
        args, site = self.args, self.site
        course = site.course(args.course_url_prefix)
        check_app_id(args.application_id, site.app_id)
        if not course.editable:
            raise EtlError(f"course {course.slug} is a read-only folder course: upload into a datastore course")
        existing_files = site.file_paths(course)
        empty = _target_is_empty(existing_files)
        if args.type == "course" and not empty and not (args.force_overwrite or args.resume):
            raise EtlError(
                f"course {course.slug} is not empty ({len(existing_files)} files): upload into an empty "
                "course, or pass --force_overwrite to overwrite its files and entities"
            )
        assert args.archive_path is not None
        with open_reader(args.archive_path, args.archive_type if args.archive_type_given else None) as reader:
            manifest = reader.manifest()
            present = set(reader.names())
            files = self._plan_files(reader, manifest, present) if args.type == "course" else []
            plans = plan_upload_kinds(args, manifest, present)
            announce(lambda: {**({"files": len(files)} if files else {}),
                              **{plan.kind: plan.expected for plan in plans}}, enabled=self.progress)
            result = UploadResult(args.archive_path)
            with self._stack:
                job = (reader, course, files, plans, set(existing_files), empty, result)
                if not (site.atomic_writes and self._upload_atomically(*job)):
                    self._upload_staged(*job)
        return result

    def _upload_staged(self, reader, course, files, plans, existing_files, empty, result) -> None:
        """Stage every row in a spill file, and write only once all of them passed."""
        self._check_rows(reader, course, plans, empty)
        self._check_course_files(reader, course, plans, written=False)
        self._write_files(reader, course, files, existing_files, result)
        for plan in plans:
            writer = _KindWriter(self, plan, result)
            for keys, batch in self._staged(plan):
                writer.add(keys, batch)
            writer.finish()

    def _upload_atomically(self, reader, course, files, plans, existing_files, empty, result) -> bool:
        """Everything in one transaction: a refusal halfway leaves nothing, so rows
        are written as soon as they are checked. False (and nothing written) where a
        member turns out not to be one row a line: the caller stages it first."""
        writers: list = []
        started = time.monotonic()
        try:
            with self.site.atomic():
                # live progress as rows are checked and written; each task's last line
                # (its rate as it ran) only once committed: until then, nothing is written
                files_bar = self._write_files(reader, course, files, existing_files, result, report=False)
                for plan in plans:
                    writer = _KindWriter(self, plan, result, report=False)
                    plan.spill = _DirectSink(writer.add)  # type: ignore[assignment]
                    plan.rows = self._stage_kind(reader, course, plan, empty)
                    writer.finish()
                    writers.append(writer)
                self._check_course_files(reader, course, plans, written=True)
                say(f"committing {result.entities:,} entities ...", enabled=self.progress, transient=True)
        except _Restage:
            result.rows.clear()
            result.skipped.clear()
            result.files = result.files_skipped = 0
            for plan in plans:
                plan.spill = None
            return False
        elapsed = time.monotonic() - started
        if files_bar is not None:
            files_bar.finish()
        for writer in writers:
            writer.report()
        files = f", {result.files:,} files" if result.files else ""
        say(f"committed {result.entities:,} entities{files} in {elapsed:.1f}s "
            f"({result.entities / max(elapsed, 1e-9):,.0f} entities/s)", enabled=self.progress)
        return True

    # --- validation -------------------------------------------------------

    def _plan_files(self, reader, manifest: Manifest, present: set[str]) -> list[tuple[str, str, bool | None]]:
        planned = []
        for entry in sorted(manifest.files(), key=lambda e: e.path):
            if entry.path not in present:
                log.warning("Unable to find file %s; skipping", entry.path)
                continue
            try:
                path = normalize_path(member_file(entry.path) or "")
            except ValueError as exc:
                raise EtlError(f"{entry.path}: {exc}") from None
            if reader.size(entry.path) > MAX_FILE_SIZE:
                raise EtlError(f"{entry.path}: larger than the {MAX_FILE_SIZE:,}-byte limit for course files")
            planned.append((entry.path, path, entry.is_draft))
        by_path = {path: member for member, path, _ in planned}
        try:
            if COURSE_JSON in by_path:
                load_course_json(reader.read(by_path[COURSE_JSON]), source=by_path[COURSE_JSON])
            if COURSE_YAML in by_path:
                load_course_yaml(reader.read(by_path[COURSE_YAML]))
        except ValueError as exc:
            raise EtlError(f"the archive's course is broken: {exc}") from None
        return planned

    def _entities(self, reader, plan: _KindPlan, namespace: str) -> Iterator[Entity]:
        decoder = RowDecoder(plan.kind, namespace)
        with reader.open(plan.member) as stream:
            for number, row in enumerate(iter_rows(stream, plan.member), 1):
                yield _decode_row(decoder, row, plan.member, number)

    def _ignorable(self, key: Key, empty: bool) -> bool:
        """A new course's own blank course.yaml is not a conflict."""
        return empty and key.kind in VFS_KINDS and key.name == COURSE_YAML

    def _check_rows(self, reader, course: CourseInfo, plans: list[_KindPlan], empty: bool) -> None:
        """Every row parses and types; no key exists unless overwriting or resuming.

        The rows, typed and encoded for the site, are staged in a spill file
        so that the write pass need not parse them again. Members in Course
        Builder's one-row-a-line layout are parsed by worker processes.
        """
        for plan in plans:
            plan.spill = self._stack.enter_context(tempfile.TemporaryFile(prefix="courseport-upload-"))
            plan.rows = self._stage_kind(reader, course, plan, empty)

    def _stage_kind(self, reader, course: CourseInfo, plan: _KindPlan, empty: bool) -> int:
        """Parse, type, prepare and check one kind's rows into ``plan.spill``; the row count."""
        occupied = not (self.args.force_overwrite or self.args.resume) and \
            self.site.count(plan.kind, course.namespace) > 0
        if self._pool() is not None and reader.size(plan.member) >= PARALLEL_MIN_BYTES:
            try:
                return self._stage_parallel(reader, plan, course, occupied, empty)
            except NotLineLayout:
                if isinstance(plan.spill, _DirectSink):
                    if plan.spill.written:
                        raise _Restage() from None  # undo it all, then stage first
                elif plan.spill is not None:
                    plan.spill.seek(0)
                    plan.spill.truncate()
        return self._stage(reader, plan, course, occupied, empty)

    def _conflicts(self, plan: _KindPlan, course: CourseInfo, keys: list[Key], seen: int, empty: bool) -> None:
        for index, (key, found) in enumerate(zip(keys, self.site.exists(keys))):
            if found and not self._ignorable(key, empty):
                raise EtlError(
                    f"Object #{seen + index} of class {plan.kind} with key {key.id_or_name!r} "
                    f"already exists in course {course.slug}: pass --force_overwrite to replace it"
                )

    def _check_course_files(self, reader, course: CourseInfo, plans: list[_KindPlan], written: bool) -> None:
        """Refuse rows that would leave a course file unreadable (see etl.vfscheck): once
        ``written`` (in the transaction), as the site holds them; else as they would land."""
        members = {plan.kind: plan.member for plan in plans if plan.kind in (META, DATA)}
        if not members:
            return
        files = read_archive_files(reader, members, course.namespace)

        def lookup(keys: list[Key]) -> list:
            found = self.site.get_rows(keys)
            return [None] * len(keys) if found is None else found  # a site that cannot tell: nothing there

        check_files(files.paths(), course.namespace, lookup, overlay=None if written else files)

    def _no_duplicates(self, reader, plan: _KindPlan, course: CourseInfo, order: KeyOrder) -> None:
        """Refuse a member listing one key twice (see etl.keyorder): its rows were
        in key order, or its keys are read again now."""
        if order.sorted:
            return
        where = (lambda: reader.open(plan.member), plan.member, plan.kind, course.namespace)
        if self._pool() is not None and reader.size(plan.member) >= PARALLEL_MIN_BYTES:
            try:
                find_duplicate(*where, chunks=self._key_digests(reader, plan, course))
                return
            except NotLineLayout:
                pass  # read here instead
        find_duplicate(*where)

    def _key_digests(self, reader, plan: _KindPlan, course: CourseInfo) -> Iterator:
        """The member's key hashes, chunk by chunk in row order, from the worker processes."""
        pool = self._pool()
        assert pool is not None
        pending: collections.deque = collections.deque()
        with reader.open(plan.member) as stream:
            for first, lines in line_chunks(stream, plan.member, rows_per_chunk=self.batch):
                pending.append(pool.submit(chunk_digests, (plan.kind, course.namespace, plan.member, first,
                                                           lines, HASH_KEY)))
                if len(pending) >= 4:
                    yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def _stage(self, reader, plan: _KindPlan, course: CourseInfo, occupied: bool, empty: bool) -> int:
        spill = plan.spill
        assert spill is not None
        seen = 0
        order = KeyOrder(plan.member)
        for batch in batched(self._entities(reader, plan, course.namespace), self.batch):
            order.add_keys([row.key for row in batch])
            keys = [row.key for row in batch] if self.args.resume else None
            try:
                prepared = self.site.prepare_rows(batch)
            except ValueError as exc:  # e.g. a key the store cannot hold (a NUL in its name)
                raise EtlError(f"{plan.member}: rows {seen + 1}-{seen + len(batch)}: {exc}") from None
            if occupied:
                self._conflicts(plan, course, [e.key for e in batch], seen, empty)
            spill.write(pickle.dumps((keys, prepared), pickle.HIGHEST_PROTOCOL))
            seen += len(batch)
        self._no_duplicates(reader, plan, course, order)
        return seen

    def _pool(self) -> ProcessPoolExecutor | None:
        if self._workers is None:
            preparer = self.site.row_preparer()
            cores = os.cpu_count() or 1
            if preparer is None or cores < 2 or not can_fork():
                self._workers = False
            else:
                self._workers = self._stack.enter_context(worker_pool(min(cores, 4)))
        return self._workers if isinstance(self._workers, ProcessPoolExecutor) else None

    def _stage_parallel(self, reader, plan: _KindPlan, course: CourseInfo, occupied: bool, empty: bool) -> int:
        """Chunks of row lines parsed, typed and prepared by the workers, spilled in order."""
        pool = self._pool()
        spill = plan.spill
        assert pool is not None and spill is not None
        preparer = self.site.row_preparer()
        spill_keys = self.args.resume
        pending: collections.deque = collections.deque()
        seen = 0
        order = KeyOrder(plan.member)

        def collect() -> None:
            nonlocal seen
            count, keys, blob, chunk = pending.popleft().result()
            order.add(chunk, count)
            if occupied:
                self._conflicts(plan, course, keys, seen, empty)
            spill.write(blob)
            seen += count

        with reader.open(plan.member) as stream:
            for first, lines in line_chunks(stream, plan.member, rows_per_chunk=self.batch):
                job = (plan.kind, course.namespace, plan.member, first, lines, preparer, spill_keys, occupied)
                pending.append(pool.submit(_stage_chunk, job))
                if len(pending) >= 4:
                    collect()
        while pending:
            collect()
        self._no_duplicates(reader, plan, course, order)
        return seen

    # --- writing ----------------------------------------------------------

    def _write_files(self, reader, course: CourseInfo, files, existing: set[str], result: UploadResult,
                     report: bool = True) -> Progress | None:
        """Write the course files; returns their progress, to report later if not ``report``."""
        if not files:
            return None
        bar = Progress("files", len(files), enabled=self.progress)
        for member, path, is_draft in files:
            if path in existing and path != COURSE_YAML and not self.args.force_overwrite:
                result.files_skipped += 1
                if self.args.verbose:
                    log.info("%s exists in the course; skipped", path)
            else:
                self.site.write_file(course, path, reader.read(member), is_draft)
                result.files += 1
                if self.args.verbose:
                    log.info("file %s", path)
            bar.advance(1)
        bar.finish(report=report)
        return bar

    @staticmethod
    def _staged(plan: _KindPlan) -> Iterator[list]:
        assert plan.spill is not None
        plan.spill.seek(0)
        while True:
            try:
                yield pickle.load(plan.spill)
            except EOFError:
                return



class _KindWriter:
    """Writes one kind's prepared batches, skipping rows already there on --resume."""

    def __init__(self, upload: _Upload, plan: _KindPlan, result: UploadResult, report: bool = True) -> None:
        self.reports = report
        self.upload = upload
        self.site = upload.site
        self.args = upload.args
        self.plan = plan
        self.result = result
        # the staged path knows the count; the atomic one has the manifest's, if any
        self.bar = Progress(plan.kind, plan.rows or plan.expected, enabled=upload.progress)
        self.written = self.skipped = 0

    def add(self, keys: list[Key] | None, batch: list) -> None:
        total = len(batch)
        if keys is not None and not self.args.force_overwrite:
            # a resumed upload rewrites the course's course.yaml rows (the new course's
            # own blank one, or this archive's written before): a plain upload replaces the
            # blank one too, and its two VFS rows must not be left from different files
            found = [there and not (key.kind in VFS_KINDS and key.name == COURSE_YAML)
                     for key, there in zip(keys, self.site.exists(keys))]
            fresh = [row for row, there in zip(batch, found) if not there]
            if self.skipped == self.written == 0 and fresh:
                log.info("Resuming upload of %s at item number %d.", self.plan.kind, total - len(fresh))
            self.skipped += total - len(fresh)
            batch = fresh
        if batch:
            self.site.write_prepared(batch)
            self.written += len(batch)
        self.bar.advance(total)

    def finish(self) -> None:
        self.site.flush()  # every batch landed before the kind is reported done
        self.result.rows[self.plan.kind] = self.written
        if self.skipped:
            self.result.skipped[self.plan.kind] = self.skipped
        self.bar.finish(report=self.reports)  # its time ends here, said now or by report()
        if self.reports:
            self.report()

    def report(self) -> None:
        self.bar.finish()
        if self.args.resume and self.written == 0 and self.skipped:
            log.info("All %d entities of %s already uploaded; skipping.", self.skipped, self.plan.kind)


class _Restage(Exception):
    """An atomic upload met a member it cannot stage as it writes: start over, staging first."""


class _DirectSink:
    """Stands for the spill file where rows are written as they are staged."""

    def __init__(self, add) -> None:
        self.add = add
        self.written = 0

    def write(self, record: bytes) -> None:
        keys, batch = pickle.loads(record)
        self.add(keys, batch)
        self.written += len(batch)


#: members smaller than this are staged in this process (workers cost a fork)
PARALLEL_MIN_BYTES = 4 << 20
strict_json = STRICT.decode


def _decode_row(decoder: RowDecoder, row: dict, member: str, number: int):
    """One archive row typed for the store, or a one-line error naming member and row."""
    try:
        return decoder.decode_json(row)
    except (RowError, ValueError) as exc:
        raise EtlError(f"{member}: row {number} {exc}") from None


def _stage_chunk(job: tuple) -> tuple[int, list[Key] | None, bytes, Any]:
    """Worker: parse, type and prepare one chunk of row lines.

    Returns the row count, the keys when the caller checks conflicts, the
    pickled ``(keys or None, prepared rows)`` record of the spill file, and
    the order of the chunk's keys (a :class:`keyorder.ChunkOrder`).
    A line that is not a JSON object raises NotLineLayout: the caller then
    reads the member the careful way, which names the problem.
    """
    kind, namespace, member, first, lines, preparer, spill_keys, want_keys = job
    decoder = RowDecoder(kind, namespace)
    decoded = []
    for offset, line in enumerate(lines):
        try:
            row = strict_json(line)
        except (ValueError, RecursionError):  # named by the careful reader
            raise NotLineLayout(member) from None
        if type(row) is not dict:
            raise NotLineLayout(member)
        decoded.append(_decode_row(decoder, row, member, first + offset))
    all_keys = [row.key for row in decoded]
    order = chunk_order(all_keys, first)
    keys = all_keys if (spill_keys or want_keys) else None
    try:
        prepared = preparer(decoded)
    except ValueError as exc:
        raise EtlError(f"{member}: rows {first}-{first + len(lines) - 1}: {exc}") from None
    blob = pickle.dumps((keys if spill_keys else None, prepared), pickle.HIGHEST_PROTOCOL)
    return len(decoded), (keys if want_keys else None), blob, order


def upload(args: EtlArgs, site: Site, *, progress: bool = True) -> UploadResult:
    try:
        return _Upload(args, site, progress).run()
    except ArchiveError as exc:
        raise EtlError(str(exc)) from None
