"""``--privacy`` against hostile identities, for every kind whose rows name a learner.

Hypothesis makes learners whose identities are built to break naive rules:
user ids holding ``-``, ``:``, ``.``, ``@``, brackets and unicode, emails
used as names, one learner's user id equal to another's email, a legacy
learner keyed by email. Every kind of spec §3.9 that holds a learner's
identity gets rows for them, written into a real store the way Course
Builder writes them; then the real ``download datastore --privacy`` runs.

Each identity carries a tag (``Lrn<i><role>Zq``) that appears nowhere else,
so a match is never a coincidence. The archive's every decompressed byte,
the zip's own bytes, and every key string (decoded, and the key strings
inside key names) are scanned for each value and for its tag: raw,
lower-cased, JSON-escaped (once and twice, for JSON inside JSON), URL-encoded
and base64 (standard and URL-safe, at each of the three alignments, for
values of 12 bytes or more). Then every pseudonym is checked against an
HMAC computed here: the rows join on them across kinds. A second test kills
a download after its first kind and resumes it with the same secret: the
pseudonyms, and the bytes, are those of an uninterrupted run.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import tempfile
import urllib.parse
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import archive_members, cli_env, etl, kind_rows
from courseport.courses.site import Site
from courseport.datastore import Entity, Key, SqliteBackend, Text

SECRET = "hostile s3cret"
APP_ID = "hostile-app"
PREFIX = "/hx"
NS = "ns_hx"
WHEN = dt.datetime(2016, 4, 6, 20, 14, 27, 542076)
ENQUEUED_US = 1459973667542076  # a Notification's enqueue time, µs since the epoch


def h(value: object) -> str:
    return hmac.new(SECRET.encode(), str(value).encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


# --- learners -------------------------------------------------------------------------------------

# characters that split, quote or escape something somewhere: key name separators,
# JSON, URLs, YAML, HTML, and unicode beyond the BMP
HOSTILE = "-:.@()+/_' \"<>&%\\,[]é中\u2028😀"
_piece = st.text(alphabet=st.sampled_from(HOSTILE + "ab7"), max_size=4)
# what only a property holds can be any string a JSON archive can carry, a lone
# surrogate included (a key name cannot hold one)
_field_piece = st.text(alphabet=st.sampled_from(HOSTILE + "ab7\ud800\udfff"), max_size=4)


@dataclass
class Learner:
    index: int
    uid: str
    email: str
    name: str
    old_email: str = ""  # only ever in properties: an email changed, an address invited
    legacy: bool = False  # keyed by email, as Course Builder <= 1.8 did

    @property
    def student_key_name(self) -> str:
        return self.email if self.legacy else self.uid

    def tags(self) -> list[str]:
        return [f"Lrn{self.index}{role}Zq" for role in "ueno"]


@st.composite
def learners(draw) -> list[Learner]:
    count = draw(st.integers(min_value=2, max_value=4))
    out = []
    for i in range(count):
        uid = draw(_piece) + f"Lrn{i}uZq" + draw(_piece)
        email = draw(_piece) + f"Lrn{i}eZq" + draw(_piece) + "@" + draw(_piece) + "example.com"
        name = email if draw(st.booleans()) else draw(_piece) + f"Lrn{i}nZq 名前 " + draw(_piece)
        old_email = draw(_field_piece) + f"Lrn{i}oZq" + draw(_field_piece) + "@old.example.com"
        old_email = json.loads(json.dumps(old_email))  # as JSON reads it: a surrogate pair is one character
        out.append(Learner(i, uid, email, name, old_email))
    if draw(st.booleans()):  # one learner's user id is another's email
        out[1].uid = out[0].email
    if draw(st.booleans()):
        out[-1].legacy = True
    return out


# --- the rows Course Builder writes for them ----------------------------------------------------------


def _key(kind: str, ident: Any) -> Key:
    return Key(kind, ident, namespace=NS)


def _student(learner: Learner) -> Key:
    return _key("Student", learner.uid)


def _text(obj: Any) -> Text:
    return Text(json.dumps(obj))


def world_entities(people: list[Learner]) -> list[Entity]:
    """Rows of every learner-bearing kind of spec §3.9, as Course Builder would write them."""
    out: list[Entity] = []
    add = out.append
    for n, p in enumerate(people):
        other = people[(n + 1) % len(people)]
        student = _student(p)
        add(Entity(_key("Student", p.student_key_name), {
            "enrolled_on": WHEN, "user_id": p.uid, "email": p.email, "name": p.name,
            "additional_fields": _text([["form01", p.name], ["email", p.email]]),
            "is_enrolled": True, "last_seen_on": WHEN, "scores": _text({"1": 50}), "labels": "",
            "group_id": None}))
        add(Entity(_key("PersonalProfile", p.uid), {
            "email": p.email, "legal_name": p.name, "nick_name": p.name,
            "date_of_birth": dt.date(1990, 5, 17), "course_info": _text({NS: {"final_grade": 2}})}))
        add(Entity(_key("StudentPreferencesEntity", p.uid), {"data": _text({"last_location": "/h/unit?unit=1"})}))
        add(Entity(_key("StudentAnswersEntity", p.uid), {"updated_on": WHEN, "data": _text({"1": [1, 2]})}))
        for kind, prop in (("StudentPropertyEntity", "linear-course-completion"),
                           ("StudentFormEntity", "form-key-1"),
                           ("StudentRatingProperty", "student-rating-property")):
            add(Entity(_key(kind, f"{p.uid}-{prop}"), {"updated_on": WHEN, "name": prop, "value": _text({"r.0": 2})}))
        add(Entity(_key("InvitationStudentProperty", f"{p.uid}-invitation-student-property"), {
            "updated_on": WHEN, "name": "invitation-student-property",
            "value": _text({"email_list": [other.email, p.old_email], "sender": p.email})}))
        add(Entity(_key("EventEntity", 1000 + n), {
            "recorded_on": WHEN, "source": "click-link", "user_id": p.uid, "data": _text({"href": "/x"})}))
        add(Entity(_key("EventEntity", 2000 + n), {
            "recorded_on": WHEN, "source": "gitkit-email-change", "user_id": p.uid,
            "data": _text({"from": p.old_email, "to": p.email})}))
        add(Entity(_key("StudentRatingEvent", 3000 + n), {
            "recorded_on": WHEN, "source": "rating-event", "user_id": p.uid,
            "data": _text({"key": "u.1.l.2", "rating": 4, "additional_comments": "fine",
                           "email": p.email, "name": p.name})}))
        # peer review: p submits unit 1, `other` reviews it
        submission = _key("Submission", f"(submission:1:{p.uid})")
        add(Entity(submission, {"contents": _text({"answers": [1]}), "updated_on": WHEN,
                                "reviewee_key": student, "unit_id": "1", "instance_id": None}))
        add(Entity(_key("Submission", f"(submission:2:inst7:{p.uid})"), {
            "contents": _text("file"), "updated_on": WHEN, "reviewee_key": student, "unit_id": "2",
            "instance_id": "inst7"}))
        review = _key("Review", f"(review:1:{student.to_urlsafe(APP_ID)}:{_student(other).to_urlsafe(APP_ID)})")
        add(Entity(review, {"contents": _text({"q": "good"}), "reviewee_key": student,
                            "reviewer_key": _student(other), "unit_id": "1"}))
        summary = _key("ReviewSummary", f"(review_summary:(submission:1:{p.uid}))")
        add(Entity(summary, {"change_date": WHEN, "create_date": WHEN, "assigned_count": 1,
                             "completed_count": 1, "expired_count": 0, "reviewee_key": student,
                             "submission_key": submission, "unit_id": "1"}))
        add(Entity(_key("ReviewStep", f"(review_step:(submission:1:{p.uid}):{other.uid})"), {
            "assigner_kind": "AUTO", "change_date": WHEN, "create_date": WHEN, "submission_key": submission,
            "unit_id": "1", "state": "completed", "removed": False,
            "review_key": review if n % 2 == 0 else None,  # a step not reviewed yet
            "review_summary_key": summary, "reviewee_key": student, "reviewer_key": _student(other)}))
        add(Entity(_key("QuestionAnswersEntity", 4000 + n), {
            "data": _text([{"answer": "x"}]), "primary_id": p.uid, "student_group": None}))
        for kind, prop, value in (("StudentVector", "vector", _text([1, 2])),
                                  ("StudentClusters", "clusters", _text({"1": 0})),
                                  ("StudentAggregateEntity", "data", zlib.compress(b'{"page_views": []}')),
                                  ("StudentNewsEntity", "data", _text({"seen": []})),
                                  ("ImmediateRemovalState", "state", 1),
                                  ("BatchRemovalState", "resource_types", ["Student", "EventEntity"])):
            add(Entity(_key(kind, p.uid), {prop: value}))
        add(Entity(_key("EmailMapping", p.uid), {"email": p.email}))
        add(Entity(_key("SubscriptionStateEntity", p.email), {"is_subscribed": False}))
        add(Entity(_key("StudentGroupMembership", p.email.lower()), {"group_id": 17}))
        for kind, extra in (("Notification", {"sender": other.email, "subject": Text(f"Welcome {p.name}"),
                                              "audit_trail": {"to": p.email}, "_last_exception": None,
                                              "_recoverable_failure_count": 0, "_done_date": None,
                                              "_fail_date": None, "_last_enqueue_date": WHEN, "_send_date": None}),
                            ("Payload", {"body": Text(f"Dear {p.name}"), "html": None})):
            add(Entity(_key(kind, f"({kind.lower()}:{p.email}:welcome:{ENQUEUED_US + n})"), {
                "enqueue_date": WHEN, "intent": "welcome", "to": p.email, "_change_date": WHEN,
                "_retention_policy": "audit_trail", **extra}))
        add(Entity(_key("_ExternalTask", 5000 + n), {
            "change_date": WHEN, "create_date": WHEN, "result": None, "status": "created",
            "user_id": p.uid, "worker_id": None}))
        add(Entity(_key("EditorPrefsEntity", f"{p.uid}:/h/rest/course/lesson:3"), {"data": _text({"objectives": {}})}))
        add(Entity(_key("CompetencyMeasureEntity", f"{p.uid}:7:SuccessRateCompetencyMeasure"),
                   {"data": _text({"data": {"score": 1}})}))
        add(Entity(_key("EmailToObfuscatedUserId", 6000 + n), {"user": {"email": p.email, "user_id": p.uid},
                                                               "last_modified": WHEN}))
    emails = [p.email for p in people]
    add(Entity(_key("RoleEntity", 1), {"data": _text({"name": "TAs", "users": emails, "permissions": {}})}))
    add(Entity(_key("ConfigPropertyEntity", "gcb_admin_user_emails"),
               {"value": Text(" ".join(f"[{e}]" for e in emails)), "is_draft": False}))
    add(Entity(_key("ConfigPropertyEntity", "gcb_user_whitelist"),
               {"value": Text(",\n".join(emails)), "is_draft": False}))
    return out


def build_store(root: Path, people: list[Learner]) -> Path:
    db = root / "courseport.db"
    with SqliteBackend(db) as store:
        store.set_meta("app_id", APP_ID)
        Site(store).add_course(PREFIX)
        store.put_multi(world_entities(people))
    return db


def privacy_download(db: Path, archive: Path, *extra: str) -> dict[str, bytes]:
    etl("download", "datastore", PREFIX, f"sqlite:///{db}", "--archive_path", archive,
        "--privacy", "--privacy_secret", SECRET, *extra)
    return archive_members(archive)


# --- looking for identities -----------------------------------------------------------------


def _base64_needles(data: bytes) -> Iterator[bytes]:
    """The base64 of ``data`` as it appears inside a longer encoded blob, at each alignment."""
    for offset in range(3):
        total = offset + len(data)
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * offset + data)
            start = -(-offset * 4 // 3)  # characters that hold some of the padding bytes
            yield text[start:(total // 3) * 4]


def needles(value: str) -> set[bytes]:
    """The forms in which ``value`` could be present in an archive's bytes."""
    forms: set[bytes] = set()
    for text in {value, value.lower()}:
        raw = text.encode("utf-8", "surrogatepass")
        once = json.dumps(text)[1:-1]
        twice = json.dumps(once)[1:-1]
        forms |= {raw, once.encode("ascii"), twice.encode("ascii"),
                  once.replace("<", "\\u003C").replace(">", "\\u003E").encode("ascii"),
                  urllib.parse.quote(raw, safe="").encode("ascii"),
                  urllib.parse.quote_plus(raw, safe="").encode("ascii")}
        if len(raw) >= 12:  # long enough that its base64 is no coincidence
            forms |= {n for n in _base64_needles(raw) if len(n) >= 12}
    return forms


