"""The outbox relay: claim due rows, send them through the platform adapter, retry, rate-limit.

How a message travels: a handler or job ``storage.outbox.enqueue``s a row in its own
transaction; a relay (one per worker, any number of workers) claims due rows for a
lease (``claimed_until``), sends each one outside any database transaction, then
records the outcome. Lost-nothing: a relay killed between claim and send leaves its
rows to be claimed again when the lease runs out; a relay killed after the platform
accepted but before the row was marked sent causes one resend, which Feishu drops
(the outbox id is its ``uuid``) and which the other platforms show at most once more.

- Claims: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so relays never wait on each other;
  on SQLite one conditional ``UPDATE`` (SQLite serialises writers).
- Retries: full-jitter exponential backoff, never sooner than the platform's retry-after;
  after ``max_attempts`` failures, or at once for an error the platform says is final,
  the row is ``dead`` and the admins are told.
- Unknown outcomes: a send that timed out after it went out, on an API without idempotency
  (group robots), is never resent blindly: the row becomes ``unknown``, the admins are told,
  and ``planloop outbox resend <id>`` (``resend``) sends it again on purpose.
- Concurrency: a relay sends up to ``RelayPolicy.concurrency`` messages at once. A claimed
  batch is split into lanes, one per target (bot, channel, target); lanes go in parallel on the
  relay's thread pool, the rows of one lane one after another in claim order, so one chat never
  has two of our sends in flight and sees them in the order they were claimed. Every row keeps
  its own token, in-flight mark and outcome write. When ``stop`` is set (SIGTERM), sends in flight
  finish and are recorded; rows not yet started are handed back at once for another relay.
- Multi-part messages: each part the platform accepted is counted on the row (``parts_sent``),
  so a retry, in this process or after a restart, resumes at the next part.
- Rate limits: token buckets per ``Platform.limits(message)``; a message that would
  exceed one waits (its row goes back with a later due time), it never fails for it.
  The buckets live in the database (``bot.worker.rate_limits.SharedBuckets``), so a limit holds for
  every worker together, and a refusal one relay saw pauses the target for all of them.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from bot.ops import logs, metrics
from bot.platforms.base import ALLOW_PRIVATE, OUTCOME_UNKNOWN, DeliveryError, Outbound, RateLimit, SendResult
from bot.services import Services
from bot.worker import webhooks_out
from bot.worker.rate_limits import SharedBuckets
from cards import builders_ops
from cards.model import Card
from handlers.ops import ADMIN_PREFIX, notify_admins
from storage import secrets
from storage.db import is_sqlite, transaction
from storage.models import OutboxMessage, Team

log = logging.getLogger("planloop.delivery")

# deliver()'s outcome -> planloop_deliveries_total{result}: a deferred (rate-limited) or lost
# (lease ran out, settled elsewhere) attempt sent nothing and is not a failure: "skipped".
DELIVERY_METRIC = {
    "sent": "sent",
    "retried": "retry",
    "dead": "dead",
    "unknown": "dead",  # no longer retried: counted with the given-up ones
    "waited": "skipped",
    "lost": "skipped",
    "released": "skipped",  # handed back unsent on stop (SIGTERM), for another relay
}

# Keys of Outbound.extra for ``webhook`` rows: the team's group-robot URL and signing secret.
WEBHOOK_URL = "url"
WEBHOOK_SECRET = "secret"  # noqa: S105 - a key name, not a secret


@dataclass(frozen=True)
class RelayPolicy:
    batch: int = 16
    lease: timedelta = timedelta(minutes=5)  # well above an adapter's HTTP timeout × batch
    max_attempts: int = 8
    base_delay: float = 2.0  # seconds; attempt n waits up to base × 2^(n-1)
    max_delay: float = 3600.0
    # sends in flight at once (each to a different target); 1: one at a time, in the caller's thread
    concurrency: int = 4
    per_target: int = 4  # rows of one target in one batch (its lane); the rest wait for a later claim


@dataclass
class RelayStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    waited: int = 0  # deferred by a rate limit
    lost: int = 0  # lease ran out before sending; left for whoever claims it next
    unknown: int = 0  # sent, unanswered, not safe to resend: left to an admin
    released: int = 0  # claimed but not started when the relay was told to stop: handed back

    def add(self, other: RelayStats) -> None:
        for name in ("claimed", "sent", "retried", "dead", "waited", "lost", "unknown", "released"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def progressed(self) -> bool:
        return self.claimed > 0


@dataclass(frozen=True)
class Claimed:
    """A snapshot of a claimed row, used after the claiming transaction has committed."""

    id: str
    dedupe_key: str
    bot_id: str
    channel: str
    target: str
    card: dict[str, Any]
    reply_handle: str | None
    attempts: int
    claimed_until: datetime
    parts_sent: int = 0
    sending_at: datetime | None = None
    # a ``webhook`` row's team robot as the claim read it: (url, secret, allow private); None: unread
    webhook: tuple[str | None, str | None, bool] | None = None


class Buckets(Protocol):
    """Where a relay takes its tokens: ``TokenBuckets`` (one process) or ``SharedBuckets`` (all)."""

    def acquire(self, limits: Iterable[RateLimit], now: float) -> float: ...

    def block(self, keys: Iterable[str], until: float) -> None: ...


class TokenBuckets:
    """One process's buckets (tests, and the control that shows why they must be shared). One bucket of ``count`` tokens per ``RateLimit.key``; a spent token returns ``per_seconds``
    after it was spent. So a burst may use the whole bucket, yet no window of ``per_seconds``
    ever sees more than ``count`` sends (a refill-rate bucket would allow up to twice that,
    enough to trip DingTalk's 20-per-minute ban). Shared by the relay threads of a process.

    One key may carry several windows (Feishu's robot: 5 a second and 100 a minute); each
    window keeps its own history, or the short one would forget what the long one must count."""

    def __init__(self) -> None:
        # (key, window) -> times tokens were spent, oldest first
        self._spent: dict[tuple[str, float], deque[float]] = {}
        self._blocked: dict[str, float] = {}  # key -> until (the platform said "slow down")
        self._lock = threading.Lock()

    def _live(self, limit: RateLimit, now: float) -> deque[float]:
        spent = self._spent.setdefault((limit.key, float(limit.per_seconds)), deque())
        while spent and spent[0] <= now - limit.per_seconds:
            spent.popleft()
        return spent

    def _wait(self, limits: Iterable[RateLimit], now: float) -> float:
        longest = 0.0
        for limit in limits:
            longest = max(longest, self._blocked.get(limit.key, 0.0) - now)
            if limit.count <= 0 or limit.per_seconds <= 0:
                continue
            spent = self._live(limit, now)
            if len(spent) >= limit.count:
                longest = max(longest, spent[len(spent) - limit.count] + limit.per_seconds - now)
        return max(0.0, longest)

    def wait(self, limits: Iterable[RateLimit], now: float) -> float:
        """Seconds until every bucket has a token (0: a send now would fit)."""
        with self._lock:
            return self._wait(list(limits), now)

    def acquire(self, limits: Iterable[RateLimit], now: float) -> float:
        """Take a token from every bucket and return 0, or take none and return the wait."""
        limits = list(limits)
        with self._lock:
            wait = self._wait(limits, now)
            if wait == 0:
                self._take(limits, now)
            return wait

    def take(self, limits: Iterable[RateLimit], now: float) -> None:
        with self._lock:
            self._take(list(limits), now)

    def _take(self, limits: list[RateLimit], now: float) -> None:
        """One spend per (key, window), however many limits name it."""
        windows = {
            (lim.key, float(lim.per_seconds)): lim for lim in limits if lim.count > 0 and lim.per_seconds > 0
        }
        for limit in windows.values():
            self._live(limit, now).append(now)

    def block(self, keys: Iterable[str], until: float) -> None:
        with self._lock:
            for key in keys:
                self._blocked[key] = max(self._blocked.get(key, 0.0), until)


def _repeats_dropped(platform: Any, message: Outbound) -> bool:
    """Whether the platform drops a repeat of ``message`` (an idempotency key, a duplicate check),
    so an interrupted send may simply be sent again. Adapters without the method: yes."""
    check = getattr(platform, "repeats_dropped", None)
    if check is None:
        return True
    try:
        return bool(check(message))
    except Exception:  # when in doubt, be careful: treat it as a channel that shows repeats
        log.exception("repeats_dropped() failed")
        return False


def shared_buckets(services: Services) -> Buckets:
    """The deployment-wide buckets in ``services``' database."""
    return SharedBuckets(services.sessions, services.engine, services.clock)


def _ctx(claimed: Claimed) -> dict[str, str]:
    """The structured-log fields of one outbox row."""
    return {"outbox_id": claimed.id, "bot": claimed.bot_id}


def backoff(attempts: int, policy: RelayPolicy, rng: Callable[[], float], retry_after: float | None) -> float:
    """Full jitter: uniform in [0, min(cap, base × 2^(attempts-1))], but never before retry-after."""
    ceiling = min(policy.max_delay, policy.base_delay * (2 ** max(0, attempts - 1)))
    delay = rng() * ceiling
    if retry_after is not None and retry_after > 0:
        delay = max(delay, float(retry_after))
    return delay


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


Lane = tuple[str, str, str]  # (bot_id, channel, target): rows that go one after another


def lanes(claimed: Iterable[Claimed]) -> list[list[Claimed]]:
    """The claimed rows by target, each lane in claim order, lanes in order of their first row."""
    by_lane: dict[Lane, list[Claimed]] = {}
    for row in claimed:
        by_lane.setdefault((row.bot_id, row.channel, row.target), []).append(row)
    return list(by_lane.values())


class Relay:
    """One relay loop's state: its name, its rate-limit buckets and its pool of sending threads.
    ``run_once`` is called from one thread at a time; it fans the sends out itself."""

    def __init__(
        self,
        services: Services,
        *,
        name: str | None = None,
        policy: RelayPolicy | None = None,
        rng: Callable[[], float] = random.random,
        buckets: Buckets | None = None,
        stop: threading.Event | None = None,
    ):
        self.services = services
        self.name = name or worker_name()
        self.policy = policy or RelayPolicy()
        self.rng = rng
        self.buckets = buckets or shared_buckets(services)
        self.stop = stop  # once set, rows not yet started are handed back (``run_relay`` sets it)
        # limits -> no token before this time (epoch s), as the buckets last said. Safe to reuse:
        # tokens only get spent and blocks only get longer, so a wait never shrinks. It spares
        # the database one locked read per row of a burst that waits behind the same robot.
        self._not_before: dict[tuple[tuple[str, int, float], ...], float] = {}
        self._not_before_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._opened: dict[str, str] = {}  # sealed webhook URL or secret -> opened

    def close(self) -> None:
        """Let the sending threads go (after the sends in flight)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # -- claiming ---------------------------------------------------------------------------

    def _due(self, now: datetime):  # noqa: ANN202 - a SQL condition
        return and_(
            OutboxMessage.status == "pending",
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
        )

    def _capped(self, rows: Iterable[tuple[str, str, str, str]]) -> list[str]:
        """Of the first due rows (id, bot, channel, target) in claim order: the batch, with at most
        ``policy.per_target`` rows of one target. A target's queue shares one due time once its
        limit deferred it: without the cap one robot that may send one message now would fill the
        whole batch, and the rest of the batch would only be handed back."""
        taken: list[str] = []
        per: dict[tuple[str, str, str], int] = {}
        for row_id, bot_id, channel, target in rows:
            lane = (bot_id, channel, target)
            if per.get(lane, 0) >= self.policy.per_target:
                continue
            per[lane] = per.get(lane, 0) + 1
            taken.append(row_id)
            if len(taken) >= self.policy.batch:
                break
        return taken

    def claim(self) -> list[Claimed]:
        now = self.services.clock()
        until = now + self.policy.lease
        order = (OutboxMessage.next_attempt_at, OutboxMessage.created_at, OutboxMessage.id)
        # a few batches' worth of candidates, so the per-target cap still fills the batch
        candidates = (
            select(OutboxMessage.id, OutboxMessage.bot_id, OutboxMessage.channel, OutboxMessage.target)
            .where(self._due(now))
            .order_by(*order)
            .limit(self.policy.batch * 4)
        )
        with transaction(self.services.sessions) as session:
            if is_sqlite(self.services.engine):
                # The transaction began with BEGIN IMMEDIATE (storage.db): it holds SQLite's
                # single write lock from the read on, so two relays can never both pick a row.
                ids = self._capped(session.execute(candidates).all())
            else:
                # SKIP LOCKED: rows another relay is claiming are passed over, never waited for;
                # the candidates left out by the cap are unlocked again at commit
                ids = self._capped(session.execute(candidates.with_for_update(skip_locked=True)).all())
            if ids:
                session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(ids), self._due(now))
                    .values(claimed_by=self.name, claimed_until=until)
                    .execution_options(synchronize_session=False)
                )
            rows = (
                list(
                    session.scalars(
                        select(OutboxMessage)
                        .where(
                            OutboxMessage.id.in_(ids),
                            OutboxMessage.claimed_by == self.name,
                            OutboxMessage.claimed_until == until,
                            OutboxMessage.status == "pending",
                        )
                        .order_by(*order)
                    )
                )
                if ids
                else []
            )
            hooks = self._webhooks(session, {r.target for r in rows if r.channel == "webhook"})
            return [
                Claimed(
                    r.id,
                    r.dedupe_key,
                    r.bot_id,
                    r.channel,
                    r.target,
                    dict(r.card),
                    r.reply_handle,
                    r.attempts,
                    until,
                    r.parts_sent or 0,
                    r.sending_at,
                    hooks.get(r.target, (None, None, False)) if r.channel == "webhook" else None,
                )
                for r in rows
            ]

    @staticmethod
    def _webhooks(session: Session, teams: set[str]) -> dict[str, tuple[str | None, str | None, bool]]:
        """The group robots of a batch's teams, in one read (not one per row)."""
        if not teams:
            return {}
        rows = session.execute(
            select(Team.id, Team.webhook_enc, Team.webhook_secret_enc, Team.webhook_allow_private).where(
                Team.id.in_(sorted(teams))
            )
        ).all()
        return {team: (url, secret, bool(private)) for team, url, secret, private in rows}

    def next_due(self) -> datetime | None:
        """When the earliest pending row becomes claimable (its due time or its lease end)."""
        with self.services.sessions() as session:
            due = func.coalesce(OutboxMessage.claimed_until, OutboxMessage.next_attempt_at)
            rows = session.execute(
                select(OutboxMessage.next_attempt_at, OutboxMessage.claimed_until)
                .where(OutboxMessage.status == "pending")
                .order_by(due)
                .limit(50)
            ).all()
        times = [max(a, b) if b is not None else a for a, b in rows]
        return min(times) if times else None

    # -- sending ----------------------------------------------------------------------------

    def run_once(self) -> RelayStats:
        """Claim a batch and send it: its lanes in parallel (up to ``policy.concurrency``), each
        lane's rows in order. Returns when every row of the batch has its outcome."""
        stats = RelayStats()
        claimed = self.claim()
        stats.claimed = len(claimed)
        batch = lanes(claimed)
        if self.policy.concurrency <= 1 or len(batch) <= 1:
            results = [self._lane(lane) for lane in batch]
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.policy.concurrency, thread_name_prefix=f"planloop-send-{self.name}"
                )
            futures: list[Future[list[str]]] = [self._pool.submit(self._lane, lane) for lane in batch]
            wait_all(futures)  # every lane settles before a failure of one is raised
            results = [f.result() for f in futures]
        for outcomes in results:
            for outcome in outcomes:
                setattr(stats, outcome, getattr(stats, outcome) + 1)
        return stats

    def _lane(self, rows: list[Claimed]) -> list[str]:
        """One target's rows, one after another. A row that has to wait for a token has taken the
        rest of its target's queue along (``_defer``): those are not tried in this pass."""
        outcomes: list[str] = []
        for n, claimed in enumerate(rows):
            if self.stop is not None and self.stop.is_set():
                outcomes.extend(self._hand_back(rows[n:]))
                break
            outcome = self.deliver(claimed)
            outcomes.append(outcome)
            if outcome == "waited":
                for _ in rows[n + 1 :]:
                    metrics.count_delivery(DELIVERY_METRIC["waited"])
                outcomes.extend(["waited"] * (len(rows) - n - 1))
                break
        return outcomes

    def _hand_back(self, rows: list[Claimed]) -> list[str]:
        """Stopping: rows claimed but not started go back at once (not when the lease ends)."""
        with transaction(self.services.sessions) as session:
            session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id.in_([r.id for r in rows]),
                    OutboxMessage.status == "pending",
                    OutboxMessage.claimed_by == self.name,
                    OutboxMessage.sending_at.is_(None),
                )
                .values(claimed_by=None, claimed_until=None)
                .execution_options(synchronize_session=False)
            )
        for _ in rows:
            metrics.count_delivery(DELIVERY_METRIC["released"])
        return ["released"] * len(rows)

    def _outbound(self, claimed: Claimed) -> Outbound:
        card = Card.from_dict(claimed.card)
        extra: dict[str, str] = {}
        if claimed.channel == "webhook":
            url, secret, allow_private = claimed.webhook or self._webhooks_now(claimed.target)
            if not url:
                raise DeliveryError(
                    f"team {claimed.target} has no group-robot webhook configured",
                    retry=True,
                    code="no_webhook",
                )
            extra = {WEBHOOK_URL: self._open(url), WEBHOOK_SECRET: self._open(secret) if secret else ""}
            if allow_private:
                extra[ALLOW_PRIVATE] = "true"
        return Outbound(
            claimed.id,
            claimed.channel,
            claimed.target,
            card,
            claimed.reply_handle,
            extra,
            parts_sent=claimed.parts_sent,
            record_part=lambda n: self._record_part(claimed, n),
        )

    def _webhooks_now(self, team: str) -> tuple[str | None, str | None, bool]:
        with self.services.sessions() as session:
            return self._webhooks(session, {team}).get(team, (None, None, False))

    def _marker(self, claimed: Claimed) -> Callable[[Session], None]:
        """The in-flight mark, before a send the platform would show twice: if this process dies
        before the outcome is written, whoever claims the row next finds the mark and does not
        send it again."""

        def mark(session: Session) -> None:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == claimed.id, OutboxMessage.claimed_by == self.name)
                .values(sending_at=self.services.clock())
                .execution_options(synchronize_session=False)
            )

        return mark

    def _take_token(
        self, limits: list[RateLimit], now: float, mark: Callable[[Session], None] | None
    ) -> tuple[float, float]:
        """A token from every limit, with the in-flight mark if given, committed before the send
        (shared buckets write both in one transaction). Returns the wait (0: taken) and, when the
        buckets can tell, how far the next token is (so the lane's next row need not ask)."""
        if isinstance(self.buckets, SharedBuckets):
            return self.buckets.acquire_then(limits, now, mark)
        wait = self.buckets.acquire(limits, now)
        if wait == 0 and mark is not None:
            with transaction(self.services.sessions) as session:
                mark(session)
        return wait, 0.0

    def _record_part(self, claimed: Claimed, parts: int) -> None:
        """The platform accepted part ``parts`` of a multi-part message: count it on the row now,
        so no retry, here or after a restart, sends that part again."""
        with transaction(self.services.sessions) as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == claimed.id, OutboxMessage.status == "pending")
                .values(parts_sent=parts)
                .execution_options(synchronize_session=False)
            )

    def _open(self, stored: str) -> str:
        """A webhook URL or secret as stored: sealed at rest (``planloop apply``), opened only here
        (and kept opened, by its sealed text, for this relay's next message to that robot)."""
        if not stored.startswith(secrets.PREFIX):
            return stored  # written before sealing existed, or by hand
        opened = self._opened.get(stored)
        if opened is not None:
            return opened
        try:
            keys = [k.get() for k in self.services.settings.secret_keys]
            opened = secrets.Sealer(keys).open(stored)
        except secrets.SecretsUnavailable as exc:
            raise DeliveryError(f"cannot open the team's webhook: {exc}", retry=True, code="secret") from exc
        logs.add_secret(opened)  # from now on the log redacts it wherever it shows up
        if len(self._opened) > 10_000:
            self._opened.clear()
        self._opened[stored] = opened
        return opened

    def deliver(self, claimed: Claimed) -> str:
        """Send one claimed row; returns the outcome: sent | retried | dead | waited | lost."""
        outcome = self._deliver(claimed)
        metrics.count_delivery(DELIVERY_METRIC.get(outcome, "skipped"))
        return outcome

    def _deliver(self, claimed: Claimed) -> str:
        platform = webhooks_out.sender_for(self.services, claimed.channel) or self.services.platforms.get(
            claimed.bot_id
        )
        try:
            if platform is None:
                raise DeliveryError(
                    f"no bot named {claimed.bot_id!r} is configured", retry=True, code="no_bot"
                )
            try:
                message = self._outbound(claimed)
            except (KeyError, TypeError, ValueError) as exc:
                raise DeliveryError(
                    f"the stored card cannot be read: {exc}", retry=False, code="bad_card"
                ) from exc
            try:
                limits = list(platform.limits(message))
            except Exception:  # a limits bug must not stop delivery
                log.exception("limits() failed for %s", claimed.bot_id, extra=_ctx(claimed))
                limits = []
            if claimed.sending_at is not None:
                return self._unknown(
                    claimed, "the relay stopped while sending it (killed or crashed); it may have arrived"
                )
            if self.services.clock() >= claimed.claimed_until:
                log.warning(
                    "lease on %s ran out before sending; leaving it to the next claim",
                    claimed.id,
                    extra=_ctx(claimed),
                )
                return "lost"
            now_ts = self.services.clock().timestamp()
            windows = tuple(sorted({(lim.key, lim.count, float(lim.per_seconds)) for lim in limits}))
            with self._not_before_lock:
                known = self._not_before.get(windows, 0.0)
            if now_ts < known:
                return self._defer(claimed, known - now_ts)
            mark = None if _repeats_dropped(platform, message) else self._marker(claimed)
            wait, after = self._take_token(limits, now_ts, mark)
            if wait > 0 or after > 0:
                with self._not_before_lock:
                    if len(self._not_before) > 10_000:
                        self._not_before.clear()
                    until = now_ts + max(wait, after)
                    self._not_before[windows] = max(self._not_before.get(windows, 0.0), until)
            if wait > 0:
                return self._defer(claimed, wait)
            try:
                result = platform.send(message)
            except DeliveryError as exc:
                if exc.retry_after:
                    self.buckets.block([lim.key for lim in limits], now_ts + float(exc.retry_after))
                raise
        except DeliveryError as exc:
            if exc.code == OUTCOME_UNKNOWN:
                return self._unknown(claimed, str(exc))
            return self._failed(
                claimed, str(exc), retry=exc.retry, retry_after=exc.retry_after, code=exc.code
            )
        except Exception as exc:  # timeouts, connection resets, adapter bugs: try again later
            log.warning(
                "send %s on %s raised %s",
                claimed.id,
                claimed.bot_id,
                type(exc).__name__,
                exc_info=True,
                extra=_ctx(claimed),
            )
            return self._failed(
                claimed, f"{type(exc).__name__}: {exc}", retry=True, retry_after=None, code="exception"
            )
        return self._sent(claimed, result)

    def _sent(self, claimed: Claimed, result: SendResult) -> str:
        now = self.services.clock()
        values: dict[str, Any] = {
            "status": "sent",
            "sent_at": now,
            "attempts": OutboxMessage.attempts + 1,
            "platform_message_id": (result.platform_message_id or None),
            "claimed_by": None,
            "claimed_until": None,
            "sending_at": None,
            "last_error": "",
        }
        if result.reply_handle:
            values["reply_handle"] = result.reply_handle
        with transaction(self.services.sessions) as session:
            # Not conditional on our claim: if our lease ran out meanwhile, marking it sent
            # still stops a second relay that has not sent yet.
            done = session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == claimed.id, OutboxMessage.status == "pending")
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if (done.rowcount or 0) != 1:  # type: ignore[attr-defined]
                log.warning(
                    "outbox %s was already settled by another relay (sent twice?)",
                    claimed.id,
                    extra=_ctx(claimed),
                )
        log.info(
            "sent %s via %s (%s)", claimed.id, claimed.bot_id, result.platform_message_id, extra=_ctx(claimed)
        )
        return "sent"

    def _release(self, session: Session, claimed: Claimed, **values: Any) -> bool:
        done = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == claimed.id,
                OutboxMessage.status == "pending",
                OutboxMessage.claimed_by == self.name,
            )
            .values(claimed_by=None, claimed_until=None, sending_at=None, **values)
            .execution_options(synchronize_session=False)
        )
        return (done.rowcount or 0) == 1  # type: ignore[attr-defined]

    def _defer(self, claimed: Claimed, wait: float) -> str:
        now = self.services.clock()
        # rounded up to a whole microsecond, and at least a millisecond: a wait that a datetime
        # rounds to nothing would make the row due at once and claimed again, forever
        until = now + timedelta(microseconds=max(1000, math.ceil(wait * 1_000_000)))
        lane = (
            OutboxMessage.status == "pending",
            OutboxMessage.bot_id == claimed.bot_id,
            OutboxMessage.channel == claimed.channel,
            OutboxMessage.target == claimed.target,
        )
        # The rest of this target's queue has the same limits and cannot go sooner either: move
        # it along in one statement, rather than claim and defer each row in turn. The rows of it
        # this relay holds (this one, and the rest of its lane: ``_lane`` stops here) go back too.
        others = select(OutboxMessage.id).where(
            *lane,
            OutboxMessage.next_attempt_at < until,
            or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
        )
        if not is_sqlite(self.services.engine):
            # rows another relay is claiming or deferring right now are left to it: two relays
            # moving one queue along never wait on each other's row locks (no deadlock)
            others = others.with_for_update(skip_locked=True)
        with transaction(self.services.sessions) as session:
            session.execute(
                update(OutboxMessage)
                .where(*lane, OutboxMessage.claimed_by == self.name, OutboxMessage.sending_at.is_(None))
                .values(claimed_by=None, claimed_until=None, next_attempt_at=until)
                .execution_options(synchronize_session=False)
            )
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(others.scalar_subquery()))
                .values(next_attempt_at=until)
                .execution_options(synchronize_session=False)
            )
        return "waited"

    def _failed(
        self, claimed: Claimed, error: str, *, retry: bool, retry_after: float | None, code: str
    ) -> str:
        now = self.services.clock()
        # an event waiting behind an earlier one of its resource was not tried: no attempt spent
        attempts = claimed.attempts + (0 if code == webhooks_out.IN_ORDER else 1)
        text = f"[{code}] {error}" if code else error
        with transaction(self.services.sessions) as session:
            if code == webhooks_out.IN_ORDER or (retry and attempts < self.policy.max_attempts):
                delay = backoff(attempts, self.policy, self.rng, retry_after)
                self._release(
                    session,
                    claimed,
                    attempts=attempts,
                    last_error=text[:2000],
                    next_attempt_at=now + timedelta(seconds=delay),
                )
                log.info(
                    "send %s failed (attempt %d), retry in %.1fs: %s",
                    claimed.id,
                    attempts,
                    delay,
                    text,
                    extra=_ctx(claimed),
                )
                return "retried"
            if not self._release(session, claimed, attempts=attempts, last_error=text[:2000], status="dead"):
                return "lost"
            log.error(
                "outbox %s is dead after %d attempts: %s", claimed.id, attempts, text, extra=_ctx(claimed)
            )
            self._tell_admins(session, claimed, attempts, text, now)
        return "dead"

    def _unknown(self, claimed: Claimed, error: str) -> str:
        """Sent, maybe received, not safe to send again: park the row and ask a person."""
        now = self.services.clock()
        attempts = claimed.attempts + 1
        text = f"[{OUTCOME_UNKNOWN}] {error}"
        with transaction(self.services.sessions) as session:
            if not self._release(
                session, claimed, attempts=attempts, last_error=text[:2000], status="unknown"
            ):
                return "lost"
            log.error(
                "outbox %s may or may not have arrived (%s); not resending it blindly",
                claimed.id,
                error,
                extra=_ctx(claimed),
            )
            self._tell_admins(session, claimed, attempts, text, now, unknown=True)
        return "unknown"

    def _tell_admins(
        self,
        session: Session,
        claimed: Claimed,
        attempts: int,
        error: str,
        now: datetime,
        *,
        unknown: bool = False,
    ) -> None:
        audit = {"outbox_id": claimed.id, "bot": claimed.bot_id, "error": error[:500]}
        admins: list[str] = [] if claimed.dedupe_key.startswith(ADMIN_PREFIX) else list(self._admins())
        build = builders_ops.delivery_unknown_card if unknown else builders_ops.delivery_dead_card
        card = build(
            message_id=claimed.id,
            bot_id=claimed.bot_id,
            channel=claimed.channel,
            target=claimed.target,
            title=str(claimed.card.get("title", "")),
            attempts=attempts,
            error=error,
        )
        notify_admins(
            session,
            admins,
            card,
            bots=frozenset(self.services.platforms),
            dedupe_key=f"{'unknown' if unknown else 'dead'}:{claimed.id}",
            now=now,
            audit=audit,
        )

    def _admins(self) -> list[str]:
        admins = self.services.settings.extra.get("admins", [])
        return [str(a) for a in admins] if isinstance(admins, list | tuple) else []


