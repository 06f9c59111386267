"""Archive jobs: downloads and uploads that admins start from the admin pages.

A job is the command line itself (``courseport download|upload ...
--progress_json``), run as a child process by a thread of the server: it
checks and refuses exactly as the command line does, keeps the server's
workers free for learners, and writes its archive as the command line
does, under a temporary name renamed into place when complete. The thread
reads the child's JSON progress and keeps the job's record (a
``CourseportArchiveJob`` row in the accounts' namespace, so that every
worker sees it) up to date twice a second.

The child ends when its thread's process does (``COURSEPORT_DIE_WITH_PARENT``);
the thread holds a lock file for the job while it runs. A running job whose
lock nobody holds any more lost its server (killed, restarted): whoever
looks at the jobs next marks it failed and removes what it left. An admin
may cancel a running download from any worker: the request is a record of
its own, which the job's thread looks for twice a second; it kills the
child and removes the partial archive. (An upload is not cancelled: stopped
halfway it would leave its course half-written.)

Files live in ``$COURSEPORT_HOME/exports`` (a folder only this user may
read), named after their course, type and job; they go once older than the
``export_retention_days`` site setting. An upload's archive is kept in
``$COURSEPORT_HOME/imports`` only while its job runs.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Sequence

from .._locks import LockedError, exclusive, is_held
from .._workers import ENV_DIE_WITH_PARENT
from ..archive import ArchiveError, open_reader
from ..courses.rules import ACCOUNTS_NAMESPACE
from ..datastore import Backend, Entity, Key, home_dir, utcnow
from ..errors import UserError, describe_os_error

log = logging.getLogger("courseport.server")

KIND = "CourseportArchiveJob"
CANCEL_KIND = "CourseportArchiveJobCancel"  # an admin's request to stop a running download, seen by any worker
#: jobs one server runs at once (each is a process that keeps a core busy)
MAX_RUNNING = 4
#: how often a running job's record is written
SAVE_EVERY = 0.5
#: how often the thread that runs a job looks for a request to cancel it
CANCEL_CHECK_EVERY = 0.5
#: the rate is measured over this many seconds, so that the ETA follows the work as it is now
RATE_WINDOW = 5.0
_ERROR_PREFIXES = ("courseport: error: ", "courseport: ")
_PRIVACY_ENV = "COURSEPORT_PRIVACY_SECRET"  # the secret goes to the child by its environment, never its argv
#: the free disk space (MiB) a posted archive must leave, for the store and the learners who write to it
ENV_DISK_RESERVE = "COURSEPORT_DISK_RESERVE_MB"
DEFAULT_DISK_RESERVE_MB = 1024


class ArchiveJobError(UserError, ValueError):
    """A job that cannot be started, or is not there."""


@dataclass
class ArchiveJob:
    id: str
    action: str  # download | upload
    type: str  # course | datastore
    course: str
    who: str
    options: str  # the choices, as words: never a secret
    state: str = "running"  # running | done | failed | cancelled
    started: _dt.datetime = field(default_factory=utcnow)
    ended: _dt.datetime | None = None
    done: int = 0
    total: int | None = None
    rate: float = 0.0
    message: str = ""
    file: str | None = None  # a download's archive, under the exports folder
    size: int | None = None
    rows: int | None = None
    sha256: str | None = None

    @property
    def key(self) -> Key:
        return Key(KIND, self.id, namespace=ACCOUNTS_NAMESPACE)

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate, where the total is known."""
        if self.state != "running" or not self.total or self.rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / self.rate)

    def entity(self) -> Entity:
        return Entity(self.key, {name: value for name, value in asdict(self).items() if name != "id"})

    @classmethod
    def from_entity(cls, entity: Entity) -> ArchiveJob:
        names = cls.__dataclass_fields__
        return cls(id=str(entity.key.name), **{k: v for k, v in entity.items() if k in names and k != "id"})

    def public(self) -> dict[str, Any]:
        """What the admin pages' poll answers."""
        data = asdict(self)
        data.update(started=_iso(self.started), ended=_iso(self.ended), eta=self.eta,
                    seconds=((self.ended or utcnow()) - self.started).total_seconds())
        return data


