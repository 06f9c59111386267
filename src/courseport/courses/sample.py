"""The bundled sample course, "An Introduction to Data Privacy", at /sample."""

from __future__ import annotations

import json
from importlib import resources
from typing import Iterator

from ..datastore import Entity, Key, Text
from .._json import dumps
from .rules import CourseRuleError, add_rule, new_course_rule, parse_rule
from .site import Course, Site

SAMPLE_RULE = "course:/sample::ns_sample"
_NOT_COURSE_FILES = {"README.md", "questions.json"}


def _sample_root():
    return resources.files("courseport.courses").joinpath("sample")


def sample_files() -> Iterator[tuple[str, bytes]]:
    """``(path, bytes)`` of every course file of the sample, sorted."""

    def walk(node, prefix: str) -> Iterator[tuple[str, bytes]]:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            path = f"{prefix}/{child.name}"
            if child.is_dir():
                yield from walk(child, path)
            elif not (prefix == "" and child.name in _NOT_COURSE_FILES):
                yield path, child.read_bytes()

    yield from walk(_sample_root(), "")


def sample_questions(namespace: str = "ns_sample") -> list[Entity]:
    rows = json.loads(_sample_root().joinpath("questions.json").read_text("utf-8"))
    return [
        Entity(Key("QuestionEntity", row["id"], namespace=namespace), {"data": Text(dumps(row["data"]))})
        for row in rows
    ]


def install_sample(site: Site, prefix: str = "/sample") -> Course | None:
    """Install the sample at ``prefix`` (a new datastore course); None if a course is already there."""
    rule = parse_rule(SAMPLE_RULE) if prefix == "/sample" else new_course_rule(prefix)
    rules = site.rules()
    if any(r.slug == rule.slug for r in rules):
        return None
    if site.store.kinds(rule.namespace):
        raise CourseRuleError(f"namespace {rule.namespace!r} already holds data; delete it first")
    rules = add_rule(rules, rule)
    course = Course(site, rule)
    for path, data in sample_files():
        course.fs.put(path, data, is_draft=None if path == "/course.yaml" else False)
    site.store.put_multi(sample_questions(rule.namespace))
    site.save_rules(rules)
    return course
