"""Numbers and nesting an archive may hold (spec §1.6): App Engine's limits, one-line refusals.

Defect 10: integers outside App Engine's signed 64-bit range were accepted
in properties (2**64 uploaded and round-tripped), and NaN and Infinity
were accepted and written back as invalid JSON. Now any such value, in a
typed property, an undeclared one, a generic kind's, inside lists and
objects, is refused naming the member, the row and the property.

Defect 11: JSON nested 100,000 deep raised RecursionError, and a
5,001-digit integer ValueError, in upload and in ``verify``. Every parse of
archive content (rows on both upload paths, manifest.json, course.json,
course.yaml) now ends in a one-line error naming the member and the row;
a property value may nest 99 levels (its row is one more).

Generated cases draw JSON values around those limits, place them in rows,
and compare what the decoder, verify and upload do with what the limits
say; what is accepted downloads as it was uploaded.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import (
    archive_members,
    assert_one_line_error,
    cli_at,
    db_path,
    etl,
    kind_rows,
    make_store_template,
    manifest_for,
    snapshot_store,
    write_zip,
)
from courseport.archive import ArchiveError, Manifest, iter_rows, open_reader
from courseport.courses.coursejson import CourseDataError, load_course_json
from courseport.courses.settings import CourseSettingsError, load_course_yaml
from courseport.courses.site import Site
from courseport.datastore import SqliteBackend
from courseport.errors import UserError
from courseport.etl import _upload as upload_module
from courseport.etl.errors import EtlError
from courseport.sites.rows import RowDecoder, RowError
from courseport.etl import verify
from courseport.models import schema_for

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
DEEP = 100_000
HUGE_DIGITS = "9" * 5001
STUDENT = {"key.name": "1001", "key.id": None, "user_id": "1001", "email": "a@b.c", "name": "A",
           "enrolled_on": "2016-04-06T20:14:27.542076Z", "is_enrolled": True, "key": ""}


def event(ident: int, **extra) -> dict:
    row = {"key.name": "None", "key.id": ident, "source": "x", "user_id": "u", "data": "{}",
           "recorded_on": "2016-04-06T20:14:27.542076Z", "key": ""}
    row.update(extra)
    return row


def member_text(rows: list[str]) -> bytes:
    """A member in Course Builder's line layout from row texts (raw JSON, as written)."""
    return ('{"rows": [\n' + ",\n".join("    " + r for r in rows) + "\n]}\n").encode()


def row_text(row: dict, **raw: str) -> str:
    """``row`` as JSON, with each ``raw`` member's value spliced in as written (``NaN``, 5,001 digits ...)."""
    text = json.dumps(row)
    for name, value in raw.items():
        text = text[:-1] + f', "{name}": {value}}}'
    return text


def _json_property() -> tuple[str, str]:
    """A kind with a property of type json, and that property (or a generic kind's, if none is declared)."""
    from courseport.models import kinds
    from courseport.models.schema import KindSchema

    for schema in vars(kinds).values():
        if isinstance(schema, KindSchema):
            for prop in schema.properties:
                if prop.type == "json" and not prop.repeated:
                    return schema.kind, prop.name
    return "MyJsonKind", "v"


JSON_KIND, JSON_PROP = _json_property()


def datastore_zip(path: Path, members: dict[str, bytes]) -> Path:
    return write_zip(path, {"manifest.json": manifest_for(list(members)), **members})


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return make_store_template(tmp_path_factory.mktemp("numbers") / "home", students=3)


@pytest.fixture
def target(template: Path, home: Path) -> Path:
    import shutil

    shutil.copyfile(db_path(template), db_path(home))
    with SqliteBackend(db_path(home), create=False) as store:
        Site(store).add_course("/target")
    return home


def _set_mode(mode: str, monkeypatch: pytest.MonkeyPatch) -> str:
    from courseport.sites import LocalSite

    if mode.startswith("staged"):
        monkeypatch.setattr(LocalSite, "atomic_writes", False)
    if mode.endswith("workers"):
        monkeypatch.setattr(upload_module, "PARALLEL_MIN_BYTES", 0)
    return mode


