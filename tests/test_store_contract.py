"""The store contract (backend.py): values, queries, cursors, ids, snapshots.

One suite for every backend: each test that takes ``store`` runs on the
embedded sqlite store and on Google Cloud Datastore (its emulator, see
``tests/emulator.py``). A test of what only one backend promises says so
with a marker, and why; the rest (the store's file, opening it) is sqlite's.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from conftest import dump_file, python_env
from courseport.datastore import (
    BadCursorError, DatastoreError, Entity, Key, SqliteBackend, Text, open_store)
from emulator import cloud_store, datastore_emulator, require_emulator  # noqa: F401

NS = "ns_test"
BACKENDS = ("sqlite", "cloud")

#: the sqlite store's own promises, and why Cloud Datastore does not make them
sqlite_only = pytest.mark.sqlite_only
SEQUENTIAL_IDS = "sqlite allocates ids in sequence, up to the largest; the service scatters them"
ONE_FILE = "it checks the store's file"
SNAPSHOTS = ("the emulator accepts read_time and ignores it, so no test on it can show a snapshot; "
             "on the real service a snapshot reads at one read_time")
RAW_ROWS = "only sqlite keeps rows as Course Builder's JSON text"
NO_DATES = ("Cloud Datastore has no date type: a date is stored as App Engine stores a DateProperty, a "
            "timestamp at midnight, and reads back as that datetime (test_cloud_datastore.py)")


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path):
    marker = request.node.get_closest_marker("sqlite_only")
    if request.param == "cloud":
        if marker is not None:
            pytest.skip(f"sqlite only: {marker.args[0]}")
        require_emulator()
        backend = cloud_store(request.getfixturevalue("datastore_emulator"))
    else:
        backend = SqliteBackend(tmp_path / "store.db")
    try:
        yield backend
    finally:
        backend.close()


def _put(store, *keys: Key, **props) -> list[Key]:
    return store.put_multi([Entity(key, dict(props)) for key in keys])


# --- values -----------------------------------------------------------------------------

VALUES = {
    "str": "plain <b>string</b> é",
    "text": Text("a long text, ünïcode and <tags>"),
    "empty_str": "",
    "int": 42,
    "big_int": 2**62 + 1,
    "negative": -7,
    "float": 0.5,
    "whole_float": 3.0,
    "true": True,
    "false": False,
    "datetime": dt.datetime(2016, 4, 6, 20, 14, 27, 542076),
    "datetime_no_micros": dt.datetime(2016, 4, 6, 20, 14, 27),
    "date": dt.date(1990, 5, 17),
    "ascii_bytes": b"hello, bytes",
    "binary": b"\x89PNG\r\n\x1a\n\x00\xff\xfe",
    "empty_bytes": b"",
    "key": Key("Student", "124317316405206137111", namespace="ns_other"),
    "child_key": Key("Parent", 3, "Child", "c"),
    "list": [1, "two", Text("three"), 4.5, True, None, dt.datetime(2020, 1, 2, 3, 4, 5, 6),
             dt.date(2020, 1, 2), b"\x00\x01", b"ab", Key("K", 9)],
    "empty_list": [],
    "none": None,
    "dict": {"a": [1, "x", None], "b": {"c": True}, "d": 1.25},
}


@sqlite_only(NO_DATES)
def test_every_value_type_round_trips_with_its_type(store) -> None:
    key = Key("Everything", "one", namespace=NS)
    store.put(Entity(key, VALUES))
    got = store.get(key)
    assert got is not None and got.key == key
    assert dict(got) == VALUES
    for name, value in VALUES.items():
        assert type(got[name]) is type(value), name
    for expected, item in zip(VALUES["list"], got["list"]):
        assert type(item) is type(expected), expected
    # a str that is not Text stays str; dates stay dates, not datetimes
    assert not isinstance(got["str"], Text)
    assert type(got["date"]) is dt.date


def test_values_survive_reopen(tmp_path: Path) -> None:
    key = Key("Everything", 1)
    with SqliteBackend(tmp_path / "a.db") as store:
        store.put(Entity(key, VALUES))
    with SqliteBackend(tmp_path / "a.db") as store:
        got = store.get(key)
    assert dict(got) == VALUES
    assert type(got["text"]) is Text and type(got["binary"]) is bytes


def test_get_multi_returns_none_for_missing_in_order(store) -> None:
    _put(store, Key("K", 1), Key("K", "b"), v=1)
    got = store.get_multi([Key("K", "b"), Key("K", 2), Key("K", 1), Key("K", 1, namespace="ns")])
    assert [e.key if e else None for e in got] == [Key("K", "b"), None, Key("K", 1), None]


def test_put_overwrites_whole_entity(store) -> None:
    key = Key("K", 1)
    store.put(Entity(key, {"a": 1, "b": 2}))
    store.put(Entity(key, {"a": 3}))
    assert dict(store.get(key)) == {"a": 3}
    assert store.count("K") == 1


# --- queries and cursors --------------------------------------------------------------------

MIXED = [Key("K", i, namespace=NS) for i in (1, 2, 9, 10, 11, 100, 2**40, 2**63 - 1)] + [
    Key("K", n, namespace=NS) for n in ("0", "10", "9", "A", "a", "b", "z", "é", "日本", "😀")]


@pytest.fixture
def mixed(store):
    shuffled = MIXED[::-1]
    store.put_multi([Entity(k, {"n": str(k.id_or_name)}) for k in shuffled])
    return store


def test_query_key_order_ids_then_names(mixed) -> None:
    got = [e.key for e in mixed.query("K", NS)]
    assert got == sorted(MIXED) == MIXED
    assert [e["n"] for e in mixed.query("K", NS)] == [str(k.id_or_name) for k in MIXED]


def test_query_is_per_kind_and_namespace(mixed) -> None:
    _put(mixed, Key("K", 1), Key("Other", 1, namespace=NS), v=0)
    assert [e.key for e in mixed.query("K", "")] == [Key("K", 1)]
    assert [e.key for e in mixed.query("Other", NS)] == [Key("Other", 1, namespace=NS)]
    assert list(mixed.query("Missing", NS)) == []
    assert len(list(mixed.query("K", NS))) == len(MIXED)


@pytest.mark.parametrize("limit", [1, 2, 7, 1000])
def test_cursors_page_through_everything_once(store, limit: int) -> None:
    keys = [Key("E", i, namespace=NS) for i in range(1, 22)] + [Key("E", f"n{i:02}", namespace=NS) for i in range(14)]
    store.put_multi([Entity(k, {"i": n}) for n, k in enumerate(keys)])
    seen: list[Key] = []
    cursor = None
    pages = 0
    while True:
        page = store.fetch_page("E", NS, cursor=cursor, limit=limit)
        pages += 1
        assert 0 < len(page.items) <= limit
        assert page.more == (page.cursor is not None)
        seen.extend(e.key for e in page.items)
        if page.cursor is None:
            break
        cursor = page.cursor
    assert seen == keys
    assert pages == math.ceil(len(keys) / limit)
    assert [k for k in store.query("E", NS, batch_size=limit)] == [Entity(k, {"i": n}) for n, k in enumerate(keys)]


def test_exact_multiple_has_no_trailing_empty_page(store) -> None:
    store.put_multi([Entity(Key("E", i), {}) for i in range(1, 7)])
    first = store.fetch_page("E", limit=3)
    second = store.fetch_page("E", cursor=first.cursor, limit=3)
    assert [e.key.id for e in second.items] == [4, 5, 6]
    assert second.cursor is None and not second.more


def test_cursor_resumes_after_writes(store) -> None:
    store.put_multi([Entity(Key("E", i * 10, namespace=NS), {"v": i}) for i in range(1, 11)])
    page = store.fetch_page("E", NS, limit=5)
    assert [e.key.id for e in page.items] == [10, 20, 30, 40, 50]
    # writes between pages: before the cursor, after it, and the next one deleted
    _put(store, Key("E", 5, namespace=NS), Key("E", 15, namespace=NS), v="before")
    _put(store, Key("E", 55, namespace=NS), Key("E", 1000, namespace=NS), Key("E", "zz", namespace=NS), v="after")
    store.delete(Key("E", 60, namespace=NS))
    rest = list(store.query("E", NS, cursor=page.cursor, batch_size=2))
    assert [e.key.id_or_name for e in rest] == [55, 70, 80, 90, 100, 1000, "zz"]
    assert all(e["v"] != "before" for e in rest)


def test_cursor_of_deleted_last_entity_still_resumes(store) -> None:
    store.put_multi([Entity(Key("E", i), {}) for i in range(1, 6)])
    page = store.fetch_page("E", limit=2)
    store.delete_multi([Key("E", 2)])
    assert [e.key.id for e in store.query("E", cursor=page.cursor)] == [3, 4, 5]


@pytest.mark.parametrize("kind, namespace", [("Other", NS), ("E", "ns_elsewhere"), ("E", "")])
def test_cursor_of_another_query_is_refused(store, kind: str, namespace: str) -> None:
    store.put_multi([Entity(Key(k, i, namespace=ns), {}) for k, ns in (("E", NS), (kind, namespace))
                     for i in range(1, 4)])
    cursor = store.fetch_page("E", NS, limit=1).cursor
    assert cursor
    with pytest.raises(BadCursorError) as info:
        store.fetch_page(kind, namespace, cursor=cursor)
    assert isinstance(info.value, DatastoreError)
    assert str(info.value)


@pytest.mark.parametrize("cursor", ["garbage!", "AAAA", "x"])
def test_garbage_cursor_is_refused(store, cursor: str) -> None:
    _put(store, Key("E", 1), v=1)
    with pytest.raises(BadCursorError):
        store.fetch_page("E", cursor=cursor)


def test_keys_only(mixed) -> None:
    page = mixed.fetch_page("K", NS, keys_only=True, limit=3)
    assert page.items == MIXED[:3]
    assert all(isinstance(k, Key) for k in page.items)
    assert list(mixed.query("K", NS, keys_only=True, batch_size=4)) == MIXED


def test_child_keys_query_in_order(store) -> None:
    keys = [Key("P", 1, "C", 2), Key("P", 1, "C", "a"), Key("P", 2, "C", 1), Key("Q", "x", "C", 1)]
    store.put_multi([Entity(k, {}) for k in reversed(keys)])
    assert list(store.query("C", keys_only=True)) == sorted(keys)
    assert store.get(Key("P", 2, "C", 1)) is not None


def test_kinds_namespaces_and_count(store) -> None:
    assert store.kinds() == [] and store.namespaces() == []
    _put(store, Key("Zed", 1), Key("Alpha", "a"), v=0)
    _put(store, *[Key("Student", f"u{i}", namespace="ns_b") for i in range(5)], v=0)
    _put(store, Key("EventEntity", 1, namespace="ns_a"), v=0)
    assert store.namespaces() == ["", "ns_a", "ns_b"]
    assert store.kinds() == ["Alpha", "Zed"]
    assert store.kinds("ns_b") == ["Student"]
    assert store.kinds("ns_none") == []
    assert store.count("Student", "ns_b") == 5
    assert store.count("Student") == 0
    store.delete_multi([Key("EventEntity", 1, namespace="ns_a")])
    assert store.namespaces() == ["", "ns_b"]


def test_delete_multi(store) -> None:
    keys = [Key("K", i) for i in range(1, 11)]
    store.put_multi([Entity(k, {}) for k in keys])
    store.delete_multi(keys[::2] + [Key("K", 999), Key("Missing", 1)])
    assert [e.key for e in store.query("K")] == keys[1::2]
    assert store.count("K") == 5
    store.delete_multi([])
    assert store.get_multi(keys[:2]) == [None, Entity(keys[1], {})]


# --- id allocation -----------------------------------------------------------------------------


def test_incomplete_keys_get_distinct_ids(store) -> None:
    entities = [Entity(Key("EventEntity", namespace=NS), {"i": i}) for i in range(5)]
    keys = store.put_multi(entities)
    assert all(k.is_complete and k.kind == "EventEntity" and k.namespace == NS for k in keys)
    assert len({k.id for k in keys}) == 5
    assert [e.key for e in entities] == keys  # set on the entities too
    assert store.count("EventEntity", NS) == 5
    assert sorted(e["i"] for e in store.query("EventEntity", NS)) == list(range(5))


@sqlite_only(SEQUENTIAL_IDS + " (test_cloud_datastore.py checks that allocated ids never meet explicit ones)")
def test_allocated_ids_avoid_explicit_ids(store) -> None:
    big = 5_066_549_580_791_808
    _put(store, Key("EventEntity", big, namespace=NS), v="explicit")
    [new] = store.allocate_ids(Key("EventEntity", namespace=NS), 1)
    assert new > big
    key = store.put(Entity(Key("EventEntity", namespace=NS), {"v": "auto"}))
    assert key.id > big and key.id != new
    assert store.get(Key("EventEntity", big, namespace=NS))["v"] == "explicit"


def test_incomplete_keys_in_the_same_batch_as_explicit_ids(store) -> None:
    batch = [Entity(Key("K", i), {"v": f"explicit{i}"}) for i in (1, 2, 3)]
    batch += [Entity(Key("K"), {"v": f"auto{i}"}) for i in range(3)]
    keys = store.put_multi(batch)
    assert len(set(keys)) == 6
    assert store.count("K") == 6
    assert sorted(e["v"] for e in store.query("K")) == sorted(e["v"] for e in batch)


@sqlite_only(SEQUENTIAL_IDS)
def test_allocation_is_per_namespace_and_kind(store) -> None:
    big = 5_066_549_580_791_808
    _put(store, Key("EventEntity", big, namespace="ns_a"), v=0)
    _put(store, *[Key("EventEntity", i, namespace="ns_b") for i in (1, 2, 3)], v=0)
    ids_b = store.allocate_ids(Key("EventEntity", namespace="ns_b"), 3)
    ids_other_kind = store.allocate_ids(Key("Other", namespace="ns_a"), 2)
    ids_a = store.allocate_ids(Key("EventEntity", namespace="ns_a"), 2)
    assert all(i > 3 for i in ids_b) and all(i < big for i in ids_b)
    assert all(i < big for i in ids_other_kind)
    assert all(i > big for i in ids_a)
    for ids in (ids_b, ids_other_kind, ids_a):
        assert len(set(ids)) == len(ids)
    with pytest.raises(ValueError):
        store.allocate_ids(Key("EventEntity"), 0)


@sqlite_only(SEQUENTIAL_IDS)
def test_largest_id_can_be_stored_and_then_no_id_is_left(store) -> None:
    top = 2**63 - 1
    _put(store, Key("K", top), Key("K", 1), v="explicit")
    assert [k.id for k in store.query("K", keys_only=True)] == [1, top]
    before = dump_file(store.path)
    with pytest.raises(DatastoreError):
        store.allocate_ids(Key("K"), 1)
    with pytest.raises(DatastoreError):
        store.put(Entity(Key("K"), {"v": "auto"}))
    assert dump_file(store.path) == before
    # other kinds are unaffected
    assert store.put(Entity(Key("Other"), {})).id < top


def test_allocated_ids_are_not_reused_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "ids.db"
    with SqliteBackend(path) as store:
        first = store.allocate_ids(Key("E"), 10)
        auto = store.put(Entity(Key("E"), {})).id
    with SqliteBackend(path) as store:
        later = store.allocate_ids(Key("E"), 10)
        auto2 = store.put(Entity(Key("E"), {})).id
    used = first + [auto]
    assert not set(used) & set(later + [auto2])


# --- snapshots ------------------------------------------------------------------------------------


def _seed_two_kinds(store) -> None:
    store.put_multi([Entity(Key("Student", f"u{i}", namespace=NS), {"v": i}) for i in range(10)])
    store.put_multi([Entity(Key("EventEntity", i, namespace=NS), {"v": Text(f"e{i}")}) for i in range(1, 21)])


def _scan(reader) -> dict:
    return {
        "kinds": reader.kinds(NS),
        "namespaces": reader.namespaces(),
        "counts": {k: reader.count(k, NS) for k in ("Student", "EventEntity", "NewKind")},
        "students": [(e.key, dict(e)) for e in reader.query("Student", NS, batch_size=3)],
        "events": [(e.key, dict(e)) for e in reader.query("EventEntity", NS, batch_size=7)],
        "got": [e and dict(e) for e in reader.get_multi([Key("Student", "u0", namespace=NS), Key("EventEntity", 1, namespace=NS)])],
    }


WRITER = """
import sys
from courseport.datastore import Entity, Key, SqliteBackend, Text
NS = {ns!r}
store = SqliteBackend(sys.argv[1])
store.put_multi([Entity(Key("Student", f"u{{i}}", namespace=NS), {{"v": -i}}) for i in range(5, 15)])
store.put_multi([Entity(Key("EventEntity", namespace=NS), {{"v": Text("new")}}) for i in range(30)])
store.put_multi([Entity(Key("NewKind", 1, namespace=NS), {{}}), Entity(Key("K", 1, namespace="ns_new"), {{}})])
store.delete_multi([Key("Student", "u0", namespace=NS), Key("EventEntity", 1, namespace=NS)])
store.delete_multi([Key("EventEntity", i, namespace=NS) for i in range(2, 6)])
store.close()
"""


def _write_like_the_writer(store) -> None:
    code = textwrap.dedent(WRITER.format(ns=NS))
    code = code.replace("store = SqliteBackend(sys.argv[1])", "").replace("store.close()", "")
    exec(compile(code, "writer", "exec"), {"store": store})


def _check_new_state(after: dict, before: dict) -> None:
    assert after != before
    assert after["kinds"] == ["EventEntity", "NewKind", "Student"]
    assert after["counts"] == {"Student": 14, "EventEntity": 45, "NewKind": 1}
    assert before["namespaces"] == [NS]
    assert after["namespaces"] == ["ns_new", NS]
    assert after["got"] == [None, None]


@sqlite_only(SNAPSHOTS)
def test_snapshot_is_isolated_from_a_writer_thread(store) -> None:
    _seed_two_kinds(store)
    before = _scan(store)
    with store.snapshot() as snap:
        assert _scan(snap) == before
        errors: list[BaseException] = []

        def writer() -> None:
            try:
                _write_like_the_writer(store)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        thread = threading.Thread(target=writer)
        thread.start()
        thread.join(timeout=30)
        assert not thread.is_alive() and not errors, errors
        assert _scan(snap) == before
        _check_new_state(_scan(store), before)
    _check_new_state(_scan(store), before)
    with store.snapshot() as fresh:
        assert _scan(fresh) == _scan(store)


@sqlite_only(SNAPSHOTS)
def test_snapshot_is_isolated_from_a_writer_process(store, tmp_path: Path) -> None:
    _seed_two_kinds(store)
    before = _scan(store)
    with store.snapshot() as snap:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(WRITER.format(ns=NS)), str(store.path)],
            env=python_env(), capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr
        # the writer neither fails nor waits on our open snapshot (not even to close)
        assert elapsed < 10, f"writer process took {elapsed:.1f}s while a snapshot was open"
        assert _scan(snap) == before
        after = _scan(store)
        _check_new_state(after, before)
    with open_store(f"sqlite:///{store.path}") as again:
        assert _scan(again) == after


@sqlite_only(SNAPSHOTS)
def test_two_snapshots_see_their_own_moments(store) -> None:
    _put(store, Key("K", 1), v=1)
    with store.snapshot() as first:
        _put(store, Key("K", 2), v=2)
        with store.snapshot() as second:
            _put(store, Key("K", 3), v=3)
            assert [e.key.id for e in first.query("K")] == [1]
            assert [e.key.id for e in second.query("K")] == [1, 2]
            assert [e.key.id for e in store.query("K")] == [1, 2, 3]


# --- opening stores ----------------------------------------------------------------------------------


def test_store_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "course.db"
    url = f"sqlite:///{path}"
    store = open_store(url)
    store.set_meta("app_id", "dev~mycourse")
    _put(store, Key("Student", "u1", namespace=NS), name="bob")
    store.close()
    assert path.is_file()
    reopened = open_store(url, create=False)
    try:
        assert reopened.app_id == "dev~mycourse"
        assert reopened.get_meta("app_id") == "dev~mycourse"
        assert dict(reopened.get(Key("Student", "u1", namespace=NS))) == {"name": "bob"}
    finally:
        reopened.close()


def test_local_store_lives_in_courseport_home(home: Path) -> None:
    from courseport.datastore import home_dir, local_store_path

    assert home_dir() == home
    with open_store("local") as store:
        _put(store, Key("K", 1), v=1)
        assert Path(store.path).resolve().parent == home.resolve()
    assert local_store_path().is_file()
    with open_store("local", create=False) as store:
        assert store.count("K") == 1


@sqlite_only("a Cloud Datastore store's app id is its project's (test_cloud_datastore.py)")
def test_new_store_has_default_app_id(store) -> None:
    from courseport.datastore import DEFAULT_APP_ID

    assert store.app_id == DEFAULT_APP_ID == "courseport"
    assert store.get_meta("app_id") is None


def test_missing_store_is_not_created_without_create(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "x.db"
    with pytest.raises(DatastoreError) as info:
        open_store(f"sqlite:///{path}", create=False)
    assert "courseport init" in str(info.value)
    assert not path.exists() and not path.parent.exists()


@pytest.mark.parametrize("content", [b"this is not a sqlite database\n" * 20, b"SQLite format 3\x00" + b"\xff" * 200])
def test_file_that_is_not_sqlite_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "not.db"
    path.write_bytes(content)
    with pytest.raises(DatastoreError) as info:
        open_store(f"sqlite:///{path}")
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert path.read_bytes() == content


def test_sqlite_file_of_another_application_is_left_alone(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "other-app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT)")
    conn.execute("INSERT INTO accounts (owner) VALUES ('someone')")
    conn.commit()
    conn.close()
    before = dump_file(path)
    try:
        for create in (False, True):
            with pytest.raises(DatastoreError):
                open_store(f"sqlite:///{path}", create=create).close()
    finally:
        assert dump_file(path) == before


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite://relative.db", "postgres://x/y", "", "Local", "/tmp/x.db"])
def test_bad_store_urls_are_refused(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatastoreError) as info:
        open_store(url)
    assert str(info.value) and "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


@sqlite_only(ONE_FILE)
def test_failed_write_changes_nothing(store) -> None:
    _put(store, Key("K", 1), v=1)
    before = dump_file(store.path)
    with pytest.raises((TypeError, ValueError)):
        store.put_multi([Entity(Key("K", 2), {"v": 2}), Entity(Key("K", 3), {"v": object()})])
    with pytest.raises(ValueError):
        store.put_multi([Entity(Key("K", 4), {}), Entity(Key("K", "a\x00b"), {})])
    assert dump_file(store.path) == before


# --- raw rows: Course Builder's encoding ------------------------------------------------------------


@sqlite_only(RAW_ROWS)
def test_fetch_raw_page_is_course_builder_json(store) -> None:
    key = Key("Row", "r1", namespace=NS)
    store.put(Entity(key, {
        "when": dt.datetime(2016, 4, 6, 20, 14, 27, 542076),
        "midnight": dt.datetime(2016, 4, 6),
        "day": dt.date(1990, 5, 17),
        "html": "<b>bold</b>",
        "accent": "café",
        "data": Text('{"4": 100}'),
        "ascii": b"plain",
        "blob": b"\x89PNG\r\n\x1a\n",
        "n": 3, "f": 0.5, "flag": True, "nothing": None,
        "tags": ["a", "b"],
    }))
    rows, cursor = store.fetch_raw_page("Row", NS)
    assert cursor is None
    [row] = rows
    assert row.key == key
    text = row.data
    assert text.isascii()
    assert '"when": "2016-04-06T20:14:27.542076Z"' in text
    assert '"midnight": "2016-04-06T00:00:00.000000Z"' in text
    assert '"day": "1990-05-17"' in text
    assert "\\u003Cb\\u003Ebold\\u003C/b\\u003E" in text and "<" not in text and ">" not in text
    assert "caf\\u00e9" in text
    assert json.loads(text) == {
        "when": "2016-04-06T20:14:27.542076Z",
        "midnight": "2016-04-06T00:00:00.000000Z",
        "day": "1990-05-17",
        "html": "<b>bold</b>",
        "accent": "café",
        "data": '{"4": 100}',
        "ascii": "plain",
        "blob": {"type": "binary", "encoding": "base64",
                 "content": base64.urlsafe_b64encode(b"\x89PNG\r\n\x1a\n").decode()},
        "n": 3, "f": 0.5, "flag": True, "nothing": None,
        "tags": ["a", "b"],
    }
    assert json.loads(text)["blob"]["content"] == "iVBORw0KGgo="


@sqlite_only(RAW_ROWS)
def test_fetch_raw_page_pages_like_fetch_page(mixed) -> None:
    seen = []
    cursor = None
    while True:
        rows, cursor = mixed.fetch_raw_page("K", NS, cursor=cursor, limit=3)
        assert 0 < len(rows) <= 3
        seen.extend(row.key for row in rows)
        if cursor is None:
            break
    assert seen == MIXED
    # a raw cursor resumes an ordinary query too
    rows, cursor = mixed.fetch_raw_page("K", NS, limit=4)
    assert [e.key for e in mixed.query("K", NS, cursor=cursor)] == MIXED[4:]


def test_a_store_busy_with_another_write_is_a_one_line_error(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "busy.db"
    store = open_store(f"sqlite:///{path}")
    store.put(Entity(Key("K", 1), {}))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's long write
    try:
        store._conn.execute("PRAGMA busy_timeout=100")
        with pytest.raises(DatastoreError, match="busy with another write") as info:
            store.put(Entity(Key("K", 2), {}))
        assert "\n" not in str(info.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
        store.close()
