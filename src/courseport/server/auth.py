"""Who may call the remote API: HTTP Basic with an admin's email and app-specific password.

Every request is checked on its own (the server keeps no sessions for the
API), against records in the store, so any number of workers agree. Failures
for one account are slowed after a few, then locked out for a while; plain
http is refused from a client off loopback unless the operator opted in.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .accounts import SLOW_AFTER, Account, Accounts

log = logging.getLogger("courseport.server")

REALM = 'Basic realm="courseport", charset="UTF-8"'


@dataclass(frozen=True)
class AuthPolicy:
    allow_insecure_http: bool = False


def error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    email, sep, password = decoded.partition(":")
    return (email, password) if sep else None


async def authenticate(request: Request, accounts: Accounts, policy: AuthPolicy) -> Account | Response:
    """The admin making ``request``, or the response that refuses it."""
    client = request.client.host if request.client else None
    if request.url.scheme == "http" and not is_loopback(client) and not policy.allow_insecure_http:
        return error(403, "plain http from another machine is refused: use https "
                          "(or start the server with --allow_insecure_http on a trusted network)")
    credentials = _credentials(request)
    if credentials is None:
        return error(401, "sign in with an admin's email and app-specific password (HTTP Basic)",
                     **{"WWW-Authenticate": REALM})
    email, password = credentials
    wait = await run_in_threadpool(accounts.locked_for, email)
    if wait > 0:
        return error(429, f"too many failed sign-ins for this account: try again in {int(wait) + 1} s",
                     **{"Retry-After": str(int(wait) + 1)})
    account = await run_in_threadpool(accounts.check_app_password, email, password)
    if account is None:
        failures = await run_in_threadpool(accounts.failed, email)
        log.warning("API sign-in failed for an account (%d in a row) from %s", failures, client)
        if failures > SLOW_AFTER:
            await asyncio.sleep(min(failures - SLOW_AFTER, 4) * 0.5)
        return error(401, "wrong email or app-specific password (a sign-in password is not "
                          "accepted here: create an app-specific password)", **{"WWW-Authenticate": REALM})
    await run_in_threadpool(accounts.succeeded, email)
    if not account.admin:
        return error(403, f"{account.email} is not an admin: the remote API is for admins only")
    return account
