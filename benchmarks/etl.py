"""ETL benchmark: download, privacy download and upload on a populated course, local and remote.

    python benchmarks/etl.py [--students 100000] [--workdir DIR] [--batch_size 20] [--no-remote]

Populates /sample in a fresh store (or reuses --workdir's), then runs each
operation as the real command line in a child process (wall time, peak
RSS of that process), against ``local`` and then through a real
``courseport serve`` on 127.0.0.1 over the same store (with the server's
peak RSS), and, in this process on the same data, a floor: reading the
same rows out of sqlite in key order and deflating the same bytes the
download wrote. Prints one table; "× local" is a remote row's speed over
the same local row's.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DEFAULT_COMPRESSLEVEL = 1  # what ArchiveWriter uses


def run_measured(home: Path, *args: str, env_extra: dict[str, str] | None = None,
                 stdin: bytes | None = None) -> tuple[float, int, str]:
    """Like :func:`courseport`, with the child's own peak RSS (via wait4)."""
    env = dict(os.environ, COURSEPORT_HOME=str(home), PYTHONPATH=str(ROOT / "src"), **(env_extra or {}))
    extra = ("--log_level", "WARNING") if args[0] in ("download", "upload", "delete", "run") else ()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "courseport", *args, *extra], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(stdin or b"")  # type: ignore[union-attr]
    proc.stdin.close()  # type: ignore[union-attr]
    out = proc.stdout.read()  # type: ignore[union-attr]
    err = proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"courseport {' '.join(args)} failed: {err.decode().strip()}")
    return elapsed, usage.ru_maxrss * 1024, out.decode()


def floor(db: Path, namespace: str, kinds: list[str], archive: Path) -> tuple[float, int]:
    """Seconds to read the rows from sqlite in key order plus deflate the archive's bytes."""
    conn = sqlite3.connect(db)
    started = time.perf_counter()
    rows = 0
    for kind in kinds:
        for (_data,) in conn.execute(
            "SELECT data FROM entities WHERE ns = ? AND kind = ? ORDER BY pkey", (namespace, kind)
        ):
            rows += 1
    read_s = time.perf_counter() - started
    conn.close()
    deflate_s = 0.0
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            if not name.startswith("models/"):
                continue
            compressor = zlib.compressobj(DEFAULT_COMPRESSLEVEL, zlib.DEFLATED, -15)
            with zf.open(name) as member:
                while chunk := member.read(1 << 20):  # reading is not timed, deflating is
                    started = time.perf_counter()
                    compressor.compress(chunk)
                    deflate_s += time.perf_counter() - started
            compressor.flush()
    return read_s + deflate_s, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--batch_size", type=int, default=20)
    parser.add_argument("--no-remote", dest="remote", action="store_false", help="skip the rows through a server")
    opts = parser.parse_args()
    work = opts.workdir or Path(tempfile.mkdtemp(prefix="courseport-bench-"))
    home = work / "home"
    db = home / "courseport.db"
    if not db.exists():
        run_measured(home, "init", "--app_id", "bench")
        t, rss, _ = run_measured(home, "populate", "/sample", "--students", str(opts.students), "--seed", "1")
        print(f"populate {opts.students:,} students: {t:.1f}s, peak RSS {rss / 2**20:.0f} MB")
    conn = sqlite3.connect(db)
    kinds = [k for (k,) in conn.execute("SELECT DISTINCT kind FROM entities WHERE ns = 'ns_sample' ORDER BY kind")]
    total = conn.execute("SELECT COUNT(*) FROM entities WHERE ns = 'ns_sample'").fetchone()[0]
    conn.close()
    print(f"store: {total:,} entities in ns_sample, {db.stat().st_size / 2**20:.0f} MB on disk; batch size {opts.batch_size}")
    batch = ("--batch_size", str(opts.batch_size))
    results = []
    for label, archive, extra in (
        ("download course", work / "course.zip", ("download", "course", "/sample", "local")),
        ("download datastore", work / "datastore.zip", ("download", "datastore", "/sample", "local")),
        ("download --privacy", work / "privacy.zip",
         ("download", "datastore", "/sample", "local", "--privacy", "--privacy_secret", "bench")),
    ):
        t, rss, _ = run_measured(home, *extra, "--archive_path", str(archive), "--force_overwrite", *batch)
        with zipfile.ZipFile(archive) as zf:
            size = sum(i.compress_size for i in zf.infolist())
        entities = _entities(archive)
        results.append((label, entities, t, rss, archive, size))
    _, _, listing = run_measured(home, "courses", "list")
    if "/target" not in listing:
        run_measured(home, "courses", "add", "/target")
    t, rss, _ = run_measured(home, "upload", "datastore", "/target", "local", "--archive_path",
                             str(work / "datastore.zip"), "--force_overwrite", *batch)
    results.append(("upload datastore", _entities(work / "datastore.zip"), t, rss, None, 0))
    server_rss = remote_rows(home, work, batch, results) if opts.remote else None

    floor_s, floor_rows = floor(db, "ns_sample", kinds, work / "datastore.zip")
    print()
    print(f"{'operation':<30}{'entities':>12}{'seconds':>10}{'entities/s':>14}{'peak RSS MB':>13}"
          f"{'× floor':>10}{'× local':>10}")
    speed = {label: entities / t for label, entities, t, *_ in results}
    for label, entities, t, rss, archive, size in results:
        ratio = f"{t / floor_s:.2f}" if label == "download datastore" else ""
        local = label.removeprefix("remote ")
        versus = f"{(entities / t) / speed[local]:.2f}" if label.startswith("remote ") and local in speed else ""
        print(f"{label:<30}{entities:>12,}{t:>10.2f}{entities / t:>14,.0f}{rss / 2**20:>13.0f}{ratio:>10}{versus:>10}")
    if server_rss is not None:
        print(f"{'server + workers (PSS)':<30}{'':>12}{'':>10}{'':>14}{server_rss / 2**20:>13.0f}")
    print(f"{'floor (read+deflate)':<30}{floor_rows:>12,}{floor_s:>10.2f}{floor_rows / floor_s:>14,.0f}"
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:>13.0f}")
    print(f"\narchives in {work} (compress level {DEFAULT_COMPRESSLEVEL})")


