"""Browser tests: Playwright (sync API) driving Debian's Chromium, headless, offline.

Not a test module: test modules import what they use, the same way they import
``conftest`` and ``servers`` (``tests/`` is on ``sys.path``, it is no package)::

    from browser import browser_context, screenshot, serve_directory, stub_youtube  # noqa: F401

``browser_context``  fixture: a fresh Playwright ``BrowserContext`` per test, in
                     one Chromium shared by the whole session (started on first
                     use, closed when pytest ends). Every request to a host other
                     than 127.0.0.1 / localhost is aborted unless a test stubbed
                     it (routes added later win); the aborted URLs are in
                     ``context.blocked``. Console errors and uncaught page errors
                     are in ``context.errors`` (failed loads of blocked URLs are
                     left out of it); ``assert_no_errors(context)`` checks it.
``chromium_browser`` fixture: that shared Playwright ``Browser``, for tests that
                     want to make contexts of their own.
``chromium_or_skip`` the Chromium path, or skip: ``playwright`` or
                     ``/usr/bin/chromium`` missing. With
                     ``COURSEPORT_REQUIRE_BROWSER=1`` (``.ci/run`` sets it) it
                     fails instead of skipping.
``stub_youtube``     serves a fake YouTube IFrame API to a context (see below).
``serve_directory``  a stdlib HTTP server on 127.0.0.1 for a folder, in a thread.
``screenshot``       a full-page PNG of a page.

Chromium gets ``CHROMIUM_ARGS``: the flags this closed network needs as root
(no sandbox, no GPU, no background networking, component updates, sync, first
run or QUIC), and a host resolver that resolves nothing but localhost, so
nothing a route misses (a WebSocket, a DNS prefetch) leaves the machine.
Playwright's ``launch`` already gives each browser a new, empty user data dir
(it refuses ``--user-data-dir`` in ``args``).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

CHROMIUM = "/usr/bin/chromium"
REQUIRE_ENV = "COURSEPORT_REQUIRE_BROWSER"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]


# --- finding Chromium --------------------------------------------------------


def chromium_or_skip() -> str:
    """The Chromium to drive, or skip the calling test (fail under COURSEPORT_REQUIRE_BROWSER=1)."""
    missing = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "the playwright package is not installed (sh scripts/bootstrap.sh --test)"
    else:
        if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
            missing = f"{CHROMIUM} is missing (sh scripts/install-chromium.sh installs Debian's chromium)"
    if missing is None:
        return CHROMIUM
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"browser tests required ({REQUIRE_ENV}=1) but {missing}", pytrace=False)
    pytest.skip(f"browser test: {missing}")


# --- one Chromium for the session --------------------------------------------

_shared: dict[str, Any] = {}


def _close_shared() -> None:
    browser = _shared.pop("browser", None)
    driver = _shared.pop("playwright", None)
    with contextlib.suppress(Exception):
        if browser is not None:
            browser.close()
    with contextlib.suppress(Exception):
        if driver is not None:
            driver.stop()


def _shared_browser(config: pytest.Config) -> Browser:
    """Start Playwright and Chromium on first use; pytest closes them when it ends."""
    path = chromium_or_skip()
    if "browser" not in _shared:
        from playwright.sync_api import sync_playwright

        driver: Playwright = sync_playwright().start()
        _shared["playwright"] = driver
        config.add_cleanup(_close_shared)
        _shared["browser"] = driver.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
    browser: Browser = _shared["browser"]
    return browser


@pytest.fixture(scope="session")
def chromium_browser(request: pytest.FixtureRequest) -> Browser:
    """The session's shared headless Chromium (a Playwright ``Browser``)."""
    return _shared_browser(request.config)


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return (parts.hostname or "") in LOCAL_HOSTS


