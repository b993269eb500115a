"""The sender of outgoing webhook events (issue 21): signs each event and POSTs it through the
outbound-URL guard. The relay (bot/worker/delivery.py) hands it the outbox rows of channel ``event`` as
it hands a chat platform its messages; this module gives the relay the face it expects
(``send``, ``limits``, ``repeats_dropped``).

Signature (docs/reference/api.md): ``Planloop-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
"<t>.<raw body>")>``. Retries: the relay's backoff, stretched by ``retry_after`` so that its
attempts cover 24 hours; an event still undelivered 24 hours after it was raised is dead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any

import requests
from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from bot.config import Settings
from bot.platforms.base import DeliveryError, Outbound, RateLimit, SendResult
from handlers.events_out import CHANNEL, resource_prefix
from sources import netguard
from storage import secrets
from storage.db import transaction
from storage.models import OutboxMessage, WebhookSubscription

SIGNATURE_HEADER = "Planloop-Signature"
LIFETIME = timedelta(hours=24)
# Seconds before attempt n+1 after n failures. With the relay's 8 attempts (RelayPolicy) the
# last one falls near the 24-hour mark; whatever is left then is dead.
SCHEDULE = (30, 120, 600, 3600, 4 * 3600, 8 * 3600, 10 * 3600)
TIMEOUT = 10.0
IN_ORDER = "in_order"  # the code of "an earlier event of this resource goes first": a wait, not a failure


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Planloop-Signature`` header value of ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, body: bytes, header: str, now: int, tolerance: int = 300) -> bool:
    """A receiver's check (and the tests'): the signature matches and ``t`` is within ``tolerance``."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts.get("t", ""))
    except ValueError:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return abs(now - t) <= tolerance and hmac.compare_digest(expected, parts.get("v1", ""))


def body_of(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


class WebhookSender:
    """Sends one outbox row of channel ``event`` to its webhook."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Any], clock: Any, resolve: Any = None):
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self.resolve = resolve

    def limits(self, message: Outbound) -> list[RateLimit]:
        return []

    def repeats_dropped(self, message: Outbound) -> bool:
        return True  # receivers deduplicate on the event id (documented)

    def _hook(self, hook_id: str) -> tuple[str, str, bool] | None:
        for hook in self.settings.webhooks:
            if hook.id == hook_id:
                return hook.url, hook.secret.get(), hook.allow_private
        with self.sessions() as session:
            row = session.get(WebhookSubscription, hook_id)
            if row is None:
                return None
            url, sealed, allow_private = row.url, row.secret_enc, row.allow_private
        try:
            secret = secrets.Sealer([k.get() for k in self.settings.secret_keys]).open(sealed)
        except secrets.SecretsUnavailable as exc:
            raise DeliveryError(
                f"cannot open the webhook's secret: {exc}", retry=True, code="secret"
            ) from exc
        return url, secret, allow_private

    def send(self, message: Outbound) -> SendResult:
        with self.sessions() as session:
            row = session.get(OutboxMessage, message.id)
            if row is None:
                raise DeliveryError("the outbox row is gone", retry=False, code="gone")
            event, attempts, created = dict(row.card["event"]), row.attempts, row.created_at
            resource = str(row.card.get("resource", ""))
            earlier = session.scalar(
                select(func.max(OutboxMessage.next_attempt_at)).where(
                    OutboxMessage.status == "pending",
                    OutboxMessage.channel == CHANNEL,
                    OutboxMessage.target == message.target,
                    OutboxMessage.dedupe_key.startswith(
                        resource_prefix(message.target, resource), autoescape=True
                    ),
                    OutboxMessage.id < message.id,
                )
            )
        if earlier is not None:  # claimed with it in one batch before it failed: wait behind it
            behind = max(1.0, (earlier - self.clock()).total_seconds() + 1)
            raise DeliveryError(
                "an earlier event of this resource is not delivered yet",
                retry=True,
                retry_after=behind,
                code=IN_ORDER,
            )
        now = self.clock()
        if now - created >= LIFETIME:
            raise DeliveryError("undelivered for 24 hours", retry=False, code="expired")
        hook = self._hook(message.target)
        if hook is None:
            raise DeliveryError(f"webhook {message.target} no longer exists", retry=False, code="no_webhook")
        url, secret, allow_private = hook
        body = body_of(event)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            SIGNATURE_HEADER: sign(secret, body, int(now.timestamp())),
            "User-Agent": "planloop-webhooks",
        }
        wait = self._wait(attempts, created, now)
        try:
            return self._post(message, url, body, headers, allow_private, event["id"], wait)
        except DeliveryError as exc:
            if exc.retry:  # the later events of this resource wait behind this one
                self._hold_later(message, resource, now + timedelta(seconds=wait + 1))
            raise

    def _post(
        self,
        message: Outbound,
        url: str,
        body: bytes,
        headers: dict[str, str],
        allow_private: bool,
        event_id: str,
        wait: float,
    ) -> SendResult:
        http = netguard.GuardedSession(allow_private, *([self.resolve] if self.resolve else []))
        try:
            answer = http.post(url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)
        except netguard.UrlRefused as exc:
            raise DeliveryError(str(exc), retry=False, code="refused") from exc
        except (netguard.UnresolvedHost, requests.RequestException) as exc:
            raise DeliveryError(
                f"{type(exc).__name__}: {exc}", retry=True, retry_after=wait, code="http"
            ) from exc
        finally:
            http.close()
        if 200 <= answer.status_code < 300:
            return SendResult(platform_message_id=event_id)
        raise DeliveryError(
            f"the receiver answered HTTP {answer.status_code}", retry=True, retry_after=wait, code="http"
        )

    def _hold_later(self, message: Outbound, resource: str, until: datetime) -> None:
        with transaction(self.sessions) as session:
            session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.status == "pending",
                    OutboxMessage.channel == CHANNEL,
                    OutboxMessage.target == message.target,
                    OutboxMessage.dedupe_key.startswith(
                        resource_prefix(message.target, resource), autoescape=True
                    ),
                    OutboxMessage.id > message.id,
                    OutboxMessage.next_attempt_at < until,
                )
                .values(next_attempt_at=until)
                .execution_options(synchronize_session=False)
            )

    def _wait(self, attempts: int, created: datetime, now: datetime) -> float:
        """Seconds before the next attempt after this one fails: the schedule, never past 24 hours."""
        wait = float(SCHEDULE[min(attempts, len(SCHEDULE) - 1)])
        left = (created + LIFETIME - now).total_seconds()
        return max(1.0, min(wait, left))


def sender_for(services: Any, channel: str) -> WebhookSender | None:
    """The relay's dispatch entry: a sender for channel ``event``, None for a chat platform's rows."""
    if channel != CHANNEL:
        return None
    return WebhookSender(services.settings, services.sessions, services.clock)