def _iso(when: _dt.datetime | None) -> str | None:
    return None if when is None else when.replace(microsecond=0).isoformat() + "Z"


class _Tracker:
    """A child's JSON progress lines, summed over its tasks."""

    def __init__(self) -> None:
        self.plan: dict[str, int | None] = {}
        self.tasks: dict[str, int] = {}
        self._samples: deque[tuple[float, int]] = deque()

    def feed(self, data: dict) -> None:
        if isinstance(data.get("plan"), dict):
            self.plan.update({str(k): v if isinstance(v, int) else None for k, v in data["plan"].items()})
        elif isinstance(data.get("task"), str) and isinstance(data.get("done"), int):
            self.tasks[data["task"]] = data["done"]
            total = data.get("total")
            if data["task"] not in self.plan:
                self.plan[data["task"]] = total if isinstance(total, int) else None
        now = time.monotonic()
        self._samples.append((now, self.done))
        while len(self._samples) > 2 and now - self._samples[1][0] > RATE_WINDOW:
            self._samples.popleft()

    @property
    def done(self) -> int:
        return sum(self.tasks.values())

    @property
    def total(self) -> int | None:
        totals = list(self.plan.values())
        if not totals or any(t is None for t in totals):
            return None
        return max(sum(t for t in totals if t is not None), self.done)

    @property
    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0


