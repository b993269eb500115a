"""Properties: completion is monotonic in the actual value; a score stays within [0, cap]."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from appraisal.completion import Curve, Step, bounded, completion
from appraisal.scoring import ItemInput, KpiInfo, RatingInput, score
from appraisal.templates import parse_template

values = st.decimals(min_value=D("-1e6"), max_value=D("1e6"), places=4, allow_nan=False, allow_infinity=False)
changes = st.decimals(
    min_value=D("0.0001"), max_value=D("1e5"), places=4, allow_nan=False, allow_infinity=False
)
caps = st.sampled_from([D(1), D("1.2"), D("1.5"), D(2), D(10)])


@st.composite
def curves(draw: st.DrawFn) -> Curve | None:
    """A valid curve, as templates.validate admits: bounds rise, values never fall, value ≤ bound."""
    if draw(st.booleans()):
        return None
    bounds = sorted(set(draw(st.lists(st.integers(1, 300), min_size=1, max_size=4))))
    steps, previous = [], D(0)
    for bound in bounds:
        value = max(previous, D(bound) * D(draw(st.integers(0, 100))) / D(100))
        steps.append(Step(D(bound) / 100, value / 100))
        previous = value
    return Curve(tuple(steps))


@settings(max_examples=400, deadline=None)
@given(
    direction=st.sampled_from(["up", "down"]),
    baseline=values,
    change=changes,
    a=values,
    b=values,
    cap=caps,
    curve=curves(),
    allow_negative=st.booleans(),
)
def test_completion_is_monotonic_in_actual(
    direction: str,
    baseline: D,
    change: D,
    a: D,
    b: D,
    cap: D,
    curve: Curve | None,
    allow_negative: bool,
) -> None:
    target = baseline + change if direction == "up" else baseline - change
    low, high = min(a, b), max(a, b)

    def counted(actual: D) -> D:
        return bounded(
            completion(baseline, target, actual, direction),
            cap=cap,
            curve=curve,
            allow_negative=allow_negative,
        )

    if direction == "up":
        assert counted(low) <= counted(high)
    else:
        assert counted(low) >= counted(high)
    assert counted(low) <= cap and counted(high) <= cap
    floor = -cap if allow_negative else D(0)
    assert counted(low) >= floor and counted(high) >= floor


KPI_KEYS = ["k0", "k1", "k2", "k3", "r0", "c0"]
KPIS = {
    **{k: KpiInfo(k, k, "", "up" if n % 2 else "down") for n, k in enumerate(KPI_KEYS[:4])},
    "r0": KpiInfo("r0", "评分", kind="rating"),
    "c0": KpiInfo("c0", "清单", kind="checklist"),
    "pen": KpiInfo("pen", "差评"),
}


@st.composite
def templates(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(KPI_KEYS), min_size=1, max_size=6, unique=True))
    cuts = sorted(
        draw(st.lists(st.integers(1, 99), min_size=len(keys) - 1, max_size=len(keys) - 1, unique=True))
    )
    bounds = [0, *cuts, 100]
    entry: dict[str, Any] = {
        "id": "t",
        "weights": {k: bounds[i + 1] - bounds[i] for i, k in enumerate(keys)},
        "cap": draw(st.sampled_from([100, 120, 150, 200])),
        "allow_negative": draw(st.booleans()),
    }
    if draw(st.booleans()):
        entry["adjustments"] = [
            {
                "kpi": "pen",
                "points": draw(st.sampled_from([-10, -5, 5, 10])),
                "min": draw(st.integers(-100, 0)),
                "max": draw(st.integers(0, 100)),
            }
        ]
    return entry


@st.composite
def items(draw: st.DrawFn) -> list[ItemInput]:
    out = []
    for _ in range(draw(st.integers(0, 6))):
        kpi = draw(st.sampled_from(KPI_KEYS[:4] + ["other"]))
        baseline = draw(st.none() | values)
        target = draw(st.none() | values)
        actual = draw(st.none() | values)
        out.append(ItemInput(kpi, "x", "shop", baseline, target, actual))
    return out


@settings(max_examples=300, deadline=None)
@given(
    entry=templates(),
    plan=items(),
    stars=st.none() | st.integers(0, 6),
    done=st.none() | st.integers(0, 50),
    planned=st.none() | st.integers(0, 20),
    count=st.decimals(min_value=D(0), max_value=D(50), places=0, allow_nan=False, allow_infinity=False),
    excluded=st.sets(st.sampled_from(KPI_KEYS)),
)
def test_score_stays_within_zero_and_cap(
    entry: dict[str, Any],
    plan: list[ItemInput],
    stars: int | None,
    done: int | None,
    planned: int | None,
    count: D,
    excluded: set[str],
) -> None:
    template = parse_template(entry)
    ratings = {"r0": RatingInput(stars=stars), "c0": RatingInput(done=done, planned=planned)}
    result = score(template, KPIS, plan, ratings, counts={"pen": count}, excluded=excluded)
    assert D(0) <= result.score <= template.cap * 100
    assert result.grade == template.grade(result.score)
    kept = [r for r in result.rows if r.status != "excluded"]
    if kept and any(k not in excluded for k in template.weights):
        # the effective weights of the counted KPIs still add up to 100
        assert abs(sum((r.weight for r in kept if r.kpi in template.weights), D(0)) - 100) < D("1e-20")
    if not template.adjustments and not template.allow_negative:
        total = sum((r.contribution for r in result.rows), D(0))
        assert result.score == min(total, template.cap * 100).quantize(D("1e-8"))
