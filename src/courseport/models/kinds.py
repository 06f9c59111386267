"""Course Builder's kinds (spec §3, every kind of the table in §3.9), and the registry.

Each kind has its properties (as far as the spec and Course Builder's code
give them; members not declared here are carried as they are), its key
scheme and its privacy rules: how its safe key is made, which fields
``--privacy`` removes, hashes or rewrites. Where Course Builder 1.11 had a
rule, the rule here gives the same rows; where its rule crashed or left an
email or user id in clear, courseport pseudonymises with the same HMAC
(see docs/privacy.md, which lists every kind).
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from .._json import dumps
from ..datastore import Key, Text
from .schema import (
    NAME,
    ExportContext,
    KindSchema,
    Prop,
    colon_triple_safe_key,
    hash_name_safe_key,
    hash_whole_name,
    malformed_key,
    user_property_safe_key,
)

# --- privacy helpers ------------------------------------------------------------------


def _like(old: Any, new: str) -> str:
    """``new`` as the same string type as ``old`` (Text stays Text)."""
    return Text(new) if isinstance(old, Text) else new


def _json_or_none(value: Any) -> Any:
    if not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to read
        return None


def _hash_fields(*names: str):
    """A rewrite hashing these fields where they hold a value (None stays None)."""

    def rewrite(props: dict[str, Any], key: Key, ctx: ExportContext) -> None:
        for name in names:
            value = props.get(name)
            if value is not None:
                props[name] = ctx.transform(value)

    return rewrite


#: what separates addresses in an email-list setting: Course Builder splits
#: on brackets, commas and white space; every other character is part of a token
_LIST_SEPARATORS = re.compile(r"([\[\]\s,]+)")


def hash_tokens(text: str, ctx: ExportContext) -> str:
    """Every token of an address list replaced by its HMAC, separators kept."""
    parts = _LIST_SEPARATORS.split(text)
    return "".join(
        part if i % 2 or not part else ctx.transform(part) for i, part in enumerate(parts)
    )


def student_uid(value: Any) -> str | None:
    """The user id a reference to a Student names (a Key, or a key string)."""
    if isinstance(value, Key):
        key = value
    elif isinstance(value, str):
        try:
            key = Key.from_urlsafe(value)[1]
        except ValueError:
            return None
    else:
        return None
    if key.kind != "Student" or key.id_or_name is None:
        return None
    return str(key.id_or_name)


def _row_uid(row: Mapping[str, Any] | None, name: str) -> str | None:
    return student_uid(row.get(name)) if row is not None else None


# --- learners ---------------------------------------------------------------------------

STUDENT = KindSchema(
    "Student",
    (
        Prop("enrolled_on", "datetime"),
        Prop("user_id", "str"),
        Prop("email", "str"),
        Prop("name", "str"),
        Prop("additional_fields", "text"),
        Prop("is_enrolled", "bool"),
        Prop("last_seen_on", "datetime"),
        Prop("scores", "text"),
        Prop("labels", "str"),
        Prop("group_id", "int"),
    ),
    key_scheme=NAME,
    safe_key=hash_name_safe_key,
    blacklist=("additional_fields", "email", "name"),
    hashed=("user_id",),
    key_by_user_id=True,
    description="an enrolled learner; key name = user id (legacy: email)",
)

PERSONAL_PROFILE = KindSchema(
    "PersonalProfile",
    (
        Prop("email", "str"),
        Prop("legal_name", "str"),
        Prop("nick_name", "str"),
        Prop("date_of_birth", "date"),
        Prop("course_info", "text"),
    ),
    key_scheme=NAME,
    scope="global",
    safe_key=hash_name_safe_key,
    blacklist=("email", "legal_name", "nick_name", "date_of_birth"),
    description="a user's profile across courses (default namespace); key name = user id",
)

STUDENT_PREFERENCES = KindSchema(
    "StudentPreferencesEntity",
    (Prop("data", "text"),),
    key_scheme=NAME,
    safe_key=hash_name_safe_key,
    description="a learner's UI preferences and last location; key name = user id",
)

STUDENT_ANSWERS = KindSchema(
    "StudentAnswersEntity",
    (Prop("updated_on", "datetime"), Prop("data", "text")),
    key_scheme=NAME,
    safe_key=hash_name_safe_key,
    description="latest answers per assessment; key name = user id",
)

_PROPERTY_PROPS = (Prop("updated_on", "datetime"), Prop("name", "str"), Prop("value", "text"))


def _property_kind(kind: str, description: str, **rules: Any) -> KindSchema:
    """StudentPropertyEntity and its subclasses: key name ``<user_id>-<name>``."""
    return KindSchema(kind, _PROPERTY_PROPS, key_scheme=NAME, safe_key=user_property_safe_key,
                      description=description, **rules)


def _invitation_value(props: dict[str, Any], key: Key, ctx: ExportContext) -> None:
    """InvitationStudentProperty.for_export: ``{"email_list": [hmac(email), ...]}``, nothing else."""
    value = props.get("value")
    if value is None:
        return
    parsed = _json_or_none(value)
    emails = parsed.get("email_list", []) if isinstance(parsed, dict) else []
    if not isinstance(emails, list):
        emails = [emails]
    props["value"] = _like(value, dumps({"email_list": [ctx.transform(e) for e in emails]}))


STUDENT_PROPERTY = _property_kind(
    "StudentPropertyEntity", "a named JSON value per learner (progress); key name = <user_id>-<name>")
STUDENT_FORM = _property_kind(
    "StudentFormEntity", "a questionnaire a learner submitted; key name = <user_id>-<form key>")
STUDENT_RATING_PROPERTY = _property_kind(
    "StudentRatingProperty", "a learner's ratings of components; key name = <user_id>-student-rating-property")
INVITATION_STUDENT_PROPERTY = _property_kind(
    "InvitationStudentProperty",
    "the addresses a learner invited; key name = <user_id>-invitation-student-property",
    rewrite=_invitation_value,
)

_EVENT_PROPS = (
    Prop("recorded_on", "datetime"),
    Prop("source", "str"),
    Prop("user_id", "str"),
    Prop("data", "text"),
)


def _email_change_event(props: dict[str, Any], key: Key, ctx: ExportContext) -> None:
    """courseport: a ``gitkit-email-change`` event's old and new email are hashed."""
    if props.get("source") != "gitkit-email-change" or props.get("data") is None:
        return
    data = props["data"]
    parsed = _json_or_none(data)
    if isinstance(parsed, dict):
        for member in ("from", "to"):
            if parsed.get(member) is not None:
                parsed[member] = ctx.transform(parsed[member])
        props["data"] = _like(data, dumps(parsed))
    else:  # not the JSON Course Builder writes: hashed whole
        props["data"] = _like(data, ctx.transform(data))


