"""Google Cloud Datastore, on its emulator (issue 10): what the shared store contract
(test_store_contract.py) does not say. Values as Course Builder's App Engine models
wrote them, key strings as App Engine makes them, the service's limits, the
writer lock, the addresses, and what the emulator's default consistency does."""

from __future__ import annotations

import datetime as dt
import re
import string
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from courseport.datastore import DatastoreError, Entity, Key, Text, open_store
from courseport.datastore.cloud import CloudDatastoreBackend, parse_url
from courseport._locks import LockedError
from emulator import PROJECT, cloud_store, datastore_emulator, fresh_prefix, start_emulator  # noqa: F401
from test_store_contract import VALUES

NS = "ns_cloud"


@pytest.fixture
def store(datastore_emulator: str):
    backend = cloud_store(datastore_emulator)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(scope="module")
def google(datastore_emulator: str):
    """Google's own client on the emulator: what App Engine's models would have written."""
    from google.cloud import datastore

    import os

    saved = os.environ.get("DATASTORE_EMULATOR_HOST")
    os.environ["DATASTORE_EMULATOR_HOST"] = datastore_emulator
    try:
        yield datastore.Client(project=PROJECT)
    finally:
        if saved is None:
            os.environ.pop("DATASTORE_EMULATOR_HOST", None)
        else:
            os.environ["DATASTORE_EMULATOR_HOST"] = saved


# --- values -------------------------------------------------------------------------------


def test_every_value_round_trips_and_a_date_reads_back_as_its_midnight(store) -> None:
    key = Key("Everything", "one", namespace=NS)
    store.put(Entity(key, VALUES))
    got = store.get(key)
    midnight = dt.datetime(1990, 5, 17)
    expected = {**VALUES, "date": midnight,
                "list": [dt.datetime(2020, 1, 2) if type(v) is dt.date else v for v in VALUES["list"]]}
    assert dict(got) == expected
    for name, value in expected.items():
        assert type(got[name]) is type(value), name
    for want, item in zip(expected["list"], got["list"]):
        assert type(item) is type(want), want


def test_what_app_engine_models_wrote_reads_as_course_builder_wrote_it(store, google) -> None:
    """Text is an unindexed string, Blob bytes, datetimes keep their microseconds,
    references are keys, lists stay lists."""
    from google.cloud import datastore

    namespace = store.prefix + NS
    key = google.key("Student", "12345", namespace=namespace)
    entity = datastore.Entity(key, exclude_from_indexes=("additional_fields", "blob", "answers"))
    entity.update({
        "additional_fields": '[["form01", "Ann"]]',
        "name": "Ann",
        "blob": b"\x89PNG\x00",
        "enrolled_on": dt.datetime(2016, 4, 6, 20, 14, 27, 542076, tzinfo=dt.timezone.utc),
        "group": google.key("StudentGroupEntity", 7, namespace=namespace),
        "labels": ["a", "b"],
        "answers": ["long", "texts"],
        "is_enrolled": True,
        "scores": None,
    })
    google.put(entity)
    [got] = store.get_multi([Key("Student", "12345", namespace=NS)])
    assert got is not None
    assert type(got["additional_fields"]) is Text and got["additional_fields"] == '[["form01", "Ann"]]'
    assert type(got["name"]) is str
    assert got["blob"] == b"\x89PNG\x00" and type(got["blob"]) is bytes
    assert got["enrolled_on"] == dt.datetime(2016, 4, 6, 20, 14, 27, 542076)
    assert got["group"] == Key("StudentGroupEntity", 7, namespace=NS)
    assert got["labels"] == ["a", "b"] and all(type(v) is str for v in got["labels"])
    # a list's strings are Text where App Engine marked them so (meaning TEXT), not for being unindexed
    assert got["answers"] == ["long", "texts"] and all(type(v) is str for v in got["answers"])
    assert got["is_enrolled"] is True and got["scores"] is None
    # and what courseport writes, App Engine's client reads with the same types
    store.put(Entity(Key("Student", "67890", namespace=NS), {"t": Text("x"), "b": b"\x00", "s": "y"}))
    raw = google.get(google.key("Student", "67890", namespace=namespace))
    assert raw["t"] == "x" and "t" in raw.exclude_from_indexes and raw["b"] == b"\x00" and "s" not in raw.exclude_from_indexes


_names = st.text(alphabet=string.ascii_letters + string.digits + "_-.é日", min_size=1, max_size=12).filter(
    lambda name: not (name.startswith("__") and name.endswith("__")))
_idents = st.one_of(st.integers(min_value=1, max_value=2**63 - 1), _names)
_keys = st.builds(
    lambda path, namespace: Key(*[part for pair in path for part in pair], namespace=namespace),
    st.lists(st.tuples(st.sampled_from(["Student", "EventEntity", "Kind_é"]), _idents), min_size=1, max_size=3),
    st.sampled_from(["", "ns_sample", "ns_x-y.z"]))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=_keys, prefix=st.sampled_from(["s~", "dev~"]))
