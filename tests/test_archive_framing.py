"""The models/<Kind>.json member format (spec §1.5): RowsWriter, iter_rows."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from courseport import _json
from courseport.archive import ArchiveError, RowsWriter, count_rows, iter_rows

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "coursebuilder"


def frame(rows: list[dict], **kw: object) -> bytes:
    out = io.BytesIO()
    writer = RowsWriter(out, **kw)
    for row in rows:
        writer.write_row(_json.dumps(row))
    writer.close()
    return out.getvalue()


def rows_of(data: bytes, name: str = "models/X.json") -> list[dict]:
    return list(iter_rows(io.BytesIO(data), name))


def fixture_members() -> list[tuple[str, str, bytes]]:
    """(archive, member, bytes) for every models/*.json of every fixture."""
    if not FIXTURES.is_dir():
        pytest.skip(f"../shared fixtures absent: {FIXTURES} not found")
    found = []
    for models in sorted(FIXTURES.glob("*/*/models")):
        for member in sorted(models.glob("*.json")):
            found.append((str(models.parent), f"models/{member.name}", member.read_bytes()))
    for archive in sorted(FIXTURES.glob("live_sample/*.zip")):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if name.startswith("models/"):
                    found.append((str(archive), name, zf.read(name)))
    assert found
    return found


# -- RowsWriter: exact bytes ------------------------------------------------

def test_zero_rows() -> None:
    assert frame([]) == b'{"rows": [\n]}\n'


def test_one_row() -> None:
    assert frame([{"a": 1}]) == b'{"rows": [\n    {"a": 1}\n]}\n'


def test_three_rows() -> None:
    assert frame([{"a": 1}, {"b": "<x>"}, {}]) == (
        b'{"rows": [\n    {"a": 1},\n    {"b": "\\u003Cx\\u003E"},\n    {}\n]}\n')


def test_rows_counter_and_chunking_do_not_change_output() -> None:
    rows = [{"i": i, "pad": "x" * (i % 50)} for i in range(5000)]
    out = io.BytesIO()
    writer = RowsWriter(out, chunk_chars=1000)
    for row in rows:
        writer.write_row(_json.dumps(row))
    assert writer.rows == 5000
    writer.close()
    writer.close()  # idempotent
    assert out.getvalue() == frame(rows)
    assert out.getvalue() == (
        "{\"rows\": [\n" + ",\n".join("    " + _json.dumps(r) for r in rows) + "\n]}\n").encode()


def test_row_with_newline_is_refused() -> None:
    writer = RowsWriter(io.BytesIO(), "models/Student.json")
    writer.write_row("{}")
    with pytest.raises(ArchiveError, match=r"^models/Student.json: row 2 contains a newline"):
        writer.write_row('{\n"a": 1}')


def test_context_manager_writes_footer() -> None:
    out = io.BytesIO()
    with RowsWriter(out) as writer:
        writer.write_row("{}")
    assert out.getvalue() == b'{"rows": [\n    {}\n]}\n'


def test_written_output_reads_back() -> None:
    rows = [{"key.id": i, "text": "é ü <b>", "list": [1, None, True]} for i in range(1000)]
    assert rows_of(frame(rows)) == rows


# -- iter_rows on real Course Builder output --------------------------------

def test_every_fixture_member_reads_like_json_load() -> None:
    for archive, name, data in fixture_members():
        assert rows_of(data, name) == json.loads(data)["rows"], (archive, name)
        assert count_rows(io.BytesIO(data), name) == len(json.loads(data)["rows"])


def test_every_fixture_member_reframes_byte_identically() -> None:
    """RowsWriter + _json.dumps reproduce CB's bytes (except a hand-edited,
    pretty-printed fixture)."""
    same = 0
    for archive, name, data in fixture_members():
        if b'{"rows": [\n    {\n' in data:
            continue
        assert frame(rows_of(data, name)) == data, (archive, name)
        same += 1
    assert same > 50


