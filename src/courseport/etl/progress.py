"""Progress per kind: a bar with rows, rate and ETA on a terminal, log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger("courseport.etl")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Progress:
    """Reports one task (a kind, the files) as it goes."""

    def __init__(self, label: str, total: int | None, stream: TextIO | None = None,
                 enabled: bool = True, interval: float = 0.2, log_every: float = 10.0) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.enabled = enabled
        self.done = 0
        self.started = time.monotonic()
        self._next_draw = 0.0
        self._interval = interval if self.tty else log_every
        self._next_draw = self.started + (0 if self.tty else self._interval)

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.enabled and now >= self._next_draw:
            self._next_draw = now + self._interval
            self._report(now, final=False)

    def _rate(self, now: float) -> float:
        elapsed = now - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def _line(self, now: float, final: bool) -> str:
        rate = self._rate(now)
        total = self.total
        if total:
            share = min(1.0, self.done / total)
            bar = "#" * int(share * 24)
            eta = "" if final or rate <= 0 else f" ETA {_duration((total - self.done) / rate)}"
            return f"{self.label:<28} [{bar:<24}] {self.done:>10,}/{total:,} {rate:>9,.0f}/s{eta}"
        return f"{self.label:<28} {self.done:>10,} {rate:>9,.0f}/s"

    def _report(self, now: float, final: bool) -> None:
        if self.tty:
            # \x1b[K clears what a longer previous line left behind
            self.stream.write("\r" + self._line(now, final) + "\x1b[K" + ("\n" if final else ""))
            self.stream.flush()
        else:
            log.info(self._line(now, final))

    def finish(self) -> float:
        now = time.monotonic()
        if self.enabled:
            self._report(now, final=True)
        return now - self.started
