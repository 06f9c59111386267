"""The admin's journey in a real browser (issue 9): sign in, add a course, turn
event recording on, make an app-specific password and use it with the command
line, then download the course's datastore with --privacy from the page,
watching it run, and check the zip against the command line's; start another
and cancel it with the button the live table draws. Set
``COURSEPORT_SCREENSHOTS=DIR`` to keep the screenshots (docs/img/ has them)."""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
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
    page.check("input[name=can_record_student_events]")
    page.click("#course-settings-form button[type=submit]")
    assert page.inner_text("[role=status]") == "Saved."
    screenshot(page, shots / "admin-course-settings.png")
    course_settings = cli_at(server.home, "settings", "list", "--course", "/poetry").stdout
    assert "availability = public" in course_settings and "can_record_student_events = on" in course_settings
    page.click("text=Site settings")
    page.select_option("#setting-record_events", "on")
    page.click("#settings-form button[type=submit]")
    assert "record_events\ton\t" in cli_at(server.home, "settings", "list").stdout
    # learners come (written as the server writes them), so there is a datastore to download
    assert cli_at(server.home, "populate", "/poetry", "--students", str(LEARNERS)).returncode == 0

    page.click("text=App passwords")
    page.fill("#password-name", "my laptop")
    page.click("#create-form button[type=submit]")
    password = page.inner_text("#new-password")
    assert re.fullmatch(r"([a-z0-9]{4} ){5}[a-z0-9]{4}", password)
    browser_context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("#copy-password")
    page.wait_for_function("document.getElementById('copy-password').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == password
    signed_in = {"COURSEPORT_EMAIL": ADMIN, "COURSEPORT_APP_PASSWORD": password}
    through_server = tmp_path / "through-server.zip"
    proc = cli_at(server.home, "download", "datastore", "/poetry", "localhost", "--port", server.port,
                  "--archive_path", through_server, extra_env=signed_in)
    assert proc.returncode == 0, proc.stderr
    page.goto(f"{server.url}/admin/app-passwords")
    assert "never" not in page.locator("#app-passwords tr", has_text="my laptop").inner_text()  # last used: now

    page.click("text=Archives")
    page.select_option("#export-course", "/poetry")
    page.select_option("#export-type", "datastore")
    page.check("#export-privacy")
    page.fill("#export-secret", SECRET)
    page.click("#export-form button[type=submit]")
    page.wait_for_url("**/admin/archives?started=*")
    page.evaluate("window.notReloaded = true")
    # live: the poll shows the rate while it runs, then the finished job, without a reload
    page.wait_for_selector("tr[data-state=running] .cp-job-rate:has-text('rows/s')", timeout=30_000)
    screenshot(page, shots / "admin-export-running.png")
    page.wait_for_selector("tr[data-state=done]", timeout=120_000)
    assert page.evaluate("window.notReloaded") is True
    row = page.locator("tr[data-state=done]").first
    assert "privacy, with the admin's secret" in row.inner_text()
    screenshot(page, shots / "admin-export-done.png")
    with page.expect_download() as download_info:
        row.locator("a[download]").click()
    in_browser = tmp_path / "in-browser.zip"
    download_info.value.save_as(in_browser)

    assert cli_at(server.home, "verify", "--archive_path", in_browser).returncode == 0
    by_cli = tmp_path / "by-cli.zip"
    proc = cli_at(server.home, "download", "datastore", "/poetry", "localhost", "--port", server.port,
                  "--archive_path", by_cli, "--privacy", "--privacy_secret", SECRET, extra_env=signed_in)
    assert proc.returncode == 0, proc.stderr
    browser_members, cli_members = members(in_browser), members(by_cli)
    assert browser_members == cli_members and b"@example" not in browser_members["models/Student.json"]
    assert len(json.loads(browser_members["models/Student.json"])["rows"]) == LEARNERS

    # another download, changed minds: its Cancel button (drawn by the poll) stops it
    page.click("text=Archives")
    page.select_option("#export-course", "/poetry")
    page.check("#export-privacy")
    page.click("#export-form button[type=submit]")
    page.wait_for_url("**/admin/archives?started=*")
    page.wait_for_selector("tr[data-state=running] .cp-job-rate", timeout=30_000)  # redrawn by the poll
    page.locator("tr[data-state=running] button", has_text="Cancel").click()
    page.wait_for_selector("text=Cancelling job")
    cancelled = page.wait_for_selector("tr[data-state=cancelled]", timeout=30_000)
    assert "cancelled by " + ADMIN in cancelled.inner_text()
    assert not [name for name in os.listdir(server.home / "exports") if name.endswith((".partial", ".zip"))
                and name != row.locator("a[download]").inner_text()]
    assert_no_errors(browser_context)


LEARNERS = 10_000
SECRET = "the admin's privacy secret"


def members(path: Path) -> dict[str, bytes]:
    """The archive's members, rows as they were written (the manifest, which dates itself, aside)."""
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
        return {name: archive.read(name) for name in archive.namelist() if name != "manifest.json"}