RESENDABLE = ("unknown", "dead")


def outbox_rows(
    session: Session, statuses: Sequence[str] = RESENDABLE, limit: int = 50, *, newest_first: bool = False
) -> list[OutboxMessage]:
    """Outbox rows in ``statuses``, oldest first (or newest): what ``planloop outbox list`` prints
    (unknown and dead, waiting for an admin) and what the console's delivery page lists."""
    order = OutboxMessage.created_at.desc() if newest_first else OutboxMessage.created_at
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status.in_(tuple(statuses)))
            .order_by(order)
            .limit(limit)
        )
    )


def resend(services: Services, outbox_id: str) -> str | None:
    """An admin's one action: send an ``unknown`` (or ``dead``) row again, from the next part
    not known to have arrived. Returns the status it had, or None if there is no such row."""
    now = services.clock()
    with transaction(services.sessions) as session:
        row = session.get(OutboxMessage, outbox_id, with_for_update=True)
        if row is None or row.status not in RESENDABLE:
            return None if row is None else row.status
        was = row.status
        row.status = "pending"
        row.next_attempt_at = now
        row.claimed_by = None
        row.claimed_until = None
        row.sending_at = None
        row.last_error = f"resent by an admin at {now.isoformat()} (was {was}): {row.last_error}"[:2000]
        if row.channel == webhooks_out.CHANNEL:
            # an outgoing webhook event gets a fresh budget: its 24 hours and its attempts
            row.attempts = 0
            row.created_at = now
        return was


