"""Template versions (issue 16): every edit of a template's rules is a new version, and a run of a
week uses the versions in force that week.

``apply`` (and later the console and the API) calls :func:`record` after writing a template; a
version is added only when the entry differs from the newest one. A week's run takes, for each
active template, the newest version created before the week ended (Sunday 24:00, Beijing time);
a week older than the first recorded version uses that first version. ``--current-rules`` takes
the newest version instead. Adding or retiring a whole template is not versioned: the run uses the
templates active now.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers.workdays import week_dates
from storage.models import Template, TemplateVersion

COLUMNS = ("id", "name", "role", "period", "scenario", "employee_type")
WEEK_ZONE = ZoneInfo("Asia/Shanghai")


def entry_of(row: Template) -> dict[str, Any]:
    """The template as a team-file entry: the columns and the scoring spec."""
    entry = {k: getattr(row, k) for k in COLUMNS}
    entry.update({k: v for k, v in (row.spec or {}).items() if k not in ("id", "name")})
    return {k: v for k, v in entry.items() if v is not None}


def record(session: Session, row: Template, now: datetime, reason: str) -> int:
    """Add a version if ``row`` differs from its newest one; returns the version now in force."""
    entry = entry_of(row)
    newest = session.scalar(
        select(TemplateVersion)
        .where(TemplateVersion.template_id == row.id)
        .order_by(TemplateVersion.version.desc())
        .limit(1)
    )
    if newest is not None and newest.entry == entry:
        return newest.version
    version = (newest.version + 1) if newest is not None else 1
    session.add(
        TemplateVersion(template_id=row.id, version=version, entry=entry, reason=reason, created_at=now)
    )
    session.flush()
    return version


def week_end(week: str) -> datetime:
    return datetime.combine(week_dates(week)[-1] + timedelta(days=1), time(0), tzinfo=WEEK_ZONE)


def in_force(session: Session, ids: list[str], at: datetime | None) -> dict[str, tuple[int, dict[str, Any]]]:
    """Template id → (version, entry) in force at ``at`` (None: the newest); ids without versions are left out."""
    out: dict[str, tuple[int, dict[str, Any]]] = {}
    rows = session.scalars(
        select(TemplateVersion).where(TemplateVersion.template_id.in_(ids)).order_by(TemplateVersion.version)
    )
    for v in rows:
        first = v.template_id not in out
        if first or at is None or v.created_at <= at:
            out[v.template_id] = (v.version, dict(v.entry))
    return out
