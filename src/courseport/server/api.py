"""The remote API, version 1: what etl's RemoteSite (and a job's datastore client) speak.

Every route is admin-only (HTTP Basic, see :mod:`.auth`) but the OpenAPI
document. Entities and keys cross in the wire form of
:mod:`courseport.datastore.wire`; a download's rows cross already encoded as
archive rows (privacy applied here, so no PII leaves the server) in one
streamed response per download, read from one snapshot. Each request stands
alone: no state is kept between requests but what the store holds.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable, Iterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route

from .._locks import LockedError
from ..courses.site import Course
from ..courses.site import Site as Courses
from ..courses.vfs import MAX_FILE_SIZE
from ..datastore import Backend, BadCursorError, Entity, Key, lease
from ..datastore.wire import (
    WireError,
    entity_line,
    iter_lines,
    key_from_json,
    key_to_json,
)
from ..errors import UserError
from ..sites import CourseInfo, LocalSite, Reading
from ..sites.base import course_info
from ..sites.protocol import (
    API,
    LEASE_HEADER,
    MAX_BATCH_BYTES,
    MAX_ITEMS,
    MAX_JSON_BYTES,
)
from .accounts import Account, Accounts
from .auth import AuthPolicy, authenticate, error
from .batches import Checkers, PreparedBatch
from .checks import (
    ApiError,
    as_entity,
    check_key,
    check_namespace,
    check_text,
    wire_rows,
)
from .openapi import openapi_document

log = logging.getLogger("courseport.server")

class Api:
    """The API's routes over one store."""

    def __init__(self, store: Backend, policy: AuthPolicy) -> None:
        self.store = store
        self.site = LocalSite(store)
        self.courses = Courses(store)
        self.accounts = Accounts(store)
        self.policy = policy
        self.checkers = Checkers()

    def close(self) -> None:
        self.checkers.close()

    def routes(self) -> list[BaseRoute]:
        """Under one mount: a learner's page is not matched against every API path."""
        admin = self._admin
        return [Mount(API, routes=[
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/site", admin(self.site_info), methods=["GET"]),
            Route("/course", admin(self.course), methods=["GET"]),
            Route("/course", admin(self.delete_course, writes=True), methods=["DELETE"]),
            Route("/courses", admin(self.create_course, writes=True), methods=["POST"]),
            Route("/kinds", admin(self.kinds), methods=["GET"]),
            Route("/changes", admin(self.changes), methods=["GET"]),
            Route("/export", admin(self.export), methods=["POST"]),
            Route("/files", admin(self.files), methods=["GET"]),
            Route("/file", admin(self.read_file), methods=["GET"]),
            Route("/file", admin(self.write_file, writes=True), methods=["PUT"]),
            Route("/file", admin(self.delete_file, writes=True), methods=["DELETE"]),
            Route("/lookup", admin(self.lookup), methods=["POST"]),
            Route("/put", admin(self.put, writes=True), methods=["POST"]),
            Route("/delete", admin(self.delete, writes=True), methods=["POST"]),
            Route("/query", admin(self.query), methods=["POST"]),
            Route("/allocate_ids", admin(self.allocate_ids), methods=["POST"]),
            Route("/leases", admin(self.take_lease), methods=["POST"]),
            Route("/leases/{lease}", admin(self.renew_lease), methods=["PUT"]),
            Route("/leases/{lease}", admin(self.release_lease), methods=["DELETE"]),
        ])]

    def _admin(self, handler: Callable[[Request, Account], Awaitable[Response]], *, writes: bool = False):
        async def endpoint(request: Request) -> Response:
            who = await authenticate(request, self.accounts, self.policy)
            if isinstance(who, Response):
                return who
            try:
                if writes:
                    await run_in_threadpool(self._check_writer, request.headers.get(LEASE_HEADER))
                return await handler(request, who)
            except ApiError as exc:
                return error(exc.status, str(exc))
            except BadCursorError as exc:
                return error(400, str(exc))
            except UserError as exc:  # the request's fault: a course not found, a bad rule
                return error(404 if isinstance(exc, LookupError) else 400, str(exc))
        return endpoint

    def _check_writer(self, given: str | None) -> None:
        """A write goes on only under the live writer lease, if there is one: its
        holder's (the lease in the request's header), or anyone's when none is held."""
        held = lease.current(self.store)
        if held is None and given:
            raise ApiError(409, "this command's writer lease lapsed (it was not renewed in time), so another "
                                "writer may have begun: run the command again (with --resume to go on)")
        if held is not None and given != held.id:
            raise ApiError(409, f"the server's store is in use by {held.describe()}: wait for it to finish")

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document())

    # --- the site and its courses -------------------------------------------

    async def site_info(self, request: Request, who: Account) -> Response:
        def info() -> dict:
            return {"app_id": self.store.app_id, "api_version": 1,
                    "courses": [_course_json(course_info(c)) for c in self.courses.courses()]}
        return JSONResponse(await run_in_threadpool(info))

    async def course(self, request: Request, who: Account) -> Response:
        prefix = _param(request, "prefix")
        return JSONResponse(_course_json(await run_in_threadpool(self.site.course, prefix)))

    async def create_course(self, request: Request, who: Account) -> Response:
        body = await _json_body(request)
        prefix, title = _str(body, "prefix"), _str(body, "title", optional=True)
        course = await run_in_threadpool(self.courses.add_course, prefix, title)
        log.info("%s created course %s", who.email, course.slug)
        return JSONResponse(_course_json(course_info(course)), status_code=201)

    async def delete_course(self, request: Request, who: Account) -> Response:
        course = await run_in_threadpool(self.site.course, _param(request, "prefix"))
        await run_in_threadpool(self.site.remove_course, course)
        log.info("%s removed course %s", who.email, course.slug)
        return JSONResponse({"removed": course.slug})

    # --- kinds and rows -----------------------------------------------------

    async def kinds(self, request: Request, who: Account) -> Response:
        namespace = check_namespace(_param(request, "namespace", ""))

        def counts() -> dict[str, int]:
            with self.store.snapshot() as snap:
                return {kind: snap.count(kind, namespace) for kind in snap.kinds(namespace)}
        return JSONResponse({"kinds": await run_in_threadpool(counts)})

    async def changes(self, request: Request, who: Account) -> Response:
        namespace = check_namespace(_param(request, "namespace", ""))

        def count() -> int | None:
            with self.store.snapshot() as snap:
                return snap.change_count(namespace)
        return JSONResponse({"changes": await run_in_threadpool(count)})

    async def export(self, request: Request, who: Account) -> Response:
        """Rows of ``kinds`` in order, from one snapshot, streamed as archive rows.

        Lines are rows, or control records ``!{...}``: ``changes`` first, then per
        kind ``kind`` and ``count``, a ``cursor`` after every page, and ``end``."""
        body = await _json_body(request)
        namespace = check_namespace(_str(body, "namespace", optional=True) or "")
        kinds = body.get("kinds")
        if not (isinstance(kinds, list) and kinds and all(isinstance(k, str) and k for k in kinds)):
            raise ApiError(400, "kinds must be a list of kind names")
        if len(kinds) > 1000:
            raise ApiError(413, "at most 1,000 kinds a request")
        for kind in kinds:
            check_text(kind, "a kind")
        cursor = _str(body, "cursor", optional=True)
        secret = _str(body, "secret", optional=True)
        page_size = _int(body, "page_size", 1, MAX_ITEMS, default=5000)
        expected = body.get("changes")
        if expected is not None and type(expected) is not int:
            raise ApiError(400, "changes must be an integer")
        opened = self.site.reading()
        reading = await run_in_threadpool(opened.__enter__)
        try:
            now = await run_in_threadpool(reading.change_count, namespace)
            if expected is not None and now is not None and now != expected:
                raise ApiError(409, "the data changed since this download began "
                                    f"(change count {now}, not {expected})")
            if cursor is not None:  # checked now, while the status can still say so
                await run_in_threadpool(reading.rows_page, kinds[0], namespace, batch_size=1,
                                        cursor=cursor, secret=None)
        except BaseException:
            opened.__exit__(None, None, None)
            raise
        log.info("%s exports %s of namespace %r%s", who.email, ",".join(kinds), namespace,
                 " with --privacy" if secret is not None else "")
        return StreamingResponse(
            _export_lines(opened, reading, namespace, kinds, cursor, secret, page_size, now),
            media_type="application/x-ndjson",
        )

    async def query(self, request: Request, who: Account) -> Response:
        body = await _json_body(request)
        namespace = check_namespace(_str(body, "namespace", optional=True) or "")
        kind = check_text(_str(body, "kind"), "kind")
        cursor = _str(body, "cursor", optional=True)
        limit = _int(body, "limit", 1, MAX_ITEMS, default=1000)
        keys_only = bool(body.get("keys_only"))

        def page() -> dict:
            found = self.store.fetch_page(kind, namespace, cursor=cursor, limit=limit, keys_only=keys_only)
            items = [key_to_json(k) for k in found.items] if keys_only else [entity_line(e) for e in found.items]
            return {"keys" if keys_only else "entities": items, "cursor": found.cursor}
        return JSONResponse(await run_in_threadpool(page))

    async def lookup(self, request: Request, who: Account) -> Response:
        body = await _json_body(request)
        keys = _keys(body)
        if body.get("keys_only"):
            return JSONResponse({"found": await run_in_threadpool(self.store.exists_multi, keys)})
        found = await run_in_threadpool(self.store.get_multi, keys)
        return JSONResponse({"entities": [None if e is None else entity_line(e) for e in found]})

    async def put(self, request: Request, who: Account) -> Response:
        body = await _body(request, MAX_BATCH_BYTES)
        return JSONResponse(await run_in_threadpool(self._put, body))

    def _put(self, body: bytes) -> dict:
        lines = [line for line in iter_lines([body]) if line.strip()]
        if len(lines) > MAX_ITEMS:
            raise ApiError(413, f"at most {MAX_ITEMS:,} entities a request")
        prepare = self.store.prepare_decoded
        if prepare is not None:
            checked = self.checkers.check(lines, prepare)
            if isinstance(checked, PreparedBatch):  # every key complete: written as it is
                self.store.write_prepared(checked.rows)
                return {"written": checked.count}
            rows = checked
        else:
            rows = wire_rows(lines)
        entities = [row if isinstance(row, Entity) else as_entity(row) for row in rows]
        keys = self.store.put_multi(entities)
        return {"written": len(keys), "keys": [key_to_json(k) for k in keys]}

    async def delete(self, request: Request, who: Account) -> Response:
        keys = _keys(await _json_body(request))
        await run_in_threadpool(self.store.delete_multi, keys)
        return JSONResponse({"deleted": len(keys)})

    async def allocate_ids(self, request: Request, who: Account) -> Response:
        body = await _json_body(request)
        key = _one_key(body.get("key"))
        count = _int(body, "count", 1, 1_000_000)
        if key.is_complete:
            raise ApiError(400, "allocate ids for an incomplete key (its last element without an id)")
        return JSONResponse({"ids": await run_in_threadpool(self.store.allocate_ids, key, count)})

    # --- course files -------------------------------------------------------

    async def _course(self, request: Request) -> Course:
        """The course the request names (resolved by its rule: its course.yaml is not read)."""
        return await run_in_threadpool(self.courses.course, _param(request, "prefix"))

    async def files(self, request: Request, who: Account) -> Response:
        course = await self._course(request)
        if request.query_params.get("all"):
            return JSONResponse({"paths": await run_in_threadpool(course.fs.list)})

        def infos() -> list[dict]:
            with self.site.reading() as reading:
                return [{"path": i.path, "size": i.size, "is_draft": i.is_draft}
                        for i in reading.files(course_info(course))]
        return JSONResponse({"files": await run_in_threadpool(infos)})

    async def read_file(self, request: Request, who: Account) -> Response:
        course, path = await self._course(request), _param(request, "path")
        data = await run_in_threadpool(course.fs.get, path)
        if data is None:
            raise ApiError(404, f"course {course.slug} has no file {path}")
        return Response(data, media_type="application/octet-stream")

    async def write_file(self, request: Request, who: Account) -> Response:
        course, path = await self._course(request), _param(request, "path")
        draft_text = request.query_params.get("draft", "none")
        drafts = {"true": True, "false": False, "none": None}
        if draft_text not in drafts:
            raise ApiError(400, "draft is true, false or none")
        data = await _body(request, MAX_FILE_SIZE)
        if not course.fs.editable:
            raise ApiError(409, f"course {course.slug} is a read-only folder course")
        info = await run_in_threadpool(lambda: course.fs.put(path, data, is_draft=drafts[draft_text]))
        return JSONResponse({"path": info.path, "size": info.size})

    async def delete_file(self, request: Request, who: Account) -> Response:
        course, path = await self._course(request), _param(request, "path")
        return JSONResponse({"deleted": bool(await run_in_threadpool(course.fs.delete, path))})

    # --- the writer lease (the store lock, for clients that are not on this machine) ---

    async def take_lease(self, request: Request, who: Account) -> Response:
        what = _str(await _json_body(request), "what")[:200]

        def take() -> lease.Lease:
            # only while no command on this machine holds the store's lock (which
            # then refuses while the lease lives): the two never write at once
            with self.store.exclusive(f"{what} (through the server, by {who.email})", wait=0):
                return lease.take(self.store, what, who.email)
        try:
            taken = await run_in_threadpool(take)
        except LockedError as exc:  # said without the store's path on this machine
            holder = str(exc).partition(" in use by ")[2] or "another command"
            return error(409, f"the server's store is in use by {holder}")
        log.info("%s began %r (writer lease %s)", who.email, what, taken.id[:8])
        return JSONResponse({"lease": taken.id, "seconds": lease.LEASE_SECONDS}, status_code=201)

    async def renew_lease(self, request: Request, who: Account) -> Response:
        lease_id = request.path_params["lease"]
        if not await run_in_threadpool(lease.renew, self.store, lease_id):
            return error(409, "this lease has expired or was taken over")
        return JSONResponse({"lease": lease_id, "seconds": lease.LEASE_SECONDS})

    async def release_lease(self, request: Request, who: Account) -> Response:
        lease_id = request.path_params["lease"]
        await run_in_threadpool(lease.release, self.store, lease_id)
        log.info("%s ended the work of writer lease %s", who.email, lease_id[:8])
        return JSONResponse({"released": lease_id})


