"""Report files (kind = "file"): CSV (UTF-8, UTF-8-BOM, GBK/GB18030), XLSX, XLS, HTML-as-XLS → samples.

The encoding is detected by decoding the whole file strictly and is always reported; a file
that decodes as neither UTF-8 nor GB18030 is refused, never guessed. The file's real format is
sniffed from its first bytes, whatever its name says. The header row is found by name (统计日期
/ 日期 …) below any title rows; columns are matched by header name, never by position.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any

from sources.base import (
    FetchResult,
    MetricSample,
    NeedsAdmin,
    ProgressFn,
    RowError,
    SourceConfigLike,
    SourceDeps,
    Window,
)
from sources.import_limits import ImportLimits, LimitRefused, bounded_rows, check_file, count_rows
from sources.presets import METRIC_KEY, Preset, is_total, normalise_header, preset_for
from sources.values import ValueParseError, parse_date, parse_value

CHUNK = 1 << 20
MAX_PREAMBLE = 50  # rows searched for the header row
MAX_ERRORS = 500  # row errors listed per file; the rest are counted
SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".xls", ".htm", ".html")

Row = tuple[int, list[object]]  # (physical line / spreadsheet row, cells)


class FileRefused(Exception):
    """The file as a whole cannot be read (format, encoding, no header); the reason is zh-CN."""

    def __init__(self, reason: str, line: int = 0):
        super().__init__(reason)
        self.reason = reason
        self.line = line


@dataclass
class Table:
    kind: str  # csv | xlsx | xls | html
    rows: Iterator[Row]
    encoding: str = ""  # for text formats: the encoding that was used
    spreadsheet: bool = False  # merged cells possible: an empty key cell repeats the one above
    sheet: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # the file read (to say which encoding it seems to be in when it fails)


# ---------------------------------------------------------------- format and encoding


def sniff_kind(head: bytes) -> str:
    """The file's real format from its first bytes (an ".xls" download is often HTML or CSV)."""
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "xls"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<html", b"<!doctype", b"<table", b"<meta", b"<?xml", b"<head", b"<body")):
        return "html"
    return "csv"


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def detect_encoding(path: Path, progress: ProgressFn | None = None) -> str:
    """Decode the whole file strictly: ``utf-8-sig`` (BOM), ``utf-16`` (BOM), ``utf-8`` or
    ``gb18030`` (a superset of GBK and GB2312). Raise FileRefused when none of them fits."""
    total = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(4)
        f.seek(0)
        if head.startswith(codecs.BOM_UTF8):
            candidates = ["utf-8-sig"]
        elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            candidates = ["utf-16"]
        else:
            candidates = ["utf-8", "gb18030"]
        decoders = {name: codecs.getincrementaldecoder(name)("strict") for name in candidates}
        failed: dict[str, int] = {}
        lines = 1
        done = 0
        while True:
            chunk = f.read(CHUNK)
            final = not chunk
            for name, dec in list(decoders.items()):
                try:
                    dec.decode(chunk, final)
                except UnicodeDecodeError:
                    failed[name] = lines
                    del decoders[name]
            if final or not decoders:
                break
            lines += chunk.count(b"\n")
            done += len(chunk)
            if progress:
                progress(done, total)
    for name in candidates:
        if name in decoders:
            return name
    line = max(failed.values(), default=0)
    named = foreign_encoding(path)
    if named:
        raise FileRefused(named, line)
    raise FileRefused(
        "无法解码：既不是 UTF-8 也不是 GBK/GB18030 编码的文本（请从平台重新导出，或另存为 UTF-8 CSV）", line
    )


# Encodings a report is sometimes saved in that planloop does not read, with what to call them.
FOREIGN = (
    ("big5", "Big5（繁体中文）"),
    ("shift_jis", "Shift_JIS（日文）"),
    ("euc-kr", "EUC-KR（韩文）"),
)


