"""Datastore keys and App Engine's URL-safe key strings (spec §1.6.1)."""

from __future__ import annotations

import base64
import random

import pytest

from conftest import member_kind, member_rows, model_members, params_or_skip
from courseport.datastore import Key, KeyStringError
from courseport.datastore.keys import KeyError_

SPEC_STUDENT_KEY = (
    "agxkZXZ-bXljb3Vyc2VyIgsSB1N0dWRlbnQiFTEyNDMxNzMxNjQwNTIwNjEzNzExMQyiARBuc19jbGlja2xpbmt0ZXN0"
)
SPEC_EVENT_KEY = "agxkZXZ-bXljb3Vyc2VyGAsSC0V2ZW50RW50aXR5GICAgICAwN8IDKIBEG5zX2NsaWNrbGlua3Rlc3Q"
KEY_FIELDS = ("key", "key_by_user_id")

MEMBERS_WITH_ROWS = [name for name in model_members() if member_rows(name)]


# --- a tiny independent Reference encoder, to build strings the code did not make


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def _reference(app: str, elements: list[bytes], namespace: bytes | None = None) -> str:
    path = b"".join(b"\x0b" + element + b"\x0c" for element in elements)
    raw = _field(b"\x6a", app.encode()) + _field(b"\x72", path)
    if namespace is not None:
        raw += _field(b"\xa2\x01", namespace)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _element(kind: str, ident: int | str | None) -> bytes:
    out = _field(b"\x12", kind.encode())
    if isinstance(ident, int):
        out += b"\x18" + _varint(ident)
    elif isinstance(ident, str):
        out += _field(b"\x22", ident.encode())
    return out


