"""Course Builder's ``question`` and ``question-group`` tags (spec §5.4).

The server renders each question as HTML plus a ``<script
type="application/json" class="qt-data" data-for="<instanceid>">`` holding
what the browser needs to grade it (``courseport.js`` does the grading, as
Course Builder's client does). The ``grade_*`` functions are the same
grading in Python, for tests and for server-side checks of posted scores.

Question data is author content: its HTML (question text, choices, feedback,
the group introduction) is emitted as written, like Course Builder does.
Everything else taken from a tag or the data (ids, numbers, matchers) is
escaped or validated.
"""

from __future__ import annotations

import html
import json
import math
import re
from typing import Any, Callable, Mapping

Data = dict[str, Any]
Lookup = Callable[[int], dict[str, Any] | None]
Expander = Callable[[str], str]

MC_TYPE = 0
SA_TYPE = 1

QUESTION_DELETED = "[Question deleted]"
INVALID_QUESTION = "[Invalid question]"
UNSUPPORTED_TYPE = "[Unsupported question type]"
GROUP_DELETED = "[Deleted question group]"

#: score bounds of "correct" and "incorrect" (between them: partially correct)
CORRECT_CUTOFF = 0.99
INCORRECT_CUTOFF = 0.01

_ID = re.compile(r"\s*([0-9]+)\s*")


# --- small helpers --------------------------------------------------------------


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _text_span(text: str) -> str:
    return f"<span>{_esc(text)}</span>"


def parse_id(value: str | None) -> int | None:
    """A datastore numeric id written in a tag attribute, or None when it is not one."""
    match = _ID.fullmatch(value or "")
    return int(match.group(1)) if match else None


def number(value: object, default: float = 0.0) -> float:
    """A score or weight as JavaScript's ``parseFloat`` reads it (data may hold ``"0.5"``).

    Anything that is not a finite number gives ``default``.
    """
    if isinstance(value, (bool, int, float)):
        parsed = float(value)
    elif isinstance(value, str):
        parsed = js_parse_float(value)
    else:
        return default
    return parsed if math.isfinite(parsed) else default


def _size(value: object, default: int) -> int:
    """A textarea dimension: a whole number from 1 to 1000."""
    return min(max(1, int(number(value, default))), 1000)


def parse_weight(value: str | None) -> float:
    """A tag's ``weight`` attribute: absent or empty means 1; otherwise a finite number >= 0."""
    if value is None or not value.strip():
        return 1.0
    try:
        weight = float(value)
    except ValueError:
        raise ValueError(f"invalid weight: {value!r}") from None
    if not math.isfinite(weight) or weight < 0:
        raise ValueError(f"invalid weight: {value!r}")
    return weight


def points_label(weight: float) -> str:
    """"1 point" / "N points", N an integer when within 1e-6 of one, else 2 decimals."""
    if abs(weight - round(weight)) < 1e-6:
        count = int(round(weight))
        return "1 point" if count == 1 else f"{count} points"
    return f"{weight:.2f} points"


def script_json(value: Any) -> str:
    """JSON text that can sit inside a ``<script>`` element: no ``<``, ``>`` or ``&``."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _data_script(iid: str, value: Any) -> str:
    return (f'<script type="application/json" class="qt-data" data-for="{_esc(iid)}">'
            f"{script_json(value)}</script>")


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _answer_text(value: object) -> str:
    """A grader's expected response as text; authors' tools store numbers for numeric matchers (7.9)."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return _str(value)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# --- client data ----------------------------------------------------------------