def _rating_event_data(props: dict[str, Any], key: Key, ctx: ExportContext) -> None:
    """StudentRatingEvent.for_export: ``data`` cut down to key, rating and comments.

    Course Builder builds ``{'key': ..., 'rating': ..., 'additional_comments': ...}``
    under Python 2, whose dict puts these three members in this order.
    """
    data = props.get("data")
    if data is None:
        return
    parsed = _json_or_none(data)
    if not isinstance(parsed, dict):
        props["data"] = None
        return
    kept = {name: parsed.get(name) for name in ("rating", "additional_comments", "key")}
    props["data"] = _like(data, dumps(kept))


EVENT = KindSchema(
    "EventEntity", _EVENT_PROPS, hashed=("user_id",), rewrite=_email_change_event,
    description="a recorded learner event",
)
STUDENT_RATING_EVENT = KindSchema(
    "StudentRatingEvent", _EVENT_PROPS, hashed=("user_id",), rewrite=_rating_event_data,
    description="a learner's rating of a component (an EventEntity subclass)",
)

# --- assessments and peer review (models/student_work.py, modules/review/peer.py) -------

_SUBMISSION = "(submission:"


def _safe_submission_name(key: Key, name: str, uid: str | None, ctx: ExportContext) -> str | None:
    """``(submission:<unit>[:<instance>]:<hmac(uid)>)``; None when the name does not end in the uid."""
    if not (name.startswith(_SUBMISSION) and name.endswith(")") and ":" in name[len(_SUBMISSION):]):
        raise malformed_key(key, "'(submission:<unit>:<user_id>)'", "is not a submission name")
    body = name[len(_SUBMISSION):-1]
    if uid is None or not body.endswith(":" + uid) or len(body) <= len(uid) + 1:
        return None
    return f"{_SUBMISSION}{body[: len(body) - len(uid) - 1]}:{ctx.transform(uid)})"