def test_small_reads_across_chunk_boundaries() -> None:
    rows = [{"i": i, "s": "ü" * (i % 7) + '"\\'} for i in range(300)]
    data = frame(rows)

    class Trickle(io.BytesIO):
        def read(self, size: int = -1) -> bytes:
            return super().read(min(3, size if size >= 0 else 3))

    assert list(iter_rows(Trickle(data), "m")) == rows


# -- other layouts -----------------------------------------------------------

def test_pretty_printed_layout() -> None:
    rows = [{"a": i, "b": {"c": [1, 2]}} for i in range(20)]
    data = json.dumps({"rows": rows}, indent=4).encode()
    assert rows_of(data) == rows


def test_single_line_layout() -> None:
    rows = [{"a": i} for i in range(20)]
    assert rows_of(json.dumps({"rows": rows}, separators=(",", ":")).encode()) == rows
    assert rows_of(b'  {"rows":[]}  \r\n') == []


def test_row_larger_than_read_chunk() -> None:
    rows = [{"big": "x" * (3 << 20)}, {"big": "y" * 10}]
    assert rows_of(frame(rows)) == rows


# -- refusals -----------------------------------------------------------------

@pytest.mark.parametrize("data, problem", [
    (b"", "empty member"),
    (b"  \n", "only whitespace"),
    (b"[]", "top level is not a JSON object"),
    (b'"rows"', "top level is not a JSON object"),
    (b"{}", "no 'rows' list"),
    (b'{"other": []}', "unexpected top-level key 'other'"),
    (b'{"rows": {}}', "'rows' is not a list"),
    (b'{"rows": [1]}', "row 1 is not a JSON object"),
    (b'{"rows": [\n    {},\n    []\n]}\n', "row 2 is not a JSON object"),
    (b'{"rows": [\n    {"a": 1},\n    {"a": \n]}\n', "row 2 is not valid JSON"),
    (b'{"rows": [\n    {"a": 1}\n    {"a": 2}\n]}\n', "after row 1: expected ',' or ']'"),
    (b'{"rows": [\n    {"a": 1},\n]}\n', "trailing comma after row 1"),
    (b'{"rows": [\n    {"a": 1}', "truncated"),
    (b'{"rows": [\n    {"a": 1}\n]', "truncated or malformed"),
    (b'{"rows": [\n    {"a": 1},\n    {"a": "unterminated', "row 2 is not valid JSON"),
    (b'{"rows": [\n]}\n]}\n', "trailing data after the closing '}'"),
    (b'{"rows": []} {"rows": []}', "trailing data"),
    (b'{"rows": [], "x": 1}', "unexpected content after the 'rows' list"),
    (b'{"rows": [{"a": "\xff"}]}', "not valid UTF-8"),
    (b'{"rows" [', "expected ':'"),
])
def test_malformed_members_are_refused(data: bytes, problem: str) -> None:
    with pytest.raises(ArchiveError) as info:
        rows_of(data, "models/Student.json")
    message = str(info.value)
    assert message.startswith("models/Student.json: ")
    assert problem in message
    assert "\n" not in message


def test_rows_before_an_error_are_yielded() -> None:
    rows = iter_rows(io.BytesIO(b'{"rows": [{"a": 1}, {"a": 2}, 3]}'), "m")
    assert next(rows) == {"a": 1}
    assert next(rows) == {"a": 2}
    with pytest.raises(ArchiveError, match="row 3 is not a JSON object"):
        next(rows)


def test_bad_row_in_a_large_member_fails_without_reading_it_all() -> None:
    rows = frame([{"i": i, "pad": "p" * 200} for i in range(30000)])
    cut = rows.index(b",\n", 50000) + 2
    data = rows[:cut] + b"}}}" + rows[cut:]  # garbage early in a ~6 MB member

    class Counting(io.BytesIO):
        served = 0

        def read(self, size: int = -1) -> bytes:
            chunk = super().read(size)
            Counting.served += len(chunk)
            return chunk

    with pytest.raises(ArchiveError, match="not valid JSON|expected ','"):
        list(iter_rows(Counting(data), "m"))
    assert Counting.served < 3 << 20


