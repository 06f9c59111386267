"""Tests for courseport.courses.rules (spec §2.1, §2.2)."""

from __future__ import annotations

import pytest

from courseport.courses.rules import (
    CourseRule, CourseRuleError, add_rule, find_course, format_rules,
    new_course_rule, parse_rule, parse_rules, validate_course_name,
    validate_rules)


@pytest.mark.parametrize("text, slug, folder, namespace", [
    ("course:/test::ns_test", "/test", "", "ns_test"),
    ("course:/:/", "/", "/", ""),
    ("course:/:/:", "/", "/", ""),
    ("course:/clicklinktest::ns_clicklinktest", "/clicklinktest", "", "ns_clicklinktest"),
    ("course:/a:/courses/a", "/a", "/courses/a", "gcb-course-courses-a"),
    ("course:/b:/x:", "/b", "/x", ""),
    ("course:/sample::ns_sample", "/sample", "", "ns_sample"),
    ("course:/c::", "/c", "", ""),
    ("course:/d:", "/d", "", ""),
    ("course:/e:/x:my.ns-1_2", "/e", "/x", "my.ns-1_2"),
])
def test_parse_rule(text: str, slug: str, folder: str, namespace: str) -> None:
    rule = parse_rule(text)
    assert rule == CourseRule(raw=text, slug=slug, folder=folder, namespace=namespace)
    assert rule.is_datastore == (folder == "")


def test_parse_rule_keeps_trimmed_raw() -> None:
    assert parse_rule("  course:/test::ns_test \n").raw == "course:/test::ns_test"