def submission_safe_key(key: Key, row: Mapping[str, Any] | None, ctx: ExportContext) -> Key:
    """The user id is the one ``reviewee_key`` names (of this row, or of the row referring to it)."""
    safe = _safe_submission_name(key, str(key.id_or_name), _row_uid(row, "reviewee_key"), ctx)
    return Key(key.kind, safe, namespace=ctx.namespace) if safe else hash_whole_name(key, ctx)


def review_safe_key(key: Key, row: Mapping[str, Any] | None, ctx: ExportContext) -> Key:
    """``(review:<unit>:<reviewee key>:<reviewer key>)``: both keys rebuilt as ``Student/<hmac>``."""
    name = str(key.id_or_name)
    parts = name[len("(review:"):-1].rsplit(":", 2) if name.startswith("(review:") and name.endswith(")") else []
    if len(parts) != 3:
        raise malformed_key(key, "'(review:<unit>:<reviewee key>:<reviewer key>)'", "is not a review name")
    unit, reviewee, reviewer = parts
    try:
        keys = [Key.from_urlsafe(text)[1] for text in (reviewee, reviewer)]
    except ValueError:
        return hash_whole_name(key, ctx)
    if any(k.id_or_name is None for k in keys):
        return hash_whole_name(key, ctx)
    safe = [ctx.key_string(Key("Student", ctx.transform(k.id_or_name), namespace=ctx.namespace)) for k in keys]
    return Key(key.kind, f"(review:{unit}:{safe[0]}:{safe[1]})", namespace=ctx.namespace)


def review_summary_safe_key(key: Key, row: Mapping[str, Any] | None, ctx: ExportContext) -> Key:
    """``(review_summary:<submission name>)``, the submission name made safe."""
    name = str(key.id_or_name)
    prefix = "(review_summary:"
    if not (name.startswith(prefix + _SUBMISSION) and name.endswith("))")):
        raise malformed_key(key, "'(review_summary:(submission:...))'", "is not a review summary name")
    safe = _safe_submission_name(key, name[len(prefix):-1], _row_uid(row, "reviewee_key"), ctx)
    return Key(key.kind, f"{prefix}{safe})", namespace=ctx.namespace) if safe else hash_whole_name(key, ctx)


def review_step_safe_key(key: Key, row: Mapping[str, Any] | None, ctx: ExportContext) -> Key:
    """``(review_step:<submission name>:<reviewer uid>)``: both user ids hashed."""
    name = str(key.id_or_name)
    prefix = "(review_step:"
    if not (name.startswith(prefix + _SUBMISSION) and name.endswith(")")):
        raise malformed_key(key, "'(review_step:(submission:...):<user_id>)'", "is not a review step name")
    body = name[len(prefix):-1]
    reviewer = _row_uid(row, "reviewer_key")
    if reviewer is not None and body.endswith(":" + reviewer):
        submission = body[: len(body) - len(reviewer) - 1]
        if submission.startswith(_SUBMISSION) and submission.endswith(")"):
            safe = _safe_submission_name(key, submission, _row_uid(row, "reviewee_key"), ctx)
            if safe:
                return Key(key.kind, f"{prefix}{safe}:{ctx.transform(reviewer)})", namespace=ctx.namespace)
    return hash_whole_name(key, ctx)


SUBMISSION = KindSchema(
    "Submission",
    (
        Prop("contents", "text"),
        Prop("updated_on", "datetime"),
        Prop("reviewee_key", "key"),
        Prop("unit_id", "str"),
        Prop("instance_id", "str"),
    ),
    key_scheme=NAME,
    safe_key=submission_safe_key,
    description="a learner's submitted assessment or file; key name = (submission:<unit>[:<instance>]:<user_id>)",
)
REVIEW = KindSchema(
    "Review",
    (
        Prop("contents", "text"),
        Prop("reviewee_key", "key"),
        Prop("reviewer_key", "key"),
        Prop("unit_id", "str"),
    ),
    key_scheme=NAME,
    safe_key=review_safe_key,
    description="a peer review; key name = (review:<unit>:<reviewee key>:<reviewer key>)",
)
REVIEW_SUMMARY = KindSchema(
    "ReviewSummary",
    (
        Prop("change_date", "datetime"),
        Prop("create_date", "datetime"),
        Prop("assigned_count", "int"),
        Prop("completed_count", "int"),
        Prop("expired_count", "int"),
        Prop("reviewee_key", "key"),
        Prop("submission_key", "key"),
        Prop("unit_id", "str"),
    ),
    key_scheme=NAME,
    safe_key=review_summary_safe_key,
    description="the review state of one submission; key name = (review_summary:<submission name>)",
)
REVIEW_STEP = KindSchema(
    "ReviewStep",
    (
        Prop("assigner_kind", "str"),
        Prop("change_date", "datetime"),
        Prop("create_date", "datetime"),
        Prop("submission_key", "key"),
        Prop("unit_id", "str"),
        Prop("state", "str"),
        Prop("removed", "bool"),
        Prop("review_key", "key"),
        Prop("review_summary_key", "key"),
        Prop("reviewee_key", "key"),
        Prop("reviewer_key", "key"),
    ),
    key_scheme=NAME,
    safe_key=review_step_safe_key,
    description="one reviewer's assignment to a submission; key name = (review_step:<submission>:<reviewer>)",
)

