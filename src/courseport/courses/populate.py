"""Synthetic learners: what a real cohort leaves behind, in Course Builder's shapes.

``populate(course, students=N, seed=S)`` writes N enrolled students with
their Student, StudentAnswersEntity (for each HTML assessment), a
StudentPropertyEntity of progress, and about ten EventEntity rows each
(spec §3.3–§3.6, §5). The same seed gives the same data, byte for byte:
times come from the seed, not the clock.
"""

from __future__ import annotations

import collections
import datetime as _dt
import json
import os
import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .._json import dumps
from .._workers import can_fork, worker_pool
from ..datastore import Entity, Key, Text
from ..errors import UserError
from .site import Course

FIRST_NAMES = (
    "Ada", "Amara", "Aiko", "Bruno", "Chen", "Dara", "Elif", "Farah", "Goran", "Hana",
    "Ines", "Jamal", "Kofi", "Lena", "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa",
    "Sven", "Tariq", "Uma", "Vera", "Wei", "Ximena", "Yusuf", "Zoe", "Émile", "Søren",
)
LAST_NAMES = (
    "Abebe", "Becker", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Haddad",
    "Ivanova", "Jensen", "Kim", "López", "Mensah", "Nakamura", "Okafor", "Petrov",
    "Quispe", "Rossi", "Santos", "Tanaka", "Usman", "Varga", "Wójcik", "Yilmaz", "Zhang",
)
PLACES = (
    ("US", "ca", "mountain view", 37.386, -122.084, "en-US,en;q=0.8", "en_US"),
    ("GB", "eng", "london", 51.507, -0.128, "en-GB,en;q=0.9", "en_US"),
    ("IN", "ka", "bangalore", 12.972, 77.594, "en-IN,en;q=0.8,hi;q=0.6", "en_US"),
    ("BR", "sp", "sao paulo", -23.551, -46.633, "pt-BR,pt;q=0.9,en;q=0.5", "pt_BR"),
    ("DE", "be", "berlin", 52.520, 13.405, "de-DE,de;q=0.9,en;q=0.6", "de_DE"),
    ("NG", "la", "lagos", 6.524, 3.379, "en-NG,en;q=0.8", "en_US"),
    ("JP", "13", "tokyo", 35.690, 139.692, "ja-JP,ja;q=0.9,en;q=0.4", "ja_JP"),
    ("MX", "cmx", "mexico city", 19.433, -99.133, "es-MX,es;q=0.9,en;q=0.5", "es_MX"),
)
USER_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0",
)
LINKS = (
    "https://example.com/privacy-reading-list",
    "https://example.com/gdpr-summary",
    "https://example.com/k-anonymity-paper",
    "https://example.com/course-forum",
)
COHORT_START = _dt.datetime(2026, 9, 1, 8, 0, 0)
BATCH = 20_000  # rows a transaction: fewer commits, fewer WAL copies of hot pages
CHUNK = 500  # learners per worker job

_QUESTION_TAG = re.compile(r'<question\s+quid="(\d+)"\s+instanceid="([^"]+)"')
_USER_ID_SPAN = 10**20
_USER_ID_STEP = 61_803_398_874_989_484_821  # odd and not a multiple of 5: a bijection mod 10**20


class PopulateError(UserError, ValueError):
    """A course that cannot be populated as asked."""


@dataclass
class Question:
    instance_id: str
    quid: int
    kind: int  # 0 multiple choice, 1 short answer
    choices: int = 0
    correct: int = 0
    answer: str = ""


@dataclass
class Assessment:
    unit_id: int
    questions: list[Question]


@dataclass
class Structure:
    """What of the course a learner walks through."""

    slug: str
    lessons: list[tuple[int, int, str]]  # (unit_id, lesson_id, video id)
    assessments: list[Assessment]
    units: list[int] = field(default_factory=list)


def course_structure(course: Course) -> Structure:
    data = course.data()
    lessons = [
        (int(unit["unit_id"]), int(lesson["lesson_id"]), lesson.get("video") or "")
        for unit in data.units
        if unit["type"] == "U"
        for lesson in data.lessons_of(unit["unit_id"])
    ]
    assessments = []
    for unit in data.units:
        if unit["type"] == "A" and unit.get("html_content"):
            questions = [
                _question(course, int(quid), instance)
                for quid, instance in _QUESTION_TAG.findall(unit["html_content"])
            ]
            assessments.append(Assessment(int(unit["unit_id"]), [q for q in questions if q]))
    units = [int(u["unit_id"]) for u in data.units if u["type"] == "U"]
    return Structure(course.slug, lessons, assessments, units)


def _question(course: Course, quid: int, instance_id: str) -> Question | None:
    entity = course.store.get(Key("QuestionEntity", quid, namespace=course.namespace))
    if entity is None:
        return None
    spec = json.loads(entity.get("data") or "{}")
    if spec.get("type") == 0:
        choices = spec.get("choices") or []
        correct = max(range(len(choices)), key=lambda i: choices[i].get("score", 0), default=0)
        return Question(instance_id, quid, 0, choices=len(choices), correct=correct)
    graders = spec.get("graders") or [{}]
    return Question(instance_id, quid, 1, answer=graders[0].get("response", "answer"))


