"""verify_archive: whole-archive integrity against the manifest."""

from __future__ import annotations

import hashlib
import random
import zipfile
from pathlib import Path

import pytest

from courseport.archive import ArchiveWriter, Manifest, ManifestEntry, verify_archive

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "coursebuilder"
ROWS = b'{"rows": [\n    {"key.id": 1},\n    {"key.id": 2}\n]}\n'


def build(path: Path, kind: str = "zip", members: dict[str, bytes] | None = None,
          entries: list[ManifestEntry] | None = None) -> Path:
    members = {"models/A.json": ROWS, "files/course.yaml": b"x: 1\n"} if members is None else members
    if entries is None:
        entries = [ManifestEntry(n, False, rows=2 if n.startswith("models/") else None,
                                 sha256=hashlib.sha256(d).hexdigest())
                   for n, d in members.items()]
    with ArchiveWriter(path, kind) as writer:
        for name, data in members.items():
            writer.write_member(name, data)
        writer.commit(Manifest("course:/a::ns_a", "1.3", entries))
    return path


@pytest.mark.parametrize("kind", ["zip", "directory"])
def test_good_archive(tmp_path: Path, kind: str) -> None:
    report = verify_archive(build(tmp_path / "a", kind))
    assert report.ok and report.problems == [] and report.warnings == []
    assert report.rows() == {"A": 2}
    check = report.members["models/A.json"]
    assert (check.bytes, check.rows, check.sha256) == (len(ROWS), 2, hashlib.sha256(ROWS).hexdigest())
    assert report.members["files/course.yaml"].rows is None


def test_course_builder_fixtures_verify() -> None:
    if not FIXTURES.is_dir():
        pytest.skip(f"../shared fixtures absent: {FIXTURES} not found")
    archives = sorted(FIXTURES.glob("*/course")) + sorted(FIXTURES.glob("*/datastore"))
    archives += sorted(FIXTURES.glob("live_sample/*.zip"))
    for archive in archives:
        report = verify_archive(archive)
        assert report.ok, (archive, report.problems)
    click = verify_archive(FIXTURES / "click_link" / "datastore")
    assert ("models/FileDataEntity.json: listed in manifest.json but absent from the archive"
            in click.warnings)
    assert verify_archive(FIXTURES / "live_sample" / "datastore.zip").rows()["Student"] == 100


def test_bad_sha256(tmp_path: Path) -> None:
    entries = [ManifestEntry("models/A.json", False, sha256="0" * 64)]
    report = verify_archive(build(tmp_path / "a.zip", members={"models/A.json": ROWS},
                                  entries=entries))
    assert not report.ok
    assert report.problems == [f"models/A.json: sha256 {hashlib.sha256(ROWS).hexdigest()} "
                               f"does not match manifest.json's {'0' * 64}"]


def test_bad_row_count(tmp_path: Path) -> None:
    entries = [ManifestEntry("models/A.json", False, rows=3)]
    report = verify_archive(build(tmp_path / "a.zip", members={"models/A.json": ROWS},
                                  entries=entries))
    assert report.problems == ["models/A.json: has 2 rows, manifest.json says 3"]


def test_missing_member_is_a_warning(tmp_path: Path) -> None:
    entries = [ManifestEntry("models/A.json"), ManifestEntry("models/Gone.json")]
    report = verify_archive(build(tmp_path / "a.zip", members={"models/A.json": ROWS},
                                  entries=entries))
    assert report.ok
    assert report.warnings == ["models/Gone.json: listed in manifest.json but absent from the archive"]


def test_unlisted_member(tmp_path: Path) -> None:
    entries = [ManifestEntry("models/A.json")]
    report = verify_archive(build(tmp_path / "a.zip", members={
        "models/A.json": ROWS, "files/extra": b"?"}, entries=entries))
    assert report.problems == ["files/extra: in the archive but not listed in manifest.json"]


@pytest.mark.parametrize("kind", ["zip", "directory"])
def test_malformed_member(tmp_path: Path, kind: str) -> None:
    members = {"models/A.json": ROWS, "models/B.json": b'{"rows": [\n    {"a": 1},\n    7\n]}\n'}
    report = verify_archive(build(tmp_path / "a", kind, members=members,
                                  entries=[ManifestEntry(n) for n in members]))
    assert report.problems == ["models/B.json: row 2 is not a JSON object"]
    assert "models/B.json" not in report.members and "models/A.json" in report.members


def test_unparsed_models_member_is_a_warning(tmp_path: Path) -> None:
    members = {"models/notes.txt": b"hello"}
    report = verify_archive(build(tmp_path / "a.zip", members=members,
                                  entries=[ManifestEntry("models/notes.txt", rows=1)]))
    assert report.ok
    assert report.warnings == [
        "models/notes.txt: not a models/<Kind>.json member; not parsed",
        "models/notes.txt: manifest gives rows for a member that is not models/<Kind>.json"]


def test_unopenable_archives(tmp_path: Path) -> None:
    assert verify_archive(tmp_path / "none.zip").problems == [
        f"archive {tmp_path / 'none.zip'} does not exist"]
    (tmp_path / "junk.zip").write_bytes(b"junk")
    assert not verify_archive(tmp_path / "junk.zip").ok
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../evil", b"x")
    assert verify_archive(evil).problems == [
        "zip member '../evil' escapes the archive (path contains '..')"]


def test_no_manifest(tmp_path: Path) -> None:
    path = tmp_path / "plain.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("models/A.json", ROWS)
    report = verify_archive(path)
    assert report.problems == [f"{path}: no manifest.json: not a Course Builder archive"]
    assert report.members["models/A.json"].rows == 2


def test_corrupt_zip_member(tmp_path: Path) -> None:
    path = build(tmp_path / "a.zip", members={"files/a": random.randbytes(50_000)},
                 entries=[ManifestEntry("files/a")])
    data = bytearray(path.read_bytes())
    data[20_000] ^= 0xFF  # inside the (incompressible) data of files/a
    path.write_bytes(bytes(data))
    report = verify_archive(path)
    assert len(report.problems) == 1
    assert report.problems[0].startswith("files/a: corrupt zip member")