# --- analytics --------------------------------------------------------------------------

QUESTION_ANSWERS = KindSchema(
    "QuestionAnswersEntity",
    (Prop("data", "text"), Prop("primary_id", "str"), Prop("student_group", "int")),
    safe_key=hash_name_safe_key,  # Course Builder's: the numeric id becomes a hashed name
    rewrite=_hash_fields("primary_id"),
    description="a learner's answers per question (gradebook job); primary_id = user id",
)
STUDENT_VECTOR = KindSchema(
    "StudentVector", (Prop("vector", "text"),), key_scheme=NAME, safe_key=hash_name_safe_key,
    description="a learner's scores and visits (clustering job); key name = user id",
)
STUDENT_CLUSTERS = KindSchema(
    "StudentClusters", (Prop("clusters", "text"),), key_scheme=NAME, safe_key=hash_name_safe_key,
    description="a learner's distances to clusters (clustering job); key name = user id",
)
CLUSTER = KindSchema("ClusterEntity", (Prop("data", "text"),), description="a cluster definition")
STUDENT_AGGREGATE = KindSchema(
    "StudentAggregateEntity", (Prop("data", "bytes"),), key_scheme=NAME, safe_key=hash_name_safe_key,
    description="a learner's activity, zlib-compressed JSON (aggregate job); key name = user id",
)
ADDITIONAL_FIELD_NAMES = KindSchema(
    "AdditionalFieldNamesEntity", (Prop("data", "text"),), key_scheme=NAME,
    description="the names of the registration form's fields; key name = singleton",
)
STUDENT_ENROLLMENT_EVENT = KindSchema(
    "StudentEnrollmentEventEntity", (Prop("data", "text"),),
    description="an enrolment/unenrolment counter event",
)


def _enrollment_counter(kind: str, description: str) -> KindSchema:
    return KindSchema(kind, (Prop("json", "text"),), key_scheme=NAME, scope="global", description=description)


TOTAL_ENROLLMENT = _enrollment_counter("TotalEnrollmentEntity", "a course's enrolment count; key name = <ns>:total")
ENROLLMENTS_ADDED = _enrollment_counter("EnrollmentsAddedEntity", "hourly enrolments; key name = <ns>:adds")
ENROLLMENTS_DROPPED = _enrollment_counter("EnrollmentsDroppedEntity", "hourly unenrolments; key name = <ns>:drops")

DURABLE_JOB = KindSchema(
    "DurableJobEntity",
    (
        Prop("updated_on", "datetime"),
        Prop("execution_time_sec", "int"),
        Prop("status_code", "int"),
        Prop("output", "text"),
        Prop("sequence_num", "int"),
    ),
    key_scheme=NAME,
    description="a job's state and output; key name = job-<JobClass>-<namespace>",
)

# --- data removal, accounts, mail ------------------------------------------------------------

IMMEDIATE_REMOVAL_STATE = KindSchema(
    "ImmediateRemovalState",
    (Prop("state", "int"), Prop("last_modified", "datetime")),
    key_scheme=NAME,
    safe_key=hash_name_safe_key,
    description="a learner's data-removal state; key name = user id",
)
BATCH_REMOVAL_STATE = KindSchema(
    "BatchRemovalState",
    (Prop("resource_types", "str", repeated=True),),
    key_scheme=NAME,
    safe_key=hash_name_safe_key,
    description="kinds still to purge for a removed learner; key name = user id",
)
EMAIL_MAPPING = KindSchema(
    "EmailMapping",
    (Prop("email", "str"),),
    key_scheme=NAME,
    scope="global",
    safe_key=hash_name_safe_key,
    blacklist=("email",),
    description="a Gitkit user's email (default namespace); key name = Gitkit user id",
)
SUBSCRIPTION_STATE = KindSchema(
    "SubscriptionStateEntity",
    (Prop("is_subscribed", "bool"),),
    key_scheme=NAME,
    safe_key=hash_name_safe_key,
    description="whether an address takes course mail; key name = email",
)


