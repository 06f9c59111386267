"""Progress per task (a kind, the files): a bar on a terminal, log lines otherwise.

On a terminal (stderr a tty) a task redraws one line at most every
``interval`` seconds: label, bar, counts, elapsed time, ETA and rate, fitted
to the terminal's width less one column (a line as wide as the terminal
wraps on some terminals), read again at each redraw so a resized window
fits too. tqdm's ``format_meter`` lays the line out; courseport keeps the
throttle, the width and the writing. Elsewhere (a pipe, a file, CI) a plain
log line every ``log_every`` seconds and one at the end: no bar, no escape
codes. A task that did nothing (an empty kind) prints nothing.

With ``--progress_json`` (:func:`report_as_json`) every line is instead a JSON
object, for a program to read (the server's archive jobs do): first
``{"plan": {task: total or null, ...}}``, then ``{"task", "done", "total",
"seconds", "final"}`` about twice a second per running task.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Callable, TextIO

log = logging.getLogger("courseport.etl")

#: the widest a label gets on a terminal line, and the column the bars line up on
_LABEL_WIDTH = 24
_CLEAR = "\x1b[K"  # clears what a longer previous line left behind

#: the stream a bar is drawn on whose line has no newline yet (see LineAwareHandler)
_open_line: TextIO | None = None
#: where progress goes as JSON lines instead of bars and log lines (--progress_json)
_json_stream: TextIO | None = None
_JSON_INTERVAL = 0.5


def report_as_json(stream: TextIO | None) -> None:
    """From now on, progress is JSON lines on ``stream`` (None: bars and log lines again)."""
    global _json_stream
    _json_stream = stream


def _write_json(data: dict) -> None:
    if _json_stream is None:
        return
    try:
        _json_stream.write(json.dumps(data) + "\n")
        _json_stream.flush()
    except (OSError, ValueError):  # the reader went away: progress never fails the work
        pass


def announce(totals: Callable[[], dict[str, int | None]], *, enabled: bool = True) -> None:
    """The tasks about to run and their totals (None where unknown): said only as JSON,
    so that a reader can tell the whole work's progress and ETA; ``totals`` is called
    only then (counting may cost a scan)."""
    if enabled and _json_stream is not None:
        _write_json({"plan": totals()})


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def printable(text: str) -> str:
    """``text`` with control characters shown as ``?`` (a kind name can come from an archive)."""
    return text if text.isprintable() else "".join(c if c.isprintable() else "?" for c in text)


def is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, OSError, ValueError):  # no isatty, or a closed stream
        return False


def _unicode(stream: TextIO) -> bool:
    """Whether ``stream`` can take the bar's block characters."""
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    return encoding.startswith("utf")


def terminal_width(stream: TextIO | None) -> int:
    """Columns of the terminal ``stream`` writes to; else ``$COLUMNS``; else 80."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns  # type: ignore[union-attr]
        if columns > 0:
            return columns
    except (AttributeError, OSError, ValueError):
        pass
    try:
        columns = int(os.environ.get("COLUMNS", ""))
        if columns > 0:
            return columns
    except ValueError:
        pass
    return 80


def _write_line(stream: TextIO, text: str, end: bool) -> None:
    global _open_line
    try:
        stream.write("\r" + text + _CLEAR + ("\n" if end else ""))
        stream.flush()
    except (OSError, ValueError):  # the terminal went away: progress never fails the work
        return
    _open_line = None if end else stream


def end_line() -> None:
    """End a bar's unfinished line (before an error is printed, say), keeping what it shows."""
    global _open_line
    if _open_line is not None:
        stream, _open_line = _open_line, None
        try:
            stream.write("\n")
            stream.flush()
        except (OSError, ValueError):
            pass


def say(text: str, *, enabled: bool = True, stream: TextIO | None = None, transient: bool = False) -> None:
    """A line of its own beside the bars: drawn on a terminal, logged elsewhere.

    A ``transient`` line ("committing ...") is replaced by whatever comes next
    on a terminal, and not logged at all elsewhere.
    """
    stream = stream if stream is not None else sys.stderr
    if not enabled:
        return
    if is_terminal(stream):
        width = terminal_width(stream)
        _write_line(stream, _fit(printable(text), width - 1), end=not transient)
    elif not transient:
        log.info("%s", printable(text))


def _fit(text: str, columns: int) -> str:
    from tqdm.utils import disp_trim

    return disp_trim(text, max(columns, 1))


