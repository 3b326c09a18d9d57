"""The streaming sink's choice between rewriting an incident's bundle and only logging it
(``transforms/stream_sinks.py``), on real bundles written to a temporary output folder."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from stix_export.bundle import incident_bundle
from stix_export.writer import serialize_bundle
from test_stix_export import _evidence, make_config, make_findings, make_incident
from transforms.stream_sinks import _WriteVersionFn


def _write(fn: _WriteVersionFn, *versions: tuple[str, object]) -> None:
    fn.start_bundle()
    for v in versions:
        fn.process(v)
    fn.finish_bundle()


def _sink(tmp_path: Path) -> tuple[_WriteVersionFn, object]:
    cfg = make_config()
    fn = _WriteVersionFn(cfg, str(tmp_path))
    fn.setup()
    return fn, cfg


def _file(tmp_path: Path, incident_id: str) -> str:
    return (tmp_path / "stix" / f"{incident_id}.json").read_text()


def _logged(tmp_path: Path) -> list[str]:
    return [json.loads(line)["version"] for line in (tmp_path / "incidents.jsonl").read_text().splitlines()]


def test_a_final_equal_to_the_early_version_on_disk_is_only_logged(tmp_path) -> None:
    fn, cfg = _sink(tmp_path)
    incident = make_incident()
    _write(fn, ("early", incident))
    before = _file(tmp_path, incident.incident_id)
    (tmp_path / "stix" / f"{incident.incident_id}.json").write_text("left alone")  # a rewrite would replace it
    _write(fn, ("final", incident))
    assert _file(tmp_path, incident.incident_id) == "left alone"
    assert before == serialize_bundle(incident_bundle(incident, cfg, cfg.export.effective_profiles()[0], fn.secret))
    assert _logged(tmp_path) == ["early", "final"]


def test_a_final_with_the_same_hits_but_other_evidence_is_rewritten(tmp_path) -> None:
    """Same members, hit counts and times, but the records quoted differ: a sibling log's
    copy of the same events was read after the early version was written. The final file
    must quote the final version's records, under a later ``modified`` (its content changed
    under the written version's time: STIX versioning)."""
    fn, _ = _sink(tmp_path)
    early = make_incident()
    first = early.findings[0]
    other = dataclasses.replace(first, evidence=(_evidence("sibling.log:7", first.evidence[0].time),
                                                 *first.evidence[1:]))
    final = dataclasses.replace(early, findings=(other, *early.findings[1:]))
    _write(fn, ("early", early))
    written = _incident_object(_file(tmp_path, early.incident_id))
    _write(fn, ("final", final))
    text = _file(tmp_path, final.incident_id)
    assert "sibling.log:7" in text and "sibling.log:7" not in json.dumps(written)
    assert _incident_object(text)["modified"] > written["modified"]
    assert _logged(tmp_path) == ["early", "final"]


def _incident_object(text: str) -> dict:
    return next(o for o in json.loads(text)["objects"] if o["type"] == "incident")


def test_an_early_version_adding_nothing_to_the_written_one_is_not_written(tmp_path) -> None:
    fn, _ = _sink(tmp_path)
    full = make_incident()
    _write(fn, ("early", full))
    _write(fn, ("early", make_incident(findings=make_findings()[:1])))  # a replay's partial version
    assert _logged(tmp_path) == ["early"]
