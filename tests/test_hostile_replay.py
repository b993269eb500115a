"""Row 3 of issue 17: a DingTalk robot callback's (timestamp, sign) is bound to its first msgId."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from storage.models import AuditLog, InboundEvent, SignedCallback
from tests.hostile import WEBHOOK_URLS, make_app, robot_headers

URL = WEBHOOK_URLS["dingtalk-robot"]


def message(msg_id: str, text: str = "帮助", sender: str = "staff-lilei") -> bytes:
    return json.dumps(
        {
            "msgId": msg_id,
            "msgtype": "text",
            "text": {"content": text},
            "conversationType": "1",
            "senderStaffId": sender,
        },
        ensure_ascii=False,
    ).encode()


@pytest.fixture
def replicas(settings, engine, clock):
    """Two web replicas on one database."""
    return [make_app(settings, engine, clock)[0].test_client() for _ in range(2)]


def post(client, headers, body):
    return client.post(URL, data=body, headers=headers, content_type="application/json")


@pytest.mark.parametrize(
    "forged",
    [
        message("msgOTHER"),
        message("msgOTHER", text="暂停团队提醒 至 12-20", sender="staff-leader"),
        message("msgGENUINE-2"),
    ],
    ids=["another-msg", "leader-pause", "similar-id"],
)
def test_the_same_pair_with_another_msg_id_is_refused_and_audited(replicas, db, clock, forged):
    headers = robot_headers(clock)
    assert post(replicas[0], headers, message("msgGENUINE")).status_code == 200
    clock.advance(seconds=30)
    refused = post(replicas[1], headers, forged)  # another replica: the binding is in the database
    assert refused.status_code == 401
    assert "already used" in refused.get_json()["error"]
    with db() as s:
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "callback.replay_refused")).all()
        assert [(a.subject, a.detail["bound_to"]) for a in audit] == [
            (json.loads(forged)["msgId"], "msgGENUINE")
        ]
        keys = s.scalars(select(InboundEvent.key)).all()
        assert not any(json.loads(forged)["msgId"] in k for k in keys)  # nothing of it took effect


def test_the_platforms_retry_with_the_same_msg_id_passes(replicas, db, clock):
    headers = robot_headers(clock)
    assert post(replicas[0], headers, message("msgA")).status_code == 200
    assert post(replicas[1], headers, message("msgA")).status_code == 200
    with db() as s:
        assert s.scalar(select(func.count()).select_from(AuditLog)) == 0
        assert s.scalar(select(func.count()).select_from(SignedCallback)) == 1


def test_each_pair_binds_on_its_own_and_expired_bindings_are_dropped(replicas, db, clock):
    first = robot_headers(clock)
    assert post(replicas[0], first, message("msgA")).status_code == 200
    clock.advance(minutes=30)
    assert post(replicas[0], robot_headers(clock), message("msgB")).status_code == 200
    clock.advance(minutes=30, seconds=2)  # the first pair's window closed: refused by the clock, row pruned
    assert post(replicas[0], first, message("msgC")).status_code == 401
    assert post(replicas[0], robot_headers(clock), message("msgD")).status_code == 200
    with db() as s:
        rows = s.scalars(select(SignedCallback)).all()
        assert sorted(r.message_id for r in rows) == ["msgB", "msgD"]
        assert all(r.expires_at > clock() - timedelta(hours=1) for r in rows)
