"""Uploads staged by worker processes (members in Course Builder's line layout).

``PARALLEL_MIN_BYTES`` is lowered so that small members take the parallel
path; each case must behave exactly as the one-process path does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import db_path, etl, kind_rows, archive_members, manifest_for, rows_member, snapshot_store, write_zip
from courseport.courses.site import Site
from courseport.datastore import SqliteBackend
from courseport.etl import _upload as upload_module
from courseport.etl.errors import EtlError
from courseport.sites import LocalSite


def _event(i: int, **extra) -> dict:
    row = {"key.name": "None", "key.id": i, "source": "enter-page", "user_id": f"u{i % 7}",
           "recorded_on": f"2016-04-06T20:14:{i % 60:02d}.{i:06d}Z", "data": json.dumps({"n": i}), "key": ""}
    row.update(extra)
    return row


def _zip(path: Path, member: bytes) -> Path:
    return write_zip(path, {"manifest.json": manifest_for(["models/EventEntity.json"]),
                            "models/EventEntity.json": member})


@pytest.fixture(autouse=True, params=["atomic", "staged"])
def write_mode(request, monkeypatch: pytest.MonkeyPatch) -> str:
    """The embedded store's one-transaction uploads, and the staged path of other sites."""
    from courseport.sites import LocalSite

    if request.param == "staged":
        monkeypatch.setattr(LocalSite, "atomic_writes", False)
    return request.param


@pytest.fixture
def target(sample_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    with SqliteBackend(db_path(sample_home), create=False) as store:
        Site(store).add_course("/target")
    return sample_home


def _rows_after(home: Path, tmp_path: Path) -> list[dict]:
    out = tmp_path / "back.zip"
    etl("download", "datastore", "/target", "local", "--archive_path", out, "--datastore_types", "EventEntity")
    return [{k: v for k, v in r.items() if k != "key"} for r in kind_rows(archive_members(out))["EventEntity"]]


def _upload(archive: Path, *extra: str) -> None:
    etl("upload", "datastore", "/target", "local", "--archive_path", archive, "--batch_size", "7", *extra)


@pytest.mark.parametrize("threshold", [0, 1 << 40])  # workers, and this process
def test_both_paths_load_the_same_rows(target: Path, tmp_path: Path, monkeypatch, threshold: int) -> None:
    monkeypatch.setattr(upload_module, "PARALLEL_MIN_BYTES", threshold)
    staged: list[int] = []
    original = upload_module._Upload._stage_parallel

    def spy(self, *args):
        staged.append(original(self, *args))
        return staged[-1]

    monkeypatch.setattr(upload_module._Upload, "_stage_parallel", spy)
    rows = [_event(i) for i in range(1, 5000, 3)]
    _upload(_zip(tmp_path / "a.zip", rows_member(rows)))
    assert staged == ([len(rows)] if threshold == 0 else [])
    assert _rows_after(target, tmp_path) == [{k: v for k, v in r.items() if k != "key"} for r in rows]


def test_a_bad_row_is_named_and_nothing_is_written(target: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(upload_module, "PARALLEL_MIN_BYTES", 0)
    rows = [_event(i) for i in range(1, 2000)]
    rows[1234]["recorded_on"] = "yesterday"
    before = snapshot_store(db_path(target))
    with pytest.raises(EtlError, match=r"models/EventEntity.json: row 1235 .*recorded_on"):
        _upload(_zip(tmp_path / "b.zip", rows_member(rows)))
    assert snapshot_store(db_path(target)) == before


def test_malformed_json_falls_back_and_is_named(target: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(upload_module, "PARALLEL_MIN_BYTES", 0)
    lines = rows_member([_event(i) for i in range(1, 300)]).decode().split("\n")
    lines[150] = lines[150].replace('"source"', '"source" "x"')
    before = snapshot_store(db_path(target))
    with pytest.raises(EtlError, match="models/EventEntity.json"):
        _upload(_zip(tmp_path / "c.zip", "\n".join(lines).encode()))
    assert snapshot_store(db_path(target)) == before


def test_other_layouts_fall_back_and_load(target: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(upload_module, "PARALLEL_MIN_BYTES", 0)
    rows = [_event(i) for i in range(1, 200)]
    pretty = json.dumps({"rows": rows}, indent=2).encode()
    _upload(_zip(tmp_path / "d.zip", pretty))
    assert len(_rows_after(target, tmp_path)) == len(rows)


def test_conflicts_are_found_by_the_parallel_path(target: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(upload_module, "PARALLEL_MIN_BYTES", 0)
    archive = _zip(tmp_path / "e.zip", rows_member([_event(i) for i in range(1, 100)]))
    _upload(archive)
    before = snapshot_store(db_path(target))
    with pytest.raises(EtlError, match="already exists"):
        _upload(archive)
    assert snapshot_store(db_path(target)) == before
    _upload(archive, "--resume")  # everything there: skipped, nothing duplicated
    assert len(_rows_after(target, tmp_path)) == 99


def test_a_member_that_stops_being_one_row_a_line(target: Path, tmp_path: Path, monkeypatch) -> None:
    """Rows already handed on when the layout breaks: started again, staged first."""
    monkeypatch.setattr(upload_module, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(LocalSite, "min_batch_size", 1)  # chunks of 7 rows: 5 go out first
    staged: list[bool] = []
    original = upload_module._Upload._check_rows
    monkeypatch.setattr(upload_module._Upload, "_check_rows",
                        lambda self, *a: staged.append(True) or original(self, *a))
    rows = [_event(i) for i in range(1, 60)]
    lines = ["    " + json.dumps(r) for r in rows[:40]] + [json.dumps(r, indent=2) for r in rows[40:]]
    member = ('{"rows": [\n' + ",\n".join(lines) + "\n]}\n").encode()
    assert json.loads(member)["rows"] == rows
    _upload(_zip(tmp_path / "f.zip", member), "--batch_size", "7")
    assert staged == [True]  # atomic: undone and staged; staged: staged from the start
    assert len(_rows_after(target, tmp_path)) == len(rows)
