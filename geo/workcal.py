"""The working calendar: deadlines in working hours or days, Asia/Shanghai.

Holidays and make-up working days (调休) are data in ``layers/calendar.toml``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

_DEADLINE = re.compile(r"^(\d+(?:\.\d+)?)\s*([hd])$")


@dataclass(frozen=True)
class WorkCalendar:
    """Working periods of a day, holidays and make-up working days, in one time zone."""

    zone: ZoneInfo
    periods: tuple[tuple[time, time], ...]
    holidays: frozenset[date]
    workdays: frozenset[date]

    def is_working_day(self, day: date) -> bool:
        """Weekdays except holidays, plus weekend make-up days."""
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add(self, start: datetime, deadline: str) -> datetime:
        """``start`` plus a deadline such as '4h' (working hours) or '2d' (working days)."""
        match = _DEADLINE.match(deadline.strip())
        if not match:
            raise ValueError(f"deadline '{deadline}' must look like '4h' or '2d'")
        amount, unit = float(match.group(1)), match.group(2)
        local = start.astimezone(self.zone)
        if unit == "d":
            return self._add_days(local, int(amount))
        return self._add_hours(local, timedelta(hours=amount))

    def _add_days(self, local: datetime, days: int) -> datetime:
        day = local.date()
        # A report in working time counts today as day 1 only from the next day on,
        # so a '1d' deadline is the close of the next working day.
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return datetime.combine(day, self.periods[-1][1], self.zone)

    def _add_hours(self, local: datetime, left: timedelta) -> datetime:
        day, now = local.date(), local
        while True:
            if self.is_working_day(day):
                for begin, end in self.periods:
                    start = max(now, datetime.combine(day, begin, self.zone))
                    stop = datetime.combine(day, end, self.zone)
                    if start >= stop:
                        continue
                    if stop - start >= left:
                        return start + left
                    left -= stop - start
            day += timedelta(days=1)
            now = datetime.combine(day, time(0), self.zone)


@cache
def calendar() -> WorkCalendar:
    """The calendar shipped in ``layers/calendar.toml``."""
    raw = tomllib.loads(resources.files("layers").joinpath("calendar.toml").read_text(encoding="utf-8"))
    periods = tuple((time.fromisoformat(a), time.fromisoformat(b)) for a, b in raw["periods"])
    return WorkCalendar(
        zone=ZoneInfo(raw.get("timezone", "Asia/Shanghai")),
        periods=periods,
        holidays=frozenset(date.fromisoformat(d) for d in raw.get("holidays", [])),
        workdays=frozenset(date.fromisoformat(d) for d in raw.get("workdays", [])),
    )


def today() -> date:
    """Today in the programme's time zone (Asia/Shanghai)."""
    return datetime.now(calendar().zone).date()
