"""The Job API of ``courseport run`` (Course Builder's ``etl_lib.Job``, spec §6.8, §7.1).

A job is a class: ``courseport run mypackage.jobs.MyJob /course local
--job_args '...'`` imports it, builds it with etl's parsed arguments, lets
it add its own arguments to ``self.parser`` (parsed from ``--job_args``)
and calls ``main()``. A :class:`CourseJob` is also handed the course and a
datastore client.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import UserError

if TYPE_CHECKING:
    from ..datastore.client import DatastoreClient
    from ..etl.args import EtlArgs
    from ..sites.base import JobCourse


class JobError(UserError, ValueError):
    """A job's arguments or work failed; reported in one line."""


class _JobParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise JobError(f"{self.prog}: {message} (job usage: {self.format_usage().strip()})")


class Job:
    """Base class of every job; the base job does nothing."""

    def __init__(self, etl_args: "EtlArgs") -> None:
        self.etl_args = etl_args
        self.parser: argparse.ArgumentParser = _JobParser(
            prog=f"{type(self).__module__}.{type(self).__name__}", add_help=False
        )
        self.args: argparse.Namespace | None = None

    def _configure_parser(self) -> None:
        """Add this job's arguments to ``self.parser`` (Course Builder's hook name)."""
        self.configure_parser(self.parser)

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        """Add this job's arguments to ``parser``."""

    def run(self) -> Any:
        self._configure_parser()
        self.args = self.parser.parse_args(self.etl_args.job_args)
        return self.main()

    def main(self) -> Any:
        """The job's work."""


class CourseJob(Job):
    """A job handed the course and a datastore client before it runs.

    ``self.course`` has ``slug``, ``namespace``, ``title`` and ``fs`` (the
    course's files: list, get, put, delete); ``self.store`` gets, puts,
    deletes, queries and allocates ids (see ``courseport.datastore.client``),
    on the embedded store or through a server's API alike.
    """

    def __init__(self, etl_args: "EtlArgs") -> None:
        super().__init__(etl_args)
        self.course: "JobCourse | None" = None
        self.store: "DatastoreClient | None" = None

    def bind(self, course: "JobCourse", store: "DatastoreClient") -> None:
        self.course = course
        self.store = store