def _raw(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- every key Course Builder wrote -----------------------------------------------


@pytest.mark.parametrize("member", params_or_skip(MEMBERS_WITH_ROWS))
def test_fixture_keys_round_trip(member: str) -> None:
    kind = member_kind(member)
    rows = member_rows(member)
    checked = 0
    for row in rows:
        assert "key" in row, f"{member}: a row without a key"
        for name in KEY_FIELDS:
            if name not in row:
                continue
            text = row[name]
            app, key = Key.from_urlsafe(text)
            assert app == "dev~mycourse"
            assert key.to_urlsafe(app) == text
            assert key.namespace.startswith("ns_")
            assert key.is_complete
            checked += 1
        app, key = Key.from_urlsafe(row["key"])
        assert key.kind == kind
        # key.id / key.name come from the same key (id-keyed rows say "None")
        if row["key.id"] is not None:
            assert key.id == row["key.id"] and row["key.name"] == "None"
        else:
            assert key.name == row["key.name"]
    assert checked >= len(rows)


def test_fixture_key_count_is_large() -> None:
    members = model_members()
    if not members:
        pytest.skip("../shared/fixtures/coursebuilder absent: Course Builder fixtures are needed")
    total = sum(1 for name in members for row in member_rows(name) for f in KEY_FIELDS if f in row)
    assert total > 800
    # both zip and directory archives contribute
    assert any("!" in name for name in MEMBERS_WITH_ROWS)
    assert any("!" not in name for name in MEMBERS_WITH_ROWS)


# --- the spec's examples --------------------------------------------------------------


def test_spec_example_decodes() -> None:
    app, key = Key.from_urlsafe(SPEC_STUDENT_KEY)
    assert app == "dev~mycourse"
    assert key == Key("Student", "124317316405206137111", namespace="ns_clicklinktest")
    assert key.path == (("Student", "124317316405206137111"),)
    assert key.kind == "Student"
    assert key.name == "124317316405206137111" and key.id is None
    assert key.namespace == "ns_clicklinktest"
    assert key.parent is None
    built = Key("Student", "124317316405206137111", namespace="ns_clicklinktest")
    assert built.to_urlsafe("dev~mycourse") == SPEC_STUDENT_KEY


def test_spec_event_key_is_an_id_key() -> None:
    app, key = Key.from_urlsafe(SPEC_EVENT_KEY)
    assert app == "dev~mycourse"
    assert key.id == 4923613069180928 and key.name is None
    assert isinstance(key.id_or_name, int)
    assert Key("EventEntity", 4923613069180928, namespace="ns_clicklinktest").to_urlsafe(
        "dev~mycourse") == SPEC_EVENT_KEY


def test_same_key_in_another_app_differs_only_in_app() -> None:
    key = Key("Student", "x", namespace="ns_a")
    one, other = key.to_urlsafe("dev~mycourse"), key.to_urlsafe("s~other-app")
    assert one != other
    assert Key.from_urlsafe(other) == ("s~other-app", key)


# --- ids and names ----------------------------------------------------------------------


def test_id_key_and_name_key_are_different_keys() -> None:
    by_id, by_name = Key("Thing", 5), Key("Thing", "5")
    assert by_id != by_name
    assert len({by_id, by_name}) == 2
    assert by_id.id == 5 and by_id.name is None
    assert by_name.name == "5" and by_name.id is None
    id_text, name_text = by_id.to_urlsafe("app"), by_name.to_urlsafe("app")
    assert id_text != name_text
    assert Key.from_urlsafe(id_text)[1].id_or_name == 5
    assert Key.from_urlsafe(name_text)[1].id_or_name == "5"


@pytest.mark.parametrize("ident", [1, 127, 128, 2**31, 2**32 + 1, 5_066_549_580_791_808, 2**63 - 1])
def test_id_round_trips(ident: int) -> None:
    key = Key("K", ident, namespace="ns")
    assert Key.from_urlsafe(key.to_urlsafe("a~b")) == ("a~b", key)
    # matches an independent encoding of the Reference
    assert key.to_urlsafe("a~b") == _reference("a~b", [_element("K", ident)], b"ns")


@pytest.mark.parametrize("name", ["x", "a b", "user@example.com", "/assets/img/logo.png:shard:0",
                                  "é", "日本語", "😀", "x" * 500])
def test_name_round_trips(name: str) -> None:
    key = Key("K", name, namespace="ns_x")
    text = key.to_urlsafe("dev~mycourse")
    assert "=" not in text and "+" not in text and "/" not in text
    assert text == _reference("dev~mycourse", [_element("K", name)], b"ns_x")
    assert Key.from_urlsafe(text) == ("dev~mycourse", key)


@pytest.mark.parametrize("flat, namespace", [
    (("Parent", 1, "Child", "a"), ""),
    (("Parent", "p", "Child", 2), "ns_x"),
    (("A", 1, "B", "b", "C", 3, "D", "日本"), "ns_deep"),
    (("Course", "c", "Unit", 12), "ns_a.b-c_d"),
])
def test_child_keys_round_trip(flat: tuple, namespace: str) -> None:
    key = Key(*flat, namespace=namespace)
    assert len(key.path) == len(flat) // 2
    assert key.kind == flat[-2] and key.id_or_name == flat[-1]
    parent = key.parent
    assert parent == Key(*flat[:-2], namespace=namespace)
    app, back = Key.from_urlsafe(key.to_urlsafe("dev~mycourse"))
    assert app == "dev~mycourse"
    assert back == key and back.path == key.path and back.namespace == namespace
    assert back.parent == parent
    elements = [_element(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
    expected = _reference("dev~mycourse", elements, namespace.encode() if namespace else None)
    assert key.to_urlsafe("dev~mycourse") == expected
    assert Key.from_path(key.path, namespace) == key


def test_default_namespace_is_omitted() -> None:
    plain = Key("Student", "x")
    assert plain == Key("Student", "x", namespace="")
    assert plain.namespace == ""
    text = plain.to_urlsafe("app")
    assert b"\xa2\x01" not in _raw(text)  # no name_space field at all
    assert text == _reference("app", [_element("Student", "x")])
    assert Key.from_urlsafe(text) == ("app", plain)
    namespaced = Key("Student", "x", namespace="ns_x")
    assert namespaced != plain
    assert _raw(namespaced.to_urlsafe("app")).endswith(b"\xa2\x01\x04ns_x")


def test_decoding_skips_unknown_fields() -> None:
    # a Reference with an extra varint field (database_id-like) still decodes
    text = _reference("app", [_element("K", 7)])
    raw = _raw(text) + b"\xa8\x01\x05"  # field 21, varint 5
    extended = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    assert Key.from_urlsafe(extended) == ("app", Key("K", 7))


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "", "!!!!", "abc", "AAAA", SPEC_STUDENT_KEY[:40], SPEC_STUDENT_KEY + "x",
    _reference("app", []),                                     # empty path
    _reference("app", [_element("", 1)]),                      # element without a kind
    _reference("app", [_element("K", 0)]),                     # id 0
    _reference("app", [_element("K", -1)]),                    # negative id
    _reference("app", [_element("K", None), _element("C", 1)]),  # incomplete parent
    base64.urlsafe_b64encode(b"\x6a\x03app\x72\x05\x0b\x12\x01K\x22").decode(),  # cut name
    5, None, b"agxk",
])
def test_malformed_key_strings_are_refused(text: object) -> None:
    with pytest.raises(KeyError_) as info:
        Key.from_urlsafe(text)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert KeyStringError is KeyError_
    message = str(info.value)
    assert message and "\n" not in message


@pytest.mark.parametrize("ident", [0, -1, -(2**63), True, False, 2**63, 2**64, 1.0, 1.5, b"x", ""])
def test_invalid_ids_are_refused(ident: object) -> None:
    with pytest.raises(KeyError_) as info:
        Key("K", ident)  # type: ignore[arg-type]
    assert str(info.value)
    with pytest.raises(KeyError_):
        Key("K").with_id(ident)  # type: ignore[arg-type]


@pytest.mark.parametrize("args", [(), ("",), (1, 2), ("A", None, "B", 1), (None,)])
def test_invalid_paths_are_refused(args: tuple) -> None:
    with pytest.raises(KeyError_):
        Key(*args)


def test_largest_id_is_accepted() -> None:
    assert Key("K", 2**63 - 1).id == 2**63 - 1


# --- ordering ----------------------------------------------------------------------------------

ORDERED = [
    Key("K", 1), Key("K", 2), Key("K", 10), Key("K", 255), Key("K", 256), Key("K", 2**32),
    Key("K", 5_066_549_580_791_808), Key("K", 2**63 - 1),
    Key("K", "1"), Key("K", "10"), Key("K", "2"), Key("K", "A"), Key("K", "B"), Key("K", "Z"),
    Key("K", "a"), Key("K", "aa"), Key("K", "ab"), Key("K", "b"), Key("K", "z"),
    Key("K", "\u00e9"), Key("K", "\u00fc"), Key("K", "\u0100"), Key("K", "\u65e5\u672c"),
    Key("K", "\U0001f600"),
]


def test_ids_ascending_before_names_lexicographic() -> None:
    shuffled = ORDERED[:]
    random.Random(3).shuffle(shuffled)
    assert sorted(shuffled) == ORDERED
    assert sorted(shuffled, key=Key.sort_key) == ORDERED


def test_sort_key_agrees_with_comparisons() -> None:
    keys = ORDERED + [Key("K", 3, "C", "x"), Key("K", 3), Key("K", 3, "C", 1), Key("J", 9), Key("L", 1)]
    for a in keys:
        for b in keys:
            assert (a < b) == (a.sort_key() < b.sort_key()), (a, b)
            assert (a == b) == (a.sort_key() == b.sort_key()), (a, b)


def test_parent_sorts_before_its_children() -> None:
    keys = [Key("P", 2), Key("P", 1, "C", "b"), Key("P", 1), Key("P", 1, "C", 5), Key("P", 1, "C", "a")]
    assert sorted(keys) == [
        Key("P", 1), Key("P", 1, "C", 5), Key("P", 1, "C", "a"), Key("P", 1, "C", "b"), Key("P", 2)]


def test_keys_are_hashable_and_equal_by_value() -> None:
    a = Key("Student", "u1", namespace="ns")
    b = Key.from_urlsafe(a.to_urlsafe("app"))[1]
    assert a == b and hash(a) == hash(b)
    assert {a: 1}[b] == 1
    assert a != Key("Student", "u1", namespace="ns2")
    assert a != Key("Students", "u1", namespace="ns")
