"""``--privacy`` kind by kind: every kind Course Builder 1.11 defines (spec §3.9).

A store holding rows of every one of those kinds, written the way Course
Builder writes them (ordinary user ids and emails), is downloaded twice by
the real command line: plainly, and with ``--privacy``. For the kinds whose
Course Builder rule is kept, each privacy row must be exactly the row that
Course Builder's ``for_export``/``safe_key`` would make from the plain row,
computed here from the spec independently of courseport. Where courseport
goes further (spec §3.9's "PII that --privacy leaves in clear", and the kinds
Course Builder could not export), the row must be that and nothing else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import zlib
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import REPO, archive_members, assert_one_line_error, cli_at, db_path, kind_rows, without
from courseport.courses.site import Site
from courseport.datastore import Entity, Key, SqliteBackend, Text
from courseport.models import REGISTRY

SPEC = REPO.parent / "shared" / "spec" / "coursebuilder-data-spec.md"
SECRET = "s3cret"
APP_ID = "kinds-app"
NS = "ns_kinds"
WHEN = dt.datetime(2016, 4, 6, 20, 14, 27, 542076)
UIDS = ["124317316405206137111", "185804764220139124118", "100000000000000000007"]
EMAILS = ["ann@example.com", "Bob.Smith@Example.com", "cy@example.org"]
ENQUEUED_US = 1459973667542076


def h(value: object) -> str:
    return hmac.new(SECRET.encode(), str(value).encode(), hashlib.sha256).hexdigest()


def _k(kind: str, ident: Any) -> Key:
    return Key(kind, ident, namespace=NS)


def _t(obj: Any) -> Text:
    return Text(json.dumps(obj))


def _spec_kinds() -> list[str]:
    text = SPEC.read_text("utf-8")
    table = text[text.index("### 3.9 Every kind"):text.index("These classes are not in the table")]
    return re.findall(r"^\| `([^`]+)` \|", table, flags=re.M)


# --- the kinds are all known ----------------------------------------------------------------


@pytest.mark.skipif(not SPEC.is_file(), reason="../shared/spec absent")
def test_every_kind_course_builder_defines_has_a_schema_and_privacy_rules() -> None:
    kinds = _spec_kinds()
    assert len(kinds) == 54, kinds
    assert sorted(set(kinds) - set(REGISTRY)) == []
    assert sorted(set(REGISTRY) - set(kinds)) == []


def test_docs_list_every_kind() -> None:
    doc = (REPO / "docs" / "privacy.md").read_text("utf-8")
    listed = set(re.findall(r"^\| `([^`]+)` \|", doc, flags=re.M))
    assert sorted(set(REGISTRY) - listed) == []


# --- a store with every kind --------------------------------------------------------------------


def _cb_world() -> list[Entity]:
    """Rows of every §3.9 kind, with the ids and emails Course Builder would write."""
    out: list[Entity] = []
    add = out.append
    students = [_k("Student", uid) for uid in UIDS]
    for n, (uid, email) in enumerate(zip(UIDS, EMAILS)):
        me, other = students[n], students[(n + 1) % len(UIDS)]
        other_uid = UIDS[(n + 1) % len(UIDS)]
        add(Entity(me, {"enrolled_on": WHEN, "user_id": uid, "email": email.lower(), "name": f"Learner {n}",
                        "additional_fields": _t([["form01", f"Learner {n}"]]), "is_enrolled": True,
                        "last_seen_on": None, "scores": None, "labels": "", "group_id": None}))
        add(Entity(_k("PersonalProfile", uid), {"email": email, "legal_name": "L", "nick_name": "N",
                                                 "date_of_birth": dt.date(1990, 1, 2), "course_info": _t({})}))
        add(Entity(_k("StudentPreferencesEntity", uid), {"data": _t({"last_location": "/kinds/unit?unit=1"})}))
        add(Entity(_k("StudentAnswersEntity", uid), {"updated_on": WHEN, "data": _t({"1": [0]})}))
        for kind, prop, value in (("StudentPropertyEntity", "linear-course-completion", {"r.0": 2}),
                                  ("StudentFormEntity", "q-form-1", {"answer": "free text"}),
                                  ("StudentRatingProperty", "student-rating-property", {"u.1": 4}),
                                  ("InvitationStudentProperty", "invitation-student-property",
                                   {"email_list": ["x@example.com", "y@example.com"], "junk": 1})):
            add(Entity(_k(kind, f"{uid}-{prop}"), {"updated_on": WHEN, "name": prop, "value": _t(value)}))
        add(Entity(_k("EventEntity", 100 + n), {"recorded_on": WHEN, "source": "enter-page", "user_id": uid,
                                                 "data": _t({"location": "http://x/unit?unit=1"})}))
        add(Entity(_k("StudentRatingEvent", 200 + n), {
            "recorded_on": WHEN, "source": "rating-event", "user_id": uid,
            "data": _t({"key": "u.1", "rating": 3, "additional_comments": "ok <b>", "location": "x"})}))
        sub = _k("Submission", f"(submission:1:{uid})")
        add(Entity(sub, {"contents": _t({"version": "1.5"}), "updated_on": WHEN, "reviewee_key": me,
                         "unit_id": "1", "instance_id": None}))
        add(Entity(_k("Submission", f"(submission:2:abc123:{uid})"), {
            "contents": _t("file text"), "updated_on": WHEN, "reviewee_key": me, "unit_id": "2",
            "instance_id": "abc123"}))
        review = _k("Review", f"(review:1:{me.to_urlsafe(APP_ID)}:{other.to_urlsafe(APP_ID)})")
        add(Entity(review, {"contents": _t({"r": 1}), "reviewee_key": me, "reviewer_key": other, "unit_id": "1"}))
        summary = _k("ReviewSummary", f"(review_summary:(submission:1:{uid}))")
        add(Entity(summary, {"change_date": WHEN, "create_date": WHEN, "assigned_count": 0, "completed_count": 1,
                             "expired_count": 0, "reviewee_key": me, "submission_key": sub, "unit_id": "1"}))
        add(Entity(_k("ReviewStep", f"(review_step:(submission:1:{uid}):{other_uid})"), {
            "assigner_kind": "AUTO", "change_date": WHEN, "create_date": WHEN, "submission_key": sub,
            "unit_id": "1", "state": "completed", "removed": False, "review_key": review,
            "review_summary_key": summary, "reviewee_key": me, "reviewer_key": other}))
        add(Entity(_k("QuestionAnswersEntity", 300 + n), {"data": _t([1]), "primary_id": uid, "student_group": None}))
        add(Entity(_k("StudentVector", uid), {"vector": _t([])}))
        add(Entity(_k("StudentClusters", uid), {"clusters": _t({})}))
        add(Entity(_k("StudentAggregateEntity", uid), {"data": zlib.compress(b'{"page_views": []}')}))
        add(Entity(_k("ImmediateRemovalState", uid), {"state": 1, "last_modified": WHEN}))
        add(Entity(_k("BatchRemovalState", uid), {"resource_types": ["Student"]}))
        add(Entity(_k("EmailMapping", uid), {"email": email}))
        add(Entity(_k("SubscriptionStateEntity", email), {"is_subscribed": True}))
        add(Entity(_k("StudentNewsEntity", uid), {"data": _t({"seen": []})}))
        add(Entity(_k("StudentGroupMembership", email.lower()), {"group_id": 5}))
        for kind, extra in (("Notification", {"sender": "noreply@example.com", "subject": Text("Hi"),
                                              "audit_trail": {"a": 1}, "_last_exception": None,
                                              "_recoverable_failure_count": 0, "_done_date": WHEN,
                                              "_fail_date": None, "_last_enqueue_date": WHEN, "_send_date": WHEN}),
                            ("Payload", {"body": Text("Welcome"), "html": None})):
            add(Entity(_k(kind, f"({kind.lower()}:{email}:welcome:{ENQUEUED_US + 7 * n})"), {
                "enqueue_date": WHEN, "intent": "welcome", "to": email, "_change_date": WHEN,
                "_retention_policy": "audit_trail", **extra}))
        add(Entity(_k("_ExternalTask", 400 + n), {"change_date": WHEN, "create_date": WHEN, "result": None,
                                                   "status": "created", "user_id": uid, "worker_id": "w1"}))
        add(Entity(_k("EditorPrefsEntity", f"{uid}:/kinds/rest/course/settings:/course.yaml"),
                   {"data": _t({"homepage": {}})}))
        add(Entity(_k("CompetencyMeasureEntity", f"{uid}:3:SuccessRateCompetencyMeasure"), {"data": _t({})}))
        add(Entity(_k("EmailToObfuscatedUserId", 500 + n), {"user": {"email": email, "user_id": uid},
                                                             "last_modified": WHEN}))
    add(Entity(_k("EventEntity", 900), {"recorded_on": WHEN, "source": "gitkit-email-change", "user_id": UIDS[0],
                                         "data": _t({"from": EMAILS[2], "to": EMAILS[0]})}))
    add(Entity(_k("RoleEntity", 1), {"data": _t({"name": "TA", "users": EMAILS[:2], "permissions": {"m": ["p"]}})}))
    add(Entity(_k("ConfigPropertyEntity", "gcb_admin_user_emails"), {"value": Text(f"[{EMAILS[0]}] [{EMAILS[1]}]"),
                                                                       "is_draft": False}))
    add(Entity(_k("ConfigPropertyEntity", "gcb_user_whitelist"), {"value": Text(f"{EMAILS[1]}, {EMAILS[2]}"),
                                                                    "is_draft": False}))
    add(Entity(_k("ConfigPropertyEntity", "gcb_courses_config"), {"value": Text("course:/kinds::ns_kinds"),
                                                                    "is_draft": False}))
    # kinds that hold no learner's identity (default rules)
    for kind, ident, props in (
        ("QuestionEntity", 1, {"data": _t({"question": "2+2?"})}),
        ("QuestionGroupEntity", 2, {"data": _t({})}),
        ("LabelEntity", 3, {"data": _t({"title": "Track"})}),
        ("ContentChunkEntity", 4, {"content_type": "text/html", "last_modified": WHEN,
                                   "supports_custom_tags": False, "uid": "a:1", "contents": Text("<p>")}),
        ("_SkillEntity", 5, {"data": _t({"name": "s"})}),
        ("ResourceBundleEntity", "unit:1:fr", {"data": _t({}), "locale": "fr", "created_on": WHEN,
                                               "updated_on": WHEN}),
        ("I18nProgressEntity", "unit:1", {"data": _t({})}),
        ("StudentGroupEntity", 6, {"data": _t({"name": "g"}), "updated_on": WHEN}),
        ("DurableJobEntity", "job-Foo-ns_kinds", {"updated_on": WHEN, "execution_time_sec": 3, "status_code": 2,
                                                  "output": Text("[]"), "sequence_num": 1}),
        ("TotalEnrollmentEntity", "ns_kinds:total", {"json": Text("3")}),
        ("EnrollmentsAddedEntity", "ns_kinds:adds", {"json": Text("{}")}),
        ("EnrollmentsDroppedEntity", "ns_kinds:drops", {"json": Text("{}")}),
        ("ClusterEntity", 7, {"data": _t({"name": "c"})}),
        ("AdditionalFieldNamesEntity", "singleton", {"data": _t({"additional_field_names": '["form01"]'})}),
        ("AnnouncementEntity", 8, {"title": "News", "html": Text("<p>hi</p>"), "is_draft": False}),
        ("StartAvailabilityJobsStatus", "singleton", {"last_run": WHEN}),
        ("CourseNewsEntity", "singleton", {"data": _t({"items": []})}),
        ("SkillCompletionAggregate", "5", {"data": _t({"2016-01-01": 3})}),
        ("StudentEnrollmentEventEntity", 9, {"data": _t({"timestamp": 1459973667, "metric": "enrolled"})}),
        ("DummyModel", "_dummy_entity", {"dummy_int": 1}),
    ):
        add(Entity(_k(kind, ident), props))
    return out


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("kinds")
    home = root / "home"
    home.mkdir()
    with SqliteBackend(db_path(home)) as store:
        store.set_meta("app_id", APP_ID)
        Site(store).add_course("/kinds")
        store.put_multi(_cb_world())
    out: dict[str, Any] = {"home": home, "root": root}
    for label, extra in (("plain", ()), ("private", ("--privacy", "--privacy_secret", SECRET))):
        archive = root / f"{label}.zip"
        proc = cli_at(home, "download", "datastore", "/kinds", "local", "--archive_path", archive, *extra)
        assert proc.returncode == 0, proc.stderr
        out[label] = kind_rows(archive_members(archive))
    return out


def test_every_kind_downloads_with_privacy(downloads) -> None:
    """Course Builder refused or crashed on several of these; every one comes out."""
    assert set(REGISTRY) <= set(downloads["private"])
    for kind, rows in downloads["plain"].items():
        assert len(downloads["private"][kind]) == len(rows), kind


# --- Course Builder's own rules, computed from the plain rows -------------------------------


def _ks(kind: str, ident: Any) -> str:
    return Key(kind, ident, namespace=NS).to_urlsafe(APP_ID)


def _rekey(row: dict, kind: str, name: str) -> dict:
    return {**row, "key.name": name, "key.id": None, "key": _ks(kind, name)}


def _student_ks(text: str) -> str:
    """Course Builder's ``Student.safe_key`` of a reference, as a key string."""
    return _ks("Student", h(Key.from_urlsafe(text)[1].id_or_name))


