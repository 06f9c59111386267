"""Reading zip and directory archives, and the hostile-input guards (spec §1.2)."""

from __future__ import annotations

import json
import os
import stat
import warnings
import zipfile
from pathlib import Path

import pytest

from courseport.archive import ArchiveError, Manifest, iter_rows, open_reader

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "coursebuilder"
MANIFEST = Manifest("course:/a::ns_a", "1.3").to_json()


def fixtures_or_skip() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"../shared fixtures absent: {FIXTURES} not found")
    return FIXTURES


def make_zip(path: Path, members: dict[str, bytes], **kw: object) -> Path:
    with zipfile.ZipFile(path, "w", **kw) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def refused(path: Path, *problem: str, **limits: object) -> str:
    with pytest.raises(ArchiveError) as info:
        open_reader(path, **limits)
    message = str(info.value)
    for part in problem:
        assert part in message
    assert "\n" not in message
    return message


# -- real archives ---------------------------------------------------------------

def test_fixture_directory_archives() -> None:
    root = fixtures_or_skip()
    archives = sorted(root.glob("*/course")) + sorted(root.glob("*/datastore"))
    assert len(archives) == 5
    for archive in archives:
        with open_reader(archive) as reader:
            assert reader.archive_type == "directory"
            on_disk = sorted(str(p.relative_to(archive)) for p in archive.rglob("*") if p.is_file())
            assert reader.names() == on_disk
            assert reader.manifest().version == "1.3"
            for name in reader.names():
                assert reader.size(name) == (archive / name).stat().st_size
                assert reader.read(name) == (archive / name).read_bytes()
                if name.startswith("models/"):
                    with reader.open(name) as stream:
                        rows = list(iter_rows(stream, name))
                    assert rows == json.loads((archive / name).read_bytes())["rows"]


def test_fixture_zip_archives() -> None:
    root = fixtures_or_skip()
    zips = sorted(root.glob("live_sample/*.zip"))
    assert len(zips) == 3
    for archive in zips:
        with zipfile.ZipFile(archive) as zf, open_reader(archive) as reader:
            assert reader.archive_type == "zip"
            assert reader.names() == sorted(zf.namelist())
            assert reader.has("manifest.json") and not reader.has("nope")
            for name in reader.names():
                assert reader.read(name) == zf.read(name)
                assert reader.size(name) == zf.getinfo(name).file_size
            with reader.open("models/QuestionEntity.json") as stream:
                assert len(list(iter_rows(stream, "models/QuestionEntity.json"))) == 69
            assert reader.manifest().raw == "course:/sample::ns_sample"


def test_explicit_archive_type(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "a.zip", {"manifest.json": MANIFEST})
    assert open_reader(zpath, "zip").names() == ["manifest.json"]
    with pytest.raises(ArchiveError, match="not a directory"):
        open_reader(zpath, "directory")
    with pytest.raises(ArchiveError, match="is not a zip archive .it is a directory"):
        open_reader(tmp_path, "zip")
    with pytest.raises(ArchiveError, match="unknown archive type 'tar'"):
        open_reader(zpath, "tar")


def test_reader_api_errors(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "a.zip", {"files/big": b"x" * 1000, "dir/": b""})
    with open_reader(zpath) as reader:
        assert reader.names() == ["files/big"]  # directory entries are not members
        with pytest.raises(ArchiveError, match="^nope: no such member"):
            reader.open("nope")
        with pytest.raises(ArchiveError, match="^files/big: 1000 bytes is too large"):
            reader.read("files/big", limit=999)
        with pytest.raises(ArchiveError, match="no manifest.json: not a Course Builder archive"):
            reader.manifest()
        with reader.open("files/big") as stream:
            assert stream.read(10) == b"x" * 10
            assert stream.readline() == b"x" * 990
            assert stream.read() == b""


def test_bad_manifest_is_reported(tmp_path: Path) -> None:
    zpath = make_zip(tmp_path / "a.zip", {"manifest.json": b'{"entities": 3}'})
    with open_reader(zpath) as reader, pytest.raises(ArchiveError, match="^manifest.json: "):
        reader.manifest()


# -- not an archive -------------------------------------------------------------------

def test_missing_path(tmp_path: Path) -> None:
    assert refused(tmp_path / "none.zip") == f"archive {tmp_path / 'none.zip'} does not exist"


