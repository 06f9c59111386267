"""The admin's pages, part two: archives from the browser (issue 9).

``/admin/archives`` starts a download of a course or of its datastore, with
the command line's options, or an upload of a posted archive into a course;
each runs as a background job (:mod:`courseport.server.archives`). The page
polls ``/admin/archives/jobs`` to show each job's progress, rate and ETA
as it runs; a finished download is fetched from ``/admin/archives/file``.
All of it needs an admin's session, and every form its XSRF token.
"""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ...errors import UserError
from ..accounts import Account
from ..archives import ArchiveJobError, ArchiveJobs
from .admin import AdminPages
from .render import NO_CACHE, status_page
from .sessions import Session

TAB = "archives"
_KIND_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,199}$")
#: the most an uploaded archive's form may hold besides the file
_MAX_FIELDS = 20


class ArchivePages:
    def __init__(self, admin: AdminPages, jobs: ArchiveJobs) -> None:
        self.admin = admin
        self.jobs = jobs

    def routes(self) -> list[Route]:
        guard = self.admin.guard
        return [
            Route("/admin/archives", guard(self.page), methods=["GET", "POST"]),
            Route("/admin/archives/import", guard(self.upload), methods=["POST"]),
            Route("/admin/archives/jobs", guard(self.list_jobs), methods=["GET"]),
            Route("/admin/archives/file", guard(self.file), methods=["GET"]),
        ]

    async def page(self, request: Request, session: Session, who: Account) -> Response:
        async def change(form: dict[str, str]) -> str | Response:
            if form.get("action") == "delete":
                job = await run_in_threadpool(self.jobs.delete, form.get("id", ""))
                self.admin.log.record(who.email, "delete archive", f"job {job.id} ({job.action} {job.type} {job.course})")
                return f"Deleted job {job.id}."
            if form.get("action") == "cancel":
                job = await run_in_threadpool(self.jobs.cancel, form.get("id", ""), who.email)
                self.admin.log.record(who.email, "cancel archive job", f"job {job.id} ({job.action} {job.type} {job.course})")
                return f"Cancelling job {job.id}: it stops within a second."
            if form.get("action") == "export":
                job = await run_in_threadpool(self._export, who, form)
                return RedirectResponse(f"/admin/archives?started={job.id}", status_code=303)
            raise UserError("unknown action")

        outcome = await self.admin.post(request, session, TAB, change)
        if isinstance(outcome, Response):
            return outcome
        return await self._show(request, session, outcome.status, outcome.message, outcome.error)

    async def _show(self, request: Request, session: Session, status: int = 200, message: str | None = None,
                    error: str | None = None) -> Response:
        days = self.admin.site.setting("export_retention_days")
        await run_in_threadpool(self.jobs.expire, days)
        jobs = [job.public() for job in await run_in_threadpool(self.jobs.all)]
        courses = [rule.slug for rule in self.admin.site.rules()]
        if message is None and request.query_params.get("started"):
            message = f"Started job {request.query_params['started']}: it goes on if you leave this page."
        return self.admin.render(request, session, TAB, status, jobs=jobs, courses=courses, retention_days=days,
                                 message=message, error=error)

    def _export(self, who: Account, form: dict[str, str]):
        course = self._course(form.get("course", ""))
        privacy = bool(form.get("privacy"))
        secret = form.get("secret") or None
        kinds, exclude = _kinds(form.get("kinds", ""), "kinds"), _kinds(form.get("exclude", ""), "kinds to leave out")
        job = self.jobs.start_download(who.email, course, form.get("type", ""), privacy=privacy, secret=secret,
                                       kinds=kinds, exclude=exclude)
        self.admin.log.record(who.email, "start download", f"job {job.id}: {job.type} {job.course} ({job.options})")
        return job

    async def upload(self, request: Request, session: Session, who: Account) -> Response:
        length = request.headers.get("content-length", "")
        if not length.isdigit():  # a browser always says; without it the size is unknown until it is on disk
            return status_page(411, "/admin/archives")
        try:
            await run_in_threadpool(self.jobs.check_room, int(length))
        except UserError as exc:  # answered before the body is read: nothing was written
            return await self._show(request, session, 413, error=str(exc))
        try:
            form = await request.form(max_files=1, max_fields=_MAX_FIELDS)
        except Exception:  # starlette raises several kinds for a malformed body
            return status_page(400, "/admin/archives")
        token = form.get("xsrf_token")
        if not self.admin.sessions.check(session, f"admin-{TAB}", token if isinstance(token, str) else None):
            return status_page(403, "/admin/archives")
        archive, course, type_ = form.get("archive"), form.get("course"), form.get("type")
        try:
            if not isinstance(archive, UploadFile) or not archive.filename:
                raise UserError("choose an archive (a .zip made by download) to upload")
            slug = self._course(course if isinstance(course, str) else "")
            job = await run_in_threadpool(self.jobs.start_upload, who.email, slug,
                                          type_ if isinstance(type_, str) else "", archive.file,
                                          _file_name(archive.filename))
        except UserError as exc:
            return await self._show(request, session, 400, error=str(exc))
        finally:
            await form.close()
        self.admin.log.record(who.email, "start upload", f"job {job.id}: {job.type} {job.course} ({job.options})")
        return RedirectResponse(f"/admin/archives?started={job.id}", status_code=303)

    async def list_jobs(self, request: Request, session: Session, who: Account) -> Response:
        jobs = await run_in_threadpool(self.jobs.all)
        return JSONResponse({"jobs": [job.public() for job in jobs]}, headers=NO_CACHE)

    async def file(self, request: Request, session: Session, who: Account) -> Response:
        job_id = request.query_params.get("id", "")
        try:
            path = await run_in_threadpool(self.jobs.file_of, job_id)
        except ArchiveJobError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404, headers=NO_CACHE)
        self.admin.log.record(who.email, "fetch archive", f"job {job_id}: {path.name}")
        return FileResponse(path, media_type="application/zip", filename=path.name,
                            headers={"Cache-Control": "no-store"})

    def _course(self, slug: str) -> str:
        if slug not in {rule.slug for rule in self.admin.site.rules()}:
            raise UserError(f"no course at {slug!r}: choose one of the list")
        return slug


def _kinds(text: str, what: str) -> list[str]:
    names = [name.strip() for name in text.replace("\n", ",").split(",") if name.strip()]
    for name in names:
        if not _KIND_NAME.match(name):
            raise UserError(f"{name[:60]!r} is not a kind name ({what}: names such as Student, separated by commas)")
    return names


def _file_name(name: str) -> str:
    """A posted file's name, as words for the job's record (never a path)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c if c.isprintable() else "?" for c in base)[:100] or "an archive"