class Progress:
    """Reports one task (a kind, the files) as it goes.

    ``advance(count)`` after each page or batch; ``finish()`` at the end
    (the final line, with the rate over the whole task). ``width`` fixes the
    terminal width (tests); by default it is read from the terminal.
    """

    def __init__(self, label: str, total: int | None, stream: TextIO | None = None,
                 enabled: bool = True, interval: float = 0.2, log_every: float = 10.0,
                 width: int | None = None) -> None:
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and self.stream is not None
        self.json = self.enabled and _json_stream is not None
        self.tty = self.enabled and not self.json and is_terminal(self.stream)
        self.width = width
        self.done = 0
        self.started = time.monotonic()
        self.ended: float | None = None
        self.reported = False
        self._interval = _JSON_INTERVAL if self.json else interval if self.tty else log_every
        self._next_draw = self.started + (0 if self.tty else self._interval)

    def advance(self, count: int) -> None:
        self.done += count
        if not (self.enabled and self.done):
            return
        now = time.monotonic()
        if now >= self._next_draw:
            self._next_draw = now + self._interval
            self._report(now, final=False)

    def finish(self, report: bool = True) -> float:
        """The task is done: its final line (none for a task that did nothing); the seconds it took.

        With ``report=False`` the time stops but the final line waits for a
        later ``finish()`` (an upload's, until its transaction commits); a
        terminal shows the task's last state until the next task's bar.
        """
        if self.ended is None:
            self.ended = time.monotonic()
            if not report and self.tty and self.done:
                self._report(self.ended, final=False)
        if report and not self.reported and self.enabled and self.done:
            self.reported = True
            self._report(self.ended, final=True)
        return self.ended - self.started

    # --- the lines ------------------------------------------------------------

    def _known_total(self) -> int | None:
        """The total, while it means something (a count can grow past a stale total)."""
        return self.total if self.total and self.total >= self.done else None

    def _report(self, now: float, final: bool) -> None:
        if self.json:
            _write_json({"task": self.label, "done": self.done, "total": self.total,
                         "seconds": round(now - self.started, 3), "final": final})
        elif self.tty:
            _write_line(self.stream, self.render(now - self.started, final), end=final)
        else:
            log.info("%s", self.log_line(now - self.started, final))

    def log_line(self, elapsed: float, final: bool) -> str:
        """The plain line of a log: ``Student: 1,200/20,000 (6%), 4,000/s, ETA 4.7s``."""
        rate = self.done / elapsed if elapsed > 0 else 0.0
        label = printable(self.label)
        if final:
            return f"{label}: {self.done:,} in {_duration(elapsed)}, {rate:,.0f}/s"
        total = self._known_total()
        if total is None:
            return f"{label}: {self.done:,}, {rate:,.0f}/s"
        eta = f", ETA {_duration((total - self.done) / rate)}" if rate > 0 else ""
        return f"{label}: {self.done:,}/{total:,} ({self.done * 100 // total}%), {rate:,.0f}/s{eta}"

    def render(self, elapsed: float, final: bool) -> str:
        """The terminal line, at most the terminal's width less one column.

        ``Student   45%|█████▌      | 9,000/20,000 [00:01<00:01, 8,912/s]``;
        on a narrow terminal the bar goes first, then what does not fit.
        """
        from tqdm import tqdm
        from tqdm.utils import disp_len, disp_trim

        columns = max((self.width or terminal_width(self.stream)) - 1, 1)
        pad = min(_LABEL_WIDTH, columns // 3)
        label = disp_trim(printable(self.label), max(pad, 1))
        label += " " * max(0, pad - disp_len(label)) + " "
        rate = self.done / elapsed if elapsed > 0 else None
        total = self._known_total()
        counts = f"{self.done:,}/{total:,}" if total else f"{self.done:,}"
        speed = f"{rate:,.0f}/s" if rate else "?/s"
        if final:
            stats = f"{counts} in {_duration(elapsed)}, {speed}"
        elif total and rate:
            left = tqdm.format_interval((total - self.done) / rate)
            stats = f"{counts} [{tqdm.format_interval(elapsed)}<{left}, {speed}]"
        else:
            stats = f"{counts} [{tqdm.format_interval(elapsed)}, {speed}]"
        if not total:
            return disp_trim(label + stats, columns)
        if columns - disp_len(label) - disp_len(stats) - len("100%|| ") < 8:
            return disp_trim(f"{label}{self.done * 100 // total:3d}% {stats}", columns)
        line = tqdm.format_meter(
            self.done, total, elapsed, ncols=columns, prefix=label,
            bar_format="{desc}{percentage:3.0f}%|{bar}| {stats}", stats=stats,
            ascii=not _unicode(self.stream),
        )  # type: ignore[call-arg]  # format_meter takes **extra_kwargs for bar_format; types-tqdm omits them
        return disp_trim(line, columns)


class LineAwareHandler(logging.StreamHandler):
    """A log handler that first clears a bar's unfinished line on its stream,
    so that a log line never lands glued to a bar (the bar is drawn again
    at its next redraw)."""

    def emit(self, record: logging.LogRecord) -> None:
        global _open_line
        if _open_line is not None and _open_line is self.stream:
            _open_line = None
            try:
                self.stream.write("\r" + _CLEAR)
            except (OSError, ValueError):
                pass
        super().emit(record)