def foreign_encoding(path: Path) -> str:
    """When a text file is not UTF-8/GBK/GB18030/UTF-16, what it seems to be, as the refusal reads
    ("" when nothing fits): UTF-16 without a BOM, or an encoding in which a shop header shows up."""
    with path.open("rb") as f:
        head = f.read(CHUNK)
    zeros = head.count(b"\x00")
    if len(head) >= 4 and zeros * 8 >= len(head):  # ASCII letters and digits in UTF-16 are half zero bytes
        odd = sum(1 for i in range(1, len(head), 2) if head[i] == 0)
        which = "UTF-16LE" if odd * 2 >= zeros else "UTF-16BE"
        return f"文件编码看起来是不带 BOM 的 {which}，无法可靠读取：请另存为 UTF-8（或带 BOM 的 UTF-16）CSV 后再导入"
    for codec, label in FOREIGN:
        try:
            text = head.decode(codec)
        except UnicodeDecodeError:
            continue
        if any(word in text for word in ("日期", "統計日期", "统计日期", "訪客數", "访客数")):
            return (
                f"文件编码是 {label}，不是 UTF-8、GBK/GB18030 或 UTF-16：请从平台重新导出，"
                "或用表格软件另存为 UTF-8 CSV 后再导入"
            )
    return ""


ENCODING_LABEL = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8（带 BOM）",
    "utf-16": "UTF-16",
    "gb18030": "GB18030（兼容 GBK）",
}


class _CountingReader(io.RawIOBase):
    """A binary reader that reports how far it has read (for the progress bar)."""

    def __init__(self, raw: IO[bytes], total: int, progress: ProgressFn | None):
        self.raw, self.total, self.progress, self.done = raw, total, progress, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.done += n
        if self.progress and n:
            self.progress(self.done, self.total)
        return n


def _sniff_delimiter(path: Path, encoding: str) -> str:
    with path.open(encoding=encoding, newline="", errors="replace") as f:
        sample = f.read(64 * 1024)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;").delimiter
    except csv.Error:
        return ","


def _csv_rows(path: Path, encoding: str, progress: ProgressFn | None) -> Iterator[Row]:
    delimiter = _sniff_delimiter(path, encoding)
    total = path.stat().st_size
    with path.open("rb") as raw:
        counting = _CountingReader(raw, total, progress)
        text = io.TextIOWrapper(io.BufferedReader(counting, CHUNK), encoding=encoding, newline="")
        reader = csv.reader(text, delimiter=delimiter, quotechar='"', doublequote=True)
        while True:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise FileRefused(f"CSV 格式错误：{exc}", start) from None
            yield start, list(record)


def _xlsx_rows(path: Path, progress: ProgressFn | None, limits: ImportLimits) -> tuple[Iterator[Row], str]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any broken zip/xml is the file's fault
        raise FileRefused(f"XLSX 文件损坏或无法打开：{exc}") from None
    ws = wb.worksheets[0]
    member = getattr(ws, "_worksheet_path", None)
    if member:
        with zipfile.ZipFile(path) as archive, archive.open(member) as sheet_xml:
            if count_rows(sheet_xml, limits.max_rows) > limits.max_rows:
                wb.close()
                raise LimitRefused(f"行数超过上限 {limits.max_rows}（max_rows），文件未导入")
    declared = ws.max_row or 0  # the sheet's own <dimension>: only for the progress bar
    if hasattr(ws, "reset_dimensions"):
        ws.reset_dimensions()  # never pad rows to a declared A1:XFD1048576; read what is there

    def rows() -> Iterator[Row]:
        total = declared
        try:
            for n, row in enumerate(ws.iter_rows(), start=1):
                line = next((c.row for c in row if getattr(c, "row", None)), n)
                cells: list[object] = []
                for c in row:
                    v = getattr(c, "value", None)
                    if isinstance(v, int | float) and not isinstance(v, bool):
                        fmt = getattr(c, "number_format", "") or ""
                        if "%" in fmt:  # a percent-formatted 0.0325 is what people read as 3.25 %
                            v = Decimal(repr(v)) * 100
                    cells.append(v)
                if progress and total and line % 1000 == 0:
                    progress(line, total)
                yield line, cells
            if progress and total:
                progress(total, total)
        finally:
            wb.close()

    return rows(), ws.title


