"""Techniques as a recipient counts them: C2 contact is stage c2 with the C2 techniques (in
the run's findings and incidents as in STIX), and every technique of a finding gets its own
sighting."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from stix_export.bundle import incident_bundle
from stix_export.validate import validate_bundle_file
from stix_export.writer import write_bundle
from tests.test_stix_export import by_type, index, make_config, make_findings, make_incident
from detections.api import TestCase
from detections.registry import load_registry
from detections.testing import run_case
from transforms.correlate import build_incident
from transforms.model import Finding

C2 = "198.51.100.7"


def _sighted(bundle: dict[str, Any]) -> Counter:
    objs = index(bundle)
    out: Counter = Counter()
    for s in by_type(bundle, "sighting"):
        target = objs.get(s["sighting_of_ref"])
        if target and target["type"] == "attack-pattern":
            out[target["external_references"][0]["external_id"]] += s["count"]
    return out


def _intel_findings(*events: dict[str, Any]) -> list[Finding]:
    """The real threat_intel_match detection on ``events`` (C2 listed inline in the config)."""
    det = load_registry()["threat_intel_match"]
    case = TestCase("c2", tuple(events), 0, {"detections": {"threat_intel_match": {
        "params": {"addresses": [C2], "domains": ["c2.example"]}}}})
    return sorted(run_case(det, case), key=lambda f: f.first_seen)


DNS = {"time": "2026-11-20T02:30:00Z", "kind": "flow", "action": "dns.query", "service": "dns", "src_ip": "10.30.1.10",
       "src_port": 40000, "dst_ip": "10.40.0.53", "dst_port": 53, "proto": "udp", "target": "c2.example"}
TLS = {"time": "2026-11-20T02:31:00Z", "kind": "flow", "src_ip": "10.30.1.10", "src_port": 40001, "dst_ip": C2,
       "dst_port": 443, "proto": "tcp"}
LOGIN = {"time": "2026-11-20T02:32:00Z", "kind": "remote_access", "action": "vpn.login", "user": "zpmc-svc1",
         "src_ip": C2}


def test_dns_and_tls_to_a_known_c2_are_c2_in_the_run_and_in_stix(tmp_path: Path) -> None:
    dns, tls = _intel_findings(DNS, TLS)
    for f in (dns, tls):  # the run's own findings: stage c2 and the C2 techniques, not T0822
        assert f.stage == "c2" and f.techniques == ("T0869", "T0885"), (f.stage, f.techniques)
    incident = build_incident([dns, tls])
    assert incident.stages == ("c2",) and "access" not in incident.title
    assert set(incident.techniques) == {"T0869", "T0885"}
    b = incident_bundle(incident, make_config())
    sighted = _sighted(b)
    assert set(sighted) == {"T0869", "T0885"}, sighted  # not T0822 External Remote Services
    text = next(s for s in by_type(b, "sighting"))["description"]
    assert "stage c2," in text and "T0822" not in text
    assert "Stages: c2." in by_type(b, "incident")[0]["description"]
    assert validate_bundle_file(write_bundle(b, tmp_path)) == []


def test_c2_to_an_uncommon_port_is_t0869_only_and_a_login_stays_initial_access() -> None:
    odd, login = _intel_findings({**TLS, "dst_port": 4444}, LOGIN)
    assert (odd.stage, odd.techniques) == ("c2", ("T0869",))
    assert (login.stage, login.techniques) == ("access", ("T0822", "T0869"))
    assert "T0822" in _sighted(incident_bundle(make_incident((login,)), make_config()))
    # a C2 flow and an inbound flow from the same listed address stay two findings
    inbound = {**TLS, "src_ip": C2, "src_port": 443, "dst_ip": "10.30.1.10", "dst_port": 40001, "time": "2026-11-20T02:33:00Z"}
    assert [f.stage for f in _intel_findings(TLS, inbound)] == ["c2", "access"]


def test_every_technique_of_a_finding_has_a_sighting_with_the_findings_count(tmp_path: Path) -> None:
    findings = make_findings()
    b = incident_bundle(make_incident(findings), make_config())
    sighted = _sighted(b)
    expected: Counter = Counter()
    for f in findings:
        for t in dict.fromkeys(f.techniques):
            expected[t] += f.count
    assert sighted == expected
    ids = [s["id"] for s in by_type(b, "sighting")]
    assert len(ids) == len(set(ids)) == sum(len(set(f.techniques)) for f in findings)
    assert validate_bundle_file(write_bundle(b, tmp_path)) == []
