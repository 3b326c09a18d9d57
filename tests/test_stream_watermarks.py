"""Streaming correlation, deterministically: TestStream watermarks on BundleBasedDirectRunner
(in process, no ports). ``CorrelateIncidents`` keys findings with a Map before its stateful
DoFn (the workaround STREAMING.md records for TestStream feeding state directly)."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from test_correlate import EGRESS, GAP, VPN, WRITE, _timestamped, finding
from transforms.correlate import EARLY, INCIDENTS, LATE, WITHDRAWN, CorrelateIncidents, correlate
from transforms.detect import _seconds


def _streaming() -> PipelineOptions:
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    return options


def _at(ts: str, plus: float = 0.0) -> Timestamp:
    return Timestamp.of(_seconds(ts) + plus)


def test_early_version_before_the_watermark_closes_the_incident() -> None:
    """The VPN finding is alerted at once (early, open), again when the writes join, and the
    incident leaves final once the watermark passes its last finding + gap + slack."""
    stream = (
        TestStream()
        .advance_watermark_to(_at(VPN.first_seen, -1))
        .add_elements([_timestamped(VPN)])
        .add_elements([_timestamped(WRITE)])
        .advance_watermark_to(_at(WRITE.last_seen, GAP))  # not closed: 5 s of slack left
        .add_elements([_timestamped(EGRESS)])
        .advance_watermark_to(_at(WRITE.last_seen, GAP + 10))
        .advance_watermark_to_infinity()
    )
    with TestPipeline(runner="BundleBasedDirectRunner", options=_streaming()) as p:
        out = p | stream | CorrelateIncidents("site", GAP, early=True, close_slack=5.0)
        members = lambda i: tuple(f.detection_id for f in i.findings)  # noqa: E731
        assert_that(out[EARLY] | "early" >> beam.Map(members),
                    equal_to([("vpn",), ("vpn", "write"), ("egress",)]), label="early versions")
        assert_that(out[INCIDENTS] | "final" >> beam.Map(members),
                    equal_to([("vpn", "write"), ("egress",)]), label="final versions")
        assert_that(out[WITHDRAWN], equal_to([]), label="none withdrawn")


def test_an_earlier_finding_moves_the_id_and_withdraws_the_early_one() -> None:
    """Out of order within the bound: WRITE is alerted under its own id, then the earlier
    VPN finding of the same session arrives; the incident's id is now VPN's, so WRITE's
    early id is withdrawn, and the final incident equals the batch result."""
    stream = (
        TestStream()
        .advance_watermark_to(_at(VPN.first_seen, -60))
        .add_elements([_timestamped(WRITE)])
        .add_elements([_timestamped(VPN)])
        .advance_watermark_to(_at(WRITE.last_seen, GAP + 60))
        .advance_watermark_to_infinity()
    )
    batch = correlate([VPN, WRITE], GAP)[0]
    write_alone = correlate([WRITE], GAP)[0]
    with TestPipeline(runner="BundleBasedDirectRunner", options=_streaming()) as p:
        out = p | stream | CorrelateIncidents("site", GAP, early=True)
        assert_that(out[WITHDRAWN], equal_to([write_alone.incident_id]), label="withdrawn")
        assert_that(out[INCIDENTS] | beam.Map(lambda i: (i.incident_id, len(i.findings), i.modified)),
                    equal_to([(batch.incident_id, 2, batch.modified)]), label="final")


def test_late_within_lateness_revises_and_beyond_it_is_late() -> None:
    """After the session's incident closed: a write within allowed lateness revises it (same
    id, later modified); one past last_seen + gap + lateness goes to LATE."""
    lateness = 600.0
    old = finding("write", "2026-11-15T22:40:00.000000Z", "2026-11-15T22:41:00.000000Z", "command",
                  ("ip:10.212.134.200",), asset="sts01-plc", severity=75)
    stream = (
        TestStream()
        .advance_watermark_to(_at(VPN.first_seen, -1))
        .add_elements([_timestamped(VPN)])
        .advance_watermark_to(_at(VPN.last_seen, GAP + 60))
        .add_elements([_timestamped(WRITE)])  # late, within lateness: revises
        .advance_watermark_to(_at(WRITE.last_seen, GAP + lateness + 60))
        .add_elements([_timestamped(old)])  # beyond: late
        .advance_watermark_to_infinity()
    )
    vpn_id = correlate([VPN], GAP)[0].incident_id
    with TestPipeline(runner="BundleBasedDirectRunner", options=_streaming()) as p:
        out = p | stream | CorrelateIncidents("site", GAP, allowed_lateness=lateness, early=True)
        assert_that(out[INCIDENTS] | beam.Map(lambda i: (i.incident_id, len(i.findings))),
                    equal_to([(vpn_id, 1), (vpn_id, 2)]), label="final and revised")
        assert_that(out[LATE] | beam.Map(lambda f: f.finding_id), equal_to([old.finding_id]), label="late")


def test_after_a_restart_an_earlier_runs_open_version_whose_id_moved_is_withdrawn_once_it_would_close() -> None:
    """A restarted stream's state is empty, but the stopped run left WRITE's early version on
    disk (its id, before VPN's earlier finding came from another partition). The restart
    replays both: their incident carries VPN's id, so WRITE's old id is withdrawn, and only
    once a close firing passes its close time; a prior version the replay re-creates under
    the same id is carried on, not withdrawn."""
    write_alone = correlate([WRITE], GAP)[0]
    egress_alone = correlate([EGRESS], GAP)[0]
    prior = ((write_alone.incident_id, write_alone.last_seen), (egress_alone.incident_id, egress_alone.last_seen))
    stream = (
        TestStream()
        .advance_watermark_to(_at(VPN.first_seen, -60))
        .add_elements([_timestamped(VPN), _timestamped(WRITE)])  # replayed: no WRITE-only incident now
        .add_elements([_timestamped(EGRESS)])
        .advance_watermark_to(_at(WRITE.last_seen, GAP + 60))
        .advance_watermark_to_infinity()
    )
    batch = correlate([VPN, WRITE, EGRESS], GAP)
    with TestPipeline(runner="BundleBasedDirectRunner", options=_streaming()) as p:
        out = p | stream | CorrelateIncidents("site", GAP, early=True, prior_early=prior)
        assert_that(out[WITHDRAWN], equal_to([write_alone.incident_id]), label="withdrawn")
        assert_that(out[INCIDENTS] | beam.Map(lambda i: i.incident_id),
                    equal_to([i.incident_id for i in batch]), label="final")


def test_a_prior_open_version_is_not_withdrawn_before_its_close_time() -> None:
    """Nothing of WRITE's old version has been replayed yet when VPN's incident closes, before
    WRITE's close time: the old version is kept (its findings may still come)."""
    write_alone = correlate([WRITE], GAP)[0]
    stream = (
        TestStream()
        .advance_watermark_to(_at(VPN.first_seen, -60))
        .add_elements([_timestamped(VPN)])
        .advance_watermark_to(_at(VPN.last_seen, GAP + 300))  # VPN's close fires; WRITE's time is later
    )
    with TestPipeline(runner="BundleBasedDirectRunner", options=_streaming()) as p:
        out = p | stream | CorrelateIncidents("site", GAP, early=True,
                                              prior_early=((write_alone.incident_id, write_alone.last_seen),))
        assert_that(out[INCIDENTS] | beam.Map(lambda i: i.incident_id),
                    equal_to([correlate([VPN], GAP)[0].incident_id]), label="VPN closed")
        assert_that(out[WITHDRAWN], equal_to([]), label="none withdrawn")
