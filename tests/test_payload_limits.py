"""The largest real cards, through every channel of every platform, measured against cards/limits.py.

Issue 18 §2. The cards: a 50-person leader summary and its group card (zh-CN and en-US), a
team lag card with 30 rows, an appraisal with 12 items and long texts. Each is rendered the
way each channel sends it (DingTalk: card platform, app robot, custom robot; Feishu: API card,
group robot; WeCom: app messages, app group chat, group robot) and every field the table names
is measured. Where a DingTalk text had to be shortened it ends with a "查看详情" link to the
card's page.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal as D
from typing import Any

import pytest

from appraisal.scoring import ItemInput, KpiInfo, score
from appraisal.templates import parse_template
from cards import builders as b
from cards import builders_progress as bp
from cards.i18n import texts
from cards.limits import TABLE, limit, size
from cards.model import Button, Card
from cards.render import dingtalk, feishu, wecom
from tests.test_builders_progress import item
from tests.test_digest_cards import digest

LINK = "https://plan.example.com/p/" + "s" * 120  # a signed page's address is about this long


def appraisal_12() -> Card:
    kpis = {
        f"k{n}": KpiInfo(f"k{n}", f"第{n}项指标（大促期间含预售、定金和尾款）", "%", "up") for n in range(12)
    }
    template = parse_template(
        {"id": "t12", "name": "大促十二项模板", "weights": {k: 8 + (n < 4) for n, k in enumerate(kpis)}}
    )
    items = [
        ItemInput(
            k,
            f"双11会场主图优化第{n}轮（含详情页首屏、主图视频和SKU命名）" * 3,
            "shop",
            D("3.00"),
            D("5.00"),
            D("4.10"),
        )
        for n, k in enumerate(kpis)
    ]
    result = score(template, kpis, items)
    view = b.AppraisalView(
        appraisal_id=7,
        person_name="欧阳成员01",
        week="2026-W46",
        version=2,
        template="大促十二项模板",
        reason="大促十二项模板（双11 10-20–11-11）替代 运营默认模板" * 2,
        score=result.score,
        grade=result.grade,
        rows=[r.to_dict() for r in result.rows],
        adjustments=[a.to_dict() for a in result.adjustments],
        flags=list(result.flags),
        version_reason="申诉通过：数据晚到，按补录后的支付转化率重算" * 3,
    )
    return b.appraisal_card(view, detail_url=LINK)


def largest_cards() -> dict[str, Card]:
    cards: dict[str, Card] = {}
    for locale in ("zh-CN", "en-US"):
        tr = texts(locale)
        cards[f"summary_leader_50/{locale}"] = b.monday_summary_leader_card(tr, digest(50))
        cards[f"summary_chat_50/{locale}"] = b.monday_summary_chat_card(tr, digest(50))
    cards["team_lag_30"] = bp.team_lag_card(
        "ops",
        "双11运营设计组（天猫旗舰店）",
        date(2026, 11, 25),
        [(f"欧阳成员{n:02d}", item(n)) for n in range(30)],
    )
    cards["appraisal_12"] = appraisal_12()
    # the same appraisal with many buttons, to press the button limits too
    many = appraisal_12()
    cards["appraisal_12_buttons"] = Card(
        many.title,
        many.blocks,
        tuple(
            Button(f"按钮{n}", action="appeal.open", value={"appraisal": "7", "n": str(n) * 300})
            for n in range(6)
        ),
        theme=many.theme,
    )
    return cards


CARDS = largest_cards()


# ------------------------------------------------------------------ measuring


def _over(out: list[str], platform: str, kind: str, what: str, measured: int) -> None:
    if measured > limit(platform, kind, what):
        out.append(f"{platform}/{kind}: {what} is {measured}, the limit is {limit(platform, kind, what)}")


def dingtalk_violations(card: Card) -> list[str]:
    out: list[str] = []
    params = dingtalk.card_params(card, {})
    for key, value in params.items():
        _over(out, "dingtalk", "card", "cardParamMap key", size(key))
        _over(out, "dingtalk", "card", "cardParamMap value", size(value))
    _over(out, "dingtalk", "card", "buttons", len(json.loads(params["buttons"])))
    msg_key, param = dingtalk.app_robot_message(card)
    _over(out, "dingtalk", "app_robot", "msgParam", size(json.dumps(param, ensure_ascii=False)))
    _over(out, "dingtalk", "app_robot", "buttons", sum(1 for k in param if k.startswith("actionTitle")))
    _over(out, "dingtalk", "any", "title", len(param["title"]))
    robot = dingtalk.robot_message(card)
    content = robot.get("markdown") or robot.get("actionCard") or {}
    _over(out, "dingtalk", "custom_robot", "markdown text", size(content["text"]))
    _over(out, "dingtalk", "custom_robot", "buttons", len(content.get("btns", [])))
    _over(out, "dingtalk", "any", "title", len(content["title"]))
    return out


def _tables(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("tag") == "table":
            yield node
        for value in node.values():
            yield from _tables(value)
    elif isinstance(node, list):
        for value in node:
            yield from _tables(value)


def feishu_violations(card: Card) -> list[str]:
    out: list[str] = []
    api = feishu.render(card)
    _over(out, "feishu", "api", "card JSON (content string)", feishu.encoded_size(api, as_string=True))
    _over(out, "feishu", "any", "components", feishu._count_components(api))
    for table in _tables(api):
        _over(out, "feishu", "any", "table page_size", int(table.get("page_size", 0)))
    hook = feishu.render(card, interactive=False)
    _over(out, "feishu", "webhook", "request body", feishu.encoded_size(hook, as_string=False))
    return out


def _template_card(out: list[str], kind: str, tc: dict[str, Any]) -> None:
    _over(out, "wecom", kind, "main_title.title", len(tc.get("main_title", {}).get("title", "")))
    _over(out, "wecom", kind, "sub_title_text", len(tc.get("sub_title_text", "")))
    rows = tc.get("horizontal_content_list", [])
    _over(out, "wecom", "app", "horizontal_content_list", len(rows))
    for r in rows:
        _over(out, "wecom", "app", "horizontal keyname", len(r.get("keyname", "")))
        _over(out, "wecom", kind, "horizontal value", len(r.get("value", "")))
    jumps = tc.get("jump_list", [])
    _over(out, "wecom", "app", "jump_list", len(jumps))
    for j in jumps:
        _over(out, "wecom", kind, "jump title", len(j.get("title", "")))
    buttons = tc.get("button_list", [])
    _over(out, "wecom", "app", "button_list", len(buttons))
    for btn in buttons:
        _over(out, "wecom", "app", "button text", len(btn.get("text", "")))
        _over(out, "wecom", "app", "button key", size(btn.get("key", "")))
    if "task_id" in tc:
        _over(out, "wecom", "app", "task_id", size(tc["task_id"]))
    selects = tc.get("select_list", [])
    _over(out, "wecom", "app", "select_list", len(selects))
    for sel in selects:
        _over(out, "wecom", "app", "option_list", len(sel.get("option_list", [])))
        for opt in sel.get("option_list", []):
            _over(out, "wecom", "app", "option id", size(opt.get("id", "")))
            _over(out, "wecom", "app", "option text", len(opt.get("text", "")))


def wecom_violations(card: Card) -> list[str]:
    out: list[str] = []
    channels = (
        ("app", wecom.app_messages(card, task_id="appraisal-7-v2", fallback_url=LINK)),
        ("chat", wecom.chat_messages(card)),
        ("robot", wecom.robot_messages(card)),
    )
    for kind, messages in channels:
        for m in messages:
            if m["msgtype"] == "markdown":
                _over(out, "wecom", kind, "markdown content", size(m["markdown"]["content"]))
            elif m["msgtype"] == "text":
                _over(
                    out,
                    "wecom",
                    "app" if kind != "robot" else "robot",
                    "text content",
                    size(m["text"]["content"]),
                )
            elif m["msgtype"] == "template_card":
                _template_card(out, "robot" if kind == "robot" else "app", m["template_card"])
    return out


# ------------------------------------------------------------------ the tests


def test_the_table_has_one_sourced_row_per_limit() -> None:
    assert len({(r.platform, r.kind, r.what) for r in TABLE}) == len(TABLE)
    assert all(r.source and r.maximum > 0 and r.unit in {"bytes", "chars", "items"} for r in TABLE)
    # the figures the issue names, as the documentation gives them
    assert limit("dingtalk", "card", "cardParamMap value") == 1024
    assert limit("dingtalk", "app_robot", "msgParam") == 15_000
    assert limit("wecom", "robot", "markdown content") == 4096
    assert limit("feishu", "api", "card JSON (content string)") <= 30 * 1024


@pytest.mark.parametrize("name", sorted(CARDS))
@pytest.mark.parametrize(
    "violations",
    [dingtalk_violations, feishu_violations, wecom_violations],
    ids=["dingtalk", "feishu", "wecom"],
)
def test_the_largest_cards_fit_every_limit_of_every_channel(name: str, violations: Any) -> None:
    card = CARDS[name]
    assert Card.from_dict(card.to_dict()) == card  # what the outbox stores is what is measured
    assert violations(card) == []


def test_the_measure_finds_what_the_old_renderer_sent() -> None:
    """The control: the 50-person summary as one unbounded card value (as before) is caught."""
    card = CARDS["summary_leader_50/zh-CN"]
    old = dingtalk.fit(dingtalk.body(card), 18_000)
    assert size(old) > limit("dingtalk", "card", "cardParamMap value")


@pytest.mark.parametrize(
    "name", ["summary_leader_50/zh-CN", "summary_leader_50/en-US", "team_lag_30", "appraisal_12"]
)
def test_a_shortened_dingtalk_card_links_to_its_page(name: str) -> None:
    card = CARDS[name]
    markdown = dingtalk.card_params(card, {})["markdown"]
    link = dingtalk.detail_link(card)
    assert dingtalk.TRUNCATED in markdown  # these are all far above 1 KB
    if link:
        assert markdown.endswith(f"[{dingtalk.DETAILS}]({link})")
    assert size(markdown) <= dingtalk.CARD_VALUE_BYTES


def test_buttons_that_do_not_fit_one_card_value_are_left_off_from_the_last() -> None:
    card = CARDS["appraisal_12_buttons"]
    shown = json.loads(dingtalk.card_params(card, {})["buttons"])
    assert 0 < len(shown) < 5
    assert [s["text"] for s in shown] == [f"按钮{n}" for n in range(len(shown))]


@pytest.mark.parametrize(
    ("text_bytes", "cut"),
    [(1_000, False), (9_000, False), (20_000, True)],
)
def test_the_app_robot_msgparam_stays_within_15000_bytes_even_with_json_escapes(
    text_bytes: int, cut: bool
) -> None:
    from cards.model import Markdown

    line = '行"引号"\n'  # each line grows in JSON: \" and \n are two bytes each
    body = line * (text_bytes // size(line))
    card = Card("长卡片", (Markdown(body),), (Button("查看详情", url=LINK),))
    _, param = dingtalk.app_robot_message(card)
    assert size(json.dumps(param, ensure_ascii=False)) <= 15_000
    assert (dingtalk.TRUNCATED in param["text"]) is cut
