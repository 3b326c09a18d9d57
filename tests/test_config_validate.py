"""validate runs what a run does first (each detection's prepare), so a register map or an
intel bundle a run would stop on is a one-line config error, exit 2, before any run."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import yaml

from detections.testing import TEST_TERMINAL

UNSUPPORTED = {"type": "bundle", "id": "bundle--5d0a3f0e-8a4c-4f47-9d6e-2f3c1b6a7e10", "objects": [{
    "type": "indicator", "spec_version": "2.1", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
    "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z", "pattern": "[file:name = 'x.exe']",
    "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"}]}


def test_validate_reports_what_detections_would_stop_a_run_on(tmp_path: Path) -> None:
    (tmp_path / "unused").write_text("")
    (tmp_path / "isac.json").write_text(json.dumps(UNSUPPORTED))
    data = copy.deepcopy(TEST_TERMINAL)
    data["detections"] = {
        "cms_safety_parameter_change": {"params": {"registers": [
            {"asset": "sts09-plc", "address": 110, "parameter": "hoist.max_speed"}]}},
        "threat_intel_match": {"params": {"bundles": ["isac.json"]}},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "validate", "--config", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith(str(path))]
    assert len(lines) == 1, proc.stderr
    assert lines[0] == (f"{path}: detections.cms_safety_parameter_change.params.registers[0].asset: expected "
                        "an inventory asset id, got 'sts09-plc'")
    # an unusable indicator in a named bundle does not stop a run: validate warns with the
    # bundle and the indicator's id (stix_export/intel/validation.py) and passes
    del data["detections"]["cms_safety_parameter_change"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "validate", "--config", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stderr.splitlines() if line.startswith(str(path))]
    assert len(warned) == 1 and "isac.json" in warned[0], proc.stderr
    assert "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f" in warned[0]
