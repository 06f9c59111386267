"""Google Cloud Datastore (Firestore in Datastore mode) as a courseport store.

``datastore://PROJECT[?database=DB&namespace_prefix=P&location_prefix=s~]``;
with ``DATASTORE_EMULATOR_HOST`` set, the emulator at that address (as
Google's client libraries do). Needs ``pip install courseport[gcp]``.

Entities go over the service's gRPC API as protobufs built here (not through
``google.cloud.datastore``'s Entity), so that each value keeps its type:

==================  ==================================================
``str``             string, indexed (a string over 1,500 bytes cannot be)
``Text``            string, excluded from indexes (App Engine's Text)
``bytes``           blob, excluded from indexes (App Engine's Blob)
``datetime``        timestamp (microseconds)
``date``            timestamp of its midnight, as App Engine stores a
                    DateProperty: it reads back as that datetime (the
                    service has no date type)
``Key``             key
``list``            array, each value indexed or not as it would be alone
``dict``            embedded entity
==================  ==================================================

and reads back as Course Builder's App Engine models wrote them: a string
excluded from indexes (or of meaning TEXT) is ``Text``, any blob ``bytes``.

Within the service's limits: at most 500 mutations and about 10 MiB a commit,
1,000 keys a lookup. Queries run in key order with the service's cursors
(wrapped, so that a cursor of another query is refused); a snapshot reads
at one ``read_time`` (which the emulator accepts and ignores). Ids are
allocated by the service, and explicit ids are reserved with it, so the two
never meet. ``namespace_prefix`` keeps one site's namespaces apart from
others' in one database; courseport's own records (the store's meta) live in
the namespace ``<prefix>courseport-meta``, which is never listed.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
import socket
import threading
import time
import urllib.parse
from typing import Any, Iterator, Sequence

from .. import _locks
from . import lease
from .backend import Backend, BadCursorError, DatastoreError, Page, Reader, cursor_bytes, cursor_text
from .entity import Entity, Text
from .keys import Key

#: the service's limits (https://cloud.google.com/datastore/docs/concepts/limits)
MAX_MUTATIONS = 500
MAX_COMMIT_BYTES = 9 * 1024 * 1024  # of the 10 MiB a commit may carry, leaving room for the request around them
#: the emulator takes no request over 4 MiB (gRPC's default), the service's limit notwithstanding
EMULATOR_COMMIT_BYTES = 3 * 1024 * 1024 + 512 * 1024
MAX_LOOKUP = 1000
MAX_INDEXED_BYTES = 1500
MAX_ENTITY_BYTES = 1_048_572  # 1 MiB less 4 bytes (the emulator does not check it; the service does)
#: App Engine's meaning of a Text value
_TEXT = 15
META_NAMESPACE = "courseport-meta"
META_KIND = "CourseportMeta"
LOCK_NAME = "writer_lock"
ENV_EMULATOR = "DATASTORE_EMULATOR_HOST"
_EPOCH = _dt.datetime(1970, 1, 1)
_CURSOR_TAG = b"cpds1\x00"
#: at most what a mutation adds around its entity (a field tag and a length), counted towards a commit's size
_FRAMING = 6


class ContentionError(DatastoreError):
    """A transaction the service aborted, because another changed what it read."""


def _modules() -> tuple[Any, Any, Any]:
    try:
        from google.cloud.datastore_v1.types import datastore, entity, query
    except ImportError:  # pragma: no cover - depends on what is installed
        raise DatastoreError(
            "datastore:// needs Google's client library: pip install 'courseport[gcp]'") from None
    return datastore, entity, query


# What the service takes (the emulator takes more): a project id, optionally domain-scoped
# ("example.com:my-course"); a database id, or "(default)"; namespace characters.
_PROJECT = re.compile(r"(?:[a-z0-9][a-z0-9.-]*:)?[a-z0-9][a-z0-9-]*")
_DATABASE = re.compile(r"[a-z][a-z0-9-]{0,62}|\(default\)")
_NAMESPACE_PREFIX = re.compile(r"[0-9A-Za-z._-]{0,90}")
_OPTIONS = ("database", "namespace_prefix", "location_prefix")


def parse_url(url: str) -> dict[str, str]:
    """``datastore://PROJECT?database=&namespace_prefix=&location_prefix=`` as keyword arguments."""
    if not url.isprintable():  # urlsplit would drop a tab or newline silently: another store than typed
        raise DatastoreError(f"bad Cloud Datastore address {url!r}: it holds unprintable characters; "
                             "type it again")
    parts = urllib.parse.urlsplit(url)
    project = parts.netloc
    if parts.scheme != "datastore" or not project or parts.path not in ("", "/") or parts.fragment:
        raise DatastoreError(f"bad Cloud Datastore address {url!r}: use datastore://PROJECT[?database=DB]")
    if project.startswith(("s~", "dev~", "e~")):
        location, _, bare = project.partition("~")
        also = "" if location == "s" else f", and add ?location_prefix={location}~ for its key strings"
        raise DatastoreError(f"datastore://{project}: that is an app id; name the project, "
                             f"datastore://{bare}{also}")
    if not _PROJECT.fullmatch(project):
        raise DatastoreError(f"bad Cloud Datastore project {project!r} in {url!r}: a project id is lowercase "
                             "letters, digits and hyphens, as the Cloud console shows it (e.g. my-course-123)")
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    options = dict(pairs)
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise DatastoreError(f"{url}: unknown option {unknown[0]!r} (options: {', '.join(_OPTIONS)})")
    if len(options) < len(pairs):
        twice = next(name for name in options if [n for n, _ in pairs].count(name) > 1)
        raise DatastoreError(f"{url}: option {twice!r} given twice: give it once")
    if options.get("location_prefix", "s~") not in ("s~", "dev~", "e~", ""):
        raise DatastoreError(f"{url}: location_prefix is s~ (App Engine), dev~ (its dev server), e~ or empty")
    if "database" in options and not _DATABASE.fullmatch(options["database"]):
        raise DatastoreError(f"{url}: bad database id {options['database']!r}: lowercase letters, digits and "
                             "hyphens, starting with a letter (or leave it out for the default database)")
    if not _NAMESPACE_PREFIX.fullmatch(options.get("namespace_prefix", "")):
        raise DatastoreError(f"{url}: bad namespace_prefix {options['namespace_prefix']!r}: at most 90 of "
                             "letters, digits, '.', '_' and '-' (what a namespace may hold)")
    return {"project": project, **options}


