"""Small server-side SVG charts for the /p/ pages: a week's values against the expected pace, and a
score history. Pure functions returning an SVG string: no JavaScript, no CDN, every label escaped,
each chart titled and described for screen readers (``role="img"`` + ``<title>``/``<desc>``).

Geometry (so tests can compute coordinates independently): the plot area is the box
``LEFT..WIDTH-RIGHT`` × ``TOP..HEIGHT-BOTTOM``; the n labels split it into n equal bands and a
point sits in the middle of its band, x = LEFT + (i + 0.5) · plot_width / n; a value v on the
range (lo, hi) sits at y = TOP + (hi − v) / (hi − lo) · plot_height.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

from cards import format as fmt

# Sized for a phone: the viewBox is drawn about 1:1 on a 360–400 px wide screen, so 12 px text
# stays readable (a 640-wide chart scaled down to a phone shrinks its labels to ~6 px).
WIDTH = 400
HEIGHT = 240
LEFT = 44
RIGHT = 10
TOP = 30
BOTTOM = 40

Number = float | Decimal | int


@dataclass(frozen=True)
class Mark:
    """A labelled horizontal line: ``kind`` is baseline, target or cap (cards/scale.py makes them)."""

    kind: str
    label: str
    value: float


MARK_STYLES = {
    "baseline": 'stroke="#8f959e" stroke-width="1"',
    "target": 'stroke="#2ea121" stroke-width="1.5" stroke-dasharray="2 3"',
    "cap": 'stroke="#f54a45" stroke-width="1" stroke-dasharray="1 3"',
}
MARK_COLOURS = {"baseline": "#646a73", "target": "#2ea121", "cap": "#f54a45"}


def _marks(marks: Sequence[Mark], lo: float, hi: float, width: int, height: int) -> list[str]:
    """Each mark's line across the plot and its label just above it, at the right end."""
    parts = []
    x0, x1 = _c(LEFT), _c(width - RIGHT)
    for m in marks:
        if not lo <= m.value <= hi:
            continue
        y = y_at(m.value, lo, hi, height)
        parts.append(
            f'<line class="{m.kind}" x1="{x0}" y1="{_c(y)}" x2="{x1}" y2="{_c(y)}" {MARK_STYLES[m.kind]}/>'
        )
        if m.label:
            parts.append(
                f'<text class="mark mark-{m.kind}" x="{_c(width - RIGHT - 3)}" y="{_c(y - 3)}" text-anchor="end" '
                f'font-size="10" fill="{MARK_COLOURS[m.kind]}">{escape(m.label)}</text>'
            )
    return parts


def plot_width(width: int = WIDTH) -> float:
    return float(width - LEFT - RIGHT)


def plot_height(height: int = HEIGHT) -> float:
    return float(height - TOP - BOTTOM)


def x_at(i: int, n: int, width: int = WIDTH) -> float:
    """The centre of band ``i`` of ``n``."""
    return LEFT + (i + 0.5) * plot_width(width) / n


def y_at(v: float, lo: float, hi: float, height: int = HEIGHT) -> float:
    return TOP + (hi - v) / (hi - lo) * plot_height(height)


def _c(v: float) -> str:
    """A coordinate as written into the SVG: one decimal, no "-0.0"."""
    text = f"{v:.1f}"
    return "0.0" if text == "-0.0" else text


def nice_step(raw: float) -> float:
    """1, 2, 2.5 or 5 times a power of ten, at least ``raw``."""
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * power >= raw - 1e-12:
            return m * power
    return 10 * power  # pragma: no cover - the loop ends at 10


def nice_range(lo: float, hi: float, ticks: int = 4) -> tuple[float, float, float]:
    """(low, high, step) covering [lo, hi] with round tick values; a flat series gets some room."""
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = nice_step((hi - lo) / ticks)
    low = math.floor(lo / step + 1e-9) * step
    high = math.ceil(hi / step - 1e-9) * step
    if high == low:  # pragma: no cover - guarded by the padding above
        high = low + step
    return round(low, 10), round(high, 10), step


def _num(v: Number | None) -> float | None:
    """A finite float, or None (no data): NaN or infinity never reaches a coordinate."""
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _ident(text: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", text.lower())[:40] or "chart"


def _open(ident: str, title: str, desc: str, width: int, height: int) -> list[str]:
    i = _ident(ident)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet" role="img" '
        f'aria-labelledby="{i}-title {i}-desc" font-family="sans-serif" font-size="12">',
        f'<title id="{i}-title">{escape(title)}</title>',
        f'<desc id="{i}-desc">{escape(desc)}</desc>',
        f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{_c(plot_width(width))}" '
        f'height="{_c(plot_height(height))}" fill="#fff" stroke="#dee0e3"/>',
    ]


def tick_text(v: float, step: float) -> str:
    """A tick value with as many decimals as the step needs: 2.5 / 3.0 / 3.5, 0 / 50 / 100."""
    decimals = next((d for d in range(7) if abs(step * 10**d - round(step * 10**d)) < 1e-9), 6)
    text = f"{v:,.{decimals}f}"
    return "0" if text.strip("-0.,") == "" else text