def _split_key(name: str) -> list[str]:  # student_work.BaseEntity._split_key
    return name.replace("(", "").replace(")", "").split(":")


def _cb_submission_name(name: str) -> str:
    parts = _split_key(name)
    if len(parts) == 3:
        return f"(submission:{parts[1]}:{h(parts[2])})"
    return f"(submission:{parts[1]}:{parts[2]}:{h(parts[3])})"


def _drop(row: dict, *names: str) -> dict:
    return without(row, *names)


def _cb_student(row: dict) -> dict:
    out = _drop(_rekey(row, "Student", h(row["key.name"])), "email", "name", "additional_fields")
    out["user_id"] = h(row["user_id"])
    out["key_by_user_id"] = _ks("Student", h(row["user_id"]))
    return out


def _cb_property(kind: str) -> Callable[[dict], dict]:
    def rule(row: dict) -> dict:
        user_id, rest = row["key.name"].split("-", 1)  # Course Builder: the first '-'
        return _rekey(row, kind, f"{h(user_id)}-{rest}")
    return rule


def _cb_invitation(row: dict) -> dict:
    out = _cb_property("InvitationStudentProperty")(row)
    emails = json.loads(row["value"]).get("email_list", [])
    out["value"] = json.dumps({"email_list": [h(e) for e in emails]})
    return out


