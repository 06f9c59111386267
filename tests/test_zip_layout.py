"""A zip's local headers must agree with its central directory (spec §1.2).

Defect 9: a local header whose compression method, CRC-32 or sizes
disagreed with its central directory entry was accepted by upload and by
``verify`` (only the names were compared). Now every field is compared;
where flag bit 3 says so (Course Builder's streaming writers, Python's
zipfile writing to a pipe, Info-ZIP's ``zip -``) the data descriptor after
the data holds the values, and ZIP64 local headers hold them in their extra
field. Reading a member checks its CRC at the end: a mismatch is an
ArchiveError, never zipfile's BadZipFile.

The generated cases change any header field of either side of a real
archive: the archive is refused as it is opened, or reading it gives
exactly the original members, or reading a member is refused; never
another exception, never other bytes.
"""

from __future__ import annotations

import io
import shutil
import struct
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ziptools
from conftest import (
    FIXTURES,
    assert_one_line_error,
    cli_at,
    db_path,
    etl,
    kind_rows,
    archive_members,
    make_store_template,
    snapshot_store,
)
from courseport.archive import ArchiveError, iter_rows, open_reader
from courseport.courses.site import Site
from courseport.datastore import SqliteBackend
from courseport.etl.errors import EtlError
from courseport.etl import verify


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> dict:
    """A courseport datastore archive of the sample course (bytes) and a store to upload into."""
    root = tmp_path_factory.mktemp("zip_layout")
    home = make_store_template(root / "home", students=5)
    archive = root / "datastore.zip"
    proc = cli_at(home, "download", "datastore", "/sample", "local", "--archive_path", archive,
                  "--datastore_types", "Student,EventEntity,StudentPropertyEntity")
    assert proc.returncode == 0, proc.stderr
    with SqliteBackend(db_path(home), create=False) as store:
        Site(store).add_course("/target")
    return _Source(bytes=archive.read_bytes(), home=home, root=root)


class _Source(dict):
    def __repr__(self) -> str:  # not the archive's bytes in every report
        return f"<datastore archive of {len(self['bytes'])} bytes, store {self['home']}>"


def _contents(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def _write(tmp_path: Path, data: bytes, name: str = "a.zip") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _member(entries: list[ziptools.Entry], name: str) -> ziptools.Entry:
    return next(e for e in entries if e.name == name.encode())


def _refused_everywhere(source: dict, path: Path, *phrases: str, cli: bool = False) -> None:
    """Refused by open_reader, reported by verify, refused by upload (store unchanged); ``cli``: on
    the command line too."""
    with pytest.raises(ArchiveError) as err:
        open_reader(path).close()
    for phrase in phrases:
        assert phrase in str(err.value), str(err.value)
    report = verify(path)
    assert not report.ok and any(phrases[0] in p for p in report.archive.problems), report.lines()
    home = source["home"]
    before = snapshot_store(db_path(home))
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("COURSEPORT_HOME", str(home))
        with pytest.raises(EtlError) as err:
            etl("upload", "datastore", "/target", "local", "--archive_path", path, "--force_overwrite")
        assert phrases[0] in str(err.value) and "\n" not in str(err.value), str(err.value)
    if cli:
        proc = cli_at(home, "upload", "datastore", "/target", "local", "--archive_path", path, "--force_overwrite")
        line = assert_one_line_error(proc)
        assert phrases[0] in line, line
        proc = cli_at(home, "verify", "--archive_path", path)
        assert proc.returncode == 1 and proc.stderr == "" and phrases[0] in proc.stdout, proc.stdout + proc.stderr
    assert snapshot_store(db_path(home)) == before


# --- defect 9: each field of the local header --------------------------------------------------


@pytest.mark.parametrize("field,value", [
    ("method", 0),  # says stored, the directory says deflated
    ("crc", 0x12345678),
    ("csize", 17),
    ("usize", 99),
])
def test_local_header_disagreeing_with_the_directory_is_refused(source: dict, tmp_path: Path, field: str,
                                                                 value: int) -> None:
    entries = ziptools.parse(source["bytes"])  # as courseport writes: deflated, ZIP64 local headers
    target = _member(entries, "models/Student.json")
    assert target.method == zipfile.ZIP_DEFLATED and target.local_extra[:2] == b"\x01\x00"
    target.local[field] = value
    path = _write(tmp_path, ziptools.build(entries))
    with zipfile.ZipFile(path) as zf:  # what was accepted before: the stdlib reads the member
        if field != "method":
            assert zf.read("models/Student.json")
    what = {"method": "compression method", "crc": "CRC-32", "csize": "compressed size", "usize": "size"}[field]
    _refused_everywhere(source, path, "zip member 'models/Student.json': its local header disagrees with "
                        "the central directory", f"({what} {value}, not ", cli=field == "crc")


def test_a_stored_member_whose_local_header_says_deflated(source: dict, tmp_path: Path) -> None:
    """Course Builder's own layout: stored, plain 32-bit local headers."""
    entries = ziptools.parse(_rezip(source["bytes"], zipfile.ZIP_STORED))
    entry = _member(entries, "models/EventEntity.json")
    assert entry.method == zipfile.ZIP_STORED and not entry.local_extra
    entry.local["method"] = 8
    _refused_everywhere(source, _write(tmp_path, ziptools.build(entries)), "its local header disagrees",
                        "(compression method 8, not 0)")
    entry.local.update(method=0, csize=entry.csize - 1)
    _refused_everywhere(source, _write(tmp_path, ziptools.build(entries), "b.zip"), "its local header disagrees",
                        f"(compressed size {entry.csize - 1}, not {entry.csize})")


def _rezip(data: bytes, compression: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, body in _contents(data).items():
            zf.writestr(name, body)
    return out.getvalue()


# --- data descriptors and ZIP64 ------------------------------------------------------------------


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                         zipfile.ZIP_LZMA])
@pytest.mark.parametrize("zip64", [False, True])
def test_streamed_zips_with_data_descriptors_load(source: dict, tmp_path: Path, compression: int,
                                                 zip64: bool) -> None:
    members = _contents(source["bytes"])
    data = ziptools.streamed_zip(members, compression, force_zip64=zip64)
    assert all(e.flags & 0x08 for e in ziptools.parse(data))  # every local header holds zeros
    path = _write(tmp_path, data)
    with open_reader(path) as reader:
        assert {name: reader.read(name) for name in reader.names()} == members
    assert verify(path).ok


