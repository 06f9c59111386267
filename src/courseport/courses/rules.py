"""Course rules ``course:<slug>:<folder>[:<namespace>]`` (spec §2.1, §2.2).

A rule names one course: the URL slug it is served under, the folder its
content lives in ('' = the datastore) and the datastore namespace its data
lives in. The site-wide list is the ``gcb_courses_config`` value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from ..errors import UserError

_NAMESPACE_RE = re.compile(r"[0-9A-Za-z._-]{0,100}")
_COURSE_NAME_RE = re.compile(r"[_a-z0-9-]+")
#: the namespace of the server's accounts, app-specific passwords and sign-in
#: throttles: no course may use it, so no course's archive can hold them
ACCOUNTS_NAMESPACE = "_courseport_accounts"

_RULE_FORM = "course:<slug>:<folder>[:<namespace>]"


class CourseRuleError(UserError, ValueError):
    """A course rule, or a list of them, is not valid."""


@dataclass(frozen=True)
class CourseRule:
    """One parsed course rule."""

    raw: str
    slug: str
    folder: str
    namespace: str

    @property
    def is_datastore(self) -> bool:
        """True if the course content lives in the datastore VFS."""
        return self.folder == ""


def parse_rule(text: str) -> CourseRule:
    """Parse one rule, e.g. ``course:/test::ns_test``."""
    raw = text.strip()
    parts = raw.split(":")
    if len(parts) < 3:
        raise CourseRuleError(
            f"course rule {raw!r} has {len(parts)} ':'-separated part(s); "
            f"expected {_RULE_FORM}")
    if len(parts) > 4:
        raise CourseRuleError(
            f"course rule {raw!r} has {len(parts)} ':'-separated parts; "
            f"expected at most 4: {_RULE_FORM}")
    if parts[0] != "course":
        raise CourseRuleError(f"course rule {raw!r} must start with 'course:'")
    slug, folder = parts[1], parts[2]
    _check_slug(raw, slug)
    namespace = parts[3] if len(parts) == 4 else _default_namespace(folder)
    _check_namespace(raw, namespace)
    return CourseRule(raw=raw, slug=slug, folder=folder, namespace=namespace)


def _default_namespace(folder: str) -> str:
    if folder and folder != "/":
        return "gcb-course" + folder.replace("/", "-")
    return ""


def _check_slug(raw: str, slug: str) -> None:
    if not slug.startswith("/"):
        raise CourseRuleError(
            f"course rule {raw!r}: slug {slug!r} must start with '/'")
    for char, what in (("?", "a query"), ("#", "a fragment")):
        if char in slug:
            raise CourseRuleError(
                f"course rule {raw!r}: slug {slug!r} must be a bare URL path, "
                f"without {what} ('{char}')")
    if any(c.isspace() for c in slug):
        raise CourseRuleError(
            f"course rule {raw!r}: slug {slug!r} must not contain whitespace")


def _check_namespace(raw: str, namespace: str) -> None:
    if not _NAMESPACE_RE.fullmatch(namespace):
        raise CourseRuleError(
            f"course rule {raw!r}: namespace {namespace!r} must be at most 100 "
            "characters of letters, digits, '.', '_' and '-'")
    if namespace == ACCOUNTS_NAMESPACE:
        raise CourseRuleError(
            f"course rule {raw!r}: namespace {namespace!r} holds the server's accounts; "
            "give the course another namespace")


def _split_value(value: str) -> list[str]:
    items: list[str] = []
    for line in value.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        items.extend(item.strip() for item in line.split(","))
    return [item for item in items if item]


def parse_rules(value: str) -> list[CourseRule]:
    """Parse and validate a ``gcb_courses_config`` value."""
    rules = [parse_rule(item) for item in _split_value(value)]
    validate_rules(rules)
    return rules


def validate_rules(rules: Sequence[CourseRule]) -> None:
    """Check slugs and namespaces are unique and specific slugs come first."""
    for attr in ("slug", "namespace"):
        _check_unique(rules, attr)
    for i, above in enumerate(rules):
        for below in rules[i + 1:]:
            # A request is routed to the first matching slug, so a later,
            # more specific rule could never be reached.
            if below.slug.startswith(above.slug):
                raise CourseRuleError(
                    f"course rule {below.raw!r} must come before {above.raw!r}: "
                    "put more specific slugs first and '/' last")


def _check_unique(rules: Sequence[CourseRule], attr: str) -> None:
    seen: dict[str, CourseRule] = {}
    for rule in rules:
        value = getattr(rule, attr)
        if value in seen:
            raise CourseRuleError(
                f"course rules {seen[value].raw!r} and {rule.raw!r} both use "
                f"{attr} {value!r}; each course needs its own {attr}")
        seen[value] = rule


def format_rules(rules: Iterable[CourseRule]) -> str:
    """Join rules into a config value, one per line."""
    return "\n".join(rule.raw for rule in rules)


def find_course(rules: Iterable[CourseRule], url_prefix: str) -> CourseRule | None:
    """First rule for ``url_prefix``, matched as ETL does (``/te`` is not ``/test``)."""
    prefix = f"course:{url_prefix}:"
    for rule in rules:
        if rule.raw.startswith(prefix):
            return rule
    return None


def validate_course_name(name: str) -> str:
    """Check a new course's name as the admin UI does; returns it without '/'."""
    bare = name[1:] if name.startswith("/") else name
    if not _COURSE_NAME_RE.fullmatch(bare):
        raise CourseRuleError(
            f"course name {name!r} may contain only lowercase letters, digits, "
            "'_' and '-'")
    if not 2 <= len(bare) <= 99:
        raise CourseRuleError(
            f"course name {name!r} must be 2 to 99 characters long, "
            f"not {len(bare)}")
    return bare


def new_course_rule(name: str) -> CourseRule:
    """The rule the admin UI creates: ``course:/<name>::ns_<name>``."""
    bare = validate_course_name(name)
    return parse_rule(f"course:/{bare}::ns_{bare}")


def add_rule(rules: list[CourseRule], rule: CourseRule) -> list[CourseRule]:
    """A copy of ``rules`` with ``rule`` placed as far down as still validates."""
    for existing in rules:
        if existing.slug == rule.slug:
            raise CourseRuleError(f"course {rule.slug} already exists")
        if existing.namespace == rule.namespace:
            raise CourseRuleError(
                f"namespace {rule.namespace!r} is already used by course "
                f"{existing.slug}")
    first_error: CourseRuleError | None = None
    for index in range(len(rules), -1, -1):
        candidate = rules[:index] + [rule] + rules[index:]
        try:
            validate_rules(candidate)
        except CourseRuleError as error:
            first_error = first_error or error
            continue
        return candidate
    raise CourseRuleError(f"cannot add course rule {rule.raw!r}: {first_error}")