def user_id_for(seed: int, index: int) -> str:
    """A unique 21-digit user id for learner ``index`` of cohort ``seed``."""
    offset = random.Random(f"cohort-{seed}").randrange(_USER_ID_SPAN)
    return str(_USER_ID_SPAN + (index * _USER_ID_STEP + offset) % _USER_ID_SPAN)


class _Learner:
    """Generates one learner's entities from a private random stream."""

    def __init__(self, structure: Structure, seed: int, index: int, namespace: str) -> None:
        self.s = structure
        self.rng = random.Random(seed * 1_000_003 + index)
        self.index = index
        self.ns = namespace
        self.user_id = user_id_for(seed, index)
        self.place = self.rng.choice(PLACES)
        self.agent = self.rng.choice(USER_AGENTS)
        self.clock = COHORT_START + _dt.timedelta(seconds=self.rng.randrange(60 * 86400))
        self.progress: dict[str, int] = {}

    def tick(self, low: int, high: int) -> _dt.datetime:
        self.clock += _dt.timedelta(seconds=self.rng.randrange(low, high), microseconds=self.rng.randrange(10**6))
        return self.clock

    def entities(self) -> list[Entity]:
        rng = self.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        name = f"{first} {last}"
        email = f"{_ascii(first)}.{_ascii(last)}{self.index}@example.com".lower()
        enrolled_on = self.tick(0, 60)
        events = self.events()
        answers, scores = self.answers()
        out = [
            Entity(
                Key("Student", self.user_id, namespace=self.ns),
                {
                    "enrolled_on": enrolled_on,
                    "user_id": self.user_id,
                    "email": email,
                    "name": name,
                    "additional_fields": Text(dumps([["form01", name], ["xsrf_token", self.token(enrolled_on)]])),
                    "is_enrolled": True,
                    "last_seen_on": self.clock,
                    "scores": Text(dumps(scores)) if scores else None,
                    "labels": "",
                    "group_id": None,
                },
            ),
            Entity(
                Key("StudentPropertyEntity", f"{self.user_id}-linear-course-completion", namespace=self.ns),
                {"updated_on": self.clock, "name": "linear-course-completion", "value": Text(dumps(self.progress))},
            ),
        ]
        if answers:
            out.append(
                Entity(
                    Key("StudentAnswersEntity", self.user_id, namespace=self.ns),
                    {"updated_on": self.clock, "data": Text(dumps(answers))},
                )
            )
        return out + events

    def token(self, when: _dt.datetime) -> str:
        stamp = int((when - _dt.datetime(1970, 1, 1)).total_seconds())
        return f"{stamp}/{self.rng.getrandbits(96):024x}"

    def _loc(self) -> dict:
        country, region, city, lat, lon, language, locale = self.place
        return {"country": country.upper(), "region": region, "city": city, "lat": lat, "long": lon,
                "language": language, "locale": locale, "page_locale": locale}

    def _event(self, source: str, data: dict, page: str | None = None) -> Entity:
        if page is None:
            text = dumps(data)
        else:
            # a learner's location and user agent are the same in every page
            # event: encoded once, spliced in (what dumps would give)
            if self._page_tail is None:
                self._page_tail = dumps({"loc": self._loc(), "user_agent": self.agent})[1:]
            data["location"] = f"http://localhost:8081{self.s.slug}/{page}"
            text = dumps(data)[:-1] + ", " + self._page_tail
        return Entity(
            Key._make((("EventEntity", None),), self.ns),
            {"recorded_on": self.tick(5, 900), "source": source, "user_id": self.user_id, "data": Text(text)},
        )

    _page_tail: str | None = None

    def events(self) -> list[Entity]:
        rng = self.rng
        out: list[Entity] = []
        visits = self.s.lessons[: rng.randint(1, max(1, len(self.s.lessons)))] if self.s.lessons else []
        for unit_id, lesson_id, video in visits[: rng.randint(2, 3)]:
            page = f"unit?unit={unit_id}&lesson={lesson_id}"
            out.append(self._event("enter-page", {}, page))
            if video:
                out.append(self._event("tag-youtube-milestone", {
                    "video_id": video, "instance_id": f"yt{lesson_id}", "event_id": 0,
                    "position": rng.choice((30, 60, 90, 120)),
                }, page))
            if rng.random() < 0.4:
                out.append(self._event("click-link", {"href": rng.choice(LINKS)}, page))
            out.append(self._event("exit-page", {"duration": rng.randrange(20_000, 900_000)}, page))
            self.progress[f"u.{unit_id}.l.{lesson_id}"] = 2
            self.progress[f"u.{unit_id}"] = 1
        self.progress["r.0"] = 1
        return out

    def answers(self) -> tuple[dict, dict]:
        answers: dict = {}
        scores: dict = {}
        for assessment in self.s.assessments:
            if self.rng.random() < 0.25 or not assessment.questions:
                continue
            payload = self.submission(assessment)
            answers[str(assessment.unit_id)] = payload
            total = len(assessment.questions)
            right = sum(payload["individualScores"].values())
            scores[str(assessment.unit_id)] = round(100.0 * right / total, 2) if total else 0
            page = f"assessment?name={assessment.unit_id}"
            self._pending.append(self._event("enter-page", {}, page))
            self._pending.append(self._event(
                "submit-assessment",
                {"type": f"assessment-{assessment.unit_id}", "values": payload, "location": "AnswerHandler"},
            ))
            self.progress[f"s.{assessment.unit_id}"] = 2
        return answers, scores

    _pending: list[Entity]

    def submission(self, assessment: Assessment) -> dict:
        """An HTML (1.5) assessment submission, as Course Builder stores it."""
        payload: dict = {"version": "1.5", "answers": {}, "individualScores": {}, "containedTypes": {}}
        for q in assessment.questions:
            good = self.rng.random() < 0.7
            if q.kind == 0:
                pick = q.correct if good else self.rng.randrange(max(1, q.choices))
                payload["answers"][q.instance_id] = [pick]
                payload[q.instance_id] = [i == pick for i in range(q.choices)]
                payload["individualScores"][q.instance_id] = 1 if pick == q.correct else 0
                payload["containedTypes"][q.instance_id] = "McQuestion"
            else:
                response = q.answer.strip("/^$i") if good else self.rng.choice(("not sure", "hashing", "encryption"))
                payload["answers"][q.instance_id] = response
                payload[q.instance_id] = {"response": response}
                payload["individualScores"][q.instance_id] = 1 if good else 0
                payload["containedTypes"][q.instance_id] = "SaQuestion"
        return payload

    def all_entities(self) -> list[Entity]:
        self._pending = []
        entities = self.entities()
        return entities + self._pending