def _control(record: dict) -> str:
    return "!" + json.dumps(record, separators=(",", ":")) + "\n"


def _export_lines(opened, reading: Reading, namespace: str, kinds: list[str], cursor: str | None,
                  secret: str | None, page_size: int, changes: int | None) -> Iterator[str]:
    try:
        yield _control({"changes": changes})
        for index, kind in enumerate(kinds):
            yield _control({"kind": kind, "count": reading.count(kind, namespace)})
            at = cursor if index == 0 else None
            while True:
                page = reading.rows_page(kind, namespace, batch_size=page_size, cursor=at, secret=secret)
                text = "\n".join(page.rows)
                yield (text + "\n" if text else "") + _control({"cursor": page.cursor})
                if page.cursor is None:
                    break
                at = page.cursor
        yield _control({"end": True})
    except UserError as exc:
        yield _control({"error": str(exc)})
    except Exception:  # noqa: BLE001 - the status is sent: say so in the stream, log the rest
        log.exception("export of namespace %r failed", namespace)
        yield _control({"error": "the server failed while exporting; see its log"})
    finally:
        opened.__exit__(None, None, None)


# --- request parsing ----------------------------------------------------------


def _course_json(course: CourseInfo) -> dict:
    return {"slug": course.slug, "raw": course.raw, "namespace": course.namespace,
            "version": course.version, "title": course.title, "editable": course.editable}


