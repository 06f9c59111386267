"""The OpenAPI document of the remote API (served at ``/api/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

from .. import __version__

_KEY = {
    "type": "object",
    "description": "A datastore key: namespace and path of [kind, id or name] pairs "
                   "(the last id may be null: an incomplete key).",
    "properties": {"ns": {"type": "string"}, "path": {"type": "array", "items": {"type": "array"}}},
    "required": ["path"],
}
_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_COURSE = {
    "type": "object",
    "properties": {name: {"type": kind} for name, kind in (
        ("slug", "string"), ("raw", "string"), ("namespace", "string"), ("version", "string"),
        ("title", "string"), ("editable", "boolean"))},
}


def _json(schema: dict | None = None) -> dict:
    return {"content": {"application/json": {"schema": schema or {"type": "object"}}}}


def _op(summary: str, *, params: list[tuple[str, bool]] = (), body: dict | None = None,  # type: ignore[assignment]
        ok: dict | None = None, status: str = "200", body_type: str = "application/json") -> dict:
    op: dict[str, Any] = {
        "summary": summary,
        "security": [{"basic": []}],
        "responses": {
            status: {"description": "done", **(ok or _json())},
            "400": {"description": "a bad request", **_json(_ERROR)},
            "401": {"description": "no, wrong or revoked credentials", **_json(_ERROR)},
            "403": {"description": "not an admin, or plain http from another machine", **_json(_ERROR)},
            "413": {"description": "a body, batch, entity or page over its limit", **_json(_ERROR)},
            "429": {"description": "too many failed sign-ins: locked for a while", **_json(_ERROR)},
        },
    }
    if params:
        op["parameters"] = [
            {"name": name, "in": "query", "required": required, "schema": {"type": "string"}}
            for name, required in params
        ]
    if body is not None:
        op["requestBody"] = {"required": True, "content": {body_type: {"schema": body}}}
    return op


def _obj(**props: Any) -> dict:
    return {"type": "object", "properties": props}


def openapi_document() -> dict:
    string, integer, nullable_string = {"type": "string"}, {"type": "integer"}, {"type": ["string", "null"]}
    keys = _obj(keys={"type": "array", "items": _KEY, "maxItems": 20000}, keys_only={"type": "boolean"})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "courseport remote API",
            "version": f"1 (courseport {__version__})",
            "description": "Admin-only. HTTP Basic with an admin's email and an app-specific password "
                           "(courseport app-password create). Entities cross as wire lines: "
                           '{"k": key, "s": signature, "d": properties}.',
        },
        "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}},
        "paths": {
            "/api/v1/openapi.json": {"get": {"summary": "This document (no sign-in needed)", "security": [],
                                             "responses": {"200": {"description": "done", **_json()}}}},
            "/api/v1/site": {"get": _op("Application id and courses", ok=_json(_obj(
                app_id=string, api_version=integer, courses={"type": "array", "items": _COURSE})))},
            "/api/v1/course": {
                "get": _op("The course at a URL prefix", params=[("prefix", True)], ok=_json(_COURSE)),
                "delete": _op("Remove a course (its rule; its data stays until deleted)",
                              params=[("prefix", True)]),
            },
            "/api/v1/courses": {"post": _op("Create an empty course", status="201",
                                            body=_obj(prefix=string, title=string), ok=_json(_COURSE))},
            "/api/v1/kinds": {"get": _op("Kinds of a namespace with their counts", params=[("namespace", False)],
                                         ok=_json(_obj(kinds={"type": "object"})))},
            "/api/v1/changes": {"get": _op("The namespace's change count (equal counts: nothing changed)",
                                           params=[("namespace", False)])},
            "/api/v1/export": {"post": _op(
                "Archive rows of kinds, in key order, from one snapshot, streamed (application/x-ndjson): "
                "row lines, and control lines '!{...}' (changes; kind and count; a cursor after each "
                "page; end; error). A secret applies --privacy on the server.",
                body=_obj(namespace=string, kinds={"type": "array", "items": string}, cursor=nullable_string,
                          secret=nullable_string, page_size=integer, changes={"type": ["integer", "null"]}),
                ok={"content": {"application/x-ndjson": {"schema": string}}})},
            "/api/v1/query": {"post": _op("A page of a kind's entities (or keys) in key order",
                                          body=_obj(namespace=string, kind=string, cursor=nullable_string,
                                                    limit=integer, keys_only={"type": "boolean"}))},
            "/api/v1/lookup": {"post": _op("Entities (or whether they exist) by key", body=keys)},
            "/api/v1/put": {"post": _op("Write entities: one wire line each (at most 20,000, 64 MiB, "
                                        "1 MiB an entity); incomplete keys get ids, returned",
                                        body=string, body_type="application/x-ndjson")},
            "/api/v1/delete": {"post": _op("Delete entities by key", body=keys)},
            "/api/v1/allocate_ids": {"post": _op("Ids no entity has or will be given",
                                                 body=_obj(key=_KEY, count=integer))},
            "/api/v1/files": {"get": _op("A course's files (all=1: every path, else those a course "
                                         "archive holds)", params=[("prefix", True), ("all", False)])},
            "/api/v1/file": {
                "get": _op("Read a course file", params=[("prefix", True), ("path", True)],
                           ok={"content": {"application/octet-stream": {"schema": string}}}),
                "put": _op("Write a course file", params=[("prefix", True), ("path", True), ("draft", False)],
                           body=string, body_type="application/octet-stream"),
                "delete": _op("Delete a course file", params=[("prefix", True), ("path", True)]),
            },
            "/api/v1/leases": {"post": _op("Take the store's writer lease (409 names its holder)",
                                           status="201", body=_obj(what=string))},
            "/api/v1/leases/{lease}": {
                "put": _op("Renew a writer lease"),
                "delete": _op("Release a writer lease"),
            },
        },
    }