def _y_axis(lo: float, hi: float, step: float, unit: str, width: int, height: int) -> list[str]:
    parts = ['<g class="grid">']
    count = round((hi - lo) / step)
    for k in range(count + 1):
        v = round(lo + k * step, 10)
        y = _c(y_at(v, lo, hi, height))
        parts.append(
            f'<line x1="{LEFT}" y1="{y}" x2="{_c(width - RIGHT)}" y2="{y}" stroke="#eef0f1"/>'
            f'<text class="ytick" x="{LEFT - 4}" y="{y}" text-anchor="end" dominant-baseline="middle" '
            f'fill="#646a73">{escape(tick_text(v, step))}</text>'
        )
    parts.append("</g>")
    if unit:
        parts.append(f'<text class="unit" x="2" y="14" fill="#646a73">单位：{escape(unit)}</text>')
    return parts


def _x_labels(labels: Sequence[str], width: int, height: int) -> list[str]:
    """One label under each band; a "\n" in a label starts a second line."""
    y = _c(height - BOTTOM + 15)
    out = []
    for i, label in enumerate(labels):
        x = _c(x_at(i, len(labels), width))
        first, _, second = label.partition("\n")
        body = escape(first) + (f'<tspan x="{x}" dy="14">{escape(second)}</tspan>' if second else "")
        out.append(f'<text class="xlabel" x="{x}" y="{y}" text-anchor="middle" fill="#646a73">{body}</text>')
    return out


def _empty(parts: list[str], width: int, height: int) -> str:
    parts.append(
        f'<text class="nodata" x="{_c(width / 2)}" y="{_c(TOP + plot_height(height) / 2)}" '
        f'text-anchor="middle" fill="#8f959e">暂无数据</text></svg>'
    )
    return "".join(parts)


def _legend(entries: Sequence[tuple[str, str]], width: int) -> list[str]:
    """Small legend above the plot, right-aligned: (css class of the sample line, label)."""
    parts = ['<g class="legend">']
    x = float(width - RIGHT)
    styles = {
        "actual": 'stroke="#3370ff" stroke-width="2"',
        "expected": 'stroke="#f80" stroke-width="2" stroke-dasharray="6 4"',
        "target": 'stroke="#2ea121" stroke-width="1.5" stroke-dasharray="2 3"',
    }
    for cls, label in reversed(entries):
        text_w = 13 * len(label)
        x -= text_w
        parts.append(f'<text x="{_c(x)}" y="14" fill="#1f2329">{escape(label)}</text>')
        x -= 22
        parts.append(
            f'<line class="legend-{cls}" x1="{_c(x)}" y1="10" x2="{_c(x + 18)}" y2="10" {styles[cls]}/>'
        )
        x -= 10
    parts.append("</g>")
    return parts