def mc_js_data(data: Data, quid: str, weight: float | None) -> Data:
    """What the browser needs to grade a multiple-choice question (no weight when embedded)."""
    choices = [_dict(c) for c in _list(data.get("choices"))]
    out: Data = {
        "quid": quid,
        "choices": [{"text": _str(c.get("text")), "score": number(c.get("score")),
                     "feedback": _str(c.get("feedback"))} for c in choices],
        "defaultFeedback": _str(data.get("defaultFeedback")),
        "permuteChoices": bool(data.get("permute_choices")),
        "showAnswerWhenIncorrect": bool(data.get("show_answer_when_incorrect")),
        "allOrNothingGrading": bool(data.get("all_or_nothing_grading")),
    }
    if weight is not None:
        out["weight"] = weight
    return out


def sa_js_data(data: Data, quid: str, weight: float | None) -> Data:
    """What the browser needs to grade a short-answer question (no weight when embedded)."""
    graders = [_dict(g) for g in _list(data.get("graders"))]
    out: Data = {
        "quid": quid,
        "graders": [{"matcher": _str(g.get("matcher")), "response": _answer_text(g.get("response")),
                     "score": number(g.get("score")), "feedback": _str(g.get("feedback"))}
                    for g in graders],
        "hint": _str(data.get("hint")),
        "defaultFeedback": _str(data.get("defaultFeedback")),
    }
    if weight is not None:
        out["weight"] = weight
    return out


# --- rendering ------------------------------------------------------------------


def _feedback_div() -> str:
    return '<div class="qt-feedback" aria-live="polite"></div>'


def _check_button() -> str:
    return '<button type="button" class="qt-check-answer">Check Answer</button>'


def _open(kind: str, iid: str, quid: str, embedded: bool) -> str:
    mode = "qt-embedded" if embedded else "qt-standalone"
    return f'<div id="{_esc(iid)}" class="{kind} {mode}" data-quid="{_esc(quid)}">'


def _mc_choices(data: Data, iid: str, expand: Expander) -> str:
    kind = "checkbox" if data.get("multiple_selections") else "radio"
    rows = []
    for i, choice in enumerate(_list(data.get("choices"))):
        cid = _esc(f"{iid}.{i}")
        rows.append(f'<div class="qt-choice"><input type="{kind}" name="{_esc(iid)}" id="{cid}" '
                    f'data-index="{i}"><label for="{cid}">{expand(_str(_dict(choice).get("text")))}'
                    f"</label></div>")
    return f'<div class="qt-choices">{"".join(rows)}</div>'


def _mc_html(data: Data, quid: str, iid: str, weight: float, embedded: bool, checkable: bool,
             expand: Expander) -> str:
    parts = [
        _open("qt-mc-question", iid, quid, embedded),
        f'<div class="qt-points">{points_label(weight)}</div>',
        f'<div class="qt-question">{expand(_str(data.get("question")))}</div>',
        _mc_choices(data, iid, expand),
        _check_button() if checkable and not embedded else "",
        _feedback_div(),
        _data_script(iid, mc_js_data(data, quid, None if embedded else weight)),
        "</div>",
    ]
    return "".join(parts)


def _sa_response(data: Data, iid: str) -> str:
    rows = _size(data.get("rows"), 1)
    columns = _size(data.get("columns"), 100)
    label = 'aria-label="Your answer"'
    if rows == 1:
        return f'<div class="qt-response"><input type="text" class="qt-response" {label}></div>'
    return (f'<div class="qt-response"><textarea class="qt-response" rows="{rows}" '
            f'cols="{columns}" {label}></textarea></div>')


def _sa_html(data: Data, quid: str, iid: str, weight: float, embedded: bool, checkable: bool,
             expand: Expander) -> str:
    hint = '<button type="button" class="qt-hint">Hint</button>' if _str(data.get("hint")) else ""
    parts = [
        _open("qt-sa-question", iid, quid, embedded),
        f'<div class="qt-points">{points_label(weight)}</div>',
        f'<div class="qt-question">{expand(_str(data.get("question")))}</div>',
        _sa_response(data, iid),
        hint,
        _check_button() if checkable and not embedded else "",
        _feedback_div(),
        _data_script(iid, sa_js_data(data, quid, None if embedded else weight)),
        "</div>",
    ]
    return "".join(parts)