def remote_rows(home: Path, work: Path, batch: tuple[str, ...], results: list) -> int:
    """The same download and upload through a real server on 127.0.0.1; the server's peak RSS."""
    import httpx

    email = "bench@example.com"
    _, _, users = run_measured(home, "users", "list")
    if email not in users:
        run_measured(home, "users", "add", email, "--admin", stdin=b"bench-password\n")
    _, _, created = run_measured(home, "app-password", "create", "--email", email, "--name", "bench")
    creds = {"COURSEPORT_EMAIL": email, "COURSEPORT_APP_PASSWORD": created.strip().splitlines()[-1]}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    env = dict(os.environ, COURSEPORT_HOME=str(home), PYTHONPATH=str(ROOT / "src"))
    server = subprocess.Popen([sys.executable, "-m", "courseport", "serve", "--port", port],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    sampler = TreeRss(server.pid)
    try:
        for _ in range(200):
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        for label, archive, extra in (
            ("remote download datastore", work / "r-datastore.zip", ("download", "datastore", "/sample")),
            ("remote download --privacy", work / "r-privacy.zip",
             ("download", "datastore", "/sample", "--privacy", "--privacy_secret", "bench")),
        ):
            t, rss, _ = run_measured(home, *extra, "localhost", "--port", port, "--archive_path", str(archive),
                                     "--force_overwrite", *batch, env_extra=creds)
            results.append((label, _entities(archive), t, rss, archive, 0))
        _, _, listing = run_measured(home, "courses", "list")
        if "/rtarget" not in listing:
            run_measured(home, "courses", "add", "/rtarget")
        t, rss, _ = run_measured(home, "upload", "datastore", "/rtarget", "localhost", "--port", port,
                                 "--archive_path", str(work / "datastore.zip"), "--force_overwrite", *batch,
                                 env_extra=creds)
        results.append(("remote upload datastore", _entities(work / "datastore.zip"), t, rss, None, 0))
    finally:
        sampler.stop()
        server.send_signal(signal.SIGTERM)
        os.wait4(server.pid, 0)
    return sampler.peak


class TreeRss:
    """The peak of the summed proportional set size (PSS: shared pages split
    between their sharers) of a process group (a server and its workers), sampled."""

    def __init__(self, pgid: int, every: float = 0.05) -> None:
        self.pgid, self.every, self.peak = pgid, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            total = 0
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    if os.getpgid(int(pid)) != self.pgid:
                        continue
                    with open(f"/proc/{pid}/smaps_rollup") as rollup:
                        total += next(int(line.split()[1]) for line in rollup if line.startswith("Pss:")) * 1024
                except (OSError, ValueError, IndexError, StopIteration):
                    continue
            self.peak = max(self.peak, total)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _entities(archive: Path) -> int:
    import json

    with zipfile.ZipFile(archive) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    return sum(entry.get("rows") or 0 for entry in manifest["entities"])


if __name__ == "__main__":
    main()
