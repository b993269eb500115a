"""After-sales cases in the service: store what a poll or an import fetched, and report it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.config import Settings, SourceConfig
from sources.aftersales_files import read_cases
from sources.base import FetchResult
from sources.cases import Case
from storage.cases import store_cases, unmapped_reasons


def store_fetched_cases(
    settings: Settings, session: Session, cases: list[Case], now: datetime
) -> dict[str, Any]:
    """Store cases in the caller's transaction; what changed, for the run's detail."""
    stored = store_cases(session, cases, settings.aftersales, settings.tz, now)
    unmapped = unmapped_reasons(session, settings.aftersales.cause_map, limit=10)
    return {
        "unmapped_reasons": [[reason, count] for reason, count in unmapped],
        "cases_inserted": stored.inserted,
        "cases_updated": stored.updated,
        "cases_unchanged": stored.unchanged,
        "cases_remapped": stored.remapped,
        "case_days_recomputed": len(stored.days),
    }


def read_cases_for(config: SourceConfig, path: Path, timezone: str) -> FetchResult:
    """``planloop import FILE --source ID`` for an after-sales source: the file's cases."""
    shop = str(config.get("shop", "") or config.id)
    return read_cases(path, shop=shop, source=config.id, tz=ZoneInfo(timezone))
