"""Export: incidents → STIX bundles, incidents.jsonl, findings.jsonl, dead letters.

Bundle files are written by a DoFn, one file per incident named by its id, so a re-run or a
replay overwrites the same file with the same bytes. In batch the JSONL files are sorted
by event time so two runs over the same input produce identical outputs.
"""
from __future__ import annotations

import json
import os
from typing import Any, Iterator

import apache_beam as beam

from pipelines.config import Config
from transforms.model import DeadLetter, Incident


def incident_json(incident: Incident) -> str:
    return json.dumps(incident.to_dict(), sort_keys=True)


class _WriteBundleFn(beam.DoFn):
    def __init__(self, cfg: Config, out_dir: str):
        self.cfg = cfg
        self.out_dir = out_dir

    def process(self, incident: Incident) -> Iterator[str]:
        from stix_export.bundle import incident_bundle
        from stix_export.writer import write_bundle

        if incident.severity < self.cfg.export.min_severity:
            return
        yield write_bundle(incident_bundle(incident, self.cfg), self.out_dir)


def _write_sorted_lines(lines: list[str], path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for line in sorted(lines):
            fh.write(line + "\n")
    os.replace(tmp, path)


class ExportIncidents(beam.PTransform):
    """Incidents → STIX bundles under ``stix/`` plus sorted ``incidents.jsonl``/``findings.jsonl``."""

    def __init__(self, cfg: Config, out_dir: str):
        super().__init__()
        self.cfg = cfg
        self.out_dir = out_dir

    def expand(self, incidents: beam.PCollection) -> beam.PCollection:
        out = self.out_dir
        incidents | "Incident as JSON" >> beam.Map(lambda i: (i.first_seen, incident_json(i))) | (
            "Collect incidents" >> beam.combiners.ToList()
        ) | "Write incidents.jsonl" >> beam.Map(
            lambda rows: _write_sorted_lines([r for _, r in sorted(rows)], os.path.join(out, "incidents.jsonl"))
        )
        incidents | "Member findings" >> beam.FlatMap(
            lambda i: [(f.first_seen, f.finding_id, json.dumps({**f.to_dict(), "incident_id": i.incident_id}, sort_keys=True)) for f in i.findings]
        ) | "Collect findings" >> beam.combiners.ToList() | "Write findings.jsonl" >> beam.Map(
            lambda rows: _write_sorted_lines([r for *_, r in sorted(rows)], os.path.join(out, "findings.jsonl"))
        )
        return incidents | "Write STIX bundles" >> beam.ParDo(_WriteBundleFn(self.cfg, out))


class WriteDeadLetters(beam.PTransform):
    """Dead letters → ``deadletter/deadletter.jsonl`` (source, location, reason, raw)."""

    def __init__(self, out_dir: str):
        super().__init__()
        self.out_dir = out_dir

    def expand(self, dead: beam.PCollection) -> beam.PCollection:
        path = os.path.join(self.out_dir, "deadletter", "deadletter.jsonl")
        return (
            dead
            | "Dead letter as JSON" >> beam.Map(DeadLetter.to_json)
            | "Collect dead letters" >> beam.combiners.ToList()
            | "Write deadletter.jsonl" >> beam.Map(lambda rows: _write_sorted_lines(rows, path))
        )


def write_counts(counts: list[tuple[str, Any]], path: str) -> None:
    """Per-source record counts, summed (the run summary reads them after the run)."""
    from transforms.parse import Counts

    total: dict[str, Counts] = {}
    for source, c in counts:
        total[source] = total.get(source, Counts()) + c
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({s: c.__dict__ for s, c in sorted(total.items())}, fh, sort_keys=True, indent=2)