def test_streamed_zip_uploads_the_same_rows(source: dict, tmp_path: Path) -> None:
    path = _write(tmp_path, ziptools.streamed_zip(_contents(source["bytes"])))
    home = source["home"]
    proc = cli_at(home, "upload", "datastore", "/target", "local", "--archive_path", path, "--force_overwrite")
    assert proc.returncode == 0, proc.stderr
    back = tmp_path / "back.zip"
    proc = cli_at(home, "download", "datastore", "/target", "local", "--archive_path", back,
                  "--datastore_types", "Student,EventEntity,StudentPropertyEntity")
    assert proc.returncode == 0, proc.stderr
    strip = lambda rows: {k: [{f: v for f, v in r.items() if f != "key"} for r in rs] for k, rs in rows.items()}  # noqa: E731
    assert strip(kind_rows(archive_members(back))) == strip(kind_rows(_contents(source["bytes"])))


def test_info_zip_streamed_archive(source: dict, tmp_path: Path) -> None:
    """``zip -`` (Info-ZIP writing to a pipe): data descriptors with signatures."""
    if shutil.which("zip") is None:
        pytest.skip("no zip command")
    import subprocess

    folder = tmp_path / "tree"
    for name, body in _contents(source["bytes"]).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(body)
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    data = subprocess.run(["zip", "-q", "-", *names], cwd=folder, capture_output=True, check=True).stdout
    assert any(e.flags & 0x08 for e in ziptools.parse(data))
    path = _write(tmp_path, data)
    assert verify(path).ok
    with open_reader(path) as reader:
        assert {n: reader.read(n) for n in reader.names()} == _contents(source["bytes"])


@pytest.mark.parametrize("field", ["crc", "csize", "usize"])
def test_data_descriptor_disagreeing_with_the_directory_is_refused(source: dict, tmp_path: Path,
                                                                   field: str) -> None:
    entries = ziptools.parse(ziptools.streamed_zip(_contents(source["bytes"])))
    entry = _member(entries, "models/EventEntity.json")
    values = dict(crc=entry.crc, csize=entry.csize, usize=entry.usize)
    values[field] += 1
    entry.descriptor = struct.pack("<IIII", ziptools.DESCRIPTOR_SIGNATURE, values["crc"], values["csize"],
                                   values["usize"])
    _refused_everywhere(source, _write(tmp_path, ziptools.build(entries)),
                        "its local header disagrees with the central directory: the data descriptor",
                        cli=field == "usize")


def test_descriptor_flag_with_values_in_the_local_header(source: dict, tmp_path: Path) -> None:
    """Some writers fill the local header in as well: equal values are fine, others are not."""
    entries = ziptools.parse(ziptools.streamed_zip(_contents(source["bytes"])))
    entry = _member(entries, "models/Student.json")
    entry.local.update(crc=entry.crc, csize=entry.csize, usize=entry.usize)
    path = _write(tmp_path, ziptools.build(entries))
    assert verify(path).ok
    entry.local["crc"] = entry.crc ^ 1
    _refused_everywhere(source, _write(tmp_path, ziptools.build(entries), "b.zip"), "its local header disagrees",
                        "(CRC-32 ")


