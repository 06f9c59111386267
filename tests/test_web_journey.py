"""A learner's journey in a real browser (Chromium, driven by Playwright), on
Course Builder's own sample course: sign up, register, watch a video past a
milestone (YouTube stubbed: there is no internet), answer a question, submit
an assessment, and find all of it in a ``download datastore``.

Set ``COURSEPORT_SCREENSHOTS=DIR`` to keep the lesson and result screenshots
(docs/img/ holds the ones the docs show).
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from browser import assert_no_errors, browser_context, screenshot, stub_youtube  # noqa: F401
from emulator import cloud_url, datastore_emulator, require_emulator  # noqa: F401
from servers import Server
from web import course_server, server_store

SLUG = "/cbsample"
EMAIL = "journey@example.com"


@pytest.fixture(params=["sqlite", "cloud"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """The server on the embedded store, and on Cloud Datastore (its emulator)."""
    if request.param == "sqlite":
        options: dict = {}
    else:
        require_emulator()
        host = request.getfixturevalue("datastore_emulator")
        options = {"datastore": cloud_url(), "env": {"DATASTORE_EMULATOR_HOST": host}}
    with course_server(tmp_path, live_sample=SLUG, **options) as running:
        yield running


def shots(tmp_path: Path) -> Path:
    return Path(os.environ.get("COURSEPORT_SCREENSHOTS") or tmp_path)


def course_data(server: Server) -> tuple[list[dict], list[dict], dict[int, dict]]:
    from courseport.courses.site import Site

    with server_store(server) as store:
        course = Site(store).course(SLUG)
        data = course.data()
        questions = {e.key.id: json.loads(e["data"]) for e in store.query("QuestionEntity", course.namespace)}
    return data.units, data.lessons, questions


def posted_events(page) -> list[dict]:  # type: ignore[no-untyped-def]
    return page.evaluate("window.__events || []")


def record_event_posts(context) -> list[dict]:  # type: ignore[no-untyped-def]
    """Every rest/events post the pages make, decoded."""
    seen: list[dict] = []

    def on_request(request) -> None:  # type: ignore[no-untyped-def]
        if request.url.endswith("/rest/events") and request.method == "POST":
            from urllib.parse import parse_qs

            body = parse_qs(request.post_data or "")
            if "request" in body:
                seen.append(json.loads(body["request"][0]))

    context.on("request", on_request)
    return seen


def test_learner_journey(server: Server, browser_context, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    context = browser_context
    stub_youtube(context)
    events = record_event_posts(context)
    page = context.new_page()
    base = server.url

    # 1. sign up and register
    page.goto(f"{base}{SLUG}/course")
    page.click("text=Login")
    page.click("text=Sign up")
    page.fill("#email", EMAIL)
    page.fill("#password", "a journey password")
    page.click("button[type=submit]")
    page.wait_for_url(f"**{SLUG}/course")
    page.click("#register-button")
    page.fill("#form01", "Jo Learner")
    page.click("#enroll-button")
    page.wait_for_url(re.compile(r".*/course#registration_confirmation$"))
    assert page.is_visible("#registration_confirmation")

    # 2. a lesson with a video: play past a 30 s milestone
    units, lessons, questions = course_data(server)
    video_lesson = next(l for l in lessons if "<gcb-youtube" in (l["objectives"] or ""))
    page.goto(f"{base}{SLUG}/unit?unit={video_lesson['unit_id']}&lesson={video_lesson['lesson_id']}")
    page.wait_for_function("window.__fakeYoutubePlayers && window.__fakeYoutubePlayers.length > 0")
    page.evaluate("window.__fakeYoutubePlayers[0].playVideo()")
    page.wait_for_function("window.__fakeYoutubePlayers[0].getCurrentTime() > 45")
    page.wait_for_timeout(1500)  # the tracker polls once a second
    screenshot(page, shots(tmp_path) / "lesson.png")
    assert any(e["source"] == "tag-youtube-milestone" for e in events), [e["source"] for e in events]

    # 3. an inline question: answer it and see its feedback
    question_lesson = next(
        l for l in lessons if not l.get("scored") and re.search(r'<question [^>]*quid="(\d+)"', l["objectives"] or "")
        and questions[int(re.search(r'<question [^>]*quid="(\d+)"', l["objectives"]).group(1))]["type"] == 0)
    quid = int(re.search(r'<question [^>]*quid="(\d+)"', question_lesson["objectives"]).group(1))
    iid = re.search(rf'<question [^>]*quid="{quid}"[^>]*instanceid="([^"]+)"|<question [^>]*instanceid="([^"]+)"[^>]*quid="{quid}"',
                    question_lesson["objectives"])
    instance = iid.group(1) or iid.group(2)
    page.goto(f"{base}{SLUG}/unit?unit={question_lesson['unit_id']}&lesson={question_lesson['lesson_id']}")
    choices = questions[quid]["choices"]
    best = max(range(len(choices)), key=lambda i: float(choices[i]["score"]))
    page.check(f'[id="{instance}.{best}"]')
    page.click(f'[id="{instance}"] .qt-check-answer')
    feedback = page.locator(f'[id="{instance}"] .qt-feedback')
    feedback.wait_for(state="visible")
    assert "correct" in feedback.inner_text().lower()

    # 4. the pre-course assessment: answer its multiple-choice questions well, submit, see the score
    assessment = next(u for u in units if u["type"] == "A" and "<question" in (u.get("html_content") or "")
                      and "human" not in (u.get("workflow_yaml") or ""))
    page.goto(f"{base}{SLUG}/assessment?name={assessment['unit_id']}")
    for found in re.finditer(r'<question [^>]*>', assessment["html_content"]):
        tag = found.group(0)
        q_id = int(re.search(r'quid="(\d+)"', tag).group(1))
        q_iid = re.search(r'instanceid="([^"]+)"', tag).group(1)
        q = questions[q_id]
        if q["type"] == 0:
            pick = max(range(len(q["choices"])), key=lambda i: float(q["choices"][i]["score"]))
            page.check(f'[id="{q_iid}.{pick}"]')
    picked = page.eval_on_selector_all(".qt-assessment input:checked", "els => els.map(e => e.id)")
    page.click(".qt-submit-answers")
    page.wait_for_url(f"**{SLUG}/answer")
    score_text = page.inner_text("#assessment-score")
    score = int(re.search(r"(\d+)%", score_text).group(1))
    assert 0 < score <= 100
    screenshot(page, shots(tmp_path) / "assessment-result.png")
    page.goto(f"{base}{SLUG}/assessment?name={assessment['unit_id']}")  # the last answers come back
    page.wait_for_function(f"document.querySelectorAll('.qt-assessment input:checked').length === {len(picked)}")
    assert page.eval_on_selector_all(".qt-assessment input:checked", "els => els.map(e => e.id)") == picked
    # the archive was made with --no_static_files: the sample's images are not in it
    context.errors[:] = [e for e in context.errors if not re.search(r"404 .*/assets/img/", e)]
    assert_no_errors(context)

    # 5. all of it in a download through the command line
    archive = tmp_path / "journey.zip"
    proc = server.cli("download", "datastore", SLUG, "localhost", "--port", str(server.port),
                      "--archive_path", str(archive))
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(archive) as zf:
        kinds = {n[len("models/"):-len(".json")]: json.loads(zf.read(n))["rows"]
                 for n in zf.namelist() if n.startswith("models/")}
    from courseport.courses.learning import user_id_for_email

    uid = user_id_for_email(EMAIL)
    sources = {r["source"] for r in kinds["EventEntity"] if r["user_id"] == uid}
    assert {"enter-page", "tag-youtube-milestone", "tag-assessment", "submit-assessment"} <= sources, sources
    student = next(r for r in kinds["Student"] if r["user_id"] == uid)
    assert json.loads(student["scores"]) == {str(assessment["unit_id"]): score}
    answers = json.loads(next(r for r in kinds["StudentAnswersEntity"] if r["key.name"] == uid)["data"])
    submitted = answers[str(assessment["unit_id"])]
    assert {"version", "answers", "individualScores", "containedTypes", "quids", "rawScore",
            "totalWeight", "percentScore"} <= set(submitted)
    progress = json.loads(next(r for r in kinds["StudentPropertyEntity"]
                               if r["key.name"] == f"{uid}-linear-course-completion")["value"])
    assert progress[f"s.{assessment['unit_id']}"] == 1
    assert progress[f"u.{question_lesson['unit_id']}.l.{question_lesson['lesson_id']}.h.0.c.{instance}"] == 1
    assert progress[f"u.{video_lesson['unit_id']}.l.{video_lesson['lesson_id']}"] == 2
