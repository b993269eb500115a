"""Secrets at rest: platform tokens, webhook URLs and signing secrets sealed with MultiFernet.

Keys come from ``server.secret_key`` (comma-separated, newest first): the newest seals,
every key opens, so a key can be rotated without a flag day (``planloop keys rotate``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Setting, SourceState, Team

PREFIX = "fernet:"
# Columns that hold sealed values (a new one goes here, and `keys rotate` covers it).
SEALED_COLUMNS: dict[type, tuple[str, ...]] = {Team: ("webhook_enc", "webhook_secret_enc")}


class SecretsUnavailable(RuntimeError):
    """No key configured, or the stored value was sealed with a key that is no longer configured."""


class Sealer:
    def __init__(self, keys: list[str]):
        if not keys:
            raise SecretsUnavailable("server.secret_key is not set: secrets cannot be stored")
        try:
            fernets = [Fernet(k.encode()) for k in keys]
            self._fernet = MultiFernet(fernets)
            self._newest = fernets[0]
        except (ValueError, TypeError):
            raise SecretsUnavailable(
                "server.secret_key must be Fernet keys (32 url-safe base64 bytes), comma-separated"
            ) from None

    def seal(self, plaintext: str) -> str:
        return PREFIX + self._fernet.encrypt(plaintext.encode("utf-8")).decode()

    def open(self, sealed: str) -> str:
        if not sealed.startswith(PREFIX):
            raise SecretsUnavailable("stored secret is not sealed")
        try:
            return self._fernet.decrypt(sealed[len(PREFIX) :].encode()).decode("utf-8")
        except InvalidToken:
            raise SecretsUnavailable("stored secret was sealed with a key that is not configured") from None

    def rotate(self, sealed: str) -> str:
        """Re-seal with the newest key (what `planloop keys rotate` does for every stored secret)."""
        if not sealed.startswith(PREFIX):
            raise SecretsUnavailable("stored secret is not sealed")
        try:
            return PREFIX + self._fernet.rotate(sealed[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise SecretsUnavailable("stored secret was sealed with a key that is not configured") from None

    def is_current(self, sealed: str) -> bool:
        """True when ``sealed`` was sealed with the newest key (rotation skips it)."""
        if not sealed.startswith(PREFIX):
            return False
        try:
            self._newest.decrypt(sealed[len(PREFIX) :].encode())
        except InvalidToken:
            return False
        return True


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


# ---------------------------------------------------------------- source state (OAuth tokens …)


def seal_state(session: Session, sealer: Sealer, source_id: str, key: str, value: str, now: datetime) -> None:
    """Store a secret piece of a source's state (an OAuth access/refresh token), sealed."""
    row = session.get(SourceState, (source_id, key))
    sealed = sealer.seal(value)
    if row is None:
        session.add(SourceState(source_id=source_id, key=key, value=sealed, updated_at=now))
    else:
        row.value = sealed
        row.updated_at = now
    session.flush()


def open_state(session: Session, sealer: Sealer, source_id: str, key: str) -> str | None:
    """The plaintext of a value stored with ``seal_state``; None if there is none."""
    row = session.get(SourceState, (source_id, key))
    if row is None:
        return None
    return sealer.open(row.value)


# ---------------------------------------------------------------- rotation


@dataclass
class RotationReport:
    """Per place (``teams.webhook_enc`` …): how many values were re-sealed, and how many already current."""

    resealed: dict[str, int] = field(default_factory=dict)
    current: dict[str, int] = field(default_factory=dict)

    @property
    def total_resealed(self) -> int:
        return sum(self.resealed.values())

    def lines(self) -> list[str]:
        places = sorted(set(self.resealed) | set(self.current))
        return [
            f"{place}: {self.resealed.get(place, 0)} re-sealed, {self.current.get(place, 0)} already current"
            for place in places
        ]


def _rotate_json(value: Any, sealer: Sealer, counts: list[int]) -> Any:
    """Re-seal sealed strings anywhere inside a JSON value; counts = [resealed, current]."""
    if is_sealed(value):
        if sealer.is_current(value):
            counts[1] += 1
            return value
        counts[0] += 1
        return sealer.rotate(value)
    if isinstance(value, dict):
        return {k: _rotate_json(v, sealer, counts) for k, v in value.items()}
    if isinstance(value, list):
        return [_rotate_json(v, sealer, counts) for v in value]
    return value


def rotate_all(session: Session, sealer: Sealer) -> RotationReport:
    """Re-seal every sealed value in the database with the newest key. Idempotent: a value
    already sealed with the newest key is left as it is. Raises SecretsUnavailable (and the
    caller rolls back) if a value was sealed with a key that is no longer configured."""
    report = RotationReport()

    def note(place: str, resealed: int, current: int) -> None:
        report.resealed[place] = report.resealed.get(place, 0) + resealed
        report.current[place] = report.current.get(place, 0) + current

    for attr in SEALED_COLUMNS[Team]:
        place = f"teams.{attr}"
        note(place, 0, 0)
        for team in session.scalars(select(Team).where(getattr(Team, attr).is_not(None))):
            sealed = getattr(team, attr)
            if sealer.is_current(sealed):
                note(place, 0, 1)
            else:
                setattr(team, attr, sealer.rotate(sealed))
                note(place, 1, 0)

    note("source_state", 0, 0)
    for state in session.scalars(select(SourceState).where(SourceState.value.startswith(PREFIX))):
        if sealer.is_current(state.value):
            note("source_state", 0, 1)
        else:
            state.value = sealer.rotate(state.value)
            note("source_state", 1, 0)

    # Small JSON state (cached platform tokens, if an adapter keeps them in the DB) may hold
    # sealed strings anywhere inside; walk it.
    note("settings", 0, 0)
    for setting in session.scalars(select(Setting)):
        counts = [0, 0]
        rotated = _rotate_json(setting.value, sealer, counts)
        if counts[0]:
            setting.value = rotated
        note("settings", counts[0], counts[1])
    session.flush()
    return report