class _Codec:
    """courseport keys and values <-> the service's protobufs, for one project and namespace prefix."""

    def __init__(self, project: str, database: str, prefix: str) -> None:
        _, self.entity_pb, _ = _modules()
        self.Entity = self.entity_pb.Entity.pb()
        self.Key = self.entity_pb.Key.pb()
        self.Value = self.entity_pb.Value.pb()
        self.project = project
        self.database = database
        self.prefix = prefix

    def namespace(self, namespace: str) -> str:
        return self.prefix + namespace

    def key(self, key: Key, out: Any = None) -> Any:
        pb = self.Key() if out is None else out
        pb.partition_id.project_id = self.project
        if self.database:
            pb.partition_id.database_id = self.database
        namespace = self.prefix + key.namespace
        if namespace:
            pb.partition_id.namespace_id = namespace
        for kind, ident in key.path:
            element = pb.path.add()
            element.kind = kind
            if isinstance(ident, int):
                element.id = ident
            elif ident is not None:
                element.name = ident
        return pb

    def from_key(self, pb: Any) -> Key:
        namespace = pb.partition_id.namespace_id
        if self.prefix:
            namespace = namespace[len(self.prefix):] if namespace.startswith(self.prefix) else namespace
        path = []
        for element in pb.path:
            which = element.WhichOneof("id_type")
            path.append((element.kind, element.id if which == "id" else element.name if which == "name" else None))
        return Key._make(tuple(path), namespace)

    def entity(self, entity: Entity) -> Any:
        pb = self.Entity()
        self.key(entity.key, pb.key)
        self._properties(entity, pb.properties, entity.key)
        return pb

    def _properties(self, values: dict, out: Any, where: Any) -> None:
        for name, value in values.items():
            if not isinstance(name, str) or not name:
                raise DatastoreError(f"{where}: property names must be non-empty strings, not {name!r}")
            self.value(value, out[name], where)

    def value(self, value: Any, pb: Any, where: Any = None, in_list: bool = False, unindexed: bool = False) -> None:
        """``value`` into ``pb``; ``unindexed``: the list it is in is (every value of a list is
        indexed or none: the service keeps a list's order only then)."""
        if value is None:
            pb.null_value = 0
        elif isinstance(value, bool):
            pb.boolean_value = value
        elif isinstance(value, int):
            pb.integer_value = value
        elif isinstance(value, float):
            pb.double_value = value
        elif isinstance(value, str):
            pb.string_value = value
            if isinstance(value, Text):
                pb.meaning = _TEXT
                pb.exclude_from_indexes = True
            elif unindexed or _too_long(value):
                pb.exclude_from_indexes = True  # a longer string cannot be indexed: it reads back as Text
        elif isinstance(value, bytes):
            pb.blob_value = value
            pb.exclude_from_indexes = True
        elif isinstance(value, _dt.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
            delta = value - _EPOCH
            pb.timestamp_value.seconds = delta.days * 86400 + delta.seconds
            pb.timestamp_value.nanos = delta.microseconds * 1000
        elif isinstance(value, _dt.date):  # as App Engine stores a DateProperty: its midnight
            pb.timestamp_value.seconds = (value - _EPOCH.date()).days * 86400
        elif isinstance(value, Key):
            self.key(value, pb.key_value)
        elif isinstance(value, list):
            if in_list:
                raise TypeError(f"{where}: a list may not hold a list")
            array = pb.array_value
            array.SetInParent()
            unindexed = any(_unindexed(item) for item in value)
            for item in value:
                item_pb = array.values.add()
                self.value(item, item_pb, where, in_list=True, unindexed=unindexed)
                if unindexed:
                    item_pb.exclude_from_indexes = True
        elif isinstance(value, dict):
            embedded = pb.entity_value
            embedded.SetInParent()
            self._properties(value, embedded.properties, where)
            pb.exclude_from_indexes = True
        else:
            raise TypeError(f"{where}: unsupported value type {type(value).__name__}")

    def from_entity(self, pb: Any) -> Entity:
        """An entity, its properties in name order (the service keeps no order of its own)."""
        properties = pb.properties
        return Entity(self.from_key(pb.key), {name: self.from_value(properties[name]) for name in sorted(properties)})

    def from_value(self, pb: Any, in_list: bool = False) -> Any:
        """A value as App Engine's models read it: a string of meaning TEXT is Text, and so
        is one not indexed (but in a list, where a whole list is indexed or not)."""
        which = pb.WhichOneof("value_type")
        if which == "string_value":
            if pb.meaning == _TEXT or (pb.exclude_from_indexes and not in_list):
                return Text(pb.string_value)
            return pb.string_value
        if which == "integer_value":
            return pb.integer_value
        if which == "timestamp_value":
            stamp = pb.timestamp_value
            return _EPOCH + _dt.timedelta(seconds=stamp.seconds, microseconds=stamp.nanos // 1000)
        if which == "boolean_value":
            return pb.boolean_value
        if which == "double_value":
            return pb.double_value
        if which == "blob_value":
            return bytes(pb.blob_value)
        if which == "key_value":
            return self.from_key(pb.key_value)
        if which == "array_value":
            return [self.from_value(item, in_list=True) for item in pb.array_value.values]
        if which == "entity_value":
            properties = pb.entity_value.properties
            return {name: self.from_value(properties[name]) for name in sorted(properties)}
        if which == "geo_point_value":
            return {"lat": pb.geo_point_value.latitude, "lon": pb.geo_point_value.longitude}
        return None


def _too_long(text: str) -> bool:
    return len(text) * 4 > MAX_INDEXED_BYTES and len(text.encode("utf-8")) > MAX_INDEXED_BYTES


def _unindexed(value: Any) -> bool:
    """Whether ``value`` is stored unindexed (so, in a list, the whole list is)."""
    return isinstance(value, (Text, bytes, dict)) or (isinstance(value, str) and _too_long(value))


class _Transaction:
    def __init__(self, handle: bytes) -> None:
        self.handle = handle
        self.mutations: list[Any] = []


class CloudDatastoreBackend(Backend):
    """A store on Google Cloud Datastore, or on its emulator."""

    atomic = False  # a transaction holds at most 500 mutations: an upload is not one

    def __init__(self, project: str, *, database: str = "", namespace_prefix: str = "",
                 location_prefix: str = "s~", emulator: str | None = None, api: Any = None) -> None:
        self._datastore, self._entity, self._query = _modules()
        self.project = project
        self.database = database
        self.prefix = namespace_prefix
        self.location_prefix = location_prefix
        self.codec = _Codec(project, database, namespace_prefix)
        self.emulator = emulator or os.environ.get(ENV_EMULATOR) or None
        self._api = api or self._connect()
        self.max_commit_bytes = EMULATOR_COMMIT_BYTES if self.emulator else MAX_COMMIT_BYTES
        self._local = threading.local()
        query = {k: v for k, v in (("database", database), ("namespace_prefix", namespace_prefix),
                                   ("location_prefix", location_prefix if location_prefix != "s~" else "")) if v}
        self.url = f"datastore://{project}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        self.description = f"{self.url} (emulator at {self.emulator})" if self.emulator else self.url

    def _connect(self) -> Any:
        from google.cloud.datastore_v1.services.datastore import DatastoreClient
        from google.cloud.datastore_v1.services.datastore.transports import DatastoreGrpcTransport

        if self.emulator:
            import grpc  # type: ignore[import-untyped]

            channel = grpc.insecure_channel(self.emulator, options=[
                ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)])
            return DatastoreClient(transport=DatastoreGrpcTransport(channel=channel))
        try:
            return DatastoreClient()
        except Exception as exc:  # google.auth's DefaultCredentialsError and kin
            raise DatastoreError(f"datastore://{self.project}: no Google Cloud credentials ({exc}); run "
                                 "'gcloud auth application-default login', or set DATASTORE_EMULATOR_HOST "
                                 "for the emulator") from None

    # --- identity ----------------------------------------------------------------------

    @property
    def app_id(self) -> str:  # type: ignore[override]
        return self.location_prefix + self.project

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._api.transport.close()

    # --- calls -------------------------------------------------------------------------

    def _call(self, method: str, request: Any) -> Any:
        """One RPC; the service's refusals as DatastoreError, with what it said."""
        from google.api_core import exceptions

        try:
            response = getattr(self._api, method)(request=request)
        except exceptions.Aborted as exc:
            raise ContentionError(f"{self.url}: {method} lost to a concurrent transaction ({exc.message}): "
                                  "run it again") from None
        except exceptions.InvalidArgument as exc:
            raise DatastoreError(f"{self.url}: the service refused a {method}: {exc.message}") from None
        except exceptions.GoogleAPICallError as exc:
            raise DatastoreError(f"{self.url}: {method} failed: {exc}") from None
        return type(response).pb(response)

    def _request(self, kind: str, **fields: Any) -> Any:
        cls = getattr(self._datastore, kind)
        raw = cls.pb()()
        raw.project_id = self.project
        if self.database:
            raw.database_id = self.database
        for name, value in fields.items():
            setattr(raw, name, value)
        return cls.wrap(raw)

    @property
    def _txn(self) -> _Transaction | None:
        return getattr(self._local, "txn", None)

    # --- reads -------------------------------------------------------------------------

    def get_multi(self, keys: Sequence[Key]) -> list[Entity | None]:
        return self._get_multi(keys, None)

    def _get_multi(self, keys: Sequence[Key], read_time: _dt.datetime | None) -> list[Entity | None]:
        found: dict[Key, Entity] = {}
        for start in range(0, len(keys), MAX_LOOKUP):
            todo = [self.codec.key(key) for key in keys[start:start + MAX_LOOKUP]]
            while todo:
                request = self._request("LookupRequest")
                raw = type(request).pb(request)
                raw.keys.extend(todo)
                self._read_options(raw.read_options, read_time)
                response = self._call("lookup", request)
                for result in response.found:
                    entity = self.codec.from_entity(result.entity)
                    found[entity.key] = entity
                todo = list(response.deferred)
        return [found.get(key) for key in keys]

    def _read_options(self, options: Any, read_time: _dt.datetime | None) -> None:
        txn = self._txn
        if txn is not None:
            options.transaction = txn.handle
        elif read_time is not None:
            options.read_time.FromDatetime(read_time)

    def fetch_page(self, kind: str, namespace: str = "", *, cursor: str | None = None, limit: int = 1000,
                   keys_only: bool = False) -> Page:
        return self._fetch_page(kind, namespace, cursor, limit, keys_only, None)

    def fetch_range_page(self, kind: str, namespace: str, *, start: Key | None, end: Key | None,
                         cursor: str | None = None, limit: int = 1000) -> Page:
        return self._fetch_page(kind, namespace, cursor, limit, False, None, (start, end))

    def split_points(self, kind: str, namespace: str, pieces: int) -> list[Key]:
        return self._split_points(kind, namespace, pieces, None)

    def estimated_count(self, kind: str, namespace: str = "") -> int | None:
        return self._estimated_count(kind, namespace, None)

    def _estimated_count(self, kind: str, namespace: str, read_time: _dt.datetime | None) -> int | None:
        """From the service's statistics (``__Stat_Ns_Kind__``, at most a day or two old),
        where it keeps them (the emulator does not): a count is a whole scan of the keys."""
        request = self._request("LookupRequest")
        raw = type(request).pb(request)
        stat = self.codec.key(Key("__Stat_Ns_Kind__", kind, namespace=namespace))
        raw.keys.append(stat)
        self._read_options(raw.read_options, read_time)
        try:
            found = self._call("lookup", request).found
        except DatastoreError:
            return None
        for result in found:
            value = result.entity.properties.get("count")
            if value is not None and value.WhichOneof("value_type") == "integer_value":
                return value.integer_value
        return None

    def _split_points(self, kind: str, namespace: str, pieces: int, read_time: _dt.datetime | None) -> list[Key]:
        """As Dataflow's DatastoreIO splits a query: 32 keys a piece sampled in ``__scatter__``
        order (a random order the service keeps), sorted, every 32nd a split point."""
        if pieces <= 1:
            return []
        batch = self._run_query(kind, namespace, b"", pieces * 32, True, read_time, order="__scatter__")
        keys = sorted(self.codec.from_key(result.entity.key) for result in batch.entity_results)
        if len(keys) < pieces:
            return []
        step = len(keys) / pieces
        points = [keys[int(i * step)] for i in range(1, pieces)]
        return sorted(set(points))

    def _fetch_page(self, kind: str, namespace: str, cursor: str | None, limit: int, keys_only: bool,
                    read_time: _dt.datetime | None, bounds: tuple[Key | None, Key | None] = (None, None)) -> Page:
        """Up to ``limit`` in key order after ``cursor``: one more is asked for, so that
        a page that ends the kind says so (no empty page after it)."""
        start = _decode_cursor(cursor, kind, namespace) if cursor else b""
        results: list[Any] = []
        wanted = limit + 1
        while len(results) < wanted:
            batch = self._run_query(kind, namespace, start, wanted - len(results), keys_only, read_time,
                                    bounds=bounds)
            results.extend(batch.entity_results)
            if self._last_batch(batch):
                break
            start = batch.end_cursor
        more = len(results) > limit
        results = results[:limit]
        decode = self.codec.from_key if keys_only else self.codec.from_entity
        items = [decode(r.entity.key) if keys_only else decode(r.entity) for r in results]
        next_cursor = _encode_cursor(kind, namespace, results[-1].cursor) if more else None
        return Page(items, next_cursor, more)

    def _run_query(self, kind: str, namespace: str, start: bytes, limit: int, keys_only: bool,
                   read_time: _dt.datetime | None, bounds: tuple[Key | None, Key | None] = (None, None),
                   order: str = "__key__", raw_namespace: str | None = None) -> Any:
        request = self._request("RunQueryRequest")
        raw = type(request).pb(request)
        ns = self.codec.namespace(namespace) if raw_namespace is None else raw_namespace
        if ns:
            raw.partition_id.namespace_id = ns
        if self.database:
            raw.partition_id.database_id = self.database
        raw.partition_id.project_id = self.project
        query = raw.query
        if kind:
            query.kind.add().name = kind
        by = query.order.add()
        by.property.name = order
        by.direction = 1  # ASCENDING
        low, high = bounds
        if low is not None or high is not None:
            both = query.filter.composite_filter
            both.op = 1  # AND
            operator = self._query.PropertyFilter.Operator
            for bound, op in ((low, operator.GREATER_THAN_OR_EQUAL), (high, operator.LESS_THAN)):
                if bound is not None:
                    condition = both.filters.add().property_filter
                    condition.property.name = "__key__"
                    condition.op = op
                    self.codec.key(bound, condition.value.key_value)
        if keys_only:
            query.projection.add().property.name = "__key__"
        if start:
            query.start_cursor = start
        query.limit.value = limit
        self._read_options(raw.read_options, read_time)
        return self._call("run_query", request).batch

    def _last_batch(self, batch: Any) -> bool:
        """Whether a query has nothing after ``batch``."""
        return batch.more_results == self._query.QueryResultBatch.MoreResultsType.NO_MORE_RESULTS or \
            not batch.entity_results

    def _scan_keys(self, kind: str, namespace: str, read_time: _dt.datetime | None,
                   raw_namespace: str | None = None) -> Iterator[Any]:
        """Every key of ``kind`` as the service's protobuf, in key order."""
        start = b""
        while True:
            batch = self._run_query(kind, namespace, start, 10_000, True, read_time, raw_namespace=raw_namespace)
            for result in batch.entity_results:
                yield result.entity.key
            if self._last_batch(batch):
                return
            start = batch.end_cursor

    def kinds(self, namespace: str = "") -> list[str]:
        return self._kinds(namespace, None)

    def _kinds(self, namespace: str, read_time: _dt.datetime | None) -> list[str]:
        names = [key.path[-1].name for key in self._scan_keys("__kind__", namespace, read_time)]
        return sorted(name for name in names if not name.startswith("__"))

    def namespaces(self) -> list[str]:
        return self._namespaces(None)

    def _namespaces(self, read_time: _dt.datetime | None) -> list[str]:
        found = []
        for key in self._scan_keys("__namespace__", "", read_time, raw_namespace=""):
            element = key.path[-1]
            name = element.name if element.WhichOneof("id_type") == "name" else ""
            if not name.startswith(self.prefix) or name == self.prefix + META_NAMESPACE:
                continue
            found.append(name[len(self.prefix):])
        return sorted(found)

    def count(self, kind: str, namespace: str = "") -> int:
        return self._count(kind, namespace, None)

    def _count(self, kind: str, namespace: str, read_time: _dt.datetime | None) -> int:
        """A keys-only scan: the emulator has no count aggregation."""
        return sum(1 for _ in self._scan_keys(kind, namespace, read_time))

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Reader]:
        """The store at this moment: every read at one ``read_time`` (the emulator ignores it)."""
        yield _Snapshot(self, _dt.datetime.now(_dt.timezone.utc))

    # --- writes ------------------------------------------------------------------------

    def put_multi(self, entities: Sequence[Entity]) -> list[Key]:
        incomplete = [entity for entity in entities if not entity.key.is_complete]
        if incomplete:
            self._complete(incomplete)
        self._reserve([entity.key for entity in entities if isinstance(entity.key.id_or_name, int)])
        mutations = []
        for entity in entities:
            mutation = self._datastore.Mutation.pb()()
            self.codec.key(entity.key, mutation.upsert.key)
            self.codec._properties(entity, mutation.upsert.properties, entity.key)
            size = mutation.upsert.ByteSize()
            if size > MAX_ENTITY_BYTES:
                raise DatastoreError(f"{entity.key}: {size:,} bytes, over Cloud Datastore's "
                                     f"limit of {MAX_ENTITY_BYTES:,} for one entity: nothing was written")
            mutations.append((mutation, size + _FRAMING))
        self._commit(mutations)
        return [entity.key for entity in entities]

    def _complete(self, entities: list[Entity]) -> None:
        """Give incomplete keys ids from the service."""
        by_kind: dict[Key, list[Entity]] = {}
        for entity in entities:
            by_kind.setdefault(entity.key, []).append(entity)
        for key, group in by_kind.items():
            for entity, ident in zip(group, self.allocate_ids(key, len(group))):
                entity.key = entity.key.with_id(ident)

    def _reserve(self, keys: list[Key]) -> None:
        """Keep the service's id allocator away from ids given explicitly."""
        for start in range(0, len(keys), MAX_MUTATIONS):
            request = self._request("ReserveIdsRequest")
            raw = type(request).pb(request)
            for key in keys[start:start + MAX_MUTATIONS]:
                self.codec.key(key, raw.keys.add())
            self._call("reserve_ids", request)

    def delete_multi(self, keys: Sequence[Key]) -> None:
        mutations = []
        for key in keys:
            mutation = self._datastore.Mutation.pb()()
            self.codec.key(key, mutation.delete)
            mutations.append((mutation, mutation.ByteSize()))
        self._commit(mutations)

    def _commit(self, mutations: list[tuple[Any, int]]) -> None:
        """Mutations (each with its size) in commits within the service's limits, or into
        this thread's transaction."""
        txn = self._txn
        if txn is not None:
            txn.mutations.extend(mutation for mutation, _ in mutations)
            return
        batch: list[Any] = []
        size = 0
        for mutation, bytes_ in mutations:
            if batch and (len(batch) >= MAX_MUTATIONS or size + bytes_ > self.max_commit_bytes):
                self._send(batch, None)
                batch, size = [], 0
            batch.append(mutation)
            size += bytes_
        if batch:
            self._send(batch, None)

    def _send(self, mutations: list[Any], handle: bytes | None) -> None:
        request = self._request("CommitRequest")
        raw = type(request).pb(request)
        raw.mode = 1 if handle is not None else 2  # TRANSACTIONAL, NON_TRANSACTIONAL
        if handle is not None:
            raw.transaction = handle
        raw.mutations.extend(mutations)
        self._call("commit", request)

    def allocate_ids(self, incomplete: Key, count: int) -> list[int]:
        if count <= 0:
            raise ValueError(f"count must be positive, not {count}")
        ids: list[int] = []
        while len(ids) < count:
            request = self._request("AllocateIdsRequest")
            raw = type(request).pb(request)
            for _ in range(min(MAX_MUTATIONS, count - len(ids))):
                self.codec.key(incomplete, raw.keys.add())
            ids.extend(key.path[-1].id for key in self._call("allocate_ids", request).keys)
        return ids

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Reads and writes of this thread inside see one state and land together (or not at all)."""
        if self._txn is not None:  # nested: part of the outer one
            yield
            return
        begin = self._call("begin_transaction", self._request("BeginTransactionRequest"))
        txn = _Transaction(begin.transaction)
        self._local.txn = txn
        try:
            yield
        except BaseException:
            self._local.txn = None
            with contextlib.suppress(Exception):
                self._call("rollback", self._request("RollbackRequest", transaction=txn.handle))
            raise
        self._local.txn = None
        if len(txn.mutations) > MAX_MUTATIONS:
            raise DatastoreError(f"a transaction of {len(txn.mutations)} writes: the service takes at most "
                                 f"{MAX_MUTATIONS} in one")
        self._send(txn.mutations, txn.handle)

    # --- meta and the writer lock -----------------------------------------------------------

    def _meta_key(self, name: str) -> Key:
        return Key(META_KIND, name, namespace=META_NAMESPACE)

    def get_meta(self, name: str) -> str | None:
        if name == "app_id":  # the project's, not a record's
            return self.app_id
        found = self.get(self._meta_key(name))
        return None if found is None else str(found.get("value") or "")

    def set_meta(self, name: str, value: str) -> None:
        if name == "app_id":
            if value not in (self.app_id, self.project):
                raise DatastoreError(f"the app id of {self.url} is its project's, {self.app_id!r}, not {value!r}")
            return
        self.put(Entity(self._meta_key(name), {"value": Text(value)}))

    @contextlib.contextmanager
    def exclusive(self, what: str, *, wait: float | None = None) -> Iterator[None]:
        """The store's writer lock: a lease in the store (there is no shared file to lock),
        renewed while held, refused while another command or a server's writer holds one."""
        deadline = time.monotonic() + (_locks.lock_wait() if wait is None else wait)
        holder = f"{socket.gethostname()} pid {os.getpid()}"
        while True:
            try:
                held = lease.take(self, what, holder, name=LOCK_NAME, blockers=(lease.META_NAME,))
                break
            except ContentionError:  # another took or renewed a lease at that moment: look again
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)
                continue
            except _locks.LockedError as exc:
                if time.monotonic() >= deadline:
                    raise _locks.LockedError(str(exc).replace("the server's store", f"the store {self.url}")
                                             .replace("wait for it to finish", "wait for it to finish, "
                                                      "then run again")) from None
                time.sleep(0.5)
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(lease.LEASE_SECONDS / 3):
                with contextlib.suppress(Exception):
                    lease.renew(self, held.id, name=LOCK_NAME)

        renewer = threading.Thread(target=renew, name="courseport-writer-lock", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
            with contextlib.suppress(Exception):
                lease.release(self, held.id, name=LOCK_NAME)


class _Snapshot(Reader):
    """Every read at one ``read_time``."""

    def __init__(self, store: CloudDatastoreBackend, read_time: _dt.datetime) -> None:
        self.store = store
        self.read_time = read_time
        self.app_id = store.app_id

    def get_multi(self, keys: Sequence[Key]) -> list[Entity | None]:
        return self.store._get_multi(keys, self.read_time)

    def fetch_page(self, kind: str, namespace: str = "", *, cursor: str | None = None, limit: int = 1000,
                   keys_only: bool = False) -> Page:
        return self.store._fetch_page(kind, namespace, cursor, limit, keys_only, self.read_time)

    def kinds(self, namespace: str = "") -> list[str]:
        return self.store._kinds(namespace, self.read_time)

    def namespaces(self) -> list[str]:
        return self.store._namespaces(self.read_time)

    def count(self, kind: str, namespace: str = "") -> int:
        return self.store._count(kind, namespace, self.read_time)

    def split_points(self, kind: str, namespace: str, pieces: int) -> list[Key]:
        return self.store._split_points(kind, namespace, pieces, self.read_time)

    def estimated_count(self, kind: str, namespace: str = "") -> int | None:
        return self.store._estimated_count(kind, namespace, self.read_time)

    def fetch_range_page(self, kind: str, namespace: str, *, start: Key | None, end: Key | None,
                         cursor: str | None = None, limit: int = 1000) -> Page:
        return self.store._fetch_page(kind, namespace, cursor, limit, False, self.read_time, (start, end))


def _encode_cursor(kind: str, namespace: str, cursor: bytes) -> str:
    return cursor_text(_CURSOR_TAG + kind.encode("utf-8") + b"\x00" + namespace.encode("utf-8") + b"\x00" + cursor)


def _decode_cursor(text: str, kind: str, namespace: str) -> bytes:
    raw = cursor_bytes(text)
    if not raw.startswith(_CURSOR_TAG):
        raise BadCursorError(f"not a cursor of this store: {text[:40]!r}")
    parts = raw[len(_CURSOR_TAG):].split(b"\x00", 2)
    if len(parts) != 3 or not parts[2]:
        raise BadCursorError(f"not a cursor of this store: {text[:40]!r}")
    if parts[0] != kind.encode("utf-8") or parts[1] != namespace.encode("utf-8"):
        raise BadCursorError(f"a cursor of another query (kind {parts[0].decode('utf-8', 'replace')!r}, "
                             f"namespace {parts[1].decode('utf-8', 'replace')!r}), not of {kind!r} in {namespace!r}")
    return parts[2]
