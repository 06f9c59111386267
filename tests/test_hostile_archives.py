"""Real archives, mutated every way: nothing lost, nothing leaked, never a traceback.

The archives are real: what courseport's own download writes (a course and
a datastore of the sample course) and, where the fixtures are there, what
Course Builder's own etl wrote. Each generated case mutates one of them:

* bytes of the zip: flips, truncations, insertions, deletions, overwrites;
* the zip's structure: any header field of either side, names, extra
  fields, data descriptors, entries repeated with other contents;
* the JSON of manifest.json, models/*.json, data/course.json and the text
  of course.yaml: any value replaced by deep nesting, huge or non-finite
  numbers, the wrong type; rows repeated, object keys repeated, invalid
  UTF-8, byte-order marks, empty or cut-off members.

Every library entry point that reads an archive gets the mutant: the
reader (``open_reader``, ``manifest``, ``iter_rows``), ``Manifest.from_json``,
the row decoder, ``verify`` and ``upload``. The only exceptions that may
escape are UserError's subclasses; an upload that is refused leaves the
store exactly as it was, and one that is accepted stores as many rows as
it reports and as the members hold. A handful of mutants go through the
real command line: exit status 0 or 1, at most one line on stderr, never
a traceback.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import ziptools
from conftest import FIXTURES, cli_at, db_path, etl, make_store_template, snapshot_store
from courseport.archive import Manifest, iter_rows, open_reader
from courseport.archive.members import member_kind
from courseport.courses.site import Site
from courseport.datastore import SqliteBackend
from courseport.errors import UserError
from courseport.sites.rows import RowDecoder
from courseport.etl import verify

SLOW_EXAMPLES = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                           HealthCheck.too_slow, HealthCheck.data_too_large])


class Bases(dict):
    """name -> (archive bytes, upload mode); a short repr for hypothesis' reports."""

    def __repr__(self) -> str:
        return f"<{len(self)} base archives: {', '.join(sorted(self))}>"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """The base archives, and a store with an empty course /target to upload them into."""
    root = tmp_path_factory.mktemp("hostile")
    home = make_store_template(root / "home", students=2)
    bases = Bases()
    for mode in ("datastore", "course"):
        path = root / f"{mode}.zip"
        proc = cli_at(home, "download", mode, "/sample", "local", "--archive_path", path)
        assert proc.returncode == 0, proc.stderr
        bases[f"courseport-{mode}"] = (path.read_bytes(), mode)
    live = FIXTURES / "live_sample"
    for name, mode in (("course_no_static_files.zip", "course"), ("datastore.zip", "datastore")):
        if (live / name).is_file():
            bases[f"coursebuilder-{name}"] = ((live / name).read_bytes(), mode)
    with SqliteBackend(db_path(home), create=False) as store:
        Site(store).add_course("/target")
    return {"bases": bases, "home": home}


# --- what every mutant must get --------------------------------------------------------------------


def read_everything(path: Path) -> None:
    """Every reading entry point over the whole archive; only UserErrors may escape each call."""
    try:
        reader = open_reader(path)
    except UserError:
        event("refused as it was opened")
        return
    with reader:
        try:
            reader.manifest()
        except UserError:
            pass
        for name in reader.names():
            kind = member_kind(name)
            try:
                if kind is None:
                    data = reader.read(name)
                    if name == "manifest.json":
                        Manifest.from_json(data)
                    continue
                decoder = RowDecoder(kind, "ns_x")
                with reader.open(name) as stream:
                    for row in iter_rows(stream, name):
                        for decode in (decoder.decode_json, decoder.decode):
                            try:
                                decode(row)
                            except UserError:
                                pass
            except UserError:
                pass
    report = verify(path)
    assert isinstance(report.ok, bool) and all("\n" not in line for line in report.lines()[1:])


