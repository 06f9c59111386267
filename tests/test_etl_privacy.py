"""``download datastore --privacy [--privacy_secret S]`` (spec §3.2-§3.6, §6.9).

Pseudonyms are checked against an HMAC-SHA256 computed here, independently of
courseport; "no PII" is checked on the raw bytes of every member.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from conftest import (
    FIXTURES,
    FIXTURES_MISSING,
    archive_members,
    cli_at,
    db_path,
    etl,
    kind_rows,
    require_fixtures,
    snapshot_store,
    without,
)
from courseport.courses.site import Site
from courseport.datastore import Entity, Key, SqliteBackend, Text
from courseport.etl.errors import EtlError

NS = "ns_sample"
SECRET = "s3cret"
KINDS = "Student,EventEntity,StudentAnswersEntity,StudentPropertyEntity"
LEGACY_EMAIL = "legacy.learner@example.com"
LEGACY_UID = "123456789012345678901"


def h(value: object, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), str(value).encode(), hashlib.sha256).hexdigest()


def _json_forms(text: str) -> list[bytes]:
    """How a string can appear in an archive: raw UTF-8 and JSON-escaped."""
    escaped = json.dumps(text)[1:-1]
    forms = {text.encode("utf-8"), escaped.encode("ascii"), json.dumps(escaped)[1:-1].encode("ascii")}
    return sorted(forms)


@pytest.fixture(scope="module")
def world(tmp_path_factory, sample_template: Path) -> dict:
    root = tmp_path_factory.mktemp("privacy")
    home = root / "home"
    home.mkdir()
    shutil.copyfile(db_path(sample_template), db_path(home))
    with SqliteBackend(db_path(home), create=False) as store:
        # a legacy learner (Course Builder <= 1.8): keyed by email, not by user id
        store.put_multi([
            Entity(Key("Student", LEGACY_EMAIL, namespace=NS), {
                "enrolled_on": dt.datetime(2014, 1, 2, 3, 4, 5, 6), "user_id": LEGACY_UID,
                "email": LEGACY_EMAIL, "name": "Legacy Learner",
                "additional_fields": Text('[["form01", "Legacy Learner"], ["age", "42"]]'),
                "is_enrolled": True, "last_seen_on": None, "scores": None, "labels": "", "group_id": None}),
            Entity(Key("EventEntity", namespace=NS), {
                "recorded_on": dt.datetime(2014, 1, 3), "source": "click-link", "user_id": LEGACY_UID,
                "data": Text('{"href": "http://example.com/"}')}),
        ])
        original = {kind: list(store.query(kind, NS)) for kind in KINDS.split(",")}
    archive = root / "private.zip"
    proc = cli_at(home, "download", "datastore", "/sample", "local", "--archive_path", archive,
                  "--privacy", "--privacy_secret", SECRET, "--datastore_types", KINDS)
    assert proc.returncode == 0, proc.stderr
    members = archive_members(archive)
    return {"home": home, "root": root, "server": f"sqlite:///{db_path(home)}", "original": original,
            "members": members, "rows": kind_rows(members), "archive": archive}


def test_manifest_lists_the_four_kinds(world) -> None:
    manifest = json.loads(world["members"]["manifest.json"])
    assert [e["path"] for e in manifest["entities"]] == [
        f"models/{k}.json" for k in sorted(KINDS.split(","))]


def test_student_keys_and_user_ids_are_hmacs(world) -> None:
    rows = world["rows"]["Student"]
    originals = world["original"]["Student"]
    assert len(rows) == len(originals) == 21
    by_name = {r["key.name"]: r for r in rows}
    for student in originals:
        row = by_name[h(student.key.name)]
        assert row["key.id"] is None
        assert row["user_id"] == h(student["user_id"])
        app, key = Key.from_urlsafe(row["key_by_user_id"])
        assert (app, key.kind, key.name, key.namespace) == ("courseport", "Student", h(student["user_id"]), NS)
        app, key = Key.from_urlsafe(row["key"])
        assert (key.kind, key.name, key.namespace) == ("Student", h(student.key.name), NS)
        assert not {"email", "name", "additional_fields"} & set(row), row.keys()
        for kept in ("enrolled_on", "is_enrolled", "last_seen_on", "scores", "labels", "group_id"):
            assert kept in row
    legacy = by_name[h(LEGACY_EMAIL)]
    assert legacy["user_id"] == h(LEGACY_UID)
    assert Key.from_urlsafe(legacy["key_by_user_id"])[1].name == h(LEGACY_UID) != legacy["key.name"]


def test_events_join_students(world) -> None:
    students = {r["user_id"] for r in world["rows"]["Student"]}
    via_key = {Key.from_urlsafe(r["key_by_user_id"])[1].name for r in world["rows"]["Student"]}
    assert students == via_key
    events = world["rows"]["EventEntity"]
    assert len(events) == len(world["original"]["EventEntity"]) > 100
    originals = {e.key.id: e for e in world["original"]["EventEntity"]}
    for event in events:
        assert event["user_id"] in students  # joinable
        original = originals[event["key.id"]]  # EventEntity keeps its key
        assert event["user_id"] == h(original["user_id"])
        assert event["data"] == original["data"]  # payloads are not scrubbed
        assert event["key.name"] == "None"


def test_student_property_and_answers_keys(world) -> None:
    props = world["rows"]["StudentPropertyEntity"]
    students = {s["user_id"] for s in world["original"]["Student"]}
    assert {p["key.name"] for p in props} == {f"{h(uid)}-linear-course-completion"
                                             for uid in students if uid != LEGACY_UID}
    for p in props:
        assert p["name"] == "linear-course-completion" and isinstance(p["value"], str)
    answers = world["rows"]["StudentAnswersEntity"]
    assert {a["key.name"] for a in answers} == {h(a.key.name) for a in world["original"]["StudentAnswersEntity"]}
    assert all(len(a["key.name"]) == 64 for a in answers)


def test_no_pii_anywhere_in_the_archive(world) -> None:
    needles: list[tuple[str, bytes]] = [("field additional_fields", b"additional_fields"),
                                        ("field email", b'"email"')]
    for student in world["original"]["Student"]:
        for label, value in (("email", student["email"]), ("name", student["name"]),
                             ("user id", student["user_id"]), ("key name", student.key.name)):
            needles += [(f"{label} {value}", form) for form in _json_forms(value)]
    with zipfile.ZipFile(world["archive"]) as zf:
        raw = {info.filename: zf.read(info) for info in zf.infolist()}
    assert set(raw) == set(world["members"])
    for member, data in raw.items():
        for label, needle in needles:
            assert needle not in data, f"{member} holds {label}"
    # nor inside the key strings, which are base64
    for kind, rows in world["rows"].items():
        for row in rows:
            for field in ("key", "key_by_user_id"):
                if field in row:
                    name = str(Key.from_urlsafe(row[field])[1].id_or_name)
                    for student in world["original"]["Student"]:
                        assert student["user_id"] not in name and student["email"] not in name


def test_same_secret_gives_the_same_bytes(world) -> None:
    again = world["root"] / "again.zip"
    etl("download", "datastore", "/sample", world["server"], "--archive_path", again,
        "--privacy", "--privacy_secret", SECRET, "--datastore_types", KINDS, "--batch_size", "7")
    members = archive_members(again)
    for name, data in world["members"].items():
        assert members[name] == data, name


def test_no_secret_gives_fresh_pseudonyms_each_run_but_joinable(world) -> None:
    runs = []
    for n in range(2):
        target = world["root"] / f"random{n}.zip"
        etl("download", "datastore", "/sample", world["server"], "--archive_path", target,
            "--privacy", "--datastore_types", "Student,EventEntity,StudentPropertyEntity")
        rows = kind_rows(archive_members(target))
        students = {r["user_id"] for r in rows["Student"]}
        assert {e["user_id"] for e in rows["EventEntity"]} <= students
        assert {Key.from_urlsafe(r["key_by_user_id"])[1].name for r in rows["Student"]} == students
        assert {p["key.name"].split("-", 1)[0] for p in rows["StudentPropertyEntity"]} <= students
        assert not students & {r["user_id"] for r in world["rows"]["Student"]}  # not the s3cret ones
        runs.append(students)
    assert not runs[0] & runs[1]


def test_privacy_refuses_kinds_without_privacy_rules(world, tmp_path: Path) -> None:
    with SqliteBackend(db_path(world["home"]), create=False) as store:
        store.put(Entity(Key("UnknownThing", "x", namespace=NS), {"email": "a@b.c"}))
    try:
        target = tmp_path / "x.zip"
        with pytest.raises(EtlError, match="--exclude_types UnknownThing"):
            etl("download", "datastore", "/sample", world["server"], "--archive_path", target, "--privacy")
        assert list(tmp_path.iterdir()) == []
        etl("download", "datastore", "/sample", world["server"], "--archive_path", target, "--privacy",
            "--exclude_types", "UnknownThing")
        assert "models/UnknownThing.json" not in archive_members(target)
    finally:
        with SqliteBackend(db_path(world["home"]), create=False) as store:
            store.delete(Key("UnknownThing", "x", namespace=NS))


# --- against Course Builder's own privacy archive -------------------------------------------------


def _decoded_path(text: str) -> tuple:
    return Key.from_urlsafe(text)[1].path


@pytest.mark.skipif(not FIXTURES.is_dir(), reason=FIXTURES_MISSING)
def test_live_sample_privacy_matches_course_builder(home: Path, tmp_path: Path) -> None:
    live = require_fixtures() / "live_sample"
    with SqliteBackend(db_path(home)) as store:
        store.set_meta("app_id", "courseport")
        Site(store).add_course("/live")
    result = etl("upload", "datastore", "/live", "local", "--archive_path", live / "datastore.zip")
    assert result.entities == 622
    ours = tmp_path / "ours.zip"
    proc = cli_at(home, "download", "datastore", "/live", "local", "--archive_path", ours,
                  "--privacy", "--privacy_secret", SECRET)
    assert proc.returncode == 0, proc.stderr
    theirs = kind_rows(archive_members(live / "datastore_privacy_s3cret.zip"))
    mine = kind_rows(archive_members(ours))
    assert sorted(mine) == sorted(theirs)
    for kind in theirs:
        assert len(mine[kind]) == len(theirs[kind]), kind
        for a, b in zip(mine[kind], theirs[kind]):
            assert without(a, "key", "key_by_user_id") == without(b, "key", "key_by_user_id"), kind
            assert _decoded_path(a["key"]) == _decoded_path(b["key"]), kind
            assert ("key_by_user_id" in a) == ("key_by_user_id" in b), kind
            if "key_by_user_id" in b:
                assert _decoded_path(a["key_by_user_id"]) == _decoded_path(b["key_by_user_id"])
                assert Key.from_urlsafe(a["key_by_user_id"])[1].namespace == "ns_live"


# --- a key the privacy rules cannot hash ------------------------------------------------------------


@pytest.fixture
def dashless(sample_home: Path) -> Path:
    """A StudentPropertyEntity whose key name has no '-' (spec §3.5's crash)."""
    with SqliteBackend(db_path(sample_home), create=False) as store:
        store.put(Entity(Key("StudentPropertyEntity", "nodash", namespace=NS),
                         {"name": "x", "value": Text("{}"), "updated_on": None}))
    return sample_home


def test_key_without_dash_is_one_line_error(dashless: Path) -> None:
    from conftest import assert_one_line_error

    archive = dashless.parent / "p.zip"
    before = snapshot_store(db_path(dashless))
    line = assert_one_line_error(cli_at(dashless, "download", "datastore", "/sample", "local", "--archive_path",
                                        archive, "--privacy", "--privacy_secret", SECRET, "--log_level", "error"))
    assert "StudentPropertyEntity" in line and "'nodash'" in line and "'-'" in line
    assert not archive.exists()
    assert snapshot_store(db_path(dashless)) == before


def test_key_without_dash_leaves_no_partial(dashless: Path) -> None:
    from conftest import assert_no_archive

    archive = dashless.parent / "p.zip"
    with pytest.raises(Exception, match="nodash"):
        etl("download", "datastore", "/sample", "local", "--archive_path", archive, "--privacy",
            "--privacy_secret", SECRET)
    assert_no_archive(archive)


def test_key_without_dash_downloads_without_privacy(dashless: Path) -> None:
    """Course Builder crashed here even without --privacy; courseport does not."""
    archive = dashless.parent / "p.zip"
    etl("download", "datastore", "/sample", "local", "--archive_path", archive,
        "--datastore_types", "StudentPropertyEntity")
    names = [r["key.name"] for r in kind_rows(archive_members(archive))["StudentPropertyEntity"]]
    assert "nodash" in names and len(names) == 21


def test_privacy_archive_uploads_into_a_new_course_with_the_same_rows(world, tmp_path: Path) -> None:
    """The pseudonyms become the new keys; every row comes back as it was exported."""
    home = world["home"]
    with SqliteBackend(db_path(home), create=False) as store:
        if Site(store).find("/research") is None:
            Site(store).add_course("/research")
    proc = cli_at(home, "upload", "datastore", "/research", "local", "--archive_path", world["archive"])
    assert proc.returncode == 0, proc.stderr
    again = tmp_path / "again.zip"
    proc = cli_at(home, "download", "datastore", "/research", "local", "--archive_path", again,
                  "--datastore_types", KINDS)
    assert proc.returncode == 0, proc.stderr
    rows = kind_rows(archive_members(again))
    for kind in KINDS.split(","):
        def comparable(row: dict) -> dict:
            out = without(row, "key")
            if "key_by_user_id" in out:  # same path; the namespace is the new course's
                out["key_by_user_id"] = Key.from_urlsafe(out["key_by_user_id"])[1].path
            return out
        assert sorted(map(json.dumps, map(comparable, rows[kind]))) == \
            sorted(map(json.dumps, map(comparable, world["rows"][kind]))), kind


def test_the_secret_may_come_from_the_environment(world) -> None:
    """COURSEPORT_PRIVACY_SECRET keeps the secret out of the process list: same pseudonyms as the flag."""
    target = world["root"] / "from-env.zip"
    proc = cli_at(world["home"], "download", "datastore", "/sample", "local", "--archive_path", target,
                  "--privacy", "--datastore_types", KINDS, extra_env={"COURSEPORT_PRIVACY_SECRET": SECRET})
    assert proc.returncode == 0, proc.stderr
    assert archive_members(target) == world["members"]
    # the flag wins over the environment; the environment is not read without --privacy
    other = world["root"] / "flag-wins.zip"
    proc = cli_at(world["home"], "download", "datastore", "/sample", "local", "--archive_path", other,
                  "--privacy", "--privacy_secret", SECRET, "--datastore_types", KINDS,
                  extra_env={"COURSEPORT_PRIVACY_SECRET": "another"})
    assert proc.returncode == 0 and archive_members(other) == world["members"]
    plain = world["root"] / "plain.zip"
    proc = cli_at(world["home"], "download", "datastore", "/sample", "local", "--archive_path", plain,
                  "--datastore_types", "Student", extra_env={"COURSEPORT_PRIVACY_SECRET": SECRET})
    assert proc.returncode == 0, proc.stderr
