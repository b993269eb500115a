"""A real weekly plan filed through Feishu, end to end against the fake open platform.

李雷 (ou_lilei) DMs the bot "写计划" (encrypted, signed), the form card goes out through the
outbox and the API, he fills the card that arrived and presses submit (encrypted, signed
card.action.trigger built from the very card he received): the plan is stored, the 3-second
reply replaces the form with the receipt, and the receipt is delivered again as a message
through the API. A Feishu retry of the submit changes nothing.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import requests
from sqlalchemy import func, select

from bot.config import Secret, Settings
from bot.platforms.base import Outbound
from cards.model import Card
from storage.models import OutboxMessage, Plan
from tests.conftest import TEST_KEY
from tests.fakes import feishu as ff

URL = "/webhooks/feishu/feishu-main"


@pytest.fixture
def fake(clock):
    server = ff.FakeFeishu(clock=clock)
    with server.running():
        yield server


@pytest.fixture
def feishu(fake, engine, clock, demo_team):
    from bot.services import build_services
    from bot.web.app import create_app

    settings = Settings(
        database_url="sqlite://",
        secret_keys=(Secret(TEST_KEY),),
        public_url="http://planloop.test",
        bots=(ff.bot_config(fake.base_url),),
    )
    services = build_services(settings, clock=clock, engine=engine, http=requests.Session())
    app = create_app(settings, services)
    app.testing = True
    return app.test_client(), services


def relay(services) -> list[str]:
    """Deliver pending outbox rows the way the worker's relay does: Outbound -> adapter.send."""
    sent = []
    with services.sessions() as session, session.begin():
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending")).all()
        for row in rows:
            message = Outbound(
                id=row.id,
                channel=row.channel,
                target=row.target,
                card=Card.from_dict(row.card),
                reply_handle=row.reply_handle,
            )
            services.platforms[row.bot_id].send(message)
            row.status = "sent"
            sent.append(row.id)
    return sent


def fill(card: dict, answers: dict[str, str]) -> tuple[dict, dict]:
    """What Feishu sends back when someone fills ``card``: the submit button's callback value and
    the form's inputs (prefilled defaults, overridden by ``answers``)."""
    [form] = [e for e in card["body"]["elements"] if e["tag"] == "form"]
    form_value: dict[str, str] = {}
    for element in form["elements"]:
        if element["tag"] == "input":
            form_value[element["name"]] = element.get("default_value", "")
        elif element["tag"] == "select_static":
            form_value[element["name"]] = element.get("initial_option", "")
    for name, value in answers.items():
        assert name in form_value, f"the card has no input {name}"
        form_value[name] = value
    submit = form["elements"][-1]
    assert submit["form_action_type"] == "submit"
    return submit["behaviors"][0]["value"], form_value


def test_a_person_files_a_plan_with_the_feishu_form_card(feishu, fake, clock, db):
    client, services = feishu

    # 1. "写计划" in the 1:1 chat, encrypted and signed like Feishu does.
    said = ff.deliver(ff.text_message("写计划", open_id="ou_lilei", chat_type="p2p"), now=clock())
    resp = client.post(URL, data=said.body, headers=said.headers)
    assert resp.status_code == 200 and resp.get_json() == {"msg": "success"}
    assert len(relay(services)) == 1
    [form_message] = fake.sent
    assert (form_message.receive_id_type, form_message.receive_id) == ("open_id", "ou_lilei")
    assert form_message.card["header"]["title"]["content"] == "填写本周计划 · 2026-W48"

    # 2. He fills three rows of the card he received and presses submit.
    value, form_value = fill(
        form_message.card,
        {
            "item1_text": "优化详情页首屏",
            "item1_kpi": "conversion_rate",
            "item1_target": "+2%",
            "item2_text": "差评回访",
            "item2_kpi": "complaint_rate",
            "item2_target": "-10%",
            "item3_text": "主图测试",
            "item3_kpi": "ctr",
            "item3_target": "+0.5pp",
        },
    )
    assert value["action"] == "plan.submit" and value["week"] == "2026-W48"
    submit = ff.deliver(
        ff.card_action(value, form_value=form_value, open_id="ou_lilei", message_id=form_message.message_id),
        now=clock(),
    )
    resp = client.post(URL, data=submit.body, headers=submit.headers)

    # 3. The 3-second reply replaces the form with the receipt, with a toast.
    body = resp.get_json()
    assert resp.status_code == 200
    assert body["card"]["type"] == "raw"
    receipt = body["card"]["data"]
    assert receipt["header"]["title"]["content"] == "本周计划已提交 · 2026-W48"
    assert receipt["header"]["template"] == "green"
    assert body["toast"]["type"] == "success"
    assert not any(e["tag"] == "form" for e in receipt["body"]["elements"])

    # 4. The plan is stored with resolved targets.
    with db() as s:
        plan = s.scalar(select(Plan).where(Plan.person_id == "lilei"))
        assert (plan.week, plan.version, plan.status) == ("2026-W48", 1, "submitted")
        items = [(i.kpi_key, i.text) for i in plan.items]
        assert items == [
            ("conversion_rate", "优化详情页首屏"),
            ("complaint_rate", "差评回访"),
            ("ctr", "主图测试"),
        ]
        conv = plan.items[0]
        assert conv.target == conv.baseline * Decimal("1.02")

    # 5. The receipt is delivered again through the API, as a message of his own.
    assert len(relay(services)) == 1
    receipt_message = fake.sent[-1]
    assert (receipt_message.receive_id_type, receipt_message.receive_id) == ("open_id", "ou_lilei")
    assert receipt_message.card == receipt
    shown = json.dumps(receipt, ensure_ascii=False)
    assert "优化详情页首屏" in shown and " → " in shown

    # 6. Feishu retries the submit (its answer was slow): one plan, one receipt.
    clock.advance(seconds=15)
    retry = ff.deliver(submit.plaintext, now=clock())
    again = client.post(URL, data=retry.body, headers=retry.headers)
    assert again.status_code == 200 and "card" not in again.get_json()
    assert relay(services) == []
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == 1
    assert len(fake.sent) == 2


def test_invalid_form_comes_back_in_place_and_nothing_is_stored(feishu, fake, clock, db):
    client, services = feishu
    said = ff.deliver(ff.text_message("写计划", open_id="ou_lilei"), now=clock())
    client.post(URL, data=said.body, headers=said.headers)
    relay(services)
    value, form_value = fill(
        fake.sent[0].card, {"item1_text": "优化详情页", "item1_kpi": "", "item1_target": "+2pp"}
    )
    submit = ff.deliver(ff.card_action(value, form_value=form_value, open_id="ou_lilei"), now=clock())
    body = client.post(URL, data=submit.body, headers=submit.headers).get_json()
    again = body["card"]["data"]
    [form] = [e for e in again["body"]["elements"] if e["tag"] == "form"]
    assert "计划未保存" in json.dumps(form, ensure_ascii=False)
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == 0


def test_someone_the_bot_does_not_know_gets_a_clear_card(feishu, fake, clock, db):
    client, services = feishu
    said = ff.deliver(ff.text_message("写计划", open_id="ou_stranger"), now=clock())
    assert client.post(URL, data=said.body, headers=said.headers).status_code == 200
    relay(services)
    [message] = fake.sent
    assert message.card["header"]["title"]["content"] == "未加入团队"
    assert "ou_stranger" in json.dumps(message.card, ensure_ascii=False)
