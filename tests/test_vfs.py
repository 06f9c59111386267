"""Course file systems: Course Builder's sharded datastore VFS and read-only folders (spec §3.8)."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from conftest import dump_file
from courseport.courses.vfs import (
    MAX_FILE_SIZE, DatastoreFileSystem, FileSystemError, FolderFileSystem, normalize_path)
from courseport.datastore import Key

NS = "ns_files"
MB = 1_000_000


@pytest.fixture
def fs(store) -> DatastoreFileSystem:
    return DatastoreFileSystem(store, NS)


def _blob(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def _data_names(store, namespace: str = NS) -> list[str]:
    return [k.name for k in store.query("FileDataEntity", namespace, keys_only=True)]


def _meta_names(store, namespace: str = NS) -> list[str]:
    return [k.name for k in store.query("FileMetadataEntity", namespace, keys_only=True)]


@pytest.mark.parametrize("size", [0, 1, 999_999, MB, 3_500_000])
def test_sharded_file_round_trip(fs, store, size: int) -> None:
    data = _blob(size, seed=size)
    path = "/assets/img/big.bin"
    info = fs.put(path, data)
    assert info.path == path and info.size == size
    assert fs.get(path) == data
    expected = [path] + [f"{path}:shard:{i}" for i in range(size // MB)]
    assert len(expected) == 1 + size // MB
    assert sorted(_data_names(store)) == sorted(expected)
    shards = store.get_multi([Key("FileDataEntity", name, namespace=NS) for name in expected])
    assert b"".join(s["data"] for s in shards) == data
    assert all(type(s["data"]) is bytes for s in shards)
    assert [len(s["data"]) for s in shards] == [min(MB, max(0, size - i * MB)) for i in range(len(expected))]
    meta = store.get(Key("FileMetadataEntity", path, namespace=NS))
    assert meta["size"] == size
    assert meta["is_draft"] is False
    assert isinstance(meta["created_on"], dt.datetime) and isinstance(meta["updated_on"], dt.datetime)


def test_exact_megabyte_has_a_trailing_empty_shard(fs, store) -> None:
    fs.put("/f", b"x" * MB)
    assert _data_names(store) == ["/f", "/f:shard:0"]
    assert store.get(Key("FileDataEntity", "/f:shard:0", namespace=NS))["data"] == b""
    assert fs.get("/f") == b"x" * MB


def test_ascii_file_reads_back_as_bytes(fs) -> None:
    fs.put("/course.yaml", b"course:\n  title: 'T'\n")
    assert fs.get("/course.yaml") == b"course:\n  title: 'T'\n"


@pytest.mark.parametrize("is_draft", [False, True, None])
def test_metadata_is_draft(fs, store, is_draft) -> None:
    fs.put("/a.txt", b"abc", is_draft=is_draft)
    meta = store.get(Key("FileMetadataEntity", "/a.txt", namespace=NS))
    assert meta["is_draft"] is is_draft and meta["size"] == 3
    assert fs.info("/a.txt").is_draft is is_draft


def test_overwrite_with_smaller_file_removes_stale_shards(fs, store) -> None:
    fs.put("/big", _blob(3_500_000))
    assert len(_data_names(store)) == 4
    created = store.get(Key("FileMetadataEntity", "/big", namespace=NS))["created_on"]
    fs.put("/big", b"0123456789")
    assert _data_names(store) == ["/big"]
    assert fs.get("/big") == b"0123456789"
    meta = store.get(Key("FileMetadataEntity", "/big", namespace=NS))
    assert meta["size"] == 10
    assert meta["created_on"] == created and meta["updated_on"] >= created


def test_overwrite_with_larger_file(fs, store) -> None:
    fs.put("/f", b"small")
    data = _blob(2_500_000, seed=2)
    fs.put("/f", data)
    assert sorted(_data_names(store)) == ["/f", "/f:shard:0", "/f:shard:1"]
    assert fs.get("/f") == data


def test_delete_removes_metadata_and_every_shard(fs, store) -> None:
    fs.put("/keep.txt", b"keep")
    fs.put("/big", _blob(2_000_001))
    assert fs.delete("/big") is True
    assert fs.get("/big") is None and fs.info("/big") is None and not fs.isfile("/big")
    assert _data_names(store) == ["/keep.txt"]
    assert _meta_names(store) == ["/keep.txt"]
    assert fs.delete("/big") is False
    assert fs.get("/keep.txt") == b"keep"


def test_list_by_prefix(fs) -> None:
    for path in ("/course.yaml", "/assets/css/main.css", "/assets/img/logo.png", "/assets-old/x",
                 "/assetsx", "/data/course.json"):
        fs.put(path, b"x")
    everything = ["/assets-old/x", "/assets/css/main.css", "/assets/img/logo.png", "/assetsx",
                  "/course.yaml", "/data/course.json"]
    assert fs.list() == everything
    assert fs.list("/") == everything
    assert fs.list("/assets") == ["/assets/css/main.css", "/assets/img/logo.png"]
    assert fs.list("assets/") == ["/assets/css/main.css", "/assets/img/logo.png"]
    assert fs.list("/assets/img") == ["/assets/img/logo.png"]
    assert fs.list("/nothing") == []
    assert {i.path for i in fs.infos()} == set(everything)


def test_files_are_per_namespace(store) -> None:
    one, two = DatastoreFileSystem(store, "ns_one"), DatastoreFileSystem(store, "ns_two")
    one.put("/course.yaml", b"one")
    assert two.get("/course.yaml") is None and two.list() == []
    assert one.list() == ["/course.yaml"]


@pytest.mark.parametrize("given, clean", [
    ("assets/x.css", "/assets/x.css"),
    ("/assets/x.css", "/assets/x.css"),
    ("\\assets\\x.css", "/assets/x.css"),
    ("/data/", "/data"),
    ("/a:b/c", "/a:b/c"),
])
def test_path_normalisation(fs, given: str, clean: str) -> None:
    assert normalize_path(given) == clean
    fs.put(given, b"1")
    assert fs.list() == [clean]
    assert fs.get(clean) == b"1" and fs.get(given) == b"1"


@pytest.mark.parametrize("path", ["", "/", "///", "..", "/../etc/passwd", "/a/../b", "/a/./b", "a//b",
                                  "/x.txt:shard:3", "/x:shard:0", "/a\x00b", None])
def test_bad_paths_are_refused(fs, store, path) -> None:
    before = dump_file(store.path)
    with pytest.raises(FileSystemError) as info:
        fs.put(path, b"data")
    assert str(info.value)
    with pytest.raises(FileSystemError):
        fs.get(path)
    assert dump_file(store.path) == before


def test_too_large_file_is_refused(fs, store) -> None:
    before = dump_file(store.path)
    with pytest.raises(FileSystemError) as info:
        fs.put("/huge.bin", bytes(MAX_FILE_SIZE + 1))
    assert "/huge.bin" in str(info.value)
    assert dump_file(store.path) == before
    assert fs.get("/huge.bin") is None


def test_missing_shard_is_reported(fs, store) -> None:
    fs.put("/f", _blob(1_500_000))
    store.delete(Key("FileDataEntity", "/f:shard:0", namespace=NS))
    with pytest.raises(FileSystemError):
        fs.get("/f")


# --- folder courses ------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "legacy"
    (root / "data").mkdir(parents=True)
    (root / "assets" / "img").mkdir(parents=True)
    (root / "course.yaml").write_text("course:\n  title: Legacy\n")
    (root / "data" / "unit.csv").write_text("id,type\n")
    (root / "assets" / "img" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "secret.txt").write_text("outside the course")
    return root


def test_folder_lists_and_reads(folder: Path) -> None:
    fs = FolderFileSystem(folder)
    assert fs.editable is False
    assert fs.list() == ["/assets/img/a.png", "/course.yaml", "/data/unit.csv"]
    assert fs.list("/assets") == ["/assets/img/a.png"]
    assert fs.list("/none") == []
    assert fs.get("/course.yaml") == b"course:\n  title: Legacy\n"
    assert fs.get("course.yaml") == b"course:\n  title: Legacy\n"
    assert fs.get("/missing") is None
    assert fs.isfile("/data/unit.csv") and not fs.isfile("/data")
    assert fs.info("/assets/img/a.png").size == 8


def test_folder_is_read_only(folder: Path) -> None:
    fs = FolderFileSystem(folder)
    before = {p: (folder / p.lstrip("/")).read_bytes() for p in fs.list()}
    with pytest.raises(FileSystemError) as info:
        fs.put("/course.yaml", b"changed")
    message = str(info.value)
    assert "read-only" in message and "courses add" in message and str(folder) in message
    with pytest.raises(FileSystemError):
        fs.put("/new.txt", b"new")
    with pytest.raises(FileSystemError):
        fs.delete("/course.yaml")
    assert {p: (folder / p.lstrip("/")).read_bytes() for p in fs.list()} == before


def test_folder_refuses_escapes(folder: Path) -> None:
    fs = FolderFileSystem(folder)
    for path in ("../secret.txt", "/../secret.txt", "/data/../../secret.txt"):
        with pytest.raises(FileSystemError):
            fs.get(path)
