"""Learner identity: Course Builder's user ids and XSRF tokens (server spec §2.1, §2.3)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from ...datastore import Backend

#: how long a token is good for, as in Course Builder
XSRF_MAX_AGE = 4 * 3600


def user_id_for_email(email: str) -> str:
    """The user id Course Builder's dev server gives ``email``: ``"1"`` and the
    first 20 digits of md5(lower(email)), each byte in decimal. A course moved
    between courseport and a Course Builder dev server keeps its learners' ids."""
    digest = hashlib.md5(email.strip().lower().encode("utf-8")).digest()
    return "1" + "".join("%02d" % byte for byte in digest)[:20]


def store_secret(store: Backend, name: str) -> bytes:
    """A 32-byte secret kept in the store's meta under ``name`` (out of every
    archive), made on first use; every worker and machine on the store reads the
    same one (a race to make it is won by the first write)."""
    stored = store.get_meta(name)
    if stored is None:
        store.set_meta(name, secrets.token_hex(32))
        stored = store.get_meta(name) or ""
    return bytes.fromhex(stored)


def xsrf_secret(store: Backend) -> bytes:
    """The key of the XSRF tokens."""
    return store_secret(store, "xsrf_secret")


class Xsrf:
    """Tokens shaped as Course Builder's, ``<issued>/<24 chars of base64>``,
    bound to a user, an action and (courseport's addition) a session."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _digest(self, user_id: str, action: str, issued: int, session: str) -> str:
        message = f"{user_id}:{session}:{action}:{issued}".encode("utf-8")
        mac = hmac.new(self._secret, message, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac).decode("ascii")

    def mint(self, user_id: str, action: str, *, session: str = "", now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        return f"{issued}/{self._digest(user_id, action, issued, session)}"

    def valid(self, token: str | None, user_id: str, action: str, *, session: str = "",
              now: float | None = None) -> bool:
        if not token or len(token) > 64:
            return False
        issued_text, sep, digest = token.partition("/")
        if not sep or not issued_text.isdigit() or len(issued_text) > 12:
            return False
        issued = int(issued_text)
        age = (time.time() if now is None else now) - issued
        if not -60 <= age <= XSRF_MAX_AGE:
            return False
        return hmac.compare_digest(digest, self._digest(user_id, action, issued, session))
