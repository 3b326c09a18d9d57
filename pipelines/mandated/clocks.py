"""Reporting clocks: deadlines counted from an incident's detection time, in UTC and local time.

Hours are elapsed time (24 h after 11:00Z is 11:00Z the next day, whatever a DST switch does
to the wall clock). A month is a calendar month on the facility's wall clock: same day (the
month's last day when it has no such day) and same local time; when that local time does not
exist or occurs twice (a DST switch), the deadline is the first instant the wall clock reads
that time or later (the earlier of a repeated hour; the switch itself in a skipped one).
"""
from __future__ import annotations

import calendar
import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

UTC = dt.timezone.utc
_WITHIN = re.compile(r"^\s*(?:(without_delay|immediately)|(\d+)\s*h|(\d+)\s*months?)\s*$")


@dataclass(frozen=True)
class Within:
    """A regime's time limit: ``without_delay``/``immediately``, ``<n>h`` or ``<n> month``."""

    text: str
    hours: int = 0
    months: int = 0

    @property
    def without_delay(self) -> bool:
        return not self.hours and not self.months


def parse_within(text: str) -> Within:
    m = _WITHIN.match(str(text))
    if not m:
        raise ValueError(f"expected without_delay, immediately, <n>h or <n> month, got {text!r}")
    if m.group(1):
        return Within(m.group(1))
    if m.group(2):
        return Within(text.strip(), hours=int(m.group(2)))
    return Within(text.strip(), months=int(m.group(3)))


def parse_time(value: str) -> dt.datetime:
    """An RFC 3339 time (``...Z`` or with an offset) as an aware UTC datetime."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def fmt_utc(t: dt.datetime) -> str:
    """The pipeline's own time form: ``2026-11-17T00:22:42.343000Z``."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fmt_local(t: dt.datetime, zone: str) -> str:
    """Wall-clock time in ``zone`` to the second, with its offset: ``2026-03-29T03:30:00+02:00``."""
    return t.astimezone(zoneinfo.ZoneInfo(zone)).replace(microsecond=0).isoformat()


def first_instant(wall: dt.datetime, zone: str) -> dt.datetime:
    """The first instant at which ``zone``'s wall clock reads ``wall`` (naive) or later: the
    earlier of the two when a fall-back switch shows that time twice, the switch itself when a
    spring-forward gap skips it."""
    tz = zoneinfo.ZoneInfo(zone)
    readings = sorted(wall.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1))
    for t in readings:
        if t.astimezone(tz).replace(tzinfo=None) == wall:
            return t
    lo, hi = readings  # in a gap: the wall clock passes ``wall`` somewhere between the readings
    step = dt.timedelta(microseconds=1)
    while hi - lo > step:
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return hi


def add_months(t: dt.datetime, months: int, zone: str) -> dt.datetime:
    """``t`` plus calendar months on ``zone``'s wall clock (see the module docstring)."""
    local = t.astimezone(zoneinfo.ZoneInfo(zone))
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return first_instant(local.replace(tzinfo=None, year=year, month=month, day=day), zone)


def due(start: dt.datetime, within: Within, zone: str) -> dt.datetime:
    """When a time limit counted from ``start`` runs out (``start`` itself for without delay)."""
    if within.hours:
        return start + dt.timedelta(hours=within.hours)
    if within.months:
        return add_months(start, within.months, zone)
    return start


def stamp(t: dt.datetime, zone: str) -> dict[str, str]:
    """A time as drafts show it: UTC (the pipeline's form) and the facility's wall clock."""
    return {"utc": fmt_utc(t), "local": fmt_local(t, zone), "timezone": zone}