def notification_safe_key(key: Key, row: Mapping[str, Any] | None, ctx: ExportContext) -> Key:
    """``(<kind>:<to>:<intent>:<µs>)``: the address hashed, intent and time kept.

    The intent holds no ``:`` (Course Builder refuses one) and the time is
    digits, so the address is everything before the last two ``:``. Course
    Builder rebuilds the time through a datetime and a float, which can move
    it by a microsecond; so does this, to give the same names.
    """
    name = str(key.id_or_name)
    prefix = f"({key.kind.lower()}:"
    parts = name[len(prefix):-1].rsplit(":", 2) if name.startswith(prefix) and name.endswith(")") else []
    if len(parts) != 3 or not (parts[2].isascii() and parts[2].isdigit() and len(parts[2]) <= 19):
        raise malformed_key(key, f"'{prefix}<to>:<intent>:<time>)'", "is not a notification name")
    to, intent, usec = parts
    usec = str(int(1_000_000 * (int(usec) / 1_000_000)))
    return Key(key.kind, f"{prefix}{ctx.transform(to)}:{intent}:{usec})", namespace=ctx.namespace)


_NOTIFICATION_PROPS = (
    Prop("enqueue_date", "datetime"),
    Prop("intent", "str"),
    Prop("to", "str"),
    Prop("_change_date", "datetime"),
    Prop("_retention_policy", "str"),
)
NOTIFICATION = KindSchema(
    "Notification",
    _NOTIFICATION_PROPS + (
        Prop("audit_trail", "json"),
        Prop("sender", "str"),
        Prop("subject", "text"),
        Prop("_done_date", "datetime"),
        Prop("_fail_date", "datetime"),
        Prop("_last_enqueue_date", "datetime"),
        Prop("_last_exception", "json"),
        Prop("_recoverable_failure_count", "int"),
        Prop("_send_date", "datetime"),
    ),
    key_scheme=NAME,
    safe_key=notification_safe_key,
    blacklist=("audit_trail", "_last_exception", "subject"),
    hashed=("to", "sender"),
    description="a mail sent or queued; key name = (notification:<to>:<intent>:<µs>)",
)
PAYLOAD = KindSchema(
    "Payload",
    _NOTIFICATION_PROPS + (Prop("body", "text"), Prop("html", "text")),
    key_scheme=NAME,
    safe_key=notification_safe_key,
    blacklist=("body", "html"),
    rewrite=_hash_fields("to"),
    description="a mail's body; key name = (payload:<to>:<intent>:<µs>)",
)

EXTERNAL_TASK = KindSchema(
    "_ExternalTask",
    (
        Prop("change_date", "datetime"),
        Prop("create_date", "datetime"),
        Prop("result", "text"),
        Prop("status", "str"),
        Prop("user_id", "str"),
        Prop("worker_id", "str"),
    ),
    rewrite=_hash_fields("user_id"),
    description="a task of the external task balancer",
)

# --- news, groups, skills, editor -------------------------------------------------------

COURSE_NEWS = KindSchema(
    "CourseNewsEntity", (Prop("data", "text"),), key_scheme=NAME,
    description="course-wide news items; key name = singleton",
)
STUDENT_NEWS = KindSchema(
    "StudentNewsEntity", (Prop("data", "text"),), key_scheme=NAME, safe_key=hash_name_safe_key,
    description="news items a learner has seen; key name = user id",
)
STUDENT_GROUP = KindSchema(
    "StudentGroupEntity", (Prop("data", "text"), Prop("updated_on", "datetime")),
    description="a student group",
)
STUDENT_GROUP_MEMBERSHIP = KindSchema(
    "StudentGroupMembership",
    (Prop("group_id", "int"),),
    key_scheme=NAME,
    safe_key=hash_name_safe_key,
    description="group membership; key name = lower-cased email",
)
EMAIL_TO_OBFUSCATED_USER_ID = KindSchema(
    "EmailToObfuscatedUserId",
    (Prop("user", "json"), Prop("last_modified", "datetime")),
    blacklist=("user",),
    description="scratch rows of an email to user id lookup (a user: email and user id)",
)
EDITOR_PREFS = KindSchema(
    "EditorPrefsEntity",
    (Prop("data", "text"),),
    key_scheme=NAME,
    safe_key=colon_triple_safe_key,
    description="an author's editor preferences; key name = <user_id>:<rest url>:<object key>",
)
COMPETENCY_MEASURE = KindSchema(
    "CompetencyMeasureEntity",
    (Prop("data", "text"),),
    key_scheme=NAME,
    safe_key=colon_triple_safe_key,
    description="a learner's competency on a skill; key name = <user_id>:<skill id>:<measure>",
)
SKILL_COMPLETION_AGGREGATE = KindSchema(
    "SkillCompletionAggregate", (Prop("data", "text"),), key_scheme=NAME,
    description="completions of a skill per date (job); key name = skill id",
)

