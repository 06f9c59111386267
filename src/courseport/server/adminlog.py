"""Who did what, when, from the admin pages: kept in the store, shown on /admin/log.

Entries live in the accounts' namespace (no course's archive holds them).
An entry names the admin, the action and its object (an email, a setting and
its new value, an app-specific password's name and id), never a password or
a token: callers pass only those.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from ..courses.rules import ACCOUNTS_NAMESPACE
from ..datastore import Backend, Entity, Key, utcnow

KIND = "CourseportAdminLog"
MAX_SHOWN = 200


@dataclass(frozen=True)
class LogEntry:
    when: _dt.datetime
    who: str
    action: str
    detail: str


class AdminLog:
    def __init__(self, store: Backend) -> None:
        self.store = store

    def record(self, who: str, action: str, detail: str = "") -> None:
        self.store.put(Entity(Key._make(((KIND, None),), ACCOUNTS_NAMESPACE), {
            "when": utcnow(), "who": who, "action": action, "detail": detail[:500],
        }))

    def recent(self, limit: int = MAX_SHOWN) -> list[LogEntry]:
        """The newest entries first."""
        entries = [LogEntry(e["when"], e["who"], e["action"], e.get("detail") or "")
                   for e in self.store.query(KIND, ACCOUNTS_NAMESPACE)]
        return sorted(entries, key=lambda entry: entry.when, reverse=True)[:limit]
