"""The admin's pages in a real browser: sign in, add a course, change its
settings, make an app-specific password and copy it. Set
``COURSEPORT_SCREENSHOTS=DIR`` to keep the screenshots (docs/img/ has them)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator

import pytest

from browser import assert_no_errors, browser_context, screenshot  # noqa: F401
from conftest import cli_at
from servers import ADMIN, ADMIN_PASSWORD, Server
from web import course_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with course_server(tmp_path, live_sample=None) as running:
        yield running


def test_admin_journey(server: Server, browser_context, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shots = Path(os.environ.get("COURSEPORT_SCREENSHOTS") or tmp_path)
    page = browser_context.new_page()
    page.goto(f"{server.url}/admin")
    page.wait_for_url("**/accounts/signin?continue=%2Fadmin")
    page.fill("#email", ADMIN)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin")

    page.fill("#course-name", "poetry")
    page.fill("#course-title", "Poetry in Motion")
    page.select_option("#course-template", "sample")
    page.click("#create-course-form button[type=submit]")
    page.click("text=Poetry in Motion")
    page.select_option("#availability", "public")
    page.uncheck("input[name=can_record_student_events]")
    page.click("#course-settings-form button[type=submit]")
    assert page.inner_text("[role=status]") == "Saved."
    screenshot(page, shots / "admin-course-settings.png")
    assert "availability = public" in cli_at(server.home, "settings", "list", "--course",
                                                             "/poetry").stdout

    page.click("text=App passwords")
    page.fill("#password-name", "my laptop")
    page.click("#create-form button[type=submit]")
    password = page.inner_text("#new-password")
    assert re.fullmatch(r"([a-z0-9]{4} ){5}[a-z0-9]{4}", password)
    browser_context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("#copy-password")
    page.wait_for_function("document.getElementById('copy-password').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == password
    assert_no_errors(browser_context)
