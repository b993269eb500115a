"""Headless Chromium (Debian's ``chromium``) driven over the DevTools protocol on a pipe.

``--remote-debugging-pipe`` makes Chromium read commands on fd 3 and write answers and events on
fd 4, as NUL-terminated JSON: no websocket client, no debugging port, no new test dependency.
A tiny Python trampoline puts our pipe ends on those numbers and execs Chromium (thread-safe,
unlike a ``preexec_fn``).
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


# Put the pipe ends on fds 3 and 4, then become Chromium (sh cannot name fds above 9).
_TRAMPOLINE = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


class CdpError(Exception):
    pass


class Chromium:
    def __init__(self, binary: str, user_data_dir: Path, log: Path):
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        self._log = log.open("wb")
        self.proc = subprocess.Popen(  # noqa: S603 - a fixed local binary and our own flags
            [
                sys.executable,
                "-c",
                _TRAMPOLINE,
                str(to_chrome_r),
                str(from_chrome_w),
                binary,
                *FLAGS,
                f"--user-data-dir={user_data_dir}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            pass_fds=(to_chrome_r, from_chrome_w),
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    # ------------------------------------------------------------ the wire

    def _read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise CdpError(f"Chromium closed the pipe (exit code {self.proc.poll()})")
                self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        return json.loads(raw)

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str = "", timeout: float = 30
    ) -> Any:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._w, data) :]
        while True:
            answer = self._read(timeout)
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise CdpError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_event(self, method: str, session: str = "", timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method and (not session or event.get("sessionId") == session):
                    return self.events.pop(i)
            self.events.append(self._read(max(0.01, deadline - time.monotonic())))

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (CdpError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self._r)
        os.close(self._w)
        self._log.close()

    # ------------------------------------------------------------ one tab

    def new_page(self, width: int = 390, height: int = 844) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.send("Page.enable")
        # a phone-sized screen: the pages are made for work-chat in-app browsers
        page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True},
        )
        return page


class Page:
    def __init__(self, browser: Chromium, session: str):
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30) -> Any:
        return self.browser.send(method, params, self.session, timeout)

    def _forget(self, method: str) -> None:
        self.browser.events = [
            e
            for e in self.browser.events
            if not (e.get("method") == method and e.get("sessionId") == self.session)
        ]

    def goto(self, url: str) -> None:
        self._forget("Page.loadEventFired")
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CdpError(f"navigation to {url} failed: {result['errorText']}")
        self.browser.wait_event("Page.loadEventFired", self.session)

    def js(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            raise CdpError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def type_into(self, selector: str, text: str) -> None:
        """Focus a field and type into it the way a keyboard does (real input events)."""
        self.js(
            f"(function(e){{e.focus(); e.select && e.select();}})(document.querySelector({json.dumps(selector)}))"
        )
        self.send("Input.insertText", {"text": text})

    def choose(self, selector: str, value: str) -> None:
        self.js(
            f"(function(e){{e.value={json.dumps(value)}; e.dispatchEvent(new Event('change', {{bubbles: true}}));}})"
            f"(document.querySelector({json.dumps(selector)}))"
        )

    def click_and_wait(self, selector: str) -> None:
        self._forget("Page.loadEventFired")
        self.js(f"document.querySelector({json.dumps(selector)}).click()")
        self.browser.wait_event("Page.loadEventFired", self.session)

    def screenshot(self, path: Path, clip_selector: str = "", doc_image: str = "") -> bytes:
        """A PNG of the page (or of one element); with ``doc_image`` and $PLANLOOP_DOC_IMAGES set
        (``docs/screenshots.sh``), also written there, so the docs show what the tests saw."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": True}
        if clip_selector:
            box = self.js(
                f"(function(r){{return {{x: r.left + window.scrollX, y: r.top + window.scrollY, "
                f"width: r.width, height: r.height}};}})"
                f"(document.querySelector({json.dumps(clip_selector)}).getBoundingClientRect())"
            )
            params["clip"] = {**box, "scale": 1}
        png = base64.b64decode(self.send("Page.captureScreenshot", params)["data"])
        path.write_bytes(png)
        doc_images = os.environ.get("PLANLOOP_DOC_IMAGES")
        if doc_image and doc_images:
            (Path(doc_images) / doc_image).write_bytes(png)
        return png

    def wait_for(self, expression: str, timeout: float = 10) -> None:
        """Poll a JavaScript expression until it is truthy (the simulator page renders on a timer)."""
        deadline = time.monotonic() + timeout
        while not self.js(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout} s: {expression}")
            time.sleep(0.1)


# ---------------------------------------------------------------- reading a PNG without Pillow


def png_pixels(png: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """(width, height, RGB pixels) of an 8-bit, non-interlaced RGB/RGBA PNG (what Chromium writes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data)
            assert depth == 8 and interlace == 0 and color in (2, 6), (depth, color, interlace)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    prev = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        pixels.extend(tuple(line[x : x + 3]) for x in range(0, stride, channels))  # type: ignore[misc]
        prev = line
    return width, height, pixels


@pytest.fixture
def live(app, services) -> Iterator[str]:  # noqa: ANN001
    """The app served for real on 127.0.0.1; the service's public URL and card links point at it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    services.settings = replace(services.settings, public_url=base)
    services.links.public_url = base
    thread = threading.Thread(target=server.serve_forever, name="browser-test-server", daemon=True)
    thread.start()
    yield base
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    chromium = Chromium(find_chromium() or "chromium", tmp_path / "profile", tmp_path / "chromium.log")
    try:
        yield chromium
    finally:
        chromium.close()
