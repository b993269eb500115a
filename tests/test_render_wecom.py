"""cards/render/wecom.py: golden files, WeCom's limits (checked by the fake server's own rules),
byte-length splitting of Chinese text, and the button-key encoding."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cards.model import Button, Card, Form, Input, Markdown, Option, Table
from cards.render import wecom as render
from tests.fakes.wecom import Refused, check_template_card
from tests.wecom_samples import FORM_LINK, SAMPLES, lag_alert, monday_summary, plan_form

GOLDEN = Path(__file__).parent / "golden" / "wecom"
FALLBACK = "https://plan.example.com"


def rendered(name: str) -> dict[str, object]:
    card = SAMPLES[name]()
    return {
        "app": render.app_messages(card, task_id="pl-golden-1", fallback_url=FALLBACK),
        "robot": render.robot_messages(card),
        "chat": render.chat_messages(card),
    }


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_golden(name):
    path = GOLDEN / f"{name}.json"
    got = rendered(name)
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(got, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    assert got == json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_sample_is_within_wecom_limits(name):
    out = rendered(name)
    for msg in out["app"]:
        if msg["msgtype"] == "template_card":
            check_template_card(msg["template_card"])
        else:
            assert len(msg["markdown"]["content"].encode()) <= 2048
    for msg in out["robot"]:
        if msg["msgtype"] == "template_card":
            check_template_card(msg["template_card"], robot=True)
        elif msg["msgtype"] == "markdown":
            assert len(msg["markdown"]["content"].encode()) <= 4096
        else:
            assert len(msg["text"]["content"].encode()) <= 2048
    for msg in out["chat"]:
        assert len(msg["markdown"]["content"].encode()) <= 2048


def test_the_limit_checker_is_not_toothless():
    with pytest.raises(Refused):
        check_template_card({"card_type": "button_interaction", "task_id": "t", "button_list": []})
    with pytest.raises(Refused):
        check_template_card(
            {
                "card_type": "text_notice",
                "main_title": {"title": "x" * 37},
                "card_action": {"type": 1, "url": "http://x"},
            }
        )


def _unsplit(parts: list[str]) -> str:
    return "\n".join(p.removeprefix("（续）\n") for p in parts)


def test_monday_summary_is_split_for_the_robot_at_line_breaks_and_loses_nothing():
    card = monday_summary(rows=60)
    parts = [m["markdown"]["content"] for m in render.robot_messages(card) if m["msgtype"] == "markdown"]
    assert len(parts) >= 2
    assert all(len(p.encode()) <= 4096 for p in parts)
    whole = _unsplit(parts)
    for member, item, kpi, target in card.blocks[2].rows:  # type: ignore[union-attr]
        assert f"{member} | {item} | {kpi} | {target}" in whole
    assert whole.count("第60项") == 1
    assert all(p.startswith("（续）\n") for p in parts[1:])


def test_lag_alert_mentions_the_person_inline_and_all_by_a_text_message():
    parts = render.robot_messages(lag_alert())
    assert [m["msgtype"] for m in parts] == ["markdown"]
    assert parts[-1]["markdown"]["content"].endswith("<@LiLei>")
    summary = render.robot_messages(monday_summary(rows=3))
    assert summary[-1] == {
        "msgtype": "text",
        "text": {"content": "请大家查看：第48周计划汇总 · 运营组", "mentioned_list": ["@all"]},
    }


@pytest.mark.parametrize(
    "text, limit",
    [
        ("计划" * 3000, 4096),  # one long Chinese line: cut between characters
        ("第一行\n" + "数" * 2000 + "\n最后一行", 2048),
        ("😀" * 1500, 4096),  # 4-byte characters
        ("ab\ncd\nef", 4),
        ("", 10),
    ],
)
def test_split_utf8_never_cuts_a_character(text, limit):
    parts = render.split_utf8(text, limit)
    assert all(len(p.encode("utf-8")) <= limit for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")
    for p in parts:
        p.encode("utf-8").decode("utf-8")  # every piece is whole characters


@given(
    st.text(alphabet=st.sampled_from("计划目标a\n😀é"), max_size=300), st.integers(min_value=4, max_value=64)
)
def test_split_utf8_property(text, limit):
    parts = render.split_utf8(text, limit)
    assert all(len(p.encode()) <= limit for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")


@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30),
    st.dictionaries(
        st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10).filter(
            lambda k: not k.startswith("_")
        ),
        st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
        max_size=4,
    ),
)
def test_button_key_round_trips(action, value):
    assert render.decode_key(render.encode_key(action, value)) == (action, value)


@pytest.mark.parametrize(
    "card, message",
    [
        (Card("x", buttons=tuple(Button(f"b{i}", action=f"a.{i}") for i in range(7))), "at most 6 buttons"),
        (Card("x", buttons=(Button("b", action="a", value={"v": "长" * 400}),)), "longer than 1024 bytes"),
        (Card("x", form=Form("plan.submit", (Input("items", "计划"),))), "needs a link"),
        (
            Card(
                "x",
                form=Form("s", (Input("k", "指标", "select", options=(Option("a", "A"),)),)),
                buttons=(Button("b", action="a"),),
            ),
            "select form and callback buttons",
        ),
        (Card("x", blocks=(Markdown("无链接的通知"),)), "needs a URL"),
        (Card("", buttons=(Button("b", action="a"),)), "empty card"),
    ],
)
def test_cards_beyond_wecom_limits_are_refused_with_a_reason(card, message):
    with pytest.raises(render.WeComLimitError, match=message):
        render.app_messages(card, task_id="t1")


def test_a_toast_only_card_uses_the_toast_as_its_title():
    (msg,) = render.app_messages(Card("", toast="已确认"), task_id="t1", fallback_url=FALLBACK)
    assert msg["template_card"]["main_title"] == {"title": "已确认"}
    check_template_card(msg["template_card"])


def test_six_callback_buttons_plus_links_move_the_links_to_the_jump_list():
    card = Card(
        "x",
        buttons=(
            *(Button(f"b{i}", action=f"a.{i}") for i in range(6)),
            Button("详情", url="http://d.test/1"),
        ),
    )
    (msg,) = render.app_messages(card, task_id="t1")
    tc = msg["template_card"]
    assert [b["key"] for b in tc["button_list"]] == [f"a.{i}" for i in range(6)]
    assert tc["jump_list"] == [{"type": 1, "title": "详情", "url": "http://d.test/1"}]


def test_same_action_twice_gets_distinct_keys_that_decode_to_the_same_click():
    card = Card(
        "x",
        buttons=(
            Button("同意", action="vote", value={"v": "1"}),
            Button("也同意", action="vote", value={"v": "1"}),
        ),
    )
    (msg,) = render.app_messages(card, task_id="t1")
    keys = [b["key"] for b in msg["template_card"]["button_list"]]
    assert len(set(keys)) == 2
    assert [render.decode_key(k) for k in keys] == [("vote", {"v": "1"})] * 2


def test_long_title_and_text_go_first_as_markdown_and_the_card_follows():
    title = "第四十八周运营组全体成员计划提交情况与进度落后提醒汇总（含详情页与主图优化）"
    assert len(title) > 36
    lines = tuple(Markdown(f"第{i}条：优化详情页首屏，目标支付转化率提升两个百分点") for i in range(12))
    card = Card(title, blocks=lines, buttons=(Button("确认", action="ok"),))
    msgs = render.app_messages(card, task_id="t1")
    assert [m["msgtype"] for m in msgs[:-1]] == ["markdown"] * (len(msgs) - 1)
    tc = msgs[-1]["template_card"]
    assert len(tc["main_title"]["title"]) == 36 and tc["main_title"]["title"].endswith("…")
    assert len(tc["sub_title_text"]) <= 160 and tc["sub_title_text"].endswith("（全文见上方消息）")
    whole = _unsplit([m["markdown"]["content"] for m in msgs[:-1]])
    assert title in whole and all(f"第{i}条" in whole for i in range(12))


def test_select_only_form_stays_in_the_card_and_text_form_becomes_the_signed_link():
    (msg,) = render.app_messages(SAMPLES["status_select"](), task_id="t1")
    tc = msg["template_card"]
    assert tc["card_type"] == "multiple_interaction"
    assert [s["question_key"] for s in tc["select_list"]] == ["kpi", "status"]
    assert tc["select_list"][0]["selected_id"] == "ctr"
    assert render.decode_key(tc["submit_button"]["key"]) == ("item.status", {"item": "42"})

    (msg,) = render.app_messages(plan_form(), task_id="t1", fallback_url=FALLBACK)
    tc = msg["template_card"]
    assert tc["card_action"] == {"type": 1, "url": FORM_LINK}
    assert tc["jump_list"][0]["url"] == FORM_LINK


def test_user_text_cannot_inject_mentions_or_markup_into_robot_markdown():
    card = Card(
        "提醒",
        blocks=(Markdown('<@all> 请看 <font color="warning">x</font>'), Table(("a",), (("<@boss>",),))),
    )
    (msg,) = render.robot_messages(card)
    content = msg["markdown"]["content"]
    assert "<@all>" not in content and "<@boss>" not in content and '<font color="warning">x' not in content
    assert "＜@all＞" in content
