"""Course Builder's custom HTML tags (spec §5.3), expanded in author HTML.

Unlike Course Builder, which parses the whole fragment and serializes it
again, :func:`expand` splices: it finds the registered tags, renders each
one and copies everything else through byte for byte (unknown tags,
comments, ``<script>`` blocks, entities, malformed markup).

Finding the tags follows the HTML tokenizer closely enough for author
content: comments, ``<!...>``/``<?...>`` declarations and the bodies of
raw-text elements (``script``, ``style``, ``textarea``, ``title``,
``iframe``, ...) are skipped; every other start tag is matched whole, so a
``<question`` inside an attribute value is not a tag. A registered tag's
body runs to its matching close tag (same-named tags nest); without one,
or written ``<tag ... />``, the body is empty and the element ends with its
start tag.

Every attribute value a renderer emits is escaped; URLs must be http(s),
protocol-relative or relative.
"""

from __future__ import annotations

import html as html_lib
import posixpath
import re
import secrets
from dataclasses import dataclass, field
from typing import Callable, Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import markdown

from . import questions as qt

#: how many times renderer output is expanded again (a gcb-include of itself stops here)
MAX_DEPTH = 8

YOUTUBE_JS = "/static/courseport/youtube.js"
HTML5VIDEO_JS = "/static/courseport/html5video.js"

DUPLICATE_ID = ('<span class="gcb-error-tag">Error processing custom HTML tag: duplicate tag id'
                "</span>")


@dataclass
class TagEnv:
    """What tag renderers may read, and the per-page state they share."""

    questions: Callable[[int], dict | None]  # parsed QuestionEntity.data by id, None if absent
    groups: Callable[[int], dict | None]  # parsed QuestionGroupEntity.data by id
    read_file: Callable[[str], bytes | None]  # a course file by absolute course path
    record_events: bool  # the course records student events: tracking video players
    standalone_questions: bool = True  # False in scored lessons and assessments: no Check button
    seen: set[str] = field(default_factory=set)  # instanceids already used on this page
    counter: list[int] = field(default_factory=lambda: [0])  # tracking YouTube players so far
    page_url: str = ""  # the page's URL, for gcb-googlegroup's parenturl (optional)


class TagError(Exception):
    """A tag that cannot be rendered; the message is shown in the page."""


def error_span(message: str) -> str:
    return f'<span class="gcb-error-tag">Invalid HTML tag: {html_lib.escape(message)}</span>'


# --- finding tags ---------------------------------------------------------------

#: the tag names expand() recognises (lower-case; matched case-insensitively)
TAG_NAMES = frozenset({
    "gcb-youtube", "gcb-html5video", "gcb-iframe", "gcb-googledoc", "gcb-googlespreadsheet",
    "gcb-googlegroup", "gcb-include", "gcb-markdown", "gcb-math", "gcb-code", "gcb-activity",
    "question", "question-group",
})
# elements whose content is text to the HTML tokenizer: no tags inside
_RAW_TEXT = ("script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes")

_SP = "\t\n\f\r "
_NAME_END = f"(?=[{_SP}/>])"
_TAG_NAME = f"[a-zA-Z][^{_SP}/>]*+"
# What follows a start tag's name, up to its ">". Quotes only open a value after
# "="; possessive and atomic parts keep a tag that lacks its ">" from
# backtracking exponentially.
_ATTRS = (rf"(?>[{_SP}/]++|[^{_SP}/>][^{_SP}/>=]*+"
          rf"(?>[{_SP}]*+=[{_SP}]*+(?>\"[^\"]*+\"|'[^']*+'|[^{_SP}>]*+))?)*+")
