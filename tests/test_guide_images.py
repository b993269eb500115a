"""Every card kind as the simulator shows it, screenshotted from the demo's story in headless
Chromium: the user guide's pictures (docs/guide/index.md) are what this test saw
(``docs/screenshots.sh`` sets $PLANLOOP_DOC_IMAGES and writes them to docs/images/)."""

from __future__ import annotations

import json
import struct
import threading
from datetime import UTC, datetime

import pytest
from werkzeug.serving import make_server

from bot.demo.run import prepare
from bot.services import build_services
from bot.web.app import create_app
from tests.browser import Chromium, find_chromium

CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,  # the demo's four weeks acted out, then one screenshot per card kind
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium)"),
]
THURSDAY = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)  # 16:00 in Shanghai, 2026-W49, as tests/test_demo_story.py

# (whose chat, what to say first or "", a text the card shows, the picture in docs/images/)
CARDS = [
    ("lilei", "", "欢迎使用 planloop", "sim-welcome.png"),
    ("lilei", "帮助", "写计划", "sim-help.png"),
    ("lilei", "进度", "李雷 · 2026-W49 进度", "sim-progress.png"),
    ("lilei", "", "进度提醒：大促会场改版", "sim-lag-alert.png"),
    ("lilei", "", "2026-W48 考核结果 · 李雷", "sim-appraisal.png"),
    ("lilei", "", "本周计划已提交 · 2026-W49", "sim-receipt-week.png"),
    ("zhangwei", "", "周初汇总 · 2026-W49（组长版）", "sim-monday-summary.png"),
    ("zhangwei", "", "运营设计组 · 进度落后", "sim-team-lag.png"),
    ("zhangwei", "", "运营设计组 · 2026-W49 未提交计划 1 人", "sim-missing-plans.png"),
    ("zhangwei", "", "运营设计组 · 2026-W48 考核汇总", "sim-appraisal-table.png"),
    ("zhangwei", "", "考核申诉 · 李雷 · 2026-W47", "sim-appeal-review.png"),
]

# Marks the last message whose text has ``needle`` (id "shot") and scrolls it into view.
MARK = (
    "(function (needle) {"
    " var ms = [].filter.call(document.querySelectorAll('#log .msg'), function (m) {"
    "   return m.innerText.indexOf(needle) >= 0 && !m.classList.contains('me'); });"
    " if (!ms.length) { return false; }"
    " var old = document.getElementById('shot'); if (old) { old.removeAttribute('id'); }"
    " var m = ms[ms.length - 1]; m.id = 'shot'; m.scrollIntoView(); return true;"
    "})(%s)"
)


@pytest.fixture(scope="module")
def live(tmp_path_factory):  # noqa: ANN201
    data = tmp_path_factory.mktemp("demo")
    settings = prepare(data, 8765, now=THURSDAY)
    services = build_services(settings, clock=lambda: THURSDAY)
    server = make_server("127.0.0.1", 0, create_app(settings, services), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="guide-images-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()
    services.engine.dispose()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):  # noqa: ANN201
    where = tmp_path_factory.mktemp("chromium")
    chromium = Chromium(CHROMIUM, where / "profile", where / "chromium.log")
    try:
        yield chromium
    finally:
        chromium.close()


def test_every_card_kind_is_pictured_as_the_simulator_shows_it(live, browser, tmp_path):
    page = browser.new_page(width=900, height=1000)
    shown = None
    for who, say, needle, image in CARDS:
        if who != shown:
            page.goto(f"{live}/sim/?as={who}")
            page.wait_for("document.querySelectorAll('#log .msg').length > 0")
            shown = who
        if say:
            page.js(
                f"document.getElementById('text').value = {json.dumps(say)};"
                "document.getElementById('send').click();"
            )
        page.wait_for(MARK % json.dumps(needle))
        text = page.js("document.getElementById('shot').innerText")
        assert needle in text
        png = page.screenshot(tmp_path / image, clip_selector="#shot", doc_image=image)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk (decoding all is slow)
        assert width >= 300 and 80 <= height <= 4000, (image, width, height)
