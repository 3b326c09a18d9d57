"""Reporting clocks across time zones and DST switches, against hand-worked expectations."""
from __future__ import annotations

import datetime as dt

import pytest

from pipelines.mandated.clocks import add_months, due, fmt_local, parse_within, stamp
from pipelines.mandated.draft import clock
from pipelines.mandated.registry import load_regimes
from pipelines.mandated.rule import Reportable

UTC = dt.timezone.utc
AMS, NYC = "Europe/Amsterdam", "America/New_York"


def _t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize("start, within, zone, utc, local", [
    # 24 h across Europe's spring-forward (2026-03-29 01:00Z): elapsed hours, the wall clock moves on by 25.
    ("2026-03-28T12:00:00Z", "24h", AMS, "2026-03-29T12:00:00Z", "2026-03-29T14:00:00+02:00"),
    # detection exactly at the switch, and one second before it
    ("2026-03-29T01:00:00Z", "24h", AMS, "2026-03-30T01:00:00Z", "2026-03-30T03:00:00+02:00"),
    ("2026-03-29T00:59:59Z", "72h", AMS, "2026-04-01T00:59:59Z", "2026-04-01T02:59:59+02:00"),
    # 24 h and 72 h across New York's fall-back (2026-11-01 06:00Z): the wall clock moves on by 23 and 71.
    ("2026-10-31T12:00:00Z", "24h", NYC, "2026-11-01T12:00:00Z", "2026-11-01T07:00:00-05:00"),
    ("2026-10-31T12:00:00Z", "72h", NYC, "2026-11-03T12:00:00Z", "2026-11-03T07:00:00-05:00"),
    # New York's spring-forward (2026-03-08 07:00Z)
    ("2026-03-07T20:00:00Z", "24h", NYC, "2026-03-08T20:00:00Z", "2026-03-08T16:00:00-04:00"),
    # a month is a calendar month on the facility's wall clock: same local time across a DST switch
    ("2026-03-15T09:00:00Z", "1 month", AMS, "2026-04-15T08:00:00Z", "2026-04-15T10:00:00+02:00"),
    ("2026-10-15T14:00:00Z", "1 month", NYC, "2026-11-15T15:00:00Z", "2026-11-15T10:00:00-05:00"),
    # ... the month's last day when it has no such day
    ("2026-01-31T10:00:00Z", "1 month", "UTC", "2026-02-28T10:00:00Z", "2026-02-28T10:00:00+00:00"),
    # ... the earlier of a repeated hour (01:30 happens twice in New York on 2026-11-01)
    ("2026-10-01T05:30:00Z", "1 month", NYC, "2026-11-01T05:30:00Z", "2026-11-01T01:30:00-04:00"),
    # ... the switch itself when the hour is skipped (02:30 does not exist in Amsterdam on 2028-03-26)
    ("2028-02-26T01:30:00Z", "1 month", AMS, "2028-03-26T01:00:00Z", "2028-03-26T03:00:00+02:00"),
    # a local date differs from the UTC date: counted on the wall clock (Jan 31 local, not Feb 1 UTC)
    ("2026-02-01T03:00:00Z", "1 month", NYC, "2026-03-01T03:00:00Z", "2026-02-28T22:00:00-05:00"),
    ("2026-04-30T23:30:00Z", "immediately", AMS, "2026-04-30T23:30:00Z", "2026-05-01T01:30:00+02:00"),
])
def test_deadlines(start: str, within: str, zone: str, utc: str, local: str) -> None:
    got = due(_t(start), parse_within(within), zone)
    assert got == _t(utc)
    assert fmt_local(got, zone) == local


def test_a_month_counts_the_facility_date_not_the_utc_date() -> None:
    # 2026-03-01 03:00 UTC is 2026-02-28 22:00 in New York: a month later is Mar 28 22:00 EDT
    # there, but Apr 1 03:00 on a UTC clock.
    assert add_months(_t("2026-03-01T03:00:00Z"), 1, NYC) == _t("2026-03-29T02:00:00Z")
    assert add_months(_t("2026-03-01T03:00:00Z"), 1, "UTC") == _t("2026-04-01T03:00:00Z")
    assert add_months(_t("2026-11-30T12:00:00Z"), 2, AMS) == _t("2027-01-30T12:00:00Z")


def test_nis2_draft_clock_at_the_amsterdam_spring_switch() -> None:
    why = Reportable(detected_at="2026-03-29T00:30:00.000000Z", rule_index=0, finding=None)  # type: ignore[arg-type]
    c = clock(why, load_regimes()["nis2"], AMS)
    assert c["detection_time"] == {"utc": "2026-03-29T00:30:00.000000Z", "local": "2026-03-29T01:30:00+01:00", "timezone": AMS}
    got = {d["id"]: (d["due"]["utc"], d["due"]["local"]) for d in c["deadlines"]}
    assert got == {
        "early_warning": ("2026-03-30T00:30:00.000000Z", "2026-03-30T02:30:00+02:00"),
        "incident_notification": ("2026-04-01T00:30:00.000000Z", "2026-04-01T02:30:00+02:00"),
        "final_report": ("2026-04-28T23:30:00.000000Z", "2026-04-29T01:30:00+02:00"),
    }


def test_without_delay_regimes_are_due_at_detection_in_new_york_fall_back() -> None:
    why = Reportable(detected_at="2026-11-01T06:30:00.000000Z", rule_index=0, finding=None)  # type: ignore[arg-type]
    for regime in ("uscg_mtsa", "us_33cfr6"):
        (d,) = clock(why, load_regimes()[regime], NYC)["deadlines"]
        assert d["without_delay"] and d["due"] == stamp(_t("2026-11-01T06:30:00Z"), NYC)
        assert d["due"]["local"] == "2026-11-01T01:30:00-05:00"  # the second 01:30 of that night


@pytest.mark.parametrize("text", ["soon", "24", "-3h", "1 week"])
def test_a_bad_time_limit_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_within(text)
