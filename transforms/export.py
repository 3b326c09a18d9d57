"""Export: incidents → STIX bundles, incidents.jsonl, findings.jsonl, dead letters.

Bundle files are written by a DoFn, one file per incident named by its id, so a re-run or a
replay overwrites the same file with the same bytes. In batch the JSONL files are sorted
by event time so two runs over the same input produce identical outputs.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Iterable, Iterator

import apache_beam as beam

from pipelines.config import Config
from transforms.model import DeadLetter, Evidence, Finding, Incident

#: Per-source record counts of a batch run, read by the run summary.
COUNTS_FILE = "_counts.json"


def at_end(pcolls: beam.PCollection | dict[str, beam.PCollection], label: str, fn: Callable[..., Any],
           *args: Any, kind: Callable[[Any], str] | None = None) -> beam.PCollection:
    """Call ``fn(rows, *args)`` once, when the input is complete: batch files written from
    whole collections. ``rows``: every element of ``pcolls`` as a list (empty for an empty
    collection), or for a dict of collections a dict of such lists by the same names;
    ``kind(element)`` names the collection an element of the dict's came from (their
    elements are of different types). No element may be ``None``: that is the start marker.

    Every element and one start marker (``None`` from an ``Impulse``, so empty input still
    gives one call) go to a single key: five steps in the graph whatever the number of
    collections, where ``beam.combiners.ToList()`` and a ``Map`` per collection take eleven
    (and a key step per collection, one more each); every step costs graph construction,
    the runner's translation and bundles at run time. (Reading the collections as side inputs would take
    fewer, but in this pipeline Beam 2.77's in-process runner gave a side input's elements
    several times over: its producing stages run timer rounds.)"""
    named = pcolls if isinstance(pcolls, dict) else {"rows": pcolls}
    if isinstance(pcolls, dict) and kind is None:
        raise TypeError("at_end: a dict of collections needs kind (which collection an element is of)")
    names = list(named)
    pipeline = next(iter(named.values())).pipeline
    start = pipeline | f"{label}: start" >> beam.Impulse() | f"{label}: start marker" >> beam.Map(lambda _: None)
    as_dict = isinstance(pcolls, dict)

    def call(kv: tuple[int, Iterable[Any]], *a: Any) -> Any:
        rows: dict[str, list[Any]] = {n: [] for n in names}
        for x in kv[1]:
            if x is not None:
                rows[kind(x) if kind is not None else "rows"].append(x)
        return fn(rows if as_dict else rows["rows"], *a)

    return (
        (*named.values(), start)
        | f"{label}: all" >> beam.Flatten()
        | f"{label}: one key" >> beam.Map(lambda x: (0, x))
        | f"{label}: group" >> beam.GroupByKey()
        | label >> beam.Map(call, *args)
    )


def incident_json(incident: Incident) -> str:
    return json.dumps(_json_ready(incident), sort_keys=True)


_FIELDS = {cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in (Incident, Finding, Evidence)}


def _json_ready(value: Any) -> Any:
    """``to_dict()`` for ``json.dumps``: the same JSON, without the deep copy of every value
    ``dataclasses.asdict`` makes (half the time of writing incidents.jsonl and findings.jsonl)."""
    names = _FIELDS.get(type(value))
    if names is not None:
        return {n: _json_ready(getattr(value, n)) for n in names}
    t = type(value)
    if t is tuple or t is list:
        return [_json_ready(v) for v in value]
    if t is dict:
        return {k: _json_ready(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


class _WriteBundleFn(beam.DoFn):
    """One bundle per sharing profile: the first profile in ``stix/``, others in ``stix-<name>/``.

    Emits ``(profile name, (grouping id, modified, name))`` for the run-level report. The
    export secret is read on the worker (``setup``), so it never travels in the pipeline graph.
    A Beam bundle's incidents are built together at its end, on forked processes
    (``transforms/forked.py``): in batch every incident closes in one bundle, once the input
    is parsed, and building bundles is pure Python.
    """

    def __init__(self, cfg: Config, out_dir: str):
        self.cfg = cfg
        self.out_dir = out_dir
        self.secret: bytes | None = None

    def setup(self) -> None:
        from stix_export.redact import load_secret

        self.secret = load_secret(self.cfg)

    def start_bundle(self) -> None:
        self._pending: list[tuple[Incident, Any, Any]] = []

    def process(self, incident: Incident, ts: Any = beam.DoFn.TimestampParam,
                window: Any = beam.DoFn.WindowParam) -> None:
        if incident.severity >= self.cfg.export.min_severity:
            self._pending.append((incident, ts, window))

    def finish_bundle(self) -> Iterator[Any]:
        from apache_beam.utils.windowed_value import WindowedValue

        from transforms.forked import map_forked

        pending, self._pending = self._pending, []
        written = map_forked(self._write, [incident for incident, _, _ in pending])
        for (_, ts, window), outputs in zip(pending, written):
            for out in outputs:
                yield WindowedValue(out, ts, (window,))

    def _write(self, incident: Incident) -> list[tuple[str, tuple[str, str, str]]]:
        from stix_export.bundle import incident_bundle
        from stix_export.report import grouping_of
        from stix_export.writer import profile_dir_name, write_bundle

        profiles = self.cfg.export.effective_profiles()
        out = []
        for profile in profiles:
            bundle = incident_bundle(incident, self.cfg, profile, self.secret)
            write_bundle(bundle, self.out_dir, profile_dir_name(profile.name, profiles[0].name))
            out.append((profile.name, grouping_of(bundle)))
        return out


def _write_reports(rows: list[tuple[str, tuple[str, str, str]]], cfg: Config, out_dir: str) -> None:
    """``reports/<profile>.json``: the run-level report bundle of each profile."""
    from stix_export.report import incident_objects, run_report_bundle
    from stix_export.writer import profile_dir_name, write_json

    profiles = cfg.export.effective_profiles()
    for profile in profiles:
        groupings = [g for name, g in rows if name == profile.name]
        folder = os.path.join(out_dir, profile_dir_name(profile.name, profiles[0].name))
        objects = incident_objects(folder, [gid for gid, _, _ in groupings])
        bundle = run_report_bundle(cfg, profile, groupings, objects)
        if bundle is not None:
            write_json(bundle, os.path.join(out_dir, "reports", f"{profile.name}.json"))


def _write_sorted_lines(lines: list[str], path: str, presorted: bool = False) -> None:
    """``lines`` sorted as text, or as given when ``presorted`` (already in event-time order)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for line in (lines if presorted else sorted(lines)):
            fh.write(line + "\n")
    os.replace(tmp, path)


