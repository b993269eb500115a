"""After-sales export files (``kind = "file"``, ``preset = "aftersales"``) → cases.

Recognises the generic ``case_id,opened,closed,reason,status[,shop]`` file and the shops'
after-sales exports (千牛/淘宝 退款管理, 京东 售后, 拼多多 售后, 抖店 售后) by header name: the
header row is the first row that names a case id and an opened time. Times are
``YYYY-MM-DD HH:MM[:SS]`` (or a spreadsheet date-time) in the team's time zone; an empty
``closed`` means the case is still open.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sources.base import FetchResult, NeedsAdmin, RowError, SourceConfigLike, SourceDeps, Window
from sources.cases import Case
from sources.files import (
    MAX_ERRORS,
    MAX_PREAMBLE,
    FileRefused,
    Row,
    open_table,
    read_new_files,
)
from sources.presets import normalise_header

PRESET = "aftersales"

# Column meaning → the headers that carry it (generic first, then the shops' words).
HEADERS: dict[str, tuple[str, ...]] = {
    "case_id": (
        "case_id",
        "退款编号",
        "退款单号",
        "售后单号",
        "售后编号",
        "售后单id",
        "服务单号",
        "售后服务单号",
    ),
    "opened": (
        "opened",
        "申请时间",
        "退款申请时间",
        "售后申请时间",
        "买家申请时间",
        "创建时间",
        "售后创建时间",
    ),
    "closed": (
        "closed",
        "完结时间",
        "售后完结时间",
        "退款完结时间",
        "完成时间",
        "退款完成时间",
        "处理完成时间",
        "关闭时间",
    ),
    "reason": (
        "reason",
        "退款原因",
        "买家退款原因",
        "售后原因",
        "申请原因",
        "售后理由",
        "退货原因",
        "问题描述",
    ),
    "status": ("status", "退款状态", "售后状态", "服务单状态", "处理状态"),
    "shop": ("shop", "店铺", "店铺名称", "店铺名"),
}
REQUIRED = ("case_id", "opened")
_TIME = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?")
_EXCEL_EPOCH = datetime(1899, 12, 30)  # noqa: DTZ001 - a serial count, zone added after
_MISSING = {"", "-", "--", "—", "/", "null", "none", "nan", "无", "暂无"}


class TimeParseError(ValueError):
    pass


def parse_time(raw: object, tz: ZoneInfo) -> datetime | None:
    """A case time in the team's zone as an aware datetime; None for an empty cell."""
    if raw is None:
        return None
    if isinstance(raw, datetime):
        return raw.replace(tzinfo=tz) if raw.tzinfo is None else raw
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if 20_000 <= raw <= 80_000:  # a spreadsheet serial date-time
            return (_EXCEL_EPOCH + timedelta(days=float(raw))).replace(microsecond=0, tzinfo=tz)
        raise TimeParseError(f"不是时间：{raw!r}")
    text = str(raw).strip()
    if len(text) in (16, 19) and text[4:5] == "-" and text[10:11] == " ":
        try:  # the usual "2026-11-30 14:05[:09]", without the regex
            return datetime.fromisoformat(text).replace(tzinfo=tz)
        except ValueError:
            pass
    text = unicodedata.normalize("NFKC", text).strip()
    if text.lower() in _MISSING:
        return None
    m = _TIME.fullmatch(text)
    if not m:
        raise TimeParseError(f"不是时间（应为 2026-11-30 14:05 或 2026-11-30 14:05:09）：{text}")
    y, mo, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    try:
        return datetime(y, mo, d, h, mi, s, tzinfo=tz)
    except ValueError:
        raise TimeParseError(f"不存在的时间：{text}") from None


def _cell_text(cell: object) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))  # a case number a spreadsheet stored as a number
    return str(cell).strip()


@dataclass
class _Columns:
    header_line: int
    index: dict[str, int]
    width: int


def _find_columns(rows: Iterator[Row]) -> _Columns:
    wanted = {meaning: {normalise_header(h) for h in names} for meaning, names in HEADERS.items()}
    for n, (line, cells) in enumerate(rows):
        if n >= MAX_PREAMBLE:
            break
        index: dict[str, int] = {}
        for i, cell in enumerate(cells):
            label = normalise_header(cell)
            for meaning, names in wanted.items():
                if label in names and meaning not in index:
                    index[meaning] = i
        if all(m in index for m in REQUIRED):
            return _Columns(line, index, len(cells))
    raise FileRefused(
        f"前 {MAX_PREAMBLE} 行里找不到售后表头（需要 case_id/售后单号/退款编号 与 opened/申请时间 两列；"
        "通用格式为 case_id,opened,closed,reason,status[,shop]）"
    )


