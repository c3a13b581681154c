"""The rules for what comes in: no control characters in text, lengths, dates in a sane range.

PostgreSQL cannot store NUL (psycopg refuses it with a DataError, which surfaced as a 500) and a
lone UTF-16 surrogate (JSON allows ``"\\ud800"``) cannot be encoded to UTF-8; the other C0/C1
controls are refused too because no field of ours means them and they hide text on a page or in a
spreadsheet. Tab, line feed and carriage return are allowed: notes and descriptions have lines.
The API runs :func:`check_tree` on every query and path parameter, form field and JSON body; the
importers run :func:`bad_character` on every text cell. The length limits are declared in the
OpenAPI document (``maxLength``) and held by CHECK constraints (migration 0010).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from geo.errors import InvalidInput

# C0 controls but tab, LF, CR; DEL and the C1 controls; surrogates; the two non-characters at the
# end of the basic plane (U+FFFE would flip byte order for a reader guessing it).
_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
NAME_MAX = 200  # names and titles (zones, units, tasks, rounds)
NOTE_MAX = 2000  # notes, descriptions, remarks, reasons
PERSON_MAX = 100  # a person's name (reporter, surveyor, inspector, display name)
PATH_MAX = 200  # a path parameter (a code, a name, a layer): none of ours is longer
EARLIEST = date(2000, 1, 1)  # no record of the programme, nor of its facilities' upkeep, is older

# The limit of nesting walked in a body (FastAPI's JSON parser has its own; this keeps the walk finite).
MAX_DEPTH = 64


def bad_character(value: str) -> str | None:
    """The first refused character of ``value`` as ``U+XXXX``, or None when the text is clean."""
    found = _BAD.search(value)
    return f"U+{ord(found.group()):04X}" if found else None


def refusal(field: str, char: str) -> InvalidInput:
    """The error for a refused character in ``field`` (400 naming the field)."""
    return InvalidInput(
        f"{field}: control character {char} is not allowed in text",
        field=field,
        reason_zh=f"“{field}”含有不允许的控制字符（{char}），请删除后重试",
    )


def check_text(value: str, field: str) -> None:
    """Raise :class:`InvalidInput` naming ``field`` if ``value`` holds a refused character."""
    char = bad_character(value)
    if char is not None:
        raise refusal(field, char)


def check_path_parameter(value: str, field: str) -> None:
    """A path parameter: :func:`check_text`, and at most ``PATH_MAX`` characters (declared as
    ``maxLength`` in the OpenAPI document for every path parameter that declares none of its own)."""
    check_text(value, field)
    if len(value) > PATH_MAX:
        raise InvalidInput(
            f"{field} is longer than {PATH_MAX} characters", field=field, reason_zh=f"“{field}”超过 {PATH_MAX} 个字符"
        )


def check_tree(value: Any, field: str, depth: int = 0) -> None:
    """:func:`check_text` on every string (keys included) of a parsed JSON value; the field named
    is the dotted path to it (``properties.name``, ``zones.0``)."""
    if isinstance(value, str):
        check_text(value, field)
    elif depth > MAX_DEPTH:
        raise InvalidInput(f"{field}: nested deeper than {MAX_DEPTH} levels", field=field)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            name = f"{field}.{key}" if field else str(key)
            check_text(str(key), field or "body")
            check_tree(item, name, depth + 1)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_tree(item, f"{field}.{i}" if field else str(i), depth + 1)


def date_problem(day: date, *, today: date | None) -> str | None:
    """Why ``day`` is out of range, or None: before :data:`EARLIEST`, or after ``today`` for a thing
    that has happened (``today`` None: a planned date, the future allowed)."""
    if day < EARLIEST:
        return f"{day} is before {EARLIEST}"
    if today is not None and day > today:
        return f"{day} is in the future"
    return None
