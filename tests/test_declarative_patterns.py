"""Declarative sequences, absences and thresholds in a detection's YAML (no Python): the
test runner path, the Beam batch pipeline and a TestStream give the same findings; an
absence fires only where the input covers its deadline."""
from __future__ import annotations

import datetime as dt
import types
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from detections.registry import DetectionError, _from_module
from detections.testing import events_table, terminal_config
from transforms import detect
from transforms.detect import DetectFindings, Detector
from transforms.enrich import Enricher

HEAD = """title: {title}
description: test pattern
severity: 70
stage: {stage}
techniques: [T0886]
kinds: [remote_access, ot, flow]
"""
SEQUENCE = """id: login_then_write
where:
  any:
    - {action: vpn.login}
    - {action: {prefix: modbus.write_}}
sequence:
  first: {where: {action: vpn.login, result: success}, key: attrs.tunnel_ip}
  then: {where: {action: {prefix: modbus.write_}}, key: src_ip}
  within: $within
params:
  within: 10m
"""
ABSENCE = """id: login_without_logout
where:
  action: {in: [vpn.login, vpn.logout]}
absence:
  first: {where: {action: vpn.login}, key: user}
  then: {where: {action: vpn.logout}, key: user}
  within: 1h
"""


def _detection(tmp_path: Path, text: str, title: str = "t", stage: str = "command"):
    name = text.split("\n", 1)[0].split(": ", 1)[1]
    yml = tmp_path / f"{name}.yml"
    yml.write_text(text + HEAD.format(title=title, stage=stage))
    module = types.ModuleType(name)
    module.__file__ = str(tmp_path / f"{name}.py")
    return _from_module(module)


def _e(t: str, action: str, **kw):
    base = {"time": f"2026-11-15T{t}:00Z", "kind": "ot" if action.startswith("modbus") else "remote_access",
            "action": action}
    return {**base, **kw}


LOGIN = _e("23:00", "vpn.login", user="zpmc-svc1", src_ip="203.0.113.10", result="success",
           attrs={"tunnel_ip": "10.212.134.200"})
WRITE = _e("23:05", "modbus.write_single_register", src_ip="10.212.134.200", src_port=50000,
           dst_ip="10.30.1.10", dst_port=502)


def _run(det, events) -> list:
    cfg = terminal_config({})
    detector = Detector(cfg, {det.meta.id: det})
    findings, keyed = detector.scan(Enricher(cfg)(events_table(events)))
    return findings + detector.run_stateful(keyed)


def test_sequence_a_then_b_within_t_joined_on_fields(tmp_path: Path) -> None:
    det = _detection(tmp_path, SEQUENCE)
    (f,) = _run(det, [WRITE, LOGIN])  # input order does not matter: event time does
    assert f.count == 2 and {e.fields["action"] for e in f.evidence} == {"vpn.login", "modbus.write_single_register"}
    assert _run(det, [LOGIN, dict(WRITE, time="2026-11-15T23:11:00Z")]) == []  # later than within
    assert _run(det, [dict(LOGIN, time="2026-11-15T23:06:00Z"), WRITE]) == []  # B before A
    assert _run(det, [LOGIN, dict(WRITE, src_ip="10.212.134.201")]) == []  # keys do not join


def test_absence_fires_only_where_the_input_covers_the_deadline(tmp_path: Path) -> None:
    det = _detection(tmp_path, ABSENCE, stage="access")
    closed = [_e("00:00", "vpn.login", user="u1"), _e("00:30", "vpn.logout", user="u1")]
    left_open = _e("00:10", "vpn.login", user="u2")
    later = {"time": "2026-11-15T02:00:00Z", "kind": "flow", "src_ip": "10.40.0.5", "dst_ip": "10.40.0.1"}
    (f,) = _run(det, [*closed, left_open, later])
    assert f.accounts == ("u2",) and f.first_seen.startswith("2026-11-15T00:10")
    # The same input ending before u2's deadline (00:10 + 1 h): no evidence of absence yet.
    assert _run(det, [*closed, left_open]) == []


def test_pattern_blocks_are_checked_at_load(tmp_path: Path) -> None:
    bad = SEQUENCE.replace("within: $within", "within: soon")
    with pytest.raises(DetectionError, match=r"sequence.within: expected a positive duration"):
        _detection(tmp_path, bad)
    bad = ABSENCE.replace("vpn.logout}, key: user}", "vpn.logout}, kee: user}")
    with pytest.raises(DetectionError, match=r"absence.then"):
        _detection(tmp_path, bad)
    with pytest.raises(DetectionError, match=r"threshold.group: expected a non-empty list"):
        _detection(tmp_path, "id: th\nwhere: {}\nthreshold: {group: src_ip, window: 5m, count: 3}\n")


def _ts(text: str) -> Timestamp:
    return Timestamp.of(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


@pytest.fixture
def registry_with(monkeypatch):
    """Run the Beam stages with the given detections as the registry."""
    def use(*dets):
        monkeypatch.setattr(detect, "load_registry", lambda: {d.meta.id: d for d in dets})
    return use


def test_batch_pipeline_and_teststream_agree_with_the_runner(tmp_path: Path, registry_with) -> None:
    seq = _detection(tmp_path, SEQUENCE)
    absence = _detection(tmp_path, ABSENCE, stage="access")
    registry_with(seq, absence)
    events = [LOGIN, WRITE, _e("23:10", "vpn.login", user="u2"),
              {"time": "2026-11-16T01:00:00Z", "kind": "flow", "src_ip": "10.40.0.5", "dst_ip": "10.40.0.1"}]
    expected = sorted((f.detection_id, f.count) for f in _run(seq, events) + _run(absence, events))
    assert expected == [("login_then_write", 2), ("login_without_logout", 1), ("login_without_logout", 1)]
    cfg = terminal_config({})
    with TestPipeline(runner="FnApiRunner") as p:
        got = (p | beam.Create([events_table(events[2:]), events_table(events[:2])], reshuffle=False)
               | DetectFindings(cfg) | beam.Map(lambda f: (f.detection_id, f.count)))
        assert_that(got, equal_to(expected))
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    stream = (TestStream()
              .advance_watermark_to(_ts("2026-11-15T22:59:00Z"))
              .add_elements([events_table(events[:1])])
              .advance_watermark_to(_ts("2026-11-15T23:04:00Z"))
              .add_elements([events_table(events[1:3])])
              .advance_watermark_to(_ts("2026-11-16T00:30:00Z"))
              .add_elements([events_table(events[3:])])
              .advance_watermark_to_infinity())
    with TestPipeline(runner="BundleBasedDirectRunner", options=options) as p:
        got = p | stream | DetectFindings(cfg) | beam.Map(lambda f: (f.detection_id, f.count))
        assert_that(got, equal_to(expected))


def test_teststream_without_coverage_raises_no_absence(tmp_path: Path, registry_with) -> None:
    absence = _detection(tmp_path, ABSENCE, stage="access")
    registry_with(absence)
    cfg = terminal_config({})
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    stream = (TestStream()
              .advance_watermark_to(_ts("2026-11-15T23:00:00Z"))
              .add_elements([events_table([_e("23:10", "vpn.login", user="u2")])])
              .advance_watermark_to_infinity())
    with TestPipeline(runner="BundleBasedDirectRunner", options=options) as p:
        got = p | stream | DetectFindings(cfg) | beam.Map(lambda f: f.detection_id)
        assert_that(got, equal_to([]))
