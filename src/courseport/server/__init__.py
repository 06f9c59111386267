"""The course server: the remote API, the learner's web (pages, sign-in, events); admin pages next.

>>> from courseport.server import create_app
>>> app = create_app("sqlite:///course.db")  # doctest: +SKIP

``courseport serve`` runs it under uvicorn. The application keeps no state
between requests but the open store, so several workers, or several
machines on one shared store, serve together.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import AsyncIterator

from starlette.applications import Starlette

from ..datastore import Backend, open_store
from .api import Api
from .auth import AuthPolicy
from .web.app import Web

#: how ``courseport serve`` tells each worker process what to serve
ENV_DATASTORE = "COURSEPORT_SERVE_DATASTORE"
ENV_INSECURE = "COURSEPORT_SERVE_ALLOW_INSECURE_HTTP"

__all__ = ["create_app", "app_from_environment", "log_to_stderr"]


def log_to_stderr(level: int = logging.INFO) -> None:
    """The server's own lines (who exported or changed what; failed sign-ins) on
    stderr, beside uvicorn's: never a password, nor a privacy secret."""
    logger = logging.getLogger("courseport")
    if not any(getattr(h, "_courseport_server", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        handler._courseport_server = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def create_app(store: str | Backend, *, allow_insecure_http: bool = False) -> Starlette:
    """The server's ASGI application over ``store`` (a --datastore name, or an open Backend)."""
    opened = open_store(store, create=False) if isinstance(store, str) else store
    api = Api(opened, AuthPolicy(allow_insecure_http=allow_insecure_http))
    web = Web(opened)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        web.start()
        try:
            yield
        finally:
            api.close()
            web.close()
            if isinstance(store, str):
                opened.close()

    return Starlette(routes=api.routes() + web.routes(), lifespan=lifespan)


def app_from_environment() -> Starlette:
    """The application ``courseport serve`` starts in each worker (uvicorn's factory)."""
    log_to_stderr()
    return create_app(os.environ.get(ENV_DATASTORE, "local"),
                      allow_insecure_http=os.environ.get(ENV_INSECURE) == "1")