def _xls_rows(path: Path) -> tuple[Iterator[Row], str]:
    import xlrd

    try:
        book = xlrd.open_workbook(str(path), formatting_info=True, on_demand=True)
    except Exception as exc:  # noqa: BLE001
        raise FileRefused(f"XLS 文件损坏或无法打开：{exc}") from None
    sheet = book.sheet_by_index(0)

    def percent(xf_index: int) -> bool:
        try:
            fmt = book.format_map[book.xf_list[xf_index].format_key].format_str
        except (IndexError, KeyError):
            return False
        return "%" in fmt

    def rows() -> Iterator[Row]:
        for r in range(sheet.nrows):
            cells: list[object] = []
            for c in range(sheet.ncols):
                cell = sheet.cell(r, c)
                v: object = cell.value
                if cell.ctype == xlrd.XL_CELL_EMPTY or cell.ctype == xlrd.XL_CELL_BLANK:
                    v = None
                elif cell.ctype == xlrd.XL_CELL_DATE:
                    v = xlrd.xldate_as_datetime(cell.value, book.datemode)
                elif cell.ctype == xlrd.XL_CELL_NUMBER and percent(cell.xf_index):
                    v = Decimal(repr(cell.value)) * 100
                elif cell.ctype in (xlrd.XL_CELL_ERROR, xlrd.XL_CELL_BOOLEAN):
                    v = f"#{cell.value}"
                cells.append(v)
            yield r + 1, cells
        book.release_resources()

    return rows(), sheet.name


