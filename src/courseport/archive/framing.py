"""The ``models/<Kind>.json`` member format: ``{"rows": [...]}``, one row a line.

Course Builder's ``transforms.JsonFile`` writes a file that is both valid
JSON and line-oriented (spec §1.5)::

    {"rows": [
        {"key.id": 1, ...},
        {"key.id": 2, ...}
    ]}

``RowsWriter`` produces exactly that; ``iter_rows`` reads it, and any other
JSON layout of the same document, in bounded memory.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO, Protocol

from .. import _json
from .errors import ArchiveError


class ByteReader(Protocol):
    """What the row readers need of a stream: ``read(size)`` giving bytes,
    ``b""`` at the end (a binary file, an archive member, a HashingReader)."""

    def read(self, size: int = -1, /) -> bytes: ...


HEADER = '{"rows": ['
FOOTER = "\n]}\n"
_FIRST = "\n    "
_SEP = ",\n    "

CHUNK_CHARS = 1 << 20
READ_BYTES = 1 << 20
MAX_ROW_CHARS = 64 << 20


class RowsWriter:
    """Frame already-encoded row texts into a binary stream.

    Rows are buffered and written in pieces of about ``chunk_chars``
    characters. ``close()`` writes the footer but does not close the stream.
    """

    def __init__(self, stream: BinaryIO, member_name: str = "rows",
                 chunk_chars: int = CHUNK_CHARS) -> None:
        self._stream = stream
        self._member = member_name
        self._chunk_chars = chunk_chars
        # After the first flush a batch starts with "" so that joining it
        # yields ",\n    row..." with no extra concatenation.
        self._batch: list[str] = []
        self._room = 64  # rows per chunk; re-estimated from row sizes
        self._flushed = 0
        self._closed = False

    @property
    def rows(self) -> int:
        """Rows written so far."""
        return self._flushed + len(self._batch) - (self._flushed > 0)

    def write_row(self, text: str) -> None:
        """Add one row: the JSON text of an object, without a newline."""
        if "\n" in text:
            raise ArchiveError(f"{self._member}: row {self.rows + 1} contains a "
                               "newline (each row must be one line)")
        batch = self._batch
        batch.append(text)
        if len(batch) >= self._room:
            self._flush()

    def write_rows(self, texts: list[str]) -> None:
        """Add many rows at once (one scan for newlines instead of one a row)."""
        if "\n" in "".join(texts):
            for text in texts:
                self.write_row(text)
            return
        batch = self._batch
        batch.extend(texts)
        if len(batch) >= self._room:
            self._flush()

    def close(self) -> None:
        """Write buffered rows and the footer."""
        if self._closed:
            return
        if self.rows == 0:
            self._stream.write(b'{"rows": [\n]}\n')
        else:
            self._flush()
            self._stream.write(FOOTER.encode("ascii"))
        self._closed = True

    def __enter__(self) -> RowsWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()

    def _flush(self) -> None:
        if self._closed:
            raise ArchiveError(f"{self._member}: row written after close()")
        batch = self._batch
        count = len(batch) - (self._flushed > 0)
        if count <= 0:
            return
        if not self._flushed:
            batch[0] = HEADER + _FIRST + batch[0]
        body = _SEP.join(batch)
        self._stream.write(body.encode("utf-8"))
        self._flushed += count
        self._room = max(16, self._chunk_chars * len(batch) // max(1, len(body)))
        self._batch = [""]


def iter_rows(stream: ByteReader, member_name: str) -> Iterator[dict[str, Any]]:
    """Yield the rows of a ``{"rows": [...]}`` member, streaming.

    Rows are numbered from 1 in error messages. The JSON is strict (no
    ``NaN``/``Infinity``); every way a row can fail to parse, nesting too
    deep for the stack and integers of over 4,300 digits included, is an
    ArchiveError naming the row. (What a value may hold is the row
    decoder's business: see ``sites.rows``.)
    """
    return _RowParser(stream, member_name).rows()


def count_rows(stream: ByteReader, member_name: str) -> int:
    """Count (and so validate) the rows of a member."""
    count = 0
    for _ in iter_rows(stream, member_name):
        count += 1
    return count


class NotLineLayout(Exception):
    """A member not laid out one row a line; read it with :func:`iter_rows`."""


def line_chunks(stream: ByteReader, member_name: str, rows_per_chunk: int = 5000,
                read_bytes: int = 4 << 20, chars_per_chunk: int = 8 << 20) -> Iterator[tuple[int, list[str]]]:
    """Course Builder's line layout cut into ``(first row number, row texts)`` chunks.

    The texts are the rows' JSON, not yet parsed (so that other processes
    can parse them). Raises NotLineLayout, possibly after some chunks, where
    the lines do not look like that layout: the caller then reads the member
    with :func:`iter_rows`, which also names what is wrong with it.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    rest = ""
    number = 1
    chunk: list[str] = []
    chars = 0  # in ``chunk``: a chunk ends at rows_per_chunk rows or chars_per_chunk characters
    state = "header"
    pending: str | None = None  # the last row seen, kept until we know if another follows
    while True:
        block = stream.read(read_bytes)
        try:
            text = rest + decoder.decode(block, final=not block)
        except UnicodeDecodeError:
            raise NotLineLayout(member_name) from None
        lines = text.split("\n")
        rest = lines.pop() if block else ""
        if not block and rest:
            lines.append(rest)
            rest = ""
        for line in lines:
            if state == "header":
                if line != HEADER:
                    raise NotLineLayout(member_name)
                state = "rows"
            elif state == "rows":
                if line == "]}":
                    if pending is not None:
                        if pending.endswith(","):
                            raise NotLineLayout(member_name)
                        chunk.append(pending)
                        pending = None
                    state = "end"
                    continue
                row = line.strip()
                if not row.startswith("{") or not (row.endswith("}") or row.endswith("},")):
                    raise NotLineLayout(member_name)
                if pending is not None:
                    if not pending.endswith(","):
                        raise NotLineLayout(member_name)
                    chunk.append(pending[:-1])
                    chars += len(pending)
                    if len(chunk) >= rows_per_chunk or chars >= chars_per_chunk:
                        yield number, chunk
                        number += len(chunk)
                        chunk = []
                        chars = 0
                pending = row
            elif line.strip():
                raise NotLineLayout(member_name)
        if not block:
            break
    if state != "end":
        raise NotLineLayout(member_name)
    if chunk:
        yield number, chunk


