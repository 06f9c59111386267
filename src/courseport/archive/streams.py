"""Stream helpers: a background writer and a hashing reader."""

from __future__ import annotations

import hashlib
import io
import queue
import threading
from typing import Any, BinaryIO

CHUNK_BYTES = 1 << 20
QUEUE_DEPTH = 4


class BackgroundWriter(io.BufferedIOBase):
    """Collects writes into ~``chunk_bytes`` pieces written by a worker thread.

    zlib and crc32 release the GIL, so compressing a zip member overlaps
    with the caller encoding rows. The thread starts only once a full chunk
    is ready: small members are written inline. An error in the thread is
    raised by the next ``write`` or by ``finish``. ``close()`` by the caller
    only stops further writes; ``finish``/``discard`` end the member.
    """

    def __init__(self, target: BinaryIO, threaded: bool = True,
                 chunk_bytes: int = CHUNK_BYTES) -> None:
        self._target = target
        self._threaded = threaded
        self._chunk = chunk_bytes
        self._pending: list[bytes] = []
        self._size = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(QUEUE_DEPTH)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        #: sha256 of the member's bytes, computed where they are written
        #: (on the worker thread, off the caller's); complete after ``finish``
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed member stream")
        self._raise_error()
        data = data if type(data) is bytes else bytes(data)  # queued: must not change
        self._pending.append(data)
        self._size += len(data)
        if self._size >= self._chunk:
            self._hand_over()
        return len(data)

    def finish(self) -> None:
        """Write everything still pending and wait for the worker."""
        if self._pending:
            self._hand_over()
        self._stop()
        self._raise_error()

    def discard(self) -> None:
        """Stop the worker, dropping what is pending (the member failed)."""
        self._pending = []
        self._error = self._error or _Discarded()
        self._stop()

    def _hand_over(self) -> None:
        chunk = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        self._size = 0
        if self._thread is None and not self._threaded:
            self._write_through(chunk)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="archive-writer",
                                            daemon=True)
            self._thread.start()
        self._queue.put(chunk)

    def _work(self) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            if self._error is None:  # after an error keep draining, so put() never blocks
                try:
                    self._write_through(chunk)
                except BaseException as err:  # noqa: BLE001 - handed to the caller
                    self._error = err

    def _write_through(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        self.bytes += len(chunk)
        self._target.write(chunk)

    def _stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _raise_error(self) -> None:
        if self._error is not None and not isinstance(self._error, _Discarded):
            raise self._error


class _Discarded(Exception):
    """Marks a discarded writer so the worker stops writing."""


class HashingReader(io.RawIOBase):
    """Reads through ``inner`` while computing sha256 and counting bytes."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.sha256.update(data)
        self.bytes += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def drain(self, chunk: int = CHUNK_BYTES) -> None:
        """Read to the end."""
        while self.read(chunk):
            pass