_REGISTERED_NAMES = "|".join(sorted(TAG_NAMES, key=len, reverse=True))
_REGISTERED = f"(?:{_REGISTERED_NAMES}){_NAME_END}"
_RAW_OR_REGISTERED = f"(?:{'|'.join(_RAW_TEXT)}|{_REGISTERED_NAMES}){_NAME_END}"
# The common start tags, cheaply: not beginning like a raw-text or registered name.
_PLAIN_START = r"(?!s(?:cript|tyle)|t(?:extarea|itle)|xmp|iframe|no(?:embed|frames)|gcb-|question)"
# Everything up to the next registered start or end tag, in one match: text,
# comments, declarations, other tags whole (a "<question" inside an attribute
# value is no tag) and raw-text elements with their content. A tag that never
# reaches its ">" holds the rest of the text, as in HTML.
_SKIP = re.compile(
    "(?:[^<]++|<(?:"
    rf"{_PLAIN_START}{_TAG_NAME}{_ATTRS}>"
    rf"|/(?!gcb-|question){_TAG_NAME}[^>]*+>"
    "|!(?:-->|--->|--.*?--!?>|--.*+)"
    "|[!?][^>]*+>?"
    rf"|(?!{_RAW_OR_REGISTERED}){_TAG_NAME}{_ATTRS}>"
    rf"|/(?!{_REGISTERED}){_TAG_NAME}[^>]*+>"
    "|/(?![a-zA-Z])[^>]*+>?"  # "</" not followed by a letter: a bogus comment
    + "".join(rf"|{name}{_NAME_END}{_ATTRS}>(?:.*?</{name}{_NAME_END}[^>]*+>|.*+)"
              for name in _RAW_TEXT)
    + rf"|/?(?!{_REGISTERED})[a-zA-Z].*+"  # a tag without its ">"
    "|(?![a-zA-Z/!?])"  # "<" that is text
    "))*+",
    re.IGNORECASE | re.DOTALL,
)
_START_TAG = re.compile(rf"<({_TAG_NAME})({_ATTRS})>")
_END_TAG = re.compile(rf"</({_TAG_NAME})[^>]*+>")
_ATTR = re.compile(
    rf"([^{_SP}/>][^{_SP}/>=]*+)(?>[{_SP}]*+=[{_SP}]*+(\"[^\"]*+\"|'[^']*+'|[^{_SP}>]*+))?"
)


@dataclass(slots=True)
class _Tag:
    name: str  # lower-case
    start: int
    end: int  # just after its ">"
    attrs: str  # the source between the name and ">" ("" for end tags)
    closing: bool


def _scan(text: str) -> Iterator[_Tag]:
    """The registered tags of ``text``, start and end, in order, as the HTML tokenizer sees them."""
    pos, size = 0, len(text)
    while True:
        skipped = _SKIP.match(text, pos)
        assert skipped is not None  # it matches "" at least
        pos = skipped.end()
        if pos >= size:
            return
        if (start_tag := _START_TAG.match(text, pos)) is not None:
            yield _Tag(start_tag.group(1).lower(), pos, start_tag.end(), start_tag.group(2), False)
            pos = start_tag.end()
        elif (end_tag := _END_TAG.match(text, pos)) is not None:
            yield _Tag(end_tag.group(1).lower(), pos, end_tag.end(), "", True)
            pos = end_tag.end()
        else:
            return  # a registered tag without its ">": the rest of the text is inside it


def parse_attrs(source: str) -> tuple[dict[str, str], bool]:
    """A start tag's attributes (names lower-cased, values unescaped, first one wins)
    and whether the tag ends with ``/>``."""
    attrs: dict[str, str] = {}
    last = 0
    for match in _ATTR.finditer(source):
        value = match.group(2) or ""
        if value[:1] in ("'", '"'):
            value = value[1:-1]
        attrs.setdefault(match.group(1).lower(), html_lib.unescape(value))
        last = match.end()
    return attrs, source[last:].endswith("/")


@dataclass(slots=True)
class _Element:
    name: str
    start: int
    end: int  # after the close tag, or after the start tag when there is none
    attrs: dict[str, str]
    body: str


def _elements(text: str, names: frozenset[str]) -> Iterator[_Element]:
    """The outermost elements of ``text`` named in ``names``, with their bodies."""
    tags = [t for t in _scan(text) if t.name in names]  # names: TAG_NAMES or a subset
    closes: dict[int, int] = {}  # index of a start tag -> index of its close tag
    open_tags: dict[str, list[int]] = {}
    parsed: dict[int, tuple[dict[str, str], bool]] = {}
    for i, tag in enumerate(tags):
        if tag.closing:
            stack = open_tags.get(tag.name)
            if stack:
                closes[stack.pop()] = i
            continue
        parsed[i] = parse_attrs(tag.attrs)
        if not parsed[i][1]:
            open_tags.setdefault(tag.name, []).append(i)
    pos = 0
    for i, tag in enumerate(tags):
        if tag.closing or tag.start < pos:
            continue
        close = closes.get(i)
        if close is None:
            yield _Element(tag.name, tag.start, tag.end, parsed[i][0], "")
            pos = tag.end
        else:
            end_tag = tags[close]
            yield _Element(tag.name, tag.start, end_tag.end, parsed[i][0],
                           text[tag.end:end_tag.start])
            pos = end_tag.end


# --- expansion ------------------------------------------------------------------