@pytest.fixture(params=["atomic-small", "atomic-workers", "staged-small", "staged-workers"])
def path_mode(request, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both upload paths (this process; worker processes) in both write modes."""
    return _set_mode(request.param, monkeypatch)


@pytest.fixture(params=["atomic-workers", "staged-small"])
def two_paths(request, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each upload path once, each write mode once."""
    return _set_mode(request.param, monkeypatch)


def refused(home: Path, archive: Path, *phrases: str, mode: str = "datastore") -> str:
    before = snapshot_store(db_path(home))
    with pytest.raises(EtlError) as err:
        etl("upload", mode, "/target", "local", "--archive_path", archive)
    message = str(err.value)
    assert "\n" not in message
    for phrase in phrases:
        assert phrase in message, message
    assert snapshot_store(db_path(home)) == before
    return message


# --- defect 10: App Engine's 64-bit integers, finite floats ------------------------------------


OUT_OF_RANGE = [2**64, 2**63, INT64_MIN - 1]


@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_typed_int_property_out_of_range(target: Path, tmp_path: Path, path_mode: str, value: int) -> None:
    rows = [json.dumps(dict(STUDENT, **{"key.name": f"s{i}"})) for i in range(30)]
    rows[17] = json.dumps(dict(STUDENT, **{"key.name": "s17", "group_id": value}))
    archive = datastore_zip(tmp_path / "a.zip", {"models/Student.json": member_text(rows)})
    refused(target, archive, "models/Student.json: row 18", "Student.group_id", f"integer {value} is outside "
            "App Engine's 64-bit range")


@pytest.mark.parametrize("value", ['"18446744073709551616"', "1.8446744073709552e19", "1e300",
                                   '"' + "1" * 100 + '"'])
def test_typed_int_property_out_of_range_in_other_spellings(target: Path, tmp_path: Path, value: str) -> None:
    archive = datastore_zip(tmp_path / "a.zip", {"models/Student.json": member_text([
        row_text(STUDENT, group_id=value)])})
    refused(target, archive, "models/Student.json: row 1", "Student.group_id")


@pytest.mark.parametrize("where,value", [("undeclared", 2**64), ("in a list", INT64_MIN - 1),
                                         ("in an object", 2**63), ("generic kind", 2**64),
                                         ("json property", -(2**64))])
def test_out_of_range_anywhere(target: Path, tmp_path: Path, two_paths: str, where: str, value: int) -> None:
    kind, row, prop = {
        "undeclared": ("EventEntity", event(5, extra=value), "EventEntity.extra"),
        "in a list": ("EventEntity", event(5, extra=[1, 2, value]), "EventEntity.extra"),
        "in an object": ("EventEntity", event(5, extra={"a": [{"b": value}]}), "EventEntity.extra"),
        "generic kind": ("MyOwnKind", {"key.id": 5, "key.name": "None", "v": {"n": value}}, "MyOwnKind.v"),
        "json property": (JSON_KIND, {"key.name": "n1", "key.id": None, JSON_PROP: {"x": value}},
                          f"{JSON_KIND}.{JSON_PROP}"),
    }[where]
    rows = [json.dumps(dict(row, **{"key.id": i} if row.get("key.id") else {"key.name": f"n{i}"}))
            for i in range(1, 5)]
    archive = datastore_zip(tmp_path / "a.zip", {f"models/{kind}.json": member_text(rows)})
    refused(target, archive, f"models/{kind}.json: row 1", prop, "outside App Engine's 64-bit range")


def test_limits_themselves_round_trip(target: Path, tmp_path: Path, path_mode: str) -> None:
    values = {"group_id": INT64_MAX}
    rows = [dict(STUDENT, **{"key.name": "max"}, **values), dict(STUDENT, **{"key.name": "min", "group_id": INT64_MIN})]
    events = [event(1, extra=[INT64_MIN, INT64_MAX, {"f": 1.5e308, "g": -0.0}]), event(2, extra=INT64_MAX)]
    archive = datastore_zip(tmp_path / "a.zip", {
        "models/Student.json": member_text([json.dumps(r) for r in rows]),
        "models/EventEntity.json": member_text([json.dumps(r) for r in events])})
    etl("upload", "datastore", "/target", "local", "--archive_path", archive)
    back = tmp_path / "back.zip"
    etl("download", "datastore", "/target", "local", "--archive_path", back,
        "--datastore_types", "Student,EventEntity")
    got = kind_rows(archive_members(back))
    assert sorted(r["group_id"] for r in got["Student"]) == [INT64_MIN, INT64_MAX]
    assert [r["extra"] for r in got["EventEntity"]] == [e["extra"] for e in events]


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_tokens_are_refused(target: Path, tmp_path: Path, two_paths: str, token: str) -> None:
    rows = [json.dumps(event(i)) for i in range(1, 40)]
    rows[30] = row_text(event(31), extra=f"[1, {token}]")
    archive = datastore_zip(tmp_path / "a.zip", {"models/EventEntity.json": member_text(rows)})
    refused(target, archive, "models/EventEntity.json: row 31", f"{token} is not a JSON number")
    report = verify(archive)
    assert any("row 31" in p and token in p for p in report.archive.problems + report.problems)


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "1" + "0" * 400 + ".0"])
def test_floats_beyond_a_double_are_refused(target: Path, tmp_path: Path, two_paths: str, literal: str) -> None:
    archive = datastore_zip(tmp_path / "a.zip", {"models/EventEntity.json": member_text([
        json.dumps(event(1)), row_text(event(2), extra=literal)])})
    refused(target, archive, "models/EventEntity.json: row 2", "EventEntity.extra", "is not a finite number")