@pytest.mark.parametrize("delta", [0, 1])
def test_zip64_local_header_sizes(source: dict, tmp_path: Path, delta: int) -> None:
    entries = ziptools.parse(_rezip(source["bytes"], zipfile.ZIP_STORED))
    entry = _member(entries, "models/Student.json")
    entry.local.update(csize=0xFFFFFFFF, usize=0xFFFFFFFF)
    entry.local_extra = ziptools.zip64_extra(entry.usize + delta, entry.csize)
    path = _write(tmp_path, ziptools.build(entries))
    if delta == 0:
        assert verify(path).ok
    else:
        _refused_everywhere(source, path, "its local header disagrees", f"(size {entry.usize + 1}, not ")


def test_zip64_marker_without_its_extra_field(source: dict, tmp_path: Path) -> None:
    entries = ziptools.parse(source["bytes"])
    entry = _member(entries, "models/Student.json")
    entry.local["usize"] = 0xFFFFFFFF
    entry.local_extra = b""
    _refused_everywhere(source, _write(tmp_path, ziptools.build(entries)), "its local header has no ZIP64 sizes")


def test_member_data_running_into_the_central_directory(source: dict, tmp_path: Path) -> None:
    entries = ziptools.parse(source["bytes"])
    last = entries[-1]
    last.data = last.data[:-5]  # the directory still says the full size, so the data ends inside it
    _refused_everywhere(source, _write(tmp_path, ziptools.build(entries)), "its data runs into the central directory")


# --- the CRC is checked as a member is read ----------------------------------------------------


def test_a_crc_mismatch_is_found_when_the_member_is_read(source: dict, tmp_path: Path, monkeypatch) -> None:
    """Both headers agree, the data does not match them: open succeeds, reading fails with ArchiveError."""
    entries = ziptools.parse(_rezip(source["bytes"], zipfile.ZIP_STORED))
    entry = _member(entries, "models/Student.json")
    assert entry.method == zipfile.ZIP_STORED
    at = entry.data.index(b'"email": "') + len('"email": "')
    entry.data = entry.data[:at] + bytes([entry.data[at] ^ 0x01]) + entry.data[at + 1:]  # still valid JSON
    path = _write(tmp_path, ziptools.build(entries))
    with open_reader(path) as reader:
        with pytest.raises(ArchiveError, match=r"^models/Student.json: corrupt zip member \(Bad CRC-32"):
            reader.read("models/Student.json")
        with reader.open("models/Student.json") as stream:
            with pytest.raises(ArchiveError, match="Bad CRC-32"):
                list(iter_rows(stream, "models/Student.json"))
    report = verify(path)
    assert not report.ok and any("Bad CRC-32" in p for p in report.archive.problems)
    home = source["home"]
    before = snapshot_store(db_path(home))
    monkeypatch.setenv("COURSEPORT_HOME", str(home))
    with pytest.raises(EtlError, match="Bad CRC-32"):
        etl("upload", "datastore", "/target", "local", "--archive_path", path, "--force_overwrite")
    line = assert_one_line_error(cli_at(home, "upload", "datastore", "/target", "local", "--archive_path", path,
                                        "--force_overwrite"))
    assert "Bad CRC-32" in line
    assert snapshot_store(db_path(home)) == before


def test_a_corrupt_deflate_stream_in_a_streamed_zip(source: dict, tmp_path: Path) -> None:
    entries = ziptools.parse(ziptools.streamed_zip(_contents(source["bytes"])))
    entry = _member(entries, "models/EventEntity.json")
    entry.data = entry.data[:40] + bytes(b ^ 0xFF for b in entry.data[40:80]) + entry.data[80:]
    path = _write(tmp_path, ziptools.build(entries))
    with open_reader(path) as reader:
        with pytest.raises(ArchiveError, match="^models/EventEntity.json: corrupt zip member"):
            reader.read("models/EventEntity.json")
    assert not verify(path).ok


def test_fixture_zips_pass_the_layout_check() -> None:
    zips = sorted(FIXTURES.glob("*/*.zip")) if FIXTURES.is_dir() else []
    if not zips:
        pytest.skip("../shared/fixtures/coursebuilder absent")
    for path in zips:
        with open_reader(path) as reader:
            for name in reader.names():
                reader.read(name)
        assert verify(path).ok, path