class ArchiveJobs:
    """The archive jobs of one store, and the folders their files live in."""

    def __init__(self, store: Backend, home: Path | None = None,
                 command: Sequence[str] = (sys.executable, "-m", "courseport")) -> None:
        self.store = store
        home = home if home is not None else home_dir()
        self.exports = home / "exports"
        self.imports = home / "imports"
        self.command = list(command)
        self._running: dict[str, tuple[threading.Thread, subprocess.Popen | None]] = {}
        self._stopping = False

    # --- reading ---------------------------------------------------------------

    def all(self) -> list[ArchiveJob]:
        """Every job, the newest first (running jobs whose server died marked failed first)."""
        jobs = [ArchiveJob.from_entity(e) for e in self.store.query(KIND, ACCOUNTS_NAMESPACE)]
        for job in jobs:
            if self._orphaned(job):
                self._fail_orphan(job)
        return sorted(jobs, key=lambda job: job.started, reverse=True)

    def get(self, job_id: str) -> ArchiveJob:
        entity = self.store.get(Key(KIND, job_id, namespace=ACCOUNTS_NAMESPACE)) if _is_id(job_id) else None
        if entity is None:
            raise ArchiveJobError(f"no archive job {job_id!r}: it ended long ago, or was deleted")
        return ArchiveJob.from_entity(entity)

    def file_of(self, job_id: str) -> Path:
        """A finished download's archive."""
        job = self.get(job_id)
        if job.action != "download" or job.state != "done" or not job.file:
            raise ArchiveJobError(f"archive job {job_id} has no archive to download (it is {job.state})")
        path = self.exports / job.file
        if not path.is_file():
            raise ArchiveJobError(f"the archive of job {job_id} is gone from the server: export it again")
        return path

    # --- starting --------------------------------------------------------------

    def start_download(self, who: str, course: str, type: str, *, privacy: bool = False,
                       secret: str | None = None, kinds: Sequence[str] = (),
                       exclude: Sequence[str] = ()) -> ArchiveJob:
        _check_type(type)
        if type == "course" and (privacy or kinds or exclude):
            raise ArchiveJobError("privacy and kinds apply to a datastore download: a course carries its course kinds")
        if secret and not privacy:
            raise ArchiveJobError("a privacy secret goes with privacy: tick it, or leave the secret empty")
        job = self._new("download", type, course, who, _download_options(privacy, secret, kinds, exclude))
        job.file = f"{_file_stem(course)}-{type}-{job.id}.zip"
        argv = ["download", type, course, self.store.url, f"--archive_path={self.exports / job.file}"]
        if privacy:
            argv.append("--privacy")
        if kinds:
            argv.append("--datastore_types=" + ",".join(kinds))
        if exclude:
            argv.append("--exclude_types=" + ",".join(exclude))
        self._folder(self.exports)
        return self._start(job, argv, {_PRIVACY_ENV: secret} if privacy and secret else {})

    def start_upload(self, who: str, course: str, type: str, archive: BinaryIO, name: str) -> ArchiveJob:
        """Upload ``archive`` (a posted file, read here into the imports folder) into ``course``."""
        _check_type(type)
        job = self._new("upload", type, course, who, f"from {name or 'an archive'}")
        source = self._folder(self.imports) / f"{job.id}.zip"
        try:
            with _private_file(source) as out:
                while chunk := archive.read(1 << 20):
                    out.write(chunk)
        except OSError as exc:  # a full disk, most likely
            source.unlink(missing_ok=True)
            raise ArchiveJobError(f"the server could not keep the archive: {describe_os_error(exc)}") from None
        argv = ["upload", type, course, self.store.url, f"--archive_path={source}", "--archive_type=zip"]
        try:
            return self._start(job, argv, {}, remove_after=source)
        except BaseException:
            source.unlink(missing_ok=True)
            raise

    def check_room(self, size: int) -> None:
        """Refuse a posted archive of ``size`` bytes that would leave the server's disk with less
        than the reserve free: it is kept twice while it is received (the request's spool in the
        temporary folder, then the imports folder), and a full disk stops learners' writes too."""
        reserve = disk_reserve()
        need: dict[int, int] = {}
        free: dict[int, int] = {}
        for folder in (Path(tempfile.gettempdir()), self._existing(self.imports)):
            device = folder.stat().st_dev
            need[device] = need.get(device, 0) + size
            free[device] = shutil.disk_usage(folder).free
        for device, wanted in need.items():
            if wanted + reserve > free[device]:
                raise ArchiveJobError(
                    f"this archive ({_mib(size)}) would leave less than {_mib(reserve)} free on the server's disk "
                    f"(it has {_mib(free[device])} free, and keeps an upload twice while receiving it): free some "
                    "space, or upload it with the command line ('courseport upload ... --archive_path')")

    @staticmethod
    def _existing(path: Path) -> Path:
        while not path.exists() and path != path.parent:
            path = path.parent
        return path

    def _new(self, action: str, type: str, course: str, who: str, options: str) -> ArchiveJob:
        running = [job for job in self.all() if job.state == "running"]
        if len(running) >= MAX_RUNNING:
            raise ArchiveJobError(f"{len(running)} archive jobs are running already: wait for one to end")
        stamp = utcnow()
        return ArchiveJob(f"{stamp:%Y%m%d%H%M%S}-{secrets.token_hex(4)}", action, type, course, who, options,
                          started=stamp)

    def _start(self, job: ArchiveJob, argv: list[str], env: dict[str, str],
               remove_after: Path | None = None) -> ArchiveJob:
        started = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(target=self._run, name=f"archive-job-{job.id}", daemon=True,
                                  args=(job, argv, env, remove_after, started, failure))
        self._running[job.id] = (thread, None)
        thread.start()
        started.wait()
        if failure:
            raise failure[0]
        return job

    # --- running ---------------------------------------------------------------

    def _run(self, job: ArchiveJob, argv: list[str], env: dict[str, str], remove_after: Path | None,
             started: threading.Event, failure: list[BaseException]) -> None:
        try:
            lock = exclusive(str(self._lock(job.id)), f"archive job {job.id}", subject=f"archive job {job.id}",
                             fix="it is running already", wait=2.0)
            lock.__enter__()
        except BaseException as exc:  # noqa: BLE001 - said to the request that started it
            failure.append(exc)
            started.set()
            return
        try:
            if self._stopping:
                raise ArchiveJobError("the server is stopping: start the job again once it is back")
            self._save(job)
            process = self._spawn(argv, env)
            self._running[job.id] = (threading.current_thread(), process)
        except BaseException as exc:  # noqa: BLE001
            failure.append(exc)
            self._finish(job, "failed", f"could not start: {exc}")
            lock.__exit__(None, None, None)
            self._running.pop(job.id, None)
            started.set()
            return
        started.set()
        ended = threading.Event()
        cancelled_by: list[str] = []
        watcher = threading.Thread(target=self._watch_for_cancel, name=f"archive-job-{job.id}-cancel", daemon=True,
                                   args=(job, process, ended, cancelled_by))
        watcher.start()
        try:
            self._follow(job, process, cancelled_by)
        except BaseException as exc:  # noqa: BLE001 - a job's failure is said on its record, never raised
            log.exception("archive job %s", job.id)
            with contextlib.suppress(Exception):
                process.kill()
            self._finish(job, "failed", f"internal error: {exc}")
        finally:
            ended.set()
            watcher.join()
            if remove_after is not None:
                remove_after.unlink(missing_ok=True)
            lock.__exit__(None, None, None)
            self._running.pop(job.id, None)

    def _watch_for_cancel(self, job: ArchiveJob, process: subprocess.Popen, ended: threading.Event,
                          cancelled_by: list[str]) -> None:
        """Until the job ends: kill its child once an admin asks to cancel it (from any worker)."""
        while not ended.wait(CANCEL_CHECK_EVERY):
            try:
                asked = self.store.get(self._cancel_key(job.id))
            except Exception:  # noqa: BLE001 - the store busy a moment: look again
                log.warning("archive job %s: could not look for a cancel request", job.id, exc_info=True)
                continue
            if asked is not None:
                cancelled_by.append(str(asked.get("who") or "an admin"))
                with contextlib.suppress(OSError):
                    process.kill()
                return

    def _spawn(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        child_env = {k: v for k, v in os.environ.items() if k not in (_PRIVACY_ENV, "COURSEPORT_APP_PASSWORD")}
        child_env.update(env, PYTHONUNBUFFERED="1", **{ENV_DIE_WITH_PARENT: str(os.getpid())})
        return subprocess.Popen(self.command + argv + ["--progress_json"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=child_env,
                                text=True, encoding="utf-8", errors="replace", close_fds=True)

    def _follow(self, job: ArchiveJob, process: subprocess.Popen, cancelled_by: Sequence[str] = ()) -> None:
        tracker = _Tracker()
        said: list[str] = []  # what is not progress: warnings, the error, the summary
        saved = time.monotonic()
        assert process.stdout is not None
        for line in process.stdout:
            data = _progress_line(line)
            if data is None:
                if line.strip():
                    said.append(line.strip())
                    del said[:-20]
                continue
            tracker.feed(data)
            if time.monotonic() - saved >= SAVE_EVERY:
                job.done, job.total, job.rate = tracker.done, tracker.total, tracker.rate
                self._save(job)
                saved = time.monotonic()
        status = process.wait()
        job.done, job.total = tracker.done, tracker.total
        if status == 0:
            self._succeed(job, said)
        elif cancelled_by:
            self._finish(job, "cancelled", f"cancelled by {cancelled_by[0]}: its partial archive was removed")
        else:
            self._finish(job, "failed", _ORPHANED if self._stopping else self._without_paths(_failure(said, status)))

    def _succeed(self, job: ArchiveJob, said: list[str]) -> None:
        summary = said[-1] if said else ""
        if job.action == "download" and job.file:
            path = self.exports / job.file
            try:
                job.size, job.rows, job.sha256 = _describe(path)
            except (OSError, ArchiveError) as exc:
                self._finish(job, "failed", f"the archive could not be read back: {exc}")
                return
        summary = self._without_paths(summary)
        warnings = [line.partition(": ")[2] for line in said if line.startswith("WARNING: ")]
        self._finish(job, "done", "; ".join([summary, *warnings[:3]]).strip("; "))

    def _without_paths(self, text: str) -> str:
        """A message with this server's own folders left out (an admin sees only file names)."""
        for folder in (self.imports, self.exports):
            text = text.replace(f"{folder}/", "")
        return text

    def _finish(self, job: ArchiveJob, state: str, message: str) -> None:
        """The job ended: its record says how, its cancel request (if any) goes, and what a
        job that did not succeed left is removed."""
        job.state, job.message, job.ended = state, message[:1000], utcnow()
        if state != "done":
            self._remove_files(job)
        self._save(job)
        with contextlib.suppress(Exception):  # a cancel request left behind is removed with the job
            self.store.delete(self._cancel_key(job.id))
        log.info("archive job %s (%s %s %s by %s): %s", job.id, job.action, job.type, job.course, job.who, state)

    def _save(self, job: ArchiveJob) -> None:
        self.store.put(job.entity())

    # --- ending ----------------------------------------------------------------

    def stop(self, wait: float = 10.0) -> None:
        """The server is stopping: end this process's running jobs (each is marked failed)."""
        self._stopping = True
        for _, process in list(self._running.values()):
            if process is not None:
                with contextlib.suppress(OSError):
                    process.kill()
        deadline = time.monotonic() + wait
        for thread, _ in list(self._running.values()):
            thread.join(max(0.0, deadline - time.monotonic()))

    def cancel(self, job_id: str, who: str) -> ArchiveJob:
        """Ask a running download to stop; the server that runs it ends it within a second."""
        job = self.get(job_id)
        if job.state != "running":
            raise ArchiveJobError(f"archive job {job_id} has ended already ({job.state})")
        if job.action != "download":
            raise ArchiveJobError(f"archive job {job_id} is an upload: stopped halfway it would leave course "
                                  f"{job.course} half-written; let it end")
        self.store.put(Entity(self._cancel_key(job.id), {"who": who, "asked": utcnow()}))
        return job

    def delete(self, job_id: str) -> ArchiveJob:
        job = self.get(job_id)
        if job.state == "running":
            raise ArchiveJobError(f"archive job {job_id} is still running: cancel it, or wait for it to end")
        self._forget(job)
        return job

    def recover(self) -> list[ArchiveJob]:
        """Mark failed the running jobs nobody runs any more (their server stopped),
        removing what they left; the jobs so marked."""
        orphans = [job for job in map(ArchiveJob.from_entity, self.store.query(KIND, ACCOUNTS_NAMESPACE))
                   if self._orphaned(job)]
        for job in orphans:
            self._fail_orphan(job)
        return orphans

    def expire(self, days: int, now: _dt.datetime | None = None) -> list[ArchiveJob]:
        """Remove the files (and the records) of jobs that ended more than ``days`` ago."""
        cutoff = (now or utcnow()) - _dt.timedelta(days=days)
        gone = [job for job in self.all() if job.state != "running" and (job.ended or job.started) < cutoff]
        for job in gone:
            self._forget(job)
        return gone

    def _forget(self, job: ArchiveJob) -> None:
        """An ended job gone: its files, its record and any cancel request."""
        self._remove_files(job)
        self.store.delete_multi([job.key, self._cancel_key(job.id)])

    def _orphaned(self, job: ArchiveJob) -> bool:
        """Running, by its record, but its lock is left unheld: its process died. (A job
        with no lock file here is another machine's, or has just ended.)"""
        return job.state == "running" and is_held(str(self._lock(job.id))) is False

    def _fail_orphan(self, job: ArchiveJob) -> None:
        with contextlib.suppress(OSError):
            self._lock(job.id).unlink()
        self._finish(job, "failed", _ORPHANED)

    def _remove_files(self, job: ArchiveJob) -> None:
        if job.file:
            for path in _archive_files(self.exports, job.file):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            job.file = job.size = job.sha256 = None  # type: ignore[assignment]
        if job.action == "upload":
            with contextlib.suppress(FileNotFoundError):
                (self.imports / f"{job.id}.zip").unlink()

    @staticmethod
    def _cancel_key(job_id: str) -> Key:
        return Key(CANCEL_KIND, job_id, namespace=ACCOUNTS_NAMESPACE)

    def _lock(self, job_id: str) -> Path:
        return self.exports / f".{job_id}.lock"

    @staticmethod
    def _folder(path: Path) -> Path:
        """``path``, a folder only this user may read (made if missing)."""
        try:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        except FileExistsError:
            pass
        if path.is_symlink() or not path.is_dir():
            raise ArchiveJobError(f"{path} is not a folder: move it away, and the server makes the folder it needs")
        os.chmod(path, 0o700)  # archives hold learners' data: this user's alone
        return path


_ORPHANED = "the server stopped while this job ran: nothing it wrote was kept; start it again"


def disk_reserve() -> int:
    """The free space (bytes) a posted archive must leave: ``COURSEPORT_DISK_RESERVE_MB``, or 1 GiB."""
    text = os.environ.get(ENV_DISK_RESERVE, "").strip()
    try:
        return max(0, int(text)) << 20 if text else DEFAULT_DISK_RESERVE_MB << 20
    except ValueError:
        raise ArchiveJobError(f"{ENV_DISK_RESERVE}={text!r} is not a number of MiB: fix it in the server's "
                              "environment, or unset it for the default (1024)") from None


def _mib(size: int) -> str:
    return f"{size / (1 << 20):,.1f} MiB"


def _is_id(text: str) -> bool:
    return 0 < len(text) <= 40 and all(c.isalnum() or c == "-" for c in text)


def _check_type(type: str) -> None:
    if type not in ("course", "datastore"):
        raise ArchiveJobError(f"type must be 'course' or 'datastore', not {type!r}")


def _file_stem(course: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in course.strip("/")) or "root"


def _download_options(privacy: bool, secret: str | None, kinds: Iterable[str], exclude: Iterable[str]) -> str:
    words = []
    if privacy:
        words.append("privacy, with the admin's secret" if secret else "privacy, with a random secret")
    if kinds:
        words.append("kinds " + ", ".join(kinds))
    if exclude:
        words.append("without " + ", ".join(exclude))
    return "; ".join(words) or "everything"


def _progress_line(line: str) -> dict | None:
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _failure(said: list[str], status: int) -> str:
    for line in reversed(said):
        for prefix in _ERROR_PREFIXES:
            if line.startswith(prefix):
                return line[len(prefix):]
    return f"the command stopped with exit status {status}"


def _describe(path: Path) -> tuple[int, int, str]:
    """An archive's size, rows (from its manifest) and SHA-256."""
    with open_reader(path, "zip") as reader:
        rows = sum(entry.rows or 0 for entry in reader.manifest().entries)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return path.stat().st_size, rows, digest.hexdigest()


def _archive_files(folder: Path, name: str) -> list[Path]:
    """An archive and what a download leaves beside it while it runs (``.partial``,
    its checkpoint and record, ``.lock``): every name it begins, a job's own."""
    try:
        return [folder / found for found in os.listdir(folder) if found.startswith(name)]
    except FileNotFoundError:
        return []


@contextlib.contextmanager
def _private_file(path: Path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        yield f


__all__ = ["ArchiveJob", "ArchiveJobs", "ArchiveJobError", "LockedError", "MAX_RUNNING"]