class _TableParser(HTMLParser):
    """The first <table> of an HTML page as rows of cell text (what "xls" report downloads often are)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[object]] = []
        self._row: list[object] | None = None
        self._cell: list[str] | None = None
        self._depth = 0
        self._span = 1
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._done:
            return
        if tag == "table":
            self._depth += 1
        elif tag == "tr" and self._depth == 1:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
            span = dict(attrs).get("colspan")
            self._span = int(span) if span and span.isdigit() else 1

    def handle_endtag(self, tag: str) -> None:
        if self._done:
            return
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            text = "".join(self._cell).strip()
            self._row.append(text or None)
            self._row.extend([None] * (self._span - 1))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        elif tag == "table":
            self._depth -= 1
            if self._depth == 0 and self.rows:
                self._done = True

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _html_rows(path: Path, encoding: str) -> Iterator[Row]:
    parser = _TableParser()
    with path.open(encoding=encoding) as f:
        while chunk := f.read(CHUNK):
            parser.feed(chunk)
    parser.close()
    yield from enumerate(parser.rows, start=1)


def open_table(path: Path, progress: ProgressFn | None = None, limits: ImportLimits | None = None) -> Table:
    """Open any supported report file as rows, within ``limits`` (sources/import_limits.py);
    raise FileRefused (or LimitRefused, before parsing or while the rows stream) with the reason."""
    limits = limits or ImportLimits()
    with path.open("rb") as f:
        head = f.read(512)
    kind = sniff_kind(head)
    check_file(path, kind, limits)
    table = _open_kind(path, kind, progress, limits)
    table.rows = bounded_rows(table.rows, limits)
    return table


def _open_kind(path: Path, kind: str, progress: ProgressFn | None, limits: ImportLimits) -> Table:
    if kind == "xlsx":
        rows, sheet = _xlsx_rows(path, progress, limits)
        return Table("xlsx", rows, spreadsheet=True, sheet=sheet)
    if kind == "xls":
        rows, sheet = _xls_rows(path)
        return Table("xls", rows, spreadsheet=True, sheet=sheet)
    encoding = detect_encoding(path, None if kind == "html" else _half(progress, 0))
    if kind == "html":
        return Table("html", _html_rows(path, encoding), encoding=encoding, spreadsheet=True)
    return Table("csv", _csv_rows(path, encoding, _half(progress, 1)), encoding=encoding, path=path)


def _half(progress: ProgressFn | None, part: int) -> ProgressFn | None:
    """Two passes over a CSV (detect the encoding, then parse) share one progress bar."""
    if progress is None:
        return None

    def report(done: int, total: int) -> None:
        progress(part * total + done, 2 * total)

    return report


# ---------------------------------------------------------------- rows → samples


def _blank(cell: object) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _header_label(cell: object) -> str:
    return str(cell).strip() if cell is not None else ""


@dataclass
class _Layout:
    header_line: int
    date_idx: int
    date_label: str
    scope_idx: int | None = None
    metric_idx: int | None = None
    value_idx: int | None = None
    metrics: list[tuple[int, str, str]] = field(default_factory=list)  # (index, header, metric)
    unmapped: list[str] = field(default_factory=list)
    known_unmapped: list[str] = field(default_factory=list)  # recognised, but no metric key


def _layout(header_line: int, header: list[object], preset: Preset) -> _Layout:
    labels = [_header_label(h) for h in header]
    date_idx = next((i for i, h in enumerate(labels) if preset.is_date_header(h)), -1)
    layout = _Layout(header_line, date_idx, labels[date_idx] if date_idx >= 0 else "")
    scope_names = {normalise_header(s) for s in preset.scope_headers}
    known = {normalise_header(k) for k in preset.known_unmapped}
    seen: dict[str, str] = {}
    for i, label in enumerate(labels):
        if i == date_idx or not label:
            continue
        norm = normalise_header(label)
        if norm in scope_names and layout.scope_idx is None:
            layout.scope_idx = i
            continue
        if not preset.wide:
            if norm in {normalise_header(h) for h in preset.metric_headers} and layout.metric_idx is None:
                layout.metric_idx = i
            elif norm in {normalise_header(h) for h in preset.value_headers} and layout.value_idx is None:
                layout.value_idx = i
            else:
                layout.unmapped.append(label)  # a column the long form does not read (备注 …)
            continue
        metric = preset.metric_for(label)
        if metric is None:
            if norm not in known and not preset.is_date_header(label):
                layout.unmapped.append(label)
            elif norm in known:
                layout.known_unmapped.append(label)
            continue
        if metric in seen:  # e.g. 退款金额 and 成功退款金额 both present: the first one counts
            layout.unmapped.append(f"{label}（与「{seen[metric]}」同为 {metric}，未用）")
            continue
        seen[metric] = label
        layout.metrics.append((i, label, metric))
    return layout


def _find_header(rows: Iterator[Row], preset: Preset) -> tuple[int, list[object]]:
    for n, (line, cells) in enumerate(rows):
        if n >= MAX_PREAMBLE:
            break
        if any(preset.is_date_header(c) for c in cells if isinstance(c, str)):
            return line, cells
    names = "、".join(dict.fromkeys(preset.date_headers))
    raise FileRefused(f"前 {MAX_PREAMBLE} 行里找不到表头（应有一列叫 {names}；preset = {preset.name}）")


@dataclass
class ReportOptions:
    preset: Preset
    scope: str = "shop"
    source_id: str = "import"
    limits: ImportLimits = field(default_factory=ImportLimits)
    known: frozenset[str] | None = None  # long form: the metric keys a row may name (None: any)
    kpi_metrics: dict[str, str] = field(default_factory=dict)  # KPI key → its metric key (for hints)


def _unknown_metric(metric: str, options: ReportOptions) -> str:
    hint = ""
    if metric in options.kpi_metrics:
        hint = f"“{metric}”是 KPI 的键，它的指标键是 {options.kpi_metrics[metric]}；"
    known = "、".join(sorted(options.known or ()))
    return f"不认识的指标键“{metric}”：{hint}已知的指标键：{known}"


def samples_from_table(table: Table, options: ReportOptions, label: str, now: datetime) -> FetchResult:
    """Turn a table's rows into samples; refused rows become RowErrors (file, line, column, why)."""
    preset = options.preset
    result = FetchResult()
    errors_total = 0

    def refuse(line: int, column: str, reason: str) -> None:
        nonlocal errors_total
        errors_total += 1
        if len(result.errors) < MAX_ERRORS:
            result.errors.append(RowError(label, line, column, reason))

    try:
        header_line, header = _find_header(table.rows, preset)
    except FileRefused:
        # GB18030 decodes nearly any bytes: a Big5 or Shift_JIS file reads as nonsense, not as an error
        named = foreign_encoding(table.path) if table.path is not None and table.kind == "csv" else ""
        if named:
            raise FileRefused(named) from None
        raise
    layout = _layout(header_line, header, preset)
    if preset.wide and not layout.metrics:
        raise FileRefused(
            f"表头（第 {header_line} 行）里没有可识别的指标列（preset = {preset.name}）；"
            '可在配置里用 columns = { "表头" = "指标键" } 补充',
            header_line,
        )
    if not preset.wide:
        missing = [
            name for name, idx in (("metric", layout.metric_idx), ("value", layout.value_idx)) if idx is None
        ]
        if missing:
            raise FileRefused(f"表头（第 {header_line} 行）缺少列：{', '.join(missing)}", header_line)
    result.detail.update(
        {
            "header_line": header_line,
            "columns": {h: m for _, h, m in layout.metrics},
            "unmapped": layout.unmapped,
            # every header that was not imported (issue 16), the recognised ones too
            "not_imported": [*layout.unmapped, *(f"{h}（无对应指标）" for h in layout.known_unmapped)],
        }
    )

    seen: dict[tuple[str, str, date], tuple[int, Decimal]] = {}
    last_date: date | None = None
    width = len(header)
    for line, cells in table.rows:
        if len(cells) < width:
            cells = cells + [None] * (width - len(cells))
        if all(_blank(c) for c in cells):
            continue
        result.rows_read += 1
        row_errors: list[tuple[str, str]] = []
        if table.kind == "csv" and any(not _blank(c) for c in cells[width:]):
            # an unquoted "1,234" splits into two cells and shifts every column after it
            result.rows_refused += 1
            refuse(
                line, "", f'本行比表头多 {len(cells) - width} 个单元格（含逗号的数字要加引号，如 "1,234"）'
            )
            continue

        # values first: whether the row carries any decides how an odd date cell is read
        values: list[tuple[str, str, Decimal]] = []  # (column, metric, value)
        any_value = False
        if preset.wide:
            for idx, col, metric in layout.metrics:
                raw = cells[idx]
                try:
                    v = parse_value(raw)
                except ValueParseError as exc:
                    row_errors.append((col, str(exc)))
                    any_value = True
                    continue
                if v is not None:
                    values.append((col, metric, v))
                    any_value = True
        else:
            assert layout.metric_idx is not None and layout.value_idx is not None
            metric_cell = cells[layout.metric_idx]
            metric = str(metric_cell).strip() if metric_cell is not None else ""
            value_col = _header_label(header[layout.value_idx])
            try:
                v = parse_value(cells[layout.value_idx])
            except ValueParseError as exc:
                row_errors.append((value_col, str(exc)))
                v = None
            any_value = v is not None or bool(row_errors)
            if not METRIC_KEY.fullmatch(metric):
                if metric or any_value:
                    row_errors.append(
                        (
                            _header_label(header[layout.metric_idx]),
                            f"指标键无效：{metric!r}（应如 pay_amount）",
                        )
                    )
            elif options.known is not None and metric not in options.known:
                if metric or any_value:
                    row_errors.append(
                        (_header_label(header[layout.metric_idx]), _unknown_metric(metric, options))
                    )
            elif v is not None:
                values.append((value_col, metric, v))

        raw_date = cells[layout.date_idx]
        day: date | None = None
        if _blank(raw_date):
            if table.spreadsheet and last_date is not None and any_value:
                day = last_date  # a merged date cell: only its first row holds the value
            elif any_value:
                row_errors.append((layout.date_label, "日期为空"))
            else:
                result.rows_skipped += 1
                continue
        elif is_total(raw_date):
            result.rows_skipped += 1
            continue
        else:
            try:
                day = parse_date(raw_date)
            except ValueParseError as exc:
                if not any_value:  # a note row under the table (数据来源 … / 注：…)
                    result.rows_skipped += 1
                    continue
                row_errors.append((layout.date_label, str(exc)))

        scope = options.scope
        if layout.scope_idx is not None:
            raw_scope = cells[layout.scope_idx]
            if _blank(raw_scope):
                pass  # no agent / shop named on this row: the source's scope
            elif is_total(raw_scope):
                result.rows_skipped += 1
                continue
            else:
                scope = str(raw_scope).strip()
                if len(scope) > 200:
                    row_errors.append((_header_label(header[layout.scope_idx]), "范围名称超过 200 个字符"))

        if not values and not row_errors:
            result.rows_skipped += 1  # every cell says "no value" (-, --, empty)
            if day is not None:
                last_date = day
            continue

        if day is not None and not row_errors:
            for col, metric, v in values:
                key = (metric, scope, day)
                prior = seen.get(key)
                if prior is not None and prior[1] != v:
                    row_errors.append(
                        (col, f"与第 {prior[0]} 行重复（同一日期、同一范围），但数值不同：{prior[1]} ≠ {v}")
                    )
        if row_errors:
            result.rows_refused += 1
            for col, reason in row_errors:
                refuse(line, col, reason)
            continue
        assert day is not None
        last_date = day
        for _col, metric, v in values:
            key = (metric, scope, day)
            if key in seen:
                continue  # the same value twice in one file
            seen[key] = (line, v)
            result.samples.append(MetricSample(metric, scope, day, v, options.source_id, now))
    if errors_total > len(result.errors):
        result.detail["errors_not_listed"] = errors_total - len(result.errors)
    return result


