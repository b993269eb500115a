"""WeCom end to end through the Flask app, the database (SQLite and PostgreSQL) and the fake server:
URL verification, "写计划" → a card with the signed form link, a click that updates the card,
duplicates, and the answers to bad requests."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.config import BotConfig, Secret, Settings
from bot.platforms.base import Outbound
from cards.model import Card, Markdown
from cards.render import wecom as render
from handlers.inbound import Inbound
from handlers.router import Context, Router
from storage.models import Identity, OutboxMessage, Person, Team
from tests.conftest import TEST_KEY
from tests.fakes.wecom import FakeWeCom
from tests.wecom_samples import error_card, plan_receipt

CORP = "ww0123456789abcdef"
TOKEN = "QDG6eK"
AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
AGENT = 1000002
URL = "/webhooks/wecom/wecom-main"


@pytest.fixture
def fake(clock):
    server = FakeWeCom(corp_id=CORP, token=TOKEN, aes_key=AES, agent_id=AGENT)
    server.clock = lambda: clock().timestamp()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(fake) -> Settings:
    bot = BotConfig(
        "wecom-main",
        "wecom",
        {"corp_id": CORP, "agent_id": AGENT, "api_base": fake.url, "timeout": 2},
        {"secret": Secret("app-secret"), "token": Secret(TOKEN), "aes_key": Secret(AES)},
    )
    return Settings(
        database_url="sqlite://",
        secret_keys=(Secret(TEST_KEY),),
        public_url="http://planloop.test",
        bots=(bot,),
    )


@pytest.fixture
def calls() -> list[Inbound]:
    return []


@pytest.fixture
def router(services, calls) -> Router:
    """Small handlers that exercise the adapter's answers (toast, error card, receipt)."""
    r = Router()

    @r.command("写计划")
    def plan_form(event: Inbound, ctx: Context) -> Card:
        calls.append(event)
        return Card("第48周计划", blocks=(Markdown("请填写"),))

    @r.action("plan.confirm")
    def confirm(event: Inbound, ctx: Context) -> Card:
        calls.append(event)
        return plan_receipt()

    @r.action("plan.broken")
    def broken(event: Inbound, ctx: Context) -> Card:
        calls.append(event)
        return error_card()

    @r.action("item.status")
    def status(event: Inbound, ctx: Context) -> Card:
        calls.append(event)
        return Card("", toast="已更新")

    services.router = r
    return r


@pytest.fixture
def people(db):
    with db() as s, s.begin():
        s.add(Team(id="ops", name="运营组"))
        s.flush()
        s.add(Person(id="lilei", name="李雷", team_id="ops", role="operations"))
        s.flush()
        s.add(Identity(bot_id="wecom-main", external_id="LiLei", person_id="lilei"))


def outbox_rows(db) -> list[OutboxMessage]:
    with db() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at)))


def deliver(services, row: OutboxMessage):
    message = Outbound(row.id, row.channel, row.target, Card.from_dict(row.card), row.reply_handle)
    return services.platforms[row.bot_id].send(message)


def test_url_verification_returns_the_bare_echo(client, fake):
    args, echo = fake.verify_url(echo="1616140317555161061")
    resp = client.get(URL, query_string=args)
    assert resp.status_code == 200
    assert resp.data == b"1616140317555161061"
    assert resp.content_type.startswith("text/plain")


def test_write_plan_gets_a_card_with_the_signed_form_link(client, fake, services, db, demo_team, clock):
    """The real plan handlers (handlers/plans.py): the form has text inputs, so WeCom gets a link."""
    args, body = fake.callback(fake.text_xml("LiLei", "写计划", "10001"))
    resp = client.post(URL, query_string=args, data=body, content_type="text/xml")
    assert (resp.status_code, resp.data) == (200, b"")
    (row,) = outbox_rows(db)
    assert (row.bot_id, row.channel, row.target) == ("wecom-main", "user", "LiLei")
    assert row.card["form"]["action"] == "plan.submit"

    deliver(services, row)
    (sent,) = fake.sent
    tc = sent["template_card"]
    assert (sent["touser"], tc["card_type"]) == ("LiLei", "text_notice")
    link = tc["card_action"]["url"]
    assert tc["jump_list"][0]["url"] == link == row.card["form"]["link"]
    assert link.startswith("http://planloop.test/p/")
    claims = services.links.verify(link.rsplit("/p/", 1)[1], clock(), page="plan-form")
    assert (claims.person, claims.week) == ("lilei", "2026-W48")


def test_a_text_plan_gets_a_receipt_whose_button_works(client, fake, services, db, demo_team):
    text = "计划\n优化详情页首屏 支付转化率 +2pp\n差评回访 投诉率 -10%"
    args, body = fake.callback(fake.text_xml("LiLei", text, "10005"))
    assert client.post(URL, query_string=args, data=body).status_code == 200
    (row,) = outbox_rows(db)
    result = deliver(services, row)
    tc = fake.sent[0]["template_card"]
    assert tc["card_type"] == "button_interaction"
    assert result.reply_handle in fake.response_codes  # kept for a later update_template_card
    (edit,) = [b for b in tc["button_list"] if b["type"] == 0]
    assert render.decode_key(edit["key"]) == ("plan.form", {})

    xml, _ = fake.click_xml("LiLei", edit["key"], task_id=tc["task_id"])
    args, body = fake.callback(xml)
    resp = client.post(URL, query_string=args, data=body)
    assert "<ReplaceName><![CDATA[已处理]]></ReplaceName>" in fake.open_reply(resp.data)
    form_row = outbox_rows(db)[-1]
    assert form_row.card["form"]["action"] == "plan.submit"