def test_key_strings_are_app_engines(key: Key, prefix: str) -> None:
    """Key strings are those of Google's own client, for the s~ and dev~ app id forms."""
    from google.cloud import datastore

    path = [part for pair in key.path for part in pair]
    theirs = datastore.Key(*path, project="myapp", namespace=key.namespace or None)
    expected = theirs.to_legacy_urlsafe(location_prefix=prefix).decode("ascii")
    assert key.to_urlsafe(prefix + "myapp") == expected
    assert Key.from_urlsafe(expected) == (prefix + "myapp", key)


def test_the_app_id_is_the_projects_in_the_form_asked_for(datastore_emulator: str) -> None:
    assert cloud_store(datastore_emulator).app_id == f"s~{PROJECT}"
    assert cloud_store(datastore_emulator, location_prefix="dev~").app_id == f"dev~{PROJECT}"


# --- the service's limits ----------------------------------------------------------------------


def test_writes_and_lookups_are_split_within_the_services_limits(store) -> None:
    """1,200 entities (more than 500 mutations a commit), 30 of almost 1 MiB each
    (more than 10 MiB a commit), and 2,500 keys a lookup (more than 1,000)."""
    many = [Entity(Key("Small", i, namespace=NS), {"i": i}) for i in range(1, 1201)]
    store.put_multi(many)
    big = [Entity(Key("Big", i, namespace=NS), {"t": Text(chr(65 + i % 26) * 900_000)}) for i in range(1, 31)]
    store.put_multi(big)
    keys = [Key("Small", i, namespace=NS) for i in range(1, 2501)]
    got = store.get_multi(keys)
    assert [e["i"] if e else None for e in got] == list(range(1, 1201)) + [None] * 1300
    assert [len(e["t"]) for e in store.get_multi([e.key for e in big])] == [900_000] * 30
    assert store.count("Small", NS) == 1200 and store.count("Big", NS) == 30
    store.delete_multi(keys[:1200])
    assert store.count("Small", NS) == 0


def test_an_entity_over_the_services_size_is_a_one_line_error(store) -> None:
    with pytest.raises(DatastoreError, match="over Cloud Datastore's limit") as info:
        store.put(Entity(Key("Big", 1, namespace=NS), {"t": Text("x" * 1_100_000)}))
    assert "\n" not in str(info.value)
    assert store.get(Key("Big", 1, namespace=NS)) is None


def test_explicit_ids_are_reserved_so_allocated_ids_never_meet_them(store) -> None:
    allocated = store.allocate_ids(Key("E", namespace=NS), 5)
    store.put_multi([Entity(Key("E", ident + 1, namespace=NS), {}) for ident in allocated])
    more = store.allocate_ids(Key("E", namespace=NS), 200)
    assert not set(more) & {ident + 1 for ident in allocated} and not set(more) & set(allocated)


