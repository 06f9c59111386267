"""The browser harness works: Chromium clicks, YouTube is faked, the outside is blocked.

A page served on 127.0.0.1 by ``serve_directory``, driven through the
``browser_context`` fixture of ``tests/browser.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from browser import assert_no_errors, browser_context, screenshot, serve_directory, stub_youtube  # noqa: F401

BUTTON_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>button</title></head>
<body>
  <button id="go" onclick="this.textContent = 'clicked'">click me</button>
</body></html>
"""

YOUTUBE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>video</title></head>
<body>
  <div id="player"></div>
  <script>
    window.log = [];
    window.ready = false;
    window.onYouTubeIframeAPIReady = function () {
      window.player = new YT.Player("player", {
        videoId: "abc123XYZ_0", width: 320, height: 180, playerVars: {rel: 0},
        events: {
          onReady: function () { window.ready = true; },
          onStateChange: function (event) {
            window.log.push({state: event.data, time: event.target.getCurrentTime()});
          }
        }
      });
      window.timer = setInterval(function () {
        window.log.push({state: window.player.getPlayerState(), time: window.player.getCurrentTime()});
      }, 100);
    };
  </script>
  <script src="https://www.youtube.com/iframe_api"></script>
</body></html>
"""

EXTERNAL_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>external</title></head>
<body><p>outside image below</p><img id="outside" src="https://example.com/x.png" alt="outside"></body></html>
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("smoke_site")
    (root / "button.html").write_text(BUTTON_PAGE, encoding="utf-8")
    (root / "youtube.html").write_text(YOUTUBE_PAGE, encoding="utf-8")
    (root / "external.html").write_text(EXTERNAL_PAGE, encoding="utf-8")
    with serve_directory(root) as url:
        yield url


def test_click_changes_the_button_and_a_screenshot_is_written(browser_context, site: str, tmp_path: Path) -> None:
    page = browser_context.new_page()
    page.goto(f"{site}/button.html")
    button = page.locator("#go")
    assert button.text_content() == "click me"
    button.click()
    assert button.text_content() == "clicked"
    shot = screenshot(page, tmp_path / "shots" / "button.png")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 500
    assert browser_context.blocked == []
    assert_no_errors(browser_context)


def test_fake_youtube_plays_and_time_advances(browser_context, site: str) -> None:
    stub_youtube(browser_context)
    page = browser_context.new_page()
    page.goto(f"{site}/youtube.html")
    page.wait_for_function("window.ready === true", timeout=5000)
    player = page.locator(".fake-youtube-player")
    assert player.get_attribute("data-video-id") == "abc123XYZ_0"
    assert player.get_attribute("id") == "player"
    assert page.evaluate("window.YT.PlayerState") == {"ENDED": 0, "PLAYING": 1, "PAUSED": 2, "BUFFERING": 3, "CUED": 5, "UNSTARTED": -1}
    assert page.evaluate("window.__fakeYoutubePlayers.length") == 1
    assert page.evaluate("window.player.getDuration()") == 300

    page.evaluate("window.__fakeYoutubePlayers[0].playVideo()")
    page.wait_for_function("window.player.getCurrentTime() > 30", timeout=3000)
    log = page.evaluate("window.log")
    assert {"state": 1, "time": 0} in log
    assert max(entry["time"] for entry in log if entry["state"] == 1) > 0

    page.evaluate("window.player.pauseVideo()")
    paused_at = page.evaluate("window.player.getCurrentTime()")
    assert page.evaluate("window.player.getPlayerState()") == 2
    page.wait_for_timeout(250)
    assert page.evaluate("window.player.getCurrentTime()") == paused_at

    page.evaluate("window.player.seekTo(290); window.player.playVideo()")
    page.wait_for_function("window.player.getPlayerState() === 0", timeout=3000)
    states = [entry["state"] for entry in page.evaluate("window.log")]
    assert states.count(0) >= 1 and page.evaluate("window.player.getCurrentTime()") == 300
    assert browser_context.blocked == []
    assert_no_errors(browser_context)


def test_requests_off_the_machine_are_blocked(browser_context, site: str) -> None:
    page = browser_context.new_page()
    page.goto(f"{site}/external.html")
    page.wait_for_function("document.getElementById('outside').complete", timeout=5000)
    assert page.evaluate("document.getElementById('outside').naturalWidth") == 0
    assert browser_context.blocked == ["https://example.com/x.png"]
    fetched = page.evaluate(
        "fetch('https://example.org/data.json').then(() => 'loaded', (error) => 'refused: ' + error)"
    )
    assert fetched.startswith("refused"), fetched
    assert "https://example.org/data.json" in browser_context.blocked
    assert_no_errors(browser_context)  # failed loads of blocked URLs are not errors
    with pytest.raises(Exception, match="ERR_BLOCKED_BY_CLIENT"):
        browser_context.new_page().goto("https://example.com/")
    assert "https://example.com/" in browser_context.blocked


def test_errors_are_recorded(browser_context, site: str) -> None:
    page = browser_context.new_page()
    page.goto(f"{site}/button.html")
    page.evaluate("console.error('something broke')")
    page.evaluate("setTimeout(() => { throw new Error('uncaught boom'); }, 0)")
    errors = browser_context.errors
    for _ in range(40):  # the events arrive while Playwright waits
        if len(errors) >= 2:
            break
        page.wait_for_timeout(50)
    assert any("something broke" in error for error in errors), errors
    assert any("uncaught boom" in error for error in errors), errors
    with pytest.raises(AssertionError, match="uncaught boom"):
        assert_no_errors(browser_context)
