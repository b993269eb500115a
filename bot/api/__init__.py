"""The open API (issue 21): ``/api/v1``, its OpenAPI document, tokens, reads and writes."""

from __future__ import annotations

from bot.api.app import PREFIX, create_api, mount

__all__ = ["PREFIX", "create_api", "mount"]
