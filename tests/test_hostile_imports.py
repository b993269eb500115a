"""Row 4 of issue 17: report files are bounded (size, unzipped size and ratio, rows, columns, cell
length), checked before parsing and while rows stream; a bomb is refused in seconds, in little memory."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sources.files import ReportOptions, options_from_config, read_report
from sources.import_limits import ImportLimits
from sources.presets import GENERIC

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
HEADER = ["日期", "指标", "数值"]

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    "</Types>"
)
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="report" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
    'Target="sharedStrings.xml"/></Relationships>'
)
SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<dimension ref="{dimension}"/><sheetData>'
)
SHEET_TAIL = "</sheetData></worksheet>"


def _inline(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def _header_row() -> str:
    return '<row r="1">' + "".join(_inline(f"{c}1", h) for c, h in zip("ABC", HEADER, strict=True)) + "</row>"


def _data_row(n: int, value: float) -> str:
    return (
        f'<row r="{n}">{_inline(f"A{n}", "2026-11-23")}{_inline(f"B{n}", "gmv")}'
        f'<c r="C{n}"><v>{value}</v></c></row>'
    )


def build_xlsx(
    path: Path,
    *,
    rows: int = 2,
    dimension: str = "A1:C3",
    shared_strings_mb: int = 0,
    extra_cells: str = "",
    random_values: bool = False,
) -> Path:
    """A minimal XLSX written member by member (streamed, so a bomb never sits in memory)."""
    rng = random.Random(17)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        z.writestr("_rels/.rels", ROOT_RELS)
        z.writestr("xl/workbook.xml", WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        with z.open("xl/sharedStrings.xml", "w", force_zip64=True) as f:
            f.write(
                b'<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            )
            block = b"<si><t>" + b"a" * 1000 + b"</t></si>"
            for _ in range(shared_strings_mb * 1024):
                f.write(block)
            f.write(b"</sst>")
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
            f.write(SHEET_HEAD.format(dimension=dimension).encode())
            f.write(_header_row().encode())
            batch: list[str] = []
            for n in range(2, rows + 2):
                batch.append(_data_row(n, rng.random() * 1000 if random_values else 1.5))
                if len(batch) == 10_000:
                    f.write("".join(batch).encode())
                    batch = []
            f.write("".join(batch).encode())
            f.write(extra_cells.encode())
            f.write(SHEET_TAIL.encode())
    return path


def read(path: Path, **limits) -> dict:
    result = read_report(path, ReportOptions(GENERIC, limits=ImportLimits(**limits)), NOW)
    return {
        "refused": result.detail.get("refused", ""),
        "samples": len(result.samples),
        "rows": result.rows_read,
    }


def test_a_plain_xlsx_within_the_limits_loads(tmp_path):
    assert read(build_xlsx(tmp_path / "ok.xlsx", rows=3)) == {"refused": "", "samples": 1, "rows": 3}


def _csv(tmp_path: Path, rows: list[list[str]]) -> Path:
    path = tmp_path / "r.csv"
    path.write_text("\n".join(",".join(r) for r in [HEADER, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("build", "limits", "key"),
    [
        (lambda d: build_xlsx(d / "f.xlsx", rows=50), {"max_file_mb": 0.001}, "max_file_mb"),
        (lambda d: _csv(d, [["2026-11-23", "gmv", "1"]] * 50), {"max_file_mb": 0.0005}, "max_file_mb"),
        (lambda d: build_xlsx(d / "u.xlsx", shared_strings_mb=3), {"max_unzipped_mb": 2}, "max_unzipped_mb"),
        (
            lambda d: build_xlsx(d / "s.xlsx", shared_strings_mb=3),
            {"max_shared_strings_mb": 2, "max_zip_ratio": 1e6},
            "max_shared_strings_mb",
        ),
        (lambda d: build_xlsx(d / "z.xlsx", shared_strings_mb=2), {}, "max_zip_ratio"),
        (lambda d: build_xlsx(d / "m.xlsx"), {"max_zip_members": 3}, "max_zip_members"),
        (lambda d: build_xlsx(d / "r.xlsx", rows=20), {"max_rows": 10}, "max_rows"),
        (lambda d: _csv(d, [["2026-11-23", "gmv", "1"]] * 20), {"max_rows": 10}, "max_rows"),
        (
            lambda d: build_xlsx(d / "c.xlsx", extra_cells='<row r="9"><c r="XFD9"><v>1</v></c></row>'),
            {},
            "max_columns",
        ),
        (lambda d: _csv(d, [["2026-11-23", "gmv", "1"] + ["x"] * 30]), {"max_columns": 20}, "max_columns"),
        (
            lambda d: build_xlsx(d / "l.xlsx", extra_cells=f'<row r="9">{_inline("A9", "x" * 40_000)}</row>'),
            {},
            "max_cell_chars",
        ),
        (lambda d: _csv(d, [["2026-11-23", "gmv", "x" * 200]]), {"max_cell_chars": 100}, "max_cell_chars"),
    ],
)
def test_each_limit_refuses_the_whole_file_and_names_its_key(tmp_path, build, limits, key):
    outcome = read(build(tmp_path), **limits)
    assert key in outcome["refused"]
    assert outcome["samples"] == 0  # nothing of a refused file loads


def test_a_declared_dimension_is_not_trusted(tmp_path):
    path = build_xlsx(tmp_path / "dim.xlsx", rows=3, dimension="A1:XFD1048576")
    started = time.perf_counter()
    assert read(path) == {"refused": "", "samples": 1, "rows": 3}
    assert time.perf_counter() - started < 2


def test_a_row_number_far_below_counts_against_max_rows(tmp_path):
    path = build_xlsx(tmp_path / "gap.xlsx", extra_cells=f'<row r="1048576">{_inline("A1048576", "x")}</row>')
    started = time.perf_counter()
    assert "max_rows" in read(path)["refused"]
    assert time.perf_counter() - started < 5


def test_limits_come_from_the_source_entry():
    class Entry(dict):
        id = "shop"

    options = options_from_config(Entry(max_rows=5000, max_file_mb="20"))
    assert (options.limits.max_rows, options.limits.max_file_mb, options.limits.max_columns) == (
        5000,
        20.0,
        1000,
    )
    from sources.base import NeedsAdmin

    with pytest.raises(NeedsAdmin, match="max_rows"):
        options_from_config(Entry(max_rows=0))


# Peak memory as /proc's VmHWM: the child's own address space. getrusage's ru_maxrss would also
# count the pytest parent it was forked from (Linux keeps the high-water mark across exec).
MEASURE = """
import json, sys, time
from datetime import datetime, UTC
from pathlib import Path
from sources.files import ReportOptions, read_report
from sources.presets import GENERIC
started = time.perf_counter()
result = read_report(Path(sys.argv[1]), ReportOptions(GENERIC), datetime(2026, 11, 23, tzinfo=UTC))
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"refused": result.detail.get("refused", ""), "seconds": time.perf_counter() - started,
                  "rss_mb": int(hwm.split()[1]) / 1024}))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "build", "key"),
    [
        ("shared-strings", lambda p: build_xlsx(p, shared_strings_mb=200), "max_zip_ratio"),
        ("many-rows", lambda p: build_xlsx(p, rows=1_000_000, random_values=True), "max_rows"),
        ("dimension", lambda p: build_xlsx(p, rows=5000, dimension="A1:XFD1048576"), ""),
    ],
)
def test_bombs_are_refused_in_seconds_in_little_memory(tmp_path, name, build, key):
    path = build(tmp_path / f"{name}.xlsx")
    root = Path(__file__).parents[1]
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    measured = json.loads(out.stdout)
    print(name, path.stat().st_size, measured)
    assert key in measured["refused"] if key else measured["refused"] == ""
    assert measured["seconds"] < 10
    assert measured["rss_mb"] < 300


@pytest.mark.parametrize("chunk_tail", [0, 1, 3, 5, 63, 64, 65])
def test_row_count_on_raw_bytes_is_exact_across_chunk_edges(chunk_tail):
    import io

    from sources.import_limits import count_rows

    pad = b" " * ((1 << 20) - chunk_tail)
    xml = b"<sheetData>" + pad + b'<row r="1"/><x:row r="2"><c/></x:row><rowBreaks/><row>' + b"</sheetData>"
    assert count_rows(io.BytesIO(xml), 10) == 3
