"""The server argument: which Site etl talks to (DESIGN.md, "The server argument")."""

from __future__ import annotations

import contextlib
import getpass
import os
import sys
from pathlib import Path
from typing import Iterator

from ..datastore import is_store_url, open_store
from ..sites import LocalSite, Site
from ..sites.remote import DEFAULT_PORT, Credentials, RemoteSite, server_url
from .errors import EtlError

ENV_EMAIL = "COURSEPORT_EMAIL"
ENV_APP_PASSWORD = "COURSEPORT_APP_PASSWORD"


def open_site(server: str, *, port: int = DEFAULT_PORT, ca_file: str | os.PathLike[str] | None = None) -> Site:
    """The Site a server argument names (close it after use).

    ``local`` or ``sqlite:///path/file.db`` is a store on this machine, ``datastore://PROJECT``
    Google Cloud Datastore;
    ``localhost[:PORT]``, ``host.name`` and ``http(s)://host[:port]`` a
    courseport server, signed in with :func:`credentials`.
    """
    if is_store_url(server):
        return LocalSite(open_store(server, create=False))
    if "://" in server and not server.startswith(("http://", "https://")):
        raise EtlError(f"{server}: unknown server; use local, sqlite:///path/file.db, datastore://PROJECT, localhost[:PORT], "
                       "host.name or https://host[:port]")
    url = server_url(server, port)
    if ca_file is not None and not Path(ca_file).is_file():
        raise EtlError(f"--ca_file {ca_file}: no such file")
    return RemoteSite(url, credentials(url), ca_file=str(ca_file) if ca_file is not None else None)


def credentials(url: str) -> Credentials:
    """An admin's email and app-specific password: from ``COURSEPORT_EMAIL`` and
    ``COURSEPORT_APP_PASSWORD``, else asked for on a terminal (the password without echo)."""
    email = os.environ.get(ENV_EMAIL, "").strip()
    password = os.environ.get(ENV_APP_PASSWORD, "")
    interactive = sys.stdin is not None and sys.stdin.isatty()
    if not email:
        if not interactive:
            raise EtlError(f"{url} needs an admin's email: set {ENV_EMAIL} (and {ENV_APP_PASSWORD})")
        sys.stderr.write(f"email of an admin of {url}: ")
        sys.stderr.flush()
        email = sys.stdin.readline().strip()
    if not password:
        if not interactive:
            raise EtlError(f"{url} needs an app-specific password: set {ENV_APP_PASSWORD} "
                           "('courseport app-password create' on the server makes one)")
        password = getpass.getpass(f"app-specific password for {email}: ")
    if not email or not password:
        raise EtlError(f"{url} needs an admin's email and app-specific password")
    return Credentials(email, password)


@contextlib.contextmanager
def using_site(server: str | Site, *, port: int = DEFAULT_PORT,
               ca_file: str | os.PathLike[str] | None = None) -> Iterator[Site]:
    """A Site given as it is (the caller closes it), or opened from a server argument and closed after."""
    if isinstance(server, Site):
        yield server
        return
    site = open_site(server, port=port, ca_file=ca_file)
    try:
        yield site
    finally:
        site.close()
