"""``upload course`` and ``upload datastore`` (spec §6.4, §6.5): round trips and rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import (
    archive_members,
    assert_one_line_error,
    cli_at,
    db_path,
    etl,
    kind_rows,
    manifest_for,
    rows_member,
    snapshot_store,
    without,
    write_zip,
)
from courseport.courses.site import Site
from courseport.datastore import Entity, Key, SqliteBackend, Text
from courseport.etl.errors import EtlError


def _site(home: Path):
    return SqliteBackend(db_path(home), create=False)


def _add_course(home: Path, prefix: str) -> None:
    with _site(home) as store:
        Site(store).add_course(prefix)


def _files(home: Path, prefix: str) -> dict[str, tuple[bytes, object]]:
    with _site(home) as store:
        fs = Site(store).course(prefix).fs
        return {info.path: (fs.get(info.path), info.is_draft) for info in fs.infos()}


def _rows_sans_key(members: dict[str, bytes]) -> dict[str, list[dict]]:
    return {kind: [without(r, "key") for r in rows] for kind, rows in kind_rows(members).items()}


@pytest.fixture
def course_archive(sample_home: Path, tmp_path: Path) -> Path:
    with _site(sample_home) as store:
        course = Site(store).course("/sample")
        course.fs.put("/assets/html/draft.html", b"<p>draft</p>", is_draft=True)
        store.put_multi([Entity(Key("LabelEntity", 12, namespace="ns_sample"), {"data": Text('{"title": "x"}')}),
                         Entity(Key("StudentGroupMembership", "a@b.c", namespace="ns_sample"), {"group_id": 3})])
    path = tmp_path / "course.zip"
    etl("download", "course", "/sample", "local", "--archive_path", path)
    return path


@pytest.fixture
def datastore_archive(sample_home: Path, tmp_path: Path) -> Path:
    path = tmp_path / "datastore.zip"
    etl("download", "datastore", "/sample", "local", "--archive_path", path)
    return path


# --- round trips ----------------------------------------------------------------------------------


def test_upload_course_into_a_new_course_reproduces_files_and_rows(sample_home: Path, course_archive: Path,
                                                                   tmp_path: Path) -> None:
    _add_course(sample_home, "/copy")
    proc = cli_at(sample_home, "upload", "course", "/copy", "local", "--archive_path", course_archive)
    assert proc.returncode == 0, proc.stderr
    assert "uploaded course /copy" in proc.stdout
    source, copy = _files(sample_home, "/sample"), _files(sample_home, "/copy")
    assert copy == source  # every file: bytes and is_draft
    assert copy["/assets/html/draft.html"][1] is True and copy["/course.yaml"][1] is None
    again = tmp_path / "again.zip"
    etl("download", "course", "/copy", "local", "--archive_path", again)
    a, b = archive_members(course_archive), archive_members(again)
    assert _rows_sans_key(b) == _rows_sans_key(a)
    assert {n: d for n, d in b.items() if n.startswith("files/")} == {n: d for n, d in a.items() if n.startswith("files/")}
    ma, mb = json.loads(a["manifest.json"]), json.loads(b["manifest.json"])
    # sha256 aside: the rows' key strings name the new namespace
    assert [without(e, "sha256") for e in mb["entities"]] == [without(e, "sha256") for e in ma["entities"]]
    assert mb["version"] == ma["version"]
    assert mb["raw"] == "course:/copy::ns_copy"
    for row in kind_rows(b)["QuestionEntity"]:
        assert Key.from_urlsafe(row["key"])[1].namespace == "ns_copy"
    with _site(sample_home) as store:
        assert Site(store).course("/copy").title == Site(store).course("/sample").title


def test_upload_datastore_reproduces_rows(sample_home: Path, datastore_archive: Path, tmp_path: Path) -> None:
    _add_course(sample_home, "/copy")
    result = etl("upload", "datastore", "/copy", "local", "--archive_path", datastore_archive)
    source = archive_members(datastore_archive)
    assert result.rows == {kind: len(rows) for kind, rows in kind_rows(source).items()}
    again = tmp_path / "again.zip"
    etl("download", "datastore", "/copy", "local", "--archive_path", again)
    copied = archive_members(again)
    assert _rows_sans_key(copied) == _rows_sans_key(source)
    students = kind_rows(copied)["Student"]
    assert all(s["email"] and s["name"] and s["additional_fields"] for s in students)
    with _site(sample_home):  # the copy is a working course: its files read back
        assert _files(sample_home, "/copy") == _files(sample_home, "/sample")


def test_upload_from_a_directory_archive(sample_home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "dir"
    etl("download", "datastore", "/sample", "local", "--archive_path", folder, "--archive_type", "directory",
        "--datastore_types", "Student,EventEntity")
    _add_course(sample_home, "/copy")
    result = etl("upload", "datastore", "/copy", "local", "--archive_path", folder)
    assert result.rows == {"EventEntity": 185, "Student": 20}


def test_upload_datastore_types_and_exclude_types(sample_home: Path, datastore_archive: Path) -> None:
    _add_course(sample_home, "/copy")
    result = etl("upload", "datastore", "/copy", "local", "--archive_path", datastore_archive,
                 "--datastore_types", "Student,EventEntity,StudentAnswersEntity", "--exclude_types", "EventEntity")
    assert set(result.rows) == {"Student", "StudentAnswersEntity"}
    with _site(sample_home) as store:
        assert set(store.kinds("ns_copy")) == {"Student", "StudentAnswersEntity", "FileDataEntity",
                                               "FileMetadataEntity"}


def test_uploaded_ids_are_reserved(sample_home: Path, tmp_path: Path) -> None:
    big = [10**12 + 5, 10**12 + 17, 2**50]
    rows = [{"key.name": "None", "key.id": ident, "recorded_on": "2016-04-06T20:14:36.101530Z",
             "source": "click-link", "user_id": "1", "data": "{}", "key": ""} for ident in big]
    archive = write_zip(tmp_path / "events.zip", {
        "manifest.json": manifest_for(["models/EventEntity.json"]),
        "models/EventEntity.json": rows_member(rows),
    })
    _add_course(sample_home, "/copy")
    etl("upload", "datastore", "/copy", "local", "--archive_path", archive)
    with _site(sample_home) as store:
        fresh = [Entity(Key("EventEntity", namespace="ns_copy"), {"source": "new"}) for _ in range(3)]
        keys = store.put_multi(fresh)
        assert all(key.id > max(big) for key in keys), keys
        assert store.count("EventEntity", "ns_copy") == 6
        assert [e["source"] for e in store.get_multi([Key("EventEntity", i, namespace="ns_copy") for i in big])] \
            == ["click-link"] * 3


def test_student_pii_survives_a_plain_round_trip(sample_home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "s.zip"
    etl("download", "datastore", "/sample", "local", "--archive_path", archive, "--datastore_types", "Student")
    _add_course(sample_home, "/copy")
    etl("upload", "datastore", "/copy", "local", "--archive_path", archive)
    with _site(sample_home) as store:
        for a in store.query("Student", "ns_sample"):
            b = store.get(Key("Student", a.key.name, namespace="ns_copy"))
            assert b is not None and dict(b) == dict(a)
            assert b["email"] and b["name"] and b["additional_fields"]


# --- rules ------------------------------------------------------------------------------------------


def test_upload_course_into_a_course_that_is_not_empty(sample_home: Path, course_archive: Path) -> None:
    before = snapshot_store(db_path(sample_home))
    line = assert_one_line_error(cli_at(sample_home, "upload", "course", "/sample", "local",
                                        "--archive_path", course_archive))
    assert "/sample is not empty" in line and "--force_overwrite" in line
    assert snapshot_store(db_path(sample_home)) == before


def test_upload_course_force_overwrite_onto_its_source(sample_home: Path, course_archive: Path,
                                                       tmp_path: Path) -> None:
    files = _files(sample_home, "/sample")
    etl("upload", "course", "/sample", "local", "--archive_path", course_archive, "--force_overwrite")
    after = _files(sample_home, "/sample")
    assert {p: v[0] for p, v in after.items()} == {p: v[0] for p, v in files.items()}
    assert {p: v[1] for p, v in after.items()} == {p: v[1] for p, v in files.items()}
    again = tmp_path / "again.zip"
    etl("download", "course", "/sample", "local", "--archive_path", again)
    assert _rows_sans_key(archive_members(again)) == _rows_sans_key(archive_members(course_archive))


def test_existing_keys_are_refused_naming_the_key(sample_home: Path, tmp_path: Path) -> None:
    # the archive's first kind is new in the target, its second kind collides: nothing at all is written
    archive = tmp_path / "two.zip"
    etl("download", "datastore", "/sample", "local", "--archive_path", archive,
        "--datastore_types", "EventEntity,Student")
    with _site(sample_home) as store:
        store.delete_multi(list(store.query("EventEntity", "ns_sample", keys_only=True)))
        first = next(iter(store.query("Student", "ns_sample", keys_only=True)))
    before = snapshot_store(db_path(sample_home))
    line = assert_one_line_error(cli_at(sample_home, "upload", "datastore", "/sample", "local",
                                        "--archive_path", archive))
    assert "class Student" in line and repr(first.name) in line and "already exists" in line
    assert "--force_overwrite" in line
    assert snapshot_store(db_path(sample_home)) == before


def test_existing_keys_with_force_overwrite(sample_home: Path, datastore_archive: Path, tmp_path: Path) -> None:
    with _site(sample_home) as store:
        student = next(iter(store.query("Student", "ns_sample")))
        student["name"] = "Changed Name"
        store.put(student)
    result = etl("upload", "datastore", "/sample", "local", "--archive_path", datastore_archive,
                 "--force_overwrite")
    assert result.entities == sum(len(r) for r in kind_rows(archive_members(datastore_archive)).values())
    again = tmp_path / "again.zip"
    etl("download", "datastore", "/sample", "local", "--archive_path", again)
    assert kind_rows(archive_members(again)) == kind_rows(archive_members(datastore_archive))


@pytest.mark.parametrize("mode_type", ["course", "datastore"])
def test_archive_with_no_kinds(sample_home: Path, tmp_path: Path, mode_type: str) -> None:
    archive = write_zip(tmp_path / "nokinds.zip", {
        "manifest.json": manifest_for(["files/assets/extra.txt"]),
        "files/assets/extra.txt": b"hello",
    })
    _add_course(sample_home, "/copy")
    before = snapshot_store(db_path(sample_home))
    with pytest.raises(EtlError, match="No entity types to upload found"):
        etl("upload", mode_type, "/copy", "local", "--archive_path", archive)
    assert snapshot_store(db_path(sample_home)) == before  # not even the files


def test_cli_archive_with_no_kinds(sample_home: Path, tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "nokinds.zip", {"manifest.json": manifest_for([])})
    before = snapshot_store(db_path(sample_home))
    line = assert_one_line_error(cli_at(sample_home, "upload", "datastore", "/sample", "local",
                                        "--archive_path", archive))
    assert "No entity types to upload found" in line
    assert snapshot_store(db_path(sample_home)) == before


def test_datastore_types_not_in_the_archive(sample_home: Path, datastore_archive: Path) -> None:
    _add_course(sample_home, "/copy")
    before = snapshot_store(db_path(sample_home))
    with pytest.raises(EtlError, match="--datastore_types names kinds not in the archive: FooBar") as err:
        etl("upload", "datastore", "/copy", "local", "--archive_path", datastore_archive,
            "--datastore_types", "Student,FooBar")
    assert "Student" in str(err.value).split("The archive holds: ")[1]
    with pytest.raises(EtlError, match="no entity types left to upload"):
        etl("upload", "datastore", "/copy", "local", "--archive_path", datastore_archive,
            "--datastore_types", "Student", "--exclude_types", "Student")
    assert snapshot_store(db_path(sample_home)) == before


def test_upload_course_carries_only_course_kinds(sample_home: Path, datastore_archive: Path) -> None:
    # a datastore archive uploaded as a course: its course kinds only, no learners
    _add_course(sample_home, "/copy")
    result = etl("upload", "course", "/copy", "local", "--archive_path", datastore_archive)
    assert set(result.rows) == {"QuestionEntity"}
    with _site(sample_home) as store:
        assert store.count("Student", "ns_copy") == 0


def test_manifest_member_missing_is_skipped(sample_home: Path, tmp_path: Path) -> None:
    rows = [{"key.name": "u1", "key.id": None, "user_id": "u1", "email": "e@x.y", "key": "x"}]
    archive = write_zip(tmp_path / "partial.zip", {
        "manifest.json": manifest_for(["models/Student.json", "models/FileDataEntity.json"]),
        "models/Student.json": rows_member(rows),
    })
    _add_course(sample_home, "/copy")
    result = etl("upload", "datastore", "/copy", "local", "--archive_path", archive)
    assert result.rows == {"Student": 1}


def test_upload_into_unknown_course_writes_nothing(sample_home: Path, datastore_archive: Path) -> None:
    before = snapshot_store(db_path(sample_home))
    line = assert_one_line_error(cli_at(sample_home, "upload", "datastore", "/nowhere", "local",
                                        "--archive_path", datastore_archive))
    assert "'/nowhere'" in line
    assert snapshot_store(db_path(sample_home)) == before


def test_large_course_file_is_sharded_and_round_trips(sample_home: Path, tmp_path: Path) -> None:
    big = bytes(range(256)) * (2_600_000 // 256)  # about 2.6 MB: three 1 MB shards
    with _site(sample_home) as store:
        Site(store).course("/sample").fs.put("/assets/big.bin", big)
    archive = tmp_path / "c.zip"
    etl("download", "course", "/sample", "local", "--archive_path", archive)
    assert archive_members(archive)["files/assets/big.bin"] == big
    _add_course(sample_home, "/copy")
    etl("upload", "course", "/copy", "local", "--archive_path", archive)
    with _site(sample_home) as store:
        assert Site(store).course("/copy").fs.get("/assets/big.bin") == big
        shards = [k.name for k in store.query("FileDataEntity", "ns_copy", keys_only=True)
                  if k.name.startswith("/assets/big.bin")]
    assert sorted(shards) == ["/assets/big.bin", "/assets/big.bin:shard:0", "/assets/big.bin:shard:1"]


def test_resume_skips_rows_that_are_there(sample_home: Path, tmp_path: Path) -> None:
    rows = [{"key.name": f"u{i}", "key.id": None, "user_id": f"u{i}", "email": f"u{i}@x.y", "key": ""}
            for i in (1, 2)]
    archive = write_zip(tmp_path / "two.zip", {"manifest.json": manifest_for(["models/Student.json"]),
                                               "models/Student.json": rows_member(rows)})
    one = write_zip(tmp_path / "one.zip", {"manifest.json": manifest_for(["models/Student.json"]),
                                           "models/Student.json": rows_member(rows[1:])})
    _add_course(sample_home, "/copy")
    etl("upload", "datastore", "/copy", "local", "--archive_path", one)
    with pytest.raises(EtlError, match="with key 'u2' already exists"):
        etl("upload", "datastore", "/copy", "local", "--archive_path", archive)
    result = etl("upload", "datastore", "/copy", "local", "--archive_path", archive, "--resume")
    assert result.rows == {"Student": 1} and result.skipped == {"Student": 1}
    with _site(sample_home) as store:
        assert [s["email"] for s in store.query("Student", "ns_copy")] == ["u1@x.y", "u2@x.y"]
    again = etl("upload", "datastore", "/copy", "local", "--archive_path", archive, "--resume")
    assert again.rows == {"Student": 0} and again.skipped == {"Student": 2}


def test_upload_keeps_parent_paths(sample_home: Path, tmp_path: Path) -> None:
    with _site(sample_home) as store:
        store.put(Entity(Key("Parent", 7, "Child", "c", namespace="ns_sample"), {"v": 1}))
    archive = tmp_path / "child.zip"
    etl("download", "datastore", "/sample", "local", "--archive_path", archive, "--datastore_types", "Child")
    _add_course(sample_home, "/copy")
    etl("upload", "datastore", "/copy", "local", "--archive_path", archive)
    with _site(sample_home) as store:
        assert store.get(Key("Parent", 7, "Child", "c", namespace="ns_copy")) == \
            Entity(Key("Parent", 7, "Child", "c", namespace="ns_copy"), {"v": 1})
