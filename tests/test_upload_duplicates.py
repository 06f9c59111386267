"""One key twice in one member: refused, naming the key and both rows (spec §6.5).

Defect 7: two rows with the same key in one member lost a row silently
(the report said 2 rows, the store kept 1). Now the upload is refused
before anything is written, on both upload paths (this process for small
members, worker processes for members of 4 MB and more) and in both write
modes (one transaction; staged first). Keys are compared as the store
keeps them, so two spellings of one key are the same key; an id and a
name that look alike are not.

Generated cases draw members of keys in every spelling, sorted or not, cut
into chunks of any size: refused exactly when two rows map to one stored
key, and otherwise every row is stored.
"""

from __future__ import annotations

import io
import json
import random
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import (
    FIXTURES,
    assert_one_line_error,
    cli_at,
    db_path,
    etl,
    make_store_template,
    manifest_for,
    rows_member,
    snapshot_store,
    write_zip,
)
from courseport.archive import line_chunks, open_reader
from courseport.courses.site import Site
from courseport.datastore import Key, SqliteBackend
from courseport.etl import keyorder
from courseport.etl import _upload as upload_module
from courseport.etl.errors import EtlError
from courseport.sites.rows import row_key

MEMBER = "models/EventEntity.json"


def event(**key_fields) -> dict:
    row = {"key.name": "None", "key.id": None, "source": "x", "user_id": "u", "data": "{}",
           "recorded_on": "2016-04-06T20:14:27.542076Z", "key": ""}
    row.update(key_fields)
    return row


def archive(path: Path, rows: list[dict]) -> Path:
    return write_zip(path, {"manifest.json": manifest_for([MEMBER]), MEMBER: rows_member(rows)})


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    home = make_store_template(tmp_path_factory.mktemp("dups") / "home", students=2)
    with SqliteBackend(db_path(home), create=False) as store:
        Site(store).add_course("/target")
    return home


@pytest.fixture
def target(template: Path, home: Path) -> Path:
    shutil.copyfile(db_path(template), db_path(home))
    return home


def set_mode(mode: str, monkeypatch: pytest.MonkeyPatch, chunk: int | None = None) -> None:
    """``atomic``/``staged`` write mode and ``small``/``workers`` upload path; ``chunk`` rows a batch."""
    from courseport.sites import LocalSite

    if "staged" in mode:
        monkeypatch.setattr(LocalSite, "atomic_writes", False)
    if "workers" in mode:
        monkeypatch.setattr(upload_module, "PARALLEL_MIN_BYTES", 0)
    if chunk is not None:
        monkeypatch.setattr(LocalSite, "min_batch_size", 1, raising=False)
        monkeypatch.setattr(upload_module, "LOCAL_MIN_BATCH", 1, raising=False)


@pytest.fixture(params=["atomic-small", "atomic-workers", "staged-small", "staged-workers"])
def mode(request, monkeypatch: pytest.MonkeyPatch) -> str:
    set_mode(request.param, monkeypatch, chunk=7)
    return request.param


def refused(home: Path, path: Path, *phrases: str, batch: int = 7) -> str:
    before = snapshot_store(db_path(home))
    with pytest.raises(EtlError) as err:
        etl("upload", "datastore", "/target", "local", "--archive_path", path, "--batch_size", batch)
    message = str(err.value)
    for phrase in phrases:
        assert phrase in message, message
    assert "\n" not in message
    assert snapshot_store(db_path(home)) == before
    return message


def stored_ids(home: Path) -> list:
    with SqliteBackend(db_path(home), create=False) as store:
        return sorted((key.id_or_name for key in store.query("EventEntity", "ns_target", keys_only=True)), key=repr)


# --- defect 7 ------------------------------------------------------------------------------------


def test_two_rows_with_one_key_in_key_order(target: Path, tmp_path: Path, mode: str) -> None:
    rows = [event(**{"key.id": i}) for i in range(1, 41)]
    rows.insert(23, event(**{"key.id": 23}))  # rows 23 and 24: what Course Builder's download never writes
    refused(target, archive(tmp_path / "a.zip", rows),
            f"{MEMBER}: rows 23 and 24 have the same key 23: only one of them would be kept")