def _cb_rating_event(row: dict) -> dict:
    data = json.loads(row["data"])
    kept = {"key": data["key"], "rating": data["rating"], "additional_comments": data["additional_comments"]}
    py2_order = ["rating", "additional_comments", "key"]  # Python 2's dict order for these three
    text = json.dumps({k: kept[k] for k in py2_order}).replace("<", "\\u003C").replace(">", "\\u003E")
    return {**row, "user_id": h(row["user_id"]), "data": text}


def _cb_review(row: dict) -> dict:
    _, unit, reviewee, reviewer = _split_key(row["key.name"])
    out = _rekey(row, "Review", f"(review:{unit}:{_student_ks(reviewee)}:{_student_ks(reviewer)})")
    out["reviewee_key"], out["reviewer_key"] = _student_ks(row["reviewee_key"]), _student_ks(row["reviewer_key"])
    return out


def _cb_submission_ks(text: str) -> str:
    return _ks("Submission", _cb_submission_name(Key.from_urlsafe(text)[1].name))


def _cb_review_summary(row: dict) -> dict:
    _, _, unit, uid = _split_key(row["key.name"])
    out = _rekey(row, "ReviewSummary", f"(review_summary:(submission:{unit}:{h(uid)}))")
    out["reviewee_key"] = _student_ks(row["reviewee_key"])
    out["submission_key"] = _cb_submission_ks(row["submission_key"])
    return out