Renderer = Callable[[dict[str, str], str, TagEnv], str]
_RENDERERS: dict[str, Renderer] = {}
# renderers that expand the parts of their output that should be expanded themselves
_SELF_EXPANDING: dict[str, Callable[[dict[str, str], TagEnv, Callable[[str], str]], str]] = {}

_HINT = re.compile(r"<(?:gcb-|question)", re.IGNORECASE)


def expand(html: str, env: TagEnv) -> str:
    """``html`` with every registered custom tag replaced by its rendering."""
    return _expand(html, env, 0)


def _expand(text: str, env: TagEnv, depth: int) -> str:
    if _HINT.search(text) is None:
        return text
    out: list[str] = []
    last = 0
    for element in _elements(text, TAG_NAMES):
        out.append(text[last:element.start])
        out.append(_render(element, env, depth))
        last = element.end
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _render(element: _Element, env: TagEnv, depth: int) -> str:
    iid = element.attrs.get("instanceid")
    if iid:
        if iid in env.seen:
            return DUPLICATE_ID
        env.seen.add(iid)
    if depth >= MAX_DEPTH:
        return error_span("custom tags nested too deeply")
    try:
        special = _SELF_EXPANDING.get(element.name)
        if special is not None:
            return special(element.attrs, env, lambda part: _expand(part, env, depth + 1))
        rendered = _RENDERERS[element.name](element.attrs, element.body, env)
    except Exception as exc:  # a broken tag shows an error, it does not break the page
        return error_span(str(exc) or type(exc).__name__)
    return _expand(rendered, env, depth + 1)


def component_ids(html: str) -> list[str]:
    """The instanceids of the ``question``/``question-group`` tags of a fragment, in order,
    without repeats (the components progress tracking counts)."""
    ids: list[str] = []
    for element in _elements(html, TAG_NAMES):
        if element.name in ("question", "question-group"):
            iid = element.attrs.get("instanceid")
            if iid and iid not in ids:
                ids.append(iid)
        elif element.name == "gcb-markdown":
            ids.extend(i for i in component_ids(html_lib.unescape(element.body)) if i not in ids)
    return ids


# --- helpers for renderers ------------------------------------------------------

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def random_id() -> str:
    """A 12-character ``[A-Za-z0-9]`` id, the shape of Course Builder's instance ids."""
    number = secrets.randbelow(62 ** 12)
    digits = []
    for _ in range(12):
        number, digit = divmod(number, 62)
        digits.append(_ALNUM[digit])
    return "".join(digits)


def _attr(value: str) -> str:
    return html_lib.escape(value, quote=True)


def _js_string(value: str) -> str:
    """A JavaScript string literal that is safe inside an HTML ``<script>`` element."""
    return qt.script_json(value)


_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")
_URL_IGNORED = re.compile(r"[\x00-\x20]")


def safe_url(url: str) -> str:
    """``url`` when it is http(s), protocol-relative or relative; TagError otherwise.

    Browsers drop control characters and spaces around (and tabs and newlines
    inside) a URL before reading its scheme, so the check does too.
    """
    probe = _URL_IGNORED.sub("", url)
    scheme = _SCHEME.match(probe)
    if scheme is not None and scheme.group(1).lower() not in ("http", "https"):
        raise TagError(f"unsupported URL scheme: {scheme.group(1)}")
    return url.strip(" \t\n\r\f")


def _https_url(link: str) -> tuple[str, str, str, str]:
    """``link``'s host, path, query and fragment; it must be an http(s) or ``//`` URL."""
    safe_url(link)
    parts = urlsplit(link.strip())
    if parts.scheme.lower() not in ("http", "https", "") or not parts.netloc:
        raise TagError(f"not a web address: {link}")
    return parts.netloc, parts.path, parts.query, parts.fragment


def _whole_number(value: str, default: str) -> str:
    value = value.strip() or default
    if not value.isascii() or not value.isdigit():
        raise TagError(f"not a whole number: {value}")
    return value


# --- renderers ------------------------------------------------------------------

_YT_ID = r"([A-Za-z0-9_-]+)"
_YOUTUBE_FORMS = [re.compile(p) for p in (
    rf"youtu\.be/{_YT_ID}",
    rf"youtube\.[a-z.]+/watch\?(?:[^#]*?&)?v={_YT_ID}",
    rf"/watch/{_YT_ID}",
    rf"/embed/{_YT_ID}",
    rf"/v/{_YT_ID}",
    rf"attribution_link.*?u=(?:/|%2F)watch%3Fv%3D{_YT_ID}",
)]
_YOUTUBE_BARE = re.compile(r"[A-Za-z0-9_-]{11,}")


