"""ArchiveWriter: partial + commit, abort, resume after a crash (spec §6.3)."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import courseport
from courseport.archive import (
    ArchiveError,
    ArchiveWriter,
    Manifest,
    ManifestEntry,
    RowsWriter,
    open_reader,
)
from courseport.archive.streams import BackgroundWriter

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "coursebuilder"
SRC = Path(courseport.__file__).resolve().parents[1]
MANIFEST = Manifest("course:/a::ns_a", "1.3")
KINDS = ["zip", "directory"]


def contents(path: Path, kind: str) -> dict[str, bytes]:
    """Every member of a finished archive, checked by the stdlib where it can."""
    if kind == "zip":
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            assert len(names) == len(set(names)), names
            assert zf.testzip() is None
            return {n: zf.read(n) for n in names}
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir())


# -- commit and abort ---------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_commit_puts_archive_in_place(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "out.archive"
    writer = ArchiveWriter(path, kind)
    with writer.open_member("models/A.json") as stream:
        rows = RowsWriter(stream, "models/A.json")
        for i in range(20000):
            rows.write_row('{"key.id": %d, "pad": "%s"}' % (i, "x" * 100))
        rows.close()
    writer.write_member("files/course.yaml", b"title: A\n")
    assert not path.exists()
    assert writer.completed() == ["models/A.json", "files/course.yaml"]
    manifest = Manifest("course:/a::ns_a", "1.3", [
        ManifestEntry("models/A.json", False, rows=20000), ManifestEntry("files/course.yaml", None)])
    writer.commit(manifest)
    assert leftovers(tmp_path) == ["out.archive"]
    members = contents(path, kind)
    assert sorted(members) == ["files/course.yaml", "manifest.json", "models/A.json"]
    assert members["manifest.json"] == manifest.to_json()
    assert members["files/course.yaml"] == b"title: A\n"
    assert members["models/A.json"].startswith(b'{"rows": [\n    {"key.id": 0, ')
    with open_reader(path) as reader:
        assert reader.manifest() == manifest


def test_zip_layout(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    with ArchiveWriter(path, compresslevel=6) as writer:
        writer.write_member("files/a", b"a" * 10000)
        writer.commit(MANIFEST)
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == ["files/a", "manifest.json"]  # manifest last
        for info in infos:
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert stat.S_ISREG(info.external_attr >> 16)
        assert infos[0].compress_size < 100


@pytest.mark.parametrize("kind", KINDS)
def test_abort_leaves_no_archive(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "out"
    writer = ArchiveWriter(path, kind)
    writer.write_member("files/a", b"a")
    writer.abort()
    writer.abort()
    assert not path.exists()
    assert (tmp_path / "out.partial").exists()
    with pytest.raises(ArchiveError, match="already aborted"):
        writer.write_member("files/b", b"b")


@pytest.mark.parametrize("kind", KINDS)
def test_context_manager_aborts(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with ArchiveWriter(path, kind) as writer:
            writer.write_member("files/a", b"a")
            raise RuntimeError("boom")
    assert not path.exists()
    with ArchiveWriter(path, kind) as writer:
        writer.write_member("files/a", b"a")
    assert not path.exists()  # not committed: aborted too


@pytest.mark.parametrize("kind", KINDS)
def test_commit_replaces_existing_archive(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "out"
    for text in (b"old", b"new"):
        with ArchiveWriter(path, kind) as writer:
            writer.write_member("files/a", text)
            writer.commit(MANIFEST)
        assert contents(path, kind)["files/a"] == text
    assert leftovers(tmp_path) == ["out"]


def test_zip_commit_replaces_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "out"
    (path / "old").mkdir(parents=True)
    with ArchiveWriter(path) as writer:
        writer.commit(MANIFEST)
    assert path.is_file() and leftovers(tmp_path) == ["out"]


@pytest.mark.parametrize("kind", KINDS)
def test_fresh_start_discards_an_old_partial(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "out"
    writer = ArchiveWriter(path, kind)
    writer.write_member("files/old", b"x")
    writer.abort()
    writer = ArchiveWriter(path, kind)
    assert writer.completed() == []
    writer.commit(MANIFEST)
    assert sorted(contents(path, kind)) == ["manifest.json"]


@pytest.mark.parametrize("kind", KINDS)
def test_member_name_rules(tmp_path: Path, kind: str) -> None:
    writer = ArchiveWriter(tmp_path / "out", kind)
    writer.write_member("files/a/b", b"1")
    for name, problem in [
        ("files/a/b", "member already written"),
        ("manifest.json", "written by commit()"),
        ("../evil", "escapes the archive"),
        ("files/a", "conflicts with the members under 'files/a/'"),
        ("files/a/b/c", "conflicts with member 'files/a/b'"),
        ("files/x.courseport.tmp", "reserved"),
    ]:
        with pytest.raises(ArchiveError, match=problem):
            writer.write_member(name, b"2")
    writer.commit(MANIFEST)
    assert sorted(contents(tmp_path / "out", kind)) == ["files/a/b", "manifest.json"]


def test_one_member_at_a_time(tmp_path: Path) -> None:
    writer = ArchiveWriter(tmp_path / "out.zip")
    with writer.open_member("files/a") as stream:
        stream.write(b"a")
        with pytest.raises(ArchiveError, match="still being written"):
            writer.commit(MANIFEST)
    writer.commit(MANIFEST)
    with pytest.raises(ArchiveError, match="already committed"):
        writer.write_member("files/b", b"b")


def test_unwritable_location(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="cannot create"):
        ArchiveWriter(tmp_path / "missing" / "out.zip")


def test_many_members(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    with ArchiveWriter(path) as writer:
        for i in range(400):
            writer.write_member(f"files/assets/{i:04}.txt", str(i).encode())
        writer.commit(MANIFEST)
    members = contents(path, "zip")
    assert len(members) == 401 and members["files/assets/0399.txt"] == b"399"


# -- a failed member leaves no trace ---------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_failed_member_is_rolled_back(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "out"
    writer = ArchiveWriter(path, kind)
    writer.write_member("models/A.json", b"A" * 1000)
    with pytest.raises(ValueError, match="fetch failed"):
        with writer.open_member("models/B.json") as stream:
            for _ in range(3):
                stream.write(os.urandom(1 << 20))
            raise ValueError("fetch failed")
    assert writer.completed() == ["models/A.json"]
    writer.write_member("models/B.json", b"second try")
    writer.write_member("models/C.json", b"C")
    writer.commit(MANIFEST)
    members = contents(path, kind)
    assert sorted(members) == ["manifest.json", "models/A.json", "models/B.json", "models/C.json"]
    assert members["models/B.json"] == b"second try"
    if kind == "zip":
        assert path.stat().st_size < 10_000  # the failed 3 MiB were cut off


def test_background_writer_propagates_errors() -> None:
    class Failing(io.BytesIO):
        calls = 0

        def write(self, data: bytes) -> int:  # type: ignore[override]
            Failing.calls += 1
            if Failing.calls == 2:
                raise OSError(28, "No space left on device")
            return super().write(data)

    writer = BackgroundWriter(Failing(), chunk_bytes=1024)
    with pytest.raises(OSError, match="No space left"):
        for _ in range(100):
            writer.write(b"x" * 1024)
        writer.finish()
    writer.discard()


def test_background_writer_copies_mutable_buffers() -> None:
    target = io.BytesIO()
    writer = BackgroundWriter(target, chunk_bytes=4)
    buffer = bytearray(b"abcd")
    writer.write(buffer)
    buffer[:] = b"zzzz"
    writer.write(memoryview(b"efgh"))
    writer.finish()
    assert target.getvalue() == b"abcdefgh"


def test_nested_member_write_is_refused_and_rolled_back(tmp_path: Path) -> None:
    writer = ArchiveWriter(tmp_path / "out.zip")
    with pytest.raises(ArchiveError, match="still being written"):
        with writer.open_member("files/a") as stream:
            stream.write(os.urandom(3 << 20))
            writer.write_member("files/b", b"b")  # refused while a member is open
    writer.write_member("files/a", b"a")
    writer.commit(MANIFEST)
    assert contents(tmp_path / "out.zip", "zip")["files/a"] == b"a"


# -- resume after the process dies ----------------------------------------------------

KILLED_WRITER = r"""
import os, sys
from courseport.archive import ArchiveWriter
writer = ArchiveWriter(sys.argv[1], sys.argv[2])
writer.write_member("A", b"a" * 1000)
with writer.open_member("B") as stream:
    stream.write(b"b" * 300_000)