def identity_needles(people: list[Learner]) -> list[tuple[str, bytes]]:
    out = []
    for p in people:
        for label, value in [("uid", p.uid), ("email", p.email), ("name", p.name), ("old email", p.old_email)] + \
                [("tag", t) for t in p.tags()]:
            out += [(f"learner {p.index} {label} {value!r}", n) for n in needles(value)]
    return out


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def decoded_key_names(rows: dict[str, list[dict]]) -> list[str]:
    """Every key string in the rows (fields, and parts of key names) decoded to its path names."""
    names = []
    for kind_rows_ in rows.values():
        for row in kind_rows_:
            for text in _strings(row):
                for part in {text, *text.replace("(", ":").replace(")", ":").split(":")}:
                    if len(part) < 20:
                        continue
                    try:
                        app, key = Key.from_urlsafe(part)
                    except ValueError:
                        continue
                    names.append(app)
                    names += [str(ident) for _, ident in key.path] + [key.namespace]
    return names


def assert_no_identity(archive: Path, members: dict[str, bytes], people: list[Learner]) -> None:
    found = identity_needles(people)
    blobs = dict(members)
    blobs["<the zip file itself>"] = archive.read_bytes()
    for name, data in blobs.items():
        for label, needle in found:
            assert needle not in data, f"{name} holds {label} as {needle!r}"
    names = decoded_key_names(kind_rows(members))
    assert names, "no key strings decoded"
    for decoded in names:
        for p in people:
            for value in [p.uid, p.email, p.name, p.old_email, *p.tags()]:
                assert value not in decoded and value.lower() not in decoded.lower(), (decoded, value)


