"""When a spool source counts as idle and where its watermark goes (``transforms/spool.py``).

A sparse source (S7comm logs only when an engineer connects) must not hold the job's
watermark until its next file: after ``idle_timeout`` without a new file it follows the
stream's own clock, the newest record time any source has read. Measured on that clock, a
replay goes idle at the same record times as the live feed, however fast it is replayed.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace

from transforms.spool import SpoolRestriction, SpoolSource, _write_watermark, stream_clock
from transforms.spool import idle_target as _idle_target


def idle_target(spec: SpoolSource, r: SpoolRestriction, now: float, clock):
    return _idle_target(spec.idle_timeout, spec.out_of_orderness, r.last_new, r.clock_new, now, clock)

T0 = 1_794_873_600.0  # 2026-11-17 00:00 UTC: a replayed day, long before the wall clock


def _spec(tmp_path, name: str = "zeek-s7comm", idle: float = 900.0) -> SpoolSource:
    return SpoolSource(name, "zeek_s7comm", str(tmp_path / name), str(tmp_path / "_stream"),
                       out_of_orderness=300.0, idle_timeout=idle)


def test_stream_clock_is_the_newest_record_any_source_has_read(tmp_path) -> None:
    state = tmp_path / "_stream"
    assert stream_clock(str(state), time.time()) is None  # nothing read yet
    _write_watermark(_spec(tmp_path, "zeek-conn"), None, T0 + 3600, False, False)
    _write_watermark(_spec(tmp_path, "zeek-s7comm"), None, T0 + 60, False, False)
    _write_watermark(_spec(tmp_path, "cms"), None, float("-inf"), False, False)  # no record yet
    # a Kafka source's file has the same shape; a writer's temporary file is not read
    (state / "watermark" / "fortigate.json").write_text(json.dumps({"watermark": None, "newest_record": T0 + 7200}))
    (state / "watermark" / "dns.json.123.4.tmp").write_text(json.dumps({"newest_record": T0 + 99999}))
    assert stream_clock(str(state), time.time()) == T0 + 7200
    # never past the wall clock: one device clock in the future must not make the rest late
    assert stream_clock(str(state), T0 + 100) == T0 + 100


def test_a_source_without_a_new_file_for_idle_timeout_of_stream_time_follows_the_stream(tmp_path) -> None:
    spec = _spec(tmp_path)
    now = time.time()
    r = replace(SpoolRestriction(newest=T0 + 60, last_new=now), clock_new=T0 + 60)
    assert idle_target(spec, r, now, T0 + 60 + 899) is None  # not idle yet
    assert idle_target(spec, r, now, T0 + 60 + 900) == T0 + 60 + 900 - 300  # stream clock − bound
    assert idle_target(spec, replace(r, clock_new=None), now, T0 + 99999) is None  # no clock seen yet
    assert idle_target(replace(spec, idle_timeout=0), r, now, T0 + 99999) is None  # 0: off


def test_a_quiet_stream_still_goes_idle_on_the_wall_clock(tmp_path) -> None:
    spec = _spec(tmp_path)
    now = time.time()
    r = replace(SpoolRestriction(newest=T0, last_new=now - 901), clock_new=T0)
    assert idle_target(spec, r, now, T0) == now - 300  # every source quiet: wall clock − bound


def test_spool_stage_watermark_is_the_minimum_over_the_jobs_sources_of_this_run(tmp_path) -> None:
    """Each spool source reports the minimum over the job's spool sources (Prism takes a
    stage's watermark from the bundle it finished last): held while one has none yet, an
    earlier run's file ignored, +inf once every source has ended."""
    import math

    from apache_beam.utils.timestamp import MAX_TIMESTAMP, Timestamp

    from transforms.spool import RUN_STARTED, stage_watermark, watermark_path

    state = str(tmp_path / "_stream")
    names = ["zeek-conn", "zeek-s7comm"]
    assert stage_watermark(state, names) is None  # nothing polled yet
    _write_watermark(_spec(tmp_path, "zeek-conn"), Timestamp.of(T0 + 3000), T0 + 3300, False, False)
    assert stage_watermark(state, names) is None  # S7comm has not reported
    _write_watermark(_spec(tmp_path, "zeek-s7comm"), None, float("-inf"), False, False)
    assert stage_watermark(state, names) is None  # polled, nothing read: it holds the job
    _write_watermark(_spec(tmp_path, "zeek-s7comm"), Timestamp.of(T0 + 60), T0 + 360, False, False)
    assert stage_watermark(state, names) == T0 + 60
    assert stage_watermark(state, ["zeek-conn"]) == T0 + 3000
    path = watermark_path(state, "zeek-s7comm")  # an earlier run's file is no reading of this one
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({**data, "at": RUN_STARTED - 60}, fh)
    assert stage_watermark(state, names) is None
    for name in names:
        _write_watermark(_spec(tmp_path, name), MAX_TIMESTAMP, T0 + 3300, False, True)
    assert stage_watermark(state, names) == math.inf
