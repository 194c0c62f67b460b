"""The demo, as a user sees it: headless Chromium (Debian's ``chromium``, through the
DevTools protocol) against ``python -m middleware serve examples/site.ini`` on a
free 127.0.0.1 port.

It checks what only a browser shows: the 401 and the auth challenge answered with
the demo's credentials, the stylesheet applied, the session cookie kept across
reloads, the codings Chromium is sent, the stylesheet revalidated with a 304, the
error page with its request id while the server goes on, and a screenshot that is
a real page. The screenshot is kept as an artifact in ``artifacts/`` (ignored by
git). Without chromium the test is skipped, except under ``CI=true``, where that is
a failure.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .browser import Chromium, chromium_binary, png_colours, responses
from .servers import ROOT, free_port, running_command

ARTIFACTS = ROOT / "artifacts"
USER, PASSWORD = "demo", "demo-password"  # examples/demo.htpasswd


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    binary = chromium_binary()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (CI=true): apt-get install chromium")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    profile = tmp_path / "profile"
    profile.mkdir()
    chromium = Chromium(binary, profile)  # stops the browser itself if it fails
    try:
        yield chromium
    finally:
        chromium.close()


class Credentials:
    """Answers Chromium's auth challenges: refused until :attr:`give` is set."""

    def __init__(self, browser: Chromium) -> None:
        self.browser = browser
        self.give = False
        self.challenges: list[dict[str, Any]] = []
        browser.handlers["Fetch.requestPaused"] = self.paused
        browser.handlers["Fetch.authRequired"] = self.challenged
        every = [{"urlPattern": "*"}]
        browser.call("Fetch.enable", {"handleAuthRequests": True, "patterns": every})

    def paused(self, params: dict[str, Any]) -> None:
        self.browser.send("Fetch.continueRequest", {"requestId": params["requestId"]})

    def challenged(self, params: dict[str, Any]) -> None:
        self.challenges.append(params["authChallenge"])
        answer: dict[str, Any] = {"response": "CancelAuth"}
        if self.give:
            answer = {"response": "ProvideCredentials", "username": USER}
            answer["password"] = PASSWORD
        self.browser.send(
            "Fetch.continueWithAuth",
            {"requestId": params["requestId"], "authChallengeResponse": answer},
        )


def text(browser: Chromium, selector: str) -> str:
    found: str = browser.evaluate(f"document.querySelector({selector!r}).textContent")
    return found.strip()


@pytest.mark.server
def test_the_demo_in_a_real_browser(browser: Chromium, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    home, stylesheet = f"{base}/", f"{base}/static/css/site.css"
    log = tmp_path / "serve.log"
    env = {**os.environ, "SESSION_SECRET": secrets.token_hex(32)}
    command = [
        sys.executable, "-m", "middleware", "serve", "examples/site.ini",
        "--port", str(port),
    ]  # fmt: skip
    with running_command(command, port, log, env=env) as server:
        browser.call("Network.enable")
        browser.call("Page.enable")
        credentials = Credentials(browser)

        # Without credentials: refused, with a Basic challenge for the demo's realm.
        start = browser.navigate(home)
        assert responses(browser.events[start:])[home]["status"] == 401
        assert credentials.challenges[-1]["scheme"].lower() == "basic"
        assert credentials.challenges[-1]["realm"] == "Demo"
        assert "stranger" not in browser.evaluate("document.body.innerText")

        # With them, through the challenge: the page, compressed with what
        # Chromium asks for first among the codings we offer (br or zstd).
        credentials.give = True
        start = browser.navigate(home)
        seen = responses(browser.events[start:])
        assert seen[home]["status"] == 200
        assert text(browser, "h1") == f"Hello, {USER}"
        assert text(browser, "#visits") == "1"
        assert seen[home]["headers"]["content-encoding"] in ("br", "zstd")
        assert seen[stylesheet]["status"] == 200
        assert seen[stylesheet]["headers"]["content-encoding"] in ("br", "zstd")

        # The stylesheet is applied: the counter's colour and weight come only
        # from examples/public/css/site.css.
        style = browser.evaluate(
            "(() => { const s = getComputedStyle(document.querySelector('.counter'));"
            " return [s.color, s.fontWeight]; })()"
        )
        assert style == ["rgb(42, 111, 151)", "700"]

        # Three reloads: the session cookie is kept and the counter goes up.
        for expected in ("2", "3", "4"):
            browser.reload()
            assert text(browser, "#visits") == expected
        cookies = browser.call("Network.getCookies", {"urls": [home]})["cookies"]
        assert [c["name"] for c in cookies] == ["demo_session"]
        assert cookies[0]["httpOnly"]

        # The stylesheet revalidated: a reload checks the page itself with the
        # server and takes its fresh (max-age=1h) subresources from the cache, so
        # the stylesheet is opened and reloaded: If-None-Match, then a 304.
        browser.navigate(stylesheet)
        start = browser.reload()
        assert responses(browser.events[start:])[stylesheet]["status"] == 304
        sent = [
            event["params"]["headers"]
            for event in browser.events[start:]
            if event["method"] == "Network.requestWillBeSentExtraInfo"
        ]
        assert any("if-none-match" in {k.lower() for k in h} for h in sent), sent
        browser.navigate(home)
        assert text(browser, "#visits") == "5"

        # A screenshot of the home page, kept for a person to look at.
        png = browser.screenshot()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "demo-home.png").write_bytes(png)
        width, height, colours = png_colours(png)
        # The window's width; its height less the window's frame.
        assert width == 1024 and height > 500, (width, height)
        assert colours > 20, "the screenshot is blank"

        # /boom: the error page with the request id, and the server goes on.
        start = browser.navigate(f"{base}/boom")
        failed = responses(browser.events[start:])[f"{base}/boom"]
        assert failed["status"] == 500
        request_id = failed["headers"]["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id
        page = browser.evaluate("document.body.innerText")
        assert f"Request id: {request_id}" in page
        assert server.poll() is None
        browser.navigate(home)
        assert text(browser, "#visits") == "6"
    served = log.read_text()
    assert "RuntimeError: boom" in served
    assert '"GET /static/css/site.css HTTP/1.1" 304' in served


def test_a_blank_screenshot_is_told_apart(browser: Chromium) -> None:
    # The check above can fail: about:blank is one colour.
    browser.call("Page.enable")
    browser.navigate("about:blank")
    width, height, colours = png_colours(browser.screenshot())
    assert width == 1024 and colours == 1
