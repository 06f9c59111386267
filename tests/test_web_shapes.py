"""Learners on courseport leave rows shaped as Course Builder's: registered,
lessons opened, questions answered, an assessment submitted and events sent
through the real server, then downloaded and compared kind by kind with the
live Course Builder archive (tests/shapes.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import cli_at
from shapes import archive_rows, assert_like_course_builder
from web import Learner, assessment_token, course_server, event_token, home_store

SLUG = "/cbsample"
KINDS = {"Student", "StudentAnswersEntity", "StudentPropertyEntity", "EventEntity", "Submission",
         "StudentEnrollmentEventEntity", "StudentPreferencesEntity"}


def test_server_rows_have_course_builders_shapes(tmp_path: Path) -> None:
    with course_server(tmp_path, live_sample=SLUG) as server:
        from courseport.courses.site import Site

        with home_store(server.home) as store:
            data = Site(store).course(SLUG).data()
        lessons = [l for l in data.lessons if l["unit_id"] == 2][:3]
        question_lesson = next(l for l in data.lessons if '<question ' in (l["objectives"] or ""))
        instance = re.search(r'<question [^>]*instanceid="([^"]+)"', question_lesson["objectives"]).group(1)
        for n in range(3):
            person = Learner(server.url, f"shape{n}@example.com", user_agent=f"Mozilla/5.0 (shape {n})")
            assert person.sign_up().status_code == 302
            assert person.register(SLUG, f"Shape {n}").status_code == 302
            person.get(f"{SLUG}/course")
            for lesson in lessons:
                page = person.get(f"{SLUG}/unit?unit=2&lesson={lesson['lesson_id']}")
                where = f"{server.url}{SLUG}/unit?unit=2&lesson={lesson['lesson_id']}"
                token = event_token(page.text)
                person.event(SLUG, "enter-page", {}, token=token, location=where)
                person.event(SLUG, "tag-youtube-milestone", {"video_id": "1ppwmxidyIE", "instance_id": 0,
                                                             "event_id": 0, "position": 31}, token=token, location=where)
                person.event(SLUG, "exit-page", {"duration": 5000 + n}, token=token, location=where)
            q_where = f"{server.url}{SLUG}/unit?unit={question_lesson['unit_id']}&lesson={question_lesson['lesson_id']}"
            token = event_token(person.get(q_where[len(server.url):]).text)
            person.event(SLUG, "tag-assessment", {"instanceid": instance, "quid": "1", "answer": [1], "score": 1,
                                                  "type": "McQuestion"}, token=token, location=q_where)
            page = person.get(f"{SLUG}/assessment?name=1")
            answers = {"version": "1.5", "answers": {"abcdefghijkl": [0]}, "individualScores": {"abcdefghijkl": 1},
                       "containedTypes": {"abcdefghijkl": "McQuestion"}, "quids": {"abcdefghijkl": "5"},
                       "rawScore": 1, "totalWeight": 1, "percentScore": 100, "abcdefghijkl": [True, False]}
            assert person.submit(SLUG, "1", f"{50 + n}.50", answers, token=assessment_token(page.text)).status_code == 200
        archive = tmp_path / "ours.zip"
        proc = server.cli("download", "datastore", SLUG, "localhost", "--port", str(server.port),
                          "--archive_path", str(archive))
        assert proc.returncode == 0, proc.stderr
    ours = archive_rows(archive)
    assert_like_course_builder(ours, kinds=KINDS)
    scores = sorted(json.loads(r["scores"])["1"] for r in ours["Student"])
    assert scores == [51, 52, 53]  # 50.50, 51.50, 52.50 rounded halves away from zero


def test_populated_learners_have_course_builders_shapes(tmp_path: Path) -> None:
    """``courseport populate`` writes through the server's builders: the same kinds and shapes."""
    home = tmp_path / "home"
    home.mkdir()
    for args in (("init",), ("populate", "/sample", "--students", "40")):
        assert cli_at(home, *args).returncode == 0
    archive = tmp_path / "populated.zip"
    proc = cli_at(home, "download", "datastore", "/sample", "local", "--archive_path", str(archive))
    assert proc.returncode == 0, proc.stderr
    assert_like_course_builder(archive_rows(archive), kinds=KINDS)
