"""The console's Data page in headless Chromium: upload a CSV, read the preview, confirm, and the
samples are stored. Screenshot to docs/images/ under $PLANLOOP_DOC_IMAGES."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.config import Secret, Settings, SourceConfig
from bot.console import sessions
from storage.models import MetricSample
from tests.browser import find_chromium
from tests.conftest import TEST_KEY
from tests.test_console_browser import ADMIN

CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium)"),
]
CSV = (
    "date,metric,value,scope\n"
    "2026-11-22,pay_conversion_rate,3.40%,shop\n"
    "2026-11-22,ctr,5.9%,shop\n"
    "2026-11-22,ctr,=1+1,shop\n"
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "inbox").mkdir()
    return Settings(
        database_url="sqlite://",
        simulator=True,
        secret_keys=(Secret(TEST_KEY),),
        public_url="http://planloop.test",
        extra={"admins": [ADMIN], "console_upload_dir": str(tmp_path / "uploads")},
        sources=(SourceConfig("sycm", "file", {"path": str(tmp_path / "inbox")}, {}),),
    )


def test_upload_preview_confirm_in_chromium(live, browser, demo_team, db, clock, tmp_path):  # noqa: ANN001, F811
    report = tmp_path / "生意参谋.csv"
    report.write_text(CSV, encoding="utf-8")
    with db() as session, session.begin():
        token = sessions.create_link(session, ADMIN, clock(), timedelta(minutes=10))
    page = browser.new_page()
    page.goto(f"{live}/console/link/{token}")
    page.click_and_wait("form button[type=submit]")
    page.goto(f"{live}/console/data")
    assert "数据源" in page.js("document.body.innerText") and "sycm" in page.js("document.body.innerText")

    root = page.send("DOM.getDocument")["root"]["nodeId"]
    node = page.send("DOM.querySelector", {"nodeId": root, "selector": "#upload input[type=file]"})["nodeId"]
    page.send("DOM.setFileInputFiles", {"nodeId": node, "files": [str(report)]})
    # the page's script sends the file itself, to show a progress bar: the page's CSP must let it
    # (connect-src 'self'), and the answer must be the preview's address, not a fallback form post
    page.js(
        "document.addEventListener('securitypolicyviolation', function(e) { sessionStorage.setItem('csp', e.violatedDirective); });"
        "var send = XMLHttpRequest.prototype.send; XMLHttpRequest.prototype.send = function(body) { var x = this;"
        " x.addEventListener('load', function() { sessionStorage.setItem('xhr', x.status + ' ' + x.responseText); });"
        " return send.call(this, body); }"
    )
    page.click_and_wait("#upload-button")
    page.wait_for("location.pathname === '/console/data/preview'")
    assert page.js("sessionStorage.getItem('csp')") is None
    status, answer = page.js("sessionStorage.getItem('xhr')").split(" ", 1)
    assert status == "200" and json.loads(answer)["next"] == page.js("location.pathname + location.search")
    preview = page.js("document.getElementById('preview').innerText")
    assert "将导入 2 个数据点" in preview and "拒绝 1 行" in preview and "生意参谋.csv" in preview
    with db() as session:
        assert session.get(MetricSample, ("ctr", "shop", date(2026, 11, 22))).value != Decimal("5.9")
    page.screenshot(tmp_path / "data.png", doc_image="console-data.png")

    page.click_and_wait("#confirm")
    assert "已导入" in page.js("document.body.innerText")
    with db() as session:
        assert session.get(MetricSample, ("ctr", "shop", date(2026, 11, 22))).value == Decimal("5.9")
        assert session.get(
            MetricSample, ("pay_conversion_rate", "shop", date(2026, 11, 22))
        ).value == Decimal("3.4")
