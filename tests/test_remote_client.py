"""A job's datastore client through a real server: query, get, put, delete, allocate ids,
on the embedded store and on Cloud Datastore (its emulator).

Entities of every value type cross the wire and come back equal, and what
the client wrote is what the store holds (read from the store directly).
"""

from __future__ import annotations

import datetime as dt
import string
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_store_template
from copies import StoreCopy, copy_store
from emulator import datastore_emulator, require_emulator  # noqa: F401
from servers import ADMIN, Server

NS = "ns_sample"


@pytest.fixture(scope="module", params=["sqlite", "cloud"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> StoreCopy:
    template = make_store_template(tmp_path_factory.mktemp("client_template") / "home", students=3)
    emulator = None
    if request.param == "cloud":
        require_emulator()
        emulator = request.getfixturevalue("datastore_emulator")
    return copy_store(template, tmp_path_factory.mktemp("client_served") / "home", emulator)


@pytest.fixture(scope="module")
def server(served: StoreCopy) -> Iterator[Server]:
    running = served.serve()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def binding(server: Server) -> Iterator[tuple]:
    from courseport.sites.remote import Credentials, RemoteSite

    site = RemoteSite(server.url, Credentials(ADMIN, server.app_password))
    try:
        yield site.job_binding("/sample")
    finally:
        site.close()


def stored(served: StoreCopy, key):
    with served.open() as store:
        return store.get(key)


def test_the_course_a_job_sees(binding: tuple) -> None:
    course, client = binding
    assert (course.slug, course.namespace) == ("/sample", NS)
    assert course.title
    assert "/course.yaml" in course.fs.list()
    assert b"\ncourse:\n" in course.fs.get("/course.yaml")
    assert course.fs.get("/no/such/file") is None
    info = course.fs.put("assets/job.txt", b"from a job", is_draft=False)
    assert (info.path, info.size) == ("/assets/job.txt", 10)
    assert course.fs.get("/assets/job.txt") == b"from a job"
    assert course.fs.delete("/assets/job.txt") is True
    assert course.fs.get("/assets/job.txt") is None
    assert client.count("Student", NS) == 3 and "Student" in client.kinds(NS)


def test_put_get_query_delete_and_allocate(served: StoreCopy, binding: tuple) -> None:
    from courseport.datastore import Entity, Key

    _, client = binding
    new = Entity(Key("JobKind", namespace="ns_jobs"), {"n": 1})
    key = client.put(new)
    assert key.is_complete and new.key == key
    assert stored(served, key) == Entity(key, {"n": 1})
    named = [Entity(Key("JobKind", f"k{i}", namespace="ns_jobs"), {"n": i}) for i in range(5)]
    client.put_multi(named)
    assert [e["n"] for e in client.query("JobKind", "ns_jobs", batch_size=2)] == [1, 0, 1, 2, 3, 4]
    page = client.fetch_page("JobKind", "ns_jobs", limit=2, keys_only=True)
    assert page.items == [key, named[0].key] and page.cursor is not None
    assert client.get_multi([named[1].key, Key("JobKind", "nope", namespace="ns_jobs")]) == [named[1], None]
    client.delete_multi([e.key for e in named])
    client.delete(key)
    assert client.count("JobKind", "ns_jobs") == 0 and stored(served, key) is None
    ids = client.allocate_ids(Key("JobKind", namespace="ns_jobs"), 3)
    assert len(set(ids)) == 3 and key.id not in ids
    if not served.on_cloud:  # sqlite allocates in sequence; the service scatters them
        assert all(i > key.id for i in ids)


def _unreserved(name: str) -> bool:
    """Cloud Datastore refuses names like ``__x__`` (see the test after the round trip)."""
    return not (name.startswith("__") and name.endswith("__"))


_names = st.text(string.ascii_letters + "_", min_size=1, max_size=12).filter(_unreserved)
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40), st.binary(max_size=40),
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)),
    st.builds(lambda i: __import__("courseport.datastore", fromlist=["Key"]).Key("Ref", i, namespace=NS),
              st.integers(1, 2**63 - 1)),
)
_values = st.one_of(_scalars, st.lists(_scalars, max_size=4))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(props=st.dictionaries(_names, _values, max_size=6), name=st.text(min_size=1, max_size=30).filter(_unreserved))
def test_every_value_type_round_trips(served: StoreCopy, binding: tuple, props: dict, name: str) -> None:
    from courseport.datastore import Entity, Key, Text

    _, client = binding
    props = {k: (Text(v) if isinstance(v, str) and k.startswith("t") else v) for k, v in props.items()}
    entity = Entity(Key("Generated", name.replace("\x00", "_"), namespace="ns_jobs"), props)
    client.put(entity)
    got = client.get(entity.key)
    assert got == entity
    assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in props.items()}
    assert stored(served, entity.key) == entity
    client.delete(entity.key)


