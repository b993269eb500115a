"""Rate limits that hold for the whole deployment: the windows live in the database.

Every worker, ``planloop run`` and ``planloop demo`` send through a relay; a group robot's
20-a-minute must hold for all of them together, and a refusal one of them saw (DingTalk
130101, WeCom 45009, Feishu 11232) must pause the robot for the others too. So each
(key, window) of a ``RateLimit`` is one ``rate_windows`` row holding the times of its last
``count`` sends and a "blocked until". Taking a token reads and writes those rows in one
transaction under a lock:

- PostgreSQL: ``SELECT … FOR UPDATE`` on the rows, in key order (two relays wanting the same
  keys queue up instead of deadlocking); a missing row is first created with
  ``INSERT … ON CONFLICT DO NOTHING``, so two first-comers cannot both create it.
- SQLite: ``BEGIN IMMEDIATE`` (``storage.db``) takes the database's write lock before the read.

Either way no two takers read the same state and both write: no lost update.

The semantics are ``delivery.TokenBuckets``' (a spent token returns ``per_seconds`` after it was
spent, so no window of ``per_seconds`` sees more than ``count`` sends); only where the state
lives differs. The arithmetic is shared: ``window_wait``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from bot.platforms.base import RateLimit
from storage.db import transaction
from storage.models import RateWindow

WindowId = tuple[str, int]  # (key, window in milliseconds)


def window_id(limit: RateLimit) -> WindowId:
    per = limit.per_seconds if limit.count > 0 and limit.per_seconds > 0 else 0.0
    return (limit.key[:200], round(per * 1000))


def live(spent: Sequence[float], per_seconds: float, now: float) -> list[float]:
    """The sends still inside the window that ends at ``now``."""
    return [t for t in spent if t > now - per_seconds]


def window_wait(spent: Sequence[float], limit: RateLimit, now: float) -> float:
    """Seconds until one more send fits ``limit``, given the window's live sends (oldest first)."""
    if limit.count <= 0 or limit.per_seconds <= 0 or len(spent) < limit.count:
        return 0.0
    return max(0.0, spent[len(spent) - limit.count] + limit.per_seconds - now)


def _epoch(at: datetime | None) -> float:
    return at.timestamp() if at is not None else 0.0


class SharedBuckets:
    """``TokenBuckets``' face (``acquire``, ``wait``, ``block``) over the ``rate_windows`` table."""

    def __init__(self, sessions: sessionmaker[Session], engine: Engine, clock: Callable[[], datetime]):
        self.sessions = sessions
        self.engine = engine
        self.clock = clock  # only for ``updated_at``: the times that count are the callers' ``now``

    # -- the face the relay uses ------------------------------------------------------------

    def acquire(self, limits: Iterable[RateLimit], now: float) -> float:
        """Take a token from every window and return 0, or take none and return the wait."""
        return self._pass(list(limits), now, take=True)[0]

    def acquire_then(
        self, limits: Iterable[RateLimit], now: float, then: Callable[[Session], None] | None
    ) -> tuple[float, float]:
        """``acquire``, and when the token is granted, ``then(session)`` in the same transaction
        (the relay's in-flight mark: one commit instead of two before a send). Returns the wait
        (0: granted) and, once granted, how long the next token is away as of ``now`` (0: it is
        there), which only grows: the relay need not ask again before then."""
        return self._pass(list(limits), now, take=True, then=then)

    def wait(self, limits: Iterable[RateLimit], now: float) -> float:
        """Seconds until every window has a token (0: a send now would fit)."""
        return self._pass(list(limits), now, take=False)[0]

    def block(self, keys: Iterable[str], until: float) -> None:
        """The platform refused: nothing goes to these keys before ``until``, from any process."""
        keys = sorted({k[:200] for k in keys})
        if not keys:
            return
        stamp = datetime.fromtimestamp(until, UTC)
        with transaction(self.sessions) as session:
            session.execute(
                update(RateWindow)
                .where(
                    RateWindow.key.in_(keys),
                    (RateWindow.blocked_until.is_(None)) | (RateWindow.blocked_until < stamp),
                )
                .values(blocked_until=stamp, updated_at=self.clock())
                .execution_options(synchronize_session=False)
            )

    # -- one locked read-compute-write ----------------------------------------------------

    def _pass(
        self,
        limits: list[RateLimit],
        now: float,
        *,
        take: bool,
        then: Callable[[Session], None] | None = None,
    ) -> tuple[float, float]:
        """(the wait, 0 when a token was taken; then the next token's wait after this one)"""
        if not limits:
            if then is not None:
                with transaction(self.sessions) as session:
                    then(session)
            return 0.0, 0.0
        by_window: dict[WindowId, list[RateLimit]] = {}
        for limit in limits:
            by_window.setdefault(window_id(limit), []).append(limit)
        ids = sorted(by_window)
        with transaction(self.sessions) as session:
            rows = self._locked(session, ids)
            if take and len(rows) < len(ids):
                self._create(session, [i for i in ids if i not in rows])
                rows = self._locked(session, ids)
            longest = 0.0
            kept: dict[WindowId, list[float]] = {}
            for wid in ids:
                row = rows.get(wid)
                spent = live(row.spent if row is not None else [], wid[1] / 1000, now)
                kept[wid] = spent
                if row is not None:
                    longest = max(longest, _epoch(row.blocked_until) - now)
                for limit in by_window[wid]:
                    longest = max(longest, window_wait(spent, limit, now))
            if not take or longest > 0:
                return max(0.0, longest), 0.0
            after = 0.0
            for wid, spent in kept.items():
                if wid[1] == 0:
                    continue  # a limit without a window only carries blocks
                count = max(lim.count for lim in by_window[wid])
                rows[wid].spent = [*spent, now][-count:]
                rows[wid].updated_at = self.clock()
                after = max([after] + [window_wait([*spent, now], lim, now) for lim in by_window[wid]])
            if then is not None:
                then(session)
            return 0.0, after

    def _locked(self, session: Session, ids: list[WindowId]) -> dict[WindowId, RateWindow]:
        """The windows' rows, locked until the transaction ends (key order: no deadlock)."""
        rows = session.scalars(
            select(RateWindow)
            .where(tuple_(RateWindow.key, RateWindow.window_ms).in_(ids))
            .order_by(RateWindow.key, RateWindow.window_ms)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return {(r.key, r.window_ms): r for r in rows}

    def _create(self, session: Session, ids: list[WindowId]) -> None:
        values = [{"key": k, "window_ms": w, "spent": [], "updated_at": self.clock()} for k, w in ids]
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        session.execute(insert(RateWindow).values(values).on_conflict_do_nothing())
