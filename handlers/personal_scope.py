"""A KPI scoped to "the person's own account on a report": ``scope = "@qianniu"`` in the team file.

Customer-service reports (千牛/赤兔 客服绩效, 多多客服) have one row per agent account, stored
with the account as the scope. A person's ``ids = { qianniu = "旺旺名" }`` names their account,
so an item on such a KPI without a scope of its own is read against that account.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Identity, Kpi


def account_of(session: Session, person_id: str, report: str) -> str | None:
    """The person's account on ``report`` (the ``ids`` key, e.g. ``qianniu``)."""
    return session.scalar(
        select(Identity.external_id).where(Identity.person_id == person_id, Identity.bot_id == report)
    )


def with_personal_scopes(
    session: Session, person_id: str, drafts: Sequence[Any], kpis: Sequence[Kpi]
) -> list[Any]:
    """Drafts whose KPI is scoped ``@<report>`` and that name no scope get the person's account."""
    out: list[Any] = []
    for d in drafts:
        word = d.kpi.strip().lower()
        kpi = next((k for k in kpis if k.key.lower() == word or k.name == d.kpi.strip()), None)
        if kpi is not None and not d.scope.strip() and kpi.scope.startswith("@"):
            account = account_of(session, person_id, kpi.scope[1:])
            if account:
                d = dataclasses.replace(d, scope=account)
        out.append(d)
    return out
