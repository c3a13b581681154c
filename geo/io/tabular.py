"""Reading the CSV/XLSX tables field teams deliver (surveys, inspections), with row-level problems.

Headers may be ours or the teams' Chinese ones; each table module passes its
own mapping. Rows are numbered from 1 (the first data row), as in
``geo.importer``'s reports.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geo.errors import ImportRejected, InvalidInput
from geo.inputs import bad_character, date_problem
from geo.spatial.validate import Problem

MAX_PROBLEMS_IN_MESSAGE = 10


def _column_text(column: pd.Series) -> str:
    """Every cell of a text column in one string, for one search for refused characters. An Arrow-backed
    column (pandas' default string type) gives its UTF-8 buffer as it is, one decode for the whole
    column (a million cells in milliseconds, where making a Python string of each took seconds); the
    cells run together, which cannot make a refused character where there was none."""
    arrow = getattr(column.array, "__arrow_array__", None)
    if arrow is not None:
        import pyarrow as pa

        chunks = arrow()
        parts = []
        for chunk in chunks.chunks if isinstance(chunks, pa.ChunkedArray) else [chunks]:
            if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)) or len(chunk) == 0:
                break
            _, offsets, data = chunk.buffers()
            width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
            bounds = np.frombuffer(offsets, dtype=width)[[chunk.offset, chunk.offset + len(chunk)]]
            parts.append(data.to_pybytes()[int(bounds[0]) : int(bounds[1])].decode("utf-8") if data else "")
        else:
            return "".join(parts)
    return "\n".join(v for v in column.tolist() if isinstance(v, str))


def read_table(path: Path, columns: dict[str, tuple[str, ...]]) -> pd.DataFrame:
    """The file's rows as text, its columns renamed to ours (missing optional ones added empty)."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            frame = pd.read_excel(path, dtype=str, keep_default_na=False, na_values=[""])
        elif suffix in (".csv", ".txt"):
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
        else:
            raise InvalidInput(f"'{path.name}' is neither CSV nor XLSX", field="path")
    except (OSError, ValueError) as e:
        raise InvalidInput(f"cannot read '{path.name}': {e}", field="path") from e
    rename: dict[str, str] = {}
    for ours, names in columns.items():
        found = next((c for c in frame.columns if str(c).strip().lower() in {n.lower() for n in names}), None)
        if found is not None:
            rename[found] = ours
    frame = frame.rename(columns=rename)
    for ours in columns:
        if ours not in frame.columns:
            frame[ours] = None
    frame = frame[list(columns)]
    # one search over each column's text joined (a month of patrol scans is a million rows), then
    # the cells one by one only in a column where it found something
    dirty = [c for c in columns if bad_character(_column_text(frame[c]))]
    refused = [
        Problem(i + 1, str(column), f"control character {char} is not allowed in text")
        for column in dirty
        for i, value in enumerate(frame[column].tolist())
        if isinstance(value, str) and (char := bad_character(value))
    ]
    if refused:
        raise rejection(path.name, refused, len(frame))
    return frame


def blank(value: Any) -> bool:
    """Empty cell: None, NaN or only spaces."""
    return value is None or (isinstance(value, float) and pd.isna(value)) or str(value).strip() == ""


def parse_date(value: Any, row: int, field: str, problems: list[Problem], *, not_after: date) -> date | None:
    """A date cell (2023-08-15, 2023/8/15, 2023年8月15日 or a spreadsheet datetime); problems when bad
    or later than ``not_after``."""
    if blank(value):
        problems.append(Problem(row, field, "missing"))
        return None
    text = str(value).strip().replace("年", "-").replace("月", "-").replace("日", "").replace("/", "-")
    try:
        day = (
            datetime.fromisoformat(text).date()
            if " " in text or "T" in text
            else date.fromisoformat("-".join(p.zfill(2) for p in text.split("-")))
        )
    except ValueError:
        problems.append(Problem(row, field, f"'{value}' is not a date (YYYY-MM-DD)"))
        return None
    problem = date_problem(day, today=not_after)
    if problem:
        problems.append(Problem(row, field, problem))
        return None
    return day


def rejection(what: str, problems: list[Problem], rows: int) -> ImportRejected:
    """The error for a file with bad rows: counts, the first problems, all of them in details."""
    bad_rows = len({p.row for p in problems})
    shown = "; ".join(f"row {p.row} {p.field}: {p.reason}" for p in problems[:MAX_PROBLEMS_IN_MESSAGE])
    more = len(problems) - MAX_PROBLEMS_IN_MESSAGE
    tail = f"; … and {more} more" if more > 0 else ""
    return ImportRejected(
        f"{bad_rows} of {rows} rows of {what} are invalid, nothing was imported: {shown}{tail}",
        problems=[p.__dict__ for p in problems],
    )
