"""Secrets at rest: platform tokens, webhook URLs and signing secrets sealed with MultiFernet.

Keys come from ``server.secret_key`` (comma-separated, newest first): the newest seals,
every key opens, so a key can be rotated without a flag day (``planloop keys rotate``).
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PREFIX = "fernet:"


class SecretsUnavailable(RuntimeError):
    """No key configured, or the stored value was sealed with a key that is no longer configured."""


class Sealer:
    def __init__(self, keys: list[str]):
        if not keys:
            raise SecretsUnavailable("server.secret_key is not set: secrets cannot be stored")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
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
        return PREFIX + self._fernet.rotate(sealed[len(PREFIX) :].encode()).decode()
