"""Outgoing webhooks (issue 21): a real HTTP receiver on loopback gets each event once, in order,
signed, through a relay restart and a retry; private addresses are refused unless allowed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from bot.config import ConfigError, Secret, Settings, WebhookConfig, parse, webhook_id
from bot.worker.delivery import Relay, RelayPolicy, drain
from bot.worker.webhooks_out import SIGNATURE_HEADER, verify
from handlers.events_out import emit
from storage.db import transaction
from storage.models import OutboxMessage
from tests.appraisal_shop import add_plan, lilei_week48, sample, seed_shop

SECRET = "whsec-test-0123456789"  # noqa: S105 - a test value


class Receiver:
    """A loopback HTTP server that records every POST and answers the statuses it is given."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = outer.statuses.pop(0) if outer.statuses else 200
                if status == 200:
                    outer.got.append((dict(self.headers), body))
                    outer.paths.append(self.path)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.got]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def settings(settings: Settings, receiver: Receiver) -> Settings:  # the conftest's, with one webhook
    hook = WebhookConfig(webhook_id(receiver.url), receiver.url, Secret(SECRET), (), True)
    return replace(settings, webhooks=(hook,))


def _raise(services, clock, n: int, resource: str = "plan:lilei/2026-W48") -> None:  # noqa: ANN001
    with transaction(services.sessions) as session:
        for i in range(n):
            emit(session, "plan.submitted", {"version": i + 1}, resource=resource, now=clock())


def test_every_event_once_in_order_signed_through_a_relay_restart(services, clock, receiver, demo_team):
    from handlers.template_switches import switch_template

    _raise(services, clock, 5)
    with transaction(services.sessions) as session:
        switch_template(session, "ops", "ops-promo", by="zhangwei", now=clock())
    first = Relay(services, name="first", policy=RelayPolicy(batch=2))
    assert first.run_once().sent == 2  # then this worker stops
    drain(services, relay=Relay(services, name="second"))  # another one takes over
    events = receiver.events()
    assert [e["type"] for e in events] == ["plan.submitted"] * 5 + ["template.switched"]
    assert [e["data"].get("version") for e in events[:5]] == [1, 2, 3, 4, 5]
    assert events[5]["data"]["to"] == "ops-promo" and events[5]["data"]["team"] == "ops"
    assert len({e["id"] for e in events}) == 6
    now = int(clock().timestamp())
    for headers, body in receiver.got:
        assert verify(SECRET, body, headers[SIGNATURE_HEADER], now)
        assert not verify("wrong-secret", body, headers[SIGNATURE_HEADER], now)
    with services.sessions() as session:
        assert set(session.scalars(select(OutboxMessage.status))) == {"sent"}


def test_a_receiver_answering_500_then_200_gets_it_once(services, clock, receiver):
    receiver.statuses = [500]
    _raise(services, clock, 1)
    stats = drain(services, sleep=lambda s: clock.advance(seconds=s))
    assert stats.retried == 1 and stats.sent == 1
    assert len(receiver.got) == 1 and receiver.events()[0]["type"] == "plan.submitted"


def test_a_retried_event_keeps_its_resource_in_order(services, clock, receiver):
    receiver.statuses = [500]  # lilei's first version fails once
    with transaction(services.sessions) as session:
        for resource, version in [("lilei", 1), ("hanmeimei", 1), ("lilei", 2), ("lilei", 3)]:
            data = {"employee": resource, "version": version}
            emit(session, "plan.submitted", data, resource=f"plan:{resource}/2026-W48", now=clock())
    stats = drain(services, sleep=lambda s: clock.advance(seconds=s))
    got = [(e["data"]["employee"], e["data"]["version"]) for e in receiver.events()]
    assert [v for who, v in got if who == "lilei"] == [1, 2, 3]
    assert got[0] == ("hanmeimei", 1)  # another resource does not wait
    assert stats.sent == 4 and len(got) == 4


def test_an_event_undelivered_for_24_hours_is_dead(services, clock, receiver):
    receiver.statuses = [500] * 20
    _raise(services, clock, 1)
    drain(services, sleep=lambda s: clock.advance(seconds=s))
    with services.sessions() as session:
        row = session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "event")).one()
    assert row.status == "dead" and receiver.got == []
    assert row.attempts == 8 and row.next_attempt_at - row.created_at <= timedelta(hours=24)