def offline_context(browser: Browser, **options: Any) -> BrowserContext:
    """A new context of ``browser`` that reaches only localhost and records errors.

    ``context.blocked``: URLs aborted; ``context.errors``: console errors and
    uncaught exceptions, as strings. ``options`` go to ``browser.new_context``.
    """
    options.setdefault("service_workers", "block")  # their fetches would bypass routes
    context = browser.new_context(**options)
    blocked: list[str] = []
    errors: list[str] = []

    def route_or_block(route: Any) -> None:
        url = route.request.url
        if _is_local(url):
            route.continue_()
        else:
            blocked.append(url)
            route.abort("blockedbyclient")

    def on_console(message: Any) -> None:
        if message.type != "error":
            return
        where = (message.location or {}).get("url", "")
        if where in blocked and message.text.startswith("Failed to load resource"):
            return
        errors.append(f"console.error: {message.text} ({where})")

    def on_weberror(weberror: Any) -> None:
        page = weberror.page
        errors.append(f"page error: {weberror.error}" + (f" ({page.url})" if page is not None else ""))

    context.route("**/*", route_or_block)  # registered first, so every later route wins over it

    def block_socket(ws: Any) -> None:
        if _is_local(ws.url):
            ws.connect_to_server()
        else:
            blocked.append(ws.url)
            ws.close()

    if hasattr(context, "route_web_socket"):
        context.route_web_socket(re.compile(".*"), block_socket)
    context.on("console", on_console)
    context.on("weberror", on_weberror)
    context.blocked = blocked  # type: ignore[attr-defined]
    context.errors = errors  # type: ignore[attr-defined]
    return context