# --- course content (courses.COURSE_CONTENT_ENTITIES, ADDITIONAL_ENTITIES_FOR_COURSE_IMPORT) -----


def _data_kind(kind: str, description: str, *extra: Prop, **rules: Any) -> KindSchema:
    """The many course kinds that are a numeric id and a ``data`` Text."""
    return KindSchema(kind, (Prop("data", "text"),) + extra, description=description, **rules)


def _role_users(props: dict[str, Any], key: Key, ctx: ExportContext) -> None:
    """courseport: the member emails in a role's ``data.users`` are hashed."""
    data = props.get("data")
    parsed = _json_or_none(data)
    if isinstance(parsed, dict) and isinstance(parsed.get("users"), list):
        parsed["users"] = [u if u is None else ctx.transform(u) for u in parsed["users"]]
        props["data"] = _like(data, dumps(parsed))


QUESTION = _data_kind("QuestionEntity", "a question (multiple choice or short answer)")
QUESTION_GROUP = _data_kind("QuestionGroupEntity", "a group of questions")
LABEL = _data_kind("LabelEntity", "a label (track, locale ...)")
ROLE = _data_kind("RoleEntity", "an admin role; data.users = member emails", rewrite=_role_users)
CONTENT_CHUNK = KindSchema(
    "ContentChunkEntity",
    (
        Prop("content_type", "str"),
        Prop("last_modified", "datetime"),
        Prop("supports_custom_tags", "bool"),
        Prop("uid", "str"),
        Prop("contents", "text"),
    ),
    description="a chunk of HTML content",
)
SKILL = _data_kind("_SkillEntity", "a skill of the skill map")
RESOURCE_BUNDLE = KindSchema(
    "ResourceBundleEntity",
    (
        Prop("data", "text"),
        Prop("locale", "str"),
        Prop("created_on", "datetime"),
        Prop("updated_on", "datetime"),
    ),
    key_scheme=NAME,
    description="translations of one resource; key name = <type>:<id>:<locale>",
)
I18N_PROGRESS = KindSchema(
    "I18nProgressEntity", (Prop("data", "text"),), key_scheme=NAME,
    description="translation progress; key name = <type>:<id>",
)
ANNOUNCEMENT = KindSchema("AnnouncementEntity", (), description="an announcement")

# The course's files (models/vfs.py).
FILE_METADATA = KindSchema(
    "FileMetadataEntity",
    (
        Prop("created_on", "datetime"),
        Prop("updated_on", "datetime"),
        Prop("is_draft", "bool"),
        Prop("size", "int"),
    ),
    key_scheme=NAME,
    description="a course file's metadata; key name = its path",
)
FILE_DATA = KindSchema(
    "FileDataEntity",
    (Prop("data", "bytes"),),
    key_scheme=NAME,
    description="a course file's bytes, in 1 MB shards; key name = path[:shard:N]",
)

# --- site settings and machinery -----------------------------------------------------------

#: site settings that are lists of email addresses
EMAIL_LIST_SETTINGS = frozenset({"gcb_admin_user_emails", "gcb_user_whitelist"})


def _config_emails(props: dict[str, Any], key: Key, ctx: ExportContext) -> None:
    """courseport: the addresses in the admin list and the whitelist are hashed."""
    value = props.get("value")
    if key.name in EMAIL_LIST_SETTINGS and isinstance(value, str):
        props["value"] = _like(value, hash_tokens(value, ctx))