def test_waiting_behind_an_earlier_event_spends_no_attempt(services, clock, receiver):
    """lilei's first event fails 5 times; the two behind it are never tried meanwhile, so they
    keep all their attempts and arrive, in order, once the first one does."""
    receiver.statuses = [500] * 5
    with transaction(services.sessions) as session:
        for version in (1, 2, 3):
            data = {"employee": "lilei", "version": version}
            emit(session, "plan.submitted", data, resource="plan:lilei/2026-W48", now=clock())
    drain(services, sleep=lambda s: clock.advance(seconds=s))
    assert [e["data"]["version"] for e in receiver.events()] == [1, 2, 3]
    with services.sessions() as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "event")).all()
    assert sorted((r.status, r.attempts) for r in rows) == [("sent", 1), ("sent", 1), ("sent", 6)]


def test_an_admins_resend_gives_a_dead_event_a_fresh_budget(services, clock, receiver):
    from bot.worker.delivery import resend

    receiver.statuses = [500] * 20
    _raise(services, clock, 1)
    drain(services, sleep=lambda s: clock.advance(seconds=s))
    with services.sessions() as session:
        dead = session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "event")).one()
    assert dead.status == "dead"
    receiver.statuses = []
    assert resend(services, dead.id) == "dead"
    drain(services, sleep=lambda s: clock.advance(seconds=s))
    with services.sessions() as session:
        row = session.get(OutboxMessage, dead.id)
    assert (row.status, row.attempts) == ("sent", 1)
    assert [e["type"] for e in receiver.events()] == ["plan.submitted"]


@pytest.mark.parametrize(
    "entry, problem",
    [
        ({"url": "http://127.0.0.1:9/x", "secret": "s"}, "webhooks[1].url: 拒绝访问内网或本机地址 127.0.0.1"),
        ({"url": "http://10.1.2.3/x", "secret": "s"}, "webhooks[1].url: 拒绝访问内网或本机地址 10.1.2.3"),
        (
            {"url": "https://erp.example.com/x", "secret": "s", "events": ["plan.eaten"]},
            "unknown event 'plan.eaten'",
        ),
        ({"url": "https://erp.example.com/x"}, "webhooks[1].secret: required"),
    ],
)
def test_config_refuses_bad_webhooks_with_a_clear_error(entry, problem):
    with pytest.raises(ConfigError) as err:
        parse({"webhooks": [entry]}, env={})
    assert any(problem in p for p in err.value.problems), err.value.problems


def test_config_takes_a_private_receiver_with_allow_private():
    settings = parse(
        {"webhooks": [{"url": "http://127.0.0.1:9/x", "secret": "s", "allow_private": True}]}, env={}
    )
    assert settings.webhooks[0].allow_private and settings.webhooks[0].secret.get() == "s"


def test_api_adds_lists_and_removes_webhooks(client, services, demo_team, receiver, clock):
    from bot.api.tokens import create_token

    with transaction(services.sessions) as session:
        made = create_token(session, name="erp", scopes=["webhooks:write"], now=clock())
    headers = {"Authorization": f"Bearer {made[1] if isinstance(made, tuple) else made.secret}"}
    refused = client.post(
        "/api/v1/webhooks", headers=headers, json={"url": receiver.url, "secret": SECRET, "events": []}
    )
    assert refused.status_code == 422
    assert "拒绝访问内网或本机地址 127.0.0.1" in refused.get_json()["detail"]
    assert refused.get_json()["errors"][0]["field"] == "url"
    inside = {"url": receiver.url, "secret": SECRET, "events": ["template.switched"], "allow_private": True}
    lifted = client.post("/api/v1/webhooks", headers=headers, json=inside)
    assert lifted.status_code == 403  # lifting the URL guard takes more than webhooks:write
    assert lifted.get_json()["errors"] == [{"field": "allow_private", "message": "needs the admin scope"}]
    with transaction(services.sessions) as session:
        admin = create_token(session, name="ops", scopes=["admin"], now=clock())
    headers = {"Authorization": f"Bearer {admin[1] if isinstance(admin, tuple) else admin.secret}"}
    added = client.post("/api/v1/webhooks", headers=headers, json=inside)
    assert added.status_code == 200, added.get_json()
    hook = added.get_json()
    listed = client.get("/api/v1/webhooks", headers=headers).get_json()["webhooks"]
    assert [(h["id"], h["source"]) for h in listed] == [
        (webhook_id(receiver.url), "config"),
        (hook["id"], "api"),
    ]
    # the API's webhook takes only template.switched: one more delivery than the config's
    from handlers.template_switches import switch_template

    with transaction(services.sessions) as session:
        switch_template(session, "ops", "ops-promo", by="zhangwei", now=clock())
    _raise(services, clock, 1)
    drain(services)
    assert sorted(e["type"] for e in receiver.events()) == [
        "plan.submitted",
        "template.switched",
        "template.switched",
    ]
    assert client.delete(f"/api/v1/webhooks/{hook['id']}", headers=headers).status_code == 200
    assert client.delete(f"/api/v1/webhooks/{hook['id']}", headers=headers).status_code == 404


