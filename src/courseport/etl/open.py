"""The server argument: which Site etl talks to (DESIGN.md, "The server argument")."""

from __future__ import annotations

import contextlib
from typing import Iterator

from ..datastore import is_store_url, open_store
from ..sites import LocalSite, Site
from .errors import EtlError


def open_site(server: str) -> Site:
    """The Site a server argument names: ``local`` or ``sqlite:///path/file.db`` (close it after use)."""
    if is_store_url(server):
        return LocalSite(open_store(server, create=False))
    if server.startswith("datastore://"):
        raise EtlError(
            f"{server}: Google Cloud Datastore is not supported yet; use 'local' or sqlite:///path/file.db"
        )
    raise EtlError(
        f"{server}: remote courseport servers are not supported yet; "
        "use 'local' (the store under COURSEPORT_HOME) or sqlite:///path/file.db"
    )


@contextlib.contextmanager
def using_site(server: str | Site) -> Iterator[Site]:
    """A Site given as it is (the caller closes it), or opened from a server argument and closed after."""
    if isinstance(server, Site):
        yield server
        return
    site = open_site(server)
    try:
        yield site
    finally:
        site.close()
