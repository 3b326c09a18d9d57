"""Weekly maintenance windows: across midnight, on the day boundary, across DST, and the
messages for impossible or unquoted times."""
from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from detections.api import Inventory, TestCase
from detections.registry import load_registry
from detections.testing import TEST_TERMINAL, run_case, terminal_config
from pipelines.config import ConfigError, load_config

UTC = dt.timezone.utc


def _inventory(window: dict[str, Any]) -> Inventory:
    return Inventory(terminal_config({"maintenance_windows": [{"vendor": "zpmc", **window}]}))


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


NIGHT = {"days": ["tue"], "from": "22:00", "to": "02:00"}


@pytest.mark.parametrize("when, inside", [
    ("2026-11-17T21:59:59+00:00", False),  # Tuesday, before it opens
    ("2026-11-17T22:00:00+00:00", True),   # Tuesday 22:00: opens
    ("2026-11-17T23:59:59+00:00", True),
    ("2026-11-18T00:00:00+00:00", True),   # Wednesday 00:00: still Tuesday's window
    ("2026-11-18T01:59:59+00:00", True),
    ("2026-11-18T02:00:00+00:00", False),  # closes at 02:00
    ("2026-11-17T01:00:00+00:00", False),  # Tuesday 01:00 belongs to a Monday window (none)
    ("2026-11-18T22:30:00+00:00", False),  # Wednesday night: not a window day
])
def test_window_crossing_midnight_belongs_to_the_day_it_starts(when: str, inside: bool) -> None:
    assert _inventory(NIGHT).in_maintenance("zpmc", None, _at(when)) is inside


def test_window_until_midnight_and_same_day_windows() -> None:
    inv = _inventory({"days": ["sun"], "from": "20:00", "to": "24:00"})
    assert inv.in_maintenance("zpmc", None, _at("2026-11-22T23:59:00+00:00"))
    assert not inv.in_maintenance("zpmc", None, _at("2026-11-23T00:00:00+00:00"))
    day = _inventory({"days": ["tue", "thu"], "from": "08:00", "to": "12:00"})
    assert day.in_maintenance("zpmc", None, _at("2026-11-19T11:59:00+00:00"))
    assert not day.in_maintenance("zpmc", None, _at("2026-11-19T12:00:00+00:00"))


def test_window_keeps_local_hours_across_dst_end() -> None:
    # Europe/Amsterdam leaves summer time at 03:00 CEST on Sunday 25 Oct 2026 (01:00 UTC);
    # Saturday's 22:00-02:00 window runs 20:00-00:00 UTC that night (02:00 CEST = 00:00 UTC).
    inv = _inventory({"days": ["sat"], "from": "22:00", "to": "02:00", "timezone": "Europe/Amsterdam"})
    assert not inv.in_maintenance("zpmc", None, _at("2026-10-24T19:59:00+00:00"))
    assert inv.in_maintenance("zpmc", None, _at("2026-10-24T20:00:00+00:00"))  # 22:00 CEST
    assert inv.in_maintenance("zpmc", None, _at("2026-10-24T23:59:00+00:00"))  # 01:59 CEST, Sunday
    assert not inv.in_maintenance("zpmc", None, _at("2026-10-25T00:30:00+00:00"))  # 02:30 CEST
    # a week later, in winter time, the same local hours are an hour later in UTC
    assert not inv.in_maintenance("zpmc", None, _at("2026-10-31T20:30:00+00:00"))  # 21:30 CET
    assert inv.in_maintenance("zpmc", None, _at("2026-11-01T00:59:00+00:00"))  # 01:59 CET, Sunday


def test_window_across_dst_start() -> None:
    # Saturday 28 March 2026 22:00 CET to Sunday 02:00: clocks jump from 02:00 CET to 03:00
    # CEST at 01:00 UTC, so the window is 21:00-01:00 UTC.
    inv = _inventory({"days": ["sat"], "from": "22:00", "to": "02:00", "timezone": "Europe/Amsterdam"})
    assert inv.in_maintenance("zpmc", None, _at("2026-03-28T21:00:00+00:00"))
    assert inv.in_maintenance("zpmc", None, _at("2026-03-29T00:59:00+00:00"))
    assert not inv.in_maintenance("zpmc", None, _at("2026-03-29T01:00:00+00:00"))


def test_night_vendor_work_inside_a_cross_midnight_window_raises_no_finding() -> None:
    det = load_registry()["vendor_session_outside_window"]
    login = {"kind": "remote_access", "action": "vpn.login", "result": "success", "user": "zpmc-svc1",
             "vendor": "zpmc", "src_ip": "203.0.113.7"}
    cfg = {"maintenance_windows": [{"vendor": "zpmc", "days": ["tue"], "from": "22:00", "to": "02:00"}]}
    inside = TestCase("night work", ({**login, "time": "2026-11-18T01:15:00Z"},), 0, cfg)
    outside = TestCase("late", ({**login, "time": "2026-11-18T02:15:00Z"},), 1, cfg)
    assert len(run_case(det, inside)) == 0
    assert len(run_case(det, outside)) == 1


def _window_errors(tmp_path: Path, text: str) -> list[str]:
    data = copy.deepcopy(TEST_TERMINAL)
    data.pop("maintenance_windows")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False) + "maintenance_windows:\n" + text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return [line.removeprefix(f"{path}: ") for line in err.value.errors]


def test_impossible_time_is_rejected(tmp_path: Path) -> None:
    assert _window_errors(tmp_path, '  - {vendor: zpmc, days: [tue], from: "25:00", to: "02:00"}\n') == [
        "maintenance_windows[0].from: expected a time of day \"HH:MM\" from \"00:00\" to \"23:59\", got '25:00'"]


def test_unquoted_time_says_to_quote_it(tmp_path: Path) -> None:
    # YAML 1.1 reads an unquoted 10:00 as the base-60 integer 600 (08:00, with its leading
    # zero, stays text)
    assert _window_errors(tmp_path, "  - {vendor: zpmc, days: [tue], from: 08:00, to: 10:00}\n") == [
        'maintenance_windows[0].to: expected a time of day in quotes such as "10:00" (YAML reads an '
        "unquoted 10:00 as the number 600; quote it), got 600"]


def test_empty_window_and_unknown_zone_are_rejected(tmp_path: Path) -> None:
    errors = _window_errors(tmp_path, '  - {vendor: zpmc, days: [tue], from: "08:00", to: "08:00"}\n'
                                      '  - {vendor: zpmc, days: [tue], from: "08:00", to: "09:00", timezone: Mars/Olympus}\n')
    assert errors[0].startswith("maintenance_windows[0]: expected from before 24:00 and to different from from")
    assert errors[1] == ("maintenance_windows[1].timezone: expected an IANA timezone such as UTC or "
                         "Europe/Amsterdam, got 'Mars/Olympus'")