def _param(request: Request, name: str, default: str | None = None) -> str:
    value = request.query_params.get(name, default)
    if value is None:
        raise ApiError(400, f"the query parameter {name} is required")
    return value


async def _body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise ApiError(413, f"the request body is over the {limit:,}-byte limit: send smaller batches")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the request body is over the {limit:,}-byte limit: send smaller batches")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json_body(request: Request) -> dict:
    raw = await _body(request, MAX_JSON_BYTES)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "the request body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body is a JSON object")
    return body


def _str(body: dict, name: str, *, optional: bool = False) -> Any:
    value = body.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string")
    return value


def _int(body: dict, name: str, low: int, high: int, *, default: int | None = None) -> int:
    value = body.get(name, default)
    if type(value) is not int:
        raise ApiError(400, f"{name} must be an integer")
    if value > high:
        raise ApiError(413, f"{name} is over the limit of {high:,}")
    if value < low:
        raise ApiError(400, f"{name} must be at least {low}")
    return value


def _one_key(value: Any) -> Key:
    try:
        key = key_from_json(value)
    except WireError as exc:
        raise ApiError(400, str(exc)) from None
    return check_key(key)


def _keys(body: dict) -> list[Key]:
    keys = body.get("keys")
    if not isinstance(keys, list):
        raise ApiError(400, "keys must be a list of keys")
    if len(keys) > MAX_ITEMS:
        raise ApiError(413, f"at most {MAX_ITEMS:,} keys a request")
    out = [_one_key(value) for value in keys]
    if any(not key.is_complete for key in out):
        raise ApiError(400, "every key must be complete")
    return out