def test_a_transaction_lands_whole_or_not_at_all(store) -> None:
    key = Key("Counter", "c", namespace=NS)
    store.put(Entity(key, {"n": 0}))
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.put(Entity(key, {"n": 1}))
            raise RuntimeError("changed my mind")
    assert store.get(key)["n"] == 0

    def bump() -> None:
        for _ in range(5):
            for _attempt in range(20):
                try:
                    with store.transaction():
                        now = store.get(key)["n"]
                        store.put(Entity(key, {"n": now + 1}))
                    break
                except DatastoreError:
                    continue  # contention: the service aborted it, so again

    threads = [threading.Thread(target=bump) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get(key)["n"] == 15


# --- namespaces, meta and the writer lock --------------------------------------------------------


def test_namespaces_are_the_prefixes_own(datastore_emulator: str) -> None:
    one, two = cloud_store(datastore_emulator), cloud_store(datastore_emulator)
    one.put_multi([Entity(Key("K", 1), {}), Entity(Key("K", 1, namespace="ns_a"), {})])
    two.put(Entity(Key("K", 1, namespace="ns_b"), {}))
    one.set_meta("anything", "value")
    assert one.namespaces() == ["", "ns_a"] and two.namespaces() == ["ns_b"]
    assert one.kinds("") == ["K"] and one.get_meta("anything") == "value" and two.get_meta("anything") is None


def test_a_second_writer_is_refused_naming_the_first(store) -> None:
    with store.exclusive("courseport upload datastore /a"):
        with pytest.raises(LockedError, match="courseport upload datastore /a") as info:
            with store.exclusive("courseport delete datastore /a", wait=0):
                pass
        assert "\n" not in str(info.value)
    with store.exclusive("courseport delete datastore /a", wait=0):
        pass


# --- addresses ----------------------------------------------------------------------------------------


def test_addresses(datastore_emulator: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATASTORE_EMULATOR_HOST", datastore_emulator)
    assert parse_url("datastore://p") == {"project": "p"}
    assert parse_url("datastore://p?database=d&namespace_prefix=x-&location_prefix=dev~") == {
        "project": "p", "database": "d", "namespace_prefix": "x-", "location_prefix": "dev~"}
    prefix = fresh_prefix()
    with open_store(f"datastore://{PROJECT}?namespace_prefix={prefix}") as store:
        assert isinstance(store, CloudDatastoreBackend) and store.emulator == datastore_emulator
        assert store.url == f"datastore://{PROJECT}?namespace_prefix={prefix}"


@pytest.mark.parametrize("url, why", [
    ("datastore://", "use datastore://PROJECT"), ("datastore:///", "use datastore://PROJECT"),
    ("datastore://p/q", "use datastore://PROJECT"), ("datastore://p?nope=1", "unknown option 'nope'"),
    ("datastore://p?location_prefix=x~", "location_prefix is s~"),
    ("datastore://My Project", "a project id is lowercase letters"),
    ("datastore://p\n", "holds unprintable characters"),
    ("datastore://p?namespace_prefix=a\tb", "holds unprintable characters"),
    ("datastore://s~course", "that is an app id; name the project, datastore://course"),
    ("datastore://dev~course", "add ?location_prefix=dev~"),
    ("datastore://p?namespace_prefix=a&namespace_prefix=b", "'namespace_prefix' given twice"),
    ("datastore://p?database=%00", "bad database id '\\x00'"),
    ("datastore://p?database=Main", "bad database id 'Main'"),
    ("datastore://p?namespace_prefix=a/b", "bad namespace_prefix 'a/b'"),
    ("datastore://p?namespace_prefix=" + "x" * 91, "at most 90"),
])
def test_bad_addresses_are_one_line_errors_naming_the_fix(url: str, why: str) -> None:
    """Refused before any connection (no emulator, no credentials needed)."""
    with pytest.raises(DatastoreError, match=re.escape(why)):
        open_store(url)


@pytest.mark.parametrize("url", ["datastore://google.com:my-course", "datastore://p?database=(default)",
                                 "datastore://p?database=eu-course&namespace_prefix=t.1_a-"])
def test_addresses_the_service_takes(url: str) -> None:
    assert parse_url(url)["project"] == url[len("datastore://"):].partition("?")[0]


def test_a_bad_address_is_one_line_on_the_command_line(tmp_path: Path) -> None:
    """What the user typed is quoted with its newline escaped, so the error stays one line."""
    from conftest import assert_one_line_error, cli_at

    proc = cli_at(tmp_path, "status", "--datastore", "datastore://p?namespace_prefix=a\nb")
    line = assert_one_line_error(proc)
    assert "'datastore://p?namespace_prefix=a\\nb': it holds unprintable characters" in line, line


# --- the emulator's default consistency -------------------------------------------------------------------


def test_the_emulators_default_consistency_loses_rows_from_a_first_scan() -> None:
    """What docs/store.md warns of: with --consistency=0.9 (the emulator's default) a
    first scan misses some rows; with 1.0 (what the tests use) it sees all."""
    rows = 3000
    counts = {}
    for consistency in (None, "1.0"):
        with start_emulator(consistency=consistency) as host:
            store = cloud_store(host)
            store.put_multi([Entity(Key("E", i + 1), {"i": i}) for i in range(rows)])
            counts[consistency] = store.count("E")
    assert counts["1.0"] == rows
    assert counts[None] < rows, "the default consistency lost nothing this time"


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40), st.text(min_size=1, max_size=5).map(lambda t: t * 400),  # some over 1,500 bytes
    st.text(max_size=40).map(Text), st.binary(max_size=40),
    st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    st.sampled_from([Key("K", 1), Key("P", "p", "C", 2, namespace="ns_x")]),
)


def _as_read(value: object, in_list: bool = False) -> object:
    """What the service gives back for ``value``: a string too long to index is Text, at the
    top of an entity (not in a list, where only a string written as Text is)."""
    if type(value) is str and len(value.encode("utf-8")) > 1500 and not in_list:
        return Text(value)
    if isinstance(value, list):
        return [_as_read(item, True) for item in value]
    return value


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(properties=st.dictionaries(
    st.text(alphabet=string.ascii_letters + "_é", min_size=1, max_size=10).filter(lambda n: not n.startswith("__")),
    st.one_of(_scalars, st.lists(_scalars, max_size=6)), max_size=8))
def test_generated_entities_read_back_as_written(datastore_emulator: str, properties: dict) -> None:
    store = cloud_store(datastore_emulator)
    try:
        key = Key("Generated", "one", namespace=NS)
        store.put(Entity(key, properties))
        got = store.get(key)
        expected = {name: _as_read(value) for name, value in properties.items()}
        assert dict(got) == expected
        for name, value in expected.items():
            assert type(got[name]) is type(value), name
            if isinstance(value, list):
                assert [type(v) for v in got[name]] == [type(v) for v in value], name
    finally:
        store.close()
