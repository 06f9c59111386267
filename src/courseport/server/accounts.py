"""Accounts, app-specific passwords and sign-in throttles, kept in the store.

They live in :data:`ACCOUNTS_NAMESPACE`, which no course may use, so no
course's archive (a course in the default namespace included) can hold them.

- A sign-in password is hashed with scrypt (memory-hard: 16 MiB and about
  50 ms a guess), with a random salt.
- An app-specific password is 24 random characters (about 120 bits) shown
  once. It is kept as an HMAC-SHA256 under the store's server key, which is
  also the record's key name: checking one is a single lookup, fast enough
  for every API request. A fast hash is safe here because the token is
  random, not chosen by a person: there is nothing to guess from.
- Repeated failures for one account are slowed, then locked out for a while.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from ..courses.learning.identity import store_secret
from ..courses.rules import ACCOUNTS_NAMESPACE
from ..datastore import Backend, Entity, Key, utcnow
from ..errors import UserError

ACCOUNT = "CourseportAccount"
APP_PASSWORD = "CourseportAppPassword"
APP_PASSWORD_REQUEST = "CourseportAppPasswordRequest"  # a create form's nonce, once used
THROTTLE = "CourseportSignInThrottle"
INVITATION = "CourseportInvitation"

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # 16 MiB a hash
_TOKEN_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l: read off a screen
TOKEN_LENGTH = 24
MIN_PASSWORD = 8
MAX_PASSWORD = 1024

#: failures in a row before each further one is slowed, and before the account locks
SLOW_AFTER = 3
LOCK_AFTER = 10
LOCK_SECONDS = 15 * 60

_EMAIL_RE = re.compile(r"[^@\s:]{1,64}@[^@\s:]{1,255}")  # no ":": HTTP Basic splits there
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{22}")


def form_nonce() -> str:
    """A fresh nonce for a form that makes an app-specific password (``request=``)."""
    return secrets.token_urlsafe(16)


class AccountError(UserError, ValueError):
    """An account command that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Account:
    email: str
    admin: bool


@dataclass(frozen=True)
class AppPasswordInfo:
    id: str
    email: str
    name: str
    created: _dt.datetime
    last_used: _dt.datetime | None


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL_RE.fullmatch(email) or not email.isprintable():
        raise AccountError(f"{email!r} is not an email address")
    return email


def normalize_token(token: str) -> str:
    """An app-specific password as typed: spaces between its groups are fine."""
    return "".join(token.split()).lower()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, maxmem=64 << 20, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        found = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                               p=int(p), dklen=len(digest) // 2, maxmem=64 << 20)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(found.hex(), digest)


