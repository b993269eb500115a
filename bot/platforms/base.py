"""The Platform face every chat adapter has, the neutral web request/response, and typed errors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import requests
from sqlalchemy.orm import Session, sessionmaker

from cards.model import Card
from handlers.inbound import Inbound
from sources import jsonlimits, netguard


@dataclass
class Deps:
    """What an adapter may use: an HTTP session (tests point api_base at a fake), the clock, the DB."""

    http: requests.Session
    clock: Callable[[], datetime]
    sessions: sessionmaker[Session]
    public_url: str = ""
    extra: dict[str, Any] | None = None
    transcript: Transcript | None = None  # the simulator's store (storage/transcript.py); no one else's


class Transcript(Protocol):
    """Where the simulator "delivers": lines per chat, written in the caller's transaction (``add``)
    or in their own (``deliver``, which returns the line's number)."""

    def add(
        self,
        session: Session,
        *,
        chat: str,
        sender: str,
        text: str,
        card: dict[str, Any] | None,
        at: datetime,
    ) -> None: ...

    def deliver(self, *, chat: str, text: str, card: dict[str, Any], at: datetime) -> int: ...


class CaseInsensitiveDict(dict[str, str]):
    """Header lookup that ignores case, as HTTP does."""

    def __init__(self, data: Mapping[str, str] | None = None):
        super().__init__()
        for k, v in (data or {}).items():
            self[k] = v

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


@dataclass(frozen=True)
class WebRequest:
    """What an adapter sees of an HTTP request: no Flask, so verifiers stay pure and testable."""

    method: str
    path: str  # the part after /webhooks/<platform>/<bot_id>, e.g. "" or "robot"
    args: Mapping[str, str]
    headers: CaseInsensitiveDict
    body: bytes

    def json(self) -> Any:
        return parse_json(self.body, "body")


@dataclass(frozen=True)
class WebResponse:
    status: int = 200
    body: bytes | str | Mapping[str, Any] | list[Any] = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


ALLOW_PRIVATE = "allow_private"  # Outbound.extra: "true" when the team's robot may be inside the network


def webhook_http(message: Outbound) -> netguard.GuardedSession:
    """The session for a team's group-robot URL (a URL a user configured): guarded against
    private addresses unless the team's chat says ``allow_private = true`` (sources/netguard.py)."""
    return netguard.GuardedSession(allow_private=message.extra.get(ALLOW_PRIVATE) == "true")


def guard_error(exc: Exception, what: str) -> DeliveryError:
    """A refused or unresolvable robot URL as a DeliveryError: refused is for an admin, not a retry."""
    if isinstance(exc, netguard.UrlRefused):
        return DeliveryError(f"{what}: {exc}", retry=False, code="private_address")
    return DeliveryError(f"{what}: {exc}", retry=True, code="resolve")


class SignatureError(Exception):
    """Forged or stale request: answered 401 and nothing changes."""


class BadRequest(Exception):
    """Malformed request: answered 400 with a JSON reason and nothing changes."""


class LimitExceeded(BadRequest):
    """A body past a size or nesting bound: answered 400 like any bad request, logged as a WARNING."""


def parse_json(raw: bytes | str, what: str) -> Any:
    """JSON from outside (a body, a decrypted event, a JSON string inside one), bounded in size and
    depth (sources/jsonlimits.py): BadRequest when invalid, LimitExceeded past a bound."""
    try:
        return jsonlimits.loads(raw)
    except jsonlimits.JsonLimitError as exc:
        raise LimitExceeded(f"{what}: {exc}") from None
    except ValueError:  # UnicodeDecodeError included
        raise BadRequest(f"{what} is not valid JSON") from None


@dataclass(frozen=True)
class Outbound:
    """One message the relay hands an adapter: a rendered-later Card and where it goes.

    ``channel``: ``chat`` (a group chat id), ``user`` (a person's id on this bot),
    ``webhook`` (a team's send-only group robot; ``target`` is the team id and the
    adapter gets the URL/secret from ``extra``) or ``update`` (replace a sent card;
    ``reply_handle`` says which).
    """

    id: str
    channel: str
    target: str
    card: Card
    reply_handle: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    # A message the platform takes in several parts (WeCom splits long cards): how many an
    # earlier attempt got accepted (kept on the outbox row), and where to record each new one.
    parts_sent: int = 0
    record_part: Callable[[int], None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class SendResult:
    platform_message_id: str = ""
    reply_handle: str | None = None  # kept with the row for a later update (e.g. WeCom response_code)


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` sends per ``per_seconds`` for everything sharing ``key`` (a robot, an app).

    Adapters declare them (``limits(message)``); the outbox relay enforces them with token
    buckets, so the platform's own throttle (DingTalk's 10-minute ban) is never tripped.
    """

    key: str
    count: int
    per_seconds: float


# DeliveryError.code of a send whose fate is unknown (the request went out, no answer came back)
# on an API that offers no idempotency: the relay never resends it blindly (status "unknown").
OUTCOME_UNKNOWN = "outcome_unknown"


class DeliveryError(Exception):
    """A failed send, classified: ``retry`` later (after ``retry_after`` seconds if known) or give up."""

    def __init__(self, message: str, *, retry: bool, retry_after: float | None = None, code: str = ""):
        super().__init__(message)
        self.retry = retry
        self.retry_after = retry_after
        self.code = code


class Platform(Protocol):
    """One configured bot on one platform. Built per bot by ``bot.platforms.build``."""

    name: str
    bot_id: str

    def parse(self, request: WebRequest, now: datetime) -> Inbound | WebResponse:
        """Verify and decrypt; a handshake (URL verification) is answered with a WebResponse."""
        ...

    def answer(self, inbound: Inbound, card: Card | None) -> tuple[WebResponse, bool]:
        """The synchronous HTTP answer, and whether ``card`` must still go out through the outbox."""
        ...

    def ack_duplicate(self, inbound: Inbound) -> WebResponse:
        """The answer to a retried event that already took effect."""
        ...

    def send(self, message: Outbound) -> SendResult:
        """Deliver one outbox message; raise DeliveryError on failure."""
        ...

    def limits(self, message: Outbound) -> list[RateLimit]:
        """The rate limits ``message`` counts against (may be empty)."""
        ...