@pytest.mark.parametrize("where", [(0, 39), (5, 6), (6, 7), (13, 14), (38, 39), (2, 30)])
def test_two_rows_with_one_key_out_of_order(target: Path, tmp_path: Path, mode: str, where) -> None:
    rng = random.Random(where[0] * 100 + where[1])
    ids = rng.sample(range(1, 10**6), 40)
    ids[where[1]] = ids[where[0]]
    message = refused(target, archive(tmp_path / "a.zip", [event(**{"key.id": i}) for i in ids]),
                      f"{MEMBER}: rows {where[0] + 1} and {where[1] + 1} have the same key {ids[where[0]]}")
    assert message.endswith("remove or re-key one of them")


@pytest.mark.parametrize("first,second", [
    ({"key.id": 5}, {"key.id": None, "key.name": 5}),
    ({"key.id": 5}, {"key.id": 0, "key.name": 5}),
    ({"key.id": 5, "key.name": "anything"}, {"key.id": 5}),
    ({"key.id": 5}, {"key.id": 5, "key": Key("EventEntity", 5).to_urlsafe("other-app")}),
    ({"key.id": None, "key.name": "u-1"}, {"key.id": "", "key.name": "u-1"}),
])
def test_two_spellings_of_one_key(target: Path, tmp_path: Path, first: dict, second: dict) -> None:
    rows = [event(**{"key.id": 1}), event(**first), event(**{"key.id": 9}), event(**second)]
    refused(target, archive(tmp_path / "a.zip", rows), f"{MEMBER}: rows 2 and 4 have the same key")


def test_keys_that_only_look_alike_are_different(target: Path, tmp_path: Path, mode: str) -> None:
    parent = Key("StudentPropertyEntity", "p", "EventEntity", 5).to_urlsafe("app")
    rows = [event(**{"key.id": 5}), event(**{"key.id": None, "key.name": "5"}),
            event(**{"key.id": 5, "key": parent}), event(**{"key.id": None, "key.name": "5 "})]
    result = etl("upload", "datastore", "/target", "local", "--archive_path", archive(tmp_path / "a.zip", rows),
                 "--batch_size", "7")
    assert result.rows == {"EventEntity": 4}
    with SqliteBackend(db_path(target), create=False) as store:
        assert store.count("EventEntity", "ns_target") == 4


def test_unsorted_members_without_duplicates_load_every_row(target: Path, tmp_path: Path, mode: str) -> None:
    ids = random.Random(7).sample(range(1, 10**9), 300)
    names = [f"user{i}" for i in random.Random(8).sample(range(1000), 100)]
    rows = [event(**{"key.id": i}) for i in ids] + [event(**{"key.name": n}) for n in names]
    random.Random(9).shuffle(rows)
    result = etl("upload", "datastore", "/target", "local", "--archive_path", archive(tmp_path / "a.zip", rows),
                 "--batch_size", "7")
    assert result.rows == {"EventEntity": 400}
    assert stored_ids(target) == sorted(ids + names, key=repr)


