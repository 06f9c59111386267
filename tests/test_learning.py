"""courses/learning: progress, scores, tokens and ids, as Course Builder 1.11 keeps them."""

from __future__ import annotations

import decimal
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courseport.courses.coursejson import load_course_json
from courseport.courses.learning import Outline, Progress, Xsrf, user_id_for_email
from courseport.courses.learning.records import merged_scores, py2_round


def outline(units: list[dict], lessons: list[dict], settings: dict | None = None) -> Outline:
    data = {"version": "1.3", "next_id": 100, "units": [], "lessons": []}
    for unit in units:
        data["units"].append({"unit_id": unit["id"], "type": unit.get("type", "U"), "title": f"u{unit['id']}",
                              "release_date": "", "href": None, "weight": unit.get("weight", 0),
                              "now_available": True, **unit.get("extra", {})})
    for lesson in lessons:
        data["lessons"].append({"lesson_id": lesson["id"], "unit_id": lesson["unit"], "title": f"l{lesson['id']}",
                                "objectives": lesson.get("objectives", ""), "video": "", "notes": "",
                                "duration": "", "has_activity": False, "activity_title": "", "now_available": True})
    return Outline(settings or {"course": {"title": "T"}}, load_course_json(json.dumps(data).encode()))


def test_two_question_free_lessons_complete_the_unit_and_course() -> None:
    """The click_link fixture's progress after viewing its two lessons."""
    course = outline([{"id": 1}], [{"id": 2, "unit": 1}, {"id": 3, "unit": 1}])
    progress = Progress(course)
    progress.html_viewed("1", "2")
    assert progress.values["u.1"] == 1 and progress.values["r.0"] == 1
    progress.html_viewed("1", "3")
    assert progress.values == {"u.1.l.2": 2, "u.1.l.3": 2, "u.1.l.3.h.0": 2, "r.0": 2, "u.1.l.2.h.0": 2, "u.1": 2}


def test_components_are_counted_and_complete_their_lesson() -> None:
    body = '<question quid="1" instanceid="aaa"></question><question-group qgid="2" instanceid="bbb"></question-group>'
    course = outline([{"id": 1}, {"id": 4, "type": "A"}], [{"id": 2, "unit": 1, "objectives": body}])
    progress = Progress(course)
    progress.html_viewed("1", "2")
    assert progress.values["u.1.l.2.h.0"] == 1
    progress.component_attempted("1", "2", "aaa")
    progress.component_attempted("1", "2", "aaa")
    assert progress.values["u.1.l.2.h.0.c.aaa"] == 2 and progress.values["u.1.l.2"] == 1
    progress.component_attempted("1", "2", "bbb")
    assert progress.values["u.1.l.2.h.0"] == 2 and progress.values["u.1"] == 2
    assert progress.values["r.0"] == 1  # the top-level assessment is not yet taken
    progress.assessment_submitted("4")
    progress.assessment_submitted("4")
    assert progress.values["s.4"] == 2 and progress.values["r.0"] == 2


def test_pre_and_post_assessments_count_under_their_unit() -> None:
    course = outline([{"id": 1, "extra": {"pre_assessment": 5}}, {"id": 5, "type": "A"}], [{"id": 2, "unit": 1}])
    progress = Progress(course)
    progress.html_viewed("1", "2")
    assert progress.values["u.1"] == 1
    progress.assessment_submitted("5")
    assert progress.values["u.1.s.5"] == 1 and progress.values["u.1"] == 2 and progress.values["r.0"] == 2


def test_a_completed_state_is_never_lowered() -> None:
    body = '<question quid="1" instanceid="q1"></question>'
    course = outline([{"id": 1}], [{"id": 2, "unit": 1, "objectives": body}])
    progress = Progress(course, {"u.1.l.2.h.0": 2, "u.1.l.2": 2, "u.1": 2, "r.0": 2})
    progress.html_viewed("1", "2")
    assert progress.values["u.1.l.2.h.0"] == 2 and progress.values["u.1"] == 2 and not progress.changed


