"""``cranewatch generate --formats``: the generated terminal's VPN and flow logs written as
GlobalProtect / remote-access JSON lines / OpenVPN and Suricata EVE / nfdump CSV instead,
and a batch run over them finds what it finds over the FortiGate and Zeek originals."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipelines.batch import run_batch
from pipelines.cli import main
from pipelines.config import load_config
from pipelines.generate import generate
from pipelines.generate.extra_formats import apply
from pipelines.summary import build_summary


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("gen") / "base"
    generate(str(out), events=6000, seed=11)
    cfg = load_config(str(out / "config.yaml"))
    return out, build_summary(cfg, run_batch(cfg, str(out.parent / "base-out")))


def _findings(summary: dict) -> dict:
    return summary["findings"]["per_detection"]


@pytest.mark.parametrize("formats", [["globalprotect", "suricata_eve"], ["remote_access_jsonl", "nfdump_csv"]])
def test_same_findings_in_other_formats(corpus, tmp_path: Path, formats: list[str]) -> None:
    base, base_summary = corpus
    out = tmp_path / "alt"
    shutil.copytree(base, out)
    written = apply(str(out), formats)
    assert set(written) <= {"paloalto/globalprotect.log", "pam/sessions.jsonl", "suricata/eve.json", "netflow/flows.csv"}
    cfg = load_config(str(out / "config.yaml"))
    assert {s.format for s in cfg.sources} == {"cms_events", "zeek_modbus", *formats}
    assert not (out / "fortigate").exists() or not any((out / "fortigate").iterdir())
    summary = build_summary(cfg, run_batch(cfg, str(tmp_path / "out")))
    assert all(s["dead_lettered"] == 0 for s in summary["sources"].values())
    assert _findings(summary) == _findings(base_summary)
    assert summary["incidents"] == base_summary["incidents"]
    truth = json.loads((out / "truth.json").read_text())
    assert truth["events"] == sum(truth["files"].values())
    assert {name: s["read"] for name, s in summary["sources"].items()} == {
        s.name: sum(truth["files"][f] for f in truth["files"] if any(f.startswith(p.split("*")[0]) for p in s.paths))
        for s in cfg.sources}


def test_cli_generate_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--out", str(tmp_path / "g"), "--events", "3000", "--formats", "openvpn_log"]) == 0
    assert (tmp_path / "g" / "openvpn" / "openvpn.log").is_file()
    assert main(["generate", "--out", str(tmp_path / "h"), "--formats", "zeek_conn"]) == 2
    assert "--formats: expected some of" in capsys.readouterr().err
    assert not (tmp_path / "h").exists()