@pytest.mark.parametrize("content", [b"", b"hello, this is not a zip\n", b"PK\x03\x04" + b"\0" * 40])
def test_not_a_zip(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(content)
    refused(path, f"{path} is not a zip archive (")


def test_truncated_zip(tmp_path: Path) -> None:
    good = make_zip(tmp_path / "good.zip", {"manifest.json": MANIFEST, "files/a": b"a" * 5000})
    data = good.read_bytes()
    for cut in (len(data) // 2, len(data) - 10):
        bad = tmp_path / f"cut{cut}.zip"
        bad.write_bytes(data[:cut])
        refused(bad, "is not a zip archive")


def test_corrupt_member_data(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", {"files/a": b"hello world" * 100})
    data = bytearray(path.read_bytes())
    at = data.index(b"hello world") + 5
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    with open_reader(path) as reader:
        with pytest.raises(ArchiveError, match=r"^files/a: corrupt zip member \(Bad CRC-32"):
            reader.read("files/a")


def test_corrupt_deflate_stream(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", {"files/a": os.urandom(20000)},
                    compression=zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    for i in range(100, 400):
        data[i] = 0xFF
    path.write_bytes(bytes(data))
    with open_reader(path) as reader, pytest.raises(ArchiveError, match="^files/a: corrupt zip"):
        reader.read("files/a")


# -- hostile zips -------------------------------------------------------------------

@pytest.mark.parametrize("name, problem", [
    ("../evil", "zip member '../evil' escapes the archive (path contains '..')"),
    ("/abs", "zip member '/abs' escapes the archive (absolute path)"),
    ("C:/x", "zip member 'C:/x' escapes the archive (drive letter)"),
    ("a/../../b", "zip member 'a/../../b' escapes the archive (path contains '..')"),
    ("a\\b", "zip member 'a\\\\b' contains a backslash"),
    ("models//x.json", "is not a plain relative path"),
    ("../dir/", "zip directory '../dir' escapes the archive"),
])
def test_hostile_zip_names(tmp_path: Path, name: str, problem: str) -> None:
    path = make_zip(tmp_path / "evil.zip", {"manifest.json": MANIFEST, name: b"x"})
    assert problem in refused(path)


def test_nul_in_zip_name(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "evil.zip", {"evilX.txt": b"x"})
    path.write_bytes(path.read_bytes().replace(b"evilX.txt", b"evil\0.txt"))
    refused(path, "zip member 'evil\\x00.txt' contains a NUL character")


def test_duplicate_zip_members(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = make_zip(tmp_path / "dup.zip", {"manifest.json": MANIFEST})
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("models/A.json", b'{"rows": []}')
            zf.writestr("models/A.json", b'{"rows": []}')
    assert refused(path) == "zip member 'models/A.json' appears more than once"


def test_symlink_zip_member(tmp_path: Path) -> None:
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("files/link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    assert refused(path) == "zip member 'files/link' is a symbolic link"


def test_special_zip_member(tmp_path: Path) -> None:
    path = tmp_path / "fifo.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("files/fifo")
        info.external_attr = (stat.S_IFIFO | 0o644) << 16
        zf.writestr(info, "")
    refused(path, "zip member 'files/fifo' is a special file")


def test_file_and_directory_conflict(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "c.zip", {"files/a": b"1", "files/a/b": b"2"})
    refused(path, "zip member 'files/a/b' conflicts with member 'files/a'")


def test_member_over_size_limit(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "big.zip", {"manifest.json": MANIFEST, "files/big": b"x" * 5000})
    assert refused(path, max_member_bytes=4096) == (
        "zip member 'files/big' declares 5000 bytes, more than the limit of 4096")
    open_reader(path, max_member_bytes=5000).close()


def test_total_over_size_limit(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "big.zip", {f"files/{i}": b"x" * 1000 for i in range(10)})
    refused(path, "takes the archive past 9000 bytes", max_total_bytes=9000)


def test_declared_size_lie_is_caught_when_reading(tmp_path: Path) -> None:
    """A member whose real data is longer than declared fails (CRC), never over-delivers."""
    path = make_zip(tmp_path / "lie.zip", {"files/a": b"A" * 3000}, compression=zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    # Patch the declared size (local header at 22, central directory at 24) to 1000.
    central = data.rindex(b"PK\x01\x02")
    data[22:26] = (1000).to_bytes(4, "little")
    data[central + 24:central + 28] = (1000).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with open_reader(path) as reader:
        assert reader.size("files/a") == 1000
        with pytest.raises(ArchiveError, match="^files/a: corrupt zip member"):
            reader.read("files/a")


def test_zip_bomb(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("models/Bomb.json", bytes(50_000_000))
    assert path.stat().st_size < 100_000
    refused(path, "zip member 'models/Bomb.json' looks like a zip bomb (compression ratio")
    open_reader(path, max_ratio=5000).close()


def test_small_highly_compressible_member_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "zeros.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("files/zeros", bytes(5_000_000))
    with open_reader(path) as reader:
        assert reader.read("files/zeros") == bytes(5_000_000)


# -- hostile directories ------------------------------------------------------------

def make_dir(root: Path) -> Path:
    (root / "models").mkdir(parents=True)
    (root / "manifest.json").write_bytes(MANIFEST)
    (root / "models" / "A.json").write_bytes(b'{"rows": [\n]}\n')
    return root


def test_directory_archive_reads(tmp_path: Path) -> None:
    root = make_dir(tmp_path / "arch")
    with open_reader(root) as reader:
        assert reader.names() == ["manifest.json", "models/A.json"]
        assert reader.manifest().raw == "course:/a::ns_a"
        assert reader.read("models/A.json") == b'{"rows": [\n]}\n'
    link = tmp_path / "via-link"
    link.symlink_to(root)  # the archive path itself may be a link
    assert open_reader(link).names() == ["manifest.json", "models/A.json"]


def test_symlinked_file_in_directory(tmp_path: Path) -> None:
    root = make_dir(tmp_path / "arch")
    (tmp_path / "secret").write_text("s")
    (root / "models" / "B.json").symlink_to(tmp_path / "secret")
    assert refused(root) == "member 'models/B.json' is a symbolic link"


def test_symlinked_directory_in_directory(tmp_path: Path) -> None:
    root = make_dir(tmp_path / "arch")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x").write_text("x")
    (root / "files").symlink_to(tmp_path / "elsewhere")
    assert refused(root) == "member 'files' is a symbolic link"


def test_dangling_symlink_in_directory(tmp_path: Path) -> None:
    root = make_dir(tmp_path / "arch")
    (root / "models" / "C.json").symlink_to(tmp_path / "missing")
    refused(root, "member 'models/C.json' is a symbolic link")


def test_special_file_in_directory(tmp_path: Path) -> None:
    root = make_dir(tmp_path / "arch")
    os.mkfifo(root / "models" / "fifo")
    refused(root, "member 'models/fifo' is a special file")


def test_bad_file_name_in_directory(tmp_path: Path) -> None:
    root = make_dir(tmp_path / "arch")
    (root / "models" / "a\\b.json").write_text("{}")
    refused(root, "member 'models/a\\\\b.json' contains a backslash")


def test_directory_member_over_size_limit(tmp_path: Path) -> None:
    root = make_dir(tmp_path / "arch")
    (root / "files").mkdir()
    (root / "files" / "big").write_bytes(b"x" * 5000)
    refused(root, "member 'files/big' is 5000 bytes, more than the limit of 4096",
            max_member_bytes=4096)


def test_directory_file_swapped_for_link_after_open(tmp_path: Path) -> None:
    root = make_dir(tmp_path / "arch")
    (tmp_path / "secret").write_text("s")
    with open_reader(root) as reader:
        (root / "models" / "A.json").unlink()
        (root / "models" / "A.json").symlink_to(tmp_path / "secret")
        with pytest.raises(ArchiveError, match="^models/A.json: cannot open"):
            reader.open("models/A.json")


def test_fifo_is_not_opened_as_a_zip(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.zip")
    refused(tmp_path / "pipe.zip", "is not a zip archive (not a regular file)")


def test_member_stream_is_a_proper_binary_file(tmp_path: Path) -> None:
    import io

    path = make_zip(tmp_path / "a.zip", {"files/a": b"line1\nline2\n"})
    with open_reader(path) as reader:
        stream = reader.open("files/a")
        assert list(stream) == [b"line1\n", b"line2\n"]
        stream.close()
        with io.BufferedReader(reader.open("files/a")) as buffered:  # readinto works
            assert buffered.read() == b"line1\nline2\n"


def central_records(data: bytes) -> tuple[int, list[bytes]]:
    """(directory offset, raw records) of a small comment-less zip."""
    import struct

    offset, size = struct.unpack_from("<LL", data, len(data) - 22 + 12)[::-1]
    records, pos = [], offset
    while pos < offset + size:
        n, m, k = struct.unpack_from("<HHH", data, pos + 28)
        records.append(data[pos:pos + 46 + n + m + k])
        pos += 46 + n + m + k
    return offset, records


def rebuild(data: bytes, offset: int, records: list[bytes]) -> bytes:
    import struct

    directory = b"".join(records)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(records), len(records),
                      len(directory), offset, 0)
    return data[:offset] + directory + end


def test_local_header_naming_another_member(tmp_path: Path) -> None:
    data = make_zip(tmp_path / "a.zip", {"files/a": b"1", "files/b": b"2"}).read_bytes()
    offset, records = central_records(data)
    # Point files/b's directory entry at files/a's local header.
    patched = records[1][:42] + (0).to_bytes(4, "little") + records[1][46:]
    path = tmp_path / "b.zip"
    path.write_bytes(rebuild(data, offset, [records[0], patched]))
    refused(path, "zip member 'files/b': its local header names another file")


def test_overlapping_members(tmp_path: Path) -> None:
    """A member whose data holds another member's local header (zip-bomb trick)."""
    inner = make_zip(tmp_path / "inner.zip", {"files/b": b"B" * 100}).read_bytes()
    inner_offset, inner_records = central_records(inner)
    outer = make_zip(tmp_path / "outer.zip", {"files/a": inner[:inner_offset]}).read_bytes()
    offset, records = central_records(outer)
    b_at = 30 + len("files/a")  # files/a's data starts right after its local header
    b_record = inner_records[0][:42] + b_at.to_bytes(4, "little") + inner_records[0][46:]
    path = tmp_path / "overlap.zip"
    path.write_bytes(rebuild(outer, offset, records + [b_record]))
    with zipfile.ZipFile(path) as zf:  # the stdlib reads it happily
        assert zf.read("files/b") == b"B" * 100
    refused(path, "zip member 'files/b' overlaps member 'files/a' (possible zip bomb)")
