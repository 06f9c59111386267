"""Course Builder's own sample course, uploaded and made public, renders whole:
every unit, lesson and assessment page answers 200 with every custom tag
expanded and no error span, every question renders with its own data, and
the course's files are served from the course."""

from __future__ import annotations

import html
import json
import re
from typing import Iterator

import pytest

from pathlib import Path

from servers import Server
from web import Learner, course_server, home_store

SLUG = "/cbsample"
CUSTOM_TAG = re.compile(r"<(gcb-[a-z0-9-]+|question|question-group)[\s>/]", re.IGNORECASE)
SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL | re.IGNORECASE)
QT_DATA = re.compile(r'<script type="application/json" class="qt-data" data-for="([^"]+)">(.*?)</script>', re.DOTALL)


def add_files(home: Path) -> None:
    from courseport.courses.site import Site

    with home_store(home) as store:
        fs = Site(store).course(SLUG).fs
        fs.put("/assets/css/extra.css", b"body { color: #123; }")
        fs.put("/assets/js/activity-1.js", b"var activity = [];")
        fs.put("/assets/img/draft.png", b"\x89PNG draft", is_draft=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with course_server(tmp_path_factory.mktemp("crawl"), live_sample=SLUG, availability="public",
                       prepare=add_files) as running:
        yield running


def course_data(server: Server) -> tuple[dict, dict[int, dict], dict[int, dict]]:
    from courseport.courses.site import Site

    with home_store(server.home) as store:
        course = Site(store).course(SLUG)
        data = course.data()
        questions = {e.key.id: json.loads(e["data"]) for e in store.query("QuestionEntity", course.namespace)}
        groups = {e.key.id: json.loads(e["data"]) for e in store.query("QuestionGroupEntity", course.namespace)}
    return {"units": data.units, "lessons": data.lessons}, questions, groups


def pages_of(data: dict) -> list[str]:
    urls = ["course"]
    for unit in data["units"]:
        if unit["type"] == "U":
            urls.append(f"unit?unit={unit['unit_id']}")
            urls += [f"unit?unit={unit['unit_id']}&lesson={lesson['lesson_id']}"
                     for lesson in data["lessons"] if lesson["unit_id"] == unit["unit_id"]]
        elif unit["type"] == "A":
            urls.append(f"assessment?name={unit['unit_id']}")
    return urls


def check_page(text: str, where: str) -> None:
    assert "gcb-error-tag" not in text, where
    outside_scripts = SCRIPT.sub("", text)
    left = CUSTOM_TAG.findall(outside_scripts)
    assert not left, f"{where}: custom tags left unexpanded: {left[:5]}"


def test_every_page_of_the_sample_renders_with_tags_expanded(server: Server) -> None:
    data, questions, groups = course_data(server)
    visitor = Learner(server.url, "crawler@example.com")
    seen_questions: dict[str, dict] = {}
    urls = pages_of(data)
    assert len(urls) > 60  # 10 units, 55 lessons
    for url in urls:
        answer = visitor.get(f"{SLUG}/{url}")
        assert answer.status_code == 200, (url, answer.status_code, answer.headers.get("location"))
        check_page(answer.text, url)
        for iid, text in QT_DATA.findall(answer.text):
            seen_questions[html.unescape(iid)] = json.loads(text)
    quids_in_course = set()
    for lesson in data["lessons"]:
        quids_in_course |= {int(q) for q in re.findall(r'<question [^>]*quid="(\d+)"', lesson["objectives"] or "")}
    for unit in data["units"]:
        quids_in_course |= {int(q) for q in re.findall(r'<question [^>]*quid="(\d+)"', unit.get("html_content") or "")}
    rendered = {int(d["quid"]) for d in seen_questions.values() if isinstance(d, dict) and "quid" in d}
    assert quids_in_course <= rendered, quids_in_course - rendered
    assert any("items" in d or any(isinstance(v, dict) and "question" in v for v in d.values())
               for d in seen_questions.values()), "no question group rendered"
    for d in seen_questions.values():
        if "quid" not in d:
            continue
        entity = questions[int(d["quid"])]
        if entity["type"] == 0:
            assert [c["score"] for c in d["choices"]] == [c["score"] for c in entity["choices"]]
        else:
            assert [(g["matcher"], g["response"], g["score"]) for g in d["graders"]] == \
                [(g["matcher"], str(g["response"]), g["score"]) for g in entity["graders"]]
    assert groups, "the sample has question groups"


def test_scoring_in_python_matches_each_question(server: Server) -> None:
    """The grading the page runs (mirrored in Python) gives full marks for each
    question's best answer, as its QuestionEntity scores it."""
    from courseport.server.web.questions import grade_mc, grade_sa

    _, questions, _ = course_data(server)
    for quid, q in questions.items():
        if q["type"] == 0:
            best = max(range(len(q["choices"])), key=lambda i: float(q["choices"][i]["score"]))
            picks = [i for i, c in enumerate(q["choices"]) if float(c["score"]) > 0] if q.get("multiple_selections") \
                else [best]
            expected = min(1.0, round(sum(float(q["choices"][i]["score"]) for i in picks), 2))
            if q.get("all_or_nothing_grading"):
                expected = 1.0 if expected > 0.99 else 0.0
            assert grade_mc(q, picks) == pytest.approx(expected), quid
        else:
            numeric = [g for g in q["graders"] if g["matcher"] == "numeric"]
            for grader in numeric:
                assert grade_sa(q, str(grader["response"])) == pytest.approx(
                    min(1.0, max(0.0, float(grader["score"])))), quid
            plain = [g for g in q["graders"] if g["matcher"] == "case_insensitive"]
            for grader in plain:
                assert grade_sa(q, grader["response"].upper()) == pytest.approx(
                    min(1.0, max(0.0, float(grader["score"])))), quid


def test_course_files_are_served_from_the_course(server: Server) -> None:
    visitor = Learner(server.url, "files@example.com")
    css = visitor.get(f"{SLUG}/assets/css/extra.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.text == "body { color: #123; }"
    assert visitor.get(f"{SLUG}/assets/js/activity-1.js").text == "var activity = [];"
    assert visitor.get(f"{SLUG}/assets/img/draft.png").status_code == 403
    assert visitor.get(f"{SLUG}/assets/img/none.png").status_code == 404
    assert visitor.get(f"{SLUG}/assets/../course.yaml").status_code == 404


def test_public_course_has_no_registration(server: Server) -> None:
    visitor = Learner(server.url, "public@example.com")
    home = visitor.get(f"{SLUG}/course")
    assert home.status_code == 200 and 'id="register-button"' not in home.text
    assert visitor.sign_up().status_code == 302
    answer = visitor.get(f"{SLUG}/register")
    assert answer.status_code == 302 and answer.headers["location"].endswith("/course#registration_closed")
