"""The one place the product writes CSV and XLSX: text a spreadsheet would evaluate is made inert.

OWASP "CSV injection": a cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return is read as a formula (or a DDE call) by Excel, WPS and LibreOffice. Every text
cell passes through here:

- CSV: such text gets a leading ``'`` (the spreadsheet shows the text; the ``'`` is the
  conventional marker that the cell is text);
- XLSX: every text value is written as a string cell, never a formula, so it needs no prefix
  and reads back exactly as typed.

Numbers (int, float, Decimal) and booleans stay numbers; ``None`` is an empty cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


class ExportError(Exception):
    """An export that cannot be made (an unknown team, format or export); the message says which."""


def inert_text(text: str) -> str:
    """``text`` as a CSV cell no spreadsheet evaluates."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool | int | float | Decimal):
        return value
    return inert_text(str(value))


def write_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 with a BOM (Excel on Windows then opens it as UTF-8)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([csv_cell(h) for h in header])
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def write_xlsx(sheet_name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet(sheet_name)

    def cells(values: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        for value in values:
            if value is None or isinstance(value, bool | int | float | Decimal):
                out.append(value)
                continue
            cell = WriteOnlyCell(sheet, value=str(value))
            cell.data_type = "s"  # openpyxl would store text starting with "=" as a formula
            out.append(cell)
        return out

    sheet.append(cells(header))
    for row in rows:
        sheet.append(cells(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
