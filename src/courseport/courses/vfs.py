"""Course file systems (spec §3.8).

A datastore-backed course keeps each file as a ``FileMetadataEntity``
(created/updated times, draft flag, size) and ``FileDataEntity`` shards of
1,000,000 bytes: the first under the file's path, the rest under
``<path>:shard:0``, ``<path>:shard:1``, ... (``size // 1000000`` extra
shards, so an exact multiple has a trailing empty one), as Course Builder
stores them. Unlike Course Builder, deleting or shrinking a file removes
all of its old shards.

A folder course is a read-only directory on disk.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..datastore import Backend, Entity, Key, Reader, utcnow
from ..errors import UserError

SHARD_SIZE = 1_000_000
#: Course Builder stopped at 4 shards; courseport allows larger files
MAX_FILE_SIZE = 32 * SHARD_SIZE
_SHARD_RE = re.compile(r":shard:\d+$")


class FileSystemError(UserError, ValueError):
    """A file path or operation the course file system refuses."""


@dataclass(frozen=True)
class FileInfo:
    path: str  # "/course.yaml"
    size: int
    is_draft: bool | None
    updated_on: _dt.datetime | None = None


def normalize_path(path: str) -> str:
    """``assets/x.css`` or ``/assets/x.css`` → ``/assets/x.css``; refuse escapes."""
    if not isinstance(path, str) or not path.strip("/"):
        raise FileSystemError(f"not a file path: {path!r}")
    parts = path.replace("\\", "/").strip("/").split("/")
    if any(part in ("", ".", "..") for part in parts) or "\x00" in path:
        raise FileSystemError(f"file path {path!r} must not contain '.', '..' or empty parts")
    clean = "/" + "/".join(parts)
    if _SHARD_RE.search(clean):
        raise FileSystemError(f"file path {path!r} must not end in ':shard:N'")
    return clean


def shard_names(path: str, size: int) -> list[str]:
    """Key names of a file's data shards, in order."""
    return [path] + [f"{path}:shard:{i}" for i in range(size // SHARD_SIZE)]


class DatastoreFileSystem:
    """Files of one course namespace, as Course Builder's VFS stores them."""

    editable = True

    def __init__(self, store: Backend, namespace: str, reader: Reader | None = None) -> None:
        self.store = store
        self.namespace = namespace
        self.reader: Reader = reader or store

    def _meta_key(self, path: str) -> Key:
        return Key("FileMetadataEntity", path, namespace=self.namespace)

    def _data_key(self, name: str) -> Key:
        return Key("FileDataEntity", name, namespace=self.namespace)

    def list(self, prefix: str = "/") -> list[str]:
        """Paths of every file under ``prefix``, sorted."""
        prefix = "/" + prefix.strip("/")
        if prefix != "/":
            prefix += "/"
        return sorted(
            key.name
            for key in self.reader.query("FileMetadataEntity", self.namespace, keys_only=True)
            if isinstance(key.name, str) and key.name.startswith(prefix)
        )

    def infos(self) -> builtins.list[FileInfo]:  # ``list`` here is the method
        return [
            FileInfo(e.key.name, e.get("size") or 0, e.get("is_draft"), e.get("updated_on"))
            for e in self.reader.query("FileMetadataEntity", self.namespace)
        ]

    def info(self, path: str) -> FileInfo | None:
        path = normalize_path(path)
        meta = self.reader.get(self._meta_key(path))
        if meta is None:
            return None
        return FileInfo(path, meta.get("size") or 0, meta.get("is_draft"), meta.get("updated_on"))

    def isfile(self, path: str) -> bool:
        return self.info(path) is not None

    def get(self, path: str) -> bytes | None:
        info = self.info(path)
        if info is None:
            return None
        names = shard_names(info.path, info.size)
        shards = self.reader.get_multi([self._data_key(name) for name in names])
        if any(shard is None for shard in shards):
            raise FileSystemError(f"{info.path}: a data shard is missing (store damaged)")
        data = b"".join(shard.get("data") or b"" for shard in shards)  # type: ignore[union-attr]
        if len(data) != info.size:
            raise FileSystemError(f"{info.path}: {len(data)} bytes stored, metadata says {info.size}")
        return data

    def put(self, path: str, data: bytes, is_draft: bool | None = False) -> FileInfo:
        path = normalize_path(path)
        if len(data) > MAX_FILE_SIZE:
            raise FileSystemError(
                f"{path}: {len(data):,} bytes is over the {MAX_FILE_SIZE:,}-byte limit for course files"
            )
        old = self.info(path)
        now = utcnow()
        meta = Entity(
            self._meta_key(path),
            {"created_on": now, "updated_on": now, "is_draft": is_draft, "size": len(data)},
        )
        if old is not None:
            previous = self.reader.get(self._meta_key(path))
            meta["created_on"] = (previous.get("created_on") if previous is not None else None) or now
        shards = [
            Entity(self._data_key(name), {"data": data[i * SHARD_SIZE : (i + 1) * SHARD_SIZE]})
            for i, name in enumerate(shard_names(path, len(data)))
        ]
        self.store.put_multi([meta] + shards)
        if old is not None and old.size // SHARD_SIZE > len(data) // SHARD_SIZE:
            stale = shard_names(path, old.size)[len(shards):]
            self.store.delete_multi([self._data_key(name) for name in stale])
        return FileInfo(path, len(data), is_draft, now)

    def delete(self, path: str) -> bool:
        info = self.info(path)
        if info is None:
            return False
        keys = [self._data_key(name) for name in shard_names(info.path, info.size)]
        self.store.delete_multi([self._meta_key(info.path)] + keys)
        return True


class FolderFileSystem:
    """A read-only course folder on disk (a rule with a folder)."""

    editable = False

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _resolve(self, path: str) -> Path:
        return self.root.joinpath(*normalize_path(path).strip("/").split("/"))

    def list(self, prefix: str = "/") -> list[str]:
        base = self._resolve(prefix) if prefix.strip("/") else self.root
        if not base.is_dir():
            return []
        return sorted(
            "/" + p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.is_symlink()
        )

    def infos(self) -> builtins.list[FileInfo]:  # ``list`` here is the method
        return [FileInfo(p, self._resolve(p).stat().st_size, False) for p in self.list()]

    def info(self, path: str) -> FileInfo | None:
        target = self._resolve(path)
        if not target.is_file():
            return None
        return FileInfo(normalize_path(path), target.stat().st_size, False)

    def isfile(self, path: str) -> bool:
        return self._resolve(path).is_file()

    def get(self, path: str) -> bytes | None:
        target = self._resolve(path)
        return target.read_bytes() if target.is_file() else None

    def _read_only(self, path: str) -> FileSystemError:
        return FileSystemError(
            f"{path}: course folder {self.root} is read-only; make a datastore course "
            "('courseport courses add') to edit files"
        )

    def put(self, path: str, data: bytes, is_draft: bool | None = False) -> FileInfo:
        raise self._read_only(path)

    def delete(self, path: str) -> bool:
        raise self._read_only(path)


FileSystem = DatastoreFileSystem | FolderFileSystem

