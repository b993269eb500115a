"""No public_url configured: cards carry no dead /p/ links and point to the chat-only paths."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bot.config import Secret, Settings, parse
from handlers.plans import TEXT_PLAN_HINT
from tests.conftest import TEST_KEY


@pytest.mark.parametrize(
    "server, is_set",
    [
        ({}, False),  # left out: the loopback default reaches no colleague's phone
        ({"public_url": "http://127.0.0.1:8000"}, True),  # chosen on purpose (a one-machine trial)
        ({"public_url": "http://192.168.1.20:8000"}, True),  # an intranet address is enough
        ({"public_url": "https://plan.example.com/"}, True),
    ],
)
def test_a_config_file_says_whether_public_url_was_set(server, is_set):
    settings = parse({"server": server}, {})
    assert settings.public_url_set is is_set
    assert settings.public_url == server.get("public_url", "http://127.0.0.1:8000").rstrip("/")


@pytest.fixture
def settings() -> Settings:  # overrides conftest's: as a config file without public_url
    return Settings(
        database_url="sqlite://", simulator=True, secret_keys=(Secret(TEST_KEY),), public_url_set=False
    )


def _urls(card: dict) -> list[str]:
    return [a["url"] for a in card["actions"] if "url" in a] + [
        v for v in json.dumps(card["card"], ensure_ascii=False).split('"') if "/p/" in v
    ]


def test_the_plan_form_offers_the_text_plan_instead_of_a_dead_link(sim, demo_team):
    (form,) = sim.say("lilei", "写计划")
    assert form["title"] == "填写本周计划 · 2026-W48"
    assert _urls(form) == []
    assert TEXT_PLAN_HINT in form["text"]
    assert form["card"]["form"]["link"] == ""

    # the path it names works: a text plan is stored and its receipt has no link either
    (receipt,) = sim.say("lilei", "计划\n优化详情页首屏 支付转化率 +2pp\n差评回访 投诉率 -10%")
    assert receipt["title"] == "本周计划已提交 · 2026-W48"
    assert _urls(receipt) == []


def test_with_a_configured_address_the_form_links_to_its_page(sim, demo_team, services):
    services.settings = replace(services.settings, public_url_set=True)
    (form,) = sim.say("lilei", "写计划")
    assert any(u.startswith("http://127.0.0.1:8000/p/") for u in _urls(form))
    assert TEXT_PLAN_HINT not in form["text"]