# --- generated: any header field of either side ------------------------------------------------


LOCAL_FIELDS = ["version", "flags", "method", "time", "date", "crc", "csize", "usize", "name_len", "extra_len"]
CENTRAL_FIELDS = ["made_by", "version", "flags", "method", "time", "date", "crc", "csize", "usize",
                  "name_len", "extra_len", "comment_len", "disk", "internal", "external", "offset"]
FIELD_VALUES = st.one_of(
    st.sampled_from([0, 1, 8, 12, 14, 0x08, 0x800, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF]),
    st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF))


@st.composite
def header_changes(draw) -> tuple[str, list]:
    layout = draw(st.sampled_from(["courseport", "stored", "deflated", "streamed", "streamed64"]))
    changes = []
    for _ in range(draw(st.integers(1, 3))):
        side = draw(st.sampled_from(["local", "central", "local_extra", "central_extra", "descriptor", "name"]))
        index = draw(st.integers(0, 20))
        if side == "local":
            changes.append((side, index, draw(st.sampled_from(LOCAL_FIELDS)), draw(FIELD_VALUES)))
        elif side == "central":
            changes.append((side, index, draw(st.sampled_from(CENTRAL_FIELDS)), draw(FIELD_VALUES)))
        elif side in ("local_extra", "central_extra"):
            extra = draw(st.one_of(
                st.binary(max_size=24),
                st.builds(ziptools.zip64_extra, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
                st.builds(lambda n: struct.pack("<HH", 1, n), st.integers(0, 0xFFFF))))
            changes.append((side, index, None, extra))
        elif side == "descriptor":
            changes.append((side, index, None, draw(st.binary(max_size=24))))
        else:
            changes.append((side, index, None, draw(st.sampled_from(
                [b"manifest.json", b"models/Student.json", b"../x", b"a\x00b", b"", b"models/\xff.json",
                 b"models/Student.json/"]))))
    return layout, changes


_LAYOUTS: dict[str, bytes] = {}


def _layout(source: dict, layout: str) -> bytes:
    if layout not in _LAYOUTS:
        members = _contents(source["bytes"])
        _LAYOUTS[layout] = {
            "courseport": lambda: source["bytes"],
            "stored": lambda: _rezip(source["bytes"], zipfile.ZIP_STORED),
            "deflated": lambda: _rezip(source["bytes"], zipfile.ZIP_DEFLATED),
            "streamed": lambda: ziptools.streamed_zip(members),
            "streamed64": lambda: ziptools.streamed_zip(members, force_zip64=True),
        }[layout]()
    return _LAYOUTS[layout]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(case=header_changes())
def test_changed_headers_are_refused_or_read_exactly(source: dict, tmp_path: Path, case) -> None:
    layout, changes = case
    original = _layout(source, layout)
    entries = ziptools.parse(original)
    for side, index, name, value in changes:
        entry = entries[index % len(entries)]
        if side in ("local", "central"):
            getattr(entry, side)[name] = value
        elif side == "name":
            entry.name = value
        else:
            setattr(entry, side, value)
    path = _write(tmp_path, ziptools.build(entries))
    expected = _contents(original)
    renamed = any(side == "name" for side, *_ in changes)
    try:
        reader = open_reader(path)
    except ArchiveError:
        return
    with reader:
        for name in reader.names():
            try:
                data = reader.read(name)
            except ArchiveError:
                continue
            # whatever was read whole and without complaint is an original member, byte for byte
            # (under its own name unless a name was changed on both sides: a rename)
            if renamed:
                assert data in expected.values(), name
            else:
                assert name in expected and data == expected[name], name
    report = verify(path)  # never raises
    assert isinstance(report.ok, bool)


def test_upload_of_changed_headers_on_the_command_line(source: dict, tmp_path: Path) -> None:
    """A few changed archives through the real command line: exit 0 or a one-line error, store untouched."""
    home = source["home"]
    cases = [("local", "crc", 1), ("local", "method", 12), ("central", "csize", 3), ("local", "extra_len", 0xFFFF),
             ("central", "offset", 7)]
    for number, (side, name, value) in enumerate(cases):
        entries = ziptools.parse(source["bytes"])
        getattr(_member(entries, "models/EventEntity.json"), side)[name] = value
        path = _write(tmp_path, ziptools.build(entries), f"{number}.zip")
        before = snapshot_store(db_path(home))
        proc = cli_at(home, "upload", "datastore", "/target", "local", "--archive_path", path, "--force_overwrite")
        assert proc.returncode == 1, (side, name, proc.returncode, proc.stderr)
        assert_one_line_error(proc)
        assert snapshot_store(db_path(home)) == before