def youtube_id(value: str) -> str | None:
    """The video id in a ``gcb-youtube`` ``videoid``: a YouTube URL in any usual form, or an id."""
    value = value.strip()
    for form in _YOUTUBE_FORMS:
        match = form.search(value)
        if match is not None:
            return match.group(1)
    return value if _YOUTUBE_BARE.fullmatch(value) else None


def _youtube(attrs: dict[str, str], body: str, env: TagEnv) -> str:
    video = youtube_id(attrs.get("videoid", ""))
    if video is None:
        raise TagError("invalid YouTube video id")
    if not env.record_events:
        return ('<div class="gcb-video-container"><iframe class="youtube-player" '
                'title="YouTube Video Player" type="text/html" frameborder="0" '
                'allowfullscreen="allowfullscreen" '
                f'src="https://www.youtube.com/embed/{video}?feature=player_embedded&amp;rel=0">'
                "</iframe></div>")
    element_id = random_id()
    env.counter[0] += 1  # youtube.js numbers the players 0, 1, 2... in the same order
    return (f'<p id="{element_id}"><script src="{YOUTUBE_JS}"></script>'
            f'<script>gcbTagYoutubeEnqueueVideo("{video}", "{element_id}");</script></p>')


def _html5video(attrs: dict[str, str], body: str, env: TagEnv) -> str:
    url = safe_url(attrs.get("url", ""))
    video_id = attrs.get("instanceid") or random_id()
    size = "".join(f' {name}="{_attr(attrs[name])}"' for name in ("width", "height")
                   if attrs.get(name))
    tracking = ""
    if env.record_events:
        tracking = (f'<script src="{HTML5VIDEO_JS}"></script>'
                    f"<script>gcbTagHtml5VideoTrack({_js_string(video_id)});</script>")
    return (f'<div><video id="{_attr(video_id)}" src="{_attr(url)}"{size} controls="true">'
            f"</video>{tracking}</div>")


def _quote_url(url: str) -> str:
    """Percent-quote an URL's path and query (keeping what already is percent-encoded)."""
    parts = urlsplit(url)
    path = quote(parts.path, safe="/%:@!$&'()*+,;=~")
    query = quote(parts.query, safe="=?&;%/:@!$'()*+,~")
    fragment = quote(parts.fragment, safe="=?&;%/:@!$'()*+,~#")
    return urlunsplit((parts.scheme, parts.netloc, path, query, fragment))


def _iframe(attrs: dict[str, str], body: str, env: TagEnv) -> str:
    src = _quote_url(safe_url(attrs.get("src", "")))
    height = attrs.get("height") or "400"
    width = attrs.get("width") or "650"
    return (f'<iframe style="border: 0;" src="{_attr(src)}" title="{_attr(attrs.get("title", ""))}"'
            f' width="{_attr(width)}" height="{_attr(height)}"></iframe>')


def _google_frame(kind: str, title: str, src: str, height: str) -> str:
    return (f'<iframe class="{kind}" title="{title}" type="text/html" frameborder="0" '
            f'src="{_attr(src)}" style="width: 700px; height: {height}px"></iframe>')


def _googledoc(attrs: dict[str, str], body: str, env: TagEnv) -> str:
    host, path, _, _ = _https_url(attrs.get("link", ""))
    height = _whole_number(attrs.get("height", ""), "300")
    src = urlunsplit(("https", host, path, "embedded=true", ""))
    return _google_frame("google-doc", "Google Doc", src, height)


def _googlespreadsheet(attrs: dict[str, str], body: str, env: TagEnv) -> str:
    link = attrs.get("link", "").strip()
    _https_url(link)
    height = _whole_number(attrs.get("height", ""), "300")
    cut = link.find("&output")
    kept = urlsplit(link if cut < 0 else link[:cut])
    src = urlunsplit(("https", kept.netloc, kept.path, kept.query, kept.fragment)) + "&chrome=false"
    return _google_frame("google-spreadsheet", "Google Spreadsheet", src, height)


def _googlegroup(attrs: dict[str, str], body: str, env: TagEnv) -> str:
    group = quote(attrs.get("group", ""), safe="")
    category = quote(attrs.get("category", ""), safe="")
    parent = ""
    page_host = urlsplit(env.page_url).hostname or ""
    if env.page_url and page_host != "localhost":
        parent = "?parenturl=" + quote(env.page_url, safe="")
    src = f"https://groups.google.com/forum/embed/{parent}#!categories/{group}/{category}"
    return ('<p><iframe class="forum-embed" title="Google Group Embed" type="text/html" '
            f'width="700" height="300" frameborder="0" src="{_attr(src)}"></iframe></p>')


