"""Example jobs (Course Builder's ``tools/etl/examples.py``, spec §7.2).

``courseport run courseport.jobs.examples.StoreStats /sample local``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..datastore import SqliteBackend
from .base import CourseJob, JobError


class StoreStats(CourseJob):
    """Store statistics for the course: kinds, row counts and (sqlite) size on disk.

    Course Builder's ``PrintMemcacheStats`` printed memcache counters; the
    embedded store has no memcache, so this reports what it holds instead.
    """

    def main(self) -> dict[str, int]:
        assert self.course is not None and self.store is not None
        namespace = self.course.namespace
        counts = {kind: self.store.count(kind, namespace) for kind in self.store.kinds(namespace)}
        out = sys.stdout
        out.write(f"Store statistics for {self.course.slug} (namespace {namespace!r}):\n")
        for kind, count in counts.items():
            out.write(f"  {kind:<30}{count:>12,}\n")
        out.write(f"  {'entities':<30}{sum(counts.values()):>12,}\n")
        if isinstance(self.store, SqliteBackend):
            out.write(f"  {'store bytes on disk':<30}{self.store.size_on_disk():>12,}\n")
        return counts


class UploadFileToCourse(CourseJob):
    """``--job_args='<local path> <course path>'``: one local file into the course."""

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("path", help="the local file")
        parser.add_argument("target", help="its path in the course, e.g. assets/img/logo.png")

    def main(self) -> str:
        assert self.course is not None and self.args is not None
        source = Path(self.args.path)
        if not source.is_file():
            raise JobError(f"no such file {source}")
        info = self.course.fs.put(self.args.target, source.read_bytes(), is_draft=False)
        sys.stdout.write(f"wrote {info.path} ({info.size:,} bytes) into {self.course.slug}\n")
        return info.path


class WriteStudentEmailsToFile(CourseJob):
    """``--job_args='<out path> [--batch_size N]'``: every learner's email, one a line."""

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("path", help="the output file (must not exist)")
        parser.add_argument("--batch_size", type=int, default=20)

    def main(self) -> int:
        assert self.course is not None and self.store is not None and self.args is not None
        target = Path(self.args.path)
        if target.exists():
            raise JobError(f"{target} already exists: name a new file")
        if self.args.batch_size < 1:
            raise JobError("--batch_size must be at least 1")
        count = 0
        tmp = target.with_name(target.name + ".partial")
        try:
            with open(tmp, "w", encoding="utf-8") as out:
                for student in self.store.query("Student", self.course.namespace, batch_size=self.args.batch_size):
                    # legacy students are keyed by email and may have none stored
                    email = student.get("email") or (student.key.name if student.key.name != student.get("user_id") else None)
                    if email:
                        out.write(f"{email}\n")
                        count += 1
        except BaseException:
            tmp.unlink(missing_ok=True)  # a failed run leaves no half-written file behind
            raise
        tmp.replace(target)
        sys.stdout.write(f"wrote {count:,} emails to {target}\n")
        return count
