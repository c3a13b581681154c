"""The workbench's forms, once: what a form's page says back (``FormState``: the message, good news or a
refusal, the status, what was typed), ``refused`` (a refusal of geo/ answered with the form's page again,
the reason in Chinese and the typed values kept) and the parsers of what a form sends (``form_day``,
``form_number``), each a 400 naming the field with a Chinese reason. The pages themselves are
api/workbench.py's ``page``, which takes a ``FormState`` as ``form``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping
from datetime import date
from typing import Any, Literal, overload

from fastapi.responses import HTMLResponse

from api.errors import error_body, status_of
from geo.errors import InvalidInput, NotFound, WuyeError


@dataclasses.dataclass(frozen=True)
class FormState:
    """What a form's page shows of the last submission: ``message`` (what was done, or why not), ``ok``
    (good news or a refusal), the ``status`` to answer with, the values the user typed (``kept``, shown
    again in the fields) and the ``field`` a refusal names (marked on the page)."""

    message: str = ""
    ok: bool = True
    status: int = 200
    kept: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    field: str | None = None

    @classmethod
    def refused(
        cls, error: WuyeError, kept: Mapping[str, Any] | None = None, *, message: str | None = None
    ) -> FormState:
        """A refusal: the error's Chinese reason (or ``message``), its status and field, what was typed."""
        said = reason_zh(error) if message is None else message
        return cls(message=said, ok=False, status=status_of(error), kept=dict(kept or {}), field=error.field)

    def context(self) -> dict[str, Any]:
        """The names the templates read: ``message``, ``ok``, ``kept`` and ``field``."""
        return {"message": self.message, "ok": self.ok, "kept": dict(self.kept), "field": self.field}


BLANK = FormState()  # a form shown fresh: nothing said, nothing kept


def reason_zh(error: WuyeError) -> str:
    """The Chinese reason of a refusal, as the error body names it (api/errors.py: its own or the status's)."""
    body = error_body(status_of(error), error.message, error.field, reason_zh=error.reason_zh)
    return str(body["reason_zh"])


def refused(
    error: WuyeError,
    again: Callable[..., HTMLResponse],
    kept: Mapping[str, Any] | None = None,
    *,
    not_found: Collection[str] = (),
    message: str | None = None,
) -> HTMLResponse:
    """A form the server refused: its page again (``again(form=...)``) with the reason in Chinese (or
    ``message``) and what was typed kept. A ``NotFound`` naming one of ``not_found`` (the page's own
    subject: the case, the facility, the answer) is raised as the 404 it is: there is no page to show."""
    if isinstance(error, NotFound) and error.field in not_found:
        raise error
    return again(form=FormState.refused(error, kept, message=message))


@overload
def form_day(value: str | None, field: str, *, required: Literal[True], reason_zh: str | None = None) -> date: ...


@overload
def form_day(value: str | None, field: str, *, required: bool = False, reason_zh: str | None = None) -> date | None: ...


def form_day(value: str | None, field: str, *, required: bool = False, reason_zh: str | None = None) -> date | None:
    """The date (YYYY-MM-DD) a form's ``field`` holds, blanks around it ignored; empty, None (or, when
    ``required``, refused as a bad date is). Refused: 400 naming the field, with ``reason_zh`` or
    “field”须为日期（年-月-日）."""
    text = (value or "").strip()
    if not text and not required:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        said = reason_zh or f"“{field}”须为日期（年-月-日）"
        raise InvalidInput(f"{field} '{value}' is not a date (YYYY-MM-DD)", field=field, reason_zh=said) from None


def form_number(value: str | None, field: str) -> float | None:
    """The number a form's ``field`` holds; empty, None; else 400 naming the field (“field”须为数字)."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidInput(f"{field} must be a number", field=field, reason_zh=f"“{field}”须为数字") from None