def _cb_review_step(row: dict) -> dict:
    name = row["key.name"].strip("()")
    submission, reviewer = name.split(":", 1)[1].rsplit(":", 1)
    out = _rekey(row, "ReviewStep", f"(review_step:{_cb_submission_name(submission)}:{h(reviewer)})")
    for prop in ("reviewee_key", "reviewer_key"):
        out[prop] = _student_ks(row[prop])
    out["submission_key"] = _cb_submission_ks(row["submission_key"])
    out["review_key"] = _ks("Review", _cb_review(
        {"key.name": Key.from_urlsafe(row["review_key"])[1].name, "reviewee_key": row["reviewee_key"],
         "reviewer_key": row["reviewer_key"]})["key.name"])
    out["review_summary_key"] = _ks("ReviewSummary", _cb_review_summary(
        {"key.name": Key.from_urlsafe(row["review_summary_key"])[1].name, "reviewee_key": row["reviewee_key"],
         "submission_key": row["submission_key"]})["key.name"])
    return out


def _cb_notification(kind: str, hashed: tuple[str, ...], dropped: tuple[str, ...]) -> Callable[[dict], dict]:
    def rule(row: dict) -> dict:
        _, to, intent, usec = row["key.name"][1:-1].split(":")
        # _epoch_usec_to_dt, then _dt_to_epoch_usec: int(10**6 * timedelta.total_seconds())
        usec = int(1_000_000 * ((dt.timedelta(microseconds=int(usec))).total_seconds()))
        out = _drop(_rekey(row, kind, f"({kind.lower()}:{h(to)}:{intent}:{usec})"), *dropped)
        for prop in hashed:
            out[prop] = h(row[prop])
        return out
    return rule