def read_report(
    path: Path,
    options: ReportOptions,
    now: datetime,
    *,
    progress: ProgressFn | None = None,
    label: str | None = None,
) -> FetchResult:
    """Read one report file. A file that cannot be read at all gives one RowError (line 0 or the
    line where reading stopped) and no samples; otherwise good rows load and bad rows are listed."""
    label = label or path.name
    try:
        table = open_table(path, progress, options.limits)
        result = samples_from_table(table, options, label, now)
    except (FileRefused, LimitRefused) as exc:
        result = FetchResult(errors=[RowError(label, exc.line, "", exc.reason)])
        result.detail["refused"] = exc.reason
        return result
    except OSError as exc:
        return FetchResult(errors=[RowError(label, 0, "", f"无法读取文件：{exc.strerror or exc}")])
    result.detail.update({"format": table.kind, "preset": options.preset.name})
    if table.encoding:
        result.detail["encoding"] = table.encoding
        result.detail["encoding_label"] = ENCODING_LABEL.get(table.encoding, table.encoding)
    if table.sheet:
        result.detail["sheet"] = table.sheet
    return result


# ---------------------------------------------------------------- the source


def options_from_config(config: SourceConfigLike, preset_name: str | None = None) -> ReportOptions:
    name = preset_name or str(config.get("preset", "generic"))
    columns = config.get("columns") or {}
    if not isinstance(columns, dict):
        raise NeedsAdmin(f'sources.{config.id}.columns 应是一个表：{{ "表头" = "指标键" }}')
    try:
        preset = preset_for(
            name,
            columns,
            date_column=str(config.get("date_column", "") or ""),
            scope_column=str(config.get("scope_column", "") or ""),
        )
        limits = ImportLimits.from_config(config)
    except ValueError as exc:
        raise NeedsAdmin(f"sources.{config.id}: {exc}") from None
    return ReportOptions(
        preset=preset, scope=str(config.get("scope", "shop")), source_id=config.id, limits=limits
    )