def write_incident_files(incidents: list[Incident], out_dir: str) -> None:
    """``incidents.jsonl`` and ``findings.jsonl`` (each finding with its incident's id), both
    in event-time order (ties by the JSON text, then by finding id)."""
    rows = sorted((i.first_seen, incident_json(i)) for i in incidents)
    _write_sorted_lines([r for _, r in rows], os.path.join(out_dir, "incidents.jsonl"), presorted=True)
    members = sorted(
        (f.first_seen, f.finding_id, json.dumps({**_json_ready(f), "incident_id": i.incident_id}, sort_keys=True))
        for i in incidents for f in i.findings
    )
    _write_sorted_lines([r for *_, r in members], os.path.join(out_dir, "findings.jsonl"), presorted=True)


class WriteRunFiles(beam.PTransform):
    """The batch run's files: a STIX bundle per incident and sharing profile (``stix/``,
    ``stix-<profile>/``), and once the input is complete sorted ``incidents.jsonl`` and
    ``findings.jsonl``, ``deadletter/deadletter.jsonl``, the record counts and, when
    configured, ``reports/<profile>.json``.

    Input: a dict with ``incidents``, ``dead_letters`` (``DeadLetter``) and ``counts``
    (``(source, Counts)``). The end-of-run files are written by one ``at_end`` rather than
    one per file: each ``at_end`` adds five steps to the graph, and every step costs graph
    construction, the runner's translation of it and its bundles at run time (with one per
    file, these ends were 20 of the batch graph's 33 steps)."""

    def __init__(self, cfg: Config, out_dir: str):
        super().__init__()
        self.cfg = cfg
        self.out_dir = out_dir

    def expand(self, pcolls: dict[str, beam.PCollection]) -> beam.PCollection:
        from stix_export.redact import load_secret

        load_secret(self.cfg)  # fail before the run, not in a worker, when a needed secret is missing
        incidents = pcolls["incidents"]
        written = incidents | "Write STIX bundles" >> beam.ParDo(_WriteBundleFn(self.cfg, self.out_dir))
        # The run reports read the bundles, so they wait for every bundle (``groupings``).
        ends = {"incidents": incidents, "dead_letters": pcolls["dead_letters"], "counts": pcolls["counts"]}
        if self.cfg.export.report:
            ends["groupings"] = written
        at_end(ends, "Write run files", _write_run_files, self.cfg, self.out_dir, kind=_run_file_row)
        return written


def _run_file_row(row: Any) -> str:
    """Which of ``WriteRunFiles``' collections a row is of: incidents, dead letters, record
    counts ``(source, Counts)`` or groupings ``(profile, (id, modified, name))``."""
    from transforms.parse import Counts

    if isinstance(row, Incident):
        return "incidents"
    if isinstance(row, DeadLetter):
        return "dead_letters"
    return "counts" if isinstance(row[1], Counts) else "groupings"


def _write_run_files(rows: dict[str, list[Any]], cfg: Config, out_dir: str) -> None:
    write_incident_files(rows["incidents"], out_dir)
    _write_sorted_lines([d.to_json() for d in rows["dead_letters"]],
                        os.path.join(out_dir, "deadletter", "deadletter.jsonl"))
    write_counts(rows["counts"], os.path.join(out_dir, COUNTS_FILE))
    if "groupings" in rows:
        _write_reports(rows["groupings"], cfg, out_dir)


def late_dead_letter(finding: Finding) -> DeadLetter:
    """A finding that came in after its incident could no longer be revised (streaming)."""
    return DeadLetter(
        source="correlation",
        location=finding.finding_id,
        reason="late finding beyond allowed lateness (correlation.allowed_lateness)",
        raw=json.dumps(finding.to_dict(), sort_keys=True),
        late=True,
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
