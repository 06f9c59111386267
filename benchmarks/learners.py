"""Load benchmark of the learner web server: simulated learners over keep-alive HTTP on loopback.

    python benchmarks/learners.py [--learners 50] [--seconds 30] [--workers 2] [--workdir DIR]
                                  [--mode all|pages|events|mixed] [--warmup 2] [--quiet_wait 120]

Makes a store (or reuses --workdir's) with events recorded and /sample open
to registration, starts a real ``courseport serve --workers N`` on
127.0.0.1, signs each learner up and registers it in /sample (not timed),
then runs each mode for --seconds with one keep-alive connection per learner:

- ``pages``: only lesson pages (``GET /sample/unit?unit=U&lesson=L``);
- ``events``: only event posts (``POST /sample/rest/events``);
- ``mixed``: what a learner's browser does: a lesson page, ``enter-page``,
  1-2 ``tag-youtube-milestone`` events, ``exit-page``, and again.

The default (``all``) runs pages, then events, then mixed. Each request is
timed from its first byte written to its last byte read; a request counts
when it starts after the warm-up and ends inside the window. An error is any
answer but 200 (or an event answered with Course Builder's ``)]}'`` envelope,
an XSRF failure), a page without its ``eventXsrfToken``, or a dropped
connection. The client is plain asyncio streams on uvloop with hand-built
HTTP/1.1 (no httpx), and shares the machine's cores with the server: its own
CPU time is printed beside the server's (from /proc) so a reader can see how
the machine was split, with whatever else ran on the machine meanwhile
("other CPU s": this benchmark waits up to --quiet_wait seconds before each
mode for the machine to be idle, but cannot stop other work starting later).
Prints one table, with the goals beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

HOST = "127.0.0.1"
COURSE = "/sample"
GOAL_PAGES = 500.0  # lesson pages/s
GOAL_EVENTS = 1500.0  # event posts/s
MODES = ("pages", "events", "mixed")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
FORM = re.compile(rb'<form\b([^>]*)>(.*?)</form>', re.S)
FORM_ACTION = re.compile(rb'action="([^"]*)"')
TOKEN_INPUT = re.compile(rb'name="xsrf_token"\s+value="([^"]*)"|value="([^"]*)"\s+name="xsrf_token"')
EVENT_TOKEN = re.compile(rb"var eventXsrfToken = '([^']*)';")
LESSON_LINK = re.compile(rb'unit\?unit=(\d+)&(?:amp;)?lesson=(\d+)')


# --- a minimal HTTP/1.1 keep-alive client ------------------------------------------------


class HttpError(Exception):
    """The connection broke, or the answer was not HTTP."""


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)

    def all(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k == name]


class Connection:
    """One keep-alive connection: requests are written by hand, answers parsed from the stream
    (status line, headers, then a Content-Length or chunked body)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, head: bytes, body: bytes = b"") -> Answer:
        """Send ``head`` (request line and headers, ending in a blank line) and ``body``; a reused
        connection that the server had closed meanwhile is reopened once, as a browser would."""
        reused = self.writer is not None
        if not reused:
            await self._open()
        try:
            return await self._exchange(head, body)
        except (HttpError, OSError, asyncio.IncompleteReadError) as exc:
            self.close()
            if not reused or (isinstance(exc, HttpError) and not str(exc).startswith("closed before")):
                raise HttpError(str(exc) or type(exc).__name__) from None
        await self._open()
        try:
            return await self._exchange(head, body)
        except (HttpError, OSError, asyncio.IncompleteReadError) as exc:
            self.close()
            raise HttpError(str(exc) or type(exc).__name__) from None

    async def _exchange(self, head: bytes, body: bytes) -> Answer:
        reader, writer = self.reader, self.writer
        assert reader is not None and writer is not None
        writer.write(head + body if body else head)
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise HttpError("closed before an answer" if not exc.partial else "truncated head") from None
        lines = raw.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise HttpError(f"not an HTTP status line: {lines[0][:80]!r}")
        status = int(parts[1])
        headers = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(b":")
                headers.append((name.strip().lower(), value.strip()))
        answer = Answer(status, headers, b"")
        encoding = answer.header(b"transfer-encoding")
        length = answer.header(b"content-length")
        if status in (204, 304) or 100 <= status < 200 or head.startswith(b"HEAD "):
            pass
        elif encoding is not None and b"chunked" in encoding.lower():
            answer.body = await _chunked(reader)
        elif length is not None:
            answer.body = await reader.readexactly(int(length))
        else:
            answer.body = await reader.read()  # to the end of the connection
            self.close()
            return answer
        if (answer.header(b"connection") or b"").lower() == b"close":
            self.close()
        return answer


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    pieces: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(pieces)
        pieces.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise HttpError("bad chunk framing")