def _hash_name(kind: str, *dropped: str) -> Callable[[dict], dict]:
    def rule(row: dict) -> dict:
        ident = row["key.name"] if row["key.id"] is None else row["key.id"]
        return _drop(_rekey(row, kind, h(ident)), *dropped)
    return rule


def _colon(kind: str) -> Callable[[dict], dict]:
    def rule(row: dict) -> dict:
        user_id, rest = row["key.name"].split(":", 1)  # Course Builder: the first ':'
        return _rekey(row, kind, f"{h(user_id)}:{rest}")
    return rule


def _same(row: dict) -> dict:
    return row


#: Course Builder 1.11's privacy rule of each kind whose rule courseport keeps as it is
COURSE_BUILDER_RULES: dict[str, Callable[[dict], dict]] = {
    "Student": _cb_student,
    "PersonalProfile": _hash_name("PersonalProfile", "email", "legal_name", "nick_name", "date_of_birth"),
    "StudentPreferencesEntity": _hash_name("StudentPreferencesEntity"),
    "StudentAnswersEntity": _hash_name("StudentAnswersEntity"),
    "StudentPropertyEntity": _cb_property("StudentPropertyEntity"),
    "StudentFormEntity": _cb_property("StudentFormEntity"),
    "StudentRatingProperty": _cb_property("StudentRatingProperty"),
    "InvitationStudentProperty": _cb_invitation,
    "StudentRatingEvent": _cb_rating_event,
    "Submission": lambda row: {**_rekey(row, "Submission", _cb_submission_name(row["key.name"])),
                               "reviewee_key": _student_ks(row["reviewee_key"])},
    "Review": _cb_review,
    "ReviewSummary": _cb_review_summary,
    "ReviewStep": _cb_review_step,
    "StudentVector": _hash_name("StudentVector"),
    "StudentClusters": _hash_name("StudentClusters"),
    "StudentAggregateEntity": _hash_name("StudentAggregateEntity"),
    "EmailMapping": _hash_name("EmailMapping", "email"),
    "SubscriptionStateEntity": _hash_name("SubscriptionStateEntity"),
    "Notification": _cb_notification("Notification", ("to", "sender"), ("audit_trail", "_last_exception", "subject")),
    "EditorPrefsEntity": _colon("EditorPrefsEntity"),
    "CompetencyMeasureEntity": _colon("CompetencyMeasureEntity"),
    # default rules: the row as it is
    **{kind: _same for kind in (
        "QuestionEntity", "QuestionGroupEntity", "LabelEntity", "ContentChunkEntity", "_SkillEntity",
        "ResourceBundleEntity", "I18nProgressEntity", "StudentGroupEntity", "DurableJobEntity",
        "TotalEnrollmentEntity", "EnrollmentsAddedEntity", "EnrollmentsDroppedEntity", "ClusterEntity",
        "AdditionalFieldNamesEntity", "AnnouncementEntity", "CourseNewsEntity", "SkillCompletionAggregate",
        "StudentEnrollmentEventEntity", "FileMetadataEntity", "FileDataEntity",
    )},
}