@pytest.mark.parametrize("value", ['"NaN"', '"inf"', '"-Infinity"', "1e400", str(10**400)])
def test_typed_float_refuses_what_is_not_finite(value: str) -> None:
    from courseport.models.schema import KindSchema, Prop, SchemaError

    schema = KindSchema("Measured", (Prop("x", "float"),))
    with pytest.raises(SchemaError, match=r"^Measured.x: "):
        schema.coerce("x", json.loads(value))
    assert schema.coerce("x", 2) == 2.0 and schema.coerce("x", "1.5") == 1.5


# --- defect 11: nesting and digits, in every parse --------------------------------------------


HOSTILE_ROWS = {
    "deep list": "[" * DEEP + "]" * DEEP,
    "deep object": '{"a": ' * DEEP + "1" + "}" * DEEP,
    "5001 digits": HUGE_DIGITS,
    "negative 5001 digits": "-" + HUGE_DIGITS,
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ROWS))
def test_hostile_row_values(target: Path, tmp_path: Path, path_mode: str, case: str) -> None:
    rows = [json.dumps(event(i)) for i in range(1, 60)]
    rows[41] = row_text(event(42), extra=HOSTILE_ROWS[case])
    archive = datastore_zip(tmp_path / "a.zip", {"models/EventEntity.json": member_text(rows)})
    message = refused(target, archive, "models/EventEntity.json: row 42")
    assert ("nested more than" in message) if "deep" in case else ("more than 4300 digits" in message), message
    report = verify(archive)
    problems = report.archive.problems + report.problems
    assert not report.ok and any("models/EventEntity.json: row 42" in p for p in problems), problems


@pytest.mark.parametrize("depth,ok", [(99, True), (100, False), (150, False), (400, False)])
def test_value_nesting_limit(target: Path, tmp_path: Path, depth: int, ok: bool) -> None:
    value = "[" * depth + "]" * depth
    archive = datastore_zip(tmp_path / "a.zip", {"models/EventEntity.json": member_text([
        row_text(event(1), extra=value)])})
    if ok:
        etl("upload", "datastore", "/target", "local", "--archive_path", archive)
        assert verify(archive).ok
    else:
        refused(target, archive, "models/EventEntity.json: row 1", "EventEntity.extra", "nested more than 99")
        assert not verify(archive).ok


def test_a_row_that_is_a_deep_list(tmp_path: Path) -> None:
    archive = datastore_zip(tmp_path / "a.zip", {"models/EventEntity.json": member_text(["[" * DEEP + "]" * DEEP])})
    with open_reader(archive) as reader, reader.open("models/EventEntity.json") as stream:
        with pytest.raises(ArchiveError, match=r"^models/EventEntity.json: row 1: JSON nested more than"):
            list(iter_rows(stream, "models/EventEntity.json"))


@pytest.mark.parametrize("manifest,problem", [
    (b'{"entities": ' + b"[" * DEEP + b"]" * DEEP + b"}", "manifest.json: JSON nested more than"),
    (b'{"entities": [], "raw": "", "version": "1.3", "x": ' + HUGE_DIGITS.encode() + b"}",
     "manifest.json: an integer with more than 4300 digits"),
    (b'{"entities": [{"path": "models/A.json", "rows": ' + HUGE_DIGITS.encode() + b"}]}",
     "manifest.json: an integer with more than 4300 digits"),
    (b'{"entities": [], "raw": NaN}', "manifest.json: NaN is not a JSON number"),
])
def test_hostile_manifests(target: Path, tmp_path: Path, manifest: bytes, problem: str) -> None:
    with pytest.raises(ArchiveError, match="^" + problem):
        Manifest.from_json(manifest)
    archive = write_zip(tmp_path / "a.zip", {"manifest.json": manifest, "models/EventEntity.json":
                                             member_text([json.dumps(event(1))])})
    refused(target, archive, problem)
    report = verify(archive)
    assert any(problem in p for p in report.archive.problems), report.lines()


