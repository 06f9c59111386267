"""The learner's pages of one course (server spec §1.3, §3–§6), under its slug."""

from __future__ import annotations

import math
import re
import urllib.parse
from typing import Any, Awaitable, Callable, TypeVar

from starlette.responses import RedirectResponse, Response

from ...courses.learning import Learners
from ...courses.learning.outline import Entry, Outline
from ...courses.learning.records import json_object
from ...courses.learning.progress import COMPLETED, IN_PROGRESS, NOT_STARTED, Progress
from ...courses.vfs import FileSystem
from ...datastore import Key
from .forms import NOT_JSON, checked_form, first, parse_json

from .questions import script_json
from .render import fragment, page, status_page, trusted
from .sessions import Sessions
from .tags import TagEnv, expand
from .visit import RecentStudents, Visit, login_url, page_values
from .writer import Writer

T = TypeVar("T")

ICONS = {NOT_STARTED: ("notstarted", "Not yet started"), IN_PROGRESS: ("inprogress", "In progress"),
         COMPLETED: ("completed", "Completed")}
_YOUTUBE_ID = re.compile(r"(?:youtu\.be/|/embed/|/v/|[?&]v=|/watch/)([A-Za-z0-9_-]{11})")
Handler = Callable[[Visit], Awaitable[Response]]


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=302)


