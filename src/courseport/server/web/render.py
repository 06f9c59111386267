"""The pages' templates (Jinja2, autoescaped) and the responses Course Builder gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.responses import HTMLResponse, Response

TEMPLATES = Path(__file__).with_name("templates")
NO_CACHE = {
    "Cache-Control": "no-cache, must-revalidate",
    "Expires": "Mon, 01 Jan 1990 00:00:00 GMT",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "SAMEORIGIN",
}

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)


def page(name: str, status: int = 200, /, **values: Any) -> HTMLResponse:
    values.setdefault("hooks", {})
    return HTMLResponse(_env.get_template(name).render(**values), status_code=status, headers=NO_CACHE)


def fragment(name: str, /, **values: Any) -> Markup:
    """A part of a page (a lesson's or an assessment's box), rendered on its own."""
    values.setdefault("hooks", {})
    return Markup(_env.get_template(name).render(**values))


def trusted(html: str) -> Markup:
    """Course content (authored HTML, expanded tags): shown as written, as Course Builder shows it."""
    return Markup(html)


def status_page(status: int, where: str) -> Response:
    """Course Builder's plain answer for an error with no page of its own (spec §2.4)."""
    text = (f"Server error. HTTP status code: {status}." if status >= 500 else
            f"Unable to access requested page in the course {where}. HTTP status code: {status}.")
    return HTMLResponse(text, status_code=status, headers=NO_CACHE)
