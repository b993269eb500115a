"""Editing a template in a real headless Chromium: a weight typed in, the check and the preview of
last week's score update as you type (our own debounced script under the page's CSP nonce), then
saved as a new version. The screenshot goes to docs/images/ under $PLANLOOP_DOC_IMAGES."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.console import sessions
from bot.console.template_edit import last_week
from storage.models import TemplateVersion
from tests.appraisal_shop import add_plan
from tests.test_console_browser import ADMIN, pytestmark, settings  # noqa: F401 - fixtures

AFTER = "document.querySelector('#preview tr[data-person=lilei] .after')"


def test_edit_a_weight_and_see_the_preview(live, browser, services, demo_team, db, clock, tmp_path):  # noqa: ANN001, F811
    with db() as session, session.begin():
        # an ambitious conversion target and an easy click-rate one: moving weight moves the score
        add_plan(
            session,
            "lilei",
            last_week(clock()),
            [("conversion_rate", "+30pp", "2.0", "shop"), ("ctr", "+5%", "2.0", "shop")],
        )
        token = sessions.create_link(session, ADMIN, clock(), timedelta(minutes=10))
    page = browser.new_page()
    page.goto(f"{live}/console/link/{token}")
    page.click_and_wait("form button[type=submit]")
    page.goto(f"{live}/console/templates")
    page.click_and_wait("#team-ops .edit-links a[href$='/ops-default/edit']")
    assert page.js("location.pathname") == "/console/templates/ops-default/edit"

    page.type_into("input[name='w.ctr']", "80")  # 60 + 80: the check answers as you type
    page.wait_for("!!document.querySelector('#preview li.problem')")
    assert (
        page.js("document.querySelector('#preview li.problem').textContent")
        == "weights: 权重合计为 140，必须等于 100"
    )
    page.type_into("input[name='w.conversion_rate']", "20")
    page.wait_for("!!" + AFTER)
    before = page.js("document.querySelector('#preview tr[data-person=lilei] .before').textContent")
    after = page.js(AFTER + ".textContent")
    assert before.split()[0] != after, (before, after)  # the edited weights change last week's score
    page.screenshot(tmp_path / "edit.png", doc_image="console-template-edit.png")

    page.click_and_wait("button[name=do][value=save]")
    assert "模板已保存为新版本" in page.js("document.body.innerText")
    with db() as session:
        assert (
            session.scalar(
                select(func.max(TemplateVersion.version)).where(TemplateVersion.template_id == "ops-default")
            )
            == 2
        )
