"""The rows a learner leaves, in Course Builder's shapes (server spec §3, §5.8, §6.5, §7.3).

Builders (``student_row``, ``event_row``, ...) make one entity each from
plain values and a time; :class:`Learners` reads and writes them in a
course's store for the server. ``courseport populate`` uses the same
builders with a simulated clock, so both leave identical shapes.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import json
from dataclasses import dataclass
from typing import Any, Callable

from ..._json import dumps
from ...datastore import Backend, Entity, Key, Text, utcnow
from ..site import Course
from .outline import Outline
from .progress import PROPERTY, Progress

LAST_SEEN_EVERY = _dt.timedelta(hours=24)
PREFERENCES_DEFAULT = {"version": "1.0", "show_hooks": False, "show_jinja_context": False}


def unix_seconds(when: _dt.datetime) -> int:
    return int((when - _dt.datetime(1970, 1, 1)).total_seconds())


@dataclass(frozen=True)
class User:
    """A signed-in person: the email they signed in with, and their Course Builder user id."""

    email: str
    user_id: str


@dataclass(frozen=True)
class Submitted:
    """What an assessment submission kept: the score it posted and the best one."""

    score: int
    best: int
    first: bool


def py2_round(text: str) -> int:
    """``int(round(float(text)))`` as Python 2 did it: halves away from zero ("66.50" → 67)."""
    value = decimal.Decimal(repr(float(text)))
    return int(value.quantize(decimal.Decimal(1), rounding=decimal.ROUND_HALF_UP))


def json_object(text: str | None) -> dict:
    """The JSON object a text property holds; ``{}`` for none, a non-object or bad JSON."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# --- keys -----------------------------------------------------------------------


def preferences_key(ns: str, user_id: str) -> Key:
    return Key("StudentPreferencesEntity", user_id, namespace=ns)


def progress_key(ns: str, user_id: str) -> Key:
    return Key("StudentPropertyEntity", f"{user_id}-{PROPERTY}", namespace=ns)


def submission_key(ns: str, unit_id: str, user_id: str) -> Key:
    return Key("Submission", f"(submission:{unit_id}:{user_id})", namespace=ns)


# --- builders -------------------------------------------------------------------


def student_row(ns: str, user: User, name: str, fields: list[tuple[str, str]], enrolled_on: _dt.datetime,
                *, labels: str = "", previous: Entity | None = None) -> Entity:
    """Student after a registration POST: ``additional_fields`` is every posted
    field in form order, ``xsrf_token`` included (spec §3.2)."""
    key = previous.key if previous is not None else Key("Student", user.user_id, namespace=ns)
    row = Entity(key, dict(previous) if previous is not None else {
        "enrolled_on": enrolled_on, "last_seen_on": None, "scores": None, "group_id": None,
    })
    row.update({
        "user_id": user.user_id,
        "email": user.email.lower(),
        "name": name,
        "is_enrolled": True,
        "additional_fields": Text(dumps([[k, v] for k, v in fields])),
        "labels": labels,
    })
    return row


def profile_row(user: User, name: str) -> Entity:
    """PersonalProfile, default namespace: the email as the user gave it."""
    return Entity(Key("PersonalProfile", user.user_id), {
        "email": user.email, "nick_name": name, "legal_name": None, "date_of_birth": None, "course_info": None,
    })


def enrollment_event_row(ns: str, metric: str, when: _dt.datetime) -> Entity:
    return Entity(Key._make((("StudentEnrollmentEventEntity", None),), ns),
                  {"data": Text(dumps({"timestamp": unix_seconds(when), "metric": metric}))})


def preferences_row(ns: str, user_id: str, last_location: str, previous: Entity | None = None) -> Entity:
    data = dict(PREFERENCES_DEFAULT)
    if previous is not None:
        data.update(json_object(previous.get("data")))
    data["last_location"] = last_location
    return Entity(preferences_key(ns, user_id), {"data": Text(dumps(data))})


def progress_row(ns: str, user_id: str, values: dict[str, int] | None, when: _dt.datetime | None) -> Entity:
    """The progress row; ``values`` None is the empty row of a first outline view."""
    return Entity(progress_key(ns, user_id), {
        "name": PROPERTY, "value": Text(dumps(values)) if values is not None else None, "updated_on": when,
    })


def event_row(ns: str, source: str, user_id: str, data: dict, when: _dt.datetime) -> Entity:
    return Entity(Key._make((("EventEntity", None),), ns),
                  {"recorded_on": when, "source": source, "user_id": user_id, "data": Text(dumps(data))})


def enrich(payload: dict, *, page_locale: str | None = None, locale: str = "en_US", language: str | None = None,
           country: str | None = None, region: str | None = None, city: str | None = None,
           latlong: tuple[float, float] | None = None, user_agent: str | None = None) -> dict:
    """Spec §7.3 step 5: where and how the learner was, added to a client payload."""
    given = payload.get("loc")
    loc: dict = dict(given) if isinstance(given, dict) else {}
    if page_locale is not None:
        loc["page_locale"] = page_locale
    loc.update({"locale": locale, "language": language, "country": country, "region": region, "city": city})
    if latlong is not None:
        loc["lat"], loc["long"] = latlong
    payload["loc"] = loc
    if user_agent is not None:
        payload["user_agent"] = user_agent
    return payload


def submission_row(ns: str, unit_id: str, user_id: str, answers: Any, when: _dt.datetime) -> Entity:
    return Entity(submission_key(ns, unit_id, user_id), {
        "unit_id": str(unit_id),
        "reviewee_key": Key("Student", user_id, namespace=ns),
        "contents": Text(dumps(answers)),
        "updated_on": when,
        "instance_id": None,
    })