def pace_chart(
    *,
    ident: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    actual: Sequence[Number | None],
    expected: Sequence[Number | None] = (),
    target: Number | None = None,
    baseline: Number | None = None,
    unit: str = "",
    off_days: Sequence[bool] = (),
    y_range: tuple[float, float] | None = None,
    step: float | None = None,
    marks: Sequence[Mark] = (),
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """``marks`` (cards/scale.item_axis) replace the unlabelled ``target`` / ``baseline`` lines.
    A week of daily values (solid line, a gap where a day has no value) against the expected pace
    (dashed), with the target (dotted) and the baseline (grey); days off are shaded."""
    n = len(labels)
    act = [_num(v) for v in actual]
    exp = [_num(v) for v in expected]
    lines = {k: f for k, f in (("target", _num(target)), ("baseline", _num(baseline))) if f is not None}
    if marks:
        lines = {}
    known = [v for v in act + exp if v is not None] + list(lines.values()) + [m.value for m in marks]
    parts = _open(ident, title, desc, width, height)
    if n == 0 or not known:
        return _empty(parts, width, height)
    if y_range is not None:
        lo, hi = y_range
        step = step or nice_step((hi - lo) / 4)
    else:
        # 8 % headroom on both sides so a point on the target is not drawn on the frame
        room = (max(known) - min(known)) * 0.08
        lo, hi, step = nice_range(min(known) - room, max(known) + room)
    band = plot_width(width) / n
    for i, off in enumerate(off_days[:n]):
        if off:
            parts.append(
                f'<rect class="off" x="{_c(LEFT + i * band)}" y="{TOP}" width="{_c(band)}" '
                f'height="{_c(plot_height(height))}" fill="#f5f6f7"/>'
            )
    parts += _y_axis(lo, hi, step, unit, width, height)
    parts += _marks(marks, lo, hi, width, height)
    x0, x1 = _c(LEFT), _c(width - RIGHT)
    if "baseline" in lines:
        y = _c(y_at(lines["baseline"], lo, hi, height))
        parts.append(
            f'<line class="baseline" x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#8f959e" stroke-width="1"/>'
        )
    if "target" in lines:
        y = _c(y_at(lines["target"], lo, hi, height))
        parts.append(
            f'<line class="target" x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#2ea121" '
            f'stroke-width="1.5" stroke-dasharray="2 3"/>'
        )
    pace = [(x_at(i, n, width), y_at(v, lo, hi, height)) for i, v in enumerate(exp) if v is not None]
    if pace:
        points = " ".join(f"{_c(x)},{_c(y)}" for x, y in pace)
        parts.append(
            f'<polyline class="expected" points="{points}" fill="none" stroke="#f80" '
            f'stroke-width="2" stroke-dasharray="6 4"/>'
        )
    segment: list[str] = []
    segments: list[list[str]] = []
    dots: list[str] = []
    for i, v in enumerate(act[:n]):
        if v is None:
            if segment:
                segments.append(segment)
            segment = []
            continue
        x, y = _c(x_at(i, n, width)), _c(y_at(v, lo, hi, height))
        segment.append(f"{x},{y}")
        dots.append(
            f'<circle class="point" cx="{x}" cy="{y}" r="3.5" fill="#3370ff">'
            f"<title>{escape(labels[i].replace(chr(10), ' '))}：{escape(fmt.value(Decimal(repr(v)), unit))}</title></circle>"
        )
    if segment:
        segments.append(segment)
    for seg in segments:
        parts.append(
            f'<polyline class="actual" points="{" ".join(seg)}" fill="none" stroke="#3370ff" stroke-width="2"/>'
        )
    parts += dots
    parts += _x_labels(labels, width, height)
    legend = [("actual", "实际")]
    if pace:
        legend.append(("expected", "应有进度"))
    if "target" in lines or any(m.kind == "target" for m in marks):
        legend.append(("target", "目标"))
    parts += _legend(legend, width)
    parts.append("</svg>")
    return "".join(parts)


def history_chart(
    *,
    ident: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    values: Sequence[Number | None],
    notes: Sequence[str] = (),
    reference: Number | None = 100,
    y_range: tuple[float, float] | None = None,
    step: float | None = None,
    unit: str = "",
    marks: Sequence[Mark] = (),
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """One bar per label (a week's score), the value and a note (the grade) above it; a missing value
    is a gap marked "—", never a zero bar. ``reference`` draws a dashed line (100 = on target)."""
    n = len(labels)
    vals = [_num(v) for v in values]
    known = [v for v in vals if v is not None]
    parts = _open(ident, title, desc, width, height)
    if n == 0 or not known:
        return _empty(parts, width, height)
    if y_range is not None:
        lo, hi = y_range
        step = step or nice_step((hi - lo) / 4)
    else:
        top = max(known + ([float(reference)] if reference is not None else []))
        lo, hi, step = nice_range(min(0.0, *known), top * 1.2)  # room for the labels above a bar
    parts += _y_axis(lo, hi, step, unit, width, height)
    band = plot_width(width) / n
    bar_w = band * 0.6
    base = y_at(max(lo, 0.0), lo, hi, height)
    for i, v in enumerate(vals[:n]):
        cx = x_at(i, n, width)
        note = notes[i] if i < len(notes) else ""
        if v is None:
            parts.append(
                f'<text class="gap" x="{_c(cx)}" y="{_c(base - 6)}" text-anchor="middle" fill="#8f959e">—</text>'
            )
            continue
        y = y_at(v, lo, hi, height)
        top_y, h = (y, base - y) if y <= base else (base, y - base)
        value = f"{v:.1f}"
        title = f"{labels[i].replace(chr(10), ' ')}：{value} {note}".strip()
        parts.append(
            f'<rect class="bar" x="{_c(cx - bar_w / 2)}" y="{_c(top_y)}" width="{_c(bar_w)}" '
            f'height="{_c(h)}" fill="#3370ff"><title>{escape(title)}</title></rect>'
            f'<text class="value" x="{_c(cx)}" y="{_c(top_y - 4)}" text-anchor="middle" font-size="11" '
            f'fill="#1f2329">{escape(value)}</text>'
        )
        if note:
            parts.append(
                f'<text class="note" x="{_c(cx)}" y="{_c(top_y - 17)}" text-anchor="middle" font-weight="bold" '
                f'fill="#3370ff">{escape(note)}</text>'
            )
    parts += _marks(marks, lo, hi, width, height)
    if reference is not None and not marks and lo <= float(reference) <= hi:
        ry = _c(y_at(float(reference), lo, hi, height))
        parts.append(
            f'<line class="reference" x1="{_c(LEFT)}" y1="{ry}" x2="{_c(width - RIGHT)}" y2="{ry}" '
            f'stroke="#f80" stroke-width="1.5" stroke-dasharray="6 4"/>'
        )
    parts += _x_labels(labels, width, height)
    parts.append("</svg>")
    return "".join(parts)
