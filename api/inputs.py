"""Request-side field types: the rules of :mod:`geo.inputs` as pydantic annotations, so that the
OpenAPI document declares them (``maxLength``) and a bad value is a 400 naming the field."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Query, UploadFile
from pydantic import AfterValidator, Field, WithJsonSchema

from geo.errors import InvalidInput
from geo.inputs import EARLIEST, NAME_MAX, NOTE_MAX, PERSON_MAX, date_problem
from geo.workcal import today


def _planned(day: date) -> date:
    problem = date_problem(day, today=None)
    if problem:
        raise ValueError(problem)
    return day


def _happened(day: date) -> date:
    problem = date_problem(day, today=today())
    if problem:
        raise ValueError(problem)
    return day


# A date that may lie ahead (a plan, a deadline) but not before the programme's records begin.
# A page's language (maps, unit names): Chinese by default.
Lang = Annotated[Literal["zh", "en"], Query(description="页面语言 page language")]
Day = Annotated[date, AfterValidator(_planned), Field(description=f"YYYY-MM-DD, not before {EARLIEST}")]
# A date of something that has happened: not before the records begin, not in the future.
Happened = Annotated[date, AfterValidator(_happened), Field(description=f"YYYY-MM-DD, from {EARLIEST} to today")]
Name = Annotated[str, Field(max_length=NAME_MAX)]
Note = Annotated[str, Field(max_length=NOTE_MAX)]
Person = Annotated[str, Field(max_length=PERSON_MAX)]
# An amount of money in yuan: a JSON number or a decimal string, at most two decimals (never a float inside).
Money = Annotated[
    Decimal,
    Field(max_digits=12, decimal_places=2),
    WithJsonSchema(
        {"anyOf": [{"type": "number"}, {"type": "string", "maxLength": 16}], "description": "yuan, two decimals"}
    ),
]
# A coordinate is a JSON number: "112.95" (a string) is refused, not coerced; so are NaN and Infinity.
Coordinate = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def saved_upload(upload: UploadFile, data: bytes, folder: str) -> Path:
    """An uploaded CSV/XLSX written to ``folder`` under a name of ours (its suffix kept); 400 naming
    ``file`` for any other kind."""
    suffix = Path(upload.filename or "upload.csv").suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise InvalidInput(f"file '{upload.filename}' must be .csv or .xlsx", field="file")
    path = Path(folder) / f"upload{suffix}"
    path.write_bytes(data)
    return path
