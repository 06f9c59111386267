"""manifest.json (spec §1.4) and member-name rules."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from courseport.archive import ArchiveError, Manifest, ManifestEntry, check_member_name

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "coursebuilder"


def fixture_manifests() -> list[tuple[str, bytes]]:
    if not FIXTURES.is_dir():
        pytest.skip(f"../shared fixtures absent: {FIXTURES} not found")
    found = [(str(p), p.read_bytes()) for p in sorted(FIXTURES.glob("*/*/manifest.json"))]
    for archive in sorted(FIXTURES.glob("live_sample/*.zip")):
        with zipfile.ZipFile(archive) as zf:
            found.append((str(archive), zf.read("manifest.json")))
    assert len(found) >= 8
    return found


def test_fixture_manifests_round_trip_byte_identically() -> None:
    for where, data in fixture_manifests():
        manifest = Manifest.from_json(data)
        assert manifest.to_json() == data, where
        assert Manifest.from_json(manifest.to_json()) == manifest
        paths = [e.path for e in manifest.entries]
        assert paths == sorted(paths)
        assert manifest.raw.startswith("course:/")
        assert manifest.version == "1.3"


def test_fixture_manifest_details() -> None:
    data = dict(fixture_manifests())
    click = Manifest.from_json(data[str(FIXTURES / "click_link" / "course" / "manifest.json")])
    assert click.raw == "course:/clicklinktest::ns_clicklinktest"
    assert click.entry("files/course.yaml") == ManifestEntry("files/course.yaml", None)
    assert [e.path for e in click.files()] == ["files/course.yaml", "files/data/course.json"]
    assert "QuestionEntity" in click.kinds() and "_SkillEntity" in click.kinds()
    assert all(not k.startswith("files") for k in click.kinds())


def test_to_json_layout_with_optional_fields() -> None:
    manifest = Manifest("course:/a::ns_a", "1.3", [
        ManifestEntry("models/Student.json", False, rows=3, sha256="a" * 64),
        ManifestEntry("files/course.yaml", None),
    ])
    text = manifest.to_json().decode()
    assert text == (
        '{\n  "entities": [\n'
        '    {\n      "is_draft": null, \n      "path": "files/course.yaml"\n    }, \n'
        '    {\n      "is_draft": false, \n      "path": "models/Student.json", \n'
        '      "rows": 3, \n      "sha256": "' + "a" * 64 + '"\n    }\n'
        '  ], \n  "raw": "course:/a::ns_a", \n  "version": "1.3"\n}')
    assert Manifest.from_json(text.encode()) == manifest


def test_to_json_escapes_like_course_builder() -> None:
    data = Manifest("course:/<a>::é", "1.3").to_json()
    assert b'"course:/\\u003Ca\\u003E::\\u00e9"' in data
    assert Manifest.from_json(data).raw == "course:/<a>::é"


def test_helpers() -> None:
    manifest = Manifest(entries=[ManifestEntry("models/B.json"), ManifestEntry("files/x")])
    manifest.add(ManifestEntry("models/A.json"))
    manifest.add(ManifestEntry("models/B.json", rows=2))
    manifest.add(ManifestEntry("models/sub/C.json"))
    manifest.add(ManifestEntry("models/readme.txt"))
    assert [e.path for e in manifest.entries] == [
        "files/x", "models/A.json", "models/B.json", "models/readme.txt", "models/sub/C.json"]
    assert manifest.entry("models/B.json").rows == 2
    assert manifest.entry("models/Z.json") is None
    assert manifest.kinds() == ["A", "B"]
    assert [e.path for e in manifest.files()] == ["files/x"]


def test_missing_optional_fields() -> None:
    manifest = Manifest.from_json(b'{"entities": [{"path": "models/A.json"}]}')
    assert manifest == Manifest("", "", [ManifestEntry("models/A.json", None)])


def test_entries_are_sorted_on_parse() -> None:
    data = json.dumps({"entities": [{"path": "models/B.json", "is_draft": False},
                                    {"path": "files/a", "is_draft": True}]}).encode()
    assert [e.path for e in Manifest.from_json(data).entries] == ["files/a", "models/B.json"]


def entities(*items: object) -> bytes:
    return json.dumps({"entities": list(items), "raw": "", "version": "1.3"}).encode()


@pytest.mark.parametrize("data, problem", [
    (b"", "not valid JSON"),
    (b"\xff", "not valid UTF-8"),
    (b"[]", "top level is not a JSON object"),
    (b"{}", "'entities' is missing"),
    (b'{"entities": {}}', "'entities' is missing or not a list"),
    (b'{"entities": [], "raw": 1}', "'raw' is not a string"),
    (b'{"entities": [], "version": 1.3}', "'version' is not a string"),
    (entities(1), "entity 0 is not a JSON object"),
    (entities({"is_draft": False}), "entity 0 has no string 'path'"),
    (entities({"path": 7}), "entity 0 has no string 'path'"),
    (entities({"path": "course.yaml"}), "neither under files/ nor under models/"),
    (entities({"path": "models/../x.json"}), "escapes the archive (path contains '..')"),
    (entities({"path": "/models/x.json"}), "escapes the archive (absolute path)"),
    (entities({"path": "models/A.json", "is_draft": "no"}), "'is_draft' is not true"),
    (entities({"path": "models/A.json", "rows": -1}), "'rows' is not a non-negative"),
    (entities({"path": "models/A.json", "rows": True}), "'rows' is not a non-negative"),
    (entities({"path": "models/A.json", "rows": 1.0}), "'rows' is not a non-negative"),
    (entities({"path": "models/A.json", "sha256": "A" * 64}), "'sha256' is not 64"),
    (entities({"path": "models/A.json", "sha256": "a" * 63}), "'sha256' is not 64"),
    (entities({"path": "models/A.json"}, {"path": "models/A.json"}), "duplicate entry"),
])
def test_invalid_manifests(data: bytes, problem: str) -> None:
    with pytest.raises(ArchiveError) as info:
        Manifest.from_json(data)
    assert str(info.value).startswith("manifest.json: ")
    assert problem in str(info.value)


# -- member names ---------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "manifest.json", "models/Student.json", "files/assets/img/a b.png",
    "files/data/course.json", "models/_SkillEntity.json", "files/é.txt", "files/a:b", "ab:c", ".hidden/x"])
def test_good_names(name: str) -> None:
    assert check_member_name(name) == name


@pytest.mark.parametrize("name, problem", [
    ("", "empty name"),
    ("../evil", "escapes the archive (path contains '..')"),
    ("a/../../b", "escapes the archive (path contains '..')"),
    ("a/..", "escapes the archive (path contains '..')"),
    ("/abs", "escapes the archive (absolute path)"),
    ("C:/x", "escapes the archive (drive letter)"),
    ("c:x", "escapes the archive (drive letter)"),
    ("a\\b", "contains a backslash"),
    ("\\abs", "contains a backslash"),
    ("a\0b", "contains a NUL character"),
    ("a\nb", "contains a control character"),
    ("a//b", "not a plain relative path"),
    ("a/./b", "not a plain relative path"),
    ("dir/", "not a plain relative path"),
    (".", "not a plain relative path"),
    ("x" * 1025, "longer than 1024"),
    ("bad\udcff", "not valid UTF-8"),
])
def test_bad_names(name: str, problem: str) -> None:
    with pytest.raises(ArchiveError) as info:
        check_member_name(name)
    assert problem in str(info.value)
    assert "\n" not in str(info.value)
    if name and len(name) < 100:
        assert repr(name) in str(info.value)


def test_name_message_wording() -> None:
    with pytest.raises(ArchiveError) as info:
        check_member_name("../evil", label="zip member")
    assert str(info.value) == "zip member '../evil' escapes the archive (path contains '..')"