with writer.open_member("C", threaded=False) as stream:
    for _ in range(3):
        stream.write(os.urandom(1 << 20))
    os._exit(1)
"""


def run_and_kill(path: Path, kind: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path), kind], env=env)
    assert done.returncode == 1


@pytest.mark.parametrize("kind", KINDS)
def test_resume_after_kill_mid_member(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "out"
    run_and_kill(path, kind)
    partial = tmp_path / "out.partial"
    assert not path.exists()
    if kind == "zip":
        assert partial.stat().st_size > 2_000_000  # C's bytes are in the partial
    else:
        assert (partial / "C.courseport.tmp").stat().st_size > 2_000_000
    writer = ArchiveWriter(path, kind, resume=True)
    assert writer.completed() == ["A", "B"]
    writer.write_member("C", b"c" * 10)
    writer.commit(MANIFEST)
    members = contents(path, kind)
    assert sorted(members) == ["A", "B", "C", "manifest.json"]
    assert members["A"] == b"a" * 1000 and members["B"] == b"b" * 300_000
    assert members["C"] == b"c" * 10
    assert leftovers(tmp_path) == ["out"]


@pytest.mark.parametrize("kind", KINDS)
def test_resume_twice(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "out"
    run_and_kill(path, kind)
    writer = ArchiveWriter(path, kind, resume=True)
    writer.write_member("C", b"c")
    writer.abort()
    writer = ArchiveWriter(path, kind, resume=True)
    assert writer.completed() == ["A", "B", "C"]
    writer.commit(MANIFEST)
    assert sorted(contents(path, kind)) == ["A", "B", "C", "manifest.json"]


@pytest.mark.parametrize("kind", KINDS)
def test_resume_with_nothing_there_starts_fresh(tmp_path: Path, kind: str) -> None:
    writer = ArchiveWriter(tmp_path / "out", kind, resume=True)
    assert writer.completed() == []
    writer.commit(MANIFEST)
    assert sorted(contents(tmp_path / "out", kind)) == ["manifest.json"]


@pytest.mark.parametrize("kind", KINDS)
def test_resume_a_committed_archive(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "out"
    with ArchiveWriter(path, kind) as writer:
        writer.write_member("models/A.json", b"A")
        writer.commit(MANIFEST)
    writer = ArchiveWriter(path, kind, resume=True)
    assert not path.exists()
    assert writer.completed() == ["models/A.json"]
    writer.write_member("models/B.json", b"B")
    manifest = Manifest("course:/b::ns_b", "1.3", [ManifestEntry("models/B.json")])
    writer.commit(manifest)
    members = contents(path, kind)
    assert sorted(members) == ["manifest.json", "models/A.json", "models/B.json"]
    assert members["manifest.json"] == manifest.to_json()


def test_resume_a_course_builder_zip(tmp_path: Path) -> None:
    """CB writes manifest.json first; it is dropped from the middle of the zip."""
    if not FIXTURES.is_dir():
        pytest.skip(f"../shared fixtures absent: {FIXTURES} not found")
    path = tmp_path / "datastore.zip"
    shutil.copy(FIXTURES / "live_sample" / "datastore.zip", path)
    with zipfile.ZipFile(path) as zf:
        original = {n: zf.read(n) for n in zf.namelist()}
    assert next(iter(original)) == "manifest.json"
    writer = ArchiveWriter(path, resume=True)
    assert writer.completed() == [n for n in original if n != "manifest.json"]
    writer.write_member("models/Extra.json", b'{"rows": [\n]}\n')
    manifest = Manifest.from_json(original["manifest.json"])
    manifest.add(ManifestEntry("models/Extra.json"))
    writer.commit(manifest)
    members = contents(path, "zip")
    assert members.pop("models/Extra.json") == b'{"rows": [\n]}\n'
    assert members.pop("manifest.json") == manifest.to_json()
    assert members == {n: d for n, d in original.items() if n != "manifest.json"}


def test_resume_refuses_a_damaged_partial(tmp_path: Path) -> None:
    path = tmp_path / "out.zip"
    run_and_kill(path, "zip")
    partial = tmp_path / "out.zip.partial"
    with open(partial, "r+b") as f:
        f.truncate(500)  # shorter than the checkpoint
    with pytest.raises(ArchiveError, match="cannot resume .*shorter than its checkpoint"):
        ArchiveWriter(path, resume=True)
    (tmp_path / "out.zip.partial.resume").write_text("{not json")
    with pytest.raises(ArchiveError, match="cannot resume: .* is unreadable"):
        ArchiveWriter(path, resume=True)


@pytest.mark.slow
def test_member_larger_than_4_gib(tmp_path: Path) -> None:
    path = tmp_path / "big.zip"
    size = (1 << 32) + 1
    zeros = bytes(16 << 20)
    with ArchiveWriter(path, compresslevel=1) as writer:
        with writer.open_member("files/zeros") as stream:
            left = size
            while left:
                left -= stream.write(zeros[:min(left, len(zeros))])
        writer.write_member("files/after", b"after")
        writer.commit(MANIFEST)
    with open_reader(path) as reader:
        assert reader.size("files/zeros") == size
        assert reader.read("files/after") == b"after"
        with reader.open("files/zeros") as stream:  # CRC is checked at the end
            total = 0
            while chunk := stream.read(16 << 20):
                total += len(chunk)
        assert total == size


def test_memory_is_flat_through_a_zip_member(tmp_path: Path) -> None:
    import tracemalloc

    pad = os.urandom(120).hex()
    tracemalloc.start()
    try:
        with ArchiveWriter(tmp_path / "big.zip") as writer:
            with writer.open_member("models/A.json") as stream:
                rows = RowsWriter(stream, "models/A.json")
                for i in range(200_000):
                    rows.write_row('{"key.id": %d, "pad": "%s"}' % (i, pad))
                rows.close()
            writer.commit(MANIFEST)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    with open_reader(tmp_path / "big.zip") as reader:
        assert reader.size("models/A.json") > 50_000_000
    assert peak < 16_000_000, peak  # ~1 MiB batches, a queue of 4 chunks, zlib


def test_resume_refuses_a_zip_it_could_not_have_written(tmp_path: Path) -> None:
    """A Course Builder quirk: resumed course downloads repeat member names."""
    import warnings

    path = tmp_path / "cb.zip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("files/course.yaml", b"a")
            zf.writestr("files/course.yaml", b"b")
    before = path.read_bytes()
    with pytest.raises(ArchiveError, match="cannot resume .*'files/course.yaml' appears more than once"):
        ArchiveWriter(path, resume=True)
    assert path.read_bytes() == before and leftovers(tmp_path) == ["cb.zip"]