_WS = re.compile(r"[ \t\n\r]*")
_COMMA = re.compile(r"[ \t\n\r]*,[ \t\n\r]*")
_decode = _json.STRICT.raw_decode


class _RowParser:
    """A sliding text window over the stream, parsed with ``raw_decode``.

    ``buf[pos:]`` is the unparsed text; ``base`` counts the characters
    already dropped from the window, for offsets in messages.
    """

    def __init__(self, stream: ByteReader, member: str) -> None:
        self._stream = stream
        self.member = member
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self.buf = ""
        self.pos = 0
        self.base = 0
        self.eof = False
        self.read_bytes = 0

    def rows(self) -> Iterator[dict[str, Any]]:
        self._open_rows_list()
        if self.peek() == "]":
            self.pos += 1
        else:
            yield from self._row_loop()
        self._close_document()

    def _row_loop(self) -> Iterator[dict[str, Any]]:
        row = 0
        while True:
            row += 1
            value = self.decode(row)
            if type(value) is not dict:
                self.fail(f"row {row} is not a JSON object")
            yield value
            # Fast path: CB's ",\n    " between rows, next row already buffered.
            match = _COMMA.match(self.buf, self.pos)
            if match is not None and match.end() < len(self.buf):
                self.pos = match.end()
                if self.buf[self.pos] == "]":
                    self.fail(f"trailing comma after row {row}")
                continue
            char = self.peek()
            if char == ",":
                self.pos += 1
                if self.peek() == "]":
                    self.fail(f"trailing comma after row {row}")
            elif char == "]":
                self.pos += 1
                return
            elif char == "":
                self.fail(f"truncated: the rows list is not closed after row {row}")
            else:
                self.fail(f"malformed JSON after row {row}: expected ',' or ']' "
                          f"at offset {self.offset()}")

    def _open_rows_list(self) -> None:
        char = self.peek()
        if char == "":
            self.fail("empty member (no JSON document)" if self.read_bytes == 0
                      else "no JSON document (only whitespace)")
        if char != "{":
            self.fail("top level is not a JSON object with a 'rows' list")
        self.pos += 1
        if self.peek() != '"':
            self.fail("top-level object has no 'rows' list")
        key = self.decode(0)
        if key != "rows":
            self.fail(f"unexpected top-level key {key!r} (only 'rows' is allowed)")
        if self.peek() != ":":
            self.fail(f"malformed JSON: expected ':' at offset {self.offset()}")
        self.pos += 1
        if self.peek() != "[":
            self.fail("'rows' is not a list")
        self.pos += 1

    def _close_document(self) -> None:
        char = self.peek()
        if char == ",":
            self.fail("unexpected content after the 'rows' list (only 'rows' is allowed)")
        if char != "}":
            self.fail("truncated or malformed JSON: expected '}' after the rows list")
        self.pos += 1
        if self.peek() != "":
            self.fail(f"trailing data after the closing '}}' at offset {self.offset()}")

    def peek(self) -> str:
        """Skip whitespace; return the next character, or '' at the end."""
        while True:
            match = _WS.match(self.buf, self.pos)
            assert match is not None  # [ \t\n\r]* matches, if only the empty string, anywhere
            self.pos = match.end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def decode(self, row: int) -> Any:
        """Decode the JSON value at ``pos`` (row 0: the top-level key),
        reading more while it is cut off."""
        want = READ_BYTES
        while True:
            try:
                value, end = _decode(self.buf, self.pos)
            except json.JSONDecodeError as err:
                what = f"row {row}" if row else "the top-level key"
                if self.eof or not _maybe_cut(err, len(self.buf)):
                    self.fail(f"{what} is not valid JSON: {err.msg} at offset "
                              f"{self.base + err.pos}")
                if len(self.buf) - self.pos > MAX_ROW_CHARS:
                    self.fail(f"{what} is longer than {MAX_ROW_CHARS} characters")
                self.fill(want)
                want = max(want, len(self.buf) - self.pos)  # grow geometrically
                continue
            except (ValueError, RecursionError) as err:  # NaN, nesting, a number too long
                what = f"row {row}" if row else "the top-level key"
                self.fail(f"{what}: {_json.describe_failure(err)} (near offset {self.offset()})")
            self.pos = end
            return value

    def fill(self, size: int = READ_BYTES) -> bool:
        """Append the next chunk to the window; False at the end of the stream."""
        while not self.eof:
            data = self._stream.read(size)
            self.read_bytes += len(data)
            try:
                text = self._utf8.decode(data, final=not data)
            except UnicodeDecodeError as err:
                self.fail(f"not valid UTF-8 ({err.reason}) near byte "
                          f"{self.read_bytes - len(data) + err.start}")
            if not data:
                self.eof = True
            if text:
                self.base += self.pos
                self.buf = self.buf[self.pos:] + text
                self.pos = 0
                return True
        return False

    def offset(self) -> int:
        return self.base + self.pos

    def fail(self, problem: str) -> None:
        raise ArchiveError(f"{self.member}: {problem}")


def _maybe_cut(err: json.JSONDecodeError, length: int) -> bool:
    """Could this error come from the window ending inside a valid value?

    Only a string can be cut far from its error position (the error points at
    its opening quote); any other cut token fails within a few characters of
    the end of the window.
    """
    return err.msg.startswith("Unterminated string") or err.pos >= length - 64
