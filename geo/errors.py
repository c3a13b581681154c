"""Domain errors. ``api/errors.py`` maps each class to an HTTP status in one table."""

from __future__ import annotations

from typing import Any


class WuyeError(Exception):
    """Base of every domain error: a message, the field it concerns if any, and the message in
    Chinese for the people who read it on a page (``reason_zh``; the API supplies a general one
    for the error's kind when a raise site gives none)."""

    def __init__(self, message: str, *, field: str | None = None, reason_zh: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.reason_zh = reason_zh
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: reason, reason_zh, field and any details."""
        body: dict[str, Any] = {"reason": self.message}
        if self.reason_zh is not None:
            body["reason_zh"] = self.reason_zh
        if self.field is not None:
            body["field"] = self.field
        body.update(self.details)
        return body


class ConfigError(WuyeError):
    """The machine or settings cannot run what was asked (missing binaries, bad URL)."""


class DatabaseUnavailable(WuyeError):
    """The database cannot be reached (or did not answer in time): try again later."""


class ServiceBusy(DatabaseUnavailable):
    """Every database connection is taken and the waiting room is full or the wait ran out;
    ``retry_after`` seconds is the hint given to the client."""

    def __init__(self, message: str, *, retry_after: int, reason_zh: str | None = None) -> None:
        super().__init__(message, reason_zh=reason_zh)
        self.retry_after = retry_after


class SchemaMismatch(WuyeError):
    """A layer spec and the live table disagree; migrate refuses to guess."""


class UnknownLayer(WuyeError):
    """No layer of that name in the catalogue."""


class NotFound(WuyeError):
    """A feature or record does not exist (or is not visible to the caller)."""


class Unauthenticated(WuyeError):
    """No valid credentials (missing, forged, expired or revoked token)."""


class Forbidden(WuyeError):
    """The caller may see this data but not change it."""


class PreconditionFailed(WuyeError):
    """An If-Match version is stale."""


class PreconditionRequired(WuyeError):
    """A write that needs If-Match came without it."""


class PayloadTooLarge(WuyeError):
    """A request body or upload is over its limit."""


class TooManyRequests(WuyeError):
    """Too many attempts (sign-ins); ``retry_after`` seconds until the next may be tried."""

    def __init__(
        self, message: str, *, retry_after: int, field: str | None = None, reason_zh: str | None = None
    ) -> None:
        super().__init__(message, field=field, reason_zh=reason_zh)
        self.retry_after = retry_after


class InvalidInput(WuyeError):
    """A request or file failed validation; nothing was written."""


class ImportRejected(InvalidInput):
    """A file failed validation row by row; ``details['problems']`` lists them."""


class Conflict(WuyeError):
    """The write conflicts with existing data (duplicate code, stale version)."""


class LayerNotWritable(WuyeError):
    """The layer is read-only or workflow-owned."""