@pytest.mark.parametrize("text, message", [
    ("foo:/x:", "course rule 'foo:/x:' must start with 'course:'"),
    ("Course:/x:", "must start with 'course:'"),
    ("course:/x", "has 2 ':'-separated part(s); expected course:<slug>:<folder>"),
    ("course", "has 1 ':'-separated part(s)"),
    ("", "has 1 ':'-separated part(s)"),
    ("course:/x:/f:ns:extra", "has 5 ':'-separated parts; expected at most 4"),
    ("course:x::ns_x", "slug 'x' must start with '/'"),
    ("course:::ns_x", "slug '' must start with '/'"),
    ("course:/x?a=1::ns_x", "must be a bare URL path, without a query ('?')"),
    ("course:/x#top::ns_x", "must be a bare URL path, without a fragment ('#')"),
    ("course:/x y::ns_x", "slug '/x y' must not contain whitespace"),
    ("course:/x::ns x", "namespace 'ns x' must be at most 100 characters"),
    ("course:/x::ns/x", "namespace 'ns/x'"),
    ("course:/x:/a b", "namespace 'gcb-course-a b'"),
    ("course:/x::" + "n" * 101, "must be at most 100 characters"),
])
def test_parse_rule_errors(text: str, message: str) -> None:
    with pytest.raises(CourseRuleError) as info:
        parse_rule(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_namespace_of_100_chars_is_accepted() -> None:
    assert parse_rule("course:/x::" + "n" * 100).namespace == "n" * 100


def test_course_rule_error_is_value_error() -> None:
    assert issubclass(CourseRuleError, ValueError)


def test_parse_rules_commas_newlines_comments() -> None:
    value = (
        "# the site's courses\n"
        "\n"
        "course:/test::ns_test, course:/sample::ns_sample\n"
        "   # indented comment, course:/ignored::x\n"
        "course:/a:/courses/a,\n"
        ",,\n"
        "  course:/:/  \n")
    rules = parse_rules(value)
    assert [r.raw for r in rules] == [
        "course:/test::ns_test", "course:/sample::ns_sample",
        "course:/a:/courses/a", "course:/:/"]


def test_parse_rules_spec_examples() -> None:
    assert [r.slug for r in parse_rules("course:/test::ns_test, course:/:/")] == ["/test", "/"]
    assert parse_rules("course:/:/:")[0].namespace == ""
    assert parse_rules("") == []
    assert parse_rules("# nothing\n\n") == []


def test_parse_rules_duplicate_slug() -> None:
    with pytest.raises(CourseRuleError, match="both use slug '/x'; each course needs its own slug"):
        parse_rules("course:/x::ns_a\ncourse:/x::ns_b")


def test_parse_rules_duplicate_namespace() -> None:
    with pytest.raises(CourseRuleError, match="both use namespace 'ns_a'"):
        parse_rules("course:/x::ns_a, course:/y::ns_a")


def test_parse_rules_duplicate_default_namespace() -> None:
    with pytest.raises(CourseRuleError, match="both use namespace ''"):
        parse_rules("course:/x:/f:, course:/:/")


def test_parse_rules_ordering() -> None:
    with pytest.raises(CourseRuleError) as info:
        parse_rules("course:/:/, course:/test::ns_test")
    assert str(info.value) == (
        "course rule 'course:/test::ns_test' must come before 'course:/:/': "
        "put more specific slugs first and '/' last")
    assert [r.slug for r in parse_rules("course:/test::ns_test, course:/:/")] == ["/test", "/"]


def test_parse_rules_ordering_prefix_slugs() -> None:
    with pytest.raises(CourseRuleError, match="'course:/ab::ns_ab' must come before"):
        parse_rules("course:/a::ns_a\ncourse:/ab::ns_ab")
    assert len(parse_rules("course:/ab::ns_ab\ncourse:/a::ns_a")) == 2


def test_parse_rules_reports_bad_rule() -> None:
    with pytest.raises(CourseRuleError, match="'nope:/x:' must start with 'course:'"):
        parse_rules("course:/test::ns_test, nope:/x:")


def test_format_rules_round_trip() -> None:
    rules = parse_rules("course:/test::ns_test, course:/a:/courses/a\ncourse:/:/")
    text = format_rules(rules)
    assert text == "course:/test::ns_test\ncourse:/a:/courses/a\ncourse:/:/"
    assert parse_rules(text) == rules
    assert format_rules([]) == ""


def test_find_course_prefix_semantics() -> None:
    rules = parse_rules("course:/test::ns_test, course:/sample::ns_sample, course:/:/")
    assert find_course(rules, "/test") == rules[0]
    assert find_course(rules, "/sample") == rules[1]
    assert find_course(rules, "/") == rules[2]
    assert find_course(rules, "/te") is None
    assert find_course(rules, "/tests") is None
    assert find_course([], "/test") is None


def test_find_course_first_match_wins() -> None:
    first = parse_rule("course:/x::ns_one")
    second = parse_rule("course:/x::ns_two")
    assert find_course([first, second], "/x") is first


@pytest.mark.parametrize("name, bare", [
    ("physics", "physics"), ("/physics", "physics"), ("ab", "ab"),
    ("a_b-9", "a_b-9"), ("x" * 99, "x" * 99),
])
def test_validate_course_name(name: str, bare: str) -> None:
    assert validate_course_name(name) == bare


@pytest.mark.parametrize("name, message", [
    ("Physics", "may contain only lowercase letters, digits, '_' and '-'"),
    ("phys ics", "may contain only lowercase"),
    ("phys/ics", "may contain only lowercase"),
    ("", "may contain only lowercase"),
    ("/", "may contain only lowercase"),
    ("a", "must be 2 to 99 characters long, not 1"),
    ("/a", "must be 2 to 99 characters long, not 1"),
    ("x" * 100, "must be 2 to 99 characters long, not 100"),
])
def test_validate_course_name_errors(name: str, message: str) -> None:
    with pytest.raises(CourseRuleError, match=message):
        validate_course_name(name)


def test_new_course_rule() -> None:
    rule = new_course_rule("/physics")
    assert rule == CourseRule("course:/physics::ns_physics", "/physics", "", "ns_physics")
    assert rule.is_datastore
    with pytest.raises(CourseRuleError):
        new_course_rule("Bad Name")


def test_add_rule_appends_when_valid() -> None:
    rules = parse_rules("course:/test::ns_test")
    result = add_rule(rules, new_course_rule("physics"))
    assert [r.slug for r in result] == ["/test", "/physics"]
    assert [r.slug for r in rules] == ["/test"]  # input untouched


def test_add_rule_goes_above_catch_all() -> None:
    rules = parse_rules("course:/test::ns_test, course:/:/")
    result = add_rule(rules, new_course_rule("physics"))
    assert [r.slug for r in result] == ["/test", "/physics", "/"]
    validate_rules(result)


def test_add_rule_goes_above_less_specific_slugs() -> None:
    rules = parse_rules("course:/physics2::ns_p2, course:/phys::ns_phys, course:/:/")
    result = add_rule(rules, new_course_rule("physics"))
    assert [r.slug for r in result] == ["/physics2", "/physics", "/phys", "/"]


def test_add_rule_to_empty_list() -> None:
    assert add_rule([], new_course_rule("physics")) == [new_course_rule("physics")]


def test_add_rule_existing_slug() -> None:
    rules = [new_course_rule("physics")]
    with pytest.raises(CourseRuleError, match="^course /physics already exists$"):
        add_rule(rules, parse_rule("course:/physics::ns_other"))


def test_add_rule_existing_namespace() -> None:
    rules = [new_course_rule("physics")]
    with pytest.raises(CourseRuleError, match="namespace 'ns_physics' is already used by course /physics"):
        add_rule(rules, parse_rule("course:/other::ns_physics"))


def test_add_rule_to_invalid_list() -> None:
    bad = [parse_rule("course:/:/"), parse_rule("course:/test::ns_test")]
    with pytest.raises(CourseRuleError, match="cannot add course rule 'course:/physics::ns_physics'"):
        add_rule(bad, new_course_rule("physics"))