def _question_html(data: Data | None, quid: int, iid: str, weight: float, *, embedded: bool,
                   checkable: bool, expand: Expander) -> tuple[str, bool]:
    """The question's HTML and whether it is a question (False: a ``[...]`` notice)."""
    if data is None:
        return _text_span(QUESTION_DELETED), False
    kind = data.get("type")
    if kind == MC_TYPE and not isinstance(kind, bool):
        return _mc_html(data, str(quid), iid, weight, embedded, checkable, expand), True
    if kind == SA_TYPE and not isinstance(kind, bool):
        return _sa_html(data, str(quid), iid, weight, embedded, checkable, expand), True
    return _text_span(UNSUPPORTED_TYPE), False


def render_question(attrs: Mapping[str, str], questions: Lookup, *, checkable: bool,
                    expand: Expander) -> str:
    """A ``<question quid instanceid [weight]>`` tag.

    ``checkable`` False (scored lessons, assessments) leaves out the Check
    Answer button. ``expand`` expands custom tags inside question and choice
    HTML. Raises ValueError on a bad ``weight``.
    """
    quid = parse_id(attrs.get("quid"))
    if quid is None:
        return _text_span(INVALID_QUESTION)
    weight = parse_weight(attrs.get("weight"))
    body, rendered = _question_html(questions(quid), quid, attrs.get("instanceid", ""), weight,
                                    embedded=False, checkable=checkable, expand=expand)
    return f'<div class="gcb-border-box">{body}</div>' if rendered else body


def _group_members(items: list[Any], giid: str, questions: Lookup, expand: Expander
                   ) -> tuple[list[str], dict[str, Data], float]:
    rows: list[str] = []
    client: dict[str, Data] = {}
    total = 0.0
    for position, raw in enumerate(items):
        item = _dict(raw)
        quid = parse_id(str(item.get("question", "")))
        if quid is None:
            rows.append(f"<li>{_text_span(INVALID_QUESTION)}</li>")
            continue
        weight = number(item.get("weight"), 1.0)
        member_iid = f"{giid}.{position}.{quid}"
        member, rendered = _question_html(questions(quid), quid, member_iid, weight,
                                          embedded=True, checkable=False, expand=expand)
        rows.append(f"<li>{member}</li>")
        if rendered:
            client[member_iid] = {"question": str(quid), "weight": weight}
            total += weight
    return rows, client, total


def render_group(attrs: Mapping[str, str], questions: Lookup, groups: Lookup, *,
                 checkable: bool, expand: Expander) -> str:
    """A ``<question-group qgid instanceid>`` tag: its members numbered, one Check Answer button.

    Members get instance ids ``<group instanceid>.<position>.<quid>``. The
    introduction is emitted as written, without tag expansion (as Course
    Builder does).
    """
    qgid = parse_id(attrs.get("qgid"))
    if qgid is None:
        return _text_span(INVALID_QUESTION)
    data = groups(qgid)
    if data is None:
        return _text_span(GROUP_DELETED)
    giid = attrs.get("instanceid", "")
    rows, client, total = _group_members(_list(data.get("items")), giid, questions, expand)
    parts = [
        '<div class="gcb-border-box">',
        f'<div id="{_esc(giid)}" class="qt-question-group" data-qgid="{qgid}">',
        f'<div class="qt-points">{points_label(total)}</div>',
        f'<div class="qt-introduction">{_str(data.get("introduction"))}</div>',
        f'<ol class="qt-question-group-items">{"".join(rows)}</ol>',
        _check_button() if checkable else "",
        _feedback_div(),
        _data_script(giid, {"qgid": str(qgid), "items": client}),
        "</div></div>",
    ]
    return "".join(parts)


# --- grading (the browser's formulas) -------------------------------------------

