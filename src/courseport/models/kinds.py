"""Course Builder's kinds (spec §3), and the registry that knows them."""

from __future__ import annotations

from .schema import NAME, KindSchema, Prop, hash_name_safe_key, hash_prefix_safe_key


def _data_kind(kind: str, description: str, *extra: Prop) -> KindSchema:
    """The many course kinds that are a numeric id and a ``data`` Text."""
    return KindSchema(kind, (Prop("data", "text"),) + extra, description=description)


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

STUDENT_ANSWERS = KindSchema(
    "StudentAnswersEntity",
    (Prop("updated_on", "datetime"), Prop("data", "text")),
    key_scheme=NAME,
    safe_key=hash_name_safe_key,
    description="latest answers per assessment; key name = user id",
)

STUDENT_PROPERTY = KindSchema(
    "StudentPropertyEntity",
    (Prop("updated_on", "datetime"), Prop("name", "str"), Prop("value", "text")),
    key_scheme=NAME,
    safe_key=hash_prefix_safe_key("-"),
    description="a named JSON value per learner (progress); key name = <user_id>-<name>",
)

EVENT = KindSchema(
    "EventEntity",
    (
        Prop("recorded_on", "datetime"),
        Prop("source", "str"),
        Prop("user_id", "str"),
        Prop("data", "text"),
    ),
    hashed=("user_id",),
    description="a recorded learner event",
)

STUDENT_PREFERENCES = KindSchema(
    "StudentPreferencesEntity",
    (Prop("data", "text"),),
    key_scheme=NAME,
    safe_key=hash_name_safe_key,
    description="a learner's UI preferences; key name = user id",
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

EDITOR_PREFS = KindSchema(
    "EditorPrefsEntity",
    (Prop("data", "text"),),
    key_scheme=NAME,
    safe_key=hash_prefix_safe_key(":"),
    description="an admin's editor preferences; key name = <user_id>:<resource>",
)

STUDENT_ENROLLMENT_EVENT = _data_kind(
    "StudentEnrollmentEventEntity", "an enrolment/unenrolment counter event"
)

# Course content (courses.COURSE_CONTENT_ENTITIES and
# ADDITIONAL_ENTITIES_FOR_COURSE_IMPORT): what `download course` carries.
QUESTION = _data_kind("QuestionEntity", "a question (multiple choice or short answer)")
QUESTION_GROUP = _data_kind("QuestionGroupEntity", "a group of questions")
LABEL = _data_kind("LabelEntity", "a label (track, locale ...)")
ROLE = _data_kind("RoleEntity", "an admin role")
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
    description="translations of one resource",
)
I18N_PROGRESS = _data_kind("I18nProgressEntity", "translation progress")
STUDENT_GROUP = _data_kind(
    "StudentGroupEntity", "a student group", Prop("updated_on", "datetime")
)
STUDENT_GROUP_MEMBERSHIP = KindSchema(
    "StudentGroupMembership",
    (Prop("group_id", "int"),),
    key_scheme=NAME,
    description="group membership; key name = lower-cased email (never hashed)",
)

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

CONFIG_PROPERTY = KindSchema(
    "ConfigPropertyEntity",
    (Prop("value", "text"), Prop("is_draft", "bool")),
    key_scheme=NAME,
    scope="global",
    description="a site setting (default namespace); key name = setting name",
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
    STUDENT, STUDENT_ANSWERS, STUDENT_PROPERTY, EVENT, STUDENT_PREFERENCES,
    PERSONAL_PROFILE, EDITOR_PREFS, STUDENT_ENROLLMENT_EVENT,
    QUESTION, QUESTION_GROUP, LABEL, ROLE, CONTENT_CHUNK, SKILL, RESOURCE_BUNDLE,
    I18N_PROGRESS, STUDENT_GROUP, STUDENT_GROUP_MEMBERSHIP,
    FILE_METADATA, FILE_DATA, CONFIG_PROPERTY,
)

REGISTRY: dict[str, KindSchema] = {schema.kind: schema for schema in _ALL}


def schema_for(kind: str) -> KindSchema | None:
    """The schema of a known kind, or None for a kind carried generically."""
    return REGISTRY.get(kind)


def is_internal_kind(kind: str) -> bool:
    """App Engine metadata kinds (``__kind__`` ...), never user data."""
    return kind.startswith("__") and kind.endswith("__")