class Accounts:
    """The accounts of one store."""

    def __init__(self, store: Backend) -> None:
        self.store = store
        self._server_key: bytes | None = None

    def _key(self, kind: str, name: str) -> Key:
        return Key(kind, name, namespace=ACCOUNTS_NAMESPACE)

    # --- accounts ---------------------------------------------------------

    def add_user(self, email: str, password: str, *, admin: bool = False) -> Account:
        email = normalize_email(email)
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise AccountError(f"a sign-in password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
        key = self._key(ACCOUNT, email)
        if self.store.get(key) is not None:
            raise AccountError(f"{email} already has an account")
        self.store.put(Entity(key, {
            "email": email, "admin": admin, "password_hash": hash_password(password), "created": utcnow(),
        }))
        self.store.delete(self._key(INVITATION, email))
        return Account(email, admin)

    def invite(self, email: str) -> str:
        """Let ``email`` sign up when sign-up is by invitation; the normalized email."""
        email = normalize_email(email)
        if self.account(email) is not None:
            raise AccountError(f"{email} already has an account")
        self.store.put(Entity(self._key(INVITATION, email), {"email": email, "created": utcnow()}))
        return email

    def invited(self, email: str) -> bool:
        try:
            email = normalize_email(email)
        except AccountError:
            return False
        return self.store.get(self._key(INVITATION, email)) is not None

    def account(self, email: str) -> Account | None:
        try:
            email = normalize_email(email)
        except AccountError:
            return None
        found = self.store.get(self._key(ACCOUNT, email))
        return None if found is None else Account(found["email"], bool(found.get("admin")))

    def set_admin(self, email: str, admin: bool) -> Account:
        """Make an account an admin, or a learner again."""
        email = normalize_email(email)
        found = self.store.get(self._key(ACCOUNT, email))
        if found is None:
            raise AccountError(f"{email} has no account ('courseport users list' shows them)")
        found["admin"] = admin
        self.store.put(found)
        return Account(email, admin)

    def remove_user(self, email: str) -> Account:
        """Remove an account with its app-specific passwords and sign-in throttle
        (what it did in courses, as a learner, stays: that is course data)."""
        email = normalize_email(email)
        found = self.store.get(self._key(ACCOUNT, email))
        if found is None:
            raise AccountError(f"{email} has no account ('courseport users list' shows them)")
        keys = [entity.key for entity in self.store.query(APP_PASSWORD, ACCOUNTS_NAMESPACE)
                if entity["email"] == email]
        with self.store.transaction():
            self.store.delete_multi([found.key, self._throttle_key(email), *keys])
        return Account(email, bool(found.get("admin")))

    def users(self) -> list[Account]:
        return [Account(e["email"], bool(e.get("admin"))) for e in self.store.query(ACCOUNT, ACCOUNTS_NAMESPACE)]

    def check_sign_in(self, email: str, password: str) -> Account | None:
        try:
            email = normalize_email(email)
        except AccountError:
            return None
        found = self.store.get(self._key(ACCOUNT, email))
        if found is None or not check_password(password, found.get("password_hash") or ""):
            return None
        return Account(found["email"], bool(found.get("admin")))

    # --- app-specific passwords --------------------------------------------

    def _hash_token(self, token: str) -> str:
        if self._server_key is None:
            self._server_key = store_secret(self.store, "server_key")
        return hmac.new(self._server_key, normalize_token(token).encode("utf-8"), hashlib.sha256).hexdigest()

    def create_app_password(self, email: str, name: str | None = None, *,
                            request: str | None = None) -> tuple[AppPasswordInfo, str]:
        """A new app-specific password: its record and the password, which is not kept.

        ``request`` is the nonce of the form that asks (see :func:`form_nonce`): a form
        sent again (a reloaded page) is refused, instead of making a second password."""
        email = normalize_email(email)
        if self.account(email) is None:
            raise AccountError(f"{email} has no account: add it first with 'courseport users add {email}'")
        token = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))
        digest = self._hash_token(token)
        name = (name or "").strip() or f"app password {utcnow():%Y-%m-%d %H:%M}"
        if len(name) > 100 or not name.isprintable():
            raise AccountError("an app-specific password's name is at most 100 printable characters "
                               "(no tabs, newlines or control characters)")
        if request is not None and not _NONCE_RE.fullmatch(request):
            raise AccountError("this form is not one this server made: reload the page, then create the password")
        created = utcnow()
        record = Entity(self._key(APP_PASSWORD, digest), {
            "email": email, "name": name, "created": created, "last_used": None,
        })
        with self.store.transaction():
            if request is not None:
                once = self._key(APP_PASSWORD_REQUEST, request)
                sent = self.store.get(once)
                if sent is not None:
                    raise AccountError(f"this form was sent already (a reloaded page?) and made {sent['name']!r}, "
                                       "shown once: revoke it and create another if you did not keep it")
                self.store.put(Entity(once, {"name": name, "created": created}))
            self.store.put(record)
        return AppPasswordInfo(digest[:12], email, name, created, None), token

    def app_passwords(self, email: str | None = None) -> list[AppPasswordInfo]:
        wanted = normalize_email(email) if email else None
        out = []
        for entity in self.store.query(APP_PASSWORD, ACCOUNTS_NAMESPACE):
            if wanted is None or entity["email"] == wanted:
                out.append(_info(entity))
        return sorted(out, key=lambda info: (info.email, info.created))

    def revoke_app_password(self, email: str, which: str) -> AppPasswordInfo:
        """Revoke the app-specific password of ``email`` whose id or name is ``which``."""
        email = normalize_email(email)
        matches = [entity for entity in self.store.query(APP_PASSWORD, ACCOUNTS_NAMESPACE)
                   if entity["email"] == email and ((entity.key.name or "")[:12] == which or entity["name"] == which)]
        if not matches:
            raise AccountError(f"{email} has no app-specific password with id or name {which!r} "
                               "('courseport app-password list' shows them)")
        if len(matches) > 1:
            raise AccountError(f"{email} has {len(matches)} app-specific passwords named {which!r}: "
                               "revoke one by its id")
        self.store.delete(matches[0].key)
        return _info(matches[0])

    def check_app_password(self, email: str, token: str) -> Account | None:
        """The account an email and app-specific password sign in, else None.

        A sign-in password is never accepted here."""
        try:
            email = normalize_email(email)
        except AccountError:
            return None
        if len(token) > 4 * TOKEN_LENGTH:
            return None
        record = self.store.get(self._key(APP_PASSWORD, self._hash_token(token)))
        if record is None or not hmac.compare_digest(record["email"], email):
            return None
        account = self.account(email)
        if account is None:
            return None
        now = utcnow()
        last = record.get("last_used")
        if last is None or (now - last).total_seconds() > 60:  # not a write on every request
            record["last_used"] = now
            self.store.put(record)
        return account

    # --- throttling ---------------------------------------------------------

    def _throttle_key(self, email: str) -> Key:
        return self._key(THROTTLE, hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest())

    def locked_for(self, email: str) -> float:
        """Seconds until ``email`` may try again (0: it may now)."""
        found = self.store.get(self._throttle_key(email))
        if found is None or found.get("locked_until") is None:
            return 0.0
        return max(0.0, (found["locked_until"] - utcnow()).total_seconds())

    def failed(self, email: str) -> int:
        """Count one failure for ``email``; how many in a row now.

        One transaction: failures at once (threads, workers) each count, none is lost."""
        key = self._throttle_key(email)
        if self.account(email) is None:
            return 0  # nothing to lock: an unknown name leaves no record (the store must not grow on guesses)
        with self.store.transaction():
            found = self.store.get(key) or Entity(key, {"failures": 0, "locked_until": None})
            failures = int(found.get("failures") or 0) + 1
            found["failures"] = failures
            if failures >= LOCK_AFTER:
                found["locked_until"] = utcnow() + _dt.timedelta(seconds=LOCK_SECONDS)
                found["failures"] = 0
            self.store.put(found)
        return failures

    def succeeded(self, email: str) -> None:
        key = self._throttle_key(email)
        if self.store.get(key) is not None:
            self.store.delete(key)


def _info(entity: Entity) -> AppPasswordInfo:
    return AppPasswordInfo((entity.key.name or "")[:12], entity["email"], entity["name"], entity["created"],
                           entity.get("last_used"))


def format_token(token: str) -> str:
    """``abcd efgh ...``: groups of four, as Google shows app passwords."""
    return " ".join(token[i:i + 4] for i in range(0, len(token), 4))