def test_a_hash_collision_is_not_a_duplicate(target: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(keyorder, "_digest", lambda key, hash_key=None: 42)  # every key collides with every other
    rows = [event(**{"key.id": i}) for i in (9, 3, 7, 1)]
    result = etl("upload", "datastore", "/target", "local", "--archive_path", archive(tmp_path / "a.zip", rows))
    assert result.rows == {"EventEntity": 4}
    rows = [event(**{"key.id": i}) for i in (19, 13, 17, 11, 17)]
    refused(target, archive(tmp_path / "b.zip", rows), f"{MEMBER}: rows 3 and 5 have the same key 17")


def test_course_builder_archives_in_any_order_still_load(target: Path, tmp_path: Path) -> None:
    """Its privacy archives list rows by the original keys, so the hashed ones are out of order."""
    path = FIXTURES / "live_sample" / "datastore_privacy_s3cret.zip"
    if not path.is_file():
        pytest.skip("../shared/fixtures/coursebuilder absent")
    result = etl("upload", "datastore", "/target", "local", "--archive_path", path,
                 "--datastore_types", "Student,StudentAnswersEntity,StudentPropertyEntity,EventEntity")
    with open_reader(path) as reader:
        manifest_rows = {}
        for kind in result.rows:
            with reader.open(f"models/{kind}.json") as stream:
                manifest_rows[kind] = len(json.load(stream)["rows"])
    assert result.rows == manifest_rows


def test_command_line_both_paths(target: Path, tmp_path: Path) -> None:
    """The real command line: a small member, and one over 4 MB (worker processes), sorted and not."""
    filler = "y" * 450
    count = 9_000
    for size, n in (("small", 30), ("large", count)):
        for order in ("sorted", "shuffled"):
            ids = list(range(1, n + 1))
            if order == "shuffled":
                random.Random(n).shuffle(ids)
            ids[n - 2] = ids[n // 3]
            rows = [event(**{"key.id": i}, data=filler) for i in ids]
            path = archive(tmp_path / f"{size}-{order}.zip", rows)
            if size == "large":
                with open_reader(path) as reader:
                    assert reader.size(MEMBER) >= upload_module.PARALLEL_MIN_BYTES
            before = snapshot_store(db_path(target))
            line = assert_one_line_error(cli_at(target, "upload", "datastore", "/target", "local",
                                                "--archive_path", path))
            assert f"{MEMBER}: rows {n // 3 + 1} and {n - 1} have the same key {ids[n // 3]}" in line, line
            assert snapshot_store(db_path(target)) == before


# --- generated ---------------------------------------------------------------------------------


PARENT = Key("StudentPropertyEntity", "p", "EventEntity", 1)


@st.composite
def spelled_keys(draw) -> tuple[dict, Key]:
    """Key fields of a row, in one of the spellings Course Builder's rows use, and the key they mean."""
    if draw(st.booleans()):
        ident = draw(st.integers(1, 12) | st.sampled_from([2**63 - 1, 2**40]))
        fields = draw(st.sampled_from([
            {"key.id": ident, "key.name": "None"}, {"key.id": None, "key.name": ident},
            {"key.id": 0, "key.name": ident}, {"key.id": ident, "key.name": "ignored"},
            {"key.id": ident, "key.name": "None", "key": Key("EventEntity", ident).to_urlsafe("a")},
            {"key.id": ident, "key.name": "None", "key": Key("P", "q", "EventEntity", ident).to_urlsafe("a")},
        ]))
    else:
        name = draw(st.sampled_from(["a", "b", "1", "12", "é", "a b", "Z" * 30]))
        fields = draw(st.sampled_from([{"key.id": None, "key.name": name}, {"key.id": "", "key.name": name},
                                       {"key.id": False, "key.name": name}]))
    return fields, row_key(dict(fields), "EventEntity", "ns_target")


@st.composite
def members(draw) -> tuple[list[tuple[dict, Key]], int]:
    keys = draw(st.lists(spelled_keys(), min_size=1, max_size=40))
    order = draw(st.sampled_from(["as drawn", "sorted", "sorted unique"]))
    if order != "as drawn":
        keys.sort(key=lambda fk: keyorder.order_token(fk[1]))
        if order == "sorted unique":
            seen: set = set()
            keys = [fk for fk in keys if not (fk[1] in seen or seen.add(fk[1]))]
    return keys, draw(st.integers(1, 9))


def check_refusal(message: str, keys: list[Key]) -> None:
    """The message names two rows that do hold one key, and that key."""
    import re

    match = re.search(r"rows (\d+) and (\d+) have the same key (.+): only one", message)
    assert match, message
    a, b = int(match.group(1)), int(match.group(2))
    assert a < b and keys[a - 1] == keys[b - 1], (message, keys)
    key = keys[a - 1]
    shown = repr(key.id_or_name) if key.parent is None else " / ".join(f"{k} {i!r}" for k, i in key.path)
    assert match.group(3) == shown, message


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=members())
def test_key_order_and_second_pass_find_exactly_the_duplicates(case) -> None:
    spelled, chunk = case
    keys = [k for _, k in spelled]
    has_duplicate = len(set(keys)) < len(keys)
    order = keyorder.KeyOrder(MEMBER)
    data = rows_member([event(**fields) for fields, _ in spelled])
    try:
        for start in range(0, len(keys), chunk):
            if start // chunk % 2:
                order.add_keys(keys[start:start + chunk])  # this process
            else:  # a worker's summary
                order.add(keyorder.chunk_order(keys[start:start + chunk], start + 1), len(keys[start:start + chunk]))
        if not order.sorted:
            keyorder.find_duplicate(lambda: io.BytesIO(data), MEMBER, "EventEntity", "ns_target")
    except EtlError as exc:
        assert has_duplicate, exc
        check_refusal(str(exc), keys)
    else:
        assert not has_duplicate, keys
    # the second pass as the worker processes feed it, whatever the order: the same answer
    chunks = (keyorder.chunk_digests(("EventEntity", "ns_target", MEMBER, first, lines, keyorder.HASH_KEY))
              for first, lines in line_chunks(io.BytesIO(data), MEMBER, rows_per_chunk=chunk))
    try:
        keyorder.find_duplicate(lambda: io.BytesIO(data), MEMBER, "EventEntity", "ns_target", chunks=chunks)
    except EtlError as exc:
        assert has_duplicate, exc
        check_refusal(str(exc), keys)
    else:
        assert not has_duplicate, keys


@pytest.fixture(scope="module")
def generated_home(template: Path, tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("dups_generated") / "home"
    home.mkdir()
    shutil.copyfile(db_path(template), db_path(home))
    return home


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(case=members(), path=st.sampled_from(["atomic-small", "atomic-workers", "staged-small", "staged-workers"]))
def test_upload_refuses_exactly_the_duplicates(generated_home: Path, tmp_path: Path, case, path: str) -> None:
    spelled, chunk = case
    keys = [k for _, k in spelled]
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("COURSEPORT_HOME", str(generated_home))
        set_mode(path, monkeypatch, chunk=chunk)
        with SqliteBackend(db_path(generated_home), create=False) as store:  # the last example's rows
            store.delete_multi(list(store.query("EventEntity", "ns_target", keys_only=True)))
        before = snapshot_store(db_path(generated_home))
        path_ = archive(tmp_path / "g.zip", [event(**fields) for fields, _ in spelled])
        try:
            result = etl("upload", "datastore", "/target", "local", "--archive_path", path_, "--batch_size",
                         str(chunk), "--force_overwrite")
        except EtlError as exc:
            assert len(set(keys)) < len(keys), exc
            check_refusal(str(exc), keys)
            assert snapshot_store(db_path(generated_home)) == before
            return
    assert len(set(keys)) == len(keys), keys
    assert result.rows == {"EventEntity": len(keys)}  # nothing lost: as many rows stored as reported
    with SqliteBackend(db_path(generated_home), create=False) as store:
        assert sorted(store.query("EventEntity", "ns_target", keys_only=True)) == sorted(keys)


@settings(max_examples=200, deadline=None)
@given(digests=st.lists(st.integers(0, 2**64 - 1) | st.integers(0, 40), max_size=300))
def test_the_fallbacks_hash_table_is_a_set(digests: list[int]) -> None:
    table = keyorder._DigestSet(capacity=4)  # grows many times
    seen: set[int] = set()
    for digest in digests:
        assert table.add(digest) == ((digest or 1) not in seen)
        seen.add(digest or 1)
    assert table.count == len(seen) and 2 * table.count <= len(table.table)