def cases_from_rows(rows: Iterator[Row], label: str, *, shop: str, source: str, tz: ZoneInfo) -> FetchResult:
    """Cases from a table's rows; a bad row is refused whole and listed (file, line, column, why)."""
    result = FetchResult()
    cols = _find_columns(rows)
    result.detail.update({"header_line": cols.header_line, "columns": sorted(cols.index)})
    headers = {meaning: HEADERS[meaning][0] for meaning in cols.index}
    errors_total = 0
    by_key: dict[tuple[str, str], Case] = {}

    def cell(cells: list[object], meaning: str) -> object:
        i = cols.index.get(meaning)
        return cells[i] if i is not None and i < len(cells) else None

    for line, cells in rows:
        if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
            continue
        result.rows_read += 1
        problems: list[tuple[str, str]] = []
        case_id = _cell_text(cell(cells, "case_id"))
        if not case_id:
            problems.append((headers["case_id"], "售后单号为空"))
        elif len(case_id) > 100:
            problems.append((headers["case_id"], "售后单号超过 100 个字符"))
        times: dict[str, datetime | None] = {}
        for meaning in ("opened", "closed"):
            try:
                times[meaning] = parse_time(cell(cells, meaning), tz)
            except TimeParseError as exc:
                problems.append((headers.get(meaning, meaning), str(exc)))
        opened, closed = times.get("opened"), times.get("closed")
        if "opened" in times and opened is None:
            problems.append((headers["opened"], "申请时间为空"))
        if opened is not None and closed is not None and closed < opened:
            problems.append((headers["closed"], "完结时间早于申请时间"))
        row_shop = _cell_text(cell(cells, "shop")) or shop
        if len(row_shop) > 64:
            problems.append((headers.get("shop", "shop"), "店铺名称超过 64 个字符"))
        if problems:
            result.rows_refused += 1
            for column, reason in problems:
                errors_total += 1
                if len(result.errors) < MAX_ERRORS:
                    result.errors.append(RowError(label, line, column, reason))
            continue
        assert opened is not None
        by_key[(row_shop, case_id)] = Case(
            shop=row_shop,
            case_id=case_id,
            opened=opened,
            closed=closed,
            status=_cell_text(cell(cells, "status")),
            reason=_cell_text(cell(cells, "reason")),
            source=source,
        )
    result.cases = list(by_key.values())
    if errors_total > len(result.errors):
        result.detail["errors_not_listed"] = errors_total - len(result.errors)
    return result


def read_cases(path: Path, *, shop: str, source: str, tz: ZoneInfo, label: str | None = None) -> FetchResult:
    """One after-sales file; a file that cannot be read at all gives one RowError and no cases."""
    label = label or path.name
    try:
        table = open_table(path)
        result = cases_from_rows(table.rows, label, shop=shop, source=source, tz=tz)
    except FileRefused as exc:
        result = FetchResult(errors=[RowError(label, exc.line, "", exc.reason)])
        result.detail["refused"] = exc.reason
        return result
    except OSError as exc:
        return FetchResult(errors=[RowError(label, 0, "", f"无法读取文件：{exc.strerror or exc}")])
    result.detail.update({"format": table.kind, "preset": PRESET})
    if table.encoding:
        result.detail["encoding"] = table.encoding
    return result


class AftersalesFileSource:
    """An after-sales export, or a folder of them; each file's content is loaded once (by hash)."""

    kind = "file"

    def __init__(self, config: SourceConfigLike, deps: SourceDeps):
        self.id = config.id
        self.deps = deps
        raw = config.get("path")
        if not raw:
            raise NeedsAdmin(f"sources.{config.id}.path：需要一个文件或文件夹的路径")
        self.path = Path(str(raw)).expanduser()
        self.shop = str(config.get("shop", "") or config.id)
        if len(self.shop) > 64:
            raise NeedsAdmin(f"sources.{config.id}.shop：店铺名称最多 64 个字符")
        self.tz = ZoneInfo(deps.timezone)

    def read(self, path: Path) -> FetchResult:
        return read_cases(path, shop=self.shop, source=self.id, tz=self.tz)

    def fetch(self, window: Window, now: datetime) -> FetchResult:
        return read_new_files(self.path, self.id, self.deps, now, self.read, _cases_summary)


def _cases_summary(one: FetchResult) -> dict[str, Any]:
    return {"rows_read": one.rows_read, "rows_refused": one.rows_refused, "cases": len(one.cases)}
