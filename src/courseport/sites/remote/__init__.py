"""RemoteSite: the Site over a courseport server's remote API (HTTP).

``transport``: the server address, credentials, requests with retries and
answers checked for their shape; ``site``: RemoteSite (writes in pipelined
batches, the writer lease); ``reading``: a download's one export stream;
``jobs``: a job's course files and datastore client over the API.
"""

from .jobs import RemoteDatastore
from .site import RemoteSite
from .transport import (
    DEFAULT_PORT,
    Credentials,
    RemoteCourseNotFound,
    RemoteError,
    is_loopback_host,
    server_url,
)

__all__ = [
    "DEFAULT_PORT", "Credentials", "RemoteCourseNotFound", "RemoteDatastore", "RemoteError", "RemoteSite",
    "is_loopback_host", "server_url",
]
