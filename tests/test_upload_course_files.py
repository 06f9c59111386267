"""A datastore upload must leave every course file it writes readable.

Found by the generated hostile archives (tests/test_hostile_archives.py): a
datastore archive whose FileDataEntity row for /course.yaml had lost its
``data`` was accepted; the course's /course.yaml then had metadata saying
2,906 bytes and no data, and every later command on the course failed
("/course.yaml: 0 bytes stored, metadata says 2906"). The same happens
without any corruption when one of the two kinds is left out. Such uploads
are now refused, naming the file, and nothing is written; uploads that
leave files consistent (both kinds, or one kind agreeing with what the
store holds) still load.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import (
    archive_members,
    cli_at,
    db_path,
    etl,
    make_store_template,
    manifest_for,
    rows_member,
    snapshot_store,
    write_zip,
    assert_one_line_error,
)
from courseport.courses.site import Site
from courseport.datastore import SqliteBackend
from courseport.etl.errors import EtlError


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    home = make_store_template(tmp_path_factory.mktemp("files") / "home", students=2)
    path = home.parent / "datastore.zip"
    proc = cli_at(home, "download", "datastore", "/sample", "local", "--archive_path", path)
    assert proc.returncode == 0, proc.stderr
    return home, archive_members(path)


@pytest.fixture(params=["atomic", "staged"])
def target(request, source, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from courseport.sites import LocalSite

    if request.param == "staged":
        monkeypatch.setattr(LocalSite, "atomic_writes", False)
    shutil.copyfile(db_path(source[0]), db_path(home))
    with SqliteBackend(db_path(home), create=False) as store:
        Site(store).add_course("/target")
    return home


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    members = {k: v for k, v in members.items() if k != "manifest.json"}
    return write_zip(path, {"manifest.json": manifest_for(list(members)), **members})


def _rows(members: dict[str, bytes], kind: str) -> list[dict]:
    return json.loads(members[f"models/{kind}.json"])["rows"]


def _course_reads(home: Path) -> None:
    with SqliteBackend(db_path(home), create=False) as store:
        course = Site(store).course("/target")
        for path in course.fs.list():
            course.fs.get(path)
        assert course.title


def _refused(home: Path, archive: Path, *phrases: str, extra: tuple = ()) -> None:
    before = snapshot_store(db_path(home))
    with pytest.raises(EtlError) as err:
        etl("upload", "datastore", "/target", "local", "--archive_path", archive, *extra)
    for phrase in phrases:
        assert phrase in str(err.value), str(err.value)
    assert snapshot_store(db_path(home)) == before
    _course_reads(home)


def test_a_data_row_that_lost_its_data(source, target: Path, tmp_path: Path) -> None:
    members = dict(source[1])
    rows = _rows(members, "FileDataEntity")
    for row in rows:
        if row["key.name"] == "/course.yaml":
            row["path"] = row.pop("data")
    members["models/FileDataEntity.json"] = rows_member(rows)
    _refused(target, _zip(tmp_path / "a.zip", members), "course file '/course.yaml' would have 0 bytes of data",
             "so the course could not read it")


def test_metadata_without_its_data(source, target: Path, tmp_path: Path) -> None:
    _refused(target, _zip(tmp_path / "a.zip", source[1]), "would have no FileDataEntity row",
             extra=("--exclude_types", "FileDataEntity"))


def test_a_size_no_file_can_have(source, target: Path, tmp_path: Path) -> None:
    members = dict(source[1])
    rows = _rows(members, "FileMetadataEntity")
    rows[0]["size"] = 10**15
    members["models/FileMetadataEntity.json"] = rows_member(rows)
    _refused(target, _zip(tmp_path / "a.zip", members), f"would have size {10**15}")


def test_consistent_uploads_still_load(source, target: Path, tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", source[1])
    etl("upload", "datastore", "/target", "local", "--archive_path", archive)
    _course_reads(target)
    # one kind alone, agreeing with what the store holds now
    result = etl("upload", "datastore", "/target", "local", "--archive_path", archive, "--force_overwrite",
                 "--datastore_types", "FileMetadataEntity")
    assert result.rows["FileMetadataEntity"] == len(_rows(source[1], "FileMetadataEntity"))
    _course_reads(target)


def test_on_the_command_line(source, target: Path, tmp_path: Path) -> None:
    before = snapshot_store(db_path(target))
    line = assert_one_line_error(cli_at(target, "upload", "datastore", "/target", "local", "--archive_path",
                                        _zip(tmp_path / "a.zip", source[1]), "--exclude_types", "FileDataEntity"))
    assert "would have no FileDataEntity row" in line
    assert snapshot_store(db_path(target)) == before
