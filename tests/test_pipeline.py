"""End to end on the real Beam runner: generate → run → incidents, bundles, accounting.

Scored against the generator's truth.json: every planted scenario yields exactly one
incident with the expected detections, and no incident appears where none was planted.
"""
from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipelines.batch import run_batch
from pipelines.config import load_config
from pipelines.generate import generate
from pipelines.summary import build_summary
from stix_export.validate import validate_bundle_file

pytestmark = pytest.mark.slow


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def _run(corpus: Path, out: Path) -> dict[str, Any]:
    cfg = load_config(corpus / "config.yaml")
    return build_summary(cfg, run_batch(cfg, str(out)))


@pytest.fixture(scope="module", params=[7, 23])
def corpus_run(request, tmp_path_factory) -> tuple[Path, Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp(f"seed{request.param}")
    corpus, out = root / "corpus", root / "out"
    generate(str(corpus), events=20000, seed=request.param)
    return corpus, out, _run(corpus, out)


def _matches(incident: dict[str, Any], planted: dict[str, Any]) -> bool:
    overlap = incident["first_seen"] <= planted["end"] and planted["start"] <= incident["last_seen"]
    shared = (
        (planted["asset"] is not None and planted["asset"] in incident["assets"])
        or set(planted["accounts"]) & set(incident["accounts"])
        or set(planted["addresses"]) & set(incident["addresses"])
    )
    return bool(overlap and shared)


def test_every_planted_scenario_is_one_incident_and_nothing_else(corpus_run) -> None:
    corpus, out, _ = corpus_run
    truth = json.loads((corpus / "truth.json").read_text())
    incidents = _jsonl(out / "incidents.jsonl")
    assert truth["scenarios"], "the generator planted nothing"
    claimed: set[str] = set()
    for planted in truth["scenarios"]:
        hits = [i for i in incidents if _matches(i, planted)]
        assert len(hits) == 1, (planted["id"], [i["title"] for i in hits])
        detections = {f["detection_id"] for f in hits[0]["findings"]}
        assert detections == set(planted["expected_detections"]), planted["id"]
        if planted["asset"]:
            assert hits[0]["primary_asset"] == planted["asset"]
        claimed.add(hits[0]["incident_id"])
    unplanted = [i["title"] for i in incidents if i["incident_id"] not in claimed]
    assert not unplanted, f"incidents with no planted scenario: {unplanted}"


def test_chain_is_linked_through_the_tunnel_address(corpus_run) -> None:
    corpus, out, _ = corpus_run
    truth = json.loads((corpus / "truth.json").read_text())
    chains = [s for s in truth["scenarios"] if s["scenario"] == 4]
    assert chains
    incidents = _jsonl(out / "incidents.jsonl")
    for planted in chains:
        (incident,) = [i for i in incidents if _matches(i, planted)]
        assert incident["stages"] == ["access", "command"]
        assert incident["severity"] > max(f["severity"] for f in incident["findings"]) - 1


def test_foreign_vendor_login_is_placed_by_network_and_country(corpus_run) -> None:
    """Scenario 3: the login address is outside the vendor's range and, by the generated
    geo CSV, in a country the vendor does not work from."""
    corpus, out, _ = corpus_run
    truth = json.loads((corpus / "truth.json").read_text())
    planted = [s for s in truth["scenarios"] if s["id"].startswith("s3-")]
    assert planted
    incidents = _jsonl(out / "incidents.jsonl")
    for p in planted:
        (incident,) = [i for i in incidents if _matches(i, p)]
        (login,) = [f for f in incident["findings"] if f["detection_id"] == "vendor_login_unexpected_network"]
        assert login["evidence"][0]["fields"]["reasons"] == ["network", "country"]
        assert login["evidence"][0]["fields"]["country"] == "DE" and "(DE)" in login["title"]


def test_scanner_identifying_a_plc_is_recon_in_the_scan_incident(corpus_run) -> None:
    """Scenario 8: the port scan and the Modbus device identification that follows are one
    incident about the PLC, at the recon stage."""
    corpus, out, _ = corpus_run
    truth = json.loads((corpus / "truth.json").read_text())
    incidents = _jsonl(out / "incidents.jsonl")
    for p in [s for s in truth["scenarios"] if s["scenario"] == 8]:
        (incident,) = [i for i in incidents if _matches(i, p)]
        (recon,) = [f for f in incident["findings"] if f["detection_id"] == "ot_recon_reads"]
        assert recon["evidence"][0]["fields"]["external"] and recon["asset_id"] == p["asset"]
        assert incident["stages"][0] == "recon"


def test_full_chain_on_one_crane_is_one_critical_incident(corpus_run) -> None:
    """Scenario 2 → 4 → 6 (session, register writes, out-of-limit parameter change from the
    tunnel address) on one crane: one incident, access → command → impact, critical."""
    corpus, out, _ = corpus_run
    truth = json.loads((corpus / "truth.json").read_text())
    chains = [s for s in truth["scenarios"] if s.get("chain") == [2, 4, 6]]
    assert chains
    incidents = _jsonl(out / "incidents.jsonl")
    for planted in chains:
        (incident,) = [i for i in incidents if _matches(i, planted)]
        assert incident["stages"] == ["access", "command", "impact"]
        assert incident["severity_label"] == "critical" and incident["severity"] >= 95
        assert incident["primary_asset"] == planted["asset"]


def test_threat_intel_match_is_a_sighting_of_the_isac_indicator(corpus_run) -> None:
    """Scenario 11: the incident's bundles (every profile) hold a sighting of each ISAC
    indicator it matched (the C2 domain the host looked up, the C2 network it then reached),
    and each indicator itself as the ISAC published it."""
    import re

    from stix_export.redact import Redactor, load_secret

    corpus, out, _ = corpus_run
    truth = json.loads((corpus / "truth.json").read_text())
    cfg = load_config(corpus / "config.yaml")
    (bundle_file,) = cfg.detections["threat_intel_match"].params["bundles"]
    published = {o["id"]: o for o in json.loads((corpus / bundle_file).read_text())["objects"]}
    incidents = _jsonl(out / "incidents.jsonl")
    planted = [s for s in truth["scenarios"] if s["scenario"] == 11]
    assert planted
    for s in planted:
        (incident,) = [i for i in incidents if _matches(i, s)]
        # the redacted set names its files by the keyed incident reference
        isac_ref = Redactor(next(p for p in cfg.export.effective_profiles() if p.name == "isac"), cfg,
                            load_secret(cfg)).incident_ref(incident["incident_id"])
        for d, name in (("stix", incident["incident_id"]), ("stix-isac", isac_ref)):
            objs = {o["id"]: o for o in json.loads((out / d / (re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".json")).read_text())["objects"]}
            refs = {o["sighting_of_ref"] for o in objs.values() if o["type"] == "sighting"}
            isac = sorted(r for r in refs if r.startswith("indicator--"))
            names = {published[r]["name"] for r in isac}
            assert names == {"C2 hosting range targeting port operators", "C2 domain of the port-operator campaign"}
            assert all(objs[r] == published[r] for r in isac), (s["id"], d)


def test_summary_accounts_for_every_record(corpus_run) -> None:
    corpus, out, summary = corpus_run
    truth = json.loads((corpus / "truth.json").read_text())
    assert summary["totals"]["read"] == truth["events"]
    for name, s in summary["sources"].items():
        assert s["read"] == s["parsed"] + s["dead_lettered"] + s["skipped"], name
        assert s["read"] > 0, name
    assert summary["totals"]["dead_lettered"] == 0  # the generator writes clean logs
    assert summary["dead_letters"] == {}
    assert (summary["status"], summary["problems"]) == ("ok", [])  # no false warning on a clean corpus
    assert summary["incidents"]["total"] == len(truth["scenarios"])
    assert summary["bundles"] == summary["incidents"]["total"]
    saved = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else summary
    assert saved["totals"] == summary["totals"]


def test_every_bundle_validates_strictly(corpus_run) -> None:
    _, out, _ = corpus_run
    bundles = sorted((out / "stix").glob("*.json"))
    assert bundles
    for b in bundles:
        assert validate_bundle_file(str(b)) == [], b.name


def test_two_runs_give_byte_identical_bundles(corpus_run, tmp_path: Path) -> None:
    corpus, out, _ = corpus_run
    again = tmp_path / "again"
    _run(corpus, again)
    first = sorted(p.name for p in (out / "stix").glob("*.json"))
    assert first == sorted(p.name for p in (again / "stix").glob("*.json"))
    _, mismatch, errors = filecmp.cmpfiles(out / "stix", again / "stix", first, shallow=False)
    assert not mismatch and not errors
    assert (out / "incidents.jsonl").read_bytes() == (again / "incidents.jsonl").read_bytes()
    assert (out / "findings.jsonl").read_bytes() == (again / "findings.jsonl").read_bytes()


MALFORMED = {
    "zeek/conn.log": ["1763337600.000000\tCbad\t10.0.0.1\tnot-a-port\t10.0.0.2\t80\ttcp",
                      "\xff\xfe garbage bytes"],
    "cms/cms-events.jsonl": ['{"time": "2026-11-17T01:00:00Z", "crane_id": "STS-01"', '{"time": "x", "crane_id": "STS-01", "event_type": "alarm"}'],
    "fortigate/fortigate.log": ['date=2026-11-17 time=01:00:00 type="event" subtype="vpn" action="tunnel-up" remip=not-an-ip'],
}


def test_malformed_lines_are_dead_lettered_not_dropped(tmp_path: Path) -> None:
    corpus, out = tmp_path / "corpus", tmp_path / "out"
    generate(str(corpus), events=5000, seed=3)
    injected = 0
    for rel, lines in MALFORMED.items():
        path = corpus / rel
        with open(path, "ab") as fh:
            for line in lines:
                fh.write(line.encode("latin-1") + b"\n")
                injected += 1
    # A truncated archive: the readable part is parsed, the failure is one dead letter.
    gz = sorted((corpus / "zeek").glob("conn.*.log.gz"))[0]
    data = gz.read_bytes()
    gz.write_bytes(data[: len(data) // 2])
    summary = _run(corpus, out)
    truth = json.loads((corpus / "truth.json").read_text())
    dead = _jsonl(out / "deadletter" / "deadletter.jsonl")
    for name, s in summary["sources"].items():
        assert s["read"] == s["parsed"] + s["dead_lettered"] + s["skipped"], name
    assert summary["totals"]["dead_lettered"] == len(dead)
    assert len([d for d in dead if "unreadable file" in d["reason"]]) == 1
    assert sum(n for codes in summary["dead_letters"].values() for n in codes.values()) == len(dead)
    assert summary["dead_letters"]["fortigate"] == {"bad_value": 1}  # remip=not-an-ip
    assert len(dead) >= injected + 1
    assert summary["totals"]["read"] < truth["events"] + injected + 1  # the truncated part is gone
    for d in dead:
        assert d["source"] and d["reason"] and ":" in d["location"]


def test_cli_run_writes_the_output_contract(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    generate(str(corpus), events=3000, seed=5)
    out = tmp_path / "out"
    exe = shutil.which("cranewatch", path=os.path.dirname(sys.executable)) or "cranewatch"
    proc = subprocess.run([exe, "run", "--config", str(corpus / "config.yaml"), "--output", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for name in ("findings.jsonl", "incidents.jsonl", "summary.json", "deadletter/deadletter.jsonl"):
        assert (out / name).exists(), name
    assert (out / "stix").is_dir()
    assert "events/s" in proc.stdout
    bad = subprocess.run([exe, "run", "--config", str(tmp_path / "missing.yaml")], capture_output=True, text=True)
    assert bad.returncode == 2 and "missing.yaml" in bad.stderr


def test_reversed_look_alike_is_not_critical_but_the_chain_is(corpus_run) -> None:
    corpus, out, _ = corpus_run
    truth = json.loads((corpus / "truth.json").read_text())
    incidents = _jsonl(out / "incidents.jsonl")
    reversed_ = [s for s in truth["scenarios"] if s.get("reversed")]
    chains = [s for s in truth["scenarios"] if s.get("chain")]
    assert reversed_ and chains
    for planted in reversed_:
        (incident,) = [i for i in incidents if _matches(i, planted)]
        assert incident["severity_label"] != "critical", incident["title"]
        assert ", then " in incident["title"] and "→" not in incident["title"]
    for planted in chains:
        (incident,) = [i for i in incidents if _matches(i, planted)]
        assert incident["severity_label"] == "critical"


def test_batch_starts_the_files_with_the_most_text_first(tmp_path: Path) -> None:
    """Two files parse at a time, so the largest start first and the small ones fill the
    end; a compressed file's byte counts twice; a missing file goes last; equal sizes keep
    the configured order."""
    from pipelines.batch import largest_first
    from transforms.parse import InputFile

    sizes = {"small.log": 100, "big.log": 5_000, "packed.log.gz": 3_000, "same-a.log": 300, "same-b.log": 300}
    files = []
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(b"x" * size)
        files.append(InputFile("s", "zeek_conn", str(tmp_path / name)))
    files.insert(0, InputFile("s", "zeek_conn", str(tmp_path / "missing.log")))
    order = [os.path.basename(f.path) for f in largest_first(files)]
    assert order == ["packed.log.gz", "big.log", "same-a.log", "same-b.log", "small.log", "missing.log"]
