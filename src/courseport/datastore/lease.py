"""The store's writer lease: the store lock for writers that are not on the store's machine.

A command on the store's machine holds ``Backend.exclusive`` (for sqlite, a
lock file) while it changes the store. A command that goes through a server
cannot hold a lock across its requests, so the server gives it a lease
instead: a record in the store's meta table naming the holder, which lapses
unless renewed. Each side refuses while the other holds: the server takes a
lease only while it can take the store's lock at once, and the store's lock
refuses while a lease is live.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

from .._locks import LockedError
from .backend import Backend

META_NAME = "writer_lease"
#: a holder renews every third of this; a killed one's lease lapses within it
LEASE_SECONDS = 15


@dataclass(frozen=True)
class Lease:
    id: str
    what: str
    holder: str
    since: float
    expires: float

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.since))
        return f"'{self.what}' (through the server, by {self.holder}, since {started} UTC)"


def current(store: Backend, now: float | None = None, *, name: str = META_NAME) -> Lease | None:
    """The live lease, if any (``name``: another lease record, such as a store's own writer lock)."""
    text = store.get_meta(name)
    if not text:
        return None
    try:
        lease = Lease(**json.loads(text))
    except (ValueError, TypeError):
        return None  # unreadable: treated as lapsed, and replaced by the next taker
    return lease if lease.expires > (time.time() if now is None else now) else None


def take(store: Backend, what: str, holder: str, seconds: float = LEASE_SECONDS, *, name: str = META_NAME,
         blockers: tuple[str, ...] = ()) -> Lease:
    """A new lease; LockedError naming the holder of a live one (of ``name``, or of a ``blockers`` lease)."""
    with store.transaction():
        for record in (name, *blockers):
            held = current(store, name=record)
            if held is not None:
                raise LockedError(f"the server's store is in use by {held.describe()}: wait for it to finish")
        now = time.time()
        lease = Lease(secrets.token_hex(16), what, holder, now, now + seconds)
        store.set_meta(name, json.dumps(lease.__dict__))
    return lease


def renew(store: Backend, lease_id: str, seconds: float = LEASE_SECONDS, *, name: str = META_NAME) -> bool:
    """Extend a live lease; False where it lapsed or is another's."""
    with store.transaction():
        held = current(store, name=name)
        if held is None or held.id != lease_id:
            return False
        store.set_meta(name, json.dumps({**held.__dict__, "expires": time.time() + seconds}))
    return True


def release(store: Backend, lease_id: str, *, name: str = META_NAME) -> None:
    with store.transaction():
        held = current(store, name=name)
        if held is not None and held.id == lease_id:
            store.set_meta(name, "")
