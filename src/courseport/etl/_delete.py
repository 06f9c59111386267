"""``delete datastore`` and ``delete course`` (spec §6.7).

Both list what they will delete (kinds, counts, namespace, course title)
and go on only when ``YES, DELETE`` is typed (or piped on stdin); a stdin
that gives no answer (closed, at its end, unreadable) is refused.
``delete datastore`` honours ``--datastore_types`` and ``--exclude_types``
as a download does (Course Builder ignored them): only the chosen kinds
go, and an unknown kind is refused before anything is asked.
``delete course``, which Course Builder never had, also removes the
course's rule, so the prefix is free again.
"""

from __future__ import annotations

import io
import logging
import sys
from dataclasses import dataclass, field
from typing import Callable, TextIO

from ..models import is_internal_kind

#: kinds of the default namespace that belong to the site, not to a course
SITE_KINDS = ("ConfigPropertyEntity",)
from ..sites import Site
from .args import EtlArgs
from .errors import EtlError, check_app_id
from ._download import select_kinds
from .progress import Progress, is_terminal, printable

log = logging.getLogger("courseport.etl")

CONFIRMATION = "YES, DELETE"


@dataclass
class DeleteResult:
    namespace: str
    rows: dict[str, int] = field(default_factory=dict)
    course_removed: bool = False


#: the longest answer read: a stdin that never ends a line (/dev/zero) is not read for ever
_MAX_ANSWER = 256


def _no_answer(why: str, stdout: TextIO) -> EtlError:
    stdout.write("\n")  # the prompt's line ends; the refusal is on stderr
    stdout.flush()
    return EtlError(
        f"Delete not confirmed: standard input {why}. Type {CONFIRMATION!r} at the prompt, "
        f"or pipe it: echo '{CONFIRMATION}' | courseport delete ...; nothing was deleted"
    )


def _ask(prompt: str, stdin: TextIO | None, stdout: TextIO) -> str:
    """One line typed or piped on ``stdin``; a stdin that cannot give one is refused, saying how to confirm."""
    stdout.write(prompt)
    stdout.flush()
    if stdin is None:  # `courseport delete ... <&-`: Python has no sys.stdin then
        raise _no_answer("is closed", stdout)
    try:
        line = stdin.readline(_MAX_ANSWER)
    except UnicodeDecodeError:
        return "(not text)"  # not the confirmation, whatever it was
    except IsADirectoryError:
        raise _no_answer("is a directory", stdout) from None
    except (OSError, ValueError) as exc:  # not open for reading, or a closed file
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise _no_answer(f"cannot be read ({reason})", stdout) from None
    if not line:
        raise _no_answer("ended without an answer", stdout)
    if not is_terminal(stdin):  # a piped answer is not echoed: end the prompt's line
        stdout.write("\n")
    return line.rstrip("\r\n")


def delete(
    args: EtlArgs,
    site: Site,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    progress: bool = True,
    confirm: Callable[[str], str] | None = None,
) -> DeleteResult:
    stdin = stdin if stdin is not None else sys.stdin
    # with stdout closed, Python has no sys.stdout: the listing goes nowhere, as print()'s would
    stdout = stdout if stdout is not None else (sys.stdout or io.StringIO())
    course = site.course(args.course_url_prefix)
    check_app_id(args.application_id, site.app_id)
    if not course.editable and args.type == "course":
        raise EtlError(f"course {course.slug} is a folder course: delete its folder, not its data")
    available = sorted(
        kind for kind in site.kinds(course.namespace)
        if not is_internal_kind(kind)
        # a course in the default namespace shares it with the site's settings
        and not (course.namespace == "" and kind in SITE_KINDS)
    )
    # --datastore_types / --exclude_types (delete datastore only: args refuses them for a course)
    narrowed = bool(args.datastore_types or args.exclude_types)
    kinds = select_kinds(args, available, "delete") if narrowed else available
    counts = {kind: site.count(kind, course.namespace) for kind in kinds}
    if args.type == "course":
        what = "course {}, with its files and all its data"
    elif narrowed:
        what = f"{len(kinds)} of the {len(available)} kinds of course {{}}"
    else:
        what = "all datastore data of course {}"
    stdout.write(
        f"About to delete {what.format(course.slug)} ({printable(course.title or 'untitled')}), "
        f"namespace {course.namespace!r} on {site.description}:\n"
    )
    for kind in kinds:
        stdout.write(f"  {printable(kind):<30}{counts[kind]:>12,}\n")
    if not kinds:
        stdout.write("  (no entities)\n")
    kept = [kind for kind in available if kind not in kinds]
    if kept:
        stdout.write(f"Kept: {printable(', '.join(kept))}\n")
    answer = confirm(CONFIRMATION) if confirm else _ask(f"Type {CONFIRMATION!r} to confirm: ", stdin, stdout)
    if answer != CONFIRMATION:
        raise EtlError(f"Delete not confirmed (expected {CONFIRMATION!r}). Aborting; nothing was deleted")
    batch = max(args.batch_size, site.min_batch_size)
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
