"""Cron expressions (the five Vixie-cron fields) and fixed rates: when does a schedule tick next.

``minute hour day-of-month month day-of-week``, each field ``*``, ``N``, ``A-B``, a step ``*/S`` or
``A-B/S`` or ``A/S``, or a comma list of those; months and weekdays also by name (``jan``, ``mon``);
weekday 0 and 7 are Sunday; ``@hourly @daily @weekly @monthly @yearly`` as shorthands. As in Vixie
cron, when both day fields are restricted a day matches if either does.

Times are computed in the schedule's IANA time zone. Daylight saving: a local time skipped by a
spring-forward gap does not fire that day; a local time repeated by a fall-back fires once (its
first occurrence).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                          "dec"))}  # fmt: skip
WEEKDAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, MONTHS),
    ("day-of-week", 0, 7, WEEKDAYS),
)
SEARCH_DAYS = 366 * 9  # Feb 29 recurs within 8 years (2096 -> 2104); anything rarer never matches


class CronError(ValueError):
    """A cron expression or time zone that cannot be used; the message says which part and why."""


def timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {name!r}; use an IANA name such as 'UTC' or 'Europe/Paris'") from None


def _value(text: str, lo: int, hi: int, names: dict[str, int], field: str) -> int:
    key = text.lower()
    if key in names:
        return names[key]
    if not text.isdigit():
        raise CronError(f"{field} field: {text!r} is not a number{' or a name' if names else ''}")
    value = int(text)
    if not lo <= value <= hi:
        raise CronError(f"{field} field: {value} is outside {lo}..{hi}")
    return value


def _field(text: str, lo: int, hi: int, names: dict[str, int], field: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{field} field: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = lo, hi
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _value(a, lo, hi, names, field), _value(b, lo, hi, names, field)
            if start > end:
                raise CronError(f"{field} field: range {base!r} runs backwards")
        else:
            start = _value(base, lo, hi, names, field)
            end = hi if slash else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronExpression:
    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day-of-month is '*'
    any_weekday: bool  # day-of-week is '*'

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        expanded = MACROS.get(text.strip().lower(), text)
        parts = expanded.split()
        if len(parts) != 5:
            raise CronError(
                f"cron expression {text!r} has {len(parts)} fields; expected 5 "
                "(minute hour day-of-month month day-of-week), e.g. '*/5 * * * *'"
            )
        sets = [_field(p, lo, hi, names, f) for p, (f, lo, hi, names) in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in sets[4])
        return cls(
            text=text,
            minutes=tuple(sorted(sets[0])),
            hours=tuple(sorted(sets[1])),
            days=sets[2],
            months=sets[3],
            weekdays=weekdays,
            any_day=parts[2] == "*",
            any_weekday=parts[4] == "*",
        )

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow

    def next_after(self, after: datetime, tz: ZoneInfo) -> datetime:
        """The first tick strictly after `after` (aware), as an aware UTC datetime."""
        start = after.astimezone(tz).replace(second=0, microsecond=0, tzinfo=None) + timedelta(minutes=1)
        day = start.date()
        for _ in range(SEARCH_DAYS):
            if self._day_matches(day):
                for hour in self.hours:
                    for minute in self.minutes:
                        local = datetime.combine(day, dtime(hour, minute))
                        if local < start:
                            continue
                        utc = local.replace(tzinfo=tz).astimezone(UTC)
                        if utc.astimezone(tz).replace(tzinfo=None) != local:
                            continue  # inside a spring-forward gap: this local time does not exist
                        if utc > after:
                            return utc
            day += timedelta(days=1)
        raise CronError(f"cron expression {self.text!r} never matches a real date (e.g. 30 February)")


def validate(cron: str | None, rate_s: int | None, tz_name: str) -> None:
    """Check a schedule's definition; raises `CronError` naming the problem."""
    tz = timezone(tz_name)
    if cron is not None:
        CronExpression.parse(cron).next_after(datetime.now(UTC), tz)
    elif rate_s is None:
        raise CronError("a schedule needs `cron` or `rate_s`")
