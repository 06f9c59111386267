"""``--privacy`` on rows its rules were not written for: never a traceback.

Hypothesis writes rows of the kinds whose privacy rules read key names or
rewrite properties, with key names that are anything from arbitrary text
to near misses of the kind's form (wrong brackets, missing parts, unicode
digits, huge numbers), and property values that are anything a JSON
archive can carry (not JSON, JSON of the wrong shape, nesting too deep to
parse, lone surrogates, references that are not keys). The real download
must then either succeed, every key that names someone rebuilt, or refuse
in one line that names the kind and ``--exclude_types``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import archive_members, etl, kind_rows
from courseport.courses.site import Site
from courseport.datastore import Entity, Key, SqliteBackend, Text
from courseport.errors import UserError
from courseport.models import REGISTRY

SECRET = "s3cret"
PREFIX = "/fz"
NS = "ns_fz"

#: kinds whose privacy rules read key names or rewrite values (the rest keep rows as stored)
RULED = sorted(kind for kind, schema in REGISTRY.items()
               if schema.safe_key.__name__ != "_identity_safe_key" or schema.rewrite is not None
               or schema.key_props)

_CHARS = "():-_.@ ab12²٣é\u2028"
#: a few ids reused everywhere, so that names and references agree as often as they clash
_POOL = ["u1", "u:2", "u-3", "(u4)", "u5)", "²", "a@b.c"]
_text = st.one_of(st.sampled_from(_POOL), st.text(alphabet=st.sampled_from(_CHARS), min_size=1, max_size=12))
_digits = st.one_of(st.from_regex(r"[0-9]{1,19}", fullmatch=True), st.just("9" * 400), st.just("²٣"),
                    st.just("١٢٣"))


def _student_key(name: str) -> Key:
    return Key("Student", name, namespace=NS)


_student_strings = _text.map(lambda n: _student_key(n).to_urlsafe("other-app"))
_references = st.one_of(st.none(), _text.map(_student_key), _text, _student_strings)

#: each kind's key name form, and near misses of it
_FORMS = {
    "-": ["{a}-{b}", "{a}-linear-course-completion", "{a}-{b}-{c}", "{a}"],
    ":": ["{a}:{b}:{c}", "{a}:{b}", "{a}:{b}:{c}:{a}", "{a}"],
    "Submission": ["(submission:{a}:{b})", "(submission:{a}:{b}:{c})", "(submission:{a})", "(submission{a}"],
    "Review": ["(review:{a}:{k}:{k2})", "(review:{a}:{b}:{c})", "(review:{a}:{k})", "(review:{k}"],
    "ReviewSummary": ["(review_summary:(submission:{a}:{b}))", "(review_summary:(submission:{a}))",
                      "(review_summary:{a})"],
    "ReviewStep": ["(review_step:(submission:{a}:{b}):{c})", "(review_step:(submission:{a}:{b}))",
                   "(review_step:{a}:{b})"],
    "Notification": ["(notification:{a}:{b}:{d})", "(notification:{a}:{d})", "(notification:{a}:{b}:{d}"],
    "Payload": ["(payload:{a}:{b}:{d})", "(payload:{a}:{d})", "payload:{a}:{b}:{d})"],
}


def _forms(kind: str) -> list[str]:
    schema = REGISTRY[kind]
    rule = schema.safe_key.__name__
    if rule == "user_property_safe_key":
        return _FORMS["-"]
    if rule == "colon_triple_safe_key":
        return _FORMS[":"]
    return _FORMS.get(kind, ["{a}"])


@st.composite
def key_names(draw, kind: str) -> str:
    if draw(st.integers(0, 4)) == 0:
        return draw(_text)
    template = draw(st.sampled_from(_forms(kind)))
    return template.format(a=draw(_text), b=draw(_text), c=draw(_text), d=draw(_digits),
                           k=draw(_student_strings), k2=draw(_student_strings))


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | _text | st.just("\ud800"),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["users", "email_list", "from", "to", "key", "rating", "additional_comments", "x"]),
        inner, max_size=4),
    max_leaves=8,
)
_texts = st.one_of(
    st.none(), _text, _json_values.map(json.dumps),
    st.sampled_from(["[" * 5000, '{"a": ' * 5000]),  # deeper than the JSON parser goes
)




@st.composite
def entities(draw) -> list[Entity]:
    out: dict[Key, Entity] = {}
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(RULED))
        schema = REGISTRY[kind]
        ident: Any = draw(key_names(kind)) if schema.key_scheme == "name" or draw(st.booleans()) else \
            draw(st.integers(1, 10**6))
        props: dict[str, Any] = {}
        for prop in schema.properties:
            if prop.type == "key":
                props[prop.name] = draw(_references)
            elif prop.type in ("text", "json"):
                value = draw(_texts)
                props[prop.name] = Text(value) if isinstance(value, str) else value
            elif prop.type == "str":
                props[prop.name] = draw(st.one_of(st.none(), _text, st.sampled_from(
                    ["gitkit-email-change", "linear-course-completion"])))
        if kind == "ConfigPropertyEntity" and draw(st.booleans()):
            ident = draw(st.sampled_from(["gcb_admin_user_emails", "gcb_user_whitelist"]))
        key = Key(kind, ident, namespace=NS)
        out[key] = Entity(key, props)
    return list(out.values())


_SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


@settings(max_examples=400 if _SCRATCH else 120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=entities())
def test_privacy_download_succeeds_or_refuses_in_one_line(rows: list[Entity]) -> None:
    with tempfile.TemporaryDirectory(prefix="courseport-malformed-", dir=_SCRATCH) as tmp:
        db = Path(tmp) / "courseport.db"
        with SqliteBackend(db) as store:
            store.set_meta("app_id", "fz-app")
            Site(store).add_course(PREFIX)
            store.put_multi(rows)
        archive = Path(tmp) / "p.zip"
        kinds = sorted({e.key.kind for e in rows})
        try:
            etl("download", "datastore", PREFIX, f"sqlite:///{db}", "--archive_path", archive,
                "--privacy", "--privacy_secret", SECRET, "--datastore_types", ",".join(kinds))
        except UserError as exc:
            event("refused in one line")
            message = str(exc)
            assert "\n" not in message and "--exclude_types" in message, message
            assert any(kind in message for kind in kinds), message
            assert not archive.exists()
            return
        event("exported")
        exported = kind_rows(archive_members(archive))
        for kind in kinds:  # rows come in the original keys' order
            originals = sorted(e.key for e in rows if e.key.kind == kind)
            assert len(exported[kind]) == len(originals), kind
            if REGISTRY[kind].safe_key.__name__ == "_identity_safe_key":
                continue
            for key, row in zip(originals, exported[kind]):
                assert row["key.id"] is None and row["key.name"] != str(key.id_or_name), (key, row)
