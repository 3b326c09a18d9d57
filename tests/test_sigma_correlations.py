"""Sigma correlation rules in event time: each correlation type, group-by and aliases,
the timespan boundary (inclusive), out-of-order input, and late events on a TestStream
(within the allowed lateness they still meet their window; a finding later than that is
the correlation stage's to dead-letter, tests/test_correlate.py). A key's state expires
once its own event time passes the window plus the allowed lateness."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import apache_beam as beam
import pytest
import yaml
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from detections.testing import events_table, terminal_config
from transforms.detect import DetectFindings, Detector
from transforms.enrich import Enricher
from transforms.stream_detect import StreamingStatefulFn

CMS = {"product": "cranewatch", "service": "cms"}
LOGIN = {"title": "CMS login", "name": "cms_login", "logsource": CMS,
         "detection": {"sel": {"event_type": "cms.login"}, "condition": "sel"}}
CHANGE = {"title": "CMS parameter change", "name": "cms_change", "logsource": CMS,
          "detection": {"sel": {"event_type": "cms.parameter_change"}, "condition": "sel"}}
CONN = {"title": "Modbus connection", "name": "modbus_conn", "logsource": {"product": "zeek", "service": "conn"},
        "detection": {"sel": {"id.resp_p": 502}, "condition": "sel"}}


def corr(type_: str, rules: list[str], condition=None, group_by=("user",), timespan="5m", **more) -> dict:
    c = {"type": type_, "rules": rules, "group-by": list(group_by), "timespan": timespan, **more}
    if condition is not None:
        c["condition"] = condition
    return {"title": f"{type_} correlation", "id": "5e5e5e5e-0000-4000-8000-00000000000" + str(len(type_) % 10),
            "level": "high", "tags": ["attack.t0859"], "correlation": c}


def config(tmp_path: Path, *docs: dict, **sigma):
    (tmp_path / "rules.yml").write_text(yaml.safe_dump_all(list(docs), sort_keys=False))
    return terminal_config({"sigma": {"rules": [str(tmp_path / "rules.yml")], **sigma},
                            "correlation": {"allowed_lateness": "10m"}})


def cms(minute: float, event_type: str = "login", user: str = "bob", **kw) -> dict:
    t = dt.datetime(2026, 11, 15, 10, 0, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=minute)
    return {"time": t.isoformat(), "kind": "ot", "format": "cms_events", "action": f"cms.{event_type}",
            "user": user, "raw_ref": f"cms:{minute}:{user}:{event_type}", **kw}


def conn(minute: float, src: str, **kw) -> dict:
    t = dt.datetime(2026, 11, 15, 10, 0, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=minute)
    return {"time": t.isoformat(), "kind": "flow", "format": "zeek_conn", "src_ip": src, "dst_ip": "10.30.1.10",
            "dst_port": 502, "raw_ref": f"conn:{minute}:{src}"}


def run(cfg, events) -> list:
    detector = Detector(cfg)
    findings, keyed = detector.scan(Enricher(cfg)(events_table(events)))
    return findings + detector.run_stateful(keyed)


def counts(findings) -> list[tuple[str, int]]:
    return sorted((f.accounts[0] if f.accounts else f.addresses[0], f.count) for f in findings)


def test_event_count_fires_once_the_count_is_met_within_the_timespan(tmp_path: Path) -> None:
    cfg = config(tmp_path, LOGIN, corr("event_count", ["cms_login"], {"gte": 3}))
    assert counts(run(cfg, [cms(0), cms(1), cms(2), cms(0, user="eve"), cms(4, user="eve")])) == [("bob", 3)]
    # Boundary: the window is inclusive, an event exactly 5 minutes after the first is in.
    assert counts(run(cfg, [cms(0), cms(2.5), cms(5)])) == [("bob", 3)]
    assert run(cfg, [cms(0), cms(2.5), cms(5 + 1 / 60)]) == []
    # Out of order input: the same finding.
    (f,) = run(cfg, [cms(2), cms(0), cms(1), cms(3)])
    assert f.count == 4 and f.first_seen.startswith("2026-11-15T10:00") and f.detection_id.startswith("sigma:")
    assert f.context["sigma"]["correlation"] == "event_count" and f.techniques == ("T0859",)


def test_generate_false_hides_the_referenced_rules_findings(tmp_path: Path) -> None:
    cfg = config(tmp_path, LOGIN, corr("event_count", ["cms_login"], {"gte": 9}))
    assert run(cfg, [cms(0)]) == []
    cfg = config(tmp_path, LOGIN, corr("event_count", ["cms_login"], {"gte": 9}, generate=True))
    (f,) = run(cfg, [cms(0)])
    assert f.title == "CMS login"


def test_value_count_counts_distinct_values_of_the_field(tmp_path: Path) -> None:
    cfg = config(tmp_path, LOGIN, corr("value_count", ["cms_login"], {"gte": 3, "field": "source_ip"}))
    same = [cms(i, src_ip="10.40.0.20") for i in range(4)]
    assert run(cfg, same) == []
    spread = [cms(i, src_ip=f"10.40.0.{20 + i}") for i in range(3)]
    assert counts(run(cfg, spread)) == [("bob", 3)]


@pytest.mark.parametrize("type_, condition, values, fires", [
    ("value_sum", {"gte": 100, "field": "new_value"}, ["60", "50"], True),
    ("value_sum", {"gte": 100, "field": "new_value"}, ["60", "30"], False),
    ("value_avg", {"gt": 40, "field": "new_value"}, ["60", "30"], True),
    ("value_median", {"gte": 50, "field": "new_value"}, ["10", "60", "70"], True),
    ("value_percentile", {"gte": 55, "field": "new_value", "percentile": 90}, ["10", "20", "70"], True),
    ("value_percentile", {"gte": 55, "field": "new_value", "percentile": 10}, ["10", "20", "70"], False),
    ("value_avg", {"gte": 50, "field": "new_value"}, ["10", "20", "70"], False),  # the trailing window's mean
])
def test_value_metrics(tmp_path: Path, type_, condition, values, fires) -> None:
    cfg = config(tmp_path, CHANGE, corr(type_, ["cms_change"], condition))
    events = [cms(i, "parameter_change", value_new=v) for i, v in enumerate(values)]
    assert bool(run(cfg, events)) == fires


def test_lt_is_judged_when_the_window_closes_and_only_where_the_input_reaches(tmp_path: Path) -> None:
    cfg = config(tmp_path, LOGIN, CHANGE, corr("event_count", ["cms_login", "cms_change"], {"lt": 2}))
    later = cms(30, user="someone-else")  # the input goes on past bob's window
    (f,) = [f for f in run(cfg, [cms(0), later]) if "bob" in f.accounts]
    assert f.count == 1
    assert [f for f in run(cfg, [cms(0), cms(3, "parameter_change"), later]) if "bob" in f.accounts] == []
    assert run(cfg, [cms(0)]) == []  # the input ends inside the window: no judgement yet


def test_temporal_any_order_within_the_timespan(tmp_path: Path) -> None:
    cfg = config(tmp_path, LOGIN, CHANGE, corr("temporal", ["cms_login", "cms_change"]))
    assert counts(run(cfg, [cms(3, "parameter_change"), cms(0)])) == [("bob", 2)]
    assert run(cfg, [cms(0), cms(6, "parameter_change")]) == []
    assert run(cfg, [cms(0), cms(1, "parameter_change", user="eve")]) == []  # other group


def test_temporal_extended_condition_with_not_waits_for_the_close(tmp_path: Path) -> None:
    rule = corr("temporal", None, None)
    rule["correlation"].pop("rules")
    rule["correlation"]["condition"] = "cms_login and not cms_change"
    cfg = config(tmp_path, LOGIN, CHANGE, rule)
    end = cms(20, user="x")
    assert counts(f for f in run(cfg, [cms(0), end]) if "bob" in f.accounts) == [("bob", 1)]
    assert [f for f in run(cfg, [cms(0), cms(2, "parameter_change"), end]) if "bob" in f.accounts] == []


def test_temporal_ordered_joins_log_sources_through_aliases(tmp_path: Path) -> None:
    rule = corr("temporal_ordered", ["cms_login", "modbus_conn"], group_by=["ip"], timespan="10m",
                aliases={"ip": {"cms_login": "source_ip", "modbus_conn": "id.orig_h"}})
    cfg = config(tmp_path, LOGIN, CONN, rule)
    login, write = cms(0, src_ip="10.212.134.200"), conn(4, "10.212.134.200")
    (f,) = run(cfg, [write, login])  # out of order input: event time decides
    assert f.count == 2 and set(f.addresses) >= {"10.212.134.200"}
    assert run(cfg, [cms(5, src_ip="10.212.134.200"), conn(4, "10.212.134.200")]) == []  # wrong order
    assert run(cfg, [login, conn(4, "10.212.134.201")]) == []  # another address
    assert run(cfg, [login, conn(10, "10.212.134.200")]) != []  # exactly the timespan: in
    assert run(cfg, [login, conn(10.02, "10.212.134.200")]) == []  # just past it


def test_state_expires_past_the_window_and_the_lateness(tmp_path: Path) -> None:
    from detections.api import KeyState

    rule = corr("temporal_ordered", ["cms_login", "modbus_conn"], group_by=["ip"], timespan="10m",
                aliases={"ip": {"cms_login": "source_ip", "modbus_conn": "id.orig_h"}})
    cfg = config(tmp_path, LOGIN, CONN, rule)
    detector = Detector(cfg)
    _, keyed = detector.scan(Enricher(cfg)(events_table([cms(0, src_ip="10.212.134.200")])))
    (key, login), = keyed
    state = KeyState()
    assert detector.advance(key, state, [login], None) == [] and state.data == {} and state.timer is None
    state = KeyState()
    detector.advance(key, state, [login], until=_ts(19.9).micros / 1e6)
    assert state.data["rows"] and state.timer == pytest.approx(_ts(20).micros / 1e6, abs=0.01)
    _, later = detector.scan(Enricher(cfg)(events_table([conn(21, "10.212.134.200")])))
    assert detector.advance(key, state, [later[0][1]], None) == []  # the login expired at 10 + 10 min


def _ts(minute: float) -> Timestamp:
    return Timestamp.of(dt.datetime(2026, 11, 15, 10, 0, tzinfo=dt.timezone.utc).timestamp() + minute * 60)


def _stream(cfg, steps, stateful) -> list:
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    stream = TestStream()
    for watermark, events in steps:
        stream = stream.advance_watermark_to(_ts(watermark)).add_elements([events_table(events)])
    # The input's watermark passes every event before the end, as a running stream's does.
    stream = stream.advance_watermark_to(_ts(120)).advance_watermark_to_infinity()
    return stream, options, stateful


@pytest.mark.parametrize("streaming_stage", [False, True])
def test_teststream_late_events_meet_their_window_within_the_lateness(tmp_path: Path, streaming_stage) -> None:
    rule = corr("temporal_ordered", ["cms_login", "modbus_conn"], group_by=["ip"], timespan="10m",
                aliases={"ip": {"cms_login": "source_ip", "modbus_conn": "id.orig_h"}})
    cfg = config(tmp_path, LOGIN, CONN, rule)
    login, write = cms(0, src_ip="10.212.134.200"), conn(4, "10.212.134.200")
    expected = [(f.detection_id, f.count) for f in run(cfg, [login, write])]
    assert len(expected) == 1
    cases = [
        ([(-1, [login]), (1, [write])], expected),  # in order
        ([(-1, [write]), (5, [login])], expected),  # the login arrives after the write, late
        ([(-1, [login]), (15, [write])], expected),  # the write late, within the 10 m allowed lateness
    ]
    for steps, want in cases:
        stream, options, _ = _stream(cfg, steps, None)
        stage = StreamingStatefulFn(cfg) if streaming_stage else None
        with TestPipeline(runner="BundleBasedDirectRunner", options=options) as p:
            got = p | stream | DetectFindings(cfg, stage) | beam.Map(lambda f: (f.detection_id, f.count))
            assert_that(got, equal_to(want))


def test_batch_pipeline_agrees_with_the_runner(tmp_path: Path) -> None:
    cfg = config(tmp_path, LOGIN, corr("event_count", ["cms_login"], {"gte": 3}))
    events = [cms(0), cms(1), cms(2), cms(3, user="eve")]
    expected = [(f.detection_id, f.count) for f in run(cfg, events)]
    with TestPipeline(runner="FnApiRunner") as p:
        got = (p | beam.Create([events_table(events[2:]), events_table(events[:2])], reshuffle=False)
               | DetectFindings(cfg) | beam.Map(lambda f: (f.detection_id, f.count)))
        assert_that(got, equal_to(expected))


def test_correlation_problems_are_config_errors(tmp_path: Path) -> None:
    from pipelines.config import ConfigError

    nested = corr("event_count", ["inner"], {"gte": 1})
    inner = corr("event_count", ["cms_login"], {"gte": 2})
    inner["name"], inner["id"] = "inner", "6e6e6e6e-0000-4000-8000-000000000001"
    with pytest.raises(ConfigError, match=r"sigma.rules: .*rules.yml: event_count correlation: not supported: "
                                          r"rule 'inner' is a correlation"):
        config(tmp_path, LOGIN, inner, nested)


def test_detection_settings_apply_to_sigma_rules(tmp_path: Path) -> None:
    from pipelines.config import ConfigError

    rule = corr("event_count", ["cms_login"], {"gte": 2})
    cfg = config(tmp_path, LOGIN, rule)
    det_id = "sigma:" + rule["id"]
    assert run(cfg, [cms(0), cms(1)]) != []
    off = terminal_config({"sigma": {"rules": [str(tmp_path / "rules.yml")]}, "detections": {det_id: {"enabled": False}}})
    assert run(off, [cms(0), cms(1)]) == []
    with pytest.raises(ConfigError, match="expected a known detection id"):
        terminal_config({"sigma": {"rules": [str(tmp_path / "rules.yml")]}, "detections": {"sigma:nope": {}}})


def test_correlation_of_a_keyword_rule(tmp_path: Path) -> None:
    # Keywords search the raw record text, which candidates kept in state no longer carry.
    kw = {"title": "hoist keyword", "name": "hoist_kw", "logsource": CMS,
          "detection": {"keywords": ["hoist.max"], "condition": "keywords"}}
    cfg = config(tmp_path, kw, corr("event_count", ["hoist_kw"], {"gte": 2}))
    hoist = [cms(i, "parameter_change", target="hoist.max_load_t") for i in range(2)]
    assert counts(run(cfg, hoist)) == [("bob", 2)]
    assert run(cfg, [hoist[0], cms(1, "parameter_change", target="trolley.speed")]) == []
