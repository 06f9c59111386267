"""``courseport serve``: the server under uvicorn."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from ..datastore import open_store
from ..errors import UserError
from . import ENV_DATASTORE, ENV_INSECURE, log_to_stderr
from .archives import disk_reserve

DEFAULT_PORT = 8081  # Course Builder's etl default


class ServeError(UserError, ValueError):
    """Options that cannot serve; the message says which and what to do."""


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    datastore: str = "local"
    workers: int = 1
    certfile: Path | None = None
    keyfile: Path | None = None
    allow_insecure_http: bool = False
    forwarded_allow_ips: str | None = None
    log_level: str = "info"
    access_log: bool = False  # as gunicorn: a line per request only when asked for


def check(options: ServeOptions) -> str:
    """Refuse options that cannot work before anything starts; the store's description."""
    if not 0 < options.port < 65536:
        raise ServeError(f"--port must be between 1 and 65535, not {options.port}")
    if not 1 <= options.workers <= 64:
        raise ServeError(f"--workers must be between 1 and 64, not {options.workers}")
    if (options.certfile is None) != (options.keyfile is None):
        raise ServeError("--certfile and --keyfile go together: give both for https, or neither")
    for path in (options.certfile, options.keyfile):
        if path is not None and not path.is_file():
            raise ServeError(f"no such file {path}")
    _check_address(options.host, options.port)
    disk_reserve()  # a bad COURSEPORT_DISK_RESERVE_MB is said now, not on the first upload
    with open_store(options.datastore, create=False) as store:
        return f"{store.url} (app id {store.app_id!r})"


def _check_address(host: str, port: int) -> None:
    """Refuse, in one line, an address this machine cannot listen on (uvicorn would
    say it in several lines, after starting up)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}; stop what uses it, "
                             "or pass another --port or --host") from None


def serve(options: ServeOptions) -> None:
    import uvicorn

    log_to_stderr()
    described = check(options)
    os.environ[ENV_DATASTORE] = options.datastore
    os.environ[ENV_INSECURE] = "1" if options.allow_insecure_http else "0"
    scheme = "https" if options.certfile else "http"
    logging.getLogger("courseport").info("serving %s at %s://%s:%d", described, scheme, options.host, options.port)
    uvicorn.run(
        "courseport.server:app_from_environment", factory=True,
        host=options.host, port=options.port, workers=options.workers,
        ssl_certfile=str(options.certfile) if options.certfile else None,
        ssl_keyfile=str(options.keyfile) if options.keyfile else None,
        proxy_headers=options.forwarded_allow_ips is not None,
        forwarded_allow_ips=options.forwarded_allow_ips,
        log_level=options.log_level, timeout_keep_alive=30, access_log=options.access_log,
    )