def upload_keeps_its_promises(world: dict, path: Path, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused: the store is unchanged. Accepted: every row of every member loaded was stored."""
    home = world["home"]
    monkeypatch.setenv("COURSEPORT_HOME", str(home))
    before = snapshot_store(db_path(home))
    try:
        result = etl("upload", mode, "/target", "local", "--archive_path", path, "--force_overwrite")
    except UserError as exc:
        assert "\n" not in str(exc), str(exc)
        assert snapshot_store(db_path(home)) == before, f"refused ({exc}) but the store changed"
        event(f"upload refused: {type(exc).__name__}")
        return
    event("upload accepted")
    with open_reader(path) as reader:
        for kind, written in result.rows.items():
            with reader.open(f"models/{kind}.json") as stream:
                held = sum(1 for _ in iter_rows(stream, kind))
            assert written == held, (kind, written, held)
    with SqliteBackend(db_path(home), create=False) as store:
        for kind, written in result.rows.items():
            assert store.count(kind, "ns_target") >= written, kind


# --- byte-level mutations ------------------------------------------------------------------------


@st.composite
def byte_mutations(draw) -> tuple[str, list]:
    base = draw(st.sampled_from(["courseport-datastore", "courseport-course", "coursebuilder-datastore.zip",
                                 "coursebuilder-course_no_static_files.zip"]))
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite", "tail"]))
        ops.append((op, draw(st.floats(0, 1)), draw(st.binary(min_size=1, max_size=16)), draw(st.integers(1, 64))))
    return base, ops


def apply_bytes(data: bytes, ops: list) -> bytes:
    for op, where, blob, length in ops:
        at = int(where * len(data))
        if op == "flip":
            data = data[:at] + bytes([data[at] ^ (blob[0] or 1)]) + data[at + 1:] if at < len(data) else data
        elif op == "truncate":
            data = data[:at]
        elif op == "insert":
            data = data[:at] + blob + data[at:]
        elif op == "delete":
            data = data[:at] + data[at + length:]
        elif op == "overwrite":
            data = data[:at] + blob + data[at + len(blob):]
        else:  # the last bytes: the end-of-directory record
            at = max(0, len(data) - length)
            data = data[:at] + bytes([data[at] ^ (blob[0] or 1)]) + data[at + 1:] if at < len(data) else data
    return data


def pick(world: dict, base: str) -> tuple[bytes, str]:
    bases = world["bases"]
    return bases[base] if base in bases else bases["courseport-" + ("course" if "course_" in base else "datastore")]


@settings(max_examples=150, **SLOW_EXAMPLES)
@given(case=byte_mutations())
def test_byte_mutations_are_read_or_refused(world: dict, tmp_path: Path, case) -> None:
    base, ops = case
    data, _ = pick(world, base)
    path = tmp_path / "m.zip"
    path.write_bytes(apply_bytes(data, ops))
    read_everything(path)


@settings(max_examples=30, **SLOW_EXAMPLES)
@given(case=byte_mutations())
def test_byte_mutations_upload_or_leave_the_store_alone(world: dict, tmp_path: Path, case) -> None:
    base, ops = case
    data, mode = pick(world, base)
    path = tmp_path / "m.zip"
    path.write_bytes(apply_bytes(data, ops))
    with pytest.MonkeyPatch.context() as monkeypatch:
        upload_keeps_its_promises(world, path, mode, monkeypatch)


# --- zip-structure mutations ---------------------------------------------------------------------


FIELD = st.one_of(st.sampled_from([0, 1, 8, 12, 14, 99, 0x08, 0x800, 0xFFFF, 0xFFFFFFFF]), st.integers(0, 0xFFFFFFFF))


@st.composite
def zip_mutations(draw) -> tuple[str, str, list]:
    base = draw(st.sampled_from(["courseport-datastore", "courseport-course", "coursebuilder-datastore.zip"]))
    layout = draw(st.sampled_from(["as is", "stored", "deflated", "streamed", "bzip2", "lzma"]))
    changes = []
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["local", "central", "name", "local_extra", "central_extra", "descriptor",
                                     "repeat", "repeat other", "data", "drop"]))
        index = draw(st.integers(0, 40))
        if what in ("local", "central"):
            fields = ziptools.LOCAL_FIELDS[1:] if what == "local" else ziptools.CENTRAL_FIELDS[1:]
            changes.append((what, index, draw(st.sampled_from(fields)), draw(FIELD)))
        elif what == "name":
            changes.append((what, index, None, draw(st.sampled_from(
                [b"manifest.json", b"models/Student.json", b"models/EventEntity.json", b"files/course.yaml",
                 b"files/data/course.json", b"../evil", b"/abs", b"models/", b"a\\b", b"models/\xff\xfe.json",
                 b"models/A.json/x", b"files/data/course.json/"]))))
        elif what in ("local_extra", "central_extra", "descriptor", "data"):
            changes.append((what, index, None, draw(st.binary(max_size=40))))
        else:
            changes.append((what, index, None, None))
    return base, layout, changes


def rezip(data: bytes, layout: str) -> bytes:
    if layout == "as is":
        return data
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    if layout == "streamed":
        return ziptools.streamed_zip(members)
    method = {"stored": zipfile.ZIP_STORED, "deflated": zipfile.ZIP_DEFLATED, "bzip2": zipfile.ZIP_BZIP2,
              "lzma": zipfile.ZIP_LZMA}[layout]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as zf:
        for name, body in members.items():
            zf.writestr(name, body)
    return out.getvalue()


def apply_zip(data: bytes, changes: list) -> bytes:
    import copy

    entries = ziptools.parse(data)
    for what, index, name, value in changes:
        if not entries:
            break
        entry = entries[index % len(entries)]
        if what in ("local", "central"):
            getattr(entry, what)[name] = value
        elif what == "name":
            entry.name = value
        elif what == "data":
            entry.data = value + entry.data[len(value):]
        elif what == "repeat":
            entries.append(copy.deepcopy(entry))
        elif what == "repeat other":
            twin = copy.deepcopy(entries[(index + 1) % len(entries)])
            twin.name = entry.name
            entries.append(twin)
        elif what == "drop":
            entries.remove(entry)
        else:
            setattr(entry, what, value)
    return ziptools.build(entries)


@settings(max_examples=150, **SLOW_EXAMPLES)
@given(case=zip_mutations())
def test_zip_structure_mutations_are_read_or_refused(world: dict, tmp_path: Path, case) -> None:
    base, layout, changes = case
    data, _ = pick(world, base)
    path = tmp_path / "z.zip"
    path.write_bytes(apply_zip(rezip(data, layout), changes))
    read_everything(path)


@settings(max_examples=30, **SLOW_EXAMPLES)
@given(case=zip_mutations())
def test_zip_structure_mutations_upload_or_leave_the_store_alone(world: dict, tmp_path: Path, case) -> None:
    base, layout, changes = case
    data, mode = pick(world, base)
    path = tmp_path / "z.zip"
    path.write_bytes(apply_zip(rezip(data, layout), changes))
    with pytest.MonkeyPatch.context() as monkeypatch:
        upload_keeps_its_promises(world, path, mode, monkeypatch)


# --- JSON mutations -----------------------------------------------------------------------------------


HOLE = "\u0001HOLE\u0001"
HOLE_TEXT = json.dumps(HOLE)
DEEP = 100_000
TOKENS = [
    "NaN", "Infinity", "-Infinity", "1e400", "-1e999", str(2**64), str(-(2**63) - 1), str(2**63 - 1), "9" * 5001,
    "-" + "9" * 4400, "[" * DEEP + "]" * DEEP, '{"a": ' * 5000 + "1" + "}" * 5000, "[" * 99 + "]" * 99,
    "[" * 101 + "]" * 101, '"x"', '""', "null", "true", "0", "-0.0", "[]", "{}", '"\\ud800"', '"\\u0000"',
    '"a\\u0000b"', "[[1, [2]], {}]", '{"type": "binary", "encoding": "base64", "content": "!!"}',
    '"2016-13-45T25:61:61.000000Z"', '"' + "z" * 3000 + '"', "1.5", "-1", "[1, 2, 3]", '{"rows": []}',
    '"None"', "12345678901234567890", "1e2", "0.1e-400",
]


def paths_of(value, prefix=(), out=None, limit=400) -> list[tuple]:
    """Every place in a JSON document (up to ``limit``): paths of keys and indexes."""
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    out.append(prefix)
    if isinstance(value, dict):
        for key, child in value.items():
            paths_of(child, prefix + (key,), out, limit)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths_of(child, prefix + (index,), out, limit)
    return out


def set_at(doc, path: tuple, value):
    if not path:
        return value
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


@st.composite
def json_mutations(draw) -> tuple:
    base = draw(st.sampled_from(["courseport-datastore", "courseport-course", "coursebuilder-datastore.zip",
                                 "coursebuilder-course_no_static_files.zip"]))
    member_pick = draw(st.integers(0, 1000))
    op = draw(st.sampled_from(["value", "value", "value", "key", "repeat row", "repeat key", "swap rows",
                               "bom", "empty", "bad utf-8", "cut", "append", "layout", "yaml"]))
    token = draw(st.sampled_from(TOKENS))
    place = draw(st.integers(0, 10_000))
    extra = draw(st.integers(0, 10_000))
    container = draw(st.sampled_from(["stored", "deflated", "directory"]))
    return base, member_pick, op, token, place, extra, container


def mutate_member(name: str, data: bytes, op: str, token: str, place: int, extra: int) -> bytes:
    if op == "bom":
        return b"\xef\xbb\xbf" + data
    if op == "empty":
        return b""
    if op == "bad utf-8":
        at = place % (len(data) + 1)
        return data[:at] + b"\xff\xc0\x80"[: 1 + extra % 3] + data[at:]
    if op == "cut":
        return data[: place % (len(data) + 1)]
    if op == "append":
        return data + token.encode()
    if op == "yaml" or not name.endswith(".json"):
        lines = data.decode("utf-8", "replace").split("\n")
        at = place % (len(lines) + 1)
        insert = random.Random(extra).choice(["a: " + token[:6000], "- " + token[:6000], "  " * 200 + "x: 1",
                                              "b: &a [*a]", "c: !!python/object:os.system x", "\t", "course: 1"])
        return "\n".join(lines[:at] + [insert] + lines[at:]).encode("utf-8", "surrogatepass")
    try:
        doc = json.loads(data)
    except ValueError:
        return data + token.encode()
    rows = doc.get("rows") if isinstance(doc, dict) else None
    if op in ("repeat row", "swap rows") and isinstance(rows, list) and rows:
        a, b = place % len(rows), extra % len(rows)
        if op == "repeat row":
            rows.insert(b, rows[a])
        else:
            rows[a], rows[b] = rows[b], rows[a]
        return serialize(doc, extra)
    if op == "repeat key":
        text = serialize(doc, extra).decode()
        at = text.find('{"', place % max(1, len(text)))
        if at < 0:
            at = text.find('{"')
        if at >= 0:
            end = text.find('": ', at)
            key = text[at + 1:end + 1]
            return (text[:at + 1] + f"{key}: {token}, " + text[at + 1:]).encode("utf-8", "surrogatepass")
        return text.encode()
    places = paths_of(doc)
    path = places[place % len(places)]
    if op == "key" and path and isinstance(path[-1], str):
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        renamed = random.Random(extra).choice(["key.id", "key.name", "key", "rows", "", "path", "entities",
                                               "version", "raw", "\u0000", "x" * 300])
        parent[renamed] = parent.pop(path[-1])
        return serialize(doc, extra)
    doc = set_at(doc, path, HOLE)
    return serialize(doc, extra).replace(HOLE_TEXT.encode(), token.encode())


def serialize(doc, style: int) -> bytes:
    rows = doc.get("rows") if isinstance(doc, dict) else None
    if isinstance(rows, list) and len(doc) == 1 and style % 3:
        if not rows:
            return b'{"rows": [\n]}\n'
        return ('{"rows": [\n' + ",\n".join("    " + json.dumps(r) for r in rows) + "\n]}\n").encode()
    return json.dumps(doc, indent=2 if style % 2 else None, sort_keys=bool(style % 5)).encode()


def build_mutant(world: dict, tmp_path: Path, case) -> tuple[Path, str]:
    base, member_pick, op, token, place, extra, container = case
    data, mode = pick(world, base)
    tmp_path.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    names = sorted(members)
    if op == "yaml" and "files/course.yaml" in members:
        name = "files/course.yaml"
    else:
        names_json = [n for n in names if n.endswith(".json")]
        name = names_json[member_pick % len(names_json)]
    members[name] = mutate_member(name, members[name], op, token, place, extra)
    if container == "directory":
        folder = tmp_path / "dir"
        shutil.rmtree(folder, ignore_errors=True)
        for member, body in members.items():
            (folder / member).parent.mkdir(parents=True, exist_ok=True)
            (folder / member).write_bytes(body)
        return folder, mode
    path = tmp_path / "j.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if container == "deflated" else zipfile.ZIP_STORED) as zf:
        for member, body in members.items():
            zf.writestr(member, body)
    return path, mode


@settings(max_examples=150, **SLOW_EXAMPLES)
@given(case=json_mutations())
def test_json_mutations_are_read_or_refused(world: dict, tmp_path: Path, case) -> None:
    path, _ = build_mutant(world, tmp_path, case)
    read_everything(path)


@settings(max_examples=80, **SLOW_EXAMPLES)
@given(case=json_mutations())
def test_json_mutations_upload_or_leave_the_store_alone(world: dict, tmp_path: Path, case) -> None:
    path, mode = build_mutant(world, tmp_path, case)
    with pytest.MonkeyPatch.context() as monkeypatch:
        upload_keeps_its_promises(world, path, mode, monkeypatch)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                     max_size=4), max_leaves=20),
       wrap=st.booleans())
def test_manifest_parser_takes_any_json(doc, wrap: bool) -> None:
    """Any JSON document at all (and its non-JSON cousins, NaN included) as manifest.json."""
    if wrap:
        doc = {"entities": [doc] if not isinstance(doc, list) else doc, "raw": "r", "version": "1.3"}
    try:
        Manifest.from_json(json.dumps(doc).encode())
    except UserError:
        pass


# --- a handful through the command line --------------------------------------------------------------


def test_command_line_on_mutants(world: dict, tmp_path: Path) -> None:
    home = world["home"]
    rng = random.Random(2024)
    data, _ = world["bases"]["courseport-datastore"]
    mutants = [
        ("json", build_mutant(world, tmp_path / "a", ("courseport-datastore", 3, "value", "[" * DEEP + "]" * DEEP,
                                                      5, 1, "stored"))),
        ("json", build_mutant(world, tmp_path / "b", ("courseport-datastore", 4, "value", "9" * 5001, 7, 2,
                                                      "deflated"))),
        ("json", build_mutant(world, tmp_path / "c", ("courseport-datastore", 0, "repeat row", "0", 1, 1,
                                                      "stored"))),
        ("json", build_mutant(world, tmp_path / "d", ("courseport-course", 0, "value", "NaN", 3, 2, "stored"))),
        ("bytes", (apply_bytes(data, [("flip", rng.random(), b"\x55", 1), ("tail", 0, b"\x01", 10)]), "datastore")),
        ("zip", (apply_zip(data, [("local", 1, "crc", 7)]), "datastore")),
    ]
    for number, (kind, (mutant, mode)) in enumerate(mutants):
        if isinstance(mutant, bytes):
            path = tmp_path / f"{number}.zip"
            path.write_bytes(mutant)
        else:
            path = mutant
        before = snapshot_store(db_path(home))
        for argv in (("upload", mode, "/target", "local", "--archive_path", path, "--force_overwrite"),
                     ("verify", "--archive_path", path)):
            proc = cli_at(home, *argv)
            assert proc.returncode in (0, 1), (kind, argv, proc.returncode, proc.stderr)
            assert proc.stderr.count("\n") <= 1 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr
            if argv[0] == "upload" and proc.returncode == 1:
                assert proc.stderr.startswith("courseport: error: "), proc.stderr
                assert snapshot_store(db_path(home)) == before


def test_json_to_csv_of_deep_members(world: dict, tmp_path: Path) -> None:
    """Found by this module's cases: JSON nested deeply inside a string (``data``) made the JsonToCsv
    job an internal error (RecursionError). Such a string now stays a string; a row nested too deeply
    to be made columns is refused in one line."""
    home = world["home"]
    deep_string = {"key.id": 1, "key.name": "None", "data": "[" * DEEP + "]" * DEEP, "n": 1}
    deep_row = {"key.id": 2, "key.name": "None", "x": json.loads('{"a": ' * 500 + "1" + "}" * 500)}
    for number, row in enumerate((deep_string, deep_row)):
        source = tmp_path / f"rows{number}.json"
        source.write_text('{"rows": [\n    ' + json.dumps(row) + "\n]}\n")
        out = tmp_path / f"out{number}.csv"
        proc = cli_at(home, "run", "courseport.jobs.csv.JsonToCsv", "/sample", "local", "--disable_remote",
                      "--job_args", f"{source} {out}")
        if number == 0:
            assert proc.returncode == 0, proc.stderr
            assert out.read_text().splitlines()[0] == "data,key.id,key.name,n"
        else:
            assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
            assert "row 1 nests more than 100 levels" in proc.stderr, proc.stderr
