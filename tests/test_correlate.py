"""Correlation: linking by entities and event time; the Beam state/timer path."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from transforms.correlate import INCIDENTS, LATE, CorrelateIncidents, correlate
from transforms.detect import _seconds
from transforms.model import Evidence, Finding

GAP = 1800.0


def finding(det: str, t0: str, t1: str, stage: str, keys: tuple[str, ...], asset: str | None = None,
            severity: int = 60, dedup: str | None = None) -> Finding:
    return Finding(
        finding_id=f"{det}-{t0}", detection_id=det, title=det, severity=severity, confidence=80,
        stage=stage, techniques=("T0822",), first_seen=t0, last_seen=t1, asset_id=asset, zone=None,
        addresses=(), accounts=(), link_keys=keys,
        evidence=(Evidence("f:1", "0" * 64, t0, {}),), count=1,
        context={"dedup": dedup or f"{det}-{t0}", "window": GAP},
    )


VPN = finding("vpn", "2026-11-15T23:10:00.000000Z", "2026-11-15T23:10:00.000000Z", "access",
              ("account:zpmc-svc1", "ip:10.212.134.200"))
WRITE = finding("write", "2026-11-15T23:20:00.000000Z", "2026-11-15T23:25:00.000000Z", "command",
                ("asset:sts01-plc", "ip:10.212.134.200"), asset="sts01-plc", severity=75)
EGRESS = finding("egress", "2026-11-15T23:21:00.000000Z", "2026-11-15T23:22:00.000000Z", "access",
                 ("asset:sts04-plc", "ip:100.71.20.5"), asset="sts04-plc", severity=70)
LATER_WRITE = finding("write", "2026-11-16T05:00:00.000000Z", "2026-11-16T05:00:00.000000Z", "command",
                      ("asset:sts01-plc", "ip:10.40.0.99"), asset="sts01-plc", severity=75, dedup="other")


def test_session_and_its_writes_are_one_incident_on_the_crane() -> None:
    incidents = correlate([WRITE, EGRESS, VPN, LATER_WRITE], GAP)
    assert len(incidents) == 3
    chain = next(i for i in incidents if len(i.findings) == 2)
    assert [f.detection_id for f in chain.findings] == ["vpn", "write"]
    assert chain.primary_asset == "sts01-plc"
    assert chain.stages == ("access", "command")
    assert chain.severity == 85  # two chain stages raise the highest member by 10
    assert chain.first_seen == VPN.first_seen and chain.last_seen == WRITE.last_seen


def test_same_key_beyond_gap_is_a_new_incident() -> None:
    a = finding("write", "2026-11-15T10:00:00.000000Z", "2026-11-15T10:00:00.000000Z", "command", ("asset:x",), "x")
    b = finding("egress", "2026-11-15T10:31:00.000000Z", "2026-11-15T10:31:00.000000Z", "access", ("asset:x",), "x")
    assert len(correlate([a, b], GAP)) == 2
    c = finding("egress", "2026-11-15T10:29:00.000000Z", "2026-11-15T10:29:00.000000Z", "access", ("asset:x",), "x")
    assert len(correlate([a, c], GAP)) == 1


def test_incident_ids_do_not_depend_on_input_order() -> None:
    one = correlate([VPN, WRITE, EGRESS], GAP)
    two = correlate([EGRESS, WRITE, VPN], GAP)
    assert [i.incident_id for i in one] == [i.incident_id for i in two]


def _timestamped(f: Finding) -> beam.window.TimestampedValue:
    return beam.window.TimestampedValue(f, Timestamp.of(_seconds(f.last_seen)))


def test_timer_closes_incident_when_watermark_passes_gap() -> None:
    """Streaming semantics on BundleBasedDirectRunner: the chain closes only once the
    watermark passes its last finding + gap, and arrives as one incident."""
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    stream = (
        TestStream()
        .advance_watermark_to(Timestamp.of(_seconds(VPN.first_seen)) - 1)
        .add_elements([_timestamped(VPN)])
        .advance_watermark_to(Timestamp.of(_seconds(WRITE.first_seen)) - 1)
        .add_elements([_timestamped(WRITE), _timestamped(EGRESS)])
        .advance_watermark_to(Timestamp.of(_seconds(LATER_WRITE.first_seen)) - 1)
        .add_elements([_timestamped(LATER_WRITE)])
        .advance_watermark_to(Timestamp.of(_seconds(LATER_WRITE.last_seen) + GAP + 1))
        .advance_watermark_to_infinity()
    )
    with TestPipeline(runner="BundleBasedDirectRunner", options=options) as p:
        got = (
            p
            | stream
            | CorrelateIncidents("site", GAP)
        )[INCIDENTS] | beam.Map(lambda i: tuple(f.detection_id for f in i.findings))
        assert_that(got, equal_to([("vpn", "write"), ("egress",), ("write",)]))


def test_whole_input_closes_every_incident_in_one_firing_as_batch_groups_them() -> None:
    """Batch (``whole_input``): every finding is in before the watermark moves, so one
    timer, at the latest close, closes all incidents at once (one runner round, not one
    per incident); they are the incidents ``correlate`` makes of the same findings."""
    findings = [VPN, WRITE, EGRESS, LATER_WRITE]
    last_close = max(_seconds(f.last_seen) for f in findings) + GAP
    with TestPipeline(runner="FnApiRunner") as p:
        got = (
            p
            | beam.Create([_timestamped(f) for f in findings], reshuffle=False)
            | beam.Map(lambda tv: tv).with_output_types(Finding)
            | CorrelateIncidents("site", GAP, whole_input=True)
        )[INCIDENTS] | beam.Map(lambda i, t=beam.DoFn.TimestampParam: (i, float(t)))
        want = [(i, last_close) for i in correlate(findings, GAP)]
        assert len(want) == 3
        assert_that(got, equal_to(want))


def test_full_chain_from_real_detections_is_one_critical_incident() -> None:
    """Session outside the window → register writes from its tunnel address → out-of-limit
    parameter change through the CMS from that address (CMS names the PLC's inventory id):
    the real detections link into one access → command → impact incident, critical."""
    from detections.testing import TEST_TERMINAL, events_table
    from pipelines.config import parse_config
    from transforms.detect import Detector
    from transforms.enrich import Enricher

    cfg = parse_config(TEST_TERMINAL, "<test terminal>", ".")
    tunnel = "10.212.134.230"
    events = [
        {"time": "2026-11-15T23:10:00Z", "kind": "remote_access", "action": "vpn.login", "user": "zpmc-svc1",
         "src_ip": "203.0.113.45", "session_id": "7", "attrs": {"tunnel_ip": tunnel}},
        {"time": "2026-11-15T23:16:00Z", "kind": "ot", "action": "modbus.write_single_register",
         "src_ip": tunnel, "dst_ip": "10.30.1.10", "dst_port": 502, "target": "unit=1;addr=40010", "value_new": "9"},
        {"time": "2026-11-15T23:19:00Z", "kind": "ot", "action": "cms.parameter_change", "asset_id": "sts01-plc",
         "user": "zpmc-svc1", "src_ip": tunnel, "target": "load.limit_t", "value_old": "65", "value_new": "80"},
    ]
    detector = Detector(cfg)
    findings, keyed = detector.scan(Enricher(cfg)(events_table(events)))
    findings += detector.run_stateful(keyed)
    assert {f.detection_id for f in findings} == {
        "vendor_session_outside_window", "modbus_write_non_engineering", "cms_safety_parameter_change"}
    (incident,) = correlate(findings, GAP)
    assert incident.stages == ("access", "command", "impact")
    assert incident.severity == 95 and incident.severity_label == "critical"
    assert incident.primary_asset == "sts01-plc"


def _streaming() -> PipelineOptions:
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    return options


def test_late_finding_within_allowed_lateness_revises_the_emitted_incident() -> None:
    """The VPN session closes alone (watermark past it + gap); its writes arrive late but
    within allowed lateness: the incident is re-emitted with the same id, both findings and
    a later ``modified``."""
    stream = (
        TestStream()
        .advance_watermark_to(Timestamp.of(_seconds(VPN.first_seen)) - 1)
        .add_elements([_timestamped(VPN)])
        .advance_watermark_to(Timestamp.of(_seconds(VPN.last_seen) + GAP + 60))
        .add_elements([_timestamped(WRITE)])  # behind the watermark: late
        .advance_watermark_to_infinity()
    )
    with TestPipeline(runner="BundleBasedDirectRunner", options=_streaming()) as p:
        out = p | stream | CorrelateIncidents("site", GAP, allowed_lateness=3600.0)
        got = out[INCIDENTS] | beam.Map(lambda i: (i.incident_id, tuple(f.detection_id for f in i.findings), i.modified))
        first_id = correlate([VPN], GAP)[0].incident_id
        assert_that(got, equal_to([
            (first_id, ("vpn",), VPN.last_seen),
            (first_id, ("vpn", "write"), WRITE.last_seen),
        ]))
        assert_that(out[LATE], equal_to([]), label="no late findings")


def test_revision_keeps_the_id_when_the_late_finding_is_earlier() -> None:
    from transforms.correlate import _revise

    (emitted,) = correlate([WRITE], GAP)
    revised = _revise(emitted, VPN)  # earlier than the first finding
    assert revised.incident_id == emitted.incident_id
    assert [f.detection_id for f in revised.findings] == ["vpn", "write"]
    assert _seconds(revised.modified) > _seconds(emitted.modified)


def test_finding_beyond_allowed_lateness_goes_to_the_late_output() -> None:
    """Once the watermark is past a finding's last_seen + gap + allowed lateness it can no
    longer revise anything: it goes to ``LATE`` and makes no incident."""
    lateness = 600.0
    old = finding("write", "2026-11-15T22:55:00.000000Z", "2026-11-15T23:00:00.000000Z", "command",
                  ("asset:sts01-plc", "ip:10.212.134.200"), asset="sts01-plc", severity=75)
    stream = (
        TestStream()
        .advance_watermark_to(Timestamp.of(_seconds(VPN.first_seen)) - 1)
        .add_elements([_timestamped(VPN)])
        # past the VPN incident's close (+gap) and its GC (+gap+lateness)
        .advance_watermark_to(Timestamp.of(_seconds(VPN.last_seen) + GAP + lateness + 60))
        .add_elements([_timestamped(old)])
        .advance_watermark_to_infinity()
    )
    with TestPipeline(runner="BundleBasedDirectRunner", options=_streaming()) as p:
        out = p | stream | CorrelateIncidents("site", GAP, allowed_lateness=lateness)
        got = out[INCIDENTS] | beam.Map(lambda i: tuple(f.detection_id for f in i.findings))
        assert_that(got, equal_to([("vpn",)]))
        assert_that(out[LATE] | beam.Map(lambda f: f.finding_id), equal_to([old.finding_id]), label="late")


def test_late_finding_becomes_a_late_dead_letter() -> None:
    import json

    from transforms.export import late_dead_letter

    d = late_dead_letter(VPN)
    assert (d.source, d.location, d.late) == ("correlation", VPN.finding_id, True)
    assert json.loads(d.raw)["finding_id"] == VPN.finding_id