def candidate_files(folder: Path) -> list[Path]:
    """Report files directly in ``folder``, oldest name first; Excel lock files and dotfiles skipped."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(("~$", "."))
    )


def read_new_files(
    path: Path,
    source_id: str,
    deps: SourceDeps,
    now: datetime,
    read: Callable[[Path], FetchResult],
    summary: Callable[[FetchResult], dict[str, Any]],
) -> FetchResult:
    """Read the file at ``path`` (or each report file in that folder) whose content was not read
    before: each file's content hash is remembered (state ``file:<sha256>``) once it is read, so a
    re-copied or renamed file loads once. ``detail["files"]`` has ``summary(result)`` per file read."""
    if not path.exists():
        raise NeedsAdmin(f"找不到 {path}（sources.{source_id}.path）")
    files = [path] if path.is_file() else candidate_files(path)
    result = FetchResult()
    per_file: dict[str, Any] = {}
    for f in files:
        key = f"file:{file_digest(f)}"
        if deps.state.get(key) is not None:
            continue
        one = read(f)
        per_file[f.name] = summary(one)
        one.state[key] = json.dumps({"name": f.name, "at": now.isoformat()}, ensure_ascii=False)
        result.extend(one)
    result.detail["files"] = per_file
    return result


class FileSource:
    """A report file, or a folder watched for new ones, each file loaded once (read_new_files)."""

    kind = "file"

    def __init__(self, config: SourceConfigLike, deps: SourceDeps):
        self.id = config.id
        self.config = config
        self.deps = deps
        raw = config.get("path")
        if not raw:
            raise NeedsAdmin(f"sources.{config.id}.path：需要一个文件或文件夹的路径")
        self.path = Path(str(raw)).expanduser()
        self.options = options_from_config(config)

    def fetch(self, window: Window, now: datetime) -> FetchResult:
        def read(f: Path) -> FetchResult:
            return read_report(f, self.options, now, progress=self.deps.progress, label=f.name)

        return read_new_files(self.path, self.id, self.deps, now, read, _report_summary)


def _report_summary(one: FetchResult) -> dict[str, Any]:
    return {
        "rows_read": one.rows_read,
        "rows_refused": one.rows_refused,
        "samples": len(one.samples),
        **{k: v for k, v in one.detail.items() if k in ("encoding", "format", "refused", "sheet")},
    }
