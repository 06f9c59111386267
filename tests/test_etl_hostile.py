"""Hostile and broken archives given to ``upload`` (spec §1.2, §1.5, §1.7, §6.4).

Each is refused before anything is written, with a message naming the member
and the problem; the target store (rows of every namespace, so course files
too) is identical before and after.
"""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from conftest import (
    assert_one_line_error,
    cli_at,
    db_path,
    etl,
    manifest_for,
    rows_member,
    snapshot_store,
    write_zip,
)
from courseport.courses.site import Site
from courseport.datastore import SqliteBackend
from courseport.etl.errors import EtlError

STUDENT = {"key.name": "1001", "key.id": None, "user_id": "1001", "email": "a@b.c", "name": "A",
           "enrolled_on": "2016-04-06T20:14:27.542076Z", "is_enrolled": True, "key": ""}
EVENT = {"key.name": "None", "key.id": 7, "source": "x", "user_id": "1001", "data": "{}",
         "recorded_on": "2016-04-06T20:14:27.542076Z", "key": ""}
GOOD_COURSE_YAML = b"course:\n  title: 'Hostile'\n"


def _datastore_zip(path: Path, models: dict[str, bytes], extra: dict[str, bytes] | None = None) -> Path:
    members = {"manifest.json": manifest_for(list(models) + list(extra or {}))}
    members.update(models)
    members.update(extra or {})
    return write_zip(path, members)


@pytest.fixture
def target(sample_home: Path) -> Path:
    """The populated sample store plus an empty course /target."""
    with SqliteBackend(db_path(sample_home), create=False) as store:
        Site(store).add_course("/target")
    return sample_home


def _refused(home: Path, mode: str, archive: Path, *phrases: str, extra: tuple = ()) -> str:
    before = snapshot_store(db_path(home))
    with pytest.raises(EtlError) as err:
        etl("upload", mode, "/target", "local", "--archive_path", archive, *extra)
    message = str(err.value)
    assert "\n" not in message
    for phrase in phrases:
        assert phrase in message, message
    assert snapshot_store(db_path(home)) == before
    return message


# --- container-level attacks ---------------------------------------------------------------------


@pytest.mark.parametrize("member,problem", [
    ("models/../../evil.json", "'..'"),
    ("../models/Student.json", "'..'"),
    ("/etc/models/Student.json", "absolute path"),
    ("C:/models/Student.json", "drive letter"),
    ("models\\Student.json", "backslash"),
    ("models//Student.json", "empty or '.' component"),
    ("models/./Student.json", "empty or '.' component"),
])
def test_zip_member_escaping_the_archive(target: Path, tmp_path: Path, member: str, problem: str) -> None:
    archive = write_zip(tmp_path / "evil.zip", {
        "manifest.json": manifest_for(["models/Student.json"]),
        "models/Student.json": rows_member([STUDENT]),
        member: rows_member([STUDENT]),
    })
    _refused(target, "datastore", archive, repr(member), problem)
    assert not (tmp_path.parent / "evil.json").exists()


def test_cli_zip_member_with_dotdot(target: Path, tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "evil.zip", {
        "manifest.json": manifest_for(["models/Student.json"]),
        "models/Student.json": rows_member([STUDENT]),
        "models/../../../evil.json": b"x",
    })
    before = snapshot_store(db_path(target))
    line = assert_one_line_error(cli_at(target, "upload", "datastore", "/target", "local",
                                        "--archive_path", archive))
    assert "models/../../../evil.json" in line and "escapes the archive" in line
    assert snapshot_store(db_path(target)) == before


def test_manifest_entry_escaping_the_archive(target: Path, tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "evil.zip", {
        "manifest.json": manifest_for(["models/../x.json", "models/Student.json"]),
        "models/Student.json": rows_member([STUDENT]),
    })
    _refused(target, "datastore", archive, "manifest.json", "models/../x.json", "'..'")


def test_duplicate_zip_members(target: Path, tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "dup.zip", [
        ("manifest.json", manifest_for(["models/Student.json"])),
        ("models/Student.json", rows_member([STUDENT])),
        ("models/Student.json", rows_member([dict(STUDENT, email="other@b.c")])),
    ])
    _refused(target, "datastore", archive, "models/Student.json", "more than once")


