"""Site settings: switches for the whole server, kept as Course Builder keeps its own
(``ConfigPropertyEntity`` rows in the default namespace, value as text).

>>> SETTINGS["record_events"].parse("on")
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..datastore import Backend, Entity, Key, Text
from ..errors import UserError

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


class SettingError(UserError, ValueError):
    """A site setting that does not exist, or a value it does not take."""


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise SettingError(f"{text!r} is not true or false")


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.strip().lower() not in choices:
            raise SettingError(f"{text!r} is not one of: {', '.join(choices)}")
        return text.strip().lower()
    return parse


def _days(text: str) -> int:
    try:
        days = int(text.strip())
    except ValueError:
        raise SettingError(f"{text!r} is not a whole number of days") from None
    if not 1 <= days <= 3650:
        raise SettingError(f"{days} is not between 1 and 3650 days")
    return days


@dataclass(frozen=True)
class Setting:
    name: str
    entity: str  # the ConfigPropertyEntity key name
    parse: Callable[[str], Any]
    default: Any
    help: str


SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("record_events", "courseport_record_student_events", _boolean, False,
            "record learners' events (page views, videos, answers) in courses whose "
            "course.yaml allows it (course:can_record_student_events)"),
    Setting("signup", "courseport_signup", _choice("open", "invitation"), "open",
            "who may create an account on the sign-up page: anyone (open), or only invited emails (invitation)"),
    Setting("export_retention_days", "courseport_export_retention_days", _days, 7,
            "days an archive exported from the admin pages is kept on the server before it is removed"),
)}


class SiteSettings:
    """Read and write the site settings of one store."""

    def __init__(self, store: Backend) -> None:
        self.store = store

    @staticmethod
    def setting(name: str) -> Setting:
        try:
            return SETTINGS[name]
        except KeyError:
            raise SettingError(f"no site setting {name!r} (settings: {', '.join(SETTINGS)})") from None

    def get(self, name: str) -> Any:
        setting = self.setting(name)
        found = self.store.get(Key("ConfigPropertyEntity", setting.entity))
        if found is None or found.get("is_draft") or found.get("value") is None:
            return setting.default
        try:
            return setting.parse(str(found["value"]))
        except SettingError:
            return setting.default

    def set(self, name: str, text: str) -> Any:
        setting = self.setting(name)
        value = setting.parse(text)
        stored = ("True" if value else "False") if isinstance(value, bool) else str(value)
        self.store.put(Entity(Key("ConfigPropertyEntity", setting.entity), {"value": Text(stored), "is_draft": False}))
        return value

    def all(self) -> dict[str, Any]:
        return {name: self.get(name) for name in SETTINGS}
