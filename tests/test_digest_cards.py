"""The digest and reminder cards: the zh-CN/en-US catalogue, the numbers they show, and that every
one of them, for a 50-person team, renders within each platform's limits."""

from __future__ import annotations

import string
from decimal import Decimal as D

import pytest

from cards import builders as b
from cards.i18n import CATALOGUES, EN, ZH, texts
from cards.model import Card, Table
from cards.render import dingtalk, feishu, text, wecom

ZH_TR, EN_TR = texts("zh-CN"), texts("en-US")
GRADES = "SABCD"


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_both_catalogues_say_the_same_things() -> None:
    assert set(ZH) == set(EN)
    for key in ZH:
        assert placeholders(ZH[key]) == placeholders(EN[key]), key
    assert set(CATALOGUES) == {"zh-CN", "en-US"}


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("zh-CN", "zh-CN"), ("en-US", "en-US"), ("fr-FR", "zh-CN"), ("", "zh-CN")],
)
def test_unknown_locales_fall_back_to_chinese(locale: str, expected: str) -> None:
    assert texts(locale).locale == expected


@pytest.mark.parametrize(
    ("ratio", "zh", "en"),
    [
        (None, "暂无数据", "no data"),  # never 0 %
        (D("0"), "0 %", "0 %"),
        (D("0.834"), "83 %", "83 %"),
        (D("0.835"), "84 %", "84 %"),  # half up
        (D("1.25"), "125 %", "125 %"),
        (D("-0.1"), "-10 %", "-10 %"),
    ],
)
def test_percent(ratio, zh: str, en: str) -> None:
    assert ZH_TR.percent(ratio) == zh and EN_TR.percent(ratio) == en


@pytest.mark.parametrize(
    ("grades", "shown"),
    [
        ({}, "S 0 · A 0 · B 0 · C 0 · D 0"),
        ({"A": 3, "D": 1}, "S 0 · A 3 · B 0 · C 0 · D 1"),
        ({"B": 1, "E": 2}, "S 0 · A 0 · B 1 · C 0 · D 0 · E 2"),  # a template's own band is kept
    ],
)
def test_grade_counts(grades: dict[str, int], shown: str) -> None:
    assert b.grade_counts(grades) == shown


def test_the_table_sorts_by_score_and_averages() -> None:
    rows = [
        b.ScoreRow("李雷", D("95.5"), "A", "运营默认模板"),
        b.ScoreRow("韩梅梅", D("107"), "S", "运营默认模板", version=2),
        b.ScoreRow("陈静", D("60"), "C", "设计默认模板"),
    ]
    card = b.appraisal_table_card(
        ZH_TR, team_name="运营组", week="2026-W48", rows=rows, published_at="11-27 20:00"
    )
    table = next(x for x in card.blocks if isinstance(x, Table))
    assert [r[:3] for r in table.rows] == [
        ("韩梅梅", "107.0（第 2 版）", "S"),
        ("李雷", "95.5", "A"),
        ("陈静", "60.0", "C"),
    ]
    plain = text.render(card)
    assert "平均得分：87.5" in plain  # (107 + 95.5 + 60) / 3
    assert "等级分布：S 1 · A 1 · B 0 · C 1 · D 0" in plain


def test_the_reminder_opens_the_form_by_button_and_by_link() -> None:
    card = b.plan_reminder_card(
        ZH_TR,
        week="2026-W48",
        days="11-23–11-29",
        person_name="李雷",
        deadline="11-23 14:00",
        link="https://plan.example.com/p/t",
    )
    assert [(x.action, x.url) for x in card.buttons] == [
        ("plan.form", ""),
        ("", "https://plan.example.com/p/t"),
    ]
    assert "请在 11-23 14:00 前提交" in text.render(card)
    en = b.plan_reminder_card(
        EN_TR, week="2026-W48", days="11-23–11-29", person_name="Li Lei", deadline="11-23 14:00"
    )
    assert en.title == "Reminder: your plan for 2026-W48" and [x.label for x in en.buttons] == [
        "File my plan"
    ]


@pytest.mark.parametrize(("missing", "leave_buttons"), [(1, 1), (3, 3), (4, 0), (50, 0)])
def test_the_missing_list_offers_leave_buttons_only_for_a_short_list(
    missing: int, leave_buttons: int
) -> None:
    card = missing_card(missing)
    assert sum(1 for x in card.buttons if x.action == "leave.mark") == leave_buttons
    assert card.buttons[0].action == "plan.remind" and len(card.buttons) <= dingtalk.MAX_BUTTONS