@pytest.mark.parametrize("kind", sorted(COURSE_BUILDER_RULES))
def test_rows_are_course_builders(downloads, kind: str) -> None:
    plain, private = downloads["plain"][kind], downloads["private"][kind]
    assert plain, kind
    expected = [COURSE_BUILDER_RULES[kind](row) for row in plain]
    assert private == expected  # same rows, same order (the original keys' order)


# --- where courseport goes further ----------------------------------------------------------------


def _by(rows: list[dict], field: str = "key.name") -> dict:
    return {row[field]: row for row in rows}


def test_event_user_ids_hashed_and_email_change_pseudonymised(downloads) -> None:
    plain, private = _by(downloads["plain"]["EventEntity"], "key.id"), _by(downloads["private"]["EventEntity"], "key.id")
    for ident, row in plain.items():
        got = private[ident]
        assert got["user_id"] == h(row["user_id"])  # Course Builder's rule
        if row["source"] != "gitkit-email-change":
            assert got == {**row, "user_id": h(row["user_id"])}
    change = private[900]  # Course Builder kept the old and new email in clear
    assert json.loads(change["data"]) == {"from": h(EMAILS[2]), "to": h(EMAILS[0])}


def test_pii_course_builder_left_in_clear_is_pseudonymised(downloads) -> None:
    plain, private = downloads["plain"], downloads["private"]
    news = _by(private["StudentNewsEntity"])
    assert set(news) == {h(uid) for uid in UIDS}  # Course Builder kept the user id in the key
    groups = _by(private["StudentGroupMembership"])
    assert set(groups) == {h(e.lower()) for e in EMAILS} and {r["group_id"] for r in groups.values()} == {5}
    answers = private["QuestionAnswersEntity"]  # Course Builder: the id hashed into a name, primary_id in clear
    assert [(r["key.name"], r["key.id"], r["primary_id"]) for r in answers] == \
        [(h(r["key.id"]), None, h(r["primary_id"])) for r in plain["QuestionAnswersEntity"]]
    tasks = private["_ExternalTask"]
    assert [r["user_id"] for r in tasks] == [h(uid) for uid in UIDS]
    assert [without(r, "user_id") for r in tasks] == [without(r, "user_id") for r in plain["_ExternalTask"]]
    payloads = private["Payload"]  # Course Builder hashed the key's address but kept `to`
    expected = [_cb_notification("Payload", ("to",), ("body", "html"))(row) for row in plain["Payload"]]
    assert payloads == expected
    role = json.loads(private["RoleEntity"][0]["data"])
    assert role == {"name": "TA", "users": [h(EMAILS[0]), h(EMAILS[1])], "permissions": {"m": ["p"]}}
    config = _by(private["ConfigPropertyEntity"])
    assert config["gcb_admin_user_emails"]["value"] == f"[{h(EMAILS[0])}] [{h(EMAILS[1])}]"
    assert config["gcb_user_whitelist"]["value"] == f"{h(EMAILS[1])}, {h(EMAILS[2])}"
    assert config["gcb_courses_config"] == _by(plain["ConfigPropertyEntity"])["gcb_courses_config"]


