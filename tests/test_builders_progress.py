"""The progress and lag cards for a 50-person team fit every platform's renderer and limits."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from cards import builders_ops
from cards import builders_progress as b
from cards.model import Card
from cards.render import dingtalk, feishu, text, wecom
from handlers.progress import LAGGING, NO_DATA, ON_TRACK, ItemProgress


def item(n: int, status: str = LAGGING) -> ItemProgress:
    no_data = status == NO_DATA
    return ItemProgress(
        item_id=n,
        plan_id=n,
        person_id=f"p{n}",
        team_id="ops",
        week="2026-W48",
        position=n % 5 + 1,
        text=f"双11会场主图优化第{n}轮（含详情页首屏、主图视频和SKU命名）",
        kpi_key="conversion_rate",
        kpi_name="支付转化率",
        unit="%",
        direction="up",
        scope="shop",
        baseline=Decimal("3.00"),
        target=Decimal("5.00"),
        actual=None if no_data else Decimal("3.10"),
        actual_day=None if no_data else date(2026, 11, 24),
        completion=None if no_data else Decimal("0.05"),
        pace=Decimal("0.4"),
        elapsed=2,
        workdays=5,
        status=status,
        note="周四上线新版详情页" * 3,
    )


PACE = b.Pace(2, 5, Decimal("0.4"))
TEAM = [b.MemberRow(f"成员{n:02d}", [item(n * 5 + k) for k in range(5)]) for n in range(50)]
CARDS = {
    "progress": b.progress_card("李雷", "2026-W48", [item(1), item(2, ON_TRACK), item(3, NO_DATA)], PACE),
    "team_progress": b.team_progress_card("运营组", "2026-W48", TEAM, PACE),
    "lag_alert": b.lag_alert_card(item(1), 20),
    "team_lag": b.team_lag_card(
        "ops", "运营组", date(2026, 11, 25), [(f"成员{n:02d}", item(n)) for n in range(250)]
    ),
    "note_form": b.note_form_card(item(1), "https://plan.example.com/p/token"),
    "help": b.help_request_card("李雷", item(1)),
    "dead": builders_ops.delivery_dead_card(
        message_id="m",
        bot_id="feishu-main",
        channel="user",
        target="ou_x",
        title="t",
        attempts=8,
        error="x" * 5000,
    ),
}


@pytest.mark.parametrize("name", sorted(CARDS))
def test_renders_everywhere_within_limits(name: str) -> None:
    card = CARDS[name]
    assert Card.from_dict(card.to_dict()) == card  # survives the outbox
    payload = feishu.render(card)
    feishu.check_size(payload)
    feishu.check_size(feishu.render(card, interactive=False), webhook=True)
    dingtalk.render(card)
    wecom.app_messages(card, task_id="t1", fallback_url="https://plan.example.com")
    wecom.robot_messages(card)


def test_no_data_is_never_zero_percent() -> None:
    rendered = text.render(b.progress_card("李雷", "2026-W48", [item(3, NO_DATA)], PACE))
    assert "暂无数据" in rendered and "0%" not in rendered.replace("40 %", "")


def test_the_folded_card_says_how_many_it_left_out() -> None:
    rendered = text.render(CARDS["team_lag"])
    assert "250 项计划落后" in rendered and f"另有 {250 - b.MAX_TEAM_ROWS} 项未列出" in rendered
    assert rendered.count("成员") == b.MAX_TEAM_ROWS + 1  # the header and the shown rows