CONFIG_PROPERTY = KindSchema(
    "ConfigPropertyEntity",
    (Prop("value", "text"), Prop("is_draft", "bool")),
    key_scheme=NAME,
    scope="global",
    rewrite=_config_emails,
    description="a site setting (default namespace); key name = setting name",
)
START_AVAILABILITY_JOBS_STATUS = KindSchema(
    "StartAvailabilityJobsStatus", (Prop("last_run", "datetime"),), key_scheme=NAME, scope="global",
    description="when the availability cron last ran (default namespace); key name = singleton",
)
DUMMY_MODEL = KindSchema(
    "DummyModel", (Prop("dummy_int", "int"),), key_scheme=NAME,
    description="the datastore diagnostics' scratch row; key name = _dummy_entity",
)

COURSE_CONTENT_KINDS: tuple[str, ...] = (
    "QuestionEntity",
    "QuestionGroupEntity",
    "LabelEntity",
    "RoleEntity",
    "ContentChunkEntity",
)

ADDITIONAL_COURSE_IMPORT_KINDS: tuple[str, ...] = (
    "_SkillEntity",
    "ResourceBundleEntity",
    "I18nProgressEntity",
    "StudentGroupEntity",
    "StudentGroupMembership",
)

#: every kind `download course` carries as models/<Kind>.json, sorted
COURSE_KINDS: tuple[str, ...] = tuple(sorted(COURSE_CONTENT_KINDS + ADDITIONAL_COURSE_IMPORT_KINDS))

VFS_KINDS: tuple[str, ...] = ("FileDataEntity", "FileMetadataEntity")

#: kinds `download datastore` never carries (App Engine's machinery)
EXCLUDED_KINDS: frozenset[str] = frozenset(
    {
        "_AE_Barrier_Index", "_AE_MR_MapreduceState", "_AE_MR_OutputFile",
        "_AE_MR_ShardState", "_AE_MR_TaskPayload", "_AE_Pipeline_Barrier",
        "_AE_Pipeline_Record", "_AE_Pipeline_Slot", "_AE_Pipeline_Status",
        "_AE_TokenStorage_", "_DeferredTaskEntity",
    }
)

_ALL = (
    STUDENT, PERSONAL_PROFILE, STUDENT_PREFERENCES, STUDENT_ANSWERS,
    STUDENT_PROPERTY, STUDENT_FORM, STUDENT_RATING_PROPERTY, INVITATION_STUDENT_PROPERTY,
    EVENT, STUDENT_RATING_EVENT,
    SUBMISSION, REVIEW, REVIEW_SUMMARY, REVIEW_STEP,
    QUESTION_ANSWERS, STUDENT_VECTOR, STUDENT_CLUSTERS, CLUSTER, STUDENT_AGGREGATE,
    ADDITIONAL_FIELD_NAMES, STUDENT_ENROLLMENT_EVENT,
    TOTAL_ENROLLMENT, ENROLLMENTS_ADDED, ENROLLMENTS_DROPPED, DURABLE_JOB,
    IMMEDIATE_REMOVAL_STATE, BATCH_REMOVAL_STATE, EMAIL_MAPPING, SUBSCRIPTION_STATE,
    NOTIFICATION, PAYLOAD, EXTERNAL_TASK,
    COURSE_NEWS, STUDENT_NEWS, STUDENT_GROUP, STUDENT_GROUP_MEMBERSHIP, EMAIL_TO_OBFUSCATED_USER_ID,
    EDITOR_PREFS, COMPETENCY_MEASURE, SKILL_COMPLETION_AGGREGATE,
    QUESTION, QUESTION_GROUP, LABEL, ROLE, CONTENT_CHUNK, SKILL, RESOURCE_BUNDLE, I18N_PROGRESS,
    ANNOUNCEMENT, FILE_METADATA, FILE_DATA,
    CONFIG_PROPERTY, START_AVAILABILITY_JOBS_STATUS, DUMMY_MODEL,
)

REGISTRY: dict[str, KindSchema] = {schema.kind: schema for schema in _ALL}
assert len(REGISTRY) == len(_ALL), "a kind is defined twice"


def schema_for(kind: str) -> KindSchema | None:
    """The schema of a known kind, or None for a kind carried generically."""
    return REGISTRY.get(kind)


def is_internal_kind(kind: str) -> bool:
    """App Engine metadata kinds (``__kind__`` ...), never user data."""
    return kind.startswith("__") and kind.endswith("__")
