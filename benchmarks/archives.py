"""A download from the admin's browser against the same download from the command line.

    python benchmarks/archives.py [--students 100000] [--rounds 2] [--workers 2] [--workdir DIR]

Makes a store (or reuses --workdir's) with --students learners in /sample
(``courseport populate``, not timed), starts a real ``courseport serve`` on
127.0.0.1 and signs an admin in over HTTP, as a browser does. Then, for a
plain and a ``--privacy`` datastore download, each round times:

- ``command line``: ``courseport download datastore /sample local`` on the
  server's machine, wall time of the process (the baseline);
- ``command line via server``: the same through the server's remote API
  (``localhost --port``, an app-specific password);
- ``browser``: the admin page's form posted, then its jobs polled every
  0.1 s (the page itself polls every second) until the job is done: the
  wall time the admin waits, from the post to a finished, checksummed zip.

Each figure is the best of --rounds (runs alternate, so a slow moment of the
machine hits both). CPU stolen by the hypervisor during each download is
printed beside it: a figure taken while it was high is not this code's.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from learners import HOST, ROOT, courseport, free_port, machine_ticks, start_server, stop_server

ADMIN = "admin@example.com"
PASSWORD = "benchmark admin password"
SECRET = "benchmark secret"
GOAL = 1.2
_TOKEN = re.compile(r'action="/admin/archives"[^>]*>\s*<h2>Download</h2>\s*<input type="hidden" name="xsrf_token" '
                    r'value="([^"]*)"')


def stolen_seconds(before: tuple[int, int, int]) -> float:
    return (machine_ticks()[2] - before[2]) / os.sysconf("SC_CLK_TCK")


def timed(run) -> tuple[float, float]:
    """(wall seconds, stolen CPU seconds) of ``run()``."""
    ticks, began = machine_ticks(), time.perf_counter()
    run()
    return time.perf_counter() - began, stolen_seconds(ticks)


def cli_download(home: Path, target: Path, privacy: bool, server: list[str], env: dict[str, str]) -> None:
    target.unlink(missing_ok=True)
    extra = ["--privacy", "--privacy_secret", SECRET] if privacy else []
    done = subprocess.run([sys.executable, "-m", "courseport", "download", "datastore", "/sample", *server,
                           "--archive_path", str(target), *extra],
                          env={**os.environ, "COURSEPORT_HOME": str(home), "PYTHONPATH": str(ROOT / "src"), **env},
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the command line's download failed: {done.stderr.strip()}")


class Admin:
    """The admin's browser, without its JavaScript: the page's form, then its poll."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=120)
        page = self.http.get("/accounts/signin").text
        token = re.search(r'name="xsrf_token" value="([^"]*)"', page)
        assert token, "no sign-in form"
        answer = self.http.post("/accounts/signin", data={"xsrf_token": token.group(1), "email": ADMIN,
                                                          "password": PASSWORD, "continue": "/admin"})
        if answer.status_code != 302:
            raise SystemExit(f"the admin could not sign in: {answer.status_code}")

    def download(self, privacy: bool) -> dict:
        token = _TOKEN.search(self.http.get("/admin/archives").text)
        assert token, "no download form on /admin/archives"
        form = {"xsrf_token": token.group(1), "action": "export", "course": "/sample", "type": "datastore"}
        if privacy:
            form.update(privacy="on", secret=SECRET)
        answer = self.http.post("/admin/archives", data=form)
        if answer.status_code != 303:
            raise SystemExit(f"the download was refused: {answer.status_code} {answer.text[-300:]}")
        job_id = answer.headers["location"].rpartition("started=")[2]
        while True:
            job = next(j for j in self.http.get("/admin/archives/jobs").json()["jobs"] if j["id"] == job_id)
            if job["state"] != "running":
                break
            time.sleep(0.1)
        if job["state"] != "done":
            raise SystemExit(f"the browser's download failed: {job['message']}")
        self.http.post("/admin/archives", data={"xsrf_token": token.group(1), "action": "delete", "id": job_id})
        return job


def prepare(home: Path, students: int) -> None:
    if (home / "courseport.db").exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    courseport(home, "init")
    print(f"populating /sample with {students:,} learners (not timed) ...", file=sys.stderr)
    courseport(home, "populate", "/sample", "--students", str(students))
    subprocess.run([sys.executable, "-m", "courseport", "users", "add", ADMIN, "--admin"], input=PASSWORD + "\n",
                   env={**os.environ, "COURSEPORT_HOME": str(home), "PYTHONPATH": str(ROOT / "src")},
                   capture_output=True, text=True, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the store here, to reuse it")
    opts = parser.parse_args()
    work = opts.workdir or Path(tempfile.mkdtemp(prefix="courseport-archives-"))
    home = work / "home"
    prepare(home, opts.students)
    password = courseport(home, "app-password", "create", "--email", ADMIN, "--name", "benchmark").split()[-6:]
    signed_in = {"COURSEPORT_EMAIL": ADMIN, "COURSEPORT_APP_PASSWORD": " ".join(password)}
    port = free_port()
    server = start_server(home, port, opts.workers, work / "server.log")
    try:
        admin = Admin(f"http://{HOST}:{port}")
        rows = []
        for privacy in (False, True):
            best: dict[str, tuple[float, float]] = {}
            entities = 0
            for _ in range(opts.rounds):
                runs = {
                    "command line": lambda: cli_download(home, work / "cli.zip", privacy, ["local"], {}),
                    "command line via server": lambda: cli_download(
                        home, work / "remote.zip", privacy, ["localhost", "--port", str(port)], signed_in),
                }
                for name, run in runs.items():
                    figure = timed(run)
                    best[name] = min(best.get(name, figure), figure)
                job: dict = {}
                figure = timed(lambda: job.update(admin.download(privacy)))
                best["browser"] = min(best.get("browser", figure), figure)
                entities = job["rows"]
            rows.append((privacy, entities, best))
    finally:
        stop_server(server)
    print(f"\n{opts.students:,} learners in /sample; courseport serve --workers {opts.workers}; "
          f"best of {opts.rounds}; {os.cpu_count()} cores\n")
    print("| download | entities | command line | via server (API) | browser job | browser / command line | goal |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for privacy, entities, best in rows:
        cli, remote, browser = best["command line"], best["command line via server"], best["browser"]
        ratio = browser[0] / cli[0]
        print(f"| datastore{' --privacy' if privacy else ''} | {entities:,} | "
              f"{cli[0]:.2f} s ({entities / cli[0]:,.0f}/s) | {remote[0]:.2f} s | "
              f"{browser[0]:.2f} s ({entities / browser[0]:,.0f}/s) | {ratio:.2f}x | "
              f"{'met' if ratio <= GOAL else 'MISSED'} (<= {GOAL}x) |")
    stolen = max(figure[1] for _, _, best in rows for figure in best.values())
    print(f"\nmost CPU stolen by the hypervisor during one download: {stolen:.1f} s")


if __name__ == "__main__":
    main()
