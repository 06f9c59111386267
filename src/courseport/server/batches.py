"""Large batches of puts checked by worker processes while the server writes.

Checking a batch (parsing each line, decoding its values) costs more than
writing it; one Python process does one at a time. A batch of at least
:data:`PARALLEL_MIN` lines is split between worker processes, so that a
client with two batches in flight keeps both cores busy: the workers check
one while the store writes the other. The workers are forked from a clean
process (``forkserver``: the server has threads) and die with the server.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .._workers import worker_pool
from .checks import ApiError, check_batch

PARALLEL_MIN = 1000


@dataclass
class PreparedBatch:
    rows: Any  # what the store's write_prepared takes
    count: int


class Checkers:
    def __init__(self, workers: int | None = None) -> None:
        self.workers = min(2, os.cpu_count() or 1) if workers is None else workers
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _get_pool(self) -> ProcessPoolExecutor | None:
        if self.workers < 2:
            return None
        with self._lock:
            if self._pool is None:
                self._pool = worker_pool(self.workers, start_method="forkserver")
            return self._pool

    def check(self, lines: list[bytes], prepare: Callable[[Sequence[Any]], Any]) -> PreparedBatch | list:
        """The batch checked: ready to write, or (some key awaiting an id) its rows.
        Raises ApiError for the first line in error."""
        pool = self._get_pool() if len(lines) >= PARALLEL_MIN else None
        if pool is None:
            results = [check_batch((lines, 1, prepare))]
        else:
            size = -(-len(lines) // self.workers)
            jobs = [(lines[at:at + size], at + 1, prepare) for at in range(0, len(lines), size)]
            results = [future.result() for future in [pool.submit(check_batch, job) for job in jobs]]
        for result in results:
            if result[0] == "error":
                raise ApiError(result[1], result[2])
        if all(result[0] == "prepared" for result in results):
            prepared: list = []
            for result in results:
                prepared.extend(result[1])
            return PreparedBatch(prepared, len(lines))
        if pool is not None:  # some key awaits an id: the rows, checked again here
            return check_batch((lines, 1, prepare))[1]
        return results[0][1]

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
