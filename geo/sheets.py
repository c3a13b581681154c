"""Tables written for people: a header and rows as CSV (UTF-8 with a BOM, so that Excel shows the
Chinese) or as an Excel workbook of one sheet (openpyxl, as the acceptance summary). The case
statistics and the statistics page's charts download through these two."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

# Excel refuses these in a sheet's name and cuts it at 31 characters.
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
SHEET_NAME_MAX = 31


def _cell(value: Any) -> Any:
    return "" if value is None else value


def csv_bytes(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """The table as UTF-8 CSV with a BOM; an empty value is an empty cell."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return buf.getvalue().encode("utf-8-sig")


def sheet_name(title: str) -> str:
    """``title`` as a name Excel accepts (no ``[]:*?/\\``, at most 31 characters)."""
    return _SHEET_FORBIDDEN.sub(" ", title).strip()[:SHEET_NAME_MAX] or "Sheet1"


def xlsx_bytes(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """The table as an Excel workbook with one sheet named after ``title``, the header row frozen;
    numbers stay numbers, an empty value an empty cell."""
    from openpyxl import Workbook  # only the downloads need it

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = sheet_name(title)
    sheet.append(list(columns))
    for row in rows:
        sheet.append([None if v is None else v for v in row])
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