_JS_FLOAT = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
# JavaScript's String.prototype.trim / parseFloat whitespace (ASCII and Unicode spaces)
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008" \
            "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def js_parse_float(text: str) -> float:
    """JavaScript's ``parseFloat``: the longest leading number, NaN when there is none."""
    match = _JS_FLOAT.match(text.lstrip(_JS_SPACE))
    if match is None:
        return math.nan
    return float(match.group().replace("Infinity", "inf"))


def js_round2(value: float) -> float:
    """``Math.round(value * 100) / 100`` (halves go up, unlike Python's ``round``)."""
    return math.floor(value * 100 + 0.5) / 100


def _clamp01(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def grade_mc(data: Mapping[str, Any], checked: list[int]) -> float:
    """The score of a multiple-choice answer: the checked choices' scores summed, in [0, 1], 2 dp.

    ``data`` is the question's data (``all_or_nothing_grading``) or its client
    data (``allOrNothingGrading``); indexes out of range are ignored.
    """
    choices = _list(data.get("choices"))
    picked = sorted({i for i in checked if 0 <= i < len(choices)})
    score = js_round2(_clamp01(sum(number(_dict(choices[i]).get("score")) for i in picked)))
    if data.get("all_or_nothing_grading") or data.get("allOrNothingGrading"):
        score = 1.0 if score > CORRECT_CUTOFF else 0.0
    return score


_SLASHED = re.compile(r"/(.*)/([gim]*)")
_NAMED_GROUP = re.compile(r"\(\?<(?![=!])")
_NAMED_BACKREF = re.compile(r"\\k<([A-Za-z_][A-Za-z0-9_]*)>")


def js_regex(pattern: str) -> re.Pattern[str]:
    """A grader's ``regex`` response as Python; ``/body/flags`` as Course Builder reads it.

    Like the client, the slashes are searched anywhere in the text (not only
    at its ends). Flags ``i`` and ``m`` carry over; ``g`` changes nothing for
    one test. Named groups are translated; other JavaScript-only syntax fails
    to compile (re.error), which the caller treats as no match.
    """
    flags = 0
    slashed = _SLASHED.search(pattern)
    if slashed is not None:
        pattern = slashed.group(1)
        flags |= re.IGNORECASE if "i" in slashed.group(2) else 0
        flags |= re.MULTILINE if "m" in slashed.group(2) else 0
    pattern = _NAMED_BACKREF.sub(r"(?P=\1)", _NAMED_GROUP.sub("(?P<", pattern))
    return re.compile(pattern, flags)


def sa_matches(matcher: str, expected: str, response: str) -> bool:
    """Whether one grader (``matcher``, its ``response`` text ``expected``) accepts ``response``."""
    if matcher == "case_insensitive":
        return expected.lower() == response.lower()
    if matcher == "regex":
        try:
            return js_regex(expected).search(response) is not None
        except re.error:
            return False
    if matcher == "numeric":
        return js_parse_float(expected) == js_parse_float(response)
    return False


def grade_sa(data: Mapping[str, Any], response: str) -> float:
    """The score of a short answer: the first accepting grader's score in [0, 1], else 0."""
    for raw in _list(data.get("graders")):
        grader = _dict(raw)
        if sa_matches(_str(grader.get("matcher")), _answer_text(grader.get("response")), response):
            return _clamp01(number(grader.get("score")))
    return 0.0


def grade_group(members: list[tuple[float, float]]) -> float:
    """A group's score from its members' ``(weight, score)``: Σ(w × s) / (Σw + 1e-12)."""
    total = sum(weight for weight, _ in members)
    return sum(weight * score for weight, score in members) / (total + 1e-12)


def verdict(score: float) -> str:
    """``correct``, ``incorrect`` or ``partially-correct``, by Course Builder's cutoffs."""
    if score > CORRECT_CUTOFF:
        return "correct"
    if score < INCORRECT_CUTOFF:
        return "incorrect"
    return "partially-correct"
