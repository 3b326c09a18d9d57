"""The one stage list both jobs run: parsed events → detect → correlate, with dead letters.

The batch job (``pipelines/batch.py``) and the streaming job (``pipelines/streaming.py``)
differ only in their ends: where parsed events come from (a file list or spool
directories) and where incidents and dead letters go (sorted files at the end of a run, or
files rewritten as incidents open, grow and close). Everything between is built here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import apache_beam as beam

from pipelines.config import Config
from transforms.correlate import EARLY, INCIDENTS, LATE, WITHDRAWN, CorrelateIncidents
from transforms.detect import DetectFindings
from transforms.export import late_dead_letter
from transforms.stream_detect import BUCKET, StreamingStatefulFn


@dataclass(frozen=True)
class Assembled:
    """The outputs of the shared stages that the sink ends consume."""

    incidents: beam.PCollection  # closed incidents, and revisions of them by late findings
    dead_letters: beam.PCollection  # parse dead letters + late findings
    early: Optional[beam.PCollection] = None  # streaming: versions of still-open incidents
    withdrawn: Optional[beam.PCollection] = None  # streaming: ids of superseded early versions

    def as_dict(self) -> dict[str, beam.PCollection]:
        """The outputs as a dict of PCollections, the input form a sink PTransform takes."""
        return {k: v for k, v in vars(self).items() if v is not None}


def assemble(cfg: Config, events: beam.PCollection, dead: beam.PCollection, early: bool = False,
             prior_early: tuple[tuple[str, str], ...] = ()) -> Assembled:
    """Detect and correlate ``events`` (Arrow tables). ``early`` (streaming) adds the
    early-alert outputs and runs the stateful detections in event-time buckets;
    ``prior_early``: the open versions a stopped run of the stream left on disk."""
    stateful = StreamingStatefulFn(cfg) if early else None  # findings leave near event time
    correlated = (
        events
        | "Detect" >> DetectFindings(cfg, stateful)
        | "Correlate" >> CorrelateIncidents(cfg.site.name, cfg.correlation.gap, cfg.correlation.allowed_lateness,
                                            early=early, close_slack=BUCKET if early else 0.0, whole_input=not early,
                                            prior_early=prior_early)
    )
    late = correlated[LATE] | "Late findings as dead letters" >> beam.Map(late_dead_letter)
    all_dead = (dead, late) | "All dead letters" >> beam.Flatten()
    if not early:
        return Assembled(correlated[INCIDENTS], all_dead)
    return Assembled(correlated[INCIDENTS], all_dead, correlated[EARLY], correlated[WITHDRAWN])
