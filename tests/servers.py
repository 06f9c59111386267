"""A real ``courseport serve`` on 127.0.0.1 for tests, and a TCP proxy to misbehave in front of it.

``start_server(home)`` adds an admin and an app-specific password to the
store under ``home`` (through the real command line), starts the server in
its own process group, waits until it answers, and returns a
:class:`Server`; ``server.stop()`` ends the group. ``Proxy`` forwards a port
to the server, slowly or cutting connections, to test retries and kills.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from conftest import cli_at, cli_env

ADMIN = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    home: Path
    port: int
    process: subprocess.Popen
    log: Path
    app_password: str
    scheme: str = "http"
    host: str = "127.0.0.1"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """What a client's environment needs to sign in."""
        return {"COURSEPORT_EMAIL": ADMIN, "COURSEPORT_APP_PASSWORD": self.app_password}

    def cli(self, *args: Any, **kwargs: Any) -> subprocess.CompletedProcess:
        """The command line against ``home``, signed in as the admin."""
        extra = dict(self.env)
        extra.update(kwargs.pop("extra_env", None) or {})
        return cli_at(self.home, *args, extra_env=extra, **kwargs)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL to the server's own process (not its group): what it started must end by itself."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def add_admin(home: Path, email: str = ADMIN, *, admin: bool = True, datastore: str = "local",
              env: dict[str, str] | None = None) -> str:
    """An account (through the CLI) and a new app-specific password for it, returned."""
    proc = cli_at(home, "users", "add", email, *(["--admin"] if admin else []), "--datastore", datastore,
                  input=ADMIN_PASSWORD + "\n", extra_env=env)
    assert proc.returncode == 0, proc.stderr
    proc = cli_at(home, "app-password", "create", "--email", email, "--name", "tests", "--datastore", datastore,
                  extra_env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def start_server(home: Path, *args: str, app_password: str | None = None, host: str = "127.0.0.1",
                 scheme: str = "http", verify: Any = False, env: dict[str, str] | None = None,
                 datastore: str = "local") -> Server:
    """``courseport serve`` on ``datastore`` (the home's store by default), with an admin."""
    password = app_password or add_admin(home, datastore=datastore, env=env)
    if datastore != "local":
        args = (*args, "--datastore", datastore)
    port = free_port()
    log = home.parent / f"server-{port}.log"
    full_env = cli_env(home)
    full_env.update(env or {})
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "courseport", "serve", "--port", str(port), "--host", host, *args],
            env=full_env, cwd=home.parent, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = Server(home, port, process, log, password, scheme=scheme,
                    host="127.0.0.1" if host in ("0.0.0.0", "127.0.0.1") else host)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the server exited ({process.returncode}): {server.log_text()}")
        try:
            if httpx.get(f"{server.url}/api/v1/openapi.json", timeout=2, verify=verify).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"the server did not answer within 30 s: {server.log_text()}")
        time.sleep(0.05)


class Proxy:
    """Forwards 127.0.0.1:port to a server, each way in chunks.

    ``delay`` sleeps after every chunk the server sends (a slow network);
    ``cut_after`` closes the first connection that has carried that many bytes
    from the server (a dropped connection), once.
    """

    def __init__(self, target_port: int, *, delay: float = 0.0, chunk: int = 16384,
                 cut_after: int | None = None) -> None:
        self.target_port = target_port
        self.delay, self.chunk, self.cut_after = delay, chunk, cut_after
        self.cuts = 0
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_server: bool) -> None:
        carried = 0
        try:
            while True:
                data = source.recv(self.chunk)
                if not data:
                    break
                sink.sendall(data)
                carried += len(data)
                if from_server:
                    if self.delay:
                        time.sleep(self.delay)
                    if self.cut_after is not None and self.cuts == 0 and carried >= self.cut_after:
                        self.cuts += 1
                        break
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def close(self) -> None:
        self._closed = True
        self.listener.close()