def test_nobody_to_remind_again_when_everyone_missing_paused() -> None:
    card = b.plan_missing_card(
        ZH_TR,
        team_id="ops",
        team_name="运营组",
        week="2026-W48",
        days="11-23–11-29",
        deadline="11-23 14:00",
        missing=[b.MissingPlan("lilei", "李雷", "paused")],
    )
    assert "plan.remind" not in [x.action for x in card.buttons]
    assert "李雷 | 已暂停提醒" in text.render(card)


# ---------------------------------------------------------------- a 50-person team

TEAM = 50


def name(n: int) -> str:
    return f"欧阳成员{n:02d}"


def digest(n: int = TEAM) -> b.WeekDigest:
    members = [
        b.MemberWeek(
            name(i),
            planned=i % 7 != 0,
            completion=None if i % 7 == 0 else D(i) / D(37),
            lagging=i % 3,
            score=None if i % 11 == 0 else D(40) + D(i) * D("1.37"),
            grade="" if i % 11 == 0 else GRADES[i % 5],
            delta=None if i % 5 == 0 else D(i % 9) - D(4),
        )
        for i in range(n)
    ]
    return b.WeekDigest(
        team_name="双11运营设计组（天猫旗舰店）",
        week="2026-W46",
        last_week="2026-W45",
        last_days="11-02–11-08",
        members=members,
        average_completion=D("0.8123"),
        average_score=D("77.04"),
        grades={g: n // 5 for g in GRADES},
        movers=[
            b.Mover(name(1), D("40"), D("99.5")),
            b.Mover(name(2), D("88"), D("52")),
            b.Mover(name(3), D("70"), D("71")),
        ],
        lagging=[
            b.LagFlag(
                name(i % n),
                f"双11会场主图优化第{i}轮（含详情页首屏、主图视频和SKU命名）",
                "支付转化率",
                D("0.31"),
            )
            for i in range(n * 3)
        ],
        not_planned=[name(i) for i in range(0, n, 2)],
        on_leave=[name(i) for i in range(1, n, 9)],
        templates=[
            b.TemplateLine("大促模板", "大促模板（双11 10-20–11-11）替代 运营默认模板", 30, new=True),
            b.TemplateLine("新人模板", "新人模板（新员工，入职 20 天）", 10),
            b.TemplateLine("设计默认模板", "设计默认模板", 10),
        ],
        planned=n - n // 2,
        eligible=n,
    )


def missing_card(n: int, tr=ZH_TR) -> Card:  # noqa: ANN001
    return b.plan_missing_card(
        tr,
        team_id="ops",
        team_name="双11运营设计组（天猫旗舰店）",
        week="2026-W48",
        days="11-23–11-29",
        deadline="11-23 14:00",
        missing=[
            b.MissingPlan(f"p{i}", name(i), ("reminded", "paused", "unreminded")[i % 3]) for i in range(n)
        ],
        on_leave=[name(i) for i in range(TEAM, TEAM + 10)],
        leave_until="2026-11-29",
    )


def cards(tr) -> dict[str, Card]:  # noqa: ANN001
    return {
        "summary_leader": b.monday_summary_leader_card(tr, digest()),
        "summary_chat": b.monday_summary_chat_card(tr, digest()),
        "summary_empty": b.monday_summary_leader_card(tr, digest(0)),
        "table": b.appraisal_table_card(
            tr,
            team_name="双11运营设计组（天猫旗舰店）",
            week="2026-W46",
            rows=[
                b.ScoreRow(name(i), D(i) * D("2.13"), GRADES[i % 5], "大促模板", 1 + i % 3)
                for i in range(TEAM)
            ],
            published_at="11-13 20:00",
        ),
        "missing": missing_card(TEAM, tr),
        "missing_few": missing_card(3, tr),
        "reminder": b.plan_reminder_card(
            tr,
            week="2026-W48",
            days="11-23–11-29",
            person_name=name(1),
            deadline="11-23 14:00",
            link="https://plan.example.com/p/" + "x" * 200,
        ),
        "nudge": b.plan_reminder_card(
            tr,
            week="2026-W48",
            days="11-23–11-29",
            person_name=name(1),
            deadline="11-23 14:00",
            link="https://plan.example.com/p/" + "x" * 200,
            late=True,
            leader_name="张伟",
        ),
    }


ALL = [(locale, card) for locale in ("zh-CN", "en-US") for card in cards(ZH_TR)]


@pytest.mark.parametrize(("locale", "which"), ALL)
def test_every_digest_card_renders_within_every_platforms_limits(locale: str, which: str) -> None:
    card = cards(texts(locale))[which]
    assert Card.from_dict(card.to_dict()) == card  # survives the outbox
    # Feishu: the API card (30 KB, 200 components) and, for group chats, the custom robot's (20 KB)
    feishu.check_size(feishu.render(card))
    feishu.check_size(feishu.render(card, interactive=False), webhook=True)
    # DingTalk: robot texts not cut (the renderer would add its "truncated" line), title within 64,
    # ≤ 5 buttons; a card's values are 1 KB each, so a long card's markdown is shortened with a
    # link to its page (tests/test_payload_limits.py measures every value)
    rendered = dingtalk.render(card)
    assert all(len(v.encode()) <= dingtalk.CARD_VALUE_BYTES for v in rendered["card_params"].values())
    assert dingtalk.TRUNCATED not in str(rendered["robot_message"]) + str(rendered["app_robot"])
    assert len(dingtalk.body(card).encode()) <= dingtalk.MAX_TEXT_BYTES
    assert len(card.title) <= dingtalk.MAX_TITLE and len(card.buttons) <= dingtalk.MAX_BUTTONS
    # WeCom: the app's template card (≤ 6 buttons, ≤ 3 links) with any overflow as markdown parts,
    # the app group chat and the group robot, each part within its byte limit
    for message in wecom.app_messages(card, task_id="digest-1", fallback_url="https://plan.example.com"):
        if message["msgtype"] == "markdown":
            assert len(message["markdown"]["content"].encode()) <= wecom.APP_MARKDOWN_BYTES
    for message in wecom.chat_messages(card):
        assert len(message["markdown"]["content"].encode()) <= wecom.APP_MARKDOWN_BYTES
    for message in wecom.robot_messages(card):
        if message["msgtype"] == "markdown":
            assert len(message["markdown"]["content"].encode()) <= wecom.ROBOT_MARKDOWN_BYTES


def test_a_long_summary_folds_its_lag_list_and_says_so() -> None:
    plain = text.render(b.monday_summary_leader_card(ZH_TR, digest()))
    assert f"上周仍落后的事项（{TEAM * 3}）" in plain
    assert f"另有 {TEAM * 3 - b.MAX_DIGEST_LAG_ROWS} 项未列出" in plain
    en = text.render(b.monday_summary_chat_card(EN_TR, digest()))
    assert f"Items still lagging last week ({TEAM * 3})" in en
    assert f"{TEAM * 3 - b.MAX_DIGEST_LAG_ROWS} more not shown" in en


def test_the_group_card_has_team_figures_and_flags_but_no_personal_score() -> None:
    d = digest(12)
    leader, chat = b.monday_summary_leader_card(ZH_TR, d), b.monday_summary_chat_card(ZH_TR, d)
    assert any(isinstance(x, Table) and "得分" in x.header for x in leader.blocks)
    assert not any(isinstance(x, Table) for x in chat.blocks)
    plain = text.render(chat)
    for m in d.members:
        if m.score is not None:
            assert all(m.name not in line or b.points(m.score) not in line for line in plain.splitlines())
    assert "平均得分：77.0" in plain and "等级分布：S 2 · A 2 · B 2 · C 2 · D 2" in plain
    assert f"· {name(0)}：双11会场主图优化第0轮" in plain  # the lag flag names the person, no number
    assert "31 %" not in plain


def test_the_leaders_summary_rows_and_movers() -> None:
    d = b.WeekDigest(
        team_name="运营组",
        week="2026-W49",
        last_week="2026-W48",
        last_days="11-23–11-29",
        members=[
            b.MemberWeek("李雷", True, D("0.83"), 1, D("95.5"), "A", D("23.5")),
            b.MemberWeek("韩梅梅", False, score=D("0"), grade="D", delta=D("-71")),
            b.MemberWeek("陈静", True, None, 0, None, ""),
        ],
        average_completion=D("0.83"),
        average_score=D("47.75"),
        grades={"A": 1, "D": 1},
        movers=[b.Mover("韩梅梅", D("71"), D("0")), b.Mover("李雷", D("72"), D("95.5"))],
        lagging=[],
        not_planned=["韩梅梅"],
        on_leave=[],
        templates=[b.TemplateLine("运营默认模板", "运营默认模板", 2, new=True)],
        planned=1,
        eligible=2,
    )
    plain = text.render(b.monday_summary_leader_card(ZH_TR, d))
    assert "李雷 | 83 % | 1 | 95.5 | A | +23.5" in plain
    assert "韩梅梅 | 未提交计划 | — | 0.0 | D | −71.0" in plain
    assert "陈静 | 暂无数据 | — | — | — | —" in plain  # no score: last
    assert "变化最大：韩梅梅 71.0 → 0.0（−71.0）、李雷 72.0 → 95.5（+23.5）" in plain
    assert "本周已提交计划：1/2 人" in plain and "本周未提交计划：韩梅梅" in plain
    assert "· 运营默认模板（2 人）（本周起）" in plain
    assert "上周没有落后的事项。" in plain
