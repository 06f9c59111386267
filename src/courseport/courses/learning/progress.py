"""Course Builder's progress tracker, ``linear-course-completion`` (server spec §5.8).

Progress is one JSON object per learner from element keys to integers:
states (0 not started, 1 in progress, 2 completed) for the course, units,
lessons and lesson bodies; counts for question components and assessment
submissions. Each update cascades up to the course, and a 2 is never lowered.
"""

from __future__ import annotations

from typing import Callable

from .outline import Outline

NOT_STARTED, IN_PROGRESS, COMPLETED = 0, 1, 2
PROPERTY = "linear-course-completion"


class Progress:
    """Updates of one learner's progress object, over a course's outline."""

    def __init__(self, outline: Outline, values: dict[str, int] | None = None) -> None:
        self.outline = outline
        self.values: dict[str, int] = dict(values or {})
        self.changed = False

    def dry_run(self, update: "Callable[[Progress], None]") -> bool:
        """Whether ``update`` would change anything (without changing this)."""
        trial = Progress(self.outline, self.values)
        update(trial)
        return trial.changed

    # --- direct updates ---------------------------------------------------------

    def html_viewed(self, unit_id: str, lesson_id: str) -> None:
        """A lesson page was seen: its body completes unless it holds questions."""
        if self.outline.components(lesson_id):
            self._set(f"u.{unit_id}.l.{lesson_id}.h.0", IN_PROGRESS)
        else:
            self._set(f"u.{unit_id}.l.{lesson_id}.h.0", COMPLETED)
        self._lesson(unit_id, lesson_id)

    def html_completed(self, unit_id: str, lesson_id: str) -> None:
        """A scored lesson was graded (``attempt-lesson``)."""
        self._set(f"u.{unit_id}.l.{lesson_id}.h.0", COMPLETED)
        self._lesson(unit_id, lesson_id)

    def component_attempted(self, unit_id: str, lesson_id: str, instance_id: str) -> None:
        html = f"u.{unit_id}.l.{lesson_id}.h.0"
        key = f"{html}.c.{instance_id}"
        self._count(key)
        components = self.outline.components(lesson_id)
        done = all(self.values.get(f"{html}.c.{c}", 0) > 0 for c in components)
        self._set(html, COMPLETED if done else IN_PROGRESS)
        self._lesson(unit_id, lesson_id)

    def assessment_submitted(self, assessment_id: str) -> None:
        parent = self.outline.parent_of(assessment_id)
        if parent is None:
            self._count(f"s.{assessment_id}")
            self._course()
        else:
            self._count(f"u.{parent}.s.{assessment_id}")
            self._unit(parent)

    # --- cascade ----------------------------------------------------------------

    def _lesson(self, unit_id: str, lesson_id: str) -> None:
        html = self.values.get(f"u.{unit_id}.l.{lesson_id}.h.0", 0)
        lesson = self.outline.lesson(lesson_id) or {}
        activity_done = not lesson.get("has_activity") or \
            self.values.get(f"u.{unit_id}.l.{lesson_id}.a.0", 0) == COMPLETED
        self._set(f"u.{unit_id}.l.{lesson_id}", COMPLETED if html == COMPLETED and activity_done else IN_PROGRESS)
        self._unit(unit_id)

    def _unit(self, unit_id: str) -> None:
        unit = self.outline.unit(unit_id) or {}
        lessons_done = all(
            self.values.get(f"u.{unit_id}.l.{lesson['lesson_id']}", 0) == COMPLETED
            for lesson in self.outline.lessons_of(unit_id))
        assessments_done = all(
            self.values.get(f"u.{unit_id}.s.{unit[key]}", 0) > 0
            for key in ("pre_assessment", "post_assessment") if unit.get(key) not in (None, ""))
        self._set(f"u.{unit_id}", COMPLETED if lessons_done and assessments_done else IN_PROGRESS)
        self._course()

    def _course(self) -> None:
        self._set("r.0", IN_PROGRESS)
        units_done = all(self.values.get(f"u.{u['unit_id']}", 0) == COMPLETED
                         for u in self.outline.units if u["type"] == "U")
        assessments_done = all(self.values.get(f"s.{a['unit_id']}", 0) > 0 for a in self.outline.top_assessments())
        if units_done and assessments_done:
            self._set("r.0", COMPLETED)

    def _set(self, key: str, state: int) -> None:
        current = self.values.get(key)
        if current == COMPLETED or current == state or (current is not None and current > state):
            return
        self.values[key] = state
        self.changed = True

    def _count(self, key: str) -> None:
        self.values[key] = self.values.get(key, 0) + 1
        self.changed = True

    # --- what pages show ------------------------------------------------------

    def unit_state(self, unit_id: object) -> int:
        return self.values.get(f"u.{unit_id}", NOT_STARTED)

    def lesson_state(self, unit_id: object, lesson_id: object) -> int:
        return self.values.get(f"u.{unit_id}.l.{lesson_id}", NOT_STARTED)

    def assessment_state(self, assessment_id: object) -> int:
        parent = self.outline.parent_of(assessment_id)
        key = f"s.{assessment_id}" if parent is None else f"u.{parent}.s.{assessment_id}"
        return COMPLETED if self.values.get(key, 0) > 0 else NOT_STARTED