def test_the_receiver_example_of_the_docs_verifies_a_real_delivery(services, clock, receiver, monkeypatch):
    import re
    import time
    from pathlib import Path

    page = (Path(__file__).parents[1] / "docs" / "reference" / "api.md").read_text(encoding="utf-8")
    section = page.split("## Outgoing webhooks", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    assert len(code.strip().splitlines()) <= 10
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - the documentation's own example, run as a receiver would
    _raise(services, clock, 1)
    drain(services)
    ((headers, body),) = receiver.got
    monkeypatch.setattr(time, "time", lambda: clock().timestamp())
    assert namespace["verify"](SECRET, body, headers[SIGNATURE_HEADER])
    assert not namespace["verify"](SECRET, body + b" ", headers[SIGNATURE_HEADER])
    clock.advance(minutes=6)
    assert not namespace["verify"](SECRET, body, headers[SIGNATURE_HEADER])


# ---------------------------------------------------------------- every event, raised where it happens


def test_every_event_raised_where_it_happens_reaches_the_receiver_once(db, sim, services, clock, receiver):
    from datetime import UTC, datetime

    from handlers.alerts import run_lag_alerts
    from handlers.appraisal_runs import current_appraisal, run_week
    from handlers.reminders import run_plan_reminders
    from handlers.template_switches import switch_template
    from storage.models import Appeal, Team, WebhookSubscription
    from storage.secrets import Sealer
    from tests.conftest import TEST_KEY

    seed_shop(db)  # the appraisal tests' two teams
    api_url = receiver.url + "?via=api"
    with db() as s, s.begin():
        s.add(
            WebhookSubscription(
                id="wh_e2e",
                url=api_url,
                secret_enc=Sealer([TEST_KEY]).seal(SECRET),
                events=[],
                allow_private=True,
                created_at=clock(),
                created_by="test",
            )
        )
        lilei_week48(s)
        # zhangwei's shop has no numbers: his appraisal is held
        add_plan(
            s,
            "zhangwei",
            "2026-W48",
            [("conversion_rate", "+2pp", "3.00", "shop2"), ("ctr", "+10%", "2.0", "shop2")],
        )
        s.get(Team, "ops").leader_id = "zhangwei"
        run_week(
            s, "2026-W48", clock(), team="ops"
        )  # appraisal.published (and held for the ones without data)
        published = current_appraisal(s, "lilei", "2026-W48").id
    sim.act(
        "lilei", "appraisal.appeal.submit", {"appraisal": str(published), "kpi": "ctr", "note": "数据晚到"}
    )
    with db() as s:
        appeal_id = s.scalars(select(Appeal.id)).one()
    sim.act(
        "zhangwei",
        "appraisal.appeal.decide",
        {"appeal": str(appeal_id), "decision": "correct", "value": "2.2"},
    )
    with db() as s, s.begin():
        switch_template(s, "ops", "ops-promo", by="zhangwei", now=clock())
    first = Relay(services, name="before-restart", policy=RelayPolicy(batch=3))
    first.run_once()  # this worker stops here
    sim.say("lilei", "计划\n优化详情页首屏 支付转化率 +2pp")  # plan.submitted (a new version)
    with db() as s, s.begin():
        run_plan_reminders(
            s, datetime(2026, 11, 23, 7, 0, tzinfo=UTC), bots={"sim"}, links=lambda *a, **k: ""
        )
        sample(s, "pay_conversion_rate", "2026-11-26", "3.00")
        run_lag_alerts(s, datetime(2026, 11, 26, 8, 0, tzinfo=UTC), bots={"sim"})
    drain(services, relay=Relay(services, name="after-restart"), sleep=lambda s: clock.advance(seconds=s))

    mine = [
        json.loads(body)
        for (_, body), path in zip(receiver.got, receiver.paths, strict=True)
        if "via=api" in path
    ]
    types = [e["type"] for e in mine]
    assert set(types) == {
        "plan.submitted",
        "plan.late",
        "item.lagging",
        "appraisal.published",
        "appraisal.held",
        "appeal.created",
        "appeal.decided",
        "template.switched",
    }, types
    assert len({e["id"] for e in mine}) == len(mine)  # each once
    lilei = [
        (e["type"], e["data"].get("version"))
        for e in mine
        if e["type"].startswith("appraisal") and e["data"]["employee"] == "lilei"
    ]
    assert lilei == [("appraisal.published", 1), ("appraisal.published", 2)]
    appeal = [e["data"]["status"] for e in mine if e["type"].startswith("appeal.")]
    assert appeal == ["open", "accepted"]
    for headers, body in receiver.got:  # signed when sent; the frozen clock has moved on since
        assert verify(SECRET, body, headers[SIGNATURE_HEADER], int(clock().timestamp()), tolerance=10**6)
