"""``courseport run dotted.path.Job``: import the job, bind it, run it (spec §6.8)."""

from __future__ import annotations

import importlib
from typing import Any

from ..etl.args import EtlArgs
from ..etl.errors import EtlError, check_app_id
from ..etl.open import using_site
from ..sites import Site
from .base import CourseJob, Job


def load_job_class(dotted: str) -> type[Job]:
    module_name, _, class_name = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EtlError(f"cannot import job module {module_name!r}: {exc}") from None
    except SyntaxError as exc:
        raise EtlError(
            f"cannot import job module {module_name!r}: {exc.msg} ({exc.filename}, line {exc.lineno})"
        ) from None
    except Exception as exc:  # the module's own code failed while importing
        raise EtlError(
            f"cannot import job module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise EtlError(f"module {module_name!r} has no class {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, Job)):
        raise EtlError(f"{dotted} is not a courseport.jobs.Job subclass")
    return cls


def run(args: EtlArgs, server: str | Site | None = None) -> Any:
    """Build the job ``args.type`` names and run it; what its ``main()`` returned.

    A :class:`CourseJob` is bound to the course on ``server`` (default:
    ``args.server``), local or remote, and a datastore client for it; a Site
    given is used as it is and left open.
    """
    cls = load_job_class(args.type)
    job = cls(args)
    if not isinstance(job, CourseJob):
        return job.run()
    if args.disable_remote:
        raise EtlError(f"{args.type} is a CourseJob: it needs the site, so drop --disable_remote")
    with using_site(args.server if server is None else server, port=args.port, ca_file=args.ca_file) as site:
        check_app_id(args.application_id, site.app_id)
        with site.exclusive(f"courseport run {args.type} {args.course_url_prefix}"):
            job.bind(*site.job_binding(args.course_url_prefix))
            return job.run()
