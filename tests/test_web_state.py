"""What a worker caches of a course: kept a while, then read afresh."""

from __future__ import annotations

import json

import pytest

from courseport.courses.sample import install_sample
from courseport.courses.site import Site
from courseport.datastore import Entity, Key, Text
from courseport.server.web import state as state_module
from courseport.server.web.state import BODY_TTL, SiteState


def test_an_edited_question_shows_once_its_cached_copy_expires(store, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(state_module.time, "monotonic", lambda: clock[0])
    course = install_sample(Site(store))
    key = Key("QuestionEntity", 424242, namespace=course.namespace)
    store.put(Entity(key, {"data": Text(json.dumps({"type": 0, "question": "before"}))}))
    cached = SiteState(Site(store)).course_state(course)
    assert cached.question("QuestionEntity", 424242)["question"] == "before"
    store.put(Entity(key, {"data": Text(json.dumps({"type": 0, "question": "after"}))}))
    clock[0] += BODY_TTL / 2
    assert cached.question("QuestionEntity", 424242)["question"] == "before"
    clock[0] += BODY_TTL
    assert cached.question("QuestionEntity", 424242)["question"] == "after"
    assert cached.question("QuestionEntity", 999_999_999) is None  # absent
