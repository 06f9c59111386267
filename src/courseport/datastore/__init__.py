"""Entities and the stores that hold them.

>>> from courseport.datastore import Key, Entity, open_store
>>> store = open_store("sqlite:///:memory:")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from .backend import Backend, BadCursorError, DatastoreError, JsonRow, Page, RawRow, Reader, batched
from .entity import Entity, Text
from .keys import Key, KeyError_ as KeyStringError
from .sqlite import DEFAULT_APP_ID, SqliteBackend
from .values import utcnow

__all__ = [
    "Backend", "BadCursorError", "DatastoreError", "Entity", "JsonRow", "Key", "KeyStringError",
    "Page", "RawRow", "Reader", "SqliteBackend", "Text", "batched", "open_store",
    "is_store_url", "DEFAULT_APP_ID", "home_dir", "local_store_path", "utcnow",
]

ENV_HOME = "COURSEPORT_HOME"


def home_dir() -> Path:
    """``$COURSEPORT_HOME``, else ``~/.courseport``."""
    value = os.environ.get(ENV_HOME)
    return Path(value).expanduser() if value else Path.home() / ".courseport"


def local_store_path() -> Path:
    return home_dir() / "courseport.db"


def is_store_url(url: str) -> bool:
    return url == "local" or url.startswith(("sqlite:///", "datastore://"))


def open_store(url: str = "local", *, create: bool = True) -> Backend:
    """Open a store by its ``--datastore`` / server name.

    ``local`` is the sqlite file under ``COURSEPORT_HOME``;
    ``sqlite:///path/file.db`` names a file; ``datastore://PROJECT[?database=DB&
    namespace_prefix=P&location_prefix=s~]`` is Google Cloud Datastore (the emulator
    where ``DATASTORE_EMULATOR_HOST`` is set).
    """
    if url == "local":
        return SqliteBackend(local_store_path(), create=create)
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if not path:
            raise DatastoreError("sqlite:/// needs a file path, e.g. sqlite:///tmp/course.db")
        return SqliteBackend(Path(path).expanduser(), create=create)
    if url.startswith("datastore://"):
        from .cloud import CloudDatastoreBackend, parse_url  # google-cloud-datastore: an optional extra

        return CloudDatastoreBackend(**parse_url(url))
    raise DatastoreError(
        f"unknown datastore {url!r}: use 'local', 'sqlite:///path/file.db' or datastore://PROJECT"
    )
