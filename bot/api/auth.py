"""Who calls: ``Authorization: Bearer <token>`` → a ``Caller`` with scopes and an optional team,
or a problem (401 unknown/expired/revoked, 403 missing scope or other team, 429 over the rate)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, request
from sqlalchemy import update

from bot.api.problems import ApiProblem
from bot.api.tokens import find_token, grants, state
from bot.platforms.base import RateLimit
from bot.services import Services
from bot.worker.rate_limits import SharedBuckets
from storage.db import transaction
from storage.models import ApiToken

LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="planloop"'}


@dataclass(frozen=True)
class Caller:
    token_id: int
    name: str
    scopes: tuple[str, ...]
    team: str | None

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"token:{self.token_id}"

    def team_for(self, asked: str | None) -> str | None:
        """The team a read or write is limited to: the token's own, or what was asked."""
        if self.team is not None and asked is not None and asked != self.team:
            raise ApiProblem(403, f"this token is limited to team {self.team!r}")
        return self.team or asked

    def check_team(self, team: str) -> None:
        if self.team is not None and team != self.team:
            raise ApiProblem(403, f"this token is limited to team {self.team!r}")


def services() -> Services:
    found: Services = current_app.extensions["planloop"]
    return found


def caller(scope: str) -> Caller:
    """The request's caller, who must hold ``scope``; counts the request against its rate."""
    svc = services()
    header = request.headers.get("Authorization", "")
    kind, _, secret = header.partition(" ")
    if kind.lower() != "bearer" or not secret.strip():
        raise ApiProblem(401, "send Authorization: Bearer <token>", headers=CHALLENGE)
    now = svc.clock()
    with svc.sessions() as session:  # a read: no write lock unless last_used_at is due
        row = find_token(session, secret.strip())
        if row is None:
            raise ApiProblem(401, "unknown token", headers=CHALLENGE)
        status = state(row, now)
        if status != "active":
            raise ApiProblem(401, f"token {row.id} is {status}", headers=CHALLENGE)
        if not grants(row.scopes, scope):
            raise ApiProblem(403, f"token {row.id} lacks the scope {scope}")
        who = Caller(row.id, row.name, tuple(row.scopes), row.team_id)
        rate = row.rate_per_minute
        stale = row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY
    if stale:
        with transaction(svc.sessions) as session:
            session.execute(update(ApiToken).where(ApiToken.id == who.token_id).values(last_used_at=now))
    buckets = SharedBuckets(svc.sessions, svc.engine, svc.clock)
    wait = buckets.acquire([RateLimit(f"api-token:{who.token_id}", rate, 60.0)], now.timestamp())
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise ApiProblem(
            429,
            f"token {who.token_id} is over its {rate} requests a minute",
            headers={"Retry-After": str(seconds)},
        )
    return who
