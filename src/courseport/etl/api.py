"""etl as a library: ``download``, ``upload``, ``delete``, ``run_job`` and ``verify``.

Each takes the server (``"local"``, ``"sqlite:///path/file.db"``, or an open
:class:`~courseport.sites.Site`) and the course's URL prefix, then keyword
arguments named as the command line's flags. The command line's rules
(``etl.args.validate``) apply to every call, before anything is opened;
every refusal is a :class:`courseport.errors.UserError` with a one-line
message. A server given as a string is opened and closed by the call; a
Site given is used as it is and left open.

``courseport download datastore /sample local --archive_path a.zip`` is::

    from courseport import etl
    result = etl.download("local", "/sample", type="datastore", archive_path="a.zip")
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Literal, TextIO

from ..models import SchemaError
from ..sites import RowError, Site
from ._delete import DeleteResult
from ._delete import delete as _delete
from ._download import DownloadResult
from ._download import download as _download
from ._upload import UploadResult
from ._upload import upload as _upload
from ._verify import Verification
from ._verify import verify as _verify
from .args import DEFAULT_BATCH_SIZE, EtlArgs, _split_types, validate
from .errors import EtlError
from .open import using_site

if TYPE_CHECKING:
    from ..jobs.base import Job

__all__ = [
    "ArchiveType", "DataType", "DeleteResult", "DownloadResult", "UploadResult", "Verification",
    "delete", "download", "run_job", "upload", "verify",
]

#: what a command moves: a course (its files and course kinds) or the course's datastore kinds
DataType = Literal["course", "datastore"]
#: how an archive is stored: one zip file, or a directory of members
ArchiveType = Literal["zip", "directory"]
#: kinds to process: a list of names, or one comma-separated string ("Student,EventEntity")
Kinds = str | Iterable[str]


def download(
    server: str | Site,
    course_url_prefix: str,
    *,
    type: DataType,
    archive_path: str | os.PathLike[str],
    archive_type: ArchiveType | None = None,
    application_id: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    datastore_types: Kinds = (),
    exclude_types: Kinds = (),
    privacy: bool = False,
    privacy_secret: str | None = None,
    resume: bool = False,
    force_overwrite: bool = False,
    no_static_files: bool = False,
    verbose: bool = False,
    progress: bool = True,
    readers: int = 1,
) -> DownloadResult:
    """Download a course or its datastore kinds into an archive (``courseport download``).

    ``archive_type`` defaults to ``"zip"``; an existing ``archive_path`` is
    refused unless ``force_overwrite`` (replace it) or ``resume`` (continue an
    interrupted download of the same arguments). ``privacy`` (datastore
    only) pseudonymizes user ids with an HMAC keyed by ``privacy_secret``
    (default: a random secret) and drops names and emails. ``progress``
    draws bars on a terminal (log lines at INFO elsewhere). ``readers`` fetch
    one kind at once in key ranges, where the store gains by it (Cloud Datastore).
    Returns the archive's path and the rows written per kind.
    """
    args = _args(
        "download", type, course_url_prefix, server, application_id=application_id,
        archive_path=archive_path, archive_type=archive_type, batch_size=batch_size,
        datastore_types=datastore_types, exclude_types=exclude_types, privacy=privacy,
        privacy_secret=privacy_secret, resume=resume, force_overwrite=force_overwrite,
        no_static_files=no_static_files, verbose=verbose, readers=readers,
    )
    with _user_errors(), using_site(server) as site:
        return _download(args, site, progress=progress)


def upload(
    server: str | Site,
    course_url_prefix: str,
    *,
    type: DataType,
    archive_path: str | os.PathLike[str],
    archive_type: ArchiveType | None = None,
    application_id: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    datastore_types: Kinds = (),
    exclude_types: Kinds = (),
    resume: bool = False,
    force_overwrite: bool = False,
    verbose: bool = False,
    progress: bool = True,
) -> UploadResult:
    """Upload an archive into a course (``courseport upload``).

    ``archive_type`` defaults to what ``archive_path`` is (a directory or a
    zip file). Every row is read and checked before the first write; a
    course upload needs an empty course unless ``force_overwrite``, and an
    existing entity is refused unless ``force_overwrite`` or ``resume`` (skip
    what an interrupted upload already wrote). The site's writer lock is held
    throughout. Returns the rows and files written and skipped.
    """
    args = _args(
        "upload", type, course_url_prefix, server, application_id=application_id,
        archive_path=archive_path, archive_type=archive_type, batch_size=batch_size,
        datastore_types=datastore_types, exclude_types=exclude_types, resume=resume,
        force_overwrite=force_overwrite, verbose=verbose,
    )
    with _user_errors(), using_site(server) as site, site.exclusive(_describe(args)):
        return _upload(args, site, progress=progress)


def delete(
    server: str | Site,
    course_url_prefix: str,
    *,
    type: DataType,
    application_id: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    datastore_types: Kinds = (),
    exclude_types: Kinds = (),
    confirmed: bool = False,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    progress: bool = True,
) -> DeleteResult:
    """Delete a course's datastore kinds, or the whole course (``courseport delete``).

    What is about to go (kinds, counts, namespace, title) is written to
    ``stdout`` (default ``sys.stdout``). Unless ``confirmed``, the call then
    asks for ``YES, DELETE`` on ``stdin`` (default ``sys.stdin``) and refuses
    any other answer, or none, deleting nothing. ``type="course"`` also
    removes the course itself, so its prefix is free again. The site's
    writer lock is held throughout. Returns the rows deleted per kind.
    """
    args = _args(
        "delete", type, course_url_prefix, server, application_id=application_id,
        batch_size=batch_size, datastore_types=datastore_types, exclude_types=exclude_types,
    )
    confirm = (lambda expected: expected) if confirmed else None
    with _user_errors(), using_site(server) as site, site.exclusive(_describe(args)):
        return _delete(args, site, stdin=stdin, stdout=stdout, progress=progress, confirm=confirm)


def run_job(
    server: str | Site,
    course_url_prefix: str,
    *,
    job: str | type[Job],
    job_args: str | Iterable[str] = (),
    application_id: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    disable_remote: bool = False,
    verbose: bool = False,
) -> Any:
    """Run a job (``courseport run``): a :class:`courseport.jobs.Job` subclass or its dotted path.

    The job parses ``job_args`` (a list, or one string split on whitespace)
    with its own parser, and sees the other arguments as ``job.etl_args``
    (``batch_size`` and ``verbose`` among them); a :class:`~courseport.jobs.CourseJob` is bound to
    the course and its store first (under the site's writer lock).
    ``disable_remote`` is for jobs that need no site. Returns what the job's
    ``main()`` returned.
    """
    from ..jobs.runner import run

    dotted = job if isinstance(job, str) else f"{job.__module__}.{job.__qualname__}"
    args = _args(
        "run", dotted, course_url_prefix, server, application_id=application_id,
        job_args=job_args.split() if isinstance(job_args, str) else list(job_args),
        batch_size=batch_size, disable_remote=disable_remote, verbose=verbose,
    )
    return run(args, server)


def verify(
    archive_path: str | os.PathLike[str], *, archive_type: ArchiveType | None = None
) -> Verification:
    """Re-read an archive and say what is wrong with it (``courseport verify``); never raises on a broken one.

    Checks the container, the manifest, every member's framing, row counts
    and checksums, the course files, and every row against its kind's schema.
    ``archive_type`` defaults to what ``archive_path`` is. See
    :attr:`Verification.ok` and :meth:`Verification.lines`.
    """
    return _verify(archive_path, archive_type)


# --- shared ------------------------------------------------------------------------


def _args(
    mode: str,
    type: str,
    course_url_prefix: str,
    server: str | Site,
    *,
    archive_path: str | os.PathLike[str] | None = None,
    archive_type: str | None = None,
    datastore_types: Kinds = (),
    exclude_types: Kinds = (),
    **options: Any,
) -> EtlArgs:
    """The keywords as the command line's EtlArgs, checked by the command line's rules."""
    args = EtlArgs(
        mode=mode,
        type=type,
        course_url_prefix=course_url_prefix,
        server=server.description if isinstance(server, Site) else server,
        archive_path=Path(archive_path) if archive_path is not None else None,
        archive_type=archive_type or "zip",
        archive_type_given=archive_type is not None,
        datastore_types=_kinds(datastore_types, "datastore_types"),
        exclude_types=_kinds(exclude_types, "exclude_types"),
        **options,
    )
    validate(args)
    return args


def _kinds(value: Kinds, flag: str) -> list[str]:
    if isinstance(value, str):
        return _split_types(value, flag)
    return list(value)


def _describe(args: EtlArgs) -> str:
    """The command as others are told of it (never its secrets)."""
    return f"courseport {args.mode} {args.type} {args.course_url_prefix}"


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Data the kind's rules cannot handle (e.g. a key a privacy rule cannot hash)
    is the user's problem, reported in one line like every other."""
    try:
        yield
    except (SchemaError, RowError) as exc:
        raise EtlError(str(exc)) from None

