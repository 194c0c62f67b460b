"""A headless Chromium driven through the DevTools protocol, for the end-to-end test.

Chromium is started with ``--remote-debugging-pipe``: the protocol's JSON messages
travel over two pipes (the browser reads file descriptor 3 and writes 4, each message
ended by a NUL byte), so the test needs no WebSocket client and no browser download,
only Debian's ``chromium``. The process is stopped by its PID.

Events arrive between replies; :meth:`Chromium.call` keeps them in
:attr:`Chromium.events` and hands those with a registered handler to it at once,
since some (``Fetch.requestPaused``, ``Fetch.authRequired``) hold the page until they
are answered.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

Message = dict[str, Any]
Handler = Callable[[Message], None]


class ProtocolError(RuntimeError):
    """The browser answered a command with an error, or stopped answering."""


def chromium_binary() -> str | None:
    """Debian's ``chromium`` (or another Chromium on the PATH), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found is not None:
            return found
    return None


class Chromium:
    """One headless Chromium with a fresh profile in *profile*, and one page."""

    def __init__(self, binary: str, profile: Path, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.events: list[Message] = []
        self.handlers: dict[str, Handler] = {}
        self._next_id = 0
        self._buffer = b""
        # The browser reads commands from its fd 3 and writes replies to its fd 4.
        browser_reads, self._writer = os.pipe()
        self._reader, browser_writes = os.pipe()

        def give_the_pipes() -> None:  # in the child, before exec
            # Above 9 first, so that neither end is overwritten by the other's dup2.
            reads = fcntl.fcntl(browser_reads, fcntl.F_DUPFD, 10)
            writes = fcntl.fcntl(browser_writes, fcntl.F_DUPFD, 10)
            os.dup2(reads, 3)
            os.dup2(writes, 4)

        try:
            self._start(binary, profile, give_the_pipes)
        finally:  # the child has its own copies
            os.close(browser_reads)
            os.close(browser_writes)
        self.session = ""
        try:
            target = self.call(
                "Target.createTarget", {"url": "about:blank"}, browser=True
            )
            attached = self.call(
                "Target.attachToTarget",
                {"targetId": target["targetId"], "flatten": True},
                browser=True,
            )
        except BaseException:
            self.close()  # a browser that did not come up is not left running
            raise
        self.session = attached["sessionId"]

    def _start(
        self, binary: str, profile: Path, give_the_pipes: Callable[[], None]
    ) -> None:
        try:
            self.process = self._popen(binary, profile, give_the_pipes)
        except BaseException:
            os.close(self._writer)
            os.close(self._reader)
            raise

    @staticmethod
    def _popen(
        binary: str, profile: Path, give_the_pipes: Callable[[], None]
    ) -> subprocess.Popen[bytes]:
        with (profile / "chromium.log").open("wb") as log:
            return subprocess.Popen(
                [
                    binary,
                    "--headless",
                    "--remote-debugging-pipe",
                    # CI runs the tests as root, where Chromium's sandbox cannot start.
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-extensions",
                    "--window-size=1024,768",
                    f"--user-data-dir={profile}",
                    "about:blank",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                pass_fds=(3, 4),
                preexec_fn=give_the_pipes,
                # Its own process group, led by its PID: close() stops the
                # renderers and the zygote with it.
                start_new_session=True,
            )

    # -- the protocol ------------------------------------------------------------

    def send(self, method: str, params: Message | None = None) -> int:
        """Send a command to the page without waiting for its reply."""
        return self._send(method, params, browser=False)

    def _send(self, method: str, params: Message | None, browser: bool) -> int:
        self._next_id += 1
        message: Message = {"id": self._next_id, "method": method}
        message["params"] = params or {}
        if not browser and self.session:
            message["sessionId"] = self.session
        os.write(self._writer, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _receive(self, deadline: float) -> Message:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._reader], [], [], max(left, 0))
            if not ready:
                raise ProtocolError("the browser did not answer in time")
            chunk = os.read(self._reader, 1 << 16)
            if not chunk:
                raise ProtocolError(f"the browser exited ({self.process.poll()})")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: Message = json.loads(raw)
        if "method" in message:
            self.events.append(message)
            handler = self.handlers.get(message["method"])
            if handler is not None:
                handler(message["params"])
        return message

    def call(
        self, method: str, params: Message | None = None, browser: bool = False
    ) -> Message:
        """Send a command and wait for its reply (handling events meanwhile)."""
        sent = self._send(method, params, browser)
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._receive(deadline)
            if message.get("id") == sent:
                if "error" in message:
                    raise ProtocolError(f"{method}: {message['error']}")
                result: Message = message.get("result", {})
                return result

    def wait_for(self, method: str, since: int = 0) -> Message:
        """The first event *method* at or after index *since* of :attr:`events`,
        waiting for it if it has not come yet."""
        deadline = time.monotonic() + self.timeout
        while True:
            for event in self.events[since:]:
                if event["method"] == method:
                    params: Message = event["params"]
                    return params
            since = len(self.events)
            self._receive(deadline)

    # -- what the test does ------------------------------------------------------

    def navigate(self, url: str) -> int:
        """Load *url* and wait for its load event; return the index in
        :attr:`events` where this load's events begin."""
        start = len(self.events)
        navigated = self.call("Page.navigate", {"url": url})
        if navigated.get("errorText"):
            raise ProtocolError(f"{url}: {navigated['errorText']}")
        self.wait_for("Page.loadEventFired", start)
        return start

    def reload(self) -> int:
        """Reload the page as a user does (revalidating, not bypassing the cache)."""
        start = len(self.events)
        self.call("Page.reload", {"ignoreCache": False})
        self.wait_for("Page.loadEventFired", start)
        return start

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript *expression* in the page."""
        found = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}
        )
        if "exceptionDetails" in found:
            raise ProtocolError(f"{expression}: {found['exceptionDetails']}")
        return found["result"].get("value")

    def screenshot(self) -> bytes:
        """A PNG of the page as it is shown."""
        shot = self.call("Page.captureScreenshot", {"format": "png"})
        return base64.b64decode(shot["data"])

    def close(self) -> None:
        """Ask the browser to close, then make sure of it by its PID."""
        try:
            if self.process.poll() is None:
                self._send("Browser.close", None, browser=True)
                self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # what is left of it
            if self.process.poll() is None:
                self.process.wait(timeout=10)
            os.close(self._writer)
            os.close(self._reader)


def responses(events: list[Message]) -> dict[str, Message]:
    """Each URL's last response in *events*, as the wire had it: the
    ``Network.responseReceivedExtraInfo`` event (raw status and headers) joined to
    its ``Network.responseReceived`` by request id."""
    urls = {
        event["params"]["requestId"]: event["params"]["response"]["url"]
        for event in events
        if event["method"] == "Network.responseReceived"
    }
    found: dict[str, Message] = {}
    for event in events:
        if event["method"] != "Network.responseReceivedExtraInfo":
            continue
        params = event["params"]
        url = urls.get(params["requestId"])
        if url is not None:
            headers = {k.lower(): v for k, v in params["headers"].items()}
            found[url] = {"status": params["statusCode"], "headers": headers}
    return found


def png_colours(png: bytes) -> tuple[int, int, int]:
    """Width, height and the number of distinct colours of an 8-bit RGB or RGBA
    PNG (what Chromium writes), decoded here so a blank screenshot is told apart
    from a page without an image library."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    position, data, header = 8, b"", b""
    while position < len(png):
        length = int.from_bytes(png[position : position + 4], "big")
        kind = png[position + 4 : position + 8]
        chunk = png[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            data += chunk
        position += 12 + length
    width = int.from_bytes(header[:4], "big")
    height = int.from_bytes(header[4:8], "big")
    depth, colour_type = header[8], header[9]
    if depth != 8 or colour_type not in (2, 6):
        raise ValueError(f"unexpected PNG format: depth {depth}, type {colour_type}")
    size = 3 if colour_type == 2 else 4
    raw = zlib.decompress(data)
    stride = width * size
    previous = bytearray(stride)
    colours: set[bytes] = set()
    for row in range(height):
        start = row * (stride + 1)
        method, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - size] if i >= size else 0
            up = previous[i]
            corner = previous[i - size] if i >= size else 0
            if method == 1:
                line[i] = (line[i] + left) & 0xFF
            elif method == 2:
                line[i] = (line[i] + up) & 0xFF
            elif method == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif method == 4:
                guess = left + up - corner
                pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
                best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + best) & 0xFF
        colours.update(bytes(line[i : i + size]) for i in range(0, stride, size))
        previous = line
    return width, height, len(colours)