# --- one simulated learner ------------------------------------------------------------------


@dataclass
class Tally:
    """What one mode's window saw: latencies (seconds) per request type, errors by kind."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"page": [], "event": []})
    errors: Counter = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)
    events_ok: int = 0  # every event answered 200, warm-up and stragglers too (to check against the store)

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        self.samples.setdefault(kind, detail)


class Learner:
    def __init__(self, number: int, port: int, lessons: list[tuple[str, str]], seed: int) -> None:
        self.number, self.port = number, port
        self.conn = Connection(HOST, port)
        self.cookies: dict[str, str] = {}
        self.lessons = lessons
        self.rng = random.Random(seed)
        self.position = number % max(1, len(lessons))
        self.event_token = ""
        self.location = ""
        self.base = f"Host: {HOST}:{port}\r\nUser-Agent: courseport-bench/1 (learner {number})\r\n" \
                    "Accept-Language: en-US,en;q=0.9\r\n"

    def _head(self, method: str, target: str, content_type: str | None = None, length: int = 0) -> bytes:
        lines = [f"{method} {target} HTTP/1.1\r\n", self.base]
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()) + "\r\n")
        if content_type is not None:
            lines.append(f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")

    def _remember(self, answer: Answer) -> None:
        for raw in answer.all(b"set-cookie"):
            text = raw.decode("latin-1")
            pair, _, attributes = text.partition(";")
            name, _, value = pair.strip().partition("=")
            attributes = attributes.lower().replace(" ", "")
            if not value or value == '""' or "max-age=0" in attributes:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    async def get(self, target: str) -> Answer:
        answer = await self.conn.request(self._head("GET", target))
        self._remember(answer)
        return answer

    async def post_form(self, target: str, fields: dict[str, str]) -> Answer:
        body = urllib.parse.urlencode(fields).encode()
        answer = await self.conn.request(self._head("POST", target, "application/x-www-form-urlencoded",
                                                    len(body)), body)
        self._remember(answer)
        return answer

    # setup (not timed) ------------------------------------------------------------------

    async def sign_up_and_register(self, tag: str) -> None:
        answer = await self.get("/accounts/signup")
        token = _form_token(answer, b"/accounts/signup", "sign-up page")
        email = f"learner{self.number}-{tag}@example.com"
        answer = await self.post_form("/accounts/signup", {
            "xsrf_token": token, "email": email, "password": f"bench-{tag}-password", "continue": "/"})
        if answer.status != 302:
            raise SystemExit(f"sign-up of {email} answered {answer.status}: {_snippet(answer.body)}")
        answer = await self.get(f"{COURSE}/register")
        token = _form_token(answer, b"register", "registration page")
        answer = await self.post_form(f"{COURSE}/register", {"xsrf_token": token, "form01": f"Learner {self.number}"})
        location = (answer.header(b"location") or b"").decode()
        if answer.status != 302 or "registration_confirmation" not in location:
            raise SystemExit(f"registration of {email} answered {answer.status} {location}: {_snippet(answer.body)}")
        await self.page(None)  # an event token for the events-only mode
        if not self.event_token:
            raise SystemExit(f"no eventXsrfToken on a lesson page for {email}")

    # the timed requests -----------------------------------------------------------------

    async def page(self, tally: Tally | None, window: tuple[float, float] = (0.0, 0.0)) -> None:
        unit, lesson = self.lessons[self.position]
        self.position = (self.position + 1) % len(self.lessons)
        target = f"{COURSE}/unit?unit={unit}&lesson={lesson}"
        started = time.perf_counter()
        try:
            answer = await self.get(target)
        except HttpError as exc:
            if tally is not None:
                tally.error("page: connection", str(exc))
            return
        ended = time.perf_counter()
        found = EVENT_TOKEN.search(answer.body) if answer.status == 200 else None
        if found is not None and found.group(1):
            self.event_token = found.group(1).decode()
            self.location = f"http://{HOST}:{self.port}{target}"
        if tally is None:
            return
        if answer.status != 200:
            tally.error(f"page: HTTP {answer.status}", _snippet(answer.body))
        elif found is None or not found.group(1):
            tally.error("page: no eventXsrfToken", _snippet(answer.body))
        elif window[0] <= started and ended <= window[1]:
            tally.latencies["page"].append(ended - started)

    async def event(self, source: str, tally: Tally, window: tuple[float, float]) -> None:
        payload: dict = {"location": self.location, "loc": {"page_locale": "en_US"}}
        if source == "tag-youtube-milestone":
            payload.update(video_id="Kdg2drcUjYI", position=self.rng.choice((25, 50, 75, 100)))
        request = json.dumps({"source": source, "payload": json.dumps(payload), "xsrf_token": self.event_token})
        started = time.perf_counter()
        try:
            answer = await self.post_form(f"{COURSE}/rest/events", {"request": request})
        except HttpError as exc:
            tally.error("event: connection", str(exc))
            return
        ended = time.perf_counter()
        if answer.status != 200:
            tally.error(f"event: HTTP {answer.status}", _snippet(answer.body))
        elif answer.body.startswith(b")]}'"):
            tally.error("event: XSRF/envelope", _snippet(answer.body))
        else:
            tally.events_ok += 1
            if window[0] <= started and ended <= window[1]:
                tally.latencies["event"].append(ended - started)

    async def run(self, mode: str, tally: Tally, window: tuple[float, float]) -> None:
        deadline = window[1]
        while time.perf_counter() < deadline:
            if mode == "pages":
                await self.page(tally, window)
                continue
            if mode == "mixed":
                await self.page(tally, window)
            sources = ["enter-page"] + ["tag-youtube-milestone"] * self.rng.randint(1, 2) + ["exit-page"]
            for source in sources:
                if time.perf_counter() >= deadline:
                    break
                await self.event(source, tally, window)


def _form_token(answer: Answer, action: bytes, what: str) -> str:
    """The xsrf_token of the page's form that posts to ``action`` (pages also hold a sign-out form)."""
    for form in FORM.finditer(answer.body if answer.status == 200 else b""):
        target = FORM_ACTION.search(form.group(1))
        if target is not None and target.group(1).rstrip(b"/").endswith(action):
            found = TOKEN_INPUT.search(form.group(2))
            if found is not None:
                return (found.group(1) or found.group(2)).decode()
    raise SystemExit(f"the {what} answered {answer.status} without a form to {action.decode()} holding an "
                     f"xsrf_token: {_snippet(answer.body)}")


