"""Issue 4: a benign-only corpus yields nothing — no finding, so no incident.

``generate(..., benign_only=True)`` writes the same realistic traffic as the scored corpus
(bursty flows, vendor sessions inside their windows, engineering-workstation writes,
routine parameter and mode changes, program backups) without any planted scenario. The
whole detection pack runs on it through the real batch pipeline; every detection must stay
silent. The 1M-record version of this check is ``bench/benign_fp.py``.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from detections.registry import load_registry
from pipelines.batch import run_batch
from pipelines.cli import main
from pipelines.config import load_config
from pipelines.generate import generate
from pipelines.summary import build_summary, read_jsonl

pytestmark = pytest.mark.slow

ENGINEERING = {"10.30.5.20", "10.30.5.21"}


def _lines(path: Path) -> list[str]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return [l for l in data.decode("utf-8").splitlines() if l and not l.startswith("#")]


@pytest.fixture(scope="module", params=[(7, 20000), (23, 30000)], ids=["seed7-20k", "seed23-30k"])
def benign_run(request, tmp_path_factory) -> tuple[Path, Path, dict[str, Any]]:
    seed, events = request.param
    root = tmp_path_factory.mktemp(f"benign{seed}")
    corpus, out = root / "corpus", root / "out"
    info = generate(str(corpus), events=events, seed=seed, benign_only=True)
    assert info["scenarios"] == [] and info["events"] == events
    cfg = load_config(corpus / "config.yaml")
    return corpus, out, build_summary(cfg, run_batch(cfg, str(out)))


def test_corpus_is_benign_only_but_holds_the_look_alikes(benign_run) -> None:
    """Not vacuous: the corpus has what the detections must tell apart from attacks."""
    corpus, _, _ = benign_run
    truth = json.loads((corpus / "truth.json").read_text())
    assert truth["scenarios"] == []
    cfg = load_config(corpus / "config.yaml")
    registry = load_registry()
    assert all(d not in cfg.detections or cfg.detections[d].enabled for d in registry)  # the whole pack runs
    # Vendor sessions (inside their windows: test_generate.py checks that on the files).
    vpn = _lines(corpus / "fortigate" / "fortigate.log")
    assert any('action="tunnel-up"' in l for l in vpn)
    # Modbus writes to crane PLCs, all from the engineering workstations.
    writes = [l.split("\t") for l in _lines(corpus / "zeek" / "modbus.log") if "\tWRITE_" in l]
    assert writes and {w[2] for w in writes} <= ENGINEERING
    # Routine CMS changes in the maintenance windows.
    kinds = {e["event_type"] for e in read_jsonl(str(corpus / "cms" / "cms-events.jsonl"))}
    assert {"parameter_change", "mode_change", "login"} <= kinds


def test_benign_only_corpus_yields_no_finding_and_no_incident(benign_run) -> None:
    corpus, out, summary = benign_run
    truth = json.loads((corpus / "truth.json").read_text())
    assert summary["totals"]["read"] == truth["events"]
    assert summary["totals"]["dead_lettered"] == 0
    findings = read_jsonl(str(out / "findings.jsonl"))
    assert [(f["detection_id"], f.get("title")) for f in findings] == []
    assert summary["findings"]["total"] == 0
    assert read_jsonl(str(out / "incidents.jsonl")) == [] and summary["incidents"]["total"] == 0
    assert summary["bundles"] == 0


def test_cli_generate_benign_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--out", str(tmp_path / "b"), "--events", "5000", "--seed", "3", "--benign-only"]) == 0
    assert "0 planted scenarios (benign only)" in capsys.readouterr().out
    truth = json.loads((tmp_path / "b" / "truth.json").read_text())
    assert truth["scenarios"] == [] and truth["events"] == 5000
    # Without the flag the same command plants scenarios.
    assert main(["generate", "--out", str(tmp_path / "p"), "--events", "5000", "--seed", "3"]) == 0
    assert json.loads((tmp_path / "p" / "truth.json").read_text())["scenarios"]