def test_kinds_course_builder_could_not_export(downloads) -> None:
    plain, private = downloads["plain"], downloads["private"]
    # no for_export in Course Builder (AttributeError): the key is hashed, the rest kept
    for kind in ("ImmediateRemovalState", "BatchRemovalState"):
        assert private[kind] == [_hash_name(kind)(row) for row in plain[kind]], kind
    # a users.User value: Course Builder could not encode it at all; courseport drops it
    assert [set(r) for r in private["EmailToObfuscatedUserId"]] == [{"key", "key.id", "key.name", "last_modified"}] * 3
    # no safe_key (StartAvailabilityJobsStatus) or no class (DummyModel): carried as they are
    for kind in ("StartAvailabilityJobsStatus", "DummyModel"):
        assert private[kind] == plain[kind], kind


def test_no_email_or_user_id_anywhere_but_course_files(downloads, tmp_path: Path) -> None:
    archive = downloads["root"] / "private.zip"
    members = archive_members(archive)
    for name, data in members.items():
        if name == "models/FileDataEntity.json":  # course.yaml names the course's admin (docs/privacy.md)
            continue
        for value in UIDS + EMAILS + [e.lower() for e in EMAILS]:
            assert value.encode() not in data, (name, value)


# --- keys the rules cannot read ---------------------------------------------------------------


@pytest.fixture
def small_home(home: Path) -> Path:
    with SqliteBackend(db_path(home)) as store:
        store.set_meta("app_id", APP_ID)
        Site(store).add_course("/kinds")
    return home


def _private_rows(home: Path, kind: str) -> list[dict]:
    archive = home.parent / "p.zip"
    proc = cli_at(home, "download", "datastore", "/kinds", "local", "--archive_path", archive,
                  "--privacy", "--privacy_secret", SECRET, "--datastore_types", kind, "--force_overwrite")
    assert proc.returncode == 0, proc.stderr
    return kind_rows(archive_members(archive))[kind]


@pytest.mark.parametrize("kind, name", [
    ("StudentFormEntity", "nodash"),
    ("EditorPrefsEntity", "123:only-one-colon"),
    ("CompetencyMeasureEntity", "nocolon"),
    ("Submission", "submission-1-123"),
    ("Review", "(review:1:two-parts)"),
    ("ReviewSummary", "(review_summary:123)"),
    ("ReviewStep", "(review_step:123:456)"),
    ("Notification", "(notification:a@example.com:welcome:soon)"),
    ("Payload", "payload:a@example.com"),
])
def test_key_name_not_of_the_kinds_form_is_refused_in_one_line(small_home: Path, kind: str, name: str) -> None:
    with SqliteBackend(db_path(small_home), create=False) as store:
        store.put(Entity(_k(kind, name), {}))
    archive = small_home.parent / "refused.zip"
    line = assert_one_line_error(cli_at(small_home, "download", "datastore", "/kinds", "local", "--archive_path",
                                        archive, "--privacy", "--privacy_secret", SECRET, "--log_level", "error"))
    assert kind in line and repr(name) in line and f"--exclude_types {kind}" in line, line
    assert not archive.exists()