def test_an_unknown_person_is_told_so(client, fake, db, demo_team):
    args, body = fake.callback(fake.text_xml("Stranger", "写计划", "10003"))
    assert client.post(URL, query_string=args, data=body).status_code == 200
    (row,) = outbox_rows(db)
    assert row.target == "Stranger" and row.card["title"] == "未加入团队"


def test_a_retried_message_has_no_second_effect(client, fake, db, people, router, calls):
    args, body = fake.callback(fake.text_xml("LiLei", "写计划", "10002"))
    first = client.post(URL, query_string=args, data=body)
    again = client.post(URL, query_string=args, data=body)
    assert first.status_code == again.status_code == 200 and again.data == b""
    assert len(outbox_rows(db)) == 1 and len(calls) == 1


def test_a_card_click_updates_the_card_and_the_receipt_follows(
    client, fake, services, db, people, router, calls
):
    xml, code = fake.click_xml("LiLei", render.encode_key("plan.confirm", {"week": "2026-W48"}))
    args, body = fake.callback(xml)
    resp = client.post(URL, query_string=args, data=body)
    assert resp.status_code == 200
    reply = fake.open_reply(resp.data)  # signature checked and decrypted by wechatpy
    assert "<MsgType><![CDATA[update_button]]></MsgType>" in reply
    assert "<ReplaceName><![CDATA[已处理]]></ReplaceName>" in reply
    assert (calls[0].kind, calls[0].action, dict(calls[0].values), calls[0].reply_handle) == (
        "action",
        "plan.confirm",
        {"week": "2026-W48"},
        code,
    )
    (row,) = outbox_rows(db)
    assert row.card["title"] == "计划已收到：李雷 第48周"

    # WeCom retries the same callback (our answer was slow): nothing happens twice
    again = client.post(URL, query_string=args, data=body)
    assert (again.status_code, again.data) == (200, b"") and len(outbox_rows(db)) == 1 and len(calls) == 1

    # and the clicked card can later be replaced with its response_code (single use, 72 h)
    platform = services.platforms["wecom-main"]
    platform.send(Outbound("u1", "update", "LiLei", Card("", toast="已确认"), reply_handle=code))
    assert fake.updates[0]["response_code"] == code and fake.updates[0]["button"] == {
        "replace_name": "已确认"
    }


def test_a_failed_click_leaves_the_button_and_sends_the_error(client, fake, db, people, router):
    xml, _ = fake.click_xml("LiLei", render.encode_key("plan.broken"))
    args, body = fake.callback(xml)
    resp = client.post(URL, query_string=args, data=body)
    assert (resp.status_code, resp.data) == (200, b"")
    (row,) = outbox_rows(db)
    assert row.card["theme"] == "red"


def test_a_select_submit_with_only_a_toast_needs_no_outbox(client, fake, db, people, router, calls):
    xml, _ = fake.click_xml(
        "LiLei",
        render.encode_key("item.status", {"item": "42"}),
        card_type="multiple_interaction",
        selected={"status": ["done"]},
    )
    args, body = fake.callback(xml)
    resp = client.post(URL, query_string=args, data=body)
    assert "<ReplaceName><![CDATA[已更新]]></ReplaceName>" in fake.open_reply(resp.data)
    assert dict(calls[0].values) == {"item": "42", "status": "done"} and calls[0].kind == "form"
    assert outbox_rows(db) == []


@pytest.mark.parametrize(
    "path, status",
    [
        ("/webhooks/wecom/nope", 404),
        ("/webhooks/feishu/wecom-main", 404),
        ("/webhooks/wecom/wecom-main/robot", 404),
    ],
)
def test_unknown_bots_and_paths_are_404(client, fake, path, status):
    args, body = fake.callback(fake.text_xml("LiLei", "写计划", "1"))
    resp = client.post(path, query_string=args, data=body)
    assert resp.status_code == status and "error" in resp.get_json()


@pytest.mark.parametrize(
    "mutate, status, reason",
    [
        (lambda f, a, b: ({**a, "msg_signature": "0" * 40}, b), 401, "does not match"),
        (lambda f, a, b: ({**a, "timestamp": str(int(a["timestamp"]) - 7200)}, b), 401, "does not match"),
        (
            lambda f, a, b: f.callback(f.text_xml("LiLei", "写计划", "2"), timestamp=int(f.clock()) - 3601),
            401,
            "hour",
        ),
        (lambda f, a, b: (a, b"<xml><Encrypt>"), 400, "broken XML"),
        (lambda f, a, b: (a, b'<!DOCTYPE x [<!ENTITY e "e">]><xml/>'), 400, "DTD"),
        (lambda f, a, b: (a, b"<xml>" + b"x" * 70_000 + b"</xml>"), 400, "larger"),
        (lambda f, a, b: (a, b"x" * (1024 * 1024 + 1)), 413, "larger"),
    ],
)
def test_bad_requests_get_a_clear_json_answer_and_change_nothing(
    client, fake, db, people, router, mutate, status, reason
):
    args, body = mutate(fake, *fake.callback(fake.text_xml("LiLei", "写计划", "20001")))
    resp = client.post(URL, query_string=args, data=body)
    assert resp.status_code == status
    assert reason in resp.get_json()["error"]
    with db() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 0