def test_zip_member_that_is_a_symlink(target: Path, tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("manifest.json", manifest_for(["models/Student.json"]))
        info = zipfile.ZipInfo("models/Student.json")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    _refused(target, "datastore", archive, "models/Student.json", "symbolic link")


def test_symlink_inside_a_directory_archive(target: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_bytes(rows_member([STUDENT]))
    folder = tmp_path / "dir"
    (folder / "models").mkdir(parents=True)
    (folder / "manifest.json").write_bytes(manifest_for(["models/Student.json", "models/EventEntity.json"]))
    (folder / "models" / "EventEntity.json").write_bytes(rows_member([EVENT]))
    os.symlink(outside, folder / "models" / "Student.json")
    _refused(target, "datastore", folder, "models/Student.json", "symbolic link")


def test_symlinked_folder_inside_a_directory_archive(target: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "Student.json").write_bytes(rows_member([STUDENT]))
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "manifest.json").write_bytes(manifest_for(["models/Student.json"]))
    os.symlink(elsewhere, folder / "models")
    _refused(target, "datastore", folder, "models", "symbolic link")


@pytest.fixture(scope="module")
def deflate_bomb(tmp_path_factory) -> Path:
    """200 MB of zeros in one deflated member (about 200 KB on disk)."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr("manifest.json", manifest_for(["models/Student.json"]))
        with zf.open("models/Student.json", "w", force_zip64=True) as member:
            chunk = bytes(1 << 20)
            for _ in range(200):
                member.write(chunk)
    assert path.stat().st_size < 1 << 20
    return path


def test_zip_bomb(target: Path, deflate_bomb: Path) -> None:
    _refused(target, "datastore", deflate_bomb, "models/Student.json", "zip bomb")


def test_cli_zip_bomb(target: Path, deflate_bomb: Path) -> None:
    before = snapshot_store(db_path(target))
    line = assert_one_line_error(cli_at(target, "upload", "datastore", "/target", "local",
                                        "--archive_path", deflate_bomb))
    assert "models/Student.json" in line and "zip bomb" in line
    assert snapshot_store(db_path(target)) == before


def test_bzip2_bomb(target: Path, tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_BZIP2) as zf:
        zf.writestr("manifest.json", manifest_for(["models/Student.json"]))
        zf.writestr("models/Student.json", bytes(20 << 20))
    _refused(target, "datastore", archive, "models/Student.json", "zip bomb")


def test_not_a_zip(target: Path, tmp_path: Path) -> None:
    archive = tmp_path / "garbage.zip"
    archive.write_bytes(b"PK\x03\x04 this is not really a zip" * 10)
    _refused(target, "datastore", archive, str(archive), "not a zip archive")


def test_no_manifest(target: Path, tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "nomanifest.zip", {"models/Student.json": rows_member([STUDENT])})
    _refused(target, "datastore", archive, "no manifest.json")


@pytest.mark.parametrize("manifest,problem", [
    (b"{not json", "not valid JSON"),
    (b"[]", "not a JSON object"),
    (b'{"entities": 3}', "'entities' is missing or not a list"),
    (b'{"entities": [{"path": "models/Student.json", "is_draft": "yes"}]}', "'is_draft'"),
    (b'{"entities": [{"path": "elsewhere/Student.json"}]}', "neither under files/ nor under models/"),
    (b"\xff\xfe", "not valid UTF-8"),
])
def test_manifest_that_is_not_a_manifest(target: Path, tmp_path: Path, manifest: bytes, problem: str) -> None:
    archive = write_zip(tmp_path / "bad.zip", {"manifest.json": manifest,
                                               "models/Student.json": rows_member([STUDENT])})
    _refused(target, "datastore", archive, "manifest.json", problem)


# --- row-level problems ----------------------------------------------------------------------------


ROW_PROBLEMS = [
    ("malformed JSON", b'{"rows": [\n    {"key.name": "a", "key.id": null},\n    {"key.name": \n]}\n',
     "row 2 is not valid JSON"),
    ("truncated", b'{"rows": [\n    ' + json.dumps(STUDENT).encode() + b"\n", "truncated"),
    ("cut after a comma", b'{"rows": [\n    ' + json.dumps(STUDENT).encode() + b",\n", "row 2 is not valid JSON"),
    ("not an object", b'{"rows": [\n    ["key.name", "a"]\n]}\n', "row 1 is not a JSON object"),
    ("no key", rows_member([{"user_id": "1", "key": ""}]), "neither a usable 'key.id' nor 'key.name'"),
    ("null keys", rows_member([{"key.id": None, "key.name": None}]), "neither a usable 'key.id' nor 'key.name'"),
    ("empty name", rows_member([{"key.id": None, "key.name": ""}]), "neither a usable 'key.id' nor 'key.name'"),
    ("bool id", rows_member([{"key.id": True, "key.name": "None"}]), "neither a usable 'key.id' nor 'key.name'"),
    ("typed property", rows_member([STUDENT, dict(STUDENT, **{"key.name": "1002", "enrolled_on": "yesterday"})]),
     "row 2 Student.enrolled_on"),
    ("bool as int", rows_member([dict(STUDENT, group_id="many")]), "Student.group_id"),
    ("not rows", b'{"entities": []}', "unexpected top-level key 'entities'"),
    ("trailing data", rows_member([STUDENT]) + b"{}", "trailing data"),
    ("not UTF-8", b'{"rows": [\n    {"key.name": "\xff", "key.id": null}\n]}\n', "not valid UTF-8"),
    ("empty", b"", "empty member"),
]


@pytest.mark.parametrize("case,member,problem", ROW_PROBLEMS, ids=[p[0] for p in ROW_PROBLEMS])
def test_broken_rows(target: Path, tmp_path: Path, case: str, member: bytes, problem: str) -> None:
    # a good kind first: it must not be written either
    archive = _datastore_zip(tmp_path / "rows.zip", {"models/EventEntity.json": rows_member([EVENT]),
                                                     "models/Student.json": member})
    _refused(target, "datastore", archive, "models/Student.json", problem)


def test_typed_property_message(target: Path, tmp_path: Path) -> None:
    archive = _datastore_zip(tmp_path / "rows.zip", {
        "models/Student.json": rows_member([dict(STUDENT, enrolled_on="yesterday")])})
    before = snapshot_store(db_path(target))
    line = assert_one_line_error(cli_at(target, "upload", "datastore", "/target", "local",
                                        "--archive_path", archive))
    assert "models/Student.json: row 1" in line and "enrolled_on" in line and "yesterday" in line
    assert snapshot_store(db_path(target)) == before


def test_cli_malformed_json(target: Path, tmp_path: Path) -> None:
    archive = _datastore_zip(tmp_path / "rows.zip", {"models/Student.json": b'{"rows": [\n    {oops}\n]}\n'})
    before = snapshot_store(db_path(target))
    line = assert_one_line_error(cli_at(target, "upload", "datastore", "/target", "local",
                                        "--archive_path", archive))
    assert "models/Student.json" in line and "not valid JSON" in line
    assert snapshot_store(db_path(target)) == before


# --- course files -------------------------------------------------------------------------------------


def _course_zip(path: Path, files: dict[str, bytes], models: dict[str, bytes] | None = None) -> Path:
    models = models if models is not None else {"models/QuestionEntity.json": rows_member([])}
    members = {"manifest.json": manifest_for(list(files) + list(models))}
    members.update(files)
    members.update(models)
    return write_zip(path, members)


@pytest.mark.parametrize("course_json", [b"garbage", b"{", b'{"units": "nope"}', b"[]"])
def test_garbage_course_json(target: Path, tmp_path: Path, course_json: bytes) -> None:
    archive = _course_zip(tmp_path / "c.zip", {"files/course.yaml": GOOD_COURSE_YAML,
                                               "files/assets/a.txt": b"a",
                                               "files/data/course.json": course_json})
    _refused(target, "course", archive, "course.json")


def test_course_yaml_that_is_not_yaml(target: Path, tmp_path: Path) -> None:
    archive = _course_zip(tmp_path / "c.zip", {"files/course.yaml": b"{", "files/assets/a.txt": b"a"})
    message = _refused(target, "course", archive, "course.yaml")
    assert "broken" in message


def test_cli_course_yaml_that_is_not_yaml(target: Path, tmp_path: Path) -> None:
    archive = _course_zip(tmp_path / "c.zip", {"files/course.yaml": b"{"})
    before = snapshot_store(db_path(target))
    line = assert_one_line_error(cli_at(target, "upload", "course", "/target", "local", "--archive_path", archive))
    assert "course.yaml" in line
    assert snapshot_store(db_path(target)) == before


def test_bad_rows_in_a_course_upload_write_no_files(target: Path, tmp_path: Path) -> None:
    archive = _course_zip(tmp_path / "c.zip", {"files/course.yaml": GOOD_COURSE_YAML, "files/assets/a.txt": b"a"},
                          {"models/QuestionEntity.json": rows_member([{"key.id": 1, "key.name": "None",
                                                                       "data": "{}"}, {"data": "{}"}])})
    _refused(target, "course", archive, "models/QuestionEntity.json", "row 2")


def test_course_file_member_escaping_the_course(target: Path, tmp_path: Path) -> None:
    archive = _course_zip(tmp_path / "c.zip", {"files/course.yaml": GOOD_COURSE_YAML,
                                               "files/../../etc/x": b"x"})
    _refused(target, "course", archive, "files/../../etc/x", "'..'")


def test_a_good_archive_still_uploads(target: Path, tmp_path: Path) -> None:
    """The control: the same shapes, unbroken, are accepted."""
    archive = _datastore_zip(tmp_path / "good.zip", {"models/EventEntity.json": rows_member([EVENT]),
                                                     "models/Student.json": rows_member([STUDENT])})
    result = etl("upload", "datastore", "/target", "local", "--archive_path", archive)
    assert result.rows == {"EventEntity": 1, "Student": 1}
    course = _course_zip(tmp_path / "c.zip", {"files/course.yaml": GOOD_COURSE_YAML, "files/assets/a.txt": b"a"})
    with SqliteBackend(db_path(target), create=False) as store:
        Site(store).add_course("/target2")
    etl("upload", "course", "/target2", "local", "--archive_path", course)
    with SqliteBackend(db_path(target), create=False) as store:
        course2 = Site(store).course("/target2")
        assert course2.title == "Hostile" and course2.fs.get("/assets/a.txt") == b"a"


# --- verify says the same -----------------------------------------------------------------------------


@pytest.mark.parametrize("case,member,problem", [p for p in ROW_PROBLEMS if p[0] in (
    "malformed JSON", "truncated", "not an object", "no key", "typed property", "not rows")],
    ids=lambda v: v if isinstance(v, str) and len(v) < 20 else None)
def test_verify_reports_broken_rows(tmp_path: Path, case: str, member: bytes, problem: str) -> None:
    from courseport.etl import verify

    archive = _datastore_zip(tmp_path / "rows.zip", {"models/Student.json": member})
    report = verify(archive)
    assert not report.ok
    problems = report.archive.problems + report.problems
    assert any("models/Student.json" in p and problem in p for p in problems), problems


def test_cli_verify_of_a_hostile_archive(target: Path, tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "evil.zip", {"manifest.json": manifest_for([]), "../evil": b"x"})
    proc = cli_at(target, "verify", "--archive_path", archive)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0] == f"{archive}: BROKEN"
    assert "'../evil'" in proc.stdout and "escapes the archive" in proc.stdout


# --- values and keys the store cannot take ---------------------------------------------------------


def test_key_name_with_nul(target: Path, tmp_path: Path) -> None:
    archive = _datastore_zip(tmp_path / "nul.zip", {"models/Student.json": rows_member([
        dict(STUDENT), dict(STUDENT, **{"key.name": "a\u0000b"})])})
    _refused(target, "datastore", archive, "models/Student.json", "NUL")


def test_cli_key_name_with_nul(target: Path, tmp_path: Path) -> None:
    archive = _datastore_zip(tmp_path / "nul.zip", {"models/Student.json": rows_member([
        dict(STUDENT, **{"key.name": "a\u0000b"})])})
    before = snapshot_store(db_path(target))
    line = assert_one_line_error(cli_at(target, "upload", "datastore", "/target", "local", "--archive_path", archive))
    assert "models/Student.json" in line and "NUL" in line
    assert snapshot_store(db_path(target)) == before


@pytest.mark.parametrize("kind", ["__kind__", "__namespace__", "__Stat_Total__"])
def test_reserved_kind_names(target: Path, tmp_path: Path, kind: str) -> None:
    """Rows put into App Engine's metadata kinds could never be downloaded nor deleted."""
    archive = _datastore_zip(tmp_path / "reserved.zip", {f"models/{kind}.json": rows_member([EVENT])})
    _refused(target, "datastore", archive, f"models/{kind}.json", "reserved kind name")


def test_impossible_datetime_in_canonical_shape(target: Path, tmp_path: Path) -> None:
    archive = _datastore_zip(tmp_path / "m13.zip", {"models/Student.json": rows_member([
        dict(STUDENT, enrolled_on="2016-13-01T00:00:00.000000Z")])})
    _refused(target, "datastore", archive, "models/Student.json", "Student.enrolled_on")


def test_verify_refuses_an_impossible_datetime(tmp_path: Path) -> None:
    from courseport.etl import verify

    archive = _datastore_zip(tmp_path / "m13.zip", {"models/Student.json": rows_member([
        dict(STUDENT, enrolled_on="2016-13-01T00:00:00.000000Z")])})
    report = verify(archive)
    assert not report.ok and any("month must be in 1..12" in p for p in report.problems)


def test_impossible_datetime_in_another_shape(target: Path, tmp_path: Path) -> None:
    archive = _datastore_zip(tmp_path / "m13.zip", {"models/Student.json": rows_member([
        dict(STUDENT, enrolled_on="2016-13-01 00:00")])})
    _refused(target, "datastore", archive, "models/Student.json", "Student.enrolled_on", "month must be in 1..12")


def test_binary_value_that_is_not_base64(target: Path, tmp_path: Path) -> None:
    row = {"key.name": "/assets/x.bin", "key.id": None, "key": "",
           "data": {"type": "binary", "encoding": "base64", "content": "!!"}}
    archive = _datastore_zip(tmp_path / "b64.zip", {"models/FileDataEntity.json": rows_member([row])})
    _refused(target, "datastore", archive, "models/FileDataEntity.json", "base64")
