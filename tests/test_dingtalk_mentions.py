"""DingTalk @mentions, per channel, through the fake (issue 18 §2).

- card platform (createAndDeliver): ``imGroupOpenDeliverModel.atUserIds`` maps id -> the name
  shown, ``cardAtUserIds`` lists the ids, the markdown marks them ``<a atId=id>…</a>``;
- app robot (groupMessages/send, oToMessages/batchSend): cannot @, so no ``@id`` text at all;
- custom robot: ``at.atUserIds`` (a list) plus ``@id`` in the text (tests/test_dingtalk.py).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
import requests

from bot.platforms import Deps
from bot.platforms.base import Outbound
from bot.platforms.dingtalk import DingTalkPlatform
from cards.model import Button, Card, Markdown
from tests import worker_seed as seed
from tests.fakes.dingtalk import FakeDingTalk
from tests.test_dingtalk import BOT, CARD_SECRET, GROUP, ROUTE, bot_config

LILEI, HAN = "staff-lilei", "staff-han"


@pytest.fixture
def fake(clock: Any):  # noqa: ANN201
    server = FakeDingTalk(clock).start()
    # the route `planloop doctor --fix` registers for the cards' HTTP callbacks
    server.callback_routes[ROUTE] = {"callbackUrl": "https://planloop.example/card", "apiSecret": CARD_SECRET}
    yield server
    server.stop()


@pytest.fixture
def named(db: Any) -> None:
    with db() as session, session.begin():
        seed.team(session, leader=None, chat_bot=BOT)
        seed.person(session, "lilei", "李雷", bot="")
        seed.person(session, "han", "韩梅梅", bot="")
        from storage.models import Identity

        session.add_all(
            [
                Identity(bot_id=BOT, external_id=LILEI, person_id="lilei"),
                Identity(bot_id=BOT, external_id=HAN, person_id="han"),
            ]
        )


def adapter(fake: FakeDingTalk, clock: Any, db: Any, **values: object) -> DingTalkPlatform:
    return DingTalkPlatform(
        bot_config(fake, **values), Deps(http=requests.Session(), clock=clock, sessions=db)
    )


def callback_card(*mentions: str) -> Card:
    return Card(
        "本周进度落后",
        blocks=(Markdown("支付转化率 3.10%，目标 5.00%"),),
        buttons=(Button("本周不再提醒", action="lag.snooze", value={"item": "1"}),),
        mentions=mentions,
    )


@pytest.mark.parametrize(
    ("mentions", "at_user_ids", "card_at", "marks"),
    [
        ((LILEI,), {LILEI: "李雷"}, [LILEI], [f"<a atId={LILEI}>@李雷</a>"]),
        ((LILEI, HAN), {LILEI: "李雷", HAN: "韩梅梅"}, [LILEI, HAN], ["@李雷</a>", "@韩梅梅</a>"]),
        (("staff-unknown",), {"staff-unknown": "staff-unknown"}, ["staff-unknown"], ["@staff-unknown</a>"]),
        (("all",), {"@ALL": "@ALL"}, None, ["@所有人"]),
    ],
)
def test_a_group_card_names_whom_it_mentions(
    fake: FakeDingTalk, clock: Any, db: Any, named: None, mentions, at_user_ids, card_at, marks
) -> None:  # noqa: ANN001
    adapter(fake, clock, db).send(Outbound("m-1", "chat", GROUP, callback_card(*mentions)))
    [sent] = fake.cards.values()
    assert sent["imGroupOpenDeliverModel"]["atUserIds"] == at_user_ids
    assert sent.get("cardAtUserIds") == card_at
    markdown = sent["cardData"]["cardParamMap"]["markdown"]
    assert all(mark in markdown for mark in marks)
    assert f"\n\n@{LILEI}" not in markdown  # never the robots' literal @id line


@pytest.mark.parametrize("channel,target", [("chat", GROUP), ("user", LILEI)])
def test_app_robot_messages_carry_no_mention_they_cannot_make(
    fake: FakeDingTalk, clock: Any, db: Any, named: None, channel: str, target: str
) -> None:
    card = replace(callback_card(LILEI, "all"), buttons=(Button("打开", url="https://plan.example.com/p/x"),))
    adapter(fake, clock, db, card_template_id="").send(Outbound("m-2", channel, target, card))
    [sent] = fake.group_messages if channel == "chat" else fake.user_messages
    text = json.loads(sent["msgParam"])["text"]
    assert "支付转化率" in text
    assert "@" not in text  # neither @staff-lilei nor @所有人: the app robot cannot @