# --- pseudonyms join ----------------------------------------------------------------------------


def _path(text: str) -> tuple:
    app, key = Key.from_urlsafe(text)
    assert (app, key.namespace) == (APP_ID, NS), (app, key)
    return key.path


def _ks(kind: str, name: str) -> str:
    return Key(kind, name, namespace=NS).to_urlsafe(APP_ID)


def _cb_usec(usec: int) -> int:
    """Course Builder's µs round trip through a datetime and a float (notifications)."""
    return int(1_000_000 * (usec / 1_000_000))


def assert_pseudonyms_join(rows: dict[str, list[dict]], people: list[Learner]) -> None:
    by_name = {kind: {r["key.name"]: r for r in kind_rows_} for kind, kind_rows_ in rows.items()}
    by_id = {kind: {r["key.id"]: r for r in kind_rows_} for kind, kind_rows_ in rows.items()}
    for n, p in enumerate(people):
        other = people[(n + 1) % len(people)]
        u, r = h(p.uid), h(other.uid)
        student = by_name["Student"][h(p.student_key_name)]
        assert student["user_id"] == u
        assert _path(student["key_by_user_id"]) == (("Student", u),)
        assert not {"email", "name", "additional_fields"} & set(student)
        profile = by_name["PersonalProfile"][u]
        assert set(profile) == {"key", "key.id", "key.name", "course_info"}
        for kind in ("StudentPreferencesEntity", "StudentAnswersEntity", "StudentVector", "StudentClusters",
                     "StudentAggregateEntity", "StudentNewsEntity", "ImmediateRemovalState",
                     "BatchRemovalState", "EmailMapping"):
            row = by_name[kind][u]
            assert _path(row["key"]) == ((kind, u),), kind
        assert "email" not in by_name["EmailMapping"][u]
        assert by_name["BatchRemovalState"][u]["resource_types"] == ["Student", "EventEntity"]
        for kind, prop in (("StudentPropertyEntity", "linear-course-completion"),
                           ("StudentFormEntity", "form-key-1"),
                           ("StudentRatingProperty", "student-rating-property"),
                           ("InvitationStudentProperty", "invitation-student-property")):
            assert by_name[kind][f"{u}-{prop}"]["name"] == prop, kind
        invitation = by_name["InvitationStudentProperty"][f"{u}-invitation-student-property"]
        assert json.loads(invitation["value"]) == {"email_list": [h(other.email), h(p.old_email)]}
        assert by_id["EventEntity"][1000 + n]["user_id"] == u
        change = by_id["EventEntity"][2000 + n]
        assert change["user_id"] == u and json.loads(change["data"]) == {"from": h(p.old_email), "to": h(p.email)}
        rating = by_id["StudentRatingEvent"][3000 + n]
        assert rating["user_id"] == u
        assert rating["data"] == '{"rating": 4, "additional_comments": "fine", "key": "u.1.l.2"}'
        sub = by_name["Submission"][f"(submission:1:{u})"]
        assert _path(sub["reviewee_key"]) == (("Student", u),)
        assert by_name["Submission"][f"(submission:2:inst7:{u})"]["instance_id"] == "inst7"
        review = by_name["Review"][f"(review:1:{_ks('Student', u)}:{_ks('Student', r)})"]
        assert (_path(review["reviewee_key"]), _path(review["reviewer_key"])) == ((("Student", u),), (("Student", r),))
        summary = by_name["ReviewSummary"][f"(review_summary:(submission:1:{u}))"]
        assert _path(summary["submission_key"]) == (("Submission", f"(submission:1:{u})"),)
        step = by_name["ReviewStep"][f"(review_step:(submission:1:{u}):{r})"]
        assert _path(step["review_summary_key"]) == (("ReviewSummary", f"(review_summary:(submission:1:{u}))"),)
        assert _path(step["reviewer_key"]) == (("Student", r),)
        if n % 2 == 0:
            assert _path(step["review_key"]) == (("Review", review["key.name"]),)
        else:
            assert step["review_key"] is None
        answers = by_name["QuestionAnswersEntity"][h(4000 + n)]
        assert answers["primary_id"] == u and answers["key.id"] is None
        assert by_name["SubscriptionStateEntity"][h(p.email)]["is_subscribed"] is False
        assert by_name["StudentGroupMembership"][h(p.email.lower())]["group_id"] == 17
        usec = _cb_usec(ENQUEUED_US + n)
        note = by_name["Notification"][f"(notification:{h(p.email)}:welcome:{usec})"]
        assert (note["to"], note["sender"]) == (h(p.email), h(other.email))
        assert not {"subject", "audit_trail", "_last_exception"} & set(note)
        payload = by_name["Payload"][f"(payload:{h(p.email)}:welcome:{usec})"]
        assert payload["to"] == h(p.email) and not {"body", "html"} & set(payload)
        assert by_id["_ExternalTask"][5000 + n]["user_id"] == u
        assert f"{u}:/h/rest/course/lesson:3" in by_name["EditorPrefsEntity"]
        assert f"{u}:7:SuccessRateCompetencyMeasure" in by_name["CompetencyMeasureEntity"]
        assert set(by_id["EmailToObfuscatedUserId"][6000 + n]) == {"key", "key.id", "key.name", "last_modified"}
    role = json.loads(rows["RoleEntity"][0]["data"])
    assert role["users"] == [h(p.email) for p in people]


