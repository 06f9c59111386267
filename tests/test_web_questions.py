"""The ``question`` and ``question-group`` tags and their grading (spec §5.4, §5.5, §6.3).

Rendering is checked through the hooks the client library and the page
templates rely on; grading against Course Builder's formulas and against
what Course Builder's own client stored in the fixtures.
"""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, require_fixtures
from courseport.server.web import questions as Q
from courseport.server.web.tags import TagEnv, expand

MC = {
    "version": "1.5", "type": 0, "question": "<p>Pick <b>b</b></p>", "description": "d",
    "multiple_selections": False,
    "choices": [
        {"text": "a", "score": 0.0, "feedback": "no"},
        {"text": "<i>b</i>", "score": 1.0, "feedback": "yes"},
        {"text": "c", "score": "0.5", "feedback": ""},
    ],
    "defaultFeedback": "think",
}
MULTI = {**MC, "multiple_selections": True, "permute_choices": True,
         "show_answer_when_incorrect": True, "all_or_nothing_grading": True}
SA = {
    "version": "1.5", "type": 1, "question": "Say aa", "hint": "two a's", "defaultFeedback": "nope",
    "rows": 1, "columns": 100,
    "graders": [
        {"matcher": "case_insensitive", "response": "a", "score": "0.25", "feedback": "one"},
        {"matcher": "regex", "response": "/^a+$/i", "score": "1.0", "feedback": "all"},
    ],
}
TEXTAREA = {**SA, "rows": 4, "columns": 60, "hint": ""}
GROUP = {"version": "1.5", "description": "g", "introduction": "<em>Intro <gcb-code>x</gcb-code></em>",
         "items": [{"question": 2, "weight": "2"}, {"question": 1, "weight": 3}]}
QUESTIONS: dict[int, dict[str, Any]] = {1: MC, 2: SA, 3: MULTI, 4: TEXTAREA, 5: {"type": 7}}
GROUPS: dict[int, dict[str, Any]] = {10: GROUP,
                                     11: {"items": [{"question": 99, "weight": 1},
                                                    {"question": 1, "weight": 1}]}}


def env(*, checkable: bool = True) -> TagEnv:
    return TagEnv(questions=QUESTIONS.get, groups=GROUPS.get, read_file=lambda path: None,
                  record_events=False, standalone_questions=checkable)


def render(html: str, *, checkable: bool = True) -> str:
    return expand(html, env(checkable=checkable))


