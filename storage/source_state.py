"""Per-source state between polls (file hashes seen, OAuth tokens); secrets only ever stored encrypted."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import SourceState

SECRET_PREFIX = "secret:"  # noqa: S105 - the key of a secret in the table; its value is ciphertext


class Cipher(Protocol):
    """Seals secrets at rest: ``storage.secrets.Sealer`` (the service's Fernet keys, rotatable)."""

    def seal(self, plaintext: str) -> str: ...

    def open(self, sealed: str) -> str: ...


class NoCipher(Exception):
    """A secret must be stored but no key was configured (``server.secret_key``)."""


def load_state(
    session: Session, source_id: str, cipher: Cipher | None
) -> tuple[dict[str, str], dict[str, str]]:
    """(plain values, decrypted secrets) of one source. A secret that cannot be decrypted (the key
    was rotated away) is left out, so the source falls back to its configured credentials."""
    values: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for row in session.scalars(select(SourceState).where(SourceState.source_id == source_id)):
        if row.key.startswith(SECRET_PREFIX):
            if cipher is None:
                continue
            try:
                secrets[row.key[len(SECRET_PREFIX) :]] = cipher.open(row.value)
            except Exception:  # noqa: BLE001, S112 - an undecryptable secret is as good as none
                continue
        else:
            values[row.key] = row.value
    return values, secrets


def save_state(
    session: Session,
    source_id: str,
    now: datetime,
    *,
    values: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    cipher: Cipher | None = None,
) -> None:
    """Write changed keys (plain values as given, secrets encrypted). Never commits."""
    items = dict(values or {})
    if secrets:
        if cipher is None:
            raise NoCipher("保存平台令牌需要加密密钥：请在 [server] 里配置 secret_key")
        items.update({SECRET_PREFIX + k: cipher.seal(v) for k, v in secrets.items()})
    if not items:
        return
    existing = {
        row.key: row
        for row in session.scalars(
            select(SourceState).where(SourceState.source_id == source_id, SourceState.key.in_(list(items)))
        )
    }
    for key, value in items.items():
        row = existing.get(key)
        if row is None:
            session.add(SourceState(source_id=source_id, key=key, value=value, updated_at=now))
        elif row.value != value:
            row.value = value
            row.updated_at = now
    session.flush()