@pytest.mark.parametrize("text,problem", [
    ('{"version": "1.3", "units": ' + "[" * DEEP + "]" * DEEP + "}", "JSON nested more than 100 levels deep"),
    ('{"version": "1.3", "units": [], "next_id": ' + HUGE_DIGITS + "}", "an integer with more than 4300 digits"),
    ('{"version": "1.3", "units": [], "lessons": [], "next_id": NaN}', "NaN is not a JSON number"),
    ('{"version": "1.3", "x": ' + "[" * 150 + "]" * 150 + "}", "JSON nested more than 100 levels deep"),
])
def test_hostile_course_json(target: Path, tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(CourseDataError, match=problem):
        load_course_json(text)
    archive = write_zip(tmp_path / "c.zip", {
        "manifest.json": manifest_for(["files/data/course.json", "files/course.yaml"]),
        "files/data/course.json": text.encode(), "files/course.yaml": b"course:\n  title: 'T'\n"})
    refused(target, archive, "files/data/course.json", problem, mode="course")
    report = verify(archive)
    assert any(problem in p for p in report.problems), report.lines()


@pytest.mark.parametrize("text,problem", [
    ("[" * 600 + "]" * 600, "nests more than 100 levels deep"),  # (PyYAML takes seconds to scan 100,000)
    ("a: " + "[" * 150 + "]" * 150, "nests more than 100 levels deep"),
    ("a: " + HUGE_DIGITS, "an integer with more than 4300 digits"),
    ("a: 0x" + "f" * 5000, "an integer beyond 64 bits"),
    ("a: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
                                               for p, c in zip("abcdefg", "bcdefgh")), "more than 100,000 values"),
    ("a: 2016-13-45", "cannot be read"),
])
def test_hostile_course_yaml(target: Path, tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(CourseSettingsError, match=problem):
        load_course_yaml(text)
    archive = write_zip(tmp_path / "c.zip", {"manifest.json": manifest_for(["files/course.yaml"]),
                                             "files/course.yaml": text.encode()})
    refused(target, archive, "course.yaml", problem, mode="course")


def test_command_line_upload_and_verify(target: Path, tmp_path: Path) -> None:
    """The real command line, on both upload paths: a member over 4 MB goes to the worker processes."""
    filler = "x" * 400
    rows = [json.dumps(event(i, data=filler)) for i in range(1, 12_001)]
    assert sum(map(len, rows)) > upload_module.PARALLEL_MIN_BYTES
    for case, value, phrase, sizes in [
            ("deep", HOSTILE_ROWS["deep list"], "nested more than", ("small", "large")),
            ("digits", HUGE_DIGITS, "more than 4300 digits", ("small",)),
            ("range", str(2**64), "outside App Engine's 64-bit range", ("small",)),
            ("nan", "NaN", "NaN is not a JSON number", ("small",))]:
        for size, count in [(size, 20 if size == "small" else len(rows)) for size in sizes]:
            body = list(rows[:count])
            body[count - 3] = row_text(event(count - 2, data=filler), extra=value)
            archive = datastore_zip(tmp_path / f"{case}-{size}.zip", {"models/EventEntity.json": member_text(body)})
            before = snapshot_store(db_path(target))
            line = assert_one_line_error(cli_at(target, "upload", "datastore", "/target", "local",
                                                "--archive_path", archive))
            assert f"models/EventEntity.json: row {count - 2}" in line and phrase in line, line
            assert snapshot_store(db_path(target)) == before
            if size == "small":
                proc = cli_at(target, "verify", "--archive_path", archive)
                assert proc.returncode == 1 and proc.stderr == "", proc.stderr
                assert f"row {count - 2}" in proc.stdout and phrase in proc.stdout, proc.stdout


# --- generated: values around the limits --------------------------------------------------------


BOUNDARY_INTS = st.sampled_from([0, 1, -1, INT64_MAX, INT64_MIN, INT64_MAX + 1, INT64_MIN - 1, 2**64, -(2**64),
                                 10**19, 10**30, 2**53 + 1])
FLOATS = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(
    [1.5e308, -0.0, 5e-324, 1e16]))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(INT64_MIN, INT64_MAX), BOUNDARY_INTS, FLOATS,
                    st.text(max_size=5))
#: raw literals the JSON module will not write: they are spliced into the row's text
RAW = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e999", HUGE_DIGITS[:4301], "1" * 300])