def _ascii(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def learner_entities(structure: Structure, seed: int, start: int, count: int, namespace: str) -> Iterator[Entity]:
    for index in range(start, start + count):
        yield from _Learner(structure, seed, index, namespace).all_entities()


def _prepared_chunk(job: tuple[Callable, Structure, int, int, int, str]) -> tuple[Any, dict[str, int]]:
    """Worker: one chunk of learners, encoded for the store (runs in a child process)."""
    prepare, structure, seed, start, count, namespace = job
    entities = list(learner_entities(structure, seed, start, count, namespace))
    counts: dict[str, int] = {}
    for entity in entities:
        counts[entity.kind] = counts.get(entity.kind, 0) + 1
    return prepare(entities), counts


def _chunks(students: int) -> list[tuple[int, int]]:
    return [(start, min(CHUNK, students - start)) for start in range(0, students, CHUNK)]


def _run_chunks(jobs: list[tuple], workers: int) -> Iterator[tuple[Any, dict[str, int]]]:
    """Results in job order; at most a few chunks in flight, so memory stays flat."""
    if workers <= 1 or len(jobs) == 1:
        for job in jobs:
            yield _prepared_chunk(job)
        return
    if not can_fork():
        for job in jobs:
            yield _prepared_chunk(job)
        return
    with worker_pool(workers) as pool:
        pending: collections.deque = collections.deque()
        for job in jobs:
            pending.append(pool.submit(_prepared_chunk, job))
            if len(pending) >= workers * 2:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def populate(
    course: Course,
    students: int,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> dict[str, int]:
    """Write ``students`` learners into ``course``; returns rows per kind.

    Learners are generated and encoded in worker processes (one per core)
    while this process writes; ids are allocated here, in chunk order, so
    the result does not depend on the number of workers.
    """
    if students < 1:
        raise PopulateError("--students must be at least 1")
    if not course.fs.editable:
        raise PopulateError(f"course {course.slug} is a read-only folder course; populate a datastore course")
    existing = course.store.count("Student", course.namespace)
    if existing:
        raise PopulateError(
            f"course {course.slug} already has {existing:,} students; populate an empty course "
            f"(e.g. 'courseport courses add /cohort2') or delete its data first"
        )
    structure = course_structure(course)
    store = course.store
    jobs = [(store.prepare, structure, seed, start, count, course.namespace) for start, count in _chunks(students)]
    if workers is None:
        workers = min(os.cpu_count() or 1, 4) if students >= 2 * CHUNK else 1
    counts: dict[str, int] = {}
    done = 0
    pending: list = []
    for prepared, chunk_counts in _run_chunks(jobs, workers):
        pending.extend(prepared)
        if len(pending) >= BATCH:
            store.write_prepared(pending)
            pending = []
        for kind, n in chunk_counts.items():
            counts[kind] = counts.get(kind, 0) + n
        done = counts.get("Student", 0)
        if progress:
            progress(done, students)
    if pending:
        store.write_prepared(pending)
    return counts