@pytest.mark.parametrize("reserved", ["name", "property", "kind"])
def test_a_name_cloud_datastore_reserves(served: StoreCopy, binding: tuple, reserved: str) -> None:
    """``__x__`` names: the service refuses them, and the job is told why (a 400, nothing
    written); the embedded store keeps them."""
    from courseport.datastore import Entity, Key
    from courseport.errors import UserError

    _, client = binding
    entity = Entity(Key("__Reserved__" if reserved == "kind" else "Reserved",
                        "__reserved__" if reserved == "name" else "plain", namespace="ns_jobs"),
                    {"__reserved__" if reserved == "property" else "plain": 1})
    if not served.on_cloud:
        client.put(entity)
        assert stored(served, entity.key) == entity
        client.delete(entity.key)
        return
    with pytest.raises(UserError, match=f'The {"key path element name" if reserved == "name" else reserved}'
                                        f'[. a-z]*"__[a-zA-Z]+__" is reserved'):
        client.put(entity)
    assert stored(served, entity.key) is None


@pytest.mark.parametrize("line, text", [
    ('{"k":{"ns":"n","path":[["K","a"]]},"s":{},"d":{"x": 1}}', '{"x": 1}'),
    ('{"k": {"ns":"n","path":[["K","a"]]}, "s":{}, "d":{"x": 1}}', None),  # another layout: parsed whole
    ('{"d":{"x": 1},"s":{},"k":{"ns":"n","path":[["K","a"]]}}', None),
    ('{"k":{"ns":"n","path":[["K","a"]]},"s":{},"d":{"x": "<b>"}}', None),  # not as dumps writes it
    ('{"k":{"ns":"n","path":[["K","a"]]},"s":{},"d":{"x": "\u00e9"}}', None),
])
def test_a_line_keeps_its_text_only_as_dumps_writes_it(line: str, text: str | None) -> None:
    from courseport.datastore import Key
    from courseport.datastore.wire import parse_line

    key, data, signature, kept = parse_line(line)
    assert key == Key("K", "a", namespace="n") and signature == {} and set(data) == {"x"}
    assert kept == text


@pytest.mark.parametrize("line, why", [
    ('{"k":{"ns":"n","path":[["K","a"]]},"s":{},"d":{"x": 18446744073709551616}}', "beyond 64 bits"),
    ('{"k":{"ns":"n","path":[["K","a"]]},"s":{},"d":{"x": NaN}}', "not a JSON number"),
    ('{"k":{"ns":"n","path":[["K","a"]]},"s":{},"d":{"x": 1},"z":1}', "an entity line is an object"),
    ('{"k":{"ns":"n","path":[["K",null],["L","b"]]},"s":{},"d":{}}', "last element"),
    ('{"k":{"ns":"n","path":[["K","a"]]},"s":{},"d":' + "[" * 200 + "]" * 200 + "}", "must be objects"),
    ('{"k":{"ns":"n","path":[["K","a"]]},"s":{},"d":{"x":' + "[" * 150 + "]" * 150 + "}}", "nest too deep"),
])
def test_a_bad_line_is_refused_saying_why(server: Server, line: str, why: str) -> None:
    import httpx

    from courseport.datastore.wire import WireError, parse_line

    with pytest.raises(WireError, match=why):
        parse_line(line)
    answer = httpx.post(f"{server.url}/api/v1/put", content=line.encode(), auth=(ADMIN, server.app_password))
    assert answer.status_code == 400 and why in answer.json()["error"]
