"""Sigma rules through the installed command: config errors exit 2 with one line naming
file, key and expectation; a rule that fails to load fails the run unless
``sigma.skip_invalid``; a batch run's Sigma finding reaches findings, incidents and the
STIX bundle; ``detections list --config`` shows the rule beside the built-ins."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.generate import generate

pytestmark = pytest.mark.slow
EXE = shutil.which("cranewatch", path=os.path.dirname(sys.executable)) or "cranewatch"
RULE_ID = "0c5a4c1e-7d44-4f0a-9d7e-2b1f6a0c0001"
RULE = {
    "title": "Crane PLC switched to maintenance mode", "id": RULE_ID, "status": "test", "level": "high",
    "description": "A CMS mode change puts a crane controller into maintenance mode.",
    "references": ["https://example.org/crane-modes"], "falsepositives": ["planned maintenance"],
    "tags": ["attack.t0858", "attack.t1021"],
    "logsource": {"product": "cranewatch", "service": "cms"},
    "detection": {"sel": {"event_type": "cms.mode_change", "new_value|cased": "maintenance"}, "condition": "sel"},
}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "220"})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sigma") / "corpus"
    generate(str(root), events=3000, seed=5)
    (root / "sigma").mkdir()
    (root / "sigma" / "maintenance_mode.yml").write_text(yaml.safe_dump(RULE, sort_keys=False))
    (root / "broken").mkdir()
    (root / "broken" / "broken.yml").write_text("title: Broken\nlogsource: {product: zeek, service: conn}\n"
                                                "detection: {sel: {id.resp_p: 502}, condition: sel and missing}\n")
    return root


def _config(corpus: Path, name: str, sigma: Any) -> Path:
    cfg = yaml.safe_load((corpus / "config.yaml").read_text())
    cfg["sigma"] = sigma
    path = corpus / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.mark.parametrize("sigma, line", [
    ({"rules": "sigma"}, r"sigma.rules: expected a valid list, got 'sigma'"),
    ({"rules": ["sigma"], "skip_invalid": "yes"}, r"sigma.skip_invalid: expected a valid boolean, got 'yes'"),
    ({"rulez": ["sigma"]}, r"sigma.rulez: unknown key; expected one of: pipelines, rules, skip_invalid, taxonomies"),
    ({"rules": ["sigma"], "taxonomies": ["zeek/nope"]},
     r"sigma.taxonomies: expected shipped taxonomy names \(zeek/conn, .*\), got 'zeek/nope'"),
    ({"rules": ["no-such-folder"]}, r"sigma.rules: .*no-such-folder: expected a Sigma rule file or folder"),
    ({"rules": ["sigma"], "pipelines": ["sigma/maintenance_mode.yml"]},
     r"sigma.rules: .*maintenance_mode.yml: expected a pySigma processing pipeline"),
])
def test_bad_sigma_config_is_one_line(corpus: Path, sigma: Any, line: str) -> None:
    import re

    from pipelines.config import check_file

    path = _config(corpus, "bad.yaml", sigma)
    errors = check_file(path).errors
    assert len(errors) == 1 and errors[0].startswith(f"{path}: ") and re.search(line, errors[0]), errors


def test_taxonomies_select_which_shipped_mappings_rules_use(corpus: Path) -> None:
    """A rule whose log source only an unselected taxonomy maps applies to no source; selected,
    it reads the CMS events, with the CMS field mapping."""
    from detections.sigma_engine.engine import sigma_set
    from pipelines.config import load_config

    off = sigma_set(load_config(str(_config(corpus, "tax-off.yaml", {"rules": ["sigma"], "taxonomies": ["zeek/conn"]}))))
    on = sigma_set(load_config(str(_config(corpus, "tax-on.yaml", {"rules": ["sigma"], "taxonomies": ["cranewatch/cms"]}))))
    assert off.entries[0].route.empty
    assert set(on.entries[0].route.formats) == {"cms_events", "cms_csv"}
    assert "action" in on.entries[0].compiled.fields and "action" not in off.entries[0].compiled.fields


def test_bad_sigma_config_exits_2(corpus: Path) -> None:
    path = _config(corpus, "bad.yaml", {"rules": ["sigma"], "skip_invalid": "yes"})
    proc = _cli("validate", "--config", str(path))
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"{path}: sigma.skip_invalid: expected a valid boolean, got 'yes'"), proc.stderr


def test_a_rule_that_fails_to_load_fails_the_run(corpus: Path, tmp_path: Path) -> None:
    path = _config(corpus, "strict.yaml", {"rules": ["sigma", "broken"]})
    proc = _cli("run", "--config", str(path), "--output", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert f"{path}: sigma.rules: {corpus / 'broken' / 'broken.yml'}: Broken: Detection 'missing' not defined" \
        in proc.stderr
    assert not (tmp_path / "out" / "findings.jsonl").exists()


@pytest.fixture(scope="module")
def sigma_run(corpus: Path) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    path = _config(corpus, "sigma.yaml", {"rules": ["sigma", "broken"], "skip_invalid": True})
    out = corpus.parent / "out"
    return _cli("run", "--config", str(path), "--output", str(out)), out, path


def test_skip_invalid_runs_the_rest_and_names_what_it_skipped(sigma_run) -> None:
    proc, out, path = sigma_run
    assert proc.returncode == 0, proc.stderr
    assert f"{path}: sigma.rules: skipped {path.parent / 'broken' / 'broken.yml'}: Broken:" in proc.stderr
    rule_file = path.parent / "sigma" / "maintenance_mode.yml"
    assert (f"{path}: sigma.rules: note: {rule_file}: {RULE['title']}: tag attack.t1021: an ATT&CK Enterprise "
            "technique, not ATT&CK for ICS; not mapped") in proc.stderr


def test_sigma_finding_reaches_incidents_and_stix(sigma_run, corpus: Path) -> None:
    proc, out, _ = sigma_run
    assert proc.returncode == 0, proc.stderr
    want = sum(1 for line in (corpus / "cms" / "cms-events.jsonl").read_text().splitlines()
               if '"mode_change"' in line and '"new_value":"maintenance"' in line.replace(" ", ""))
    assert want > 0
    findings = [json.loads(line) for line in (out / "findings.jsonl").read_text().splitlines()]
    mine = [f for f in findings if f["detection_id"] == f"sigma:{RULE_ID}"]
    assert mine and sum(f["count"] for f in mine) == want
    f = mine[0]
    assert f["techniques"] == ["T0858"] and f["severity"] >= 75 and f["stage"] == "command"  # T0858: execution
    assert f["context"]["sigma"]["references"] == RULE["references"]
    assert f["context"]["sigma"]["falsepositives"] == RULE["falsepositives"]
    assert any("t1021" in n for n in f["context"]["sigma"]["notes"])  # Enterprise id: noted, not mapped
    incidents = [json.loads(line) for line in (out / "incidents.jsonl").read_text().splitlines()]
    assert any(g["detection_id"] == f"sigma:{RULE_ID}" for inc in incidents for g in inc["findings"])
    bundles = "\n".join(p.read_text() for p in (out / "stix").rglob("*.json"))
    assert f"Detection sigma:{RULE_ID}" in bundles
    # the rule's id, references and false positives travel with the finding's STIX objects
    objects = [o for p in (out / "stix").rglob("*.json") for o in json.loads(p.read_text())["objects"]]
    refs = [r for o in objects if o["type"] == "observed-data" for r in o.get("external_references", [])]
    assert {"source_name": "sigma", "external_id": RULE_ID, "description": RULE["title"]} in refs
    assert {r["url"] for r in refs if r["source_name"] == "sigma-reference"} == set(RULE["references"])
    assert any(RULE["falsepositives"][0] in o.get("description", "") for o in objects if o["type"] == "sighting")


def test_detections_list_shows_sigma_rules_beside_builtins(corpus: Path) -> None:
    path = _config(corpus, "list.yaml", {"rules": ["sigma"]})
    proc = _cli("detections", "list", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    mine = [ln for ln in proc.stdout.splitlines() if ln.startswith(f"sigma:{RULE_ID}")]
    assert len(mine) == 1 and " sigma " in mine[0] and "T0858" in mine[0] and RULE["title"] in mine[0]
    assert any(ln.startswith("modbus_write_non_engineering") for ln in proc.stdout.splitlines())