# --- the tests -----------------------------------------------------------------------------

#: scratch space: memory where there is some (a download syncs each member to disk,
#: which is most of an example's time on a real disk and not what is tested here)
_SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def _scratch() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="courseport-hostile-", dir=_SCRATCH)



@settings(max_examples=100 if _SCRATCH else 25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(people=learners())
def test_no_identity_leaves_and_pseudonyms_join(people: list[Learner]) -> None:
    with _scratch() as tmp:
        root = Path(tmp)
        db = build_store(root, people)
        archive = root / "private.zip"
        members = privacy_download(db, archive)
        assert_no_identity(archive, members, people)
        assert_pseudonyms_join(kind_rows(members), people)


KILL_AFTER_FIRST_KIND = r'''
import os, signal, sys
from courseport.sites import rows
kinds = []
original = rows.RowEncoder.export_page
def export_page(self, *args, **kwargs):
    if self.kind not in kinds:
        kinds.append(self.kind)
    if len(kinds) > 1:  # the first kind is in the archive: die before the second is
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, *args, **kwargs)
rows.RowEncoder.export_page = export_page
from courseport.cli import main
sys.exit(main(sys.argv[1:]))
'''


@settings(max_examples=5 if _SCRATCH else 3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(people=learners())
def test_pseudonyms_are_stable_across_a_resume(people: list[Learner]) -> None:
    with _scratch() as tmp:
        root = Path(tmp)
        db = build_store(root, people)
        clean = privacy_download(db, root / "clean.zip")
        archive = root / "resumed.zip"
        argv = ["download", "datastore", PREFIX, f"sqlite:///{db}", "--archive_path", str(archive),
                "--privacy", "--privacy_secret", SECRET]
        wrapper = root / "wrapper.py"
        wrapper.write_text(KILL_AFTER_FIRST_KIND)
        env = cli_env(root / "home")
        killed = subprocess.run([sys.executable, str(wrapper), *argv], env=env, capture_output=True, timeout=120)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert not archive.exists()
        assert Path(f"{archive}.partial").exists()
        resumed = subprocess.run([sys.executable, "-m", "courseport", *argv, "--resume"], env=env,
                                 capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        members = archive_members(archive)
        assert sorted(members) == sorted(clean)
        for name, data in clean.items():
            assert members[name] == data, name
        assert_no_identity(archive, members, people)
        assert_pseudonyms_join(kind_rows(members), people)