# -- memory stays flat ---------------------------------------------------------------

class SyntheticMember(io.RawIOBase):
    """A framed member of ``count`` rows, generated as it is read."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._next = 0
        self._buffer = b'{"rows": [\n'

    def readable(self) -> bool:
        return True

    def readinto(self, out: bytearray) -> int:
        if len(self._buffer) < len(out) and self._next <= self._count:
            upto = min(self._count, self._next + len(out) // 200 + 1)
            rows = [b'{"key.id": %d, "pad": "%s"}' % (i, b"p" * 250)
                    for i in range(self._next, upto)]
            self._buffer += (b",\n    " if self._next else b"    ") + b",\n    ".join(rows)
            self._next = upto
            if upto == self._count:
                self._buffer += b"\n]}\n"
                self._next += 1
        n = min(len(out), len(self._buffer))
        out[:n], self._buffer = self._buffer[:n], self._buffer[n:]
        return n


def peaks(count: int) -> tuple[int, int]:
    """Peak traced memory writing, then reading, ``count`` distinct rows."""
    import tracemalloc

    class Sink:
        def write(self, data: bytes) -> int:
            return len(data)

    tracemalloc.start()
    try:
        writer = RowsWriter(Sink())
        for i in range(count):
            writer.write_row('{"key.id": %d, "pad": "%s"}' % (i, "p" * 250))
        writer.close()
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        assert count_rows(io.BufferedReader(SyntheticMember(count)), "m") == count
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return write_peak, read_peak


def test_memory_is_flat_while_writing_and_reading() -> None:
    small = peaks(10_000)   # ~2.7 MB of rows
    large = peaks(60_000)   # ~16 MB of rows
    for few, many in zip(small, large):
        assert many < few * 1.2 + 500_000, (small, large)
        assert many < 12_000_000, large


# --- line_chunks: Course Builder's layout cut for worker processes ---------------------------------


def _line_member(rows: list[dict]) -> bytes:
    if not rows:
        return b'{"rows": [\n]}\n'
    return ('{"rows": [\n' + ",\n".join("    " + json.dumps(r) for r in rows) + "\n]}\n").encode()


def test_line_chunks_give_every_row_in_order_within_both_budgets() -> None:
    from courseport.archive import line_chunks

    rows = [{"i": i, "pad": "x" * (i % 50)} for i in range(1000)]
    chunks = list(line_chunks(io.BytesIO(_line_member(rows)), "m", rows_per_chunk=64,
                              read_bytes=333, chars_per_chunk=2000))
    assert [json.loads(text) for _, chunk in chunks for text in chunk] == rows
    assert [first for first, _ in chunks] == [1 + sum(len(c) for _, c in chunks[:n]) for n in range(len(chunks))]
    assert all(len(chunk) <= 64 and sum(map(len, chunk[:-1])) < 2000 for _, chunk in chunks)
    assert list(line_chunks(io.BytesIO(_line_member([])), "m")) == []


@pytest.mark.parametrize("member", [
    b'{"rows": [{"a": 1}]}',                       # one line
    b'{"rows": [\n    {"a": 1},\n]}\n',             # a comma after the last row
    b'{"rows": [\n    {"a": 1}\n    {"a": 2}\n]}\n',  # no comma between rows
    b'{"rows": [\n    {\n      "a": 1\n    }\n]}\n',  # a row over several lines
    b'{"rows": [\n    {"a": 1}\n]}\ntrailing\n',     # something after the end
    b'{"rows": [\n    {"a": 1}\n',                  # no end
    b'{"rows":[\n]}\n',                             # another header
])
def test_line_chunks_refuse_other_layouts(member: bytes) -> None:
    from courseport.archive import NotLineLayout, line_chunks

    with pytest.raises(NotLineLayout):
        list(line_chunks(io.BytesIO(member), "m"))
