"""incidents.jsonl and findings.jsonl lines are the JSON of the records' to_dict()."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tests.test_stix_export import make_incident
from transforms.export import incident_json, write_incident_files
from transforms.model import Evidence


def test_lines_are_the_json_of_to_dict(tmp_path: Path) -> None:
    incident = make_incident()
    f0 = incident.findings[0]
    odd = dataclasses.replace(f0, finding_id="odd", context={"nested": [("a", 1), {"ev": Evidence("r:1", "0" * 64, f0.first_seen)}]})
    incident = dataclasses.replace(incident, findings=(*incident.findings, odd))
    assert incident_json(incident) == json.dumps(incident.to_dict(), sort_keys=True)
    write_incident_files([incident], str(tmp_path))
    lines = (tmp_path / "findings.jsonl").read_text(encoding="utf-8").splitlines()
    expected = sorted((f.first_seen, f.finding_id, json.dumps({**f.to_dict(), "incident_id": incident.incident_id},
                                                              sort_keys=True)) for f in incident.findings)
    assert lines == [text for *_, text in expected]
