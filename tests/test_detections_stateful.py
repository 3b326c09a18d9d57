"""The stateful detection shape: keyed state and event-time timers, run by the same code in
the YAML test runner and in the Beam pipeline (batch on FnApiRunner, streaming with
TestStream), with the same findings."""
from __future__ import annotations

import datetime as dt

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from detections.api import KeyState
from detections.registry import load_registry
from detections.testing import case_config, events_table, run_case
from transforms.detect import DetectFindings, Detector, first_per_distinct
from transforms.enrich import Enricher

BRUTE = "vpn_failed_logins_then_success"


def _case(det_id: str, name_part: str):
    det = load_registry()[det_id]
    return det, next(c for c in det.meta.tests if name_part in c.name)


def _summary(findings) -> list[tuple[str, int, str]]:
    return sorted((f.detection_id, f.count, f.first_seen) for f in findings)


def test_batch_pipeline_gives_the_test_runner_findings() -> None:
    det, case = _case(BRUTE, "six failures")
    expected = [(f.detection_id, f.count, f.first_seen) for f in run_case(det, case)]
    assert len(expected) == 1
    cfg = case_config(case)
    events = list(case.events)
    batches = [events_table(events[4:]), events_table(events[:4])]  # later half first
    with TestPipeline(runner="FnApiRunner") as p:
        got = (
            p
            | beam.Create(batches, reshuffle=False)
            | DetectFindings(cfg)
            | beam.Filter(lambda f: f.detection_id == BRUTE)
            | beam.Map(lambda f: (f.detection_id, f.count, f.first_seen))
        )
        assert_that(got, equal_to(expected))


def _ts(text: str) -> Timestamp:
    return Timestamp.of(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def test_streaming_state_survives_between_batches_and_fires_once() -> None:
    """Failures in one batch, the watermark moves on, the success arrives later: the
    per-account state carries the failures across timer firings."""
    det, case = _case(BRUTE, "six failures")
    cfg = case_config(case)
    events = list(case.events)
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    stream = (
        TestStream()
        .advance_watermark_to(_ts("2026-11-17T01:59:00Z"))
        .add_elements([events_table(events[:6])])
        .advance_watermark_to(_ts("2026-11-17T02:02:00Z"))
        .add_elements([events_table(events[6:])])
        .advance_watermark_to(_ts("2026-11-17T03:00:00Z"))
        .advance_watermark_to_infinity()
    )
    with TestPipeline(runner="BundleBasedDirectRunner", options=options) as p:
        got = (
            p
            | stream
            | DetectFindings(cfg)
            | beam.Filter(lambda f: f.detection_id == BRUTE)
            | beam.Map(lambda f: (f.count, f.accounts))
        )
        assert_that(got, equal_to([(6, ("zpmc-svc2",))]))


def test_timer_expires_old_failures() -> None:
    det, case = _case(BRUTE, "expired")
    cfg = case_config(case)
    detector = Detector(cfg, {det.meta.id: det})
    _, keyed = detector.scan(Enricher(cfg)(events_table(case.events)))
    (key,) = {k for k, _ in keyed}
    state = KeyState()
    failures = [e for _, e in keyed if e["action"] == "auth.failure"]
    assert detector.advance(key, state, failures, until=failures[-1]["time"].timestamp()) == []
    assert len(state.data["failures"]) == 5 and state.timer is not None
    # The watermark passes the timer: the failures are forgotten.
    assert detector.advance(key, state, [], until=state.timer) == []
    assert state.data == {} and state.timer is None


def test_first_per_distinct_keeps_the_earliest_row_of_each_pair() -> None:
    det, case = _case("modbus_new_master", "flagged once")
    table = events_table(list(reversed(case.events)))
    out = first_per_distinct(table, ("src_ip", "dst_ip"))
    rows = sorted((r["src_ip"], r["time"].isoformat()) for r in out.to_pylist())
    assert rows == [("10.30.1.20", "2026-11-17T00:00:00+00:00"), ("10.30.1.77", "2026-11-17T02:00:00+00:00")]
    assert first_per_distinct(table.slice(0, 0), ("src_ip", "dst_ip")).num_rows == 0


def test_allowlisted_account_never_reaches_state() -> None:
    det, case = _case(BRUTE, "six failures")
    cfg = case_config(case.__class__(case.name, case.events, case.expect,
                                     {"detections": {BRUTE: {"allowlist": {"accounts": ["zpmc-svc2"]}}}}))
    detector = Detector(cfg, {det.meta.id: det})
    findings, keyed = detector.scan(Enricher(cfg)(events_table(case.events)))
    assert findings == [] and keyed == []


def test_many_logical_keys_share_one_state_cell() -> None:
    """Two accounts, each guessed then logged in, plus a PLC gaining a new master: the
    Beam stage (one state cell per detection) finds what the test runner finds."""
    det, case = _case(BRUTE, "six failures")
    other = [{**e, "user": "zpmc-eng1", "src_ip": "203.0.113.51"} for e in case.events]
    _, master_case = _case("modbus_new_master", "flagged once")
    events = list(case.events) + other + list(master_case.events)
    cfg = case_config(case)
    detector = Detector(cfg)
    findings, keyed = detector.scan(Enricher(cfg)(events_table(events)))
    expected = sorted((f.detection_id, f.count, f.first_seen) for f in findings + detector.run_stateful(keyed))
    assert [e[0] for e in expected].count(BRUTE) == 2 and any(e[0] == "modbus_new_master" for e in expected)
    batches = [events_table(events[i::3]) for i in range(3)]
    with TestPipeline(runner="FnApiRunner") as p:
        got = (
            p
            | beam.Create(batches, reshuffle=False)
            | DetectFindings(cfg)
            | beam.Map(lambda f: (f.detection_id, f.count, f.first_seen))
        )
        assert_that(got, equal_to(expected))
