"""Synthetic learners: what a real cohort leaves behind, in Course Builder's shapes.

``populate(course, students=N, seed=S)`` simulates N learners going through
the course server: each registers, sees the course page, reads a few lessons
(watching videos, following links) and takes the HTML assessments, sometimes
twice. Their rows are made by the server's own builders
(:mod:`courseport.courses.learning.records`) and progress by the server's
tracker (:class:`~courseport.courses.learning.progress.Progress` over the
course's :class:`~courseport.courses.learning.outline.Outline`), so a
synthetic learner leaves exactly the kinds, properties and value shapes a
real one does (spec §1.8, §3.2–§3.4, §5.8, §6.3, §6.5, §7.3): Student,
StudentEnrollmentEventEntity, StudentPreferencesEntity, the progress
StudentPropertyEntity, StudentAnswersEntity and a Submission per assessment
taken, and about ten EventEntity rows. (The default-namespace
PersonalProfile is not written: it is not part of the course.)

Every builder is a pure function of its inputs, so learners who do the same
thing (enter the same page from the same place, post the same answers, make
the same progress) get the data text the builders made for the first of them
(see ``_Memo``): that keeps populate fast without a second copy of any shape.

The same seed gives the same data, byte for byte: times come from the seed,
not the clock.
"""

from __future__ import annotations

