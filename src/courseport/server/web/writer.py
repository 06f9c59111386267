"""The learner side's writes, by group commit on one thread per worker.

Every write a page or an event makes (a last location, progress, an event
row, a registration) is an operation on the store; operations that arrive
while a batch is being written go into the next batch, which runs in one
transaction. Each request still answers only once its operation is
committed. The thread writes through its own handle on the store, so the
requests' reads never wait behind a commit.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from ...datastore import Backend

T = TypeVar("T")
Operation = Callable[[Backend], Any]
log = logging.getLogger("courseport.server")


class Writer:
    def __init__(self, store: Backend) -> None:
        self.store = store.another()
        self._own = self.store is not store
        self._pending: list[tuple[Operation, asyncio.Future]] = []
        self._busy = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="courseport-writer")

    async def run(self, operation: Callable[[Backend], T]) -> T:
        """Run ``operation(store)`` in the next batch; its result, once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._pending.append((operation, future))
        if not self._busy:
            self._busy = True
            loop.call_soon(self._flush, loop)
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            self._busy = False
            return
        done = loop.run_in_executor(self._executor, self._write, [op for op, _ in batch])

        def finished(result: asyncio.Future) -> None:
            error = result.exception()
            outcomes = [(False, error)] * len(batch) if error else result.result()
            for (_, future), (ok, value) in zip(batch, outcomes):
                if not future.done():
                    future.set_result(value) if ok else future.set_exception(value)
            self._flush(loop)

        done.add_done_callback(finished)

    def _write(self, operations: list[Operation]) -> list[tuple[bool, Any]]:
        try:
            with self.store.transaction():
                return [(True, op(self.store)) for op in operations]
        except Exception:  # noqa: BLE001 - one operation failed: the others go on alone
            if len(operations) == 1:
                return [(False, _error())]
        outcomes: list[tuple[bool, Any]] = []
        for op in operations:
            try:
                with self.store.transaction():
                    outcomes.append((True, op(self.store)))
            except Exception as exc:  # noqa: BLE001 - handed to the request that asked
                outcomes.append((False, exc))
        return outcomes

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._own:
            self.store.close()


def _error() -> BaseException:
    import sys

    return sys.exc_info()[1] or RuntimeError("write failed")
