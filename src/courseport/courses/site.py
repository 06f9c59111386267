"""The site: its courses, found by URL prefix, over one store (spec §2).

The list of course rules is the ``gcb_courses_config`` setting, kept where
Course Builder keeps it: a ``ConfigPropertyEntity`` in the default
namespace.
"""

from __future__ import annotations

from pathlib import Path

from ..datastore import Backend, Entity, Key, Text, home_dir
from ..errors import UserError
from .coursejson import CourseData, dump_course_json, load_course_json, new_course_data
from .legacy import load_legacy_course
from .rules import (
    CourseRule,
    CourseRuleError,
    add_rule,
    find_course,
    format_rules,
    new_course_rule,
    parse_rules,
)
from .settings import blank_course_yaml, course_title, load_course_yaml
from .vfs import DatastoreFileSystem, FileSystem, FolderFileSystem

COURSES_CONFIG = "gcb_courses_config"
COURSE_YAML = "/course.yaml"
COURSE_JSON = "/data/course.json"
UNIT_CSV = "/data/unit.csv"
LESSON_CSV = "/data/lesson.csv"

MODEL_1_2 = "1.2"
MODEL_1_3 = "1.3"


class CourseNotFoundError(UserError, LookupError):
    def __init__(self, prefix: str, known: list[str]) -> None:
        listed = ", ".join(known) if known else "none yet: add one with 'courseport courses add /name'"
        super().__init__(f"no course found with course_url_prefix {prefix!r} (courses: {listed})")


class Course:
    """One course: its rule, namespace, files, settings and units."""

    def __init__(self, site: "Site", rule: CourseRule) -> None:
        self.site = site
        self.rule = rule
        self.store = site.store
        self.fs: FileSystem = (
            DatastoreFileSystem(site.store, rule.namespace)
            if rule.is_datastore
            else FolderFileSystem(site.folder_path(rule.folder))
        )

    @property
    def slug(self) -> str:
        return self.rule.slug

    @property
    def namespace(self) -> str:
        return self.rule.namespace

    @property
    def raw(self) -> str:
        return self.rule.raw

    @property
    def version(self) -> str:
        """Course model version: 1.2 for a folder course described by CSVs."""
        if not self.fs.editable and self.fs.isfile(UNIT_CSV) and self.fs.isfile(LESSON_CSV):
            return MODEL_1_2
        return MODEL_1_3

    def settings(self) -> dict:
        data = self.fs.get(COURSE_YAML)
        return load_course_yaml(data) if data is not None else {}

    @property
    def title(self) -> str:
        return course_title(self.settings())

    def data(self) -> CourseData:
        """Units and lessons (model 1.3, or the 1.2 CSVs of a folder course)."""
        if self.version == MODEL_1_2:
            return load_legacy_course(self.fs.get(UNIT_CSV) or b"", self.fs.get(LESSON_CSV) or b"")
        raw = self.fs.get(COURSE_JSON)
        return load_course_json(raw) if raw is not None else new_course_data()

    def save_data(self, data: CourseData) -> None:
        self.fs.put(COURSE_JSON, dump_course_json(data).encode("utf-8"))

    def save_settings_text(self, text: str) -> None:
        load_course_yaml(text)
        self.fs.put(COURSE_YAML, text.encode("utf-8"), is_draft=None)

    def __repr__(self) -> str:
        return f"Course({self.raw!r})"


class Site:
    """All courses of one store."""

    def __init__(self, store: Backend, folder_root: Path | None = None) -> None:
        self.store = store
        self.folder_root = folder_root or home_dir()

    @property
    def app_id(self) -> str:
        return self.store.app_id

    def folder_path(self, folder: str) -> Path:
        """A rule's folder: absolute, or relative to COURSEPORT_HOME."""
        path = Path(folder)
        return path if path.is_absolute() else self.folder_root / folder

    def _config_key(self) -> Key:
        return Key("ConfigPropertyEntity", COURSES_CONFIG)

    def rules(self) -> list[CourseRule]:
        entity = self.store.get(self._config_key())
        if entity is None or entity.get("is_draft"):
            return []
        return parse_rules(entity.get("value") or "")

    def save_rules(self, rules: list[CourseRule]) -> None:
        value = format_rules(rules)
        parse_rules(value)
        self.store.put(
            Entity(self._config_key(), {"value": Text(value), "is_draft": False})
        )

    def courses(self) -> list[Course]:
        return [Course(self, rule) for rule in self.rules()]

    def find(self, prefix: str) -> Course | None:
        rule = find_course(self.rules(), prefix)
        return Course(self, rule) if rule else None

    def course(self, prefix: str) -> Course:
        """The course at ``prefix``, or CourseNotFoundError listing the others."""
        rules = self.rules()
        rule = find_course(rules, prefix)
        if rule is None:
            raise CourseNotFoundError(prefix, [r.slug for r in rules])
        return Course(self, rule)

    def add_course(self, name: str, title: str | None = None) -> Course:
        """A new, empty datastore course holding only its course.yaml."""
        rule = new_course_rule(name)
        rules = add_rule(self.rules(), rule)
        course = Course(self, rule)
        if self.store.kinds(rule.namespace):
            raise CourseRuleError(
                f"namespace {rule.namespace!r} already holds data; "
                f"delete it first ('courseport delete datastore {rule.slug} local')"
            )
        text = blank_course_yaml(title or rule.slug.strip("/"))
        course.fs.put(COURSE_YAML, text.encode("utf-8"), is_draft=None)
        self.save_rules(rules)
        return course

    def delete_course(self, slug: str, batch: int = 500) -> int:
        """Remove the course at ``slug`` and every entity of its namespace; how many
        entities. The rule goes first, so no page serves a half-deleted course."""
        course = self.course(slug)
        if not course.rule.is_datastore:
            raise CourseRuleError(f"course {slug} is a folder course: remove its rule, its files stay")
        self.remove_rule(course.slug)
        removed = 0
        for kind in self.store.kinds(course.namespace):
            keys = list(self.store.query(kind, course.namespace, keys_only=True))
            for start in range(0, len(keys), batch):
                self.store.delete_multi(keys[start:start + batch])
            removed += len(keys)
        return removed

    def remove_rule(self, slug: str) -> None:
        rules = [rule for rule in self.rules() if rule.slug != slug]
        self.save_rules(rules)