def test_property_name_that_does_not_end_the_key_hashes_the_whole_name(small_home: Path) -> None:
    """The split point is the row's ``name``; where the key does not end in it, nothing is left in clear."""
    uid = "ann-2024-id"
    with SqliteBackend(db_path(small_home), create=False) as store:
        store.put_multi([
            Entity(_k("StudentPropertyEntity", f"{uid}-linear-course-completion"),
                   {"name": "linear-course-completion", "value": _t({}), "updated_on": None}),
            Entity(_k("StudentPropertyEntity", f"{uid}-skill-completion"),
                   {"name": "something-else", "value": _t({}), "updated_on": None}),
            Entity(_k("StudentPropertyEntity", f"{uid}-no-name"), {"name": None, "value": None, "updated_on": None}),
        ])
    names = [r["key.name"] for r in _private_rows(small_home, "StudentPropertyEntity")]
    assert sorted(names) == sorted([f"{h(uid)}-linear-course-completion", h(f"{uid}-skill-completion"),
                                    h(f"{uid}-no-name")])


def test_references_stored_as_key_strings_are_made_safe(small_home: Path) -> None:
    """A reference uploaded before its kind was typed is a string: it is decoded and made safe."""
    uid = "124317316405206137111"
    reviewee = _k("Student", uid).to_urlsafe("another-app")
    with SqliteBackend(db_path(small_home), create=False) as store:
        store.put_multi([
            Entity(_k("Submission", f"(submission:1:{uid})"),
                   {"reviewee_key": reviewee, "unit_id": "1", "contents": None}),
            Entity(_k("Submission", "(submission:2:someone@example.com)"),
                   {"reviewee_key": "someone@example.com", "unit_id": "2", "contents": None}),
        ])
    rows = _by(_private_rows(small_home, "Submission"))
    first = rows[f"(submission:1:{h(uid)})"]
    assert first["reviewee_key"] == _ks("Student", h(uid))
    # not a key string: the reference is hashed whole, and so (not matching it) is the key name
    second = rows[h("(submission:2:someone@example.com)")]
    assert second["reviewee_key"] == h("someone@example.com")


# --- Course Builder's own archives ----------------------------------------------------------------

FIXTURE_DATASTORES = ["click_link/datastore", "multiple/datastore", "scoring/datastore", "live_sample/datastore.zip"]


def _comparable(row: dict) -> dict:
    """A row minus its ``key``, references by their decoded path (app ids and namespaces differ)."""
    out = without(row, "key")
    for name, value in out.items():
        if (name.endswith("_key") or name == "key_by_user_id") and isinstance(value, str):
            out[name] = Key.from_urlsafe(value)[1].path
    return out


@pytest.mark.parametrize("name", FIXTURE_DATASTORES)
def test_course_builders_archives_get_course_builders_privacy_rows(name: str, home: Path) -> None:
    from conftest import etl, require_fixtures

    source = require_fixtures() / name
    with SqliteBackend(db_path(home)) as store:
        store.set_meta("app_id", APP_ID)
        Site(store).add_course("/kinds")
    etl("upload", "datastore", "/kinds", "local", "--archive_path", source)
    theirs = kind_rows(archive_members(source))
    archive = home.parent / "private.zip"
    etl("download", "datastore", "/kinds", "local", "--archive_path", archive, "--privacy", "--privacy_secret", SECRET,
        "--datastore_types", ",".join(sorted(theirs)))
    ours = kind_rows(archive_members(archive))
    rules = dict(COURSE_BUILDER_RULES, EventEntity=lambda row: {**row, "user_id": h(row["user_id"])})
    compared = 0
    for kind, rows in theirs.items():
        canonical = lambda row: json.dumps(row, sort_keys=True)  # noqa: E731
        expected = sorted(canonical(_comparable(rules[kind](row))) for row in rows)
        assert sorted(canonical(_comparable(row)) for row in ours[kind]) == expected, kind
        compared += len(rows)
    assert compared == sum(map(len, theirs.values())) > 0
