"""Worker processes that end with the process that started them.

A killed upload or populate must not leave its workers running (holding
its pipes open, or writing on). On Linux each worker asks the kernel for
SIGKILL when its parent dies.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1
#: set by a process that runs ``courseport`` as its child (the server's archive
#: jobs) to its own pid: the command then ends when that process does
ENV_DIE_WITH_PARENT = "COURSEPORT_DIE_WITH_PARENT"


def _die_with_parent(parent: int | None) -> None:
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if parent is not None and os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def die_with_parent_if_asked() -> None:
    """End with the parent named by ``$COURSEPORT_DIE_WITH_PARENT``, if it is set
    (and right away if that parent is already gone)."""
    parent = os.environ.pop(ENV_DIE_WITH_PARENT, "")
    if parent.isdigit():
        _die_with_parent(int(parent))


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def worker_pool(workers: int, *, start_method: str = "fork") -> ProcessPoolExecutor:
    """A pool of workers that die with this process.

    ``fork`` (the default) is fastest; a process with threads (a server)
    asks for ``forkserver``, whose workers are forked from a clean process
    (their parent is that one, which ends with this process).
    """
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(start_method),
        initializer=_die_with_parent,
        initargs=(os.getpid() if start_method == "fork" else None,),
    )
