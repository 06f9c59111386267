"""The server argument: which Site etl talks to (DESIGN.md, "The server argument")."""

from __future__ import annotations

from ..datastore import is_store_url, open_store
from ..sites import LocalSite, Site
from .args import EtlArgs
from .errors import EtlError


def open_site(args: EtlArgs) -> Site:
    server = args.server
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
