"""Sessions in signed cookies, and the XSRF tokens bound to them.

A session cookie holds the signed-in email (or none), a random nonce and
when it was issued, signed with HMAC-SHA256 under a key kept in the store's
meta (so every worker and every machine on the store agrees). It is
HttpOnly and SameSite=Lax, and Secure unless the request came over plain http
(loopback, or an operator's explicit --allow_insecure_http). Signing in makes
a new nonce, so a session planted before sign-in is worth nothing after it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from ...courses.learning import User, Xsrf, user_id_for_email, xsrf_secret
from ...courses.learning.identity import store_secret
from ...datastore import Backend

COOKIE = "courseport_session"
MAX_AGE = 14 * 86400
#: the user id an XSRF token is bound to when nobody is signed in (as in Course Builder)
ANONYMOUS = "default"


@dataclass(frozen=True)
class Session:
    email: str | None
    nonce: str
    issued: int
    user: User | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "user", User(self.email, user_id_for_email(self.email)) if self.email else None)


class Sessions:
    """Reads and writes session cookies; mints and checks XSRF tokens for a session."""

    def __init__(self, store: Backend) -> None:
        self._key = store_secret(store, "session_key")
        self.xsrf = Xsrf(xsrf_secret(store))

    def _sign(self, body: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(self._key, body, hashlib.sha256).digest()).decode().rstrip("=")

    def read(self, request: Request) -> Session | None:
        raw = request.cookies.get(COOKIE)
        if not raw or len(raw) > 1024:
            return None
        body_text, _, signature = raw.rpartition(".")
        try:
            body = base64.urlsafe_b64decode(body_text + "=" * (-len(body_text) % 4))
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            data = json.loads(body)
            session = Session(data["e"], str(data["n"]), int(data["t"]))
        except (ValueError, KeyError, TypeError):
            return None
        if time.time() - session.issued > MAX_AGE:
            return None
        return session

    def new(self, email: str | None) -> Session:
        return Session(email, secrets.token_urlsafe(16), int(time.time()))

    def write(self, response: Response, request: Request, session: Session) -> None:
        body = json.dumps({"e": session.email, "n": session.nonce, "t": session.issued},
                          separators=(",", ":")).encode()
        value = base64.urlsafe_b64encode(body).decode().rstrip("=") + "." + self._sign(body)
        response.set_cookie(COOKIE, value, max_age=MAX_AGE, path="/", httponly=True, samesite="lax",
                            secure=request.url.scheme == "https")

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/")

    def token(self, session: Session | None, action: str) -> str:
        user = session.user if session else None
        return self.xsrf.mint(user.user_id if user else ANONYMOUS, action, session=session.nonce if session else "")

    def check(self, session: Session | None, action: str, token: str | None) -> bool:
        if session is None:
            return False
        user = session.user
        return self.xsrf.valid(token, user.user_id if user else ANONYMOUS, action, session=session.nonce)
