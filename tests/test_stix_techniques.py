"""Techniques as a recipient counts them: C2 contact is shared as C2, and every technique of
a finding gets its own sighting."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from stix_export.bundle import incident_bundle
from stix_export.validate import validate_bundle_file
from stix_export.writer import write_bundle
from tests.test_stix_export import _evidence, by_type, index, make_config, make_findings, make_incident
from transforms.model import Finding

C2 = "198.51.100.7"


def _intel_finding(fid: str, evidence: tuple, **kw: Any) -> Finding:
    return Finding(
        finding_id=fid, detection_id="threat_intel_match", title=f"Match of {C2}", severity=70, confidence=70,
        stage="access", techniques=("T0822", "T0869"), first_seen="2026-11-20T02:30:00Z",
        last_seen="2026-11-20T02:31:00Z", asset_id="sts-03-plc", zone="crane-ot",
        addresses=("10.30.1.10", C2), accounts=(), link_keys=("sts-03-plc",), evidence=evidence, **kw,
    )


def _sighted(bundle: dict[str, Any]) -> Counter:
    objs = index(bundle)
    out: Counter = Counter()
    for s in by_type(bundle, "sighting"):
        target = objs.get(s["sighting_of_ref"])
        if target and target["type"] == "attack-pattern":
            out[target["external_references"][0]["external_id"]] += s["count"]
    return out


def test_dns_and_tls_to_a_known_c2_are_shared_as_command_and_control(tmp_path: Path) -> None:
    dns = _evidence("zeek/dns.log:4", "2026-11-20T02:30:00Z", kind="flow", action="dns.query", src_ip="10.30.1.10",
                    src_port=40000, dst_ip="10.40.0.53", dst_port=53, proto="udp", target="c2.example",
                    intel_matched=["c2.example"])
    tls = _evidence("zeek/conn.log:7", "2026-11-20T02:31:00Z", kind="flow", src_ip="10.30.1.10", src_port=40001,
                    dst_ip=C2, dst_port=443, proto="tcp", intel_matched=[C2])
    f = _intel_finding("f-c2-1", (dns, tls), count=2)
    b = incident_bundle(make_incident((f,), stages=("access",)), make_config())
    sighted = _sighted(b)
    assert set(sighted) == {"T0869", "T0885"}, sighted  # not T0822 External Remote Services
    assert sighted["T0869"] == sighted["T0885"] == 2
    text = next(s for s in by_type(b, "sighting"))["description"]
    assert "stage command-and-control" in text and "T0822" not in text
    assert "T0822" not in by_type(b, "incident")[0]["description"]
    assert validate_bundle_file(write_bundle(b, tmp_path)) == []


def test_a_login_from_a_listed_address_stays_initial_access() -> None:
    login = _evidence("vpn.log:3", "2026-11-20T02:30:00Z", kind="remote_access", action="vpn.login",
                      user="zpmc-svc1", src_ip=C2, intel_matched=[C2])
    b = incident_bundle(make_incident((_intel_finding("f-login-1", (login,)),)), make_config())
    assert "T0822" in _sighted(b)


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
