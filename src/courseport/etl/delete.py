"""``delete datastore`` and ``delete course`` (spec §6.7).

Both list what they will delete (kinds, counts, namespace, course title)
and go on only when ``YES, DELETE`` is typed (or piped on stdin).
``delete course``, which Course Builder never had, also removes the
course's rule, so the prefix is free again.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Callable, TextIO

from ..models import is_internal_kind

#: kinds of the default namespace that belong to the site, not to a course
SITE_KINDS = ("ConfigPropertyEntity",)
from .args import EtlArgs
from .download import LOCAL_MIN_BATCH
from .errors import EtlError, check_app_id
from .progress import Progress
from .site import EtlSite

log = logging.getLogger("courseport.etl")

CONFIRMATION = "YES, DELETE"


@dataclass
class DeleteResult:
    namespace: str
    rows: dict[str, int] = field(default_factory=dict)
    course_removed: bool = False


def _ask(prompt: str, stdin: TextIO, stdout: TextIO) -> str:
    stdout.write(prompt)
    stdout.flush()
    line = stdin.readline()
    return line.rstrip("\r\n")


def delete(
    args: EtlArgs,
    site: EtlSite,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    progress: bool = True,
    confirm: Callable[[str], str] | None = None,
) -> DeleteResult:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    course = site.course(args.course_url_prefix)
    check_app_id(args.application_id, site.app_id)
    if not course.editable and args.type == "course":
        raise EtlError(f"course {course.slug} is a folder course: delete its folder, not its data")
    kinds = [
        kind for kind in site.kinds(course.namespace)
        if not is_internal_kind(kind)
        # a course in the default namespace shares it with the site's settings
        and not (course.namespace == "" and kind in SITE_KINDS)
    ]
    counts = {kind: site.count(kind, course.namespace) for kind in kinds}
    what = "course {}, with its files and all its data" if args.type == "course" else "all datastore data of course {}"
    stdout.write(
        f"About to delete {what.format(course.slug)} ({course.title or 'untitled'}), "
        f"namespace {course.namespace!r} on {site.description}:\n"
    )
    for kind in kinds:
        stdout.write(f"  {kind:<30}{counts[kind]:>12,}\n")
    if not kinds:
        stdout.write("  (no entities)\n")
    answer = confirm(CONFIRMATION) if confirm else _ask(f"Type {CONFIRMATION!r} to confirm: ", stdin, stdout)
    if answer != CONFIRMATION:
        raise EtlError(f"Delete not confirmed (expected {CONFIRMATION!r}). Aborting; nothing was deleted")
    batch = max(args.batch_size, LOCAL_MIN_BATCH) if site.description.startswith("sqlite:") else args.batch_size
    result = DeleteResult(course.namespace)
    for kind in kinds:
        bar = Progress(kind, counts[kind], enabled=progress)
        deleted = 0
        while True:
            keys, _ = site.keys_page(kind, course.namespace, batch_size=batch, cursor=None)
            if not keys:
                break
            site.delete(keys)
            deleted += len(keys)
            bar.advance(len(keys))
        bar.finish()
        result.rows[kind] = deleted
    if args.type == "course":
        site.remove_course(course)
        result.course_removed = True
    return result