def drain(
    services: Services,
    until_empty: bool = True,
    deadline: datetime | None = None,
    *,
    relay: Relay | None = None,
    sleep: Callable[[float], None] = time.sleep,
    stop: threading.Event | None = None,
) -> RelayStats:
    """Deliver what is due; with ``until_empty``, also wait for retries until the outbox is
    empty or ``deadline`` (on ``services.clock``) passes. What is left stays for the worker.

    Tests pass ``sleep`` that advances their frozen clock.
    """
    own = relay is None
    relay = relay or Relay(services)
    if relay.stop is None:
        relay.stop = stop
    try:
        return _drain(services, relay, until_empty, deadline, sleep, stop)
    finally:
        if own:
            relay.close()


def _drain(
    services: Services,
    relay: Relay,
    until_empty: bool,
    deadline: datetime | None,
    sleep: Callable[[float], None],
    stop: threading.Event | None,
) -> RelayStats:
    total = RelayStats()
    while stop is None or not stop.is_set():
        if deadline is not None and services.clock() >= deadline:
            break
        stats = relay.run_once()
        total.add(stats)
        if stats.progressed:
            continue
        if not until_empty:
            break
        nxt = relay.next_due()
        if nxt is None:
            break
        if deadline is not None and nxt > deadline:
            break
        sleep(max(0.01, (nxt - services.clock()).total_seconds()))
    return total


