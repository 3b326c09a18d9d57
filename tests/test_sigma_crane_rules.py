"""The crane scenarios shipped as Sigma rules (detections/sigma/) on the generated terminal:
each fires on its planted scenarios and nothing fires on the benign-only terminal."""
from __future__ import annotations

import json
import os
from collections import defaultdict

import pyarrow as pa
import pytest

from detections.sigma_engine.engine import sigma_registry
from pipelines.config import load_config, resolve_sources
from transforms.detect import Detector
from transforms.enrich import Enricher
from transforms.parsers import parse_file

RULES = os.path.join(os.path.dirname(__file__), "..", "detections", "sigma")


def _findings(root: str) -> tuple[dict[str, list], list[dict]]:
    """Findings of the shipped Sigma rules only, by rule title, on a generated terminal."""
    cfg_path = os.path.join(root, "config.yaml")
    with open(cfg_path, encoding="utf-8") as fh:
        text = fh.read()
    with open(cfg_path, "w", encoding="utf-8") as fh:
        fh.write(text + f"sigma:\n  rules: [{os.path.abspath(RULES)}]\n")
    cfg = load_config(cfg_path, allow_roots=[os.path.abspath(RULES)])
    registry = sigma_registry(cfg)
    assert len(registry) == 5  # 4 rules that report on their own + the correlation (2 rules are its inputs)
    tables = [r.events for s in resolve_sources(cfg) for f in s.files
              for r in parse_file(s.format, s.name, f) if r.events.num_rows]
    table = Enricher(cfg)(pa.concat_tables(tables))
    detector = Detector(cfg, registry)
    found, keyed = detector.scan(table)
    found += detector.run_stateful(keyed)
    by_title: dict[str, list] = defaultdict(list)
    for f in found:
        by_title[f.title].append(f)
    with open(os.path.join(root, "truth.json"), encoding="utf-8") as fh:
        truth = json.load(fh)["scenarios"]
    return by_title, truth


@pytest.fixture(scope="module")
def terminal(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, list], list[dict]]:
    from pipelines.generate import generate

    root = str(tmp_path_factory.mktemp("terminal"))
    generate(root, events=5000, seed=7)
    return _findings(root)


def _scenarios(truth: list[dict], *numbers: int) -> list[dict]:
    return [s for s in truth if s["scenario"] in numbers]


def _addresses(findings: list) -> set[str]:
    return {a for f in findings for a in f.addresses}


def test_each_rule_fires_on_its_planted_scenarios(terminal: tuple[dict[str, list], list[dict]]) -> None:
    found, truth = terminal
    # Vendor logins from foreign addresses: scenario 3 and the spraying-then-login (9s).
    foreign = {a for s in truth for a in s["addresses"][:1]
               if s["id"].startswith(("s3-", "s9s-"))}
    assert foreign and foreign <= _addresses(found["Vendor VPN login from outside the vendor's networks"])
    # Register writes from the VPN tunnel addresses (4 and the chain 6c), none from the workstations.
    tunnels = {s["addresses"][1] for s in truth if s["id"].startswith(("s4-", "s6c-"))}
    writers = {a for f in found["Modbus write to a crane PLC from a host that is not an engineering workstation"]
               for a in f.addresses if a.startswith("10.212.")}
    assert tunnels and tunnels <= writers
    assert not {"10.30.5.20", "10.30.5.21"} & _addresses(
        found["Modbus write to a crane PLC from a host that is not an engineering workstation"])
    # Out-of-limit safety parameters: scenario 6 at the cab HMI and the chain's from the tunnel.
    cms = found["Crane safety parameter set outside its engineering limits"]
    assets = {f.asset_id for f in cms}
    assert {s["asset"] for s in truth if s["id"].startswith(("s6-", "s6c-"))} <= assets
    assert all(f.severity >= 90 for f in cms)  # level: critical
    # S7 stop / RAM-to-ROM copy: the S7 program change and the reversed look-alike.
    s7 = found["S7 PLC stop or program copy on a crane PLC"]
    assert {s["asset"] for s in truth if s["id"].startswith(("s5s-", "s5r-"))} <= {f.asset_id for f in s7}


def test_vpn_then_plc_write_correlation_follows_the_tunnel_address(terminal: tuple[dict[str, list], list[dict]]) -> None:
    found, truth = terminal
    corr = found["Vendor VPN login, then a Modbus write from its tunnel address"]
    tunnels = {s["addresses"][1] for s in truth if s["id"].startswith(("s4-", "s6c-"))}
    assert tunnels and tunnels <= _addresses(corr)
    # every correlated tunnel is one a planted session wrote from, never a benign one
    planted = {a for s in truth for a in s["addresses"] if a.startswith("10.212.")}
    assert {a for a in _addresses(corr) if a.startswith("10.212.")} <= planted
    assert "Vendor VPN login through the terminal FortiGate" not in found  # a correlation input only


def test_nothing_fires_on_the_benign_terminal(tmp_path: str) -> None:
    from pipelines.generate import generate

    generate(str(tmp_path), events=5000, seed=7, benign_only=True)
    found, truth = _findings(str(tmp_path))
    assert truth == []
    assert dict(found) == {}