def _include_path(raw: str) -> str:
    path = raw.strip()
    if not path.startswith("/"):
        path = "/" + path
    segments = path.split("/")
    if "\\" in path or "\x00" in path or ".." in segments or "." in segments:
        raise TagError(f"invalid include path: {raw}")
    path = posixpath.normpath(path)
    if not path.startswith("/assets/"):
        raise TagError(f"gcb-include can only include files under /assets/: {raw}")
    return path


def _include(attrs: dict[str, str], body: str, env: TagEnv) -> str:
    # Course Builder renders the included file as a Jinja template. A course
    # file is not trusted to run template code here: it is inlined as HTML
    # (its custom tags are still expanded).
    path = _include_path(attrs.get("path", ""))
    content = env.read_file(path)
    if content is None:
        raise TagError(f"file not found: {path}")
    return content.decode("utf-8", errors="replace")


# Python-Markdown's own extensions; any other name would import arbitrary code
_MARKDOWN_EXTENSIONS = frozenset({
    "abbr", "admonition", "attr_list", "def_list", "extra", "fenced_code", "footnotes",
    "legacy_attrs", "legacy_em", "md_in_html", "meta", "nl2br", "sane_lists", "smarty",
    "tables", "toc", "wikilinks",
})


def _markdown_extensions(spec: str) -> list[str]:
    names = []
    for name in spec.split():
        short = name.removeprefix("markdown.extensions.")
        if short not in _MARKDOWN_EXTENSIONS:
            raise TagError(f"unsupported Markdown extension: {name}")
        names.append(short)
    return names


def _markdown(attrs: dict[str, str], body: str, env: TagEnv) -> str:
    extensions = _markdown_extensions(attrs.get("extension", ""))
    rendered = markdown.markdown(html_lib.unescape(body), extensions=extensions)
    return f'<div class="gcb-markdown">{rendered}</div>'


_SCRIPT_BREAKERS = re.compile(r"<(?=/script|!--)", re.IGNORECASE)


def _math(attrs: dict[str, str], body: str, env: TagEnv) -> str:
    kind = "math/mml" if attrs.get("input_type", "").strip().upper() == "MML" else "math/tex"
    # the formula is script text: it must not close the script or open a comment
    formula = _SCRIPT_BREAKERS.sub("<\\\\", html_lib.unescape(body))
    return f'<script type="{kind}">{formula}</script>'


def _code(attrs: dict[str, str], body: str, env: TagEnv) -> str:
    code = html_lib.escape(html_lib.unescape(body), quote=False)
    mode = _attr(attrs.get("mode", ""))
    return f'<code class="codemirror-container-readonly" data-mode="{mode}">{code}</code>'


_PLAIN_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _activity(attrs: dict[str, str], body: str, env: TagEnv) -> str:
    activity = attrs.get("activityid", "").strip()
    if not _PLAIN_FILE.fullmatch(activity) or ".." in activity:
        raise TagError(f"invalid activity id: {activity}")
    return (f'<div><script src="assets/js/{activity}"></script>'
            '<div id="activityContents"></div></div>')


def _with_instanceid(attrs: dict[str, str]) -> dict[str, str]:
    if attrs.get("instanceid"):
        return attrs
    return {**attrs, "instanceid": random_id()}


def _question(attrs: dict[str, str], env: TagEnv, expand_part: Callable[[str], str]) -> str:
    return qt.render_question(_with_instanceid(attrs), env.questions,
                              checkable=env.standalone_questions, expand=expand_part)


def _question_group(attrs: dict[str, str], env: TagEnv, expand_part: Callable[[str], str]) -> str:
    return qt.render_group(_with_instanceid(attrs), env.questions, env.groups,
                           checkable=env.standalone_questions, expand=expand_part)


_RENDERERS.update({
    "gcb-youtube": _youtube,
    "gcb-html5video": _html5video,
    "gcb-iframe": _iframe,
    "gcb-googledoc": _googledoc,
    "gcb-googlespreadsheet": _googlespreadsheet,
    "gcb-googlegroup": _googlegroup,
    "gcb-include": _include,
    "gcb-markdown": _markdown,
    "gcb-math": _math,
    "gcb-code": _code,
    "gcb-activity": _activity,
})
_SELF_EXPANDING.update({"question": _question, "question-group": _question_group})
assert TAG_NAMES == frozenset(_RENDERERS) | frozenset(_SELF_EXPANDING)
