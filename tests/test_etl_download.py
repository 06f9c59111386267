"""``download course`` and ``download datastore`` (spec §1.3-§1.6, §6.1, §6.2).

One store is built per module: the sample course with 20 learners plus a few
rows chosen to exercise the format rules (``<``/``>``, non-ASCII text, a
datetime with zero microseconds, a kind keyed by both ids and names, a draft
file). Its downloads are checked member by member, byte by byte.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from conftest import (
    DATETIME_RE,
    archive_members,
    assert_no_archive,
    cli_at,
    db_path,
    etl,
    kind_rows,
    rows_of,
    snapshot_store,
)
from courseport.courses.site import Site
from courseport.datastore import Entity, Key, SqliteBackend, Text
from courseport.etl import verify
from courseport.models import COURSE_KINDS, schema_for

NS = "ns_sample"
APP_ID = "courseport"
COURSE_KIND_NAMES = [
    "ContentChunkEntity", "I18nProgressEntity", "LabelEntity", "QuestionEntity",
    "QuestionGroupEntity", "ResourceBundleEntity", "RoleEntity", "StudentGroupEntity",
    "StudentGroupMembership", "_SkillEntity",
]
JSON_STRING_COLUMNS = ("data", "scores", "value", "additional_fields")
DRAFT_FILE = "/assets/html/draft.html"
ZERO_MICROS = dt.datetime(2020, 1, 1, 0, 0, 0)


def _add_tricky_rows(db: Path) -> None:
    with SqliteBackend(db, create=False) as store:
        Site(store).course("/sample").fs.put(DRAFT_FILE, "<p>draft \u00e9t\u00e9</p>\n".encode(), is_draft=True)
        store.put_multi([
            Entity(Key("Student", "zoe@example.com", namespace=NS), {
                "enrolled_on": ZERO_MICROS, "user_id": "100000000000000000001",
                "email": "zoe@example.com", "name": "Zo\u00eb <b>S\u00f8ren</b> & co",
                "additional_fields": Text('[["form01", "<script>alert(1)</script>"]]'),
                "is_enrolled": False, "last_seen_on": None, "scores": Text('{"13": 100}'),
                "labels": "3 7", "group_id": 4,
            }),
            Entity(Key("EventEntity", 10**15, namespace=NS), {
                "recorded_on": dt.datetime(2021, 5, 6, 7, 8, 9, 1), "source": "click-link",
                "user_id": "100000000000000000001",
                "data": Text(json.dumps({"href": "http://x/?a=<1>", "city": "M\u00fcnchen"})),
            }),
            Entity(Key("LabelEntity", 7, namespace=NS), {"data": Text('{"title": "<Track> \u2603"}')}),
            Entity(Key("RefKind", 1, namespace=NS), {
                "ref": Key("Student", "zoe@example.com", namespace=NS),
                "refs": [Key("EventEntity", 10**15, namespace=NS), Key("LabelEntity", 7, namespace=NS)],
                "blob": b"\xff\x01<>", "ascii_blob": b"plain <ascii>", "day": dt.date(2020, 2, 29), "ratio": 0.5, "tags": ["a", "<b>"]}),
            *[Entity(Key("MixedKind", ident, namespace=NS), {"n": i, "when": dt.datetime(2022, 2, 2)})
              for i, ident in enumerate([300, "b", 5, "B", "a", 2**40, "\u00e9", "aa"])],
        ])


@pytest.fixture(scope="module")
def world(tmp_path_factory, sample_template: Path) -> dict:
    """The store, and its downloads (course, datastore; zip and directory)."""
    root = tmp_path_factory.mktemp("download")
    home = root / "home"
    home.mkdir()
    shutil.copyfile(db_path(sample_template), db_path(home))
    _add_tricky_rows(db_path(home))
    server = f"sqlite:///{db_path(home)}"
    out = {"home": home, "server": server, "root": root}
    out["course_zip"] = root / "course.zip"
    proc = cli_at(home, "download", "course", "/sample", "local", "--archive_path", out["course_zip"])
    assert proc.returncode == 0, proc.stderr
    out["course_stdout"] = proc.stdout
    out["datastore_zip"] = root / "datastore.zip"
    proc = cli_at(home, "download", "datastore", "/sample", "local", "--archive_path", out["datastore_zip"],
                  "--batch_size", "3")
    assert proc.returncode == 0, proc.stderr
    out["datastore_stdout"] = proc.stdout
    out["course_dir"] = root / "course_dir"
    etl("download", "course", "/sample", server, "--archive_path", out["course_dir"],
        "--archive_type", "directory", "--internal")
    out["datastore_dir"] = root / "datastore_dir"
    etl("download", "datastore", "/sample", server, "--archive_path", out["datastore_dir"],
        "--archive_type", "directory")
    with SqliteBackend(db_path(home), create=False) as store:
        fs = Site(store).course("/sample").fs
        out["files"] = {info.path: (fs.get(info.path), info.is_draft) for info in fs.infos()}
        out["kinds"] = store.kinds(NS)
        out["counts"] = {kind: store.count(kind, NS) for kind in out["kinds"]}
    return out


def _members(world: dict, name: str) -> dict[str, bytes]:
    return archive_members(world[name])


ARCHIVES = ["course_zip", "datastore_zip", "course_dir", "datastore_dir"]


# --- download course ----------------------------------------------------------------------------


def test_course_manifest(world) -> None:
    members = _members(world, "course_zip")
    manifest = json.loads(members["manifest.json"])
    assert manifest["raw"] == "course:/sample::ns_sample"
    assert manifest["version"] == "1.3"
    listed = [entry["path"] for entry in manifest["entities"]]
    for entry in manifest["entities"]:
        assert "is_draft" in entry and entry["is_draft"] in (True, False, None), entry
    assert sorted(listed) == sorted(set(members) - {"manifest.json"}), "every member listed, every listed present"
    assert "downloaded course /sample" in world["course_stdout"]


def test_course_files_are_every_course_file_with_bytes_and_draft_flags(world) -> None:
    members = _members(world, "course_zip")
    manifest = {e["path"]: e for e in json.loads(members["manifest.json"])["entities"]}
    files = {name for name in members if name.startswith("files/")}
    assert files == {"files" + path for path in world["files"]}
    assert {"files/course.yaml", "files/data/course.json", "files/assets/img/logo.png",
            "files/assets/css/main.css", "files/assets/js/activity-7.js", "files" + DRAFT_FILE} <= files
    for path, (data, is_draft) in world["files"].items():
        assert members["files" + path] == data, path
        assert manifest["files" + path]["is_draft"] is is_draft, path
    assert manifest["files" + DRAFT_FILE]["is_draft"] is True
    assert manifest["files/course.yaml"]["is_draft"] is None
    assert manifest["files/assets/img/logo.png"]["is_draft"] is False


def test_course_models_are_every_course_kind_even_empty(world) -> None:
    members = _members(world, "course_zip")
    models = sorted(name for name in members if name.startswith("models/"))
    assert models == [f"models/{kind}.json" for kind in sorted(COURSE_KIND_NAMES)]
    assert sorted(COURSE_KINDS) == sorted(COURSE_KIND_NAMES)
    rows = kind_rows(members)
    assert len(rows["QuestionEntity"]) == world["counts"]["QuestionEntity"] > 0
    assert [r["key.id"] for r in rows["LabelEntity"]] == [7]
    assert members["models/RoleEntity.json"] == b'{"rows": [\n]}\n'
    manifest = {e["path"]: e for e in json.loads(members["manifest.json"])["entities"]}
    assert all(manifest[m]["is_draft"] is False for m in models)


def test_course_no_static_files(world) -> None:
    target = world["root"] / "nostatic.zip"
    result = etl("download", "course", "/sample", world["server"], "--archive_path", target,
                 "--no_static_files", "--internal")
    members = archive_members(target)
    assert sorted(n for n in members if n.startswith("files/")) == ["files/course.yaml", "files/data/course.json"]
    assert sorted(n for n in members if n.startswith("models/")) == [f"models/{k}.json" for k in sorted(COURSE_KIND_NAMES)]
    assert result.files == 2
    listed = [e["path"] for e in json.loads(members["manifest.json"])["entities"]]
    assert sorted(listed) == sorted(set(members) - {"manifest.json"})


def test_directory_archive_holds_the_same_members_as_the_zip(world) -> None:
    for kind in ("course", "datastore"):
        assert world[f"{kind}_dir"].is_dir()
        assert _members(world, f"{kind}_dir") == _members(world, f"{kind}_zip"), kind
    assert not list(world["root"].glob("*.partial*"))


def test_force_overwrite_replaces_an_archive(world, tmp_path: Path) -> None:
    target = tmp_path / "again.zip"
    target.write_bytes(b"old")
    etl("download", "datastore", "/sample", world["server"], "--archive_path", target,
        "--force_overwrite", "--datastore_types", "LabelEntity")
    assert sorted(archive_members(target)) == ["manifest.json", "models/LabelEntity.json"]
    target_dir = tmp_path / "again_dir"
    (target_dir / "models").mkdir(parents=True)
    (target_dir / "models" / "Stale.json").write_bytes(b"{}")
    etl("download", "datastore", "/sample", world["server"], "--archive_path", target_dir,
        "--force_overwrite", "--archive_type", "directory", "--datastore_types", "LabelEntity")
    assert sorted(archive_members(target_dir)) == ["manifest.json", "models/LabelEntity.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.zip", "again_dir"]


def test_download_writes_nothing_to_the_store(world, tmp_path: Path) -> None:
    before = snapshot_store(db_path(world["home"]))
    etl("download", "datastore", "/sample", world["server"], "--archive_path", tmp_path / "a.zip")
    etl("download", "course", "/sample", world["server"], "--archive_path", tmp_path / "b.zip")
    assert snapshot_store(db_path(world["home"])) == before


# --- download datastore -------------------------------------------------------------------------


def _manifest_models(members: dict[str, bytes]) -> list[str]:
    return [e["path"] for e in json.loads(members["manifest.json"])["entities"]]


def test_datastore_all_kinds(world) -> None:
    members = _members(world, "datastore_zip")
    assert _manifest_models(members) == [f"models/{kind}.json" for kind in sorted(world["kinds"])]
    assert sorted(members) == sorted(["manifest.json"] + [f"models/{k}.json" for k in world["kinds"]])
    rows = kind_rows(members)
    assert {kind: len(r) for kind, r in rows.items()} == world["counts"]
    assert json.loads(members["manifest.json"])["raw"] == "course:/sample::ns_sample"
    assert "downloaded datastore /sample" in world["datastore_stdout"]


def test_datastore_types(world, tmp_path: Path) -> None:
    target = tmp_path / "two.zip"
    result = etl("download", "datastore", "/sample", world["server"], "--archive_path", target,
                 "--datastore_types", "Student,StudentAnswersEntity")
    members = archive_members(target)
    assert _manifest_models(members) == ["models/Student.json", "models/StudentAnswersEntity.json"]
    assert sorted(members) == ["manifest.json", "models/Student.json", "models/StudentAnswersEntity.json"]
    assert result.rows == {"Student": world["counts"]["Student"],
                           "StudentAnswersEntity": world["counts"]["StudentAnswersEntity"]}
    # the same rows as in the full download, byte for byte
    full = _members(world, "datastore_zip")
    assert members["models/Student.json"] == full["models/Student.json"]


def test_exclude_types(world, tmp_path: Path) -> None:
    target = tmp_path / "some.zip"
    etl("download", "datastore", "/sample", world["server"], "--archive_path", target,
        "--exclude_types", "EventEntity,FileDataEntity,Unknown")
    expected = sorted(set(world["kinds"]) - {"EventEntity", "FileDataEntity"})
    assert _manifest_models(archive_members(target)) == [f"models/{k}.json" for k in expected]


def test_other_value_types(world) -> None:
    import base64

    row = kind_rows(_members(world, "datastore_zip"))["RefKind"][0]
    app, ref = Key.from_urlsafe(row["ref"])
    assert (app, ref.kind, ref.name, ref.namespace) == (APP_ID, "Student", "zoe@example.com", NS)
    assert [Key.from_urlsafe(r)[1].id_or_name for r in row["refs"]] == [10**15, 7]
    assert row["blob"] == {"type": "binary", "encoding": "base64",
                           "content": base64.urlsafe_b64encode(b"\xff\x01<>").decode()}
    assert row["ascii_blob"] == "plain <ascii>"  # Course Builder's quirk: ASCII bytes are a string
    assert row["day"] == "2020-02-29" and row["ratio"] == 0.5 and row["tags"] == ["a", "<b>"]


def test_blob_rows_are_binary_objects_or_strings(world) -> None:
    rows = {r["key.name"]: r for r in kind_rows(_members(world, "datastore_zip"))["FileDataEntity"]}
    import base64

    logo = rows["/assets/img/logo.png"]["data"]
    assert logo["type"] == "binary" and logo["encoding"] == "base64"
    assert base64.urlsafe_b64decode(logo["content"]) == world["files"]["/assets/img/logo.png"][0]
    css = rows["/assets/css/main.css"]["data"]
    assert css == world["files"]["/assets/css/main.css"][0].decode("ascii")  # pure ASCII: a plain string


# --- the format rules, on our own downloads -----------------------------------------------------


def _model_members(world: dict) -> list[tuple[str, str, bytes]]:
    out = []
    for archive in ARCHIVES:
        for name, data in _members(world, archive).items():
            if name.startswith("models/"):
                out.append((archive, name, data))
    assert len(out) > 20
    return out


def test_member_framing(world) -> None:
    for archive, name, data in _model_members(world):
        where = f"{archive}!{name}"
        assert data.startswith(b'{"rows": [\n'), where
        assert data.endswith(b"\n]}\n"), where
        lines = data.split(b"\n")
        assert lines[0] == b'{"rows": [' and lines[-2] == b"]}" and lines[-1] == b"", where
        body = lines[1:-2]
        rows = rows_of(data)
        assert len(body) == len(rows), where
        for i, line in enumerate(body):
            assert line.startswith(b"    {") and not line.startswith(b"     "), (where, i)
            last = i == len(body) - 1
            assert line.endswith(b"}") if last else line.endswith(b"},"), (where, i)
            assert json.loads(line.rstrip(b",")) == rows[i], (where, i)


def _order(row: dict) -> tuple:
    if row["key.id"] is not None:
        return (0, row["key.id"], b"")
    return (1, 0, row["key.name"].encode("utf-8"))


def test_rows_are_in_key_order(world) -> None:
    for archive, name, data in _model_members(world):
        rows = rows_of(data)
        assert [_order(r) for r in rows] == sorted(_order(r) for r in rows), f"{archive}!{name}"
    mixed = kind_rows(_members(world, "datastore_zip"))["MixedKind"]
    assert [r["key.id"] if r["key.id"] is not None else r["key.name"] for r in mixed] == [
        5, 300, 2**40, "B", "a", "aa", "b", "\u00e9"]


def test_key_fields(world) -> None:
    seen = {"id": 0, "name": 0}
    for archive, name, data in _model_members(world):
        kind = name[len("models/"):-len(".json")]
        for row in rows_of(data):
            where = f"{archive}!{name} {row.get('key.id')} {row.get('key.name')}"
            assert {"key", "key.id", "key.name"} <= set(row), where
            if row["key.id"] is not None:
                assert type(row["key.id"]) is int and row["key.name"] == "None", where
                ident = row["key.id"]
                seen["id"] += 1
            else:
                assert isinstance(row["key.name"], str) and row["key.name"] != "None", where
                ident = row["key.name"]
                seen["name"] += 1
            app, key = Key.from_urlsafe(row["key"])
            assert app == APP_ID, where
            assert (key.kind, key.id_or_name, key.namespace) == (kind, ident, NS), where
            assert key.parent is None, where
    assert seen["id"] and seen["name"]


def test_datetimes_have_six_digit_micros_and_z(world) -> None:
    checked = 0
    for archive, name, data in _model_members(world):
        kind = name[len("models/"):-len(".json")]
        schema = schema_for(kind)
        if schema is None:
            continue
        fields = [p.name for p in schema.properties if p.type == "datetime"]
        for row in rows_of(data):
            for field in fields:
                if row.get(field) is not None:
                    assert re.match(DATETIME_RE, row[field]), (archive, name, field, row[field])
                    checked += 1
    assert checked > 100
    students = {r["key.name"]: r for r in kind_rows(_members(world, "datastore_zip"))["Student"]}
    assert students["zoe@example.com"]["enrolled_on"] == "2020-01-01T00:00:00.000000Z"
    assert students["zoe@example.com"]["last_seen_on"] is None
    mixed = kind_rows(_members(world, "datastore_zip"))["MixedKind"]
    assert {r["when"] for r in mixed} == {"2022-02-02T00:00:00.000000Z"}
    events = {r["key.id"]: r for r in kind_rows(_members(world, "datastore_zip"))["EventEntity"]}
    assert events[10**15]["recorded_on"] == "2021-05-06T07:08:09.000001Z"


def test_no_raw_angle_brackets_and_ascii_only(world) -> None:
    escaped = 0
    for archive, name, data in _model_members(world):
        assert data.isascii(), f"{archive}!{name}"
        assert b"<" not in data and b">" not in data, f"{archive}!{name}"
        escaped += data.count(b"\\u003C") + data.count(b"\\u003E")
    assert escaped > 0, "the store holds '<' and '>': they must appear escaped"
    student = _members(world, "datastore_zip")["models/Student.json"]
    assert b"Zo\\u00eb \\u003Cb\\u003ES\\u00f8ren\\u003C/b\\u003E & co" in student
    students = {r["key.name"]: r for r in rows_of(student)}
    assert students["zoe@example.com"]["name"] == "Zo\u00eb <b>S\u00f8ren</b> & co"
    for archive in ARCHIVES:
        for name, data in _members(world, archive).items():
            if name == "manifest.json":
                assert data.isascii() and b"<" not in data and b">" not in data


def test_json_columns_are_strings(world) -> None:
    checked = 0
    for archive, name, data in _model_members(world):
        if name == "models/FileDataEntity.json":
            continue  # its `data` is the file's bytes
        for row in rows_of(data):
            for column in JSON_STRING_COLUMNS:
                if column in row and row[column] is not None:
                    assert isinstance(row[column], str), (archive, name, column)
                    json.loads(row[column])
                    checked += 1
    assert checked > 100
    student = {r["key.name"]: r for r in kind_rows(_members(world, "datastore_zip"))["Student"]}["zoe@example.com"]
    assert student["scores"] == '{"13": 100}'
    assert student["group_id"] == 4 and student["labels"] == "3 7" and student["is_enrolled"] is False


def test_manifest_layout(world) -> None:
    for archive in ARCHIVES:
        text = _members(world, archive)["manifest.json"].decode("ascii")
        doc = json.loads(text)
        assert set(doc) == {"entities", "raw", "version"}
        paths = [e["path"] for e in doc["entities"]]
        assert paths == sorted(paths) and len(paths) == len(set(paths)), archive
        assert text.rstrip("\n") == json.dumps(doc, indent=2, sort_keys=True, separators=(", ", ": ")), archive
        assert text.startswith('{\n  "entities": [\n    {\n      "is_draft": ')


def test_verify_accepts_each_download(world) -> None:
    for archive in ("course_dir", "datastore_dir"):
        report = verify(world[archive])
        assert report.ok, report.lines()
    for archive in ("course_zip", "datastore_zip"):
        proc = cli_at(world["home"], "verify", "--archive_path", world[archive])
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.splitlines()[0] == f"{world[archive]}: OK"


def test_zip_members_are_plain_files(world) -> None:
    with zipfile.ZipFile(world["datastore_zip"]) as zf:
        assert zf.testzip() is None
        for info in zf.infolist():
            assert not info.is_dir() and not info.filename.startswith("/") and ".." not in info.filename


def test_failed_download_leaves_nothing(world, tmp_path: Path) -> None:
    from courseport.etl.errors import EtlError

    target = tmp_path / "x.zip"
    with pytest.raises(EtlError, match="Requested types not found: Nope"):
        etl("download", "datastore", "/sample", world["server"], "--archive_path", target,
            "--datastore_types", "Nope")
    assert_no_archive(target)
    assert list(tmp_path.iterdir()) == []


# --- more of Course Builder's checklist (spec §6.12) -------------------------------------------------


def test_a_new_question_is_the_last_row(sample_home: Path, tmp_path: Path) -> None:
    data = Text('{"version": "1.5", "type": 0, "question": "<p>New?</p>", "description": "new one"}')
    with SqliteBackend(db_path(sample_home), create=False) as store:
        key = store.put(Entity(Key("QuestionEntity", namespace=NS), {"data": data}))
        count = store.count("QuestionEntity", NS)
    archive = tmp_path / "c.zip"
    etl("download", "course", "/sample", "local", "--archive_path", archive)
    rows = kind_rows(archive_members(archive))["QuestionEntity"]
    assert len(rows) == count
    assert rows[-1]["key.id"] == key.id and rows[-1]["data"] == data


def _folder_course(home: Path, tmp_path: Path, files: dict[str, bytes]) -> None:
    from courseport.courses.rules import parse_rule

    folder = tmp_path / "folder_course"
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    with SqliteBackend(db_path(home), create=False) as store:
        site = Site(store)
        site.save_rules(site.rules() + [parse_rule(f"course:/folder:{folder}:ns_folder")])


def test_folder_course_files_are_whitelisted(sample_home: Path, tmp_path: Path) -> None:
    with SqliteBackend(db_path(sample_home), create=False) as store:
        course = Site(store).course("/sample")
        yaml_text, course_json = course.fs.get("/course.yaml"), course.fs.get("/data/course.json")
    _folder_course(sample_home, tmp_path, {
        "course.yaml": yaml_text, "data/course.json": course_json,
        "assets/css/a.css": b"a{}", "assets/lib/vendor.js": b"lib", "views/x.html": b"<x>",
        "modules/m.py": b"m", "assets/img/i.png": b"\x89PNG",
    })
    archive = tmp_path / "folder.zip"
    result = etl("download", "course", "/folder", "local", "--archive_path", archive)
    members = archive_members(archive)
    assert sorted(n for n in members if n.startswith("files/")) == [
        "files/assets/css/a.css", "files/assets/img/i.png", "files/course.yaml", "files/data/course.json"]
    assert result.files == 4
    assert all(e["is_draft"] is False for e in json.loads(members["manifest.json"])["entities"])
    assert members["files/assets/img/i.png"] == b"\x89PNG"


def test_model_1_2_course_is_refused(sample_home: Path, tmp_path: Path) -> None:
    from courseport.etl.errors import EtlError

    _folder_course(sample_home, tmp_path, {"course.yaml": b"course:\n  title: Old\n",
                                           "data/unit.csv": b"id,type,unit_id,title,release_date,now_available\n",
                                           "data/lesson.csv": b"unit_id,unit_title,lesson_id,lesson_title\n"})
    archive = tmp_path / "old.zip"
    with pytest.raises(EtlError, match="earlier than 1.3.0"):
        etl("download", "course", "/folder", "local", "--archive_path", archive)
    assert_no_archive(archive)
    # and a folder course cannot be uploaded into
    etl("download", "datastore", "/sample", "local", "--archive_path", archive, "--datastore_types", "Student")
    with pytest.raises(EtlError, match="read-only folder course"):
        etl("upload", "datastore", "/folder", "local", "--archive_path", archive)
