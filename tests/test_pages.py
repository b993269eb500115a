"""The /p/ pages: signed links and who may open them, the plan form through the card's handler,
plan detail with pace and lag, appraisal detail with history and a leader's team table."""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import escape
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from bot.config import Secret
from bot.demo.run import demo_value
from bot.links import LinkSigner
from bot.worker.delivery import drain
from cards import format as fmt
from storage.models import Appraisal, MetricSample, OutboxMessage, Person, Plan, PlanItem

WEEK = "2026-W48"
LAST_WEEK = "2026-W47"
SUNDAY = date(2026, 11, 22)  # the clock is Monday 2026-11-23 10:00 +08:00; reports arrive next day
SVG = "{http://www.w3.org/2000/svg}"
OTHER_KEY = "kJ3o0j3ZrJm8bmb1S3C3sM9xkXq8c3Tt6Yz8w0cQh0A="


def token(services, person: str, page: str, week: str = WEEK, **extra: str) -> str:
    return services.links.token(person, page, week, services.clock(), **extra)


class Tags(HTMLParser):
    """Every start tag with its attributes, in order."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def named(self) -> dict[str, dict[str, str]]:
        return {a["name"]: a for t, a in self.tags if t in ("input", "select", "textarea") and "name" in a}


def svgs(body: str) -> list[ET.Element]:
    return [ET.fromstring(m) for m in re.findall(r"<svg\b.*?</svg>", body, flags=re.S)]


def form_values(*items: tuple[str, str, str]) -> dict[str, str]:
    values = {"week": WEEK}
    for n, (text, kpi, target) in enumerate(items, start=1):
        values |= {
            f"item{n}_text": text,
            f"item{n}_kpi": kpi,
            f"item{n}_target": target,
            f"item{n}_scope": "",
        }
    return values


THREE = (
    ("优化详情页首屏", "conversion_rate", "+2pp"),
    ("主图测试", "ctr", "+0.5pp"),
    ("差评回访", "complaint_rate", "-10%"),
)


def appraisal_item(kpi, weight, baseline, target, actual, completion, contribution, **more):
    return {
        "kpi": kpi,
        "weight": weight,
        "baseline": baseline,
        "target": target,
        "actual": actual,
        "completion": completion,
        "contribution": contribution,
        **more,
    }


LILEI_ITEMS = [
    # the appraisal engine's row shape (Decimals as strings) ...
    appraisal_item(
        "conversion_rate",
        "60",
        "3.00",
        "5.00",
        "5.50",
        "1.25",
        "75.0",
        raw="1.25",
        unit="%",
        name="支付转化率",
    ),
    # ... and the export's minimal shape (numbers): name and unit come from the KPI table
    appraisal_item("ctr", 40, 4.5, 5.0, 4.9, 0.8, 32.0),
]
# week -> (score, grade); W43 has no appraisal (a gap, not a zero)
LILEI_HISTORY = {
    "2026-W40": ("92.0", "B"),
    "2026-W41": ("101.5", "A"),
    "2026-W42": ("88.0", "B"),
    "2026-W44": ("110.0", "A"),
    "2026-W45": ("64.0", "C"),
    "2026-W46": ("99.0", "B"),
    "2026-W47": ("107.0", "A"),
}
TEAM_W47 = {"zhaoqiang": "120.0", "lilei": "107.0", "zhangwei": "95.0", "hanmeimei": "88.5"}


def seed_appraisals(db, now: datetime) -> None:  # noqa: ANN001
    """lilei's last 8 weeks (one gap; W47 recomputed: v1 50 C superseded by v2 107 A), and four
    of the six ops members for W47."""

    def add(s, person, week, score, grade, *, version=1, current=True, items=()):
        s.add(
            Appraisal(
                person_id=person,
                team_id="ops",
                week=week,
                version=version,
                current=current,
                template_id="ops-default",
                template_reason="运营岗位的默认模板",
                score=Decimal(score),
                grade=grade,
                items=list(items),
                flags=[],
                version_reason="" if version == 1 else "申诉通过，重新计算",
                created_at=now,
            )
        )

    with db() as s, s.begin():
        for week, (score, grade) in LILEI_HISTORY.items():
            if week == LAST_WEEK:
                add(s, "lilei", week, "50.0", "C", current=False, items=LILEI_ITEMS[:1])
                add(s, "lilei", week, score, grade, version=2, items=LILEI_ITEMS)
            else:
                add(s, "lilei", week, score, grade)
        for person, score in TEAM_W47.items():
            if person != "lilei":
                add(s, person, LAST_WEEK, score, "S" if Decimal(score) >= 120 else "B")


@pytest.fixture
def appraised(db, demo_team, clock):  # noqa: ANN001, ANN201
    seed_appraisals(db, clock())
    return LILEI_HISTORY


# ---------------------------------------------------------------- who may open which link


def _tamper_payload(tok: str) -> str:
    payload, mac = tok.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["p"] = "hanmeimei"
    forged = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{forged}.{mac}"


def _flip_mac(tok: str) -> str:
    payload, mac = tok.split(".")
    return f"{payload}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}"


def _foreign(services, person: str, page: str, week: str, **extra: str) -> str:
    other = LinkSigner((Secret(OTHER_KEY),), "http://elsewhere.test")
    return other.token(person, page, week, services.clock(), **extra)


# (viewer, page, week, extra claims, query, how the token is spoiled, clock advance, status, whose data)
ACCESS = [
    ("own plan", "lilei", "plan", WEEK, {}, "", None, None, 200, "李雷"),
    ("own appraisal", "lilei", "appraisal", LAST_WEEK, {}, "", None, None, 200, "李雷"),
    ("own plan form", "lilei", "plan-form", WEEK, {}, "", None, None, 200, "李雷"),
    ("tampered payload", "lilei", "appraisal", LAST_WEEK, {}, "", _tamper_payload, None, 403, None),
    ("tampered signature", "lilei", "appraisal", LAST_WEEK, {}, "", _flip_mac, None, 403, None),
    ("truncated", "lilei", "appraisal", LAST_WEEK, {}, "", lambda t: t[:-6], None, 403, None),
    ("no signature", "lilei", "appraisal", LAST_WEEK, {}, "", lambda t: t.split(".")[0], None, 403, None),
    ("garbage", "lilei", "appraisal", LAST_WEEK, {}, "", lambda t: "bm90LWEtdG9rZW4.x", None, 403, None),
    ("oversize", "lilei", "appraisal", LAST_WEEK, {}, "", lambda t: "a" * 3000 + "." + "b", None, 403, None),
    ("non-ASCII", "lilei", "appraisal", LAST_WEEK, {}, "", lambda t: t[:-1] + "é", None, 403, None),
    ("another deployment's key", "lilei", "appraisal", LAST_WEEK, {}, "", "foreign", None, 403, None),
    ("expired", "lilei", "appraisal", LAST_WEEK, {}, "", None, timedelta(days=7, seconds=1), 410, None),
    (
        "just inside 7 days",
        "lilei",
        "appraisal",
        LAST_WEEK,
        {},
        "",
        None,
        timedelta(days=7, seconds=-1),
        200,
        "李雷",
    ),
    ("unknown page kind", "lilei", "admin", WEEK, {}, "", None, None, 404, None),
    ("a week that does not exist", "lilei", "plan", "2026-W99", {}, "", None, None, 403, None),
    (
        "someone else via ?person",
        "lilei",
        "appraisal",
        LAST_WEEK,
        {},
        "?person=hanmeimei",
        None,
        None,
        403,
        None,
    ),
    ("someone else via of=", "lilei", "plan", WEEK, {"of": "hanmeimei"}, "", None, None, 403, None),
    ("leader via ?person", "zhangwei", "appraisal", LAST_WEEK, {}, "?person=lilei", None, None, 200, "李雷"),
    ("leader via of=", "zhangwei", "plan", WEEK, {"of": "lilei"}, "", None, None, 200, "李雷"),
    ("another team's leader", "wangfang", "appraisal", LAST_WEEK, {}, "?person=lilei", None, None, 403, None),
    (
        "leader cannot file for a member",
        "zhangwei",
        "plan-form",
        WEEK,
        {},
        "?person=lilei",
        None,
        None,
        403,
        None,
    ),
    ("unknown person", "ghost", "plan", WEEK, {}, "", None, None, 403, None),
    ("deactivated person", "hanmeimei", "appraisal", LAST_WEEK, {}, "", None, None, 403, None),
]


@pytest.mark.parametrize(
    "viewer, page, week, extra, query, spoil, advance, status, shows",
    [pytest.param(*row[1:], id=row[0]) for row in ACCESS],
)
def test_who_may_open_which_link(
    services,
    client,
    db,
    clock,
    appraised,
    sim,
    viewer,
    page,
    week,
    extra,
    query,
    spoil,
    advance,
    status,
    shows,
):
    sim.act("lilei", "plan.submit", form_values(*THREE))
    with db() as s, s.begin():
        s.get(Person, "hanmeimei").active = False  # only the "deactivated person" row opens her link
    tok = (
        _foreign(services, viewer, page, week, **extra)
        if spoil == "foreign"
        else token(services, viewer, page, week, **extra)
    )
    if callable(spoil):
        tok = spoil(tok)
    if advance is not None:
        clock.advance(seconds=advance.total_seconds())
    res = client.get(f"/p/{tok}{query}")
    body = res.get_data(as_text=True)
    assert res.status_code == status, body
    assert res.headers["Content-Type"].startswith("text/html")
    assert res.headers["Referrer-Policy"] == "no-referrer"
    assert res.headers["Cache-Control"] == "no-store"
    if shows:
        assert shows in body
    else:
        # a friendly page, and no data of anyone
        assert '<section role="alert">' in body
        for name in ("李雷", "韩梅梅", "张伟", "107.0", "优化详情页首屏", "<svg", "<form"):
            assert name not in body


def test_a_plan_link_cannot_post_a_plan(services, client, demo_team, db):
    res = client.post(
        f"/p/{token(services, 'lilei', 'plan')}", data=form_values(*THREE) | {"_nonce": "a" * 32}
    )
    assert res.status_code == 403 and "另一个页面" in res.get_data(as_text=True)
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == 0


def test_without_a_secret_key_links_are_off(settings, engine, clock, demo_team):
    from dataclasses import replace

    from bot.services import build_services
    from bot.web.app import create_app

    keyless = replace(settings, secret_keys=())
    app = create_app(keyless, build_services(keyless, clock=clock, engine=engine))
    res = app.test_client().get("/p/anything.here")
    assert res.status_code == 503 and "secret_key" in res.get_data(as_text=True)


# ---------------------------------------------------------------- the plan form page


def test_the_page_is_the_same_form_as_the_card_with_baselines(services, client, sim, demo_team):
    (card,) = sim.say("lilei", "写计划")
    res = client.get(f"/p/{token(services, 'lilei', 'plan-form')}")
    assert res.status_code == 200
    body = res.get_data(as_text=True)
    named = Tags(body).named()
    card_names = {f["name"] for f in card["form"]["fields"]} | set(card["form"]["values"])
    assert set(named) == card_names | {"_nonce"}
    assert re.fullmatch(r"[0-9a-f]{32}", named["_nonce"]["value"])
    assert named["item3_kpi"]["name"] == "item3_kpi"
    assert 'value="conversion_rate" selected' in body  # the role section's KPI, as on the card
    conv = demo_value("pay_conversion_rate", SUNDAY)
    assert f'<td>支付转化率</td><td>越高越好</td><td class="num">{fmt.value(conv, "%")}</td>' in body
    # the live preview's script runs only with this response's nonce
    nonce = re.search(r"script-src 'nonce-([^']+)'", res.headers["Content-Security-Policy"]).group(1)
    assert f'<script nonce="{nonce}">' in body
    assert "frame-ancestors 'none'" in res.headers["Content-Security-Policy"]


def test_prefilled_rows_get_their_preview_from_the_server(services, client, sim, demo_team):
    sim.act("lilei", "plan.submit", form_values(*THREE))
    body = client.get(f"/p/{token(services, 'lilei', 'plan-form')}").get_data(as_text=True)
    conv = demo_value("pay_conversion_rate", SUNDAY)
    complaint = demo_value("complaint_rate", SUNDAY)
    assert (
        f'<output class="pv" id="pv-1" aria-live="polite">{fmt.arrow(conv, conv + 2, "%")}</output>' in body
    )
    expected = fmt.arrow(complaint, complaint * Decimal("0.9"), "%")
    # 投诉率 is not in lilei's template this week (运营默认模板: 支付转化率, 详情页点击率)
    warned = f"{expected}；本周模板不计此指标（不计分）"
    assert f'<output class="pv" id="pv-3" aria-live="polite">{warned}</output>' in body
    assert "本周考核模板“运营默认模板”计分的指标：支付转化率、详情页点击率。" in body


def _post(client, tok: str, values: dict[str, str], nonce: str = "b" * 32):
    return client.post(f"/p/{tok}", data=values | {"_nonce": nonce})


def test_submitting_stores_the_plan_and_the_chat_gets_the_receipt(services, client, sim, demo_team, db):
    tok = token(services, "lilei", "plan-form")
    res = _post(client, tok, form_values(*THREE))
    body = res.get_data(as_text=True)
    assert res.status_code == 200, body
    assert "计划已保存。回执已发送到你的聊天。" in body
    conv = demo_value("pay_conversion_rate", SUNDAY)
    assert escape(fmt.arrow(conv, conv + 2, "%")) in body
    with db() as s:
        plan = s.scalar(select(Plan))
        assert (plan.person_id, plan.week, plan.version, plan.submitted_via) == ("lilei", WEEK, 1, "form:web")
        assert [i.kpi_key for i in plan.items] == ["conversion_rate", "ctr", "complaint_rate"]
        row = s.scalar(select(OutboxMessage))
        assert (row.bot_id, row.channel, row.target, row.status) == ("sim", "user", "lilei", "pending")
    assert sim.messages("lilei") == []  # nothing in the chat until the relay delivers
    assert drain(services).sent == 1
    (receipt,) = sim.messages("lilei")
    assert receipt["title"] == f"本周计划已提交 · {WEEK}"
    assert fmt.arrow(conv, conv + 2, "%") in receipt["text"]


def test_a_double_post_stores_one_plan_and_sends_one_receipt(services, client, demo_team, db):
    tok = token(services, "lilei", "plan-form")
    first = _post(client, tok, form_values(*THREE))
    second = _post(client, tok, form_values(*THREE))
    assert first.status_code == second.status_code == 200
    assert "这份表单已经提交过了" in second.get_data(as_text=True)
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == 1
        assert s.scalar(select(func.count()).select_from(PlanItem)) == 3
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_two_racing_posts_of_one_form_store_one_plan(services, client, demo_team, db, monkeypatch):
    """Both requests passed the "seen this nonce?" check before either committed: the second
    insert of the event id fails on the primary key and the page says it was already submitted."""
    from sqlalchemy import insert

    from storage import events
    from storage.models import InboundEvent

    tok = token(services, "lilei", "plan-form")
    _post(client, tok, form_values(*THREE))

    def raced(session, key, now):  # noqa: ANN001
        session.execute(insert(InboundEvent).values(key=key, received_at=now))
        session.flush()
        return True

    monkeypatch.setattr(events, "first_time", raced)
    res = _post(client, tok, form_values(*THREE))
    assert res.status_code == 200 and "这份表单已经提交过了" in res.get_data(as_text=True)
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == 1
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_a_new_form_with_other_content_makes_a_second_version(services, client, demo_team, db):
    tok = token(services, "lilei", "plan-form")
    _post(client, tok, form_values(*THREE), nonce="1" * 32)
    res = _post(client, tok, form_values(*THREE[:2]), nonce="2" * 32)
    assert "第 2 版" in res.get_data(as_text=True)
    with db() as s:
        assert s.scalars(select(Plan.version).order_by(Plan.version)).all() == [1, 2]
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 2


@pytest.mark.parametrize(
    "items",
    [
        (("优化详情页", "", "+2pp"),),
        (("优化详情页", "conversion_rate", "+abc"),),
        (("优化详情页", "conversion_rate", "+2pp"), ("", "ctr", "+0.5pp")),
        (("x" * 201, "conversion_rate", "+2pp"),),
        (("降投诉", "complaint_rate", "+10%"),),
    ],
)
def test_invalid_input_shows_the_cards_messages_and_stores_nothing(
    services, client, sim, demo_team, db, items
):
    (card,) = sim.act("lilei", "plan.submit", form_values(*items))  # the chat card's answer
    messages = [card["form"]["error"]] + [f["error"] for f in card["form"]["fields"] if f["error"]]
    tok = token(services, "lilei", "plan-form")
    res = _post(client, tok, form_values(*items))
    body = res.get_data(as_text=True)
    assert res.status_code == 200
    for message in messages:
        assert escape(message) in body
    assert Tags(body).named()["item1_text"]["value"] == items[0][0]  # what was typed is kept
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == 0
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    # the refused form's nonce was not used up: the corrected form goes through with it
    fixed = _post(client, tok, form_values(*THREE))
    assert "计划已保存" in fixed.get_data(as_text=True)


@pytest.mark.parametrize(
    "data, status, words",
    [
        (form_values(*THREE), 400, "表单已失效"),  # no nonce
        (form_values(*THREE) | {"_nonce": "../../etc"}, 400, "表单已失效"),
        (form_values(("x" * 4001, "conversion_rate", "+2pp")) | {"_nonce": "c" * 32}, 400, "内容太长"),
    ],
)
def test_broken_posts_get_a_clear_page_and_store_nothing(
    services, client, demo_team, db, data, status, words
):
    res = client.post(f"/p/{token(services, 'lilei', 'plan-form')}", data=data)
    assert res.status_code == status and words in res.get_data(as_text=True)
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == 0


def test_after_the_deadline_the_page_says_the_leader_must_unlock(services, client, sim, demo_team, db, clock):
    sim.act("lilei", "plan.submit", form_values(*THREE))
    clock.set(datetime(2026, 11, 24, 3, 0, tzinfo=UTC))
    res = _post(client, token(services, "lilei", "plan-form"), form_values(*THREE[:1]))
    assert "需要主管解锁" in res.get_data(as_text=True)
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == 1


def test_an_old_weeks_link_fills_this_weeks_plan_and_says_so(services, client, demo_team):
    body = client.get(f"/p/{token(services, 'lilei', 'plan-form', LAST_WEEK)}").get_data(as_text=True)
    assert f"这个链接是为 {LAST_WEEK} 发的；现在填写的是本周（{WEEK}）的计划。" in body


# ---------------------------------------------------------------- plan detail


def test_plan_detail_charts_the_week_against_the_expected_pace_and_flags_lag(
    services, client, sim, demo_team, db, clock
):
    sim.act("lilei", "plan.submit", form_values(*THREE))
    conv_b = demo_value("pay_conversion_rate", SUNDAY)
    ctr_b = demo_value("ctr", SUNDAY)
    monday = date(2026, 11, 23)
    conv_days = [conv_b + Decimal("0.1"), conv_b + Decimal("0.2"), conv_b + Decimal("0.3")]
    with db() as s, s.begin():
        for i, v in enumerate(conv_days):
            s.add(
                MetricSample(
                    metric="pay_conversion_rate",
                    scope="shop",
                    day=monday + timedelta(days=i),
                    value=v,
                    source="t",
                    fetched_at=clock(),
                )
            )
        s.add(
            MetricSample(
                metric="ctr",
                scope="shop",
                day=monday + timedelta(days=2),
                value=ctr_b + Decimal("0.45"),
                source="t",
                fetched_at=clock(),
            )
        )
    clock.set(datetime(2026, 11, 26, 2, 0, tzinfo=UTC))  # Thursday 10:00: Mon–Wed are over, 3 of 5
    res = client.get(f"/p/{token(services, 'lilei', 'plan')}")
    body = res.get_data(as_text=True)
    assert res.status_code == 200
    sections = re.findall(r'<section class="item[^"]*" id="item-\d">.*?</section>', body, flags=re.S)
    conv, ctr, complaint = sections
    # conversion: 0.3 of +2pp done = 15 % while 60 % of the week's workdays are over -> lagging
    assert 'class="item lagging"' in conv and "落后：完成 15 %" in conv
    assert "正常：完成 90 %" in ctr and "lagging" not in ctr
    (empty,) = svgs(complaint)  # no value yet: the pace line and the target still show where to be
    assert "暂无数据" in complaint and empty.findall(f"{SVG}polyline[@class='actual']") == []
    assert len(empty.find(f"{SVG}polyline[@class='expected']").get("points").split()) == 7
    assert "已过 3 / 5 天" in body
    # the expected level on Wednesday evening: baseline + 2pp × 3/5
    wednesday_expected = fmt.value(conv_b + Decimal(2) * 3 / 5, "%")
    assert (
        f'<td>11-25 三</td><td class="num">{fmt.value(conv_days[2], "%")}</td><td class="num">{wednesday_expected}</td>'
        in conv
    )
    (chart,) = svgs(conv)
    assert chart.get("role") == "img" and chart.find(f"{SVG}title").text.startswith("1. 优化详情页首屏")
    (actual,) = chart.findall(f"{SVG}polyline[@class='actual']")
    (expected,) = chart.findall(f"{SVG}polyline[@class='expected']")
    act = [tuple(map(float, p.split(","))) for p in actual.get("points").split()]
    exp = [tuple(map(float, p.split(","))) for p in expected.get("points").split()]
    assert len(act) == 3 and len(exp) == 7
    assert [x for x, _ in act] == [x for x, _ in exp[:3]]  # the same day sits at the same x
    assert act[0][1] > act[1][1] > act[2][1]  # rising values are drawn higher (smaller y)
    assert exp[4][1] == exp[5][1] == exp[6][1]  # the weekend keeps Friday's level: no workdays
    assert len(chart.findall(f"{SVG}rect[@class='off']")) == 2  # Saturday and Sunday shaded


def test_a_leader_sees_a_members_plan_and_text_is_escaped(services, client, sim, demo_team):
    sim.act("lilei", "plan.submit", form_values(("<script>alert(1)</script>", "conversion_rate", "+2pp")))
    body = client.get(f"/p/{token(services, 'zhangwei', 'plan', of='lilei')}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert(1)" not in body
    assert "修改计划" not in body  # a leader reads; only the person edits


def test_no_plan_yet_offers_the_form(services, client, demo_team):
    body = client.get(f"/p/{token(services, 'lilei', 'plan')}").get_data(as_text=True)
    assert "李雷 在 2026-W48 还没有提交计划。" in body
    (href,) = re.findall(r'href="(/p/[^"]+)"', body)
    assert client.get(href).status_code == 200
    assert services.links.verify(href[3:], services.clock()).page == "plan-form"


# ---------------------------------------------------------------- appraisal detail


def test_appraisal_detail_shows_score_template_formulas_and_eight_weeks(services, client, appraised):
    body = client.get(f"/p/{token(services, 'lilei', 'appraisal', LAST_WEEK)}").get_data(as_text=True)
    assert '<span class="grade">107.0</span>' in body and '<span class="grade">A</span>' in body
    assert "运营默认模板（ops-default）" in body and "运营岗位的默认模板" in body
    assert "第 2 版：申诉通过，重新计算" in body
    # the card's explanation (cards/explain.py) and the points it adds
    assert "(5.50 − 3.00) / (5.00 − 3.00) = 125 % × 权重 60 = 75.0 分" in body
    # the minimal row: the KPI's name and unit come from the KPI table
    assert "<td>详情页点击率</td>" in body
    assert "(4.90 − 4.50) / (5.00 − 4.50) = 80 % × 权重 40 = 32.0 分" in body
    (chart,) = svgs(body)
    assert chart.find(f"{SVG}title").text == "李雷 最近 8 周得分"
    bars = chart.findall(f"{SVG}rect[@class='bar']")
    labels = [t.text for t in chart.findall(f"{SVG}text[@class='xlabel']")]
    assert labels == ["W40", "W41", "W42", "W43", "W44", "W45", "W46", "W47"]
    shown = {b.find(f"{SVG}title").text.split("：")[0] for b in bars}
    assert shown == {w.split("-")[1] for w in LILEI_HISTORY}  # W43 is a gap, not a zero bar
    assert len(chart.findall(f"{SVG}text[@class='gap']")) == 1
    # bar heights are proportional to the scores (the axis starts at 0); W47 is the current v2 (107)
    per_point = {
        float(b.get("height")) / float(LILEI_HISTORY["2026-" + b.find(f"{SVG}title").text.split("：")[0]][0])
        for b in bars
    }
    assert max(per_point) - min(per_point) < 0.01
    assert "50.0" not in body  # the superseded version is not shown


def _order(body: str) -> list[str]:
    return [a["data-person"] for t, a in Tags(body).tags if t == "tr" and "data-person" in a]


@pytest.mark.parametrize(
    "query, order",
    [
        ("", ["zhaoqiang", "lilei", "zhangwei", "hanmeimei", "chenjing", "liuyang"]),
        ("?sort=score&dir=asc", ["hanmeimei", "zhangwei", "lilei", "zhaoqiang", "chenjing", "liuyang"]),
        # names in code point order (the CJK block's radical/stroke order): 刘 张 李 赵 陈 韩
        ("?sort=name&dir=asc", ["liuyang", "zhangwei", "lilei", "zhaoqiang", "chenjing", "hanmeimei"]),
        ("?sort=name&dir=desc", ["hanmeimei", "chenjing", "zhaoqiang", "lilei", "zhangwei", "liuyang"]),
        ("?sort=nonsense", ["zhaoqiang", "lilei", "zhangwei", "hanmeimei", "chenjing", "liuyang"]),
    ],
)
def test_a_leaders_link_shows_the_team_table_sorted_on_the_server(services, client, appraised, query, order):
    body = client.get(f"/p/{token(services, 'zhangwei', 'appraisal', LAST_WEEK)}{query}").get_data(
        as_text=True
    )
    assert _order(body) == order


def test_each_team_row_links_to_that_persons_page_with_a_fresh_leader_link(services, client, appraised):
    body = client.get(f"/p/{token(services, 'zhangwei', 'appraisal', LAST_WEEK)}").get_data(as_text=True)
    rows = re.findall(r'<tr data-person="(\w+)"><td><a href="/p/([^"]+)">([^<]+)</a>', body)
    assert len(rows) == 6
    for person, tok, name in rows:
        claims = services.links.verify(tok, services.clock(), page="appraisal")
        assert claims.person == "zhangwei" and claims.week == LAST_WEEK
        assert claims.extra == ({} if person == "zhangwei" else {"of": person})
        page = client.get(f"/p/{tok}").get_data(as_text=True)
        assert f'<div class="sub">{name}</div>' in page
        if person in TEAM_W47:
            assert f'<span class="grade">{TEAM_W47[person]}</span>' in page
    # sort headers are server-side links that keep the signed path
    assert 'href="?sort=score&amp;dir=asc"' in body and 'href="?sort=name&amp;dir=asc"' in body


def test_a_member_does_not_get_the_team_table(services, client, appraised):
    body = client.get(f"/p/{token(services, 'lilei', 'appraisal', LAST_WEEK)}").get_data(as_text=True)
    assert "teamtable" not in body and "赵强" not in body


# ---------------------------------------------------------------- the other chat forms as pages


def _form_link(card: dict) -> str:
    return card["card"]["form"]["link"]


def test_the_rating_form_opens_as_a_page_and_saves_through_its_handler(services, client, sim, demo_team, db):
    from storage.models import Rating

    (card,) = sim.say("zhangwei", "评分")
    link = _form_link(card)
    assert services.links.verify(link.split("/p/")[1], services.clock()).page == "rating-form"
    page = client.get(link.replace("http://planloop.test", ""))
    named = Tags(page.get_data(as_text=True)).named()
    assert page.status_code == 200 and set(named) == {f["name"] for f in card["form"]["fields"]} | {"_nonce"}

    tok = link.split("/p/")[1]
    refused = _post(client, tok, {"week": WEEK, "person": "", "kpi": "leader_rating", "stars": "4"})
    assert "请选择本团队的员工" in refused.get_data(as_text=True)
    saved = _post(client, tok, {"week": WEEK, "person": "lilei", "kpi": "leader_rating", "stars": "4"})
    body = saved.get_data(as_text=True)
    assert "已提交。回执已发送到你的聊天。" in body and "李雷 · 2026-W48 · 主管评分：4 星" in body
    with db() as s:
        row = s.get(Rating, ("lilei", WEEK, "leader_rating"))
        assert (row.stars, row.by) == (4, "zhangwei")
        (sent,) = s.scalars(select(OutboxMessage)).all()
        assert (sent.target, sent.card["title"]) == ("zhangwei", "已保存")


def test_a_member_opening_a_rating_link_gets_the_handlers_refusal(services, client, demo_team):
    res = client.get(f"/p/{token(services, 'lilei', 'rating-form')}")
    body = res.get_data(as_text=True)
    assert res.status_code == 200 and "只有团队主管可以做这件事。" in body and "<form" not in body


def test_an_appeal_and_its_review_go_through_their_handlers(services, client, appraised, db):
    from storage.models import Appeal

    with db() as s:
        mine = s.scalar(
            select(Appraisal.id).where(
                Appraisal.person_id == "lilei", Appraisal.week == LAST_WEEK, Appraisal.current.is_(True)
            )
        )
        hers = s.scalar(select(Appraisal.id).where(Appraisal.person_id == "hanmeimei"))
    tok = token(services, "lilei", "appeal-form", LAST_WEEK, appraisal=str(mine))
    named = Tags(client.get(f"/p/{tok}").get_data(as_text=True)).named()
    assert {"kpi", "note", "appraisal", "_nonce"} <= set(named) and named["appraisal"]["value"] == str(mine)
    # the hidden values are the server's: a forged appraisal id in the POST is ignored
    res = _post(client, tok, {"appraisal": str(hers), "kpi": "conversion_rate", "note": "周日的数据晚到了"})
    assert "申诉已提交" in res.get_data(as_text=True)
    with db() as s:
        appeal = s.scalar(select(Appeal))
        assert (appeal.appraisal_id, appeal.kpi_key, appeal.status) == (mine, "conversion_rate", "open")
        sent = {(m.target, m.card["title"]) for m in s.scalars(select(OutboxMessage))}
        review_card = next(m.card for m in s.scalars(select(OutboxMessage)) if m.target == "zhangwei")
    assert ("lilei", f"申诉已提交 · {LAST_WEEK}") in sent and len(
        sent
    ) == 2  # the leader's review + the receipt

    review = review_card["form"]["link"].split("/p/")[1]
    assert services.links.verify(review, services.clock()).person == "zhangwei"
    body = client.get(f"/p/{review}").get_data(as_text=True)
    assert "请选择处理方式" not in body and 'name="decision"' in body  # a fresh form, not a refusal
    no_reason = _post(client, review, {"decision": "reject", "reply": ""}, nonce="d" * 32)
    assert "驳回时请写明理由" in no_reason.get_data(as_text=True)
    done = _post(client, review, {"decision": "reject", "reply": "数据无误"}, nonce="d" * 32)
    assert done.status_code == 200 and "<form" not in done.get_data(as_text=True)
    with db() as s:
        assert s.scalar(select(Appeal.status)) == "rejected"
    # the member cannot open the review as if they were the leader
    theirs = client.get(f"/p/{token(services, 'lilei', 'appeal-review', LAST_WEEK, appeal=str(appeal.id))}")
    assert "只有该员工所在团队的主管可以处理。" in theirs.get_data(as_text=True)
    with db() as s:
        assert s.scalar(select(Appeal.status)) == "rejected"


def test_a_progress_note_opens_as_a_page_and_is_saved_on_the_item(services, client, sim, demo_team, db):
    sim.act("lilei", "plan.submit", form_values(*THREE))
    with db() as s:
        item = s.scalar(select(PlanItem.id).where(PlanItem.position == 1))
    tok = token(services, "lilei", "progress-note", item=str(item))
    assert 'name="note"' in client.get(f"/p/{tok}").get_data(as_text=True)
    empty = _post(client, tok, {"note": ""})
    assert "请写几句说明。" in empty.get_data(as_text=True)
    saved = _post(client, tok, {"note": "周三上线新首图，数据周四可见"})
    assert "说明已保存" in saved.get_data(as_text=True)
    with db() as s:
        assert s.get(PlanItem, item).note == "周三上线新首图，数据周四可见"
    # someone else's item: the handler refuses, nothing changes
    other = _post(
        client, token(services, "hanmeimei", "progress-note", item=str(item)), {"note": "x"}, nonce="e" * 32
    )
    assert "这是别人的计划项。" in other.get_data(as_text=True)
    with db() as s:
        assert s.get(PlanItem, item).note == "周三上线新首图，数据周四可见"
