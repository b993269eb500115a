"""Demo after-sales cases: four weeks of plausible cases, so the demo's customer-service KPIs
(物流问题处理率, 产品投诉解决率) and cards have numbers computed the real way, from cases."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from sources.cases import Case
from sources.causes import AftersalesOptions
from storage.cases import store_cases

DEMO_REASONS = (
    ("快递/物流一直未送到", 5),
    ("物流信息长时间未更新", 3),
    ("质量问题", 3),
    ("包装/商品破损/污渍", 2),
    ("商家发错货", 1),
    ("服务态度差", 1),
    ("七天无理由退换货", 3),
    ("缺货", 1),
)
HISTORY_DAYS = 28


def demo_cases(today: date, now: datetime, tz: ZoneInfo, shop: str = "demo-shop") -> list[Case]:
    """The same cases every time for the same ``today``: 6–14 a day, most finished within 2–70 hours."""
    reasons = [r for r, weight in DEMO_REASONS for _ in range(weight)]
    cases: list[Case] = []
    for offset in range(HISTORY_DAYS, 0, -1):
        day = today - timedelta(days=offset)
        rng = random.Random(f"cases|{day.isoformat()}")  # noqa: S311 - demo data
        for n in range(rng.randint(6, 14)):
            opened = datetime.combine(day, time(8), tz) + timedelta(minutes=rng.randint(0, 14 * 60))
            closed: datetime | None = opened + timedelta(hours=rng.uniform(2, 70))
            if closed is not None and closed > now:
                closed = None
            cases.append(
                Case(
                    shop,
                    f"D{day:%Y%m%d}-{n:02d}",
                    opened,
                    closed,
                    "完结" if closed else "处理中",
                    rng.choice(reasons),
                    "demo",
                )
            )
    return cases


def seed_cases(session: Session, today: date, now: datetime, tz: ZoneInfo, options: AftersalesOptions) -> int:
    """Store the demo cases (an unchanged case writes nothing) and compute their metrics."""
    return store_cases(session, demo_cases(today, now, tz), options, tz, now).inserted