@pytest.fixture
def browser_context(request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    """A fresh offline context (see ``offline_context``) of the session's Chromium."""
    context = offline_context(_shared_browser(request.config))
    try:
        yield context
    finally:
        with contextlib.suppress(Exception):
            context.close()


def assert_no_errors(context: BrowserContext) -> None:
    """Fail listing the console errors and page errors the context recorded, if any."""
    errors: list[str] = getattr(context, "errors")
    assert not errors, "browser errors:\n" + "\n".join(errors)


# --- helpers ----------------------------------------------------------------


def screenshot(page: Page, path: str | os.PathLike[str]) -> Path:
    """Save a full-page PNG of ``page`` at ``path`` (parent folders made); return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    return target


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@contextlib.contextmanager
def serve_directory(root: str | os.PathLike[str]) -> Iterator[str]:
    """Serve ``root`` over HTTP on 127.0.0.1 (a free port) in a thread; yield the base URL (no slash)."""
    handler = functools.partial(_QuietHandler, directory=os.fspath(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="serve_directory", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# --- a fake YouTube IFrame API -----------------------------------------------

_YOUTUBE_API = re.compile(r"^https?://(www\.)?youtube(-nocookie)?\.com/(iframe_api|player_api)([?#].*)?$")
_YOUTUBE_EMBED = re.compile(r"^https?://(www\.)?youtube(-nocookie)?\.com/embed/.*$")
_YTIMG = re.compile(r"^https?://([a-z0-9-]+\.)?ytimg\.com/.*$")

_FAKE_YOUTUBE_JS = r"""
(function () {
  var config = __CONFIG__;
  var State = {UNSTARTED: -1, ENDED: 0, PLAYING: 1, PAUSED: 2, BUFFERING: 3, CUED: 5};
  var players = window.__fakeYoutubePlayers = window.__fakeYoutubePlayers || [];

  function Player(elementOrId, options) {
    options = options || {};
    var self = this;
    var target = typeof elementOrId === "string" ? document.getElementById(elementOrId) : elementOrId;
    if (!target) { throw new Error("fake YT.Player: no element " + elementOrId); }
    var events = options.events || {};
    var videoId = options.videoId || "";
    var time = 0, state = State.UNSTARTED, timer = null;
    var div = document.createElement("div");
    div.className = "fake-youtube-player";
    if (target.id) { div.id = target.id; }
    div.setAttribute("data-video-id", videoId);
    div.style.width = (options.width || 640) + (/^\d+$/.test(String(options.width || 640)) ? "px" : "");
    div.style.height = (options.height || 390) + (/^\d+$/.test(String(options.height || 390)) ? "px" : "");
    div.style.background = "#222";
    div.style.color = "#eee";
    div.textContent = "fake YouTube player: " + videoId;
    if (target.parentNode) { target.parentNode.replaceChild(div, target); } else { document.body.appendChild(div); }

    function fire(name, data) {
      var handler = events[name];
      if (typeof handler === "string") { handler = window[handler]; }
      if (typeof handler === "function") { handler({target: self, data: data}); }
    }
    function setState(next) {
      state = next;
      div.setAttribute("data-state", String(next));
      fire("onStateChange", next);
    }
    function stopTimer() { if (timer !== null) { clearInterval(timer); timer = null; } }
    function tick() {
      time = Math.min(config.duration, time + config.secondsPerTick);
      if (time >= config.duration) { stopTimer(); setState(State.ENDED); }
    }

    this.videoId = videoId;
    this.options = options;
    this.playVideo = function () {
      if (state === State.PLAYING) { return; }
      if (time >= config.duration) { time = 0; }
      setState(State.PLAYING);
      stopTimer();
      timer = setInterval(tick, config.tickMs);
    };
    this.pauseVideo = function () {
      if (state !== State.PLAYING) { return; }
      stopTimer();
      setState(State.PAUSED);
    };
    this.stopVideo = function () { stopTimer(); time = 0; setState(State.CUED); };
    this.seekTo = function (seconds) { time = Math.max(0, Math.min(config.duration, Number(seconds) || 0)); };
    this.getCurrentTime = function () { return time; };
    this.getDuration = function () { return config.duration; };
    this.getPlayerState = function () { return state; };
    this.getVideoData = function () { return {video_id: videoId, title: "fake " + videoId, author: ""}; };
    this.getVideoUrl = function () { return "https://www.youtube.com/watch?v=" + videoId; };
    this.getIframe = function () { return div; };
    this.loadVideoById = function (id) { stopTimer(); time = 0; videoId = (id && id.videoId) || id; div.setAttribute("data-video-id", videoId); this.playVideo(); };
    this.cueVideoById = function (id) { stopTimer(); time = 0; videoId = (id && id.videoId) || id; div.setAttribute("data-video-id", videoId); setState(State.CUED); };
    this.mute = this.unMute = this.setVolume = this.setSize = function () {};
    this.isMuted = function () { return false; };
    this.getVolume = function () { return 100; };
    this.addEventListener = function (name, handler) { events[name] = handler; };
    this.removeEventListener = function (name) { delete events[name]; };
    this.destroy = function () { stopTimer(); var i = players.indexOf(self); if (i >= 0) { players.splice(i, 1); } if (div.parentNode) { div.parentNode.removeChild(div); } };
    players.push(this);
    setTimeout(function () { fire("onReady"); }, 0);
  }

  window.YT = {
    Player: Player,
    PlayerState: State,
    loaded: 1,
    fake: true,
    ready: function (fn) { setTimeout(fn, 0); }
  };
  setTimeout(function () {
    if (typeof window.onYouTubeIframeAPIReady === "function") { window.onYouTubeIframeAPIReady(); }
  }, 0);
})();
"""

_FAKE_EMBED_HTML = (
    "<!doctype html><meta charset=utf-8><title>fake YouTube embed</title>"
    "<body style='margin:0;background:#222;color:#eee'><div class=fake-youtube-embed>fake YouTube embed</div>"
)


def stub_youtube(
    context: BrowserContext, *, seconds_per_tick: float = 10, tick_ms: int = 100, duration: float = 300
) -> None:
    """Serve ``context`` a fake YouTube IFrame API instead of youtube.com's.

    ``https://www.youtube.com/iframe_api`` defines ``window.YT`` (``Player``,
    ``PlayerState``) and then calls ``window.onYouTubeIframeAPIReady()``.
    ``new YT.Player(elementOrId, {videoId, width, height, playerVars, events})``
    replaces the element with ``<div class="fake-youtube-player"
    data-video-id=...>`` and calls ``events.onReady`` soon after;
    ``playVideo()`` fires ``onStateChange`` with 1 and then advances
    ``getCurrentTime()`` by ``seconds_per_tick`` every ``tick_ms`` ms until
    ``duration`` (``getDuration()``), where it fires 0. ``pauseVideo()`` fires 2.
    Every player is in ``window.__fakeYoutubePlayers``. Embeds
    (``youtube.com/embed/...``) get a placeholder page, ``*.ytimg.com`` an empty
    answer.
    """
    config = json.dumps({"secondsPerTick": seconds_per_tick, "tickMs": tick_ms, "duration": duration})
    script = _FAKE_YOUTUBE_JS.replace("__CONFIG__", config)
    cors = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"}

    def api(route: Any) -> None:
        route.fulfill(status=200, content_type="text/javascript; charset=utf-8", body=script, headers=cors)

    def embed(route: Any) -> None:
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body=_FAKE_EMBED_HTML, headers=cors)

    def ytimg(route: Any) -> None:
        route.fulfill(status=204, body="", headers=cors)

    context.route(_YOUTUBE_API, api)
    context.route(_YOUTUBE_EMBED, embed)
    context.route(_YTIMG, ytimg)


__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "assert_no_errors",
    "browser_context",
    "chromium_browser",
    "chromium_or_skip",
    "offline_context",
    "screenshot",
    "serve_directory",
    "stub_youtube",
]
