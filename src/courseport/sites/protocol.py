"""The remote API's contract, which the server (``server/``) and RemoteSite both keep.

Neither imports the other; both import this: the API's path, its limits, and
the header in which a writer names its lease.
"""

API = "/api/v1"
#: the most keys, entities or rows one request may name, carry or ask for
MAX_ITEMS = 20_000
#: the largest body of a put, and the largest entity in it (Cloud Datastore's own limit)
MAX_BATCH_BYTES = 64 << 20
MAX_ENTITY_BYTES = 1 << 20
#: the largest JSON request body
MAX_JSON_BYTES = 8 << 20
#: the header in which a writer names its lease (see ``datastore/lease.py``)
LEASE_HEADER = "X-Courseport-Lease"
