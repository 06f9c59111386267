"""The Cloud Datastore emulator for tests: one per test session, started on first use.

Not a test module: tests import what they use (``tests/`` is on ``sys.path``)::

    from emulator import cloud_store, datastore_emulator  # noqa: F401

``datastore_emulator`` fixture: the emulator's ``host:port`` on 127.0.0.1: the
                       one ``.ci/run`` started (``$COURSEPORT_TEST_EMULATOR``,
                       scripts/emulator.sh), else one of its own, started under
                       its own process group with
                       ``--consistency=1.0`` (every row on a first scan; the
                       default 0.9 loses some, see test_cloud_datastore.py),
                       nothing on disk, its data and gcloud's config in a
                       temporary folder, Java's heap capped at 1 GiB. Stopped
                       at the end of the session by ``POST /shutdown``, then
                       its process group. Skipped, saying why, where gcloud or
                       the emulator is missing, unless
                       ``COURSEPORT_REQUIRE_EMULATOR=1`` (``.ci/run`` sets it):
                       then it fails.
``cloud_store(host)``  a ``CloudDatastoreBackend`` on it with a namespace
                       prefix of its own, so tests share the emulator and
                       never see each other's data.
``start_emulator``     one more emulator, with the options given (a test of
                       the default consistency starts its own).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

REQUIRE_ENV = "COURSEPORT_REQUIRE_EMULATOR"
PROJECT = "courseport-test"


def _why_missing() -> str | None:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return "gcloud (the Google Cloud SDK) is not installed"
    root = Path(os.path.realpath(gcloud)).parents[1]
    if not any((base / "platform" / "cloud-datastore-emulator").is_dir()
               for base in (root, root / "lib" / "google-cloud-sdk", Path("/usr/lib/google-cloud-sdk"))):
        return "the Cloud Datastore emulator (gcloud component cloud-datastore-emulator) is not installed"
    if shutil.which("java") is None:
        return "java, which the Cloud Datastore emulator runs on, is not installed"
    return None


def require_emulator() -> None:
    why = _why_missing()
    if why is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {why}")
    pytest.skip(f"Cloud Datastore emulator tests skipped: {why}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def start_emulator(*options: str, consistency: str | None = "1.0") -> Iterator[str]:
    """An emulator on 127.0.0.1 for the block: its ``host:port``."""
    require_emulator()
    port = _free_port()
    folder = Path(tempfile.mkdtemp(prefix="courseport-emulator-"))
    env = dict(os.environ, CLOUDSDK_CONFIG=str(folder / "gcloud"), JAVA_TOOL_OPTIONS="-Xmx1g",
               CLOUDSDK_CORE_DISABLE_PROMPTS="1")
    command = ["gcloud", "beta", "emulators", "datastore", "start", f"--host-port=127.0.0.1:{port}",
               "--no-store-on-disk", f"--project={PROJECT}", f"--data-dir={folder / 'data'}", *options]
    if consistency is not None:
        command.append(f"--consistency={consistency}")
    log = open(folder / "emulator.log", "wb")
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    host = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the emulator exited ({process.returncode}): "
                                   f"{(folder / 'emulator.log').read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://{host}/", timeout=1) as answer:
                    if answer.read().strip() == b"Ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the emulator did not answer within 60 s")
            time.sleep(0.2)
        yield host
    finally:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(urllib.request.Request(f"http://{host}/shutdown", method="POST"), timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the Java child, should gcloud have left it
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


#: an emulator started for the tests by ``.ci/run`` (scripts/emulator.sh), to use instead of one's own
ENV_RUNNING = "COURSEPORT_TEST_EMULATOR"


@pytest.fixture(scope="session")
def datastore_emulator() -> Iterator[str]:
    running = os.environ.get(ENV_RUNNING)
    if running:
        yield running
        return
    with start_emulator() as host:
        yield host


def fresh_prefix() -> str:
    return f"t{secrets.token_hex(4)}-"


def cloud_url(prefix: str | None = None, **options: str) -> str:
    """A ``datastore://`` address on the test project, with a namespace prefix of its own."""
    query = {"namespace_prefix": prefix if prefix is not None else fresh_prefix(), **options}
    return f"datastore://{PROJECT}?" + "&".join(f"{k}={v}" for k, v in query.items())


def cloud_store(host: str, **options: Any) -> Any:
    from courseport.datastore.cloud import CloudDatastoreBackend

    options.setdefault("namespace_prefix", fresh_prefix())
    return CloudDatastoreBackend(PROJECT, emulator=host, **options)