@pytest.mark.parametrize("posted, kept", [("66.50", 67), ("66.49", 66), ("0.5", 1), ("100.00", 100),
                                          ("2.675", 3), ("1e2", 100), ("0", 0)])
def test_scores_round_halves_away_from_zero(posted: str, kept: int) -> None:
    assert py2_round(posted) == kept


@given(st.decimals(min_value=0, max_value=100, places=2))
def test_py2_round_of_two_decimal_percentages(value: decimal.Decimal) -> None:
    expected = int(value.quantize(decimal.Decimal(1), rounding=decimal.ROUND_HALF_UP))
    assert py2_round(f"{value:.2f}") == expected


@given(st.lists(st.integers(0, 100), min_size=1, max_size=10))
def test_only_a_higher_score_replaces_the_last(scores: list[int]) -> None:
    text = None
    for score in scores:
        text, best = merged_scores(text, "4", score)
    assert json.loads(text) == {"4": max(scores)}


def test_user_ids_are_course_builder_dev_servers() -> None:
    assert user_id_for_email("foo@bar.com") == "124317316405206137111"
    assert user_id_for_email("Test@Example.com ") == "185804764220139124118"


@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=20), st.text(max_size=20))
def test_tokens_are_bound_to_user_action_and_session(user: str, action: str, session: str) -> None:
    xsrf = Xsrf(b"k" * 32)
    token = xsrf.mint(user, action, session=session, now=1_000_000)
    assert re.fullmatch(r"1000000/[A-Za-z0-9_-]{22}==", token)
    assert xsrf.valid(token, user, action, session=session, now=1_000_100)
    assert not xsrf.valid(token, user + "x", action, session=session, now=1_000_100)
    assert not xsrf.valid(token, user, action + "x", session=session, now=1_000_100)
    assert not xsrf.valid(token, user, action, session=session + "x", now=1_000_100)
    assert not xsrf.valid(token, user, action, session=session, now=1_000_000 + 4 * 3600 + 1)
    assert not Xsrf(b"j" * 32).valid(token, user, action, session=session, now=1_000_100)


def test_availability_policies_show_elements_as_course_builder() -> None:
    from courseport.courses.learning import Viewer

    units = [{"id": 1, "extra": {"availability": "public"}}, {"id": 2}, {"id": 3, "extra": {"availability": "private"}}]
    required = outline(units, [], {"course": {"now_available": True, "browsable": False}})
    assert required.policy == "registration_required"
    anyone = Viewer()
    assert [required.display(required.unit(i), anyone) for i in (1, 2, 3)] == \
        [(True, True), (True, False), (False, False)]
    student = Viewer(enrolled=True)
    assert required.display(required.unit(2), student) == (True, True)
    private = outline(units, [], {"course": {"now_available": False}})
    assert not private.reachable(anyone) and private.reachable(Viewer(admin=True))
    listed = outline(units, [], {"course": {"now_available": True}, "reg_form": {"whitelist": "[a@x.com] @y.org"}})
    assert listed.reachable(Viewer(email="A@x.com")) and listed.reachable(Viewer(email="b@y.org"))
    assert not listed.reachable(Viewer(email="c@z.com")) and not listed.reachable(anyone)


def test_human_graded_comes_from_the_workflow_yaml() -> None:
    course = outline([{"id": 1, "type": "A", "extra": {"workflow_yaml": "{grader: human, matcher: peer}\n"}},
                      {"id": 2, "type": "A", "extra": {"workflow_yaml": "grader: auto\nmatcher: peer\n"}},
                      {"id": 3, "type": "A", "extra": {"workflow_yaml": "{grader: human"}}], [])
    assert [course.human_graded(i) for i in (1, "1", 2, 3, 99)] == [True, True, False, False, False]