class Tree(HTMLParser):
    """Elements by id, and every start tag with its attributes, in order."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.scripts: dict[str, str] = {}
        self._script_for: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append((tag, values))
        if tag == "script" and "qt-data" in values.get("class", ""):
            self._script_for = values["data-for"]

    def handle_data(self, data: str) -> None:
        if self._script_for is not None:
            self.scripts[self._script_for] = data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script_for = None

    def find(self, tag: str, **wanted: str) -> list[dict[str, str]]:
        found = []
        for name, attrs in self.tags:
            if name != tag:
                continue
            if all(_has(attrs.get(k.rstrip("_").replace("_", "-")), v) for k, v in wanted.items()):
                found.append(attrs)
        return found

    def data(self, iid: str) -> Any:
        return json.loads(self.scripts[iid])


def _has(value: str | None, wanted: str) -> bool:
    if value is None:
        return False
    if wanted.startswith("~"):
        return wanted[1:] in value.split()
    return value == wanted


# --- multiple choice ----------------------------------------------------------------


def test_mc_standalone_has_the_hooks_the_client_uses() -> None:
    html = render('<question quid="1" instanceid="mcA" weight="3"></question>')
    assert html.startswith('<div class="gcb-border-box"><div id="mcA" class="qt-mc-question qt-standalone"'
                           ' data-quid="1">')
    tree = Tree(html)
    assert tree.find("div", class_="qt-points")
    assert ">3 points<" in html
    assert '<div class="qt-question"><p>Pick <b>b</b></p></div>' in html
    radios = tree.find("input", type="radio", name="mcA")
    assert [r["id"] for r in radios] == ["mcA.0", "mcA.1", "mcA.2"]
    assert [r["data-index"] for r in radios] == ["0", "1", "2"]
    assert [a["for"] for a in tree.find("label")] == ["mcA.0", "mcA.1", "mcA.2"]
    assert '<label for="mcA.1"><i>b</i></label>' in html
    assert len(tree.find("button", class_="~qt-check-answer")) == 1
    assert tree.find("div", class_="qt-feedback", aria_live="polite")
    assert tree.data("mcA") == {
        "quid": "1",
        "choices": [{"text": "a", "score": 0.0, "feedback": "no"},
                    {"text": "<i>b</i>", "score": 1.0, "feedback": "yes"},
                    {"text": "c", "score": 0.5, "feedback": ""}],
        "defaultFeedback": "think", "permuteChoices": False, "showAnswerWhenIncorrect": False,
        "allOrNothingGrading": False, "weight": 3.0,
    }


def test_mc_flags_and_checkboxes() -> None:
    html = render('<question quid="3" instanceid="mcB"></question>')
    tree = Tree(html)
    assert len(tree.find("input", type="checkbox")) == 3
    data = tree.data("mcB")
    assert data["permuteChoices"] and data["showAnswerWhenIncorrect"] and data["allOrNothingGrading"]
    assert data["weight"] == 1.0
    assert ">1 point<" in html


def test_no_check_button_in_scored_contexts() -> None:
    for quid in (1, 2):
        html = render(f'<question quid="{quid}" instanceid="q{quid}"></question>', checkable=False)
        assert "qt-check-answer" not in html
        assert "qt-feedback" in html
    assert "qt-check-answer" not in render('<question-group qgid="10" instanceid="g"></question-group>',
                                           checkable=False)


def test_question_text_and_choices_expand_tags() -> None:
    QUESTIONS[6] = {**MC, "question": '<gcb-code mode="python">1 &lt; 2</gcb-code>',
                    "choices": [{"text": '<gcb-math>x^2</gcb-math>', "score": 1}]}
    try:
        html = render('<question quid="6" instanceid="exp"></question>')
    finally:
        del QUESTIONS[6]
    assert '<code class="codemirror-container-readonly" data-mode="python">1 &lt; 2</code>' in html
    assert '<script type="math/tex">x^2</script>' in html


# --- short answer -------------------------------------------------------------------


def test_sa_single_line_with_hint() -> None:
    html = render('<question quid="2" instanceid="saA" weight="0.5"></question>')
    assert '<div id="saA" class="qt-sa-question qt-standalone" data-quid="2">' in html
    tree = Tree(html)
    assert tree.find("input", type="text", class_="~qt-response")
    assert not tree.find("textarea")
    assert tree.find("button", class_="~qt-hint")
    assert tree.find("button", class_="~qt-check-answer")
    assert ">0.50 points<" in html
    assert tree.data("saA") == {
        "quid": "2",
        "graders": [
            {"matcher": "case_insensitive", "response": "a", "score": 0.25, "feedback": "one"},
            {"matcher": "regex", "response": "/^a+$/i", "score": 1.0, "feedback": "all"},
        ],
        "hint": "two a's", "defaultFeedback": "nope", "weight": 0.5,
    }


def test_sa_textarea_without_hint() -> None:
    tree = Tree(render('<question quid="4" instanceid="saB"></question>'))
    (area,) = tree.find("textarea", class_="~qt-response")
    assert (area["rows"], area["cols"]) == ("4", "60")
    assert not tree.find("input", type="text")
    assert not tree.find("button", class_="~qt-hint")


# --- groups -------------------------------------------------------------------------


def test_group_renders_members_embedded() -> None:
    html = render('<question-group qgid="10" instanceid="grp"></question-group>')
    assert html.startswith('<div class="gcb-border-box"><div id="grp" class="qt-question-group" '
                           'data-qgid="10">')
    # the introduction is emitted as written: no tag expansion inside it
    assert "<em>Intro <gcb-code>x</gcb-code></em>" in html
    tree = Tree(html)
    assert tree.find("div", id="grp.0.2", class_="~qt-embedded")
    assert tree.find("div", id="grp.1.1", class_="~qt-embedded")
    assert tree.find("div", id="grp.0.2", class_="~qt-sa-question")
    assert tree.find("input", name="grp.1.1", id="grp.1.1.0")
    assert len(tree.find("button", class_="~qt-check-answer")) == 1
    assert html.count("gcb-border-box") == 1
    assert ">5 points<" in html and ">2 points<" in html and ">3 points<" in html
    assert html.index('id="grp.0.2"') < html.index('id="grp.1.1"')
    assert tree.data("grp") == {"qgid": "10", "items": {"grp.0.2": {"question": "2", "weight": 2.0},
                                                        "grp.1.1": {"question": "1", "weight": 3.0}}}
    assert "weight" not in tree.data("grp.1.1")
    assert "weight" not in tree.data("grp.0.2")


def test_group_with_a_deleted_member() -> None:
    html = render('<question-group qgid="11" instanceid="g2"></question-group>')
    assert "<li><span>[Question deleted]</span></li>" in html
    assert list(Tree(html).data("g2")["items"]) == ["g2.1.1"]


# --- errors -------------------------------------------------------------------------


@pytest.mark.parametrize("tag, text", [
    ('<question quid="404" instanceid="a"></question>', "[Question deleted]"),
    ('<question quid="abc" instanceid="a"></question>', "[Invalid question]"),
    ('<question instanceid="a"></question>', "[Invalid question]"),
    ('<question quid="5" instanceid="a"></question>', "[Unsupported question type]"),
    ('<question-group qgid="404" instanceid="a"></question-group>', "[Deleted question group]"),
    ('<question-group qgid="x1" instanceid="a"></question-group>', "[Invalid question]"),
])
def test_error_texts(tag: str, text: str) -> None:
    assert render(tag) == f"<span>{text}</span>"


def test_bad_weight_is_a_tag_error() -> None:
    out = render('<question quid="1" instanceid="w" weight="heavy"></question>')
    assert out.startswith('<span class="gcb-error-tag">Invalid HTML tag: invalid weight')


def test_attribute_values_are_escaped() -> None:
    html = render('<question quid="1" instanceid="x&quot;&gt;&lt;script&gt;y"></question>')
    assert "<script>y" not in html
    assert 'id="x&quot;&gt;&lt;script&gt;y"' in html
    assert Tree(html).data('x"><script>y')["quid"] == "1"


def test_data_with_script_end_stays_inside_its_script() -> None:
    QUESTIONS[7] = {**SA, "hint": "</script><script>alert(1)</script>", "defaultFeedback": "a & b"}
    try:
        html = render('<question quid="7" instanceid="h"></question>')
    finally:
        del QUESTIONS[7]
    assert "</script><script>alert" not in html
    data = Tree(html).data("h")
    assert data["hint"] == "</script><script>alert(1)</script>"
    assert data["defaultFeedback"] == "a & b"


@given(st.text())
def test_script_json_round_trips_and_never_breaks_out(value: str) -> None:
    encoded = Q.script_json({"v": value})
    assert not set(encoded) & set("<>&")
    assert json.loads(encoded) == {"v": value}


@pytest.mark.parametrize("weight, label", [
    (1, "1 point"), (0, "0 points"), (2, "2 points"), (1.0000001, "1 point"),
    (2.5, "2.50 points"), (0.333, "0.33 points"),
])
def test_points_label(weight: float, label: str) -> None:
    assert Q.points_label(weight) == label


# --- grading ------------------------------------------------------------------------


def test_grade_mc() -> None:
    assert Q.grade_mc(MC, [1]) == 1.0
    assert Q.grade_mc(MC, [0]) == 0.0
    assert Q.grade_mc(MC, [2]) == 0.5  # a score written as a string
    assert Q.grade_mc(MC, [1, 2]) == 1.0  # clamped
    assert Q.grade_mc(MC, [7, -1]) == 0.0  # indexes that are no choice
    assert Q.grade_mc(MULTI, [2]) == 0.0  # all or nothing
    assert Q.grade_mc(MULTI, [1]) == 1.0
    assert Q.grade_mc({"allOrNothingGrading": True, "choices": MC["choices"]}, [2]) == 0.0


def test_grade_mc_rounds_like_javascript() -> None:
    data = {"choices": [{"score": 0.125}, {"score": -0.5}]}
    assert Q.grade_mc(data, [0]) == 0.13  # Math.round(12.5) is 13; Python's round gives 0.12
    assert Q.grade_mc(data, [0, 1]) == 0.0


def test_grade_sa() -> None:
    assert Q.grade_sa(SA, "A") == 0.25
    assert Q.grade_sa(SA, "aAa") == 1.0
    assert Q.grade_sa(SA, "b") == 0.0
    assert Q.grade_sa(SA, " a") == 0.0  # no trimming, as in the client


@pytest.mark.parametrize("pattern, response, matches", [
    ("/jane austen (book|books) \\-price/i", "Jane Austen books -price", True),
    ("/jane austen (book|books) \\-price/i", "jane austen books price", False),
    ("/^abc$/", "ABC", False),
    ("/^abc$/i", "ABC", True),
    ("/^b$/m", "a\nb", True),
    ("colou?r", "the color", True),  # a bare pattern
    ("x/y/z", "y", True),  # the slashes may be anywhere, as the client reads them
    ("/(?<n>a)\\k<n>/", "aa", True),  # named groups in JavaScript syntax
    ("/[/", "[", False),  # not a valid pattern: no match
])
def test_regex_matcher(pattern: str, response: str, matches: bool) -> None:
    assert Q.sa_matches("regex", pattern, response) is matches


@pytest.mark.parametrize("expected, response, matches", [
    ("3", "3.0", True), ("3", " 3abc", True), ("0.5", ".5", True), ("1e3", "1000", True),
    ("3", "4", False), ("x", "x", False),  # NaN is equal to nothing
    ("-2", "-2.", True), ("Infinity", "+Infinity", True),
])
def test_numeric_matcher(expected: str, response: str, matches: bool) -> None:
    assert Q.sa_matches("numeric", expected, response) is matches


def test_grader_responses_stored_as_numbers() -> None:
    data = {"type": 1, "question": "n", "graders": [
        {"matcher": "numeric", "response": 7.9, "score": 1},
        {"matcher": "case_insensitive", "response": 3, "score": 0.5},
        {"matcher": "case_insensitive", "response": True, "score": 0.5}]}
    assert Q.grade_sa(data, "7.90") == 1.0
    assert Q.grade_sa(data, "3") == 0.5
    assert Q.grade_sa(data, "True") == 0.0
    QUESTIONS[8] = data
    try:
        html = render('<question quid="8" instanceid="num"></question>')
    finally:
        del QUESTIONS[8]
    assert [g["response"] for g in Tree(html).data("num")["graders"]] == ["7.9", "3", ""]


def test_unknown_matcher_never_matches() -> None:
    assert not Q.sa_matches("fuzzy", "a", "a")


def test_first_matching_grader_wins_and_scores_are_clamped() -> None:
    data = {"graders": [{"matcher": "case_insensitive", "response": "x", "score": 5},
                        {"matcher": "case_insensitive", "response": "x", "score": 0.1},
                        {"matcher": "numeric", "response": "1", "score": "-3"}]}
    assert Q.grade_sa(data, "X") == 1.0
    assert Q.grade_sa(data, "1") == 0.0


def test_grade_group() -> None:
    assert Q.grade_group([(2, 0.25), (3, 0.25)]) == pytest.approx(0.25)
    assert Q.grade_group([(2, 1.0), (3, 0.0)]) == pytest.approx(0.4)
    assert Q.grade_group([]) == 0.0
    assert Q.grade_group([(0, 1.0)]) == 0.0


def test_verdict() -> None:
    assert [Q.verdict(s) for s in (1, 0.995, 0.99, 0.5, 0.01, 0.005, 0)] == [
        "correct", "correct", "partially-correct", "partially-correct", "partially-correct",
        "incorrect", "incorrect"]


scores = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5),
                   st.text(max_size=6), st.none())


@given(st.lists(scores, max_size=6), st.lists(st.integers(-2, 8), max_size=8), st.booleans())
def test_mc_grade_is_a_two_decimal_fraction(choice_scores: list[Any], checked: list[int],
                                            all_or_nothing: bool) -> None:
    data = {"choices": [{"score": s} for s in choice_scores],
            "all_or_nothing_grading": all_or_nothing}
    score = Q.grade_mc(data, checked)
    assert 0.0 <= score <= 1.0
    assert round(score * 100) == pytest.approx(score * 100)
    if all_or_nothing:
        assert score in (0.0, 1.0)


@given(st.lists(st.tuples(st.sampled_from(["case_insensitive", "regex", "numeric", "other"]),
                          st.text(max_size=8), scores), max_size=4),
       st.text(max_size=12))
@settings(max_examples=200)
def test_sa_grade_is_a_fraction(graders: list[tuple[str, str, Any]], response: str) -> None:
    data = {"graders": [{"matcher": m, "response": r, "score": s} for m, r, s in graders]}
    assert 0.0 <= Q.grade_sa(data, response) <= 1.0


@given(st.lists(st.tuples(st.floats(0.01, 100), st.floats(0, 1)), min_size=1, max_size=6))
def test_group_score_is_between_its_members(members: list[tuple[float, float]]) -> None:
    score = Q.grade_group(members)
    member_scores = [s for _, s in members]
    assert min(member_scores) - 1e-9 <= score <= max(member_scores) + 1e-9


# --- against what Course Builder's client stored ---------------------------------------------


def _rows(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text())["rows"])


def _simple_questions() -> tuple[dict[int, Any], dict[int, Any], dict[str, tuple[str, dict[str, str]]]]:
    course = require_fixtures() / "simple_questions" / "course"
    questions = {r["key.id"]: json.loads(r["data"]) for r in _rows(course / "models/QuestionEntity.json")}
    groups = {r["key.id"]: json.loads(r["data"]) for r in _rows(course / "models/QuestionGroupEntity.json")}
    content = json.loads((course / "files/data/course.json").read_text())
    html = "".join(u.get("html_content") or "" for u in content["units"])
    html += "".join(lesson.get("objectives") or "" for lesson in content["lessons"])
    tags = {}
    for match in re.finditer(r'<(question(?:-group)?) ([^>]*)>', html):
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
        tags[attrs["instanceid"]] = (match.group(1), attrs)
    return questions, groups, tags


def _grade(data: dict[str, Any], answer: Any) -> float:
    return Q.grade_mc(data, answer) if data["type"] == 0 else Q.grade_sa(data, answer)


def _check_submission(answers: dict[str, Any], questions: dict[int, Any], groups: dict[int, Any],
                      tags: dict[str, tuple[str, dict[str, str]]]) -> int:
    checked = 0
    for iid, answer in answers["answers"].items():
        if iid == "version":
            continue
        kind, attrs = tags[iid]
        expected = answers["individualScores"][iid]
        if kind == "question":
            assert _grade(questions[int(attrs["quid"])], answer) == pytest.approx(expected)
        else:
            items = groups[int(attrs["qgid"])]["items"]
            got = [_grade(questions[item["question"]], a) for item, a in zip(items, answer)]
            assert got == pytest.approx(expected)
        checked += 1
    return checked


def test_grading_matches_course_builders_stored_scores() -> None:
    questions, groups, tags = _simple_questions()
    checked = 0
    for fixture in ("scoring", "multiple"):
        for row in _rows(FIXTURES / fixture / "datastore/models/StudentAnswersEntity.json"):
            for answers in json.loads(row["data"]).values():
                checked += _check_submission(answers, questions, groups, tags)
    assert checked >= 6


def test_grading_matches_course_builders_events() -> None:
    questions, groups, tags = _simple_questions()
    checked = 0
    for row in _rows(FIXTURES / "scoring/datastore/models/EventEntity.json"):
        data = json.loads(row["data"])
        if row["source"] == "attempt-lesson":
            checked += _check_submission(data, questions, groups, tags)
        elif row["source"] == "tag-assessment":
            kind, attrs = tags[data["instanceid"]]
            if kind == "question":
                score = _grade(questions[int(attrs["quid"])], data["answer"])
            else:
                items = groups[int(attrs["qgid"])]["items"]
                members = [(Q.number(item["weight"]), _grade(questions[item["question"]], a))
                           for item, a in zip(items, data["answer"])]
                assert [s for _, s in members] == pytest.approx(data["individualScores"])
                score = Q.js_round2(Q.grade_group(members))
            assert score == pytest.approx(data["score"])
            checked += 1
    assert checked >= 4


def test_fixture_questions_render() -> None:
    questions, groups, tags = _simple_questions()
    page_env = TagEnv(questions=questions.get, groups=groups.get, read_file=lambda p: None,
                      record_events=True)
    for kind, attrs in tags.values():
        id_attr = "quid" if kind == "question" else "qgid"
        html = expand(f'<{kind} {id_attr}="{attrs[id_attr]}" instanceid="{attrs["instanceid"]}">'
                      f"</{kind}>", page_env)
        assert "gcb-error-tag" not in html and "[" not in html.split("<script")[0]
        assert Tree(html).data(attrs["instanceid"])


def test_js_parse_float() -> None:
    assert Q.js_parse_float("  12.5px") == 12.5
    assert Q.js_parse_float("-.5e1x") == -5.0
    assert Q.js_parse_float("1e") == 1.0
    assert math.isnan(Q.js_parse_float("px"))
    assert Q.js_parse_float("-Infinity") == -math.inf