import base64
import collections
import datetime as _dt
import functools
import json
import math
import os
import random
import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .._workers import can_fork, worker_pool
from ..datastore import Entity, Key, Text
from ..errors import UserError
from .learning.outline import Outline
from .learning.progress import Progress
from .learning.records import (
    LAST_SEEN_EVERY,
    User,
    enrich,
    enrollment_event_row,
    event_row,
    merged_answers,
    merged_scores,
    preferences_row,
    progress_row,
    py2_round,
    student_row,
    submission_row,
    unix_seconds,
)
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
# (X-AppEngine-Country, -Region, -City, lat, long, Accept-Language): what the server sees of a learner
PLACES = (
    ("US", "ca", "mountain view", 37.386, -122.084, "en-US,en;q=0.8"),
    ("GB", "eng", "london", 51.507, -0.128, "en-GB,en;q=0.9"),
    ("IN", "ka", "bangalore", 12.972, 77.594, "en-IN,en;q=0.8,hi;q=0.6"),
    ("BR", "sp", "sao paulo", -23.551, -46.633, "pt-BR,pt;q=0.9,en;q=0.5"),
    ("DE", "be", "berlin", 52.520, 13.405, "de-DE,de;q=0.9,en;q=0.6"),
    ("NG", "la", "lagos", 6.524, 3.379, "en-NG,en;q=0.8"),
    ("JP", "13", "tokyo", 35.690, 139.692, "ja-JP,ja;q=0.9,en;q=0.4"),
    ("MX", "cmx", "mexico city", 19.433, -99.133, "es-MX,es;q=0.9,en;q=0.5"),
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
HOST = "http://localhost:8081"  # where the simulated pages were served
COHORT_START = _dt.datetime(2026, 9, 1, 8, 0, 0)
BATCH = 20_000  # rows a transaction: fewer commits, fewer WAL copies of hot pages
CHUNK = 500  # learners per worker job
SKIP_ASSESSMENT = 0.25  # chance a learner never takes an assessment
RETAKE = 0.2  # chance a learner who took an auto-graded assessment takes it again

_QUESTION_TAG = re.compile(r"<question\b([^>]*)>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"""([A-Za-z_-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_USER_ID_SPAN = 10**20
_USER_ID_GAP = 10**11  # ids of consecutive learners are less than two gaps apart
_MASK64 = (1 << 64) - 1
_MS = _dt.timedelta(milliseconds=1)


class PopulateError(UserError, ValueError):
    """A course that cannot be populated as asked."""


@dataclass
class Question:
    instance_id: str
    quid: int
    kind: int  # 0 multiple choice, 1 short answer
    weight: float = 1.0
    choice_scores: list[float] = field(default_factory=list)  # multiple choice
    correct: int = 0  # multiple choice: the best choice
    graders: list[tuple[str, str, float]] = field(default_factory=list)  # short answer: (matcher, response, score)
    answer: str = ""  # short answer: a response the first grader accepts


@dataclass
class Assessment:
    unit_id: int
    questions: list[Question]
    human_graded: bool = False
    parent: str | None = None  # the unit whose pre/post assessment this is


@dataclass
class Structure:
    """What of the course a learner walks through (picklable: it goes to the workers)."""

    slug: str
    lessons: list[tuple[int, int, str]]  # (unit_id, lesson_id, video id)
    assessments: list[Assessment]
    outline: Outline
    locale: str = "en_US"
    units: list[int] = field(default_factory=list)
    #: names this structure in a process's memos (each job a worker runs brings its own copy)
    memo_token: str = field(default_factory=lambda: uuid.uuid4().hex, repr=False, compare=False)


@dataclass
class _Post:
    """An assessment POST as the client makes it from a set of responses, and what
    the server makes of it that does not depend on the learner."""

    score_text: str
    answers: dict
    score: int  # as POST /answer rounds it
    answers_text: str  # StudentAnswersEntity data when this is the learner's first submission
    event: Entity | None = None  # the submit-assessment row of the first learner who posted it
    submission: Entity | None = None  # and their Submission


class _Memo:
    """What this process has computed for one structure, reused by learners who do the
    same thing: every builder involved is a pure function of its inputs, so a learner
    gets exactly the rows (data text included) that building them afresh would give."""

    # entries kept in each table: a few MB at most
    PROGRESS, EVENTS, POSTS = 4096, 8192, 2048

    def __init__(self, token: str) -> None:
        self.token = token
        self.progress: dict[tuple, tuple[Text | None, int | None]] = {}  # value and last change, by updates
        self.events: dict[tuple, Entity] = {}  # page event rows by what their data is made of
        self.posts: dict[tuple, _Post] = {}  # by assessment and responses


_memo: _Memo | None = None


def _memo_of(structure: Structure) -> _Memo:
    global _memo
    if _memo is None or _memo.token != structure.memo_token:
        _memo = _Memo(structure.memo_token)
    return _memo


def _forget_memo() -> None:
    global _memo
    _memo = None


def course_structure(course: Course) -> Structure:
    """The course as the server sees it: one :class:`Outline` (settings and units), built once."""
    data = course.data()
    outline = Outline(course.settings(), data)
    lessons = [
        (int(unit["unit_id"]), int(lesson["lesson_id"]), lesson.get("video") or "")
        for unit in data.units
        if unit["type"] == "U"
        for lesson in data.lessons_of(unit["unit_id"])
    ]
    assessments = []
    for unit in data.units:
        if unit["type"] == "A" and unit.get("html_content"):
            questions = []
            for attributes in _QUESTION_TAG.findall(unit["html_content"]):
                found = {name.lower(): a if a else b for name, a, b in _ATTRIBUTE.findall(attributes)}
                quid, instance_id = found.get("quid", ""), found.get("instanceid", "")
                if quid.isdigit() and instance_id:
                    question = _question(course, int(quid), instance_id, found.get("weight"))
                    if question is not None:
                        questions.append(question)
            unit_id = int(unit["unit_id"])
            human = outline.human_graded(unit_id)  # as POST /answer decides
            assessments.append(Assessment(unit_id, questions, human, outline.parent_of(unit_id)))
    units = [int(u["unit_id"]) for u in data.units if u["type"] == "U"]
    return Structure(course.slug, lessons, assessments, outline, outline.locale, units)


def _number(value: Any, default: float = 0.0) -> float:
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        return default
    return parsed if math.isfinite(parsed) else default


def _question(course: Course, quid: int, instance_id: str, weight: str | None) -> Question | None:
    entity = course.store.get(Key("QuestionEntity", quid, namespace=course.namespace))
    if entity is None:
        return None
    spec = json.loads(entity.get("data") or "{}")
    question_weight = _number(weight, 1.0) if weight is not None else 1.0
    if spec.get("type") == 0:
        scores = [_number(c.get("score")) for c in spec.get("choices") or [] if isinstance(c, dict)]
        correct = max(range(len(scores)), key=lambda i: scores[i], default=0)
        return Question(instance_id, quid, 0, question_weight, choice_scores=scores, correct=correct)
    graders = [
        (str(g.get("matcher") or ""), str(g.get("response") or ""), _number(g.get("score")))
        for g in spec.get("graders") or [] if isinstance(g, dict)
    ]
    answer = graders[0][1] if graders else "answer"
    if graders and graders[0][0] == "regex":
        answer = answer.strip("/^$gim")
    return Question(instance_id, quid, 1, question_weight, graders=graders, answer=answer)


def _js_round2(value: float) -> float:
    """The client's ``roundToTwoDecimalPlaces``: ``Math.round(value * 100) / 100``."""
    return math.floor(value * 100 + 0.5) / 100


def _js_number(value: float) -> int | float:
    """A number as ``JSON.stringify`` writes it: whole numbers without a decimal point."""
    return int(value) if value.is_integer() else value


def _sa_score(graders: list[tuple[str, str, float]], response: str) -> float:
    """The client's short-answer grade: the first accepting grader's score, in [0, 1]."""
    for matcher, expected, score in graders:
        if matcher == "case_insensitive":
            accepted = expected.lower() == response.lower()
        elif matcher == "numeric":
            accepted = _number(expected, math.nan) == _number(response, math.inf)
        elif matcher == "regex":
            slashed = re.search(r"/(.*)/([gim]*)", expected)
            pattern, flags = (slashed.group(1), re.I if "i" in slashed.group(2) else 0) if slashed else (expected, 0)
            try:
                accepted = re.search(pattern, response, flags) is not None
            except re.error:
                accepted = False
        else:
            accepted = False
        if accepted:
            return min(max(score, 0.0), 1.0)
    return 0.0


@functools.lru_cache(maxsize=16)
def _cohort_offset(seed: int) -> int:
    return random.Random(f"cohort-{seed}").randrange(_USER_ID_SPAN)


def user_id_for(seed: int, index: int) -> str:
    """A unique 21-digit user id for learner ``index`` of cohort ``seed`` (for up to 10**9 learners).

    Ids grow with ``index`` (for the first 9 * 10**8) by random-looking steps:
    the rows keyed by user id (Student, progress, preferences, answers,
    Submission) are then written near the end of their kind's range, not all
    over it, which keeps writing fast.
    """
    offset = _cohort_offset(seed)
    jitter = _mix(index ^ offset) % _USER_ID_GAP
    return str(_USER_ID_SPAN + (offset // 10 + index * _USER_ID_GAP + jitter) % _USER_ID_SPAN)


def _mix(value: int) -> int:
    """SplitMix64's finaliser: 64 well-mixed bits from any integer."""
    value &= _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


class _Learner:
    """One learner's visit to the course server, simulated from a private random stream.

    What each request would store goes through the server's builders; the
    rows kept are those the store holds at the end (the last version of
    each keyed row, every event row).
    """

    def __init__(self, structure: Structure, seed: int, index: int, namespace: str) -> None:
        self.s = structure
        self.memo = _memo_of(structure)
        self.rng = random.Random(seed * 1_000_003 + index)
        self.index = index
        self.ns = namespace
        self.user_id = user_id_for(seed, index)
        self.place = self.rng.choice(PLACES)
        self.agent = self.rng.choice(USER_AGENTS)
        self.clock = COHORT_START + _dt.timedelta(seconds=self.rng.randrange(60 * 86400))
        # progress updates, in order, and when each was made: replayed through
        # Progress at the end (see progress_entity)
        self.updates: list[tuple[str, ...]] = []
        self.updated_at: list[_dt.datetime] = []
        self.last_seen: _dt.datetime | None = None
        self.last_location = ""
        self.scores: str | None = None
        self.answers: str | None = None
        self.answers_on: _dt.datetime | None = None
        self.submissions: dict[str, Entity] = {}
        self.events: list[Entity] = []

    def tick(self, low: int, high: int) -> _dt.datetime:
        """Move the clock on by ``low`` to ``high`` seconds (microsecond steps)."""
        self.clock += _dt.timedelta(microseconds=int((low + self.rng.random() * (high - low)) * 1e6))
        return self.clock

    def token(self, issued: _dt.datetime) -> str:
        """An XSRF token as Course Builder shapes it: ``<unix seconds>/<urlsafe base64 of 16 bytes>``."""
        digest = base64.urlsafe_b64encode(self.rng.getrandbits(128).to_bytes(16, "big")).decode("ascii")
        return f"{unix_seconds(issued)}/{digest}"

    # --- what the server does for each request --------------------------------------

    def saw_page(self, path_qs: str, when: _dt.datetime) -> None:
        """An enrolled learner's page GET: ``last_seen_on`` (daily) and ``last_location`` (spec §1.8, §3.6)."""
        if self.last_seen is None or when - self.last_seen > LAST_SEEN_EVERY:
            self.last_seen = when
        self.last_location = f"{self.s.slug}/{path_qs}"

    def page_event(self, source: str, payload: dict, path_qs: str, when: _dt.datetime, *, same: bool = True) -> None:
        """``rest/events`` from a page: the client's payload (with ``location`` and
        ``loc.page_locale``), enriched as the server does (spec §7.1, §7.3).

        Many learners send the same payload from the same place and browser:
        unless ``same`` is false (a payload unlikely to repeat), the row is
        built once and its copies differ only in time and user.
        """
        memo = self.memo.events
        memo_key: tuple = (source, path_qs, self.place, self.agent, *payload.items()) if same else ()
        template = memo.get(memo_key) if same else None
        if template is not None:
            self.events.append(_copy(template, when, self.user_id))
            return
        country, region, city, lat, lon, language = self.place
        locale = self.s.locale
        payload["location"] = f"{HOST}{self.s.slug}/{path_qs}"
        payload["loc"] = {"page_locale": locale}
        enrich(payload, page_locale=locale, locale=locale, language=language, country=country, region=region,
               city=city, latlong=(lat, lon), user_agent=self.agent)
        row = event_row(self.ns, source, self.user_id, payload, when)
        if same and len(memo) < _Memo.EVENTS:
            memo[memo_key] = row
        self.events.append(row)

    def submit(self, assessment: Assessment, post: _Post, when: _dt.datetime) -> None:
        """``POST /answer`` (spec §6.5), as :meth:`Learners.submit` stores it."""
        unit_id = str(assessment.unit_id)
        answers = post.answers
        self.scores, _ = merged_scores(self.scores, unit_id, post.score)
        self.answers = post.answers_text if self.answers is None else merged_answers(self.answers, unit_id, answers)
        self.answers_on = when
        if post.event is None:
            post.event = event_row(self.ns, "submit-assessment", self.user_id, {
                "type": f"assessment-{unit_id}", "values": answers, "location": "AnswerHandler"}, when)
            self.events.append(post.event)
        else:
            self.events.append(_copy(post.event, when, self.user_id))
        if not assessment.human_graded or unit_id not in self.submissions:
            if post.submission is None:
                post.submission = row = submission_row(self.ns, unit_id, self.user_id, answers, when)
            else:  # the same contents as an earlier learner's: the text the builder made then
                row = submission_row(self.ns, unit_id, self.user_id, None, when)
                row["contents"] = post.submission["contents"]
            self.submissions[unit_id] = row
            self.update_progress(("s", unit_id), when)

    def update_progress(self, update: tuple[str, ...], when: _dt.datetime) -> None:
        """A progress update the server makes at ``when``: ``("h", unit, lesson)``,
        a lesson page viewed, or ``("s", assessment)``, an assessment submitted."""
        self.updates.append(update)
        self.updated_at.append(when)

    def progress_entity(self) -> Entity:
        """The progress row after this learner's updates, by the server's tracker.

        A learner's updates are one of few sequences, so the values each leaves
        (and which update last changed them) are computed once per sequence,
        and their text is the one the builder made for the first learner."""
        updates = tuple(self.updates)
        memo = self.memo.progress
        found = memo.get(updates)
        if found is not None:
            value, last = found
            row = progress_row(self.ns, self.user_id, None, self.updated_at[last] if last is not None else None)
            row["value"] = value
            return row
        progress, last = Progress(self.s.outline), None
        for index, update in enumerate(updates):
            progress.changed = False
            if update[0] == "h":
                progress.html_viewed(update[1], update[2])
            else:
                progress.assessment_submitted(update[1])
            if progress.changed:
                last = index
        when = self.updated_at[last] if last is not None else None
        row = progress_row(self.ns, self.user_id, progress.values or None, when)
        if len(memo) < _Memo.PROGRESS:
            memo[updates] = (row["value"], last)
        return row

    # --- the learner ------------------------------------------------------------------

    def entities(self) -> list[Entity]:
        rng = self.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        name = f"{first} {last}"
        email = f"{_ascii(first)}.{_ascii(last)}{self.index}@example.com".lower()
        token = self.token(self.clock)  # GET /register
        enrolled_on = self.tick(5, 120)  # POST /register
        student = student_row(self.ns, User(email, self.user_id), name,
                              [("xsrf_token", token), ("form01", name)], enrolled_on)
        enrolled = enrollment_event_row(self.ns, "enrolled", enrolled_on)
        # redirected to the course page: the outline is shown, the (empty) progress row made
        self.saw_page("course", self.tick(0, 2))
        self.lessons()
        self.assessments()
        student["last_seen_on"] = self.last_seen
        if self.scores is not None:
            student["scores"] = Text(self.scores)
        out = [
            student,
            enrolled,
            preferences_row(self.ns, self.user_id, self.last_location),
            self.progress_entity(),
        ]
        if self.answers is not None:
            out.append(Entity(Key("StudentAnswersEntity", self.user_id, namespace=self.ns),
                              {"updated_on": self.answers_on, "data": Text(self.answers)}))
        out.extend(self.submissions.values())
        return out + self.events

    def lessons(self) -> None:
        rng = self.rng
        outline = self.s.outline
        records = outline.records_events
        visits = self.s.lessons[: rng.randint(1, max(1, len(self.s.lessons)))] if self.s.lessons else []
        for unit_id, lesson_id, video in visits[: rng.randint(2, 3)]:
            page = f"unit?unit={unit_id}&lesson={lesson_id}"
            viewed = self.tick(5, 900)
            lesson = outline.lesson(lesson_id) or {}
            if records and not lesson.get("manual_progress"):
                self.update_progress(("h", str(unit_id), str(lesson_id)), viewed)
            self.saw_page(page, viewed)
            if not records:
                continue
            entered = self.clock = viewed + rng.randrange(150, 2500) * _MS
            self.page_event("enter-page", {}, page, entered)
            if video:
                self.page_event("tag-youtube-milestone", {
                    "video_id": video, "instance_id": f"yt{lesson_id}", "event_id": 0,
                    "position": rng.choice((30, 60, 90, 120)),
                }, page, self.tick(30, 300))
            if rng.random() < 0.4:
                self.page_event("click-link", {"href": rng.choice(LINKS)}, page, self.tick(5, 900))
            left = self.tick(5, 900)
            duration = (left - entered) // _MS + rng.randrange(50, 400)
            self.page_event("exit-page", {"duration": duration}, page, left, same=False)

    def assessments(self) -> None:
        rng = self.rng
        records = self.s.outline.records_events
        for assessment in self.s.assessments:
            if rng.random() < SKIP_ASSESSMENT or not assessment.questions:
                continue
            retake = not assessment.human_graded and rng.random() < RETAKE
            if assessment.parent is None:
                page = f"assessment?name={assessment.unit_id}"
            else:
                page = f"unit?unit={assessment.parent}&assessment={assessment.unit_id}"
            for _ in range(2 if retake else 1):
                viewed = self.tick(5, 900)
                self.saw_page(page, viewed)
                if records:
                    self.clock = viewed + rng.randrange(150, 2500) * _MS
                    self.page_event("enter-page", {}, page, self.clock)
                post = self.post(assessment)
                submitted = self.tick(60, 1200)
                self.submit(assessment, post, submitted)
                if assessment.parent is not None:  # redirected to the confirmation, a GET
                    self.saw_page(f"{page}&confirmation", self.tick(0, 2))

    def post(self, assessment: Assessment) -> _Post:
        """This learner's responses to an assessment's questions, and what the client posts."""
        rng = self.rng
        responses: list[int | str] = []
        for q in assessment.questions:
            good = rng.random() < 0.7
            if q.kind == 0:
                choices = len(q.choice_scores)
                responses.append(q.correct if good or not choices else rng.randrange(choices))
            else:
                responses.append(q.answer if good else rng.choice(("not sure", "hashing", "encryption")))
        key = (assessment.unit_id, *responses)
        post = self.memo.posts.get(key)
        if post is None:
            score_text, answers = graded(assessment, responses)
            score = 0 if assessment.human_graded else py2_round(score_text)
            post = _Post(score_text, answers, score, merged_answers(None, str(assessment.unit_id), answers))
            if len(self.memo.posts) < _Memo.POSTS:
                self.memo.posts[key] = post
        return post


def graded(assessment: Assessment, responses: list[int | str]) -> tuple[str, dict]:
    """What the 1.11 client posts for an HTML (1.5) assessment given a response to
    each question (spec §6.3): the ``score`` field, and the ``answers`` object in
    the client's key order."""
    answers: dict = {"version": "1.5", "individualScores": {}, "containedTypes": {}, "answers": {}, "quids": {},
                     "rawScore": 0, "totalWeight": 0, "percentScore": 0.0}
    states: dict = {}
    score, total = 0.0, 1e-12
    for q, response in zip(assessment.questions, responses):
        if q.kind == 0:
            assert isinstance(response, int)
            choices = len(q.choice_scores)
            picked = [response] if choices else []
            grade = _js_round2(min(max(sum(q.choice_scores[i] for i in picked), 0.0), 1.0))
            answers["answers"][q.instance_id] = picked
            states[q.instance_id] = [i == response for i in range(choices)]
            answers["containedTypes"][q.instance_id] = "McQuestion"
        else:
            assert isinstance(response, str)
            grade = _sa_score(q.graders, response)
            answers["answers"][q.instance_id] = response
            states[q.instance_id] = {"response": response}
            answers["containedTypes"][q.instance_id] = "SaQuestion"
        answers["individualScores"][q.instance_id] = _js_number(grade)
        answers["quids"][q.instance_id] = str(q.quid)
        score += grade * q.weight
        total += q.weight
    percent = score / total * 100.0
    answers["rawScore"] = _js_number(_js_round2(score))
    answers["totalWeight"] = _js_number(_js_round2(total))
    answers["percentScore"] = _js_number(_js_round2(percent))
    answers.update(states)
    return f"{percent:.2f}", answers


def _copy(row: Entity, when: _dt.datetime, user_id: str) -> Entity:
    """Another learner's copy of an event row: the same data, their own time and id."""
    copy = Entity(row.key, row)
    copy["recorded_on"], copy["user_id"] = when, user_id
    return copy


@functools.lru_cache(maxsize=256)
def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def learner_entities(structure: Structure, seed: int, start: int, count: int, namespace: str) -> Iterator[Entity]:
    for index in range(start, start + count):
        yield from _Learner(structure, seed, index, namespace).entities()


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
    try:
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
    finally:
        _forget_memo()  # learners made in this process (one worker) leave nothing behind
    return counts