def merged_scores(scores_text: str | None, unit_id: str, score: int) -> tuple[str, int]:
    """``Student.scores`` with this score kept only if none was, or it is higher."""
    scores = json_object(scores_text)
    best = scores.get(unit_id)
    if not isinstance(best, int) or score > best:
        scores[unit_id] = best = score
    return dumps(scores), best


def merged_answers(data_text: str | None, unit_id: str, answers: Any) -> str:
    data = json_object(data_text)
    data[unit_id] = answers
    return dumps(data)


# --- a course's learners in its store -----------------------------------------


class Learners:
    """Reads and writes one course's learner rows."""

    def __init__(self, course: Course, clock: Callable[[], _dt.datetime] = utcnow, *,
                 store: Backend | None = None) -> None:
        self.course = course
        self.store = store if store is not None else course.store
        self.ns = course.namespace
        self.clock = clock

    def student(self, user_id: str) -> Entity | None:
        """The Student keyed by this user id. (Course Builder also finds legacy rows
        keyed by email through a query on ``user_id``; the store has no property
        index for that, so such a learner registers afresh.)"""
        return self.store.get(Key("Student", user_id, namespace=self.ns))

    def register(self, user: User, name: str, fields: list[tuple[str, str]], *, labels: str = "") -> Entity:
        now = self.clock()
        with self.store.transaction():
            previous = self.student(user.user_id)
            row = student_row(self.ns, user, name, fields, now, labels=labels, previous=previous)
            rows = [row, enrollment_event_row(self.ns, "enrolled", now)]
            if self.store.get(Key("PersonalProfile", user.user_id)) is None:
                rows.append(profile_row(user, name))
            self.store.put_multi(rows)
        return row

    def unenroll(self, user_id: str) -> None:
        with self.store.transaction():
            row = self.student(user_id)
            if row is None or not row.get("is_enrolled"):
                return
            row["is_enrolled"] = False
            self.store.put_multi([row, enrollment_event_row(self.ns, "unenrolled", self.clock())])

    def saw_page(self, user_id: str, path_qs: str | None, *, outline_shown: bool = False) -> None:
        """An enrolled learner's page view: last seen (daily), last location, the empty progress row."""
        student = self.student(user_id)
        if student is None or not student.get("is_enrolled"):
            return
        now = self.clock()
        writes: list[Entity] = []
        seen = student.get("last_seen_on")
        if seen is None or now - seen > LAST_SEEN_EVERY:
            student["last_seen_on"] = now
            writes.append(student)
        if path_qs is not None:
            previous = self.store.get(preferences_key(self.ns, user_id))
            if previous is None or _last_location(previous) != path_qs:
                writes.append(preferences_row(self.ns, user_id, path_qs, previous))
        if outline_shown and self.store.get(progress_key(self.ns, user_id)) is None:
            writes.append(progress_row(self.ns, user_id, None, None))
        if writes:
            self.store.put_multi(writes)

    def last_location(self, user_id: str) -> str | None:
        found = self.store.get(preferences_key(self.ns, user_id))
        return None if found is None else _last_location(found)

    def progress(self, user_id: str, outline: Outline) -> Progress:
        found = self.store.get(progress_key(self.ns, user_id))
        return Progress(outline, _progress_values(found))

    def update_progress(self, user_id: str, outline: Outline, update: Callable[[Progress], None]) -> Progress:
        """Apply ``update`` to the stored progress, in one transaction; write only a change.
        (Pages ask ``Progress.dry_run`` first, so a lesson seen again costs no write.)"""
        with self.store.transaction():
            progress = self.progress(user_id, outline)
            update(progress)
            if progress.changed:
                self.store.put(progress_row(self.ns, user_id, progress.values, self.clock()))
        return progress

    def record_event(self, source: str, user_id: str, data: dict) -> Entity:
        row = event_row(self.ns, source, user_id, data, self.clock())
        self.store.put(row)
        return row

    def submit(self, student: Entity, outline: Outline, unit_id: str, score_text: str, answers: Any,
               *, human_graded: bool = False) -> Submitted:
        """``POST /answer`` (spec §6.5): answers, best score, event, submission, progress."""
        score = 0 if human_graded else py2_round(score_text)
        now = self.clock()
        user_id = student["user_id"]
        with self.store.transaction():
            student = self.student(user_id) or student
            answers_key = Key("StudentAnswersEntity", user_id, namespace=self.ns)
            stored = self.store.get(answers_key)
            scores_text, best = merged_scores(student.get("scores"), unit_id, score)
            student["scores"] = Text(scores_text)
            first = self.store.get(submission_key(self.ns, unit_id, user_id)) is None
            rows = [
                Entity(answers_key, {"updated_on": now,
                                     "data": Text(merged_answers(stored.get("data") if stored else None,
                                                                 unit_id, answers))}),
                student,
                event_row(self.ns, "submit-assessment", user_id,
                          {"type": f"assessment-{unit_id}", "values": answers, "location": "AnswerHandler"}, now),
            ]
            if not human_graded or first:
                rows.append(submission_row(self.ns, unit_id, user_id, answers, now))
                progress = self.progress(user_id, outline)
                progress.assessment_submitted(unit_id)
                rows.append(progress_row(self.ns, user_id, progress.values, now))
            self.store.put_multi(rows)
        return Submitted(score, best, first)


def _last_location(row: Entity) -> str | None:
    location = json_object(row.get("data")).get("last_location")
    return location if isinstance(location, str) else None


def _progress_values(row: Entity | None) -> dict[str, int]:
    values = json_object(row.get("value")) if row is not None else {}
    return {k: v for k, v in values.items() if isinstance(v, int)}
