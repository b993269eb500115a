"""Cell parsing for exported reports: numbers as people and exports write them, and dates."""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

# What exports write for "no value": the sample is simply absent, the row is not refused.
MISSING = frozenset(
    {"", "-", "--", "---", "—", "——", "/", "n/a", "na", "null", "none", "nan", "暂无", "暂无数据", "无数据"}
)
# Storage keeps 16 digits before the point and 8 after (Numeric(24, 8)).
MAX_ABS = Decimal(10) ** 16
SCALE = Decimal(1).scaleb(-8)

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_CLOCK = re.compile(r"(\d+):([0-5]?\d)(?::([0-5]?\d(?:\.\d+)?))?")
_CN_DURATION = re.compile(r"(?:(\d+)小时)?(?:(\d+)分钟?)?(?:(\d+(?:\.\d+)?)秒)?")
_UNIT_SUFFIXES = ("元", "秒", "人", "次", "件", "笔", "单", "个")
_MULTIPLIERS = {"万": Decimal(10_000), "亿": Decimal(100_000_000)}
_DATE_FORMS = (
    re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"),
    re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日?"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
)
_EXCEL_EPOCH = date(1899, 12, 30)
_RANGE = re.compile(r"\s*(?:~|～|至|到|—|\s-\s)\s*")  # NFKC turns ～ into ~


class ValueParseError(ValueError):
    """A cell that is neither a number nor a recognised "missing" mark; the message says why (zh-CN)."""


def _finish(value: Decimal, raw: object) -> Decimal:
    if not value.is_finite():
        raise ValueParseError(f"不是有限的数值：{raw!r}")
    if abs(value) >= MAX_ABS:
        raise ValueParseError(f"数值过大：{raw!r}（最多 16 位整数）")
    if value.as_tuple().exponent < -8:  # type: ignore[operator]
        value = value.quantize(SCALE)
    return value + 0  # normalises -0 to 0


def parse_value(raw: object) -> Decimal | None:
    """A cell as a Decimal in the metric's own unit, or None when the cell says "no value".

    ``3.25%`` → 3.25 (percent metrics are kept in percent units), ``1,234`` → 1234,
    ``¥1,234.50`` → 1234.50, ``(12)`` → -12, ``1.2万`` → 12000, ``00:01:05`` / ``1分5秒`` → 65
    (seconds), ``-``/``--``/empty → None. Anything else raises ValueParseError.
    """
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise ValueParseError(f"不是数值：{raw!r}")
    if isinstance(raw, int):
        return _finish(Decimal(raw), raw)
    if isinstance(raw, float):
        if math.isnan(raw) or math.isinf(raw):
            raise ValueParseError(f"不是有限的数值：{raw!r}")
        return _finish(Decimal(repr(raw)), raw)  # repr: the shortest text that round-trips
    if isinstance(raw, Decimal):
        return _finish(raw, raw)
    if isinstance(raw, datetime | date):
        raise ValueParseError(f"这里应是数值，却是日期：{raw}")
    text = unicodedata.normalize("NFKC", str(raw)).strip().replace("\u00a0", "").replace(" ", "")
    text = text.replace("\u2212", "-")  # the typographic minus sign
    if text.lower() in MISSING:
        return None
    negative = False
    if text.startswith("(") and text.endswith(")"):  # accounting style negative
        negative, text = True, text[1:-1]
    for sign in ("¥", "$", "RMB", "CNY"):
        text = text.replace(sign, "")
    for suffix in _UNIT_SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix) and not _CN_DURATION.fullmatch(text):
            text = text[: -len(suffix)]
            break
    percent = text.endswith("%")
    if percent:
        text = text[:-1]
    multiplier = Decimal(1)
    if text and text[-1] in _MULTIPLIERS:
        multiplier, text = _MULTIPLIERS[text[-1]], text[:-1]
    if _GROUPED.fullmatch(text):
        text = text.replace(",", "")
    if _NUMBER.fullmatch(text):
        try:
            value = Decimal(text) * multiplier
        except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
            raise ValueParseError(f"不是数值：{raw!r}") from None
        return _finish(-value if negative else value, raw)
    if not percent and multiplier == 1 and not negative:
        seconds = _duration_seconds(text)
        if seconds is not None:
            return _finish(seconds, raw)
    if "," in text:
        raise ValueParseError(f"千分位逗号的位置不对：{raw!r}")
    raise ValueParseError(f"不是数值：{raw!r}")


def _duration_seconds(text: str) -> Decimal | None:
    clock = _CLOCK.fullmatch(text)
    if clock:
        if clock.group(3) is None:  # mm:ss
            return Decimal(clock.group(1)) * 60 + Decimal(clock.group(2))
        return Decimal(clock.group(1)) * 3600 + Decimal(clock.group(2)) * 60 + Decimal(clock.group(3))
    cn = _CN_DURATION.fullmatch(text)
    if cn and any(cn.groups()):
        hours, minutes, seconds = (Decimal(g) if g else Decimal(0) for g in cn.groups())
        return hours * 3600 + minutes * 60 + seconds
    return None


def parse_date(raw: object) -> date:
    """A report's date cell: a date/datetime, ``2026-11-22``, ``2026/11/22``, ``20261122``,
    ``2026年11月22日`` or an Excel serial number. Raises ValueParseError otherwise."""
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if 20_000 <= raw <= 80_000:  # Excel's serial day numbers, 1954 … 2119
            return _EXCEL_EPOCH + timedelta(days=int(raw))
        raise ValueParseError(f"不是日期：{raw!r}")
    text = unicodedata.normalize("NFKC", str(raw or "")).strip()
    if not text:
        raise ValueParseError("日期为空")
    ends = _RANGE.split(text)
    if len(ends) == 2:  # "2026-11-27~2026-11-27": a report over one day, as exports write it
        first, last = parse_date(ends[0]), parse_date(ends[1])
        if first != last:
            raise ValueParseError(f"日期范围跨多天（{first} 至 {last}）：请按天导出（每行一天）")
        return first
    for form in _DATE_FORMS:
        m = form.fullmatch(text)
        if m:
            try:
                return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                raise ValueParseError(f"不存在的日期：{text}") from None
    raise ValueParseError(f"不是日期（应为 2026-11-22 这样的形式）：{text}")