def _snippet(body: bytes) -> str:
    return body[:160].decode("utf-8", "replace").replace("\n", " ")


# --- the server, from outside -------------------------------------------------------------


def courseport(home: Path, *args: str) -> str:
    env = dict(os.environ, COURSEPORT_HOME=str(home), PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([sys.executable, "-m", "courseport", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"courseport {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def group_processes(pgid: int) -> dict[int, tuple[int, str]]:
    """Each live process of the group: pid → (parent pid, command line)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
            if int(fields[2]) != pgid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
            found[int(entry)] = (int(fields[1]), command)
        except (OSError, ValueError, IndexError):
            continue
    return found


def workers_of(server_pid: int) -> list[int]:
    """uvicorn's worker processes: the server itself with one worker, else its children
    (less multiprocessing's resource tracker)."""
    children = [pid for pid, (parent, command) in group_processes(server_pid).items()
                if parent == server_pid and "resource_tracker" not in command]
    return sorted(children) or [server_pid]


def cpu_seconds(pgid: int) -> dict[int, float]:
    """User + system CPU seconds of each live process in the group."""
    found = {}
    for pid in group_processes(pgid):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
            found[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        except (OSError, ValueError, IndexError):
            continue
    return found


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), bytes; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def start_server(home: Path, port: int, workers: int, log: Path, access_log: bool = False) -> subprocess.Popen:
    env = dict(os.environ, COURSEPORT_HOME=str(home), PYTHONPATH=str(ROOT / "src"))
    extra = ["--access_log"] if access_log else []
    with open(log, "ab") as out:
        server = subprocess.Popen([sys.executable, "-m", "courseport", "serve", "--port", str(port),
                                   "--workers", str(workers), *extra], env=env, stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"courseport serve exited with {server.returncode}; see {log}")
        try:
            with socket.create_connection((HOST, port), timeout=1) as sock:
                sock.sendall(f"GET /api/v1/openapi.json HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                             "Connection: close\r\n\r\n".encode())
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    break
        except OSError:
            pass
        time.sleep(0.1)
    else:
        stop_server(server)
        raise SystemExit(f"courseport serve did not answer within 60 s; see {log}")
    # every worker up (each answers on the shared socket once it has started)
    while len(workers_of(server.pid)) < workers and time.monotonic() < deadline:
        time.sleep(0.1)
    return server


def stop_server(server: subprocess.Popen) -> None:
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


# --- the runs -------------------------------------------------------------------------------


@dataclass
class Run:
    mode: str
    window: float
    tally: Tally
    client_cpu: float
    server_cpu: float
    worker_cpu: list[float]  # of each worker, in the window
    machine_busy: float  # of all cores, 0..1
    stolen: float  # CPU seconds the hypervisor gave to other machines (steal time), all cores
    events_stored: int  # EventEntity rows the store gained during the run


def stored_events(db: Path) -> int:
    """EventEntity rows in the store (read-only, beside the running server)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute("SELECT COUNT(*) FROM entities WHERE kind = 'EventEntity'").fetchone()[0]
    finally:
        conn.close()


def machine_ticks() -> tuple[int, int, int]:
    """(busy, total, stolen) jiffies of all cores, from /proc/stat; stolen (steal time,
    the hypervisor running other machines on our cores) counts as busy."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    steal = values[7] if len(values) > 7 else 0
    return sum(values) - idle, sum(values), steal


async def run_mode(mode: str, learners: list[Learner], seconds: float, warmup: float, server_pid: int,
                   db: Path) -> Run:
    tally = Tally()
    stored0 = stored_events(db)
    begin = time.perf_counter()
    window = (begin + warmup, begin + warmup + seconds)
    tasks = [asyncio.create_task(learner.run(mode, tally, window)) for learner in learners]
    await asyncio.sleep(max(0.0, window[0] - time.perf_counter()))
    cpu0, server0, machine0 = time.process_time(), cpu_seconds(server_pid), machine_ticks()
    await asyncio.sleep(max(0.0, window[1] - time.perf_counter()))
    cpu1, server1, machine1 = time.process_time(), cpu_seconds(server_pid), machine_ticks()
    await asyncio.gather(*tasks)  # each finishes its request in flight
    busy = (machine1[0] - machine0[0]) / max(1, machine1[1] - machine0[1])
    used = {pid: seconds - server0.get(pid, 0.0) for pid, seconds in server1.items()}
    by_worker = [used.get(pid, 0.0) for pid in workers_of(server_pid)]
    stolen = (machine1[2] - machine0[2]) / os.sysconf("SC_CLK_TCK")
    return Run(mode, seconds, tally, cpu1 - cpu0, sum(used.values()), by_worker, busy, stolen,
               stored_events(db) - stored0)


async def drive(port: int, opts: argparse.Namespace, server_pid: int, db: Path) -> list[Run]:
    setup = Learner(-1, port, [], 0)
    answer = await setup.get(f"{COURSE}/course")
    lessons = list(dict.fromkeys((u.decode(), l.decode()) for u, l in LESSON_LINK.findall(answer.body)))
    setup.conn.close()
    if answer.status != 200 or not lessons:
        raise SystemExit(f"{COURSE}/course answered {answer.status} with no lesson links: {_snippet(answer.body)}")
    tag = secrets.token_hex(4)
    learners = [Learner(i, port, lessons, seed=i) for i in range(opts.learners)]
    started = time.perf_counter()
    gate = asyncio.Semaphore(8)

    async def enrol(learner: Learner) -> None:
        async with gate:
            await learner.sign_up_and_register(tag)

    await asyncio.gather(*(enrol(learner) for learner in learners))
    print(f"{opts.learners} learners signed up and registered in {time.perf_counter() - started:.1f}s "
          f"(not timed); {len(lessons)} lessons in {COURSE}", flush=True)
    runs = []
    for mode in (MODES if opts.mode == "all" else (opts.mode,)):
        await wait_quiet(opts.quiet_wait)
        print(f"  {mode}: running for {opts.warmup:g}+{opts.seconds:g}s ...", end="", flush=True)
        run = await run_mode(mode, learners, opts.seconds, opts.warmup, server_pid, db)
        pages, events = (len(run.tally.latencies[k]) for k in ("page", "event"))
        print(f" {pages / run.window:,.0f} pages/s, {events / run.window:,.0f} events/s, "
              f"{sum(run.tally.errors.values())} errors", flush=True)
        runs.append(run)
    for learner in learners:
        learner.conn.close()
    return runs


async def wait_quiet(limit: float, threshold: float = 0.10) -> None:
    """Wait (up to ``limit`` seconds) for a second in which the machine is at most ``threshold`` busy:
    the server is idle between modes, so what is busy then is someone else's work."""
    started = time.monotonic()
    while True:
        before = machine_ticks()
        await asyncio.sleep(1.0)
        after = machine_ticks()
        busy = (after[0] - before[0]) / max(1, after[1] - before[1])
        waited = time.monotonic() - started
        if busy <= threshold:
            if waited > 1.5:
                print(f"  (waited {waited:.0f}s for other work on the machine to stop)", flush=True)
            return
        if waited >= limit:
            print(f"  the machine is still {busy:.0%} busy with other work after {waited:.0f}s: going on; "
                  "see 'other CPU s' below", flush=True)
            return


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def report(runs: list[Run], opts: argparse.Namespace, workers: list[int], rss: dict[int, int],
           supervisor: tuple[int, int] | None) -> None:
    cores = os.cpu_count() or 1
    print()
    print(f"{'mode':<8}{'request':<14}{'count':>9}{'per s':>9}{'goal /s':>9}{'met':>5}"
          f"{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for run in runs:
        errors = sum(run.tally.errors.values())
        for kind, label, goal in (("page", "lesson page", GOAL_PAGES), ("event", "event post", GOAL_EVENTS)):
            values = run.tally.latencies[kind]
            wanted = kind == "page" and run.mode != "events" or kind == "event" and run.mode != "pages"
            if not wanted:
                continue
            kind_errors = sum(n for k, n in run.tally.errors.items() if k.startswith(kind + ":"))
            rate = len(values) / run.window
            met = "yes" if rate >= goal and errors == 0 else "NO"
            print(f"{run.mode:<8}{label:<14}{len(values):>9,}{rate:>9,.0f}{goal:>9,.0f}{met:>5}"
                  f"{percentile(values, 0.50) * 1000:>9.1f}{percentile(values, 0.99) * 1000:>9.1f}"
                  f"{kind_errors:>8}")
    print(f"goals: >= {GOAL_PAGES:,.0f} lesson pages/s and >= {GOAL_EVENTS:,.0f} event posts/s with zero errors "
          "(met: the rate reached, and no error of any kind in that mode)")
    print()
    print(f"{'mode':<8}{'client CPU s':>13}{'(% core)':>10}{'server CPU s':>14}{'(% core)':>10}"
          f"{'ms/request':>12}{'by worker s':>14}{'other CPU s':>13}{'stolen s':>10}{'machine busy':>14}")
    for run in runs:
        other = max(0.0, run.machine_busy * cores * run.window - run.client_cpu - run.server_cpu)
        requests = sum(len(v) for v in run.tally.latencies.values())
        print(f"{run.mode:<8}{run.client_cpu:>13.1f}{run.client_cpu / run.window:>10.0%}"
              f"{run.server_cpu:>14.1f}{run.server_cpu / run.window:>10.0%}"
              f"{run.server_cpu * 1000 / max(1, requests):>12.2f}"
              f"{'/'.join(f'{c:.1f}' for c in run.worker_cpu):>14}"
              f"{other:>13.1f}{run.stolen:>10.1f}{run.machine_busy:>9.0%} of {cores}")
    print("(% core: CPU seconds over the window's seconds, so up to {cores}00% for the machine; ms/request: "
          "the server's CPU per request counted; other: CPU that neither the client nor the server used, "
          "i.e. anything else running on the machine, steal time included; stolen: the hypervisor's steal "
          "time, CPU this virtual machine was ready to use but was given to others: figures with several "
          "seconds stolen understate the server)".replace("{cores}", str(cores)))
    for run in runs:
        if run.mode != "pages" and run.events_stored != run.tally.events_ok:
            print(f"{run.mode}: the store gained {run.events_stored:,} event rows for "
                  f"{run.tally.events_ok:,} events answered 200")
        elif run.mode != "pages":
            print(f"{run.mode}: every event answered 200 is in the store ({run.events_stored:,} rows, warm-up included)")
    for run in runs:
        for kind, count in sorted(run.tally.errors.items()):
            print(f"error in {run.mode}: {kind} x{count}, e.g. {run.tally.samples[kind]!r}")
    worker_mb = ", ".join(f"{rss[pid] / 2**20:.0f}" for pid in workers)
    line = (f"\nserver: {len(workers)} worker process(es) (--workers {opts.workers}), peak RSS "
            f"{sum(rss[pid] for pid in workers) / 2**20:.0f} MB summed over workers ({worker_mb} MB)")
    if supervisor is not None:
        line += f", supervisor {supervisor[1] / 2**20:.0f} MB"
    print(line)
    print(f"{opts.learners} learners, one keep-alive connection each, {opts.seconds:g}s per mode after "
          f"{opts.warmup:g}s warm-up; sqlite store; {cores} cores; client on uvloop in one process")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the store here (reused if there)")
    parser.add_argument("--mode", choices=("all",) + MODES, default="all")
    parser.add_argument("--access_log", action="store_true",
                        help="serve --access_log: a line per request (costs about a tenth of the throughput)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of each mode not counted")
    parser.add_argument("--quiet_wait", type=float, default=120.0,
                        help="before each mode, wait up to this many seconds for the machine to be idle")
    opts = parser.parse_args()
    work = opts.workdir or Path(tempfile.mkdtemp(prefix="courseport-learners-"))
    home = work / "home"
    if not (home / "courseport.db").exists():
        courseport(home, "init")
    courseport(home, "settings", "set", "record_events", "on")
    courseport(home, "settings", "set", "--course", COURSE, "availability", "registration_optional")
    port = free_port()
    log = work / "serve.log"
    server = start_server(home, port, opts.workers, log, opts.access_log)
    print(f"courseport serve --workers {opts.workers}{' --access_log' if opts.access_log else ''} on {HOST}:{port}, store {home / 'courseport.db'}, "
          f"server log {log}", flush=True)
    try:
        try:
            import uvloop
            new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        except ImportError:
            new_loop = asyncio.new_event_loop
        with asyncio.Runner(loop_factory=new_loop) as runner:
            runs = runner.run(drive(port, opts, server.pid, home / "courseport.db"))
        workers = workers_of(server.pid)
        rss = {pid: peak_rss(pid) for pid in workers}
        supervisor = (server.pid, peak_rss(server.pid)) if workers != [server.pid] else None
    finally:
        stop_server(server)
    report(runs, opts, workers, rss, supervisor)


if __name__ == "__main__":
    main()