class CoursePages:
    """Every learner page of a course, given a :class:`Visit`."""

    def __init__(self, sessions: Sessions, writer: Writer, recent: RecentStudents) -> None:
        self.sessions = sessions
        self.writer = writer
        self.recent = recent
        self.routes: dict[tuple[str, str], Handler] = {
            ("GET", "/"): self.home,
            ("GET", "/course"): self.home,
            ("GET", "/unit"): self.unit,
            ("GET", "/activity"): self.unit,
            ("GET", "/assessment"): self.assessment,
            ("POST", "/answer"): self.answer,
            ("GET", "/answer"): self.answer_get,
            ("GET", "/register"): self.register_form,
            ("POST", "/register"): self.register,
            ("GET", "/student/home"): self.student_home,
            ("GET", "/student/unenroll"): self.unenroll_form,
            ("POST", "/student/unenroll"): self.unenroll,
        }

    # --- helpers ------------------------------------------------------------

    async def write(self, visit: Visit, change: Callable[[Learners], T]) -> T:
        """``change`` on this course's learners, through the writer's group commit."""
        course = visit.state.course
        return await self.writer.run(lambda store: change(Learners(course, store=store)))

    async def saw(self, visit: Visit, *, outline_shown: bool = False) -> None:
        if visit.enrolled and visit.student is not None:
            uid, where = visit.student["user_id"], visit.path_qs
            await self.write(visit, lambda learners: learners.saw_page(uid, where, outline_shown=outline_shown))

    def values(self, visit: Visit, **more: Any) -> dict[str, Any]:
        return page_values(visit, self.sessions, **more)

    def not_found(self, visit: Visit) -> Response:
        user = visit.user
        return page("404.html", 404, **self.values(visit, email=user.email if user else None))

    def tag_env(self, visit: Visit, *, standalone: bool = True) -> TagEnv:
        state = visit.state
        fs: FileSystem = state.course.fs
        return TagEnv(
            questions=lambda quid: state.question("QuestionEntity", quid),
            groups=lambda qgid: state.question("QuestionGroupEntity", qgid),
            read_file=fs.get,
            record_events=visit.records_events,
            standalone_questions=standalone,
        )

    def expanded(self, visit: Visit, cache_key: Any, html: str | None, *, standalone: bool = True) -> Any:
        if not html:
            return ""
        key = (cache_key, visit.records_events, standalone)
        return visit.state.body(key, lambda: trusted(expand(html, self.tag_env(visit, standalone=standalone))))

    def progress(self, visit: Visit) -> Progress | None:
        if not visit.enrolled or visit.student is None:
            return None
        return visit.learners.progress(visit.student["user_id"], visit.state.outline)

    def need_student(self, visit: Visit) -> Response | None:
        if visit.user is None:
            return redirect(login_url(visit.request))
        if not visit.enrolled:
            return redirect(visit.course_url("course"))
        return None

    # --- course home ------------------------------------------------------------

    async def home(self, visit: Visit) -> Response:
        request = visit.request
        outline = visit.state.outline
        remainder = request.scope.get("courseport_remainder", "/")
        if visit.enrolled and visit.student is not None and (
                remainder == "/" or "use_last_location" in request.query_params):
            last = visit.learners.last_location(visit.student["user_id"])
            if last and last != visit.path_qs and last.startswith(visit.slug.rstrip("/") + "/"):
                return redirect(last)
        await self.saw(visit, outline_shown=True)
        progress = self.progress(visit)
        last_location = visit.learners.last_location(visit.student["user_id"]) \
            if visit.enrolled and visit.student is not None else None
        course = outline.course
        found = course.get("main_image")
        image: dict = found if isinstance(found, dict) else {}
        image_url = str(image.get("url") or "")
        video = _YOUTUBE_ID.search(image_url)
        return page("course.html", **self.values(
            visit,
            blurb=self.expanded(visit, "blurb", course.get("blurb") if isinstance(course.get("blurb"), str) else ""),
            instructor=trusted(course["instructor_details"])
            if isinstance(course.get("instructor_details"), str) else "",
            main_video=video.group(1) if video else None,
            main_image=image_url if image_url and not video and _safe_url(image_url) else None,
            main_image_alt=image.get("alt_text") or "",
            show_register=(not visit.enrolled and outline.can_register) or visit.admin,
            syllabus=self.syllabus(visit, progress, last_location),
        ))

    def syllabus(self, visit: Visit, progress: Progress | None, last_location: str | None) -> list[dict]:
        outline = visit.state.outline
        viewer = visit.viewer
        show_lessons = bool(outline.course.get("show_lessons_in_syllabus"))
        without_index = bool(outline.course.get("display_unit_title_without_index"))
        items = []
        for unit, linked in outline.syllabus(viewer):
            uid = unit["unit_id"]
            kind = unit["type"]
            title = unit.get("title") or ""
            href = None
            state = None
            if kind == "U":
                index = outline.unit_index(unit)
                title = title if without_index else f"Unit {index} - {title}"
                href = f"unit?unit={uid}" if linked and outline.unit_entries(unit, viewer) else None
                state = progress.unit_state(uid) if progress else None
            elif kind == "A":
                href = f"assessment?name={uid}" if linked else None
                state = progress.assessment_state(uid) if progress else None
            elif kind == "O":
                href = unit.get("href") if linked and _safe_url(unit.get("href") or "") else None
            item: dict[str, Any] = {"id": uid, "title": title, "href": href, "lessons": []}
            if state is not None and kind in ("U", "A"):
                name, alt = ICONS[state]
                item.update(icon=f"/static/courseport/img/{name}.png", icon_state=name, icon_alt=alt)
            item["last"] = bool(last_location and href and last_location.endswith("/" + href))
            if show_lessons and kind == "U":
                for entry in outline.unit_entries(unit, viewer):
                    item["lessons"].append({"title": self.entry_title(outline, entry), "href": entry.url})
            items.append(item)
        return items

    @staticmethod
    def entry_title(outline: Outline, entry: Entry) -> str:
        if entry.kind == "lesson":
            lesson = entry.element
            unit = outline.unit(entry.unit_id)
            index = outline.lesson_index(lesson)
            unit_index = outline.unit_index(unit) if unit else None
            prefix = f"{unit_index}.{index} " if index is not None and unit_index is not None else ""
            return prefix + (lesson.get("title") or "")
        return entry.element.get("title") or ""

    # --- units and lessons ------------------------------------------------------

    async def unit(self, visit: Visit) -> Response:
        request = visit.request
        outline = visit.state.outline
        viewer = visit.viewer
        params = request.query_params
        unit = outline.unit(params.get("unit", "")) if params.get("unit") else next(
            (u for u, linked in outline.syllabus(viewer) if linked and u["type"] == "U"), None)
        if unit is None or unit["type"] != "U" or not outline.display(unit, viewer)[1]:
            return redirect(visit.course_url("course"))
        entries = outline.unit_entries(unit, viewer)
        wanted_lesson, wanted_assessment = params.get("lesson"), params.get("assessment")
        if wanted_lesson is not None:
            chosen = next((e for e in entries if e.kind == "lesson" and e.id == wanted_lesson), None)
        elif wanted_assessment is not None:
            chosen = next((e for e in entries if e.kind == "assessment" and e.id == wanted_assessment), None)
        else:
            chosen = entries[0] if entries else None
        if chosen is None:
            return redirect(visit.course_url("course"))
        one_page = bool(unit.get("show_contents_on_one_page"))
        shown = entries if one_page else [chosen]
        blocks = [self.entry_block(visit, e) for e in shown]
        progress = None
        if visit.enrolled and visit.student is not None:
            uid, where = visit.student["user_id"], visit.path_qs
            progress = visit.learners.progress(uid, outline)
            lessons = [e for e in shown if e.kind == "lesson" and not e.element.get("manual_progress")]

            def viewed(p: Progress) -> None:
                for entry in lessons:
                    p.html_viewed(entry.unit_id, entry.id)

            counts = visit.records_events and bool(lessons) and progress.dry_run(viewed)

            def change(learners: Learners) -> Progress | None:
                updated = learners.update_progress(uid, outline, viewed) if counts else None
                learners.saw_page(uid, where)
                return updated

            progress = await self.write(visit, change) or progress
        position = entries.index(chosen)
        first, last = position == 0, position == len(entries) - 1
        hide = (unit.get("show_contents_on_one_page") or (
            outline.unit_settings.get("hide_lesson_navigation_buttons") if chosen.kind == "lesson"
            else outline.unit_settings.get("hide_assessment_navigation_buttons")))
        nav = []
        for entry in entries:
            item = {"title": self.entry_title(outline, entry), "href": entry.url, "active": entry is chosen}
            if progress is not None:
                state = progress.lesson_state(entry.unit_id, entry.id) if entry.kind == "lesson" \
                    else progress.assessment_state(entry.id)
                item["icon"] = f"/static/courseport/img/{ICONS[state][0]}.png"
                item["icon_alt"] = ICONS[state][1]
            nav.append(item)
        index = outline.unit_index(unit)
        return page("unit.html", **self.values(
            visit,
            unit=unit,
            unit_label=f"Unit {index}",
            unit_heading=f"Unit {index} - {unit.get('title') or ''}",
            entry_label=None if one_page else self.entry_title(outline, chosen),
            nav=nav,
            blocks=blocks,
            unit_header=self.expanded(visit, ("header", unit["unit_id"]), unit.get("unit_header")) if first or one_page else "",
            unit_footer=self.expanded(visit, ("footer", unit["unit_id"]), unit.get("unit_footer")) if last or one_page else "",
            prev_href=None if hide or first else entries[position - 1].url,
            next_href=None if hide else ("course" if last else entries[position + 1].url),
            next_label="End" if last else "Next Page",
            html_class=" ".join(c for c, p in (("hide-controls", "hide-controls"),
                                                ("hide-lesson-title", "hide-lesson-title"))
                                if request.query_params.get(p) == "true") or None,
        ))

    def entry_block(self, visit: Visit, entry: Entry) -> Any:
        if entry.kind == "assessment":
            return self.assessment_block(visit, entry.element)
        lesson = entry.element
        outline = visit.state.outline
        available = (lesson.get("availability") or "course") != "private" or visit.admin
        body = self.expanded(visit, ("lesson", lesson["lesson_id"]), lesson.get("objectives"),
                             standalone=not lesson.get("scored"))
        return fragment("lesson_body.html", 
            lesson=lesson, lesson_title=self.entry_title(outline, entry),
            private=(lesson.get("availability") == "private"), available=available,
            body=body, transient=not visit.enrolled)

    # --- assessments -------------------------------------------------------------

    def assessment_block(self, visit: Visit, unit: dict) -> Any:
        fs = visit.state.course.fs
        legacy = fs.isfile(f"/assets/js/assessment-{unit['unit_id']}.js")
        student = visit.student if visit.enrolled else None
        saved = None
        readonly_note = None
        human = visit.state.outline.human_graded(unit["unit_id"])
        submitted = False
        if student is not None:
            answers = visit.learners.store.get(
                Key("StudentAnswersEntity", student["user_id"], namespace=visit.state.course.namespace))
            if answers is not None:
                previous = json_object(answers.get("data")).get(str(unit["unit_id"]))
                if isinstance(previous, dict):
                    saved = script_json(previous)
                    submitted = True
        if human and submitted:
            readonly_note = "You have submitted this assignment; it allows one submission only."
        available = (unit.get("availability") or "course") != "private" or visit.admin
        return fragment("assessment_body.html", 
            unit=unit, legacy=legacy, available=available, readonly_note=readonly_note,
            assessment_token=self.sessions.token(visit.session, "assessment-post") if visit.enrolled else "",
            saved_answers=trusted(saved) if saved else None,
            body=self.expanded(visit, ("assessment", unit["unit_id"]), unit.get("html_content"), standalone=False),
            can_submit=visit.enrolled and not (human and submitted),
        )

    async def assessment(self, visit: Visit) -> Response:
        outline = visit.state.outline
        name = visit.request.query_params.get("name", "")
        unit = outline.unit(name)
        if unit is None or unit["type"] != "A":
            return self.not_found(visit)
        parent = outline.parent_of(name)
        if parent is not None:
            return redirect(visit.course_url(f"unit?unit={parent}&assessment={name}"))
        if not outline.display(unit, visit.viewer)[1]:
            return redirect(visit.slug.rstrip("/") + "/")
        await self.saw(visit)
        return page("assessment.html", **self.values(visit, unit=unit, block_html=self.assessment_block(visit, unit)))

    async def answer_get(self, visit: Visit) -> Response:
        return redirect(visit.course_url("course"))

    async def answer(self, visit: Visit) -> Response:
        refused = self.need_student(visit)
        if refused is not None:
            return refused
        fields = await checked_form(visit.request, self.sessions, visit.session, "assessment-post")
        if fields is None:
            return status_page(403, visit.slug)
        outline = visit.state.outline
        unit_id = first(fields, "assessment_type") or ""
        unit = outline.unit(unit_id)
        if unit is None or unit["type"] != "A":
            return status_page(404, visit.slug)
        human = outline.human_graded(unit_id)
        try:
            if not math.isfinite(float(first(fields, "score") or "0")):
                raise ValueError("not a finite score")
        except ValueError:
            return status_page(400, visit.slug)
        answers = parse_json(first(fields, "answers") or "[]")
        if answers is NOT_JSON:
            return status_page(400, visit.slug)
        assert visit.student is not None
        student, score = visit.student, first(fields, "score") or "0"
        submitted = await self.write(visit, lambda learners: learners.submit(
            student, outline, str(unit["unit_id"]), score, answers, human_graded=human))
        parent = outline.parent_of(unit_id)
        if parent is not None:
            return redirect(visit.course_url(f"unit?unit={parent}&assessment={unit_id}&confirmation"))
        return page("confirmation.html", **self.values(
            visit, unit=unit, score=submitted.score, best=submitted.best,
            result_text=self.result_text(visit, outline)))

    def result_text(self, visit: Visit, outline: Outline) -> str | None:
        """Pass/fail text with the overall score, once every assessment is done (spec §6.5, §6.6)."""
        student = visit.learners.student(visit.student["user_id"]) if visit.student else None
        if student is None:
            return None
        scores = _scores(student)
        assessments = outline.top_assessments()
        if not assessments or any(str(a["unit_id"]) not in scores for a in assessments):
            return None
        overall = overall_score(outline, scores)
        if overall is None:
            return None
        texts = outline.settings.get("assessment_confirmations")
        texts = texts.get("result_text") if isinstance(texts, dict) else None
        text = texts.get("pass" if overall >= 70 else "fail") if isinstance(texts, dict) else None
        if not isinstance(text, str) or text.count("%s") != 1:
            return None
        return text.replace("%%", "%").replace("%s", str(overall))

    # --- registration -------------------------------------------------------------

    async def register_form(self, visit: Visit) -> Response:
        outline = visit.state.outline
        if visit.user is None:
            return redirect(login_url(visit.request))
        if visit.enrolled:
            return redirect(visit.course_url("course"))
        if not outline.can_register:
            return redirect(visit.course_url("course#registration_closed"))
        extra = outline.reg_form.get("additional_registration_fields")
        header = outline.reg_form.get("header_text")
        profile = visit.learners.store.get(Key("PersonalProfile", visit.user.user_id))
        return page("register.html", **self.values(
            visit,
            form_token=self.sessions.token(visit.session, "register-post"),
            additional_fields=trusted(extra) if isinstance(extra, str) else "",
            header_text=trusted(header) if isinstance(header, str) else "",
            nick_name=(profile.get("nick_name") if profile is not None else None) or "",
        ))

    async def register(self, visit: Visit) -> Response:
        if visit.user is None:
            return redirect(login_url(visit.request))
        fields = await checked_form(visit.request, self.sessions, visit.session, "register-post")
        if fields is None:
            return status_page(403, visit.slug)
        if not visit.state.outline.can_register:
            return redirect(visit.course_url("course#registration_closed"))
        if "name_from_profile" in dict(fields):
            profile = visit.learners.store.get(Key("PersonalProfile", visit.user.user_id))
            name = (profile.get("nick_name") if profile is not None else None) or ""
        else:
            name = first(fields, "form01") or ""
        user, labels = visit.user, first(fields, "labels") or ""
        await self.write(visit, lambda learners: learners.register(user, name[:500], fields, labels=labels))
        self.recent.forget(visit.learners, user.user_id)
        return redirect(visit.course_url("course#registration_confirmation"))

    # --- the learner's own pages --------------------------------------------------

    async def student_home(self, visit: Visit) -> Response:
        refused = self.need_student(visit)
        if refused is not None:
            return refused
        assert visit.student is not None
        outline = visit.state.outline
        await self.saw(visit)
        scores = _scores(visit.student)
        rows = [{"id": a["unit_id"], "title": a.get("title") or "", "score": scores.get(str(a["unit_id"]), "")}
                for a in outline.units if a["type"] == "A"]
        enrolled_on = visit.student.get("enrolled_on")
        return page("student_home.html", **self.values(
            visit, name=visit.student.get("name") or "", scores=rows,
            enrolled_on=enrolled_on.strftime("%B %d, %Y") if enrolled_on else "",
            overall=overall_score(outline, scores)))

    async def unenroll_form(self, visit: Visit) -> Response:
        refused = self.need_student(visit)
        if refused is not None:
            return refused
        return page("unenroll.html", **self.values(
            visit, form_token=self.sessions.token(visit.session, "student-unenroll")))

    async def unenroll(self, visit: Visit) -> Response:
        refused = self.need_student(visit)
        if refused is not None:
            return refused
        fields = await checked_form(visit.request, self.sessions, visit.session, "student-unenroll")
        if fields is None:
            return status_page(403, visit.slug)
        assert visit.student is not None
        uid = visit.student["user_id"]
        await self.write(visit, lambda learners: learners.unenroll(uid))
        self.recent.forget(visit.learners, uid)
        visit.student = visit.learners.student(visit.student["user_id"])
        return page("message.html", **self.values(
            visit, heading="You have been unenrolled",
            lines=[f"You are no longer enrolled in {visit.state.outline.title or visit.slug}."],
            link=("course", "Return to the course")))


def _scores(student: Any) -> dict[str, float]:
    return {str(k): v for k, v in json_object(student.get("scores")).items() if isinstance(v, (int, float))}


def overall_score(outline: Outline, scores: dict[str, float]) -> int | None:
    """Course Builder's overall score: weighted over auto-graded assessments (spec §6.6)."""
    total = weighted = 0.0
    for unit in outline.units:
        if unit["type"] != "A" or outline.human_graded(unit["unit_id"]):
            continue
        try:
            weight = float(unit.get("weight") or 0)
        except (TypeError, ValueError):
            weight = 0.0
        total += weight
        weighted += weight * float(scores.get(str(unit["unit_id"]), 0))
    return int(weighted / total) if total else None


def _safe_url(url: str) -> bool:
    scheme = urllib.parse.urlsplit(url.strip()).scheme.lower()
    return scheme in ("", "http", "https")