def nested(depth: int, leaf) -> object:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


VALUES = st.one_of(
    SCALARS,
    st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                  st.dictionaries(st.text(max_size=3), inner, max_size=4)),
                 max_leaves=12),
    st.builds(nested, st.integers(95, 104), SCALARS),
)


def depth_of(value) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


def storable(value) -> bool:
    """What App Engine can hold: 64-bit ints, finite floats, 99 levels."""
    def numbers_ok(v) -> bool:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return True
        if isinstance(v, int):
            return INT64_MIN <= v <= INT64_MAX
        if isinstance(v, float):
            return math.isfinite(v)
        items = v.values() if isinstance(v, dict) else v
        return all(numbers_ok(i) for i in items)
    return depth_of(value) <= 99 and numbers_ok(value)


@st.composite
def placed_values(draw) -> tuple[str, str, dict, str | None, bool]:
    """(kind, property, row, raw literal or None, storable) for one generated value."""
    place = draw(st.sampled_from(["undeclared", "json", "generic", "typed int"]))
    raw = draw(st.none() | RAW) if draw(st.integers(0, 4)) == 0 else None
    value = draw(st.integers(INT64_MIN - 5, INT64_MIN + 5) | st.integers(INT64_MAX - 5, INT64_MAX + 5)
                 | BOUNDARY_INTS) if place == "typed int" else draw(VALUES)
    if place == "undeclared":
        kind, prop, row = "EventEntity", "extra", event(1, extra=value)
    elif place == "json":
        kind, prop, row = JSON_KIND, JSON_PROP, {"key.name": "n", "key.id": None, JSON_PROP: value}
    elif place == "generic":
        kind, prop, row = "MyOwnKind", "v", {"key.id": 3, "key.name": "None", "v": value}
    else:
        kind, prop, row = "Student", "group_id", dict(STUDENT, group_id=value)
    ok = storable(value) and raw is None
    if schema_for(kind) is None and isinstance(value, list) and any(isinstance(v, (list, dict)) for v in value):
        ok = False  # a generic kind's lists hold scalars
    return kind, prop, row, raw, ok


def _text(row: dict, prop: str, raw: str | None) -> str:
    if raw is None:
        return json.dumps(row)
    return row_text({k: v for k, v in row.items() if k != prop}, **{prop: raw})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=placed_values())
def test_decoder_and_reader_agree_with_the_limits(case) -> None:
    kind, prop, row, raw, ok = case
    member = member_text([_text(row, prop, raw)])
    import io

    try:
        rows = list(iter_rows(io.BytesIO(member), f"models/{kind}.json"))
    except ArchiveError as exc:
        assert not ok and raw is not None, exc
        return
    decoder = RowDecoder(kind, "ns")
    for decode in (decoder.decode_json, decoder.decode):
        try:
            decode(rows[0])
        except RowError as exc:
            assert not ok, exc
            assert str(exc).startswith(f"{kind}.{prop}: ") or "lists of lists" in str(exc), exc
        else:
            assert ok, (kind, prop, raw)


@pytest.fixture(scope="module")
def generated_target(template: Path, tmp_path_factory) -> Path:
    import shutil

    home = tmp_path_factory.mktemp("generated") / "home"
    home.mkdir()
    shutil.copyfile(db_path(template), db_path(home))
    with SqliteBackend(db_path(home), create=False) as store:
        Site(store).add_course("/target")
    return home


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(case=placed_values())
def test_upload_agrees_with_the_limits_and_round_trips(generated_target: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch, case) -> None:
    kind, prop, row, raw, ok = case
    home = generated_target
    monkeypatch.setenv("COURSEPORT_HOME", str(home))
    archive = datastore_zip(tmp_path / "g.zip", {f"models/{kind}.json": member_text([_text(row, prop, raw)])})
    before = snapshot_store(db_path(home))
    try:
        etl("upload", "datastore", "/target", "local", "--archive_path", archive, "--force_overwrite")
    except UserError as exc:
        assert not ok, exc
        assert f"models/{kind}.json: row 1" in str(exc), exc
        assert snapshot_store(db_path(home)) == before
        return
    assert ok, (kind, prop, raw)
    assert verify(archive).ok
    back = tmp_path / "back.zip"
    etl("download", "datastore", "/target", "local", "--archive_path", back, "--datastore_types", kind,
        "--force_overwrite")
    (got,) = kind_rows(archive_members(back))[kind]
    assert got[prop] == row[prop] and json.dumps(got[prop]) == json.dumps(row[prop])