def run_relay(
    services: Services, stop: threading.Event, *, relay: Relay | None = None, idle: float = 1.0
) -> None:
    """The worker's delivery loop: drain what is due, then nap (at most ``idle`` seconds).
    On ``stop`` the sends in flight finish and are recorded; rows not started are handed back."""
    relay = relay or Relay(services)
    if relay.stop is None:
        relay.stop = stop
    try:
        _relay_loop(services, stop, relay, idle)
    finally:
        relay.close()


def _relay_loop(services: Services, stop: threading.Event, relay: Relay, idle: float) -> None:
    while not stop.is_set():
        try:
            stats = relay.run_once()
        except Exception:  # the database went away: keep the loop alive, try again shortly
            log.exception("relay pass failed")
            stop.wait(idle * 5)
            continue
        if stats.progressed:
            continue
        try:
            nxt = relay.next_due()
        except Exception:
            log.exception("relay could not read the outbox")
            nxt = None
        nap = idle if nxt is None else min(idle, max(0.05, (nxt - services.clock()).total_seconds()))
        stop.wait(nap)


@dataclass
class OutboxDepth:
    pending: int = 0
    dead: int = 0
    oldest: datetime | None = None
    by_status: dict[str, int] = field(default_factory=dict)


def depth(services: Services) -> OutboxDepth:
    """How much is waiting (for /metrics and `planloop run`'s final line)."""
    with services.sessions() as session:
        rows = session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
        oldest = session.scalar(
            select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status == "pending")
        )
    counts = {status: int(n) for status, n in rows}
    return OutboxDepth(counts.get("pending", 0), counts.get("dead", 0), oldest, counts)
