"""STIX export end to end with the real stix2 and stix2-validator: no mocks.

The incident is a scenario-2-then-4 chain on crane STS-03 plus an egress finding: a vendor
VPN login from an external address, Modbus writes from the session's tunnel address to the
crane PLC, and traffic from the PLC to an internet address.
"""
from __future__ import annotations

import ipaddress
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import stix2

from pipelines.config import Config, parse_config
from stix_export import attack, extension, ids, tlp
from stix_export.bundle import incident_bundle
from stix_export.validate import validate_bundle_file
from stix_export.writer import bundle_file_name, serialize_bundle, write_bundle
from transforms.model import Evidence, Finding, Incident, sha256_text

EXTERNAL_VPN_PEER = "203.0.113.45"
TUNNEL = "10.212.134.200"
PLC = "10.30.1.10"
EGRESS_PEER = "198.51.100.7"


def make_config(tlp_level: str = "amber") -> Config:
    data = {
        "site": {"name": "Port of Example", "terminal": "T2"},
        "sources": [{"name": "conn", "format": "zeek_conn", "paths": ["logs/conn.log"]}],
        "inventory": {
            "assets": [
                {
                    "id": "sts-03-plc",
                    "kind": "crane_plc",
                    "addresses": [PLC],
                    "zone": "crane-ot",
                    "crane": "STS-03",
                    "vendor": "zpmc",
                },
                {"id": "vpn-gw", "kind": "vpn_gateway", "addresses": ["10.212.0.1", "192.0.2.10"], "zone": "dmz"},
            ]
        },
        "export": {"tlp": tlp_level},
    }
    try:
        return parse_config(data, "test.yaml")
    except ImportError:  # parser/detection registries not importable: skip their cross-checks
        return Config.model_validate(data)


def _evidence(ref: str, time: str, **fields: Any) -> Evidence:
    return Evidence(raw_ref=ref, sha256=sha256_text(ref + time), time=time, fields=fields)


def make_findings() -> tuple[Finding, ...]:
    vpn = Finding(
        finding_id="f-vpn-0001",
        detection_id="vendor_session_outside_window",
        title="Vendor VPN login outside maintenance window",
        severity=60,
        confidence=80,
        stage="access",
        techniques=("T0822", "T0859"),
        first_seen="2026-11-20T02:14:05.123456Z",
        last_seen="2026-11-20T02:14:05.123456Z",
        asset_id="vpn-gw",
        zone="dmz",
        addresses=(EXTERNAL_VPN_PEER, TUNNEL),
        accounts=("zpmc-svc1",),
        link_keys=(TUNNEL,),
        evidence=(
            _evidence(
                "logs/openvpn-status.log:12",
                "2026-11-20T02:14:05.123456Z",
                user="zpmc-svc1",
                src_ip=EXTERNAL_VPN_PEER,
                tunnel_ip=TUNNEL,
                action="vpn.login",
            ),
        ),
    )
    modbus = Finding(
        finding_id="f-modbus-0001",
        detection_id="modbus_write_non_engineering",
        title="Modbus register writes to STS-03 PLC from a vendor VPN tunnel address",
        severity=85,
        confidence=90,
        stage="command",
        techniques=("T0855", "T0836"),
        first_seen="2026-11-20T02:16:40.000Z",
        last_seen="2026-11-20T02:17:02.500Z",
        asset_id="sts-03-plc",
        zone="crane-ot",
        addresses=(TUNNEL, PLC),
        accounts=(),
        link_keys=(TUNNEL, "sts-03-plc"),
        evidence=(
            _evidence(
                "logs/modbus.log:301",
                "2026-11-20T02:16:40Z",
                src_ip=TUNNEL,
                src_port=51515,
                dst_ip=PLC,
                dst_port=502,
                proto="tcp",
                service="modbus",
                action="modbus.write_multiple_registers",
                target="40001",
            ),
            _evidence(
                "logs/modbus.log:318",
                "2026-11-20T02:17:02.5Z",
                src_ip=TUNNEL,
                src_port=51515,
                dst_ip=PLC,
                dst_port=502,
                proto="tcp",
                service="modbus",
                action="modbus.write_single_register",
                target="40010",
            ),
        ),
        count=3,
    )
    egress = Finding(
        finding_id="f-egress-0001",
        detection_id="ot_unexpected_egress",
        title="STS-03 PLC talks to an internet address",
        severity=70,
        confidence=75,
        stage="exfiltration",
        techniques=("T0883", "T0882"),
        first_seen="2026-11-20T02:20:00Z",
        last_seen="2026-11-20T02:25:00Z",
        asset_id="sts-03-plc",
        zone="crane-ot",
        addresses=(PLC, EGRESS_PEER),
        accounts=(),
        link_keys=("sts-03-plc",),
        evidence=(
            _evidence(
                "logs/conn.log:9001",
                "2026-11-20T02:20:00Z",
                src_ip=PLC,
                src_port="49152",
                dst_ip=EGRESS_PEER,
                dst_port="443",
                proto="tcp",
            ),
        ),
        count=12,
    )
    return (vpn, modbus, egress)


def make_incident(findings: tuple[Finding, ...] | None = None, **overrides: Any) -> Incident:
    findings = make_findings() if findings is None else findings
    fields: dict[str, Any] = dict(
        incident_id="inc-20261120-sts-03-plc-0001",
        title="Vendor session, PLC writes and egress on crane STS-03",
        severity=95,
        severity_label="critical",
        stages=("access", "command", "exfiltration"),
        techniques=tuple(dict.fromkeys(t for f in findings for t in f.techniques)),
        first_seen="2026-11-20T02:14:05.123456Z",
        last_seen="2026-11-20T02:25:00Z",
        assets=("sts-03-plc",),
        primary_asset="sts-03-plc",
        zone="crane-ot",
        addresses=tuple(dict.fromkeys(a for f in findings for a in f.addresses)),
        accounts=("zpmc-svc1",),
        findings=findings,
        status="open",
        modified="2026-11-20T02:25:00Z",
    )
    fields.update(overrides)
    return Incident(**fields)


@pytest.fixture(scope="module")
def bundle() -> dict[str, Any]:
    return incident_bundle(make_incident(), make_config())


@pytest.fixture(scope="module")
def written(bundle: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bundle(bundle, tmp_path_factory.mktemp("out"))


def by_type(bundle: dict[str, Any], stix_type: str) -> list[dict[str, Any]]:
    return [o for o in bundle["objects"] if o["type"] == stix_type]


def index(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in bundle["objects"]}


# -- validity ----------------------------------------------------------------------------


def test_strict_validation_with_enforce_refs_has_no_errors_or_warnings(written: Path) -> None:
    assert validate_bundle_file(written) == []


def test_stix2_parses_without_custom_content(written: Path) -> None:
    parsed = stix2.parse(written.read_text(encoding="utf-8"), allow_custom=False)
    assert len(parsed.objects) == len(json.loads(written.read_text())["objects"])


@pytest.mark.parametrize("level", list(tlp.TLP_2_0))
def test_every_tlp_level_gives_a_valid_bundle(level: str, tmp_path: Path) -> None:
    b = incident_bundle(make_incident(), make_config(level))
    assert validate_bundle_file(write_bundle(b, tmp_path)) == []
    markings = by_type(b, "marking-definition")
    assert markings == [tlp.tlp_marking(level)]


def test_edge_cases_still_validate(tmp_path: Path) -> None:
    """A finding with no observables or techniques, and an asset missing from the inventory."""
    cms = Finding(
        finding_id="f-cms-0001",
        detection_id="cms_parameter_change",
        title="Hoist speed limit raised on STS-07",
        severity=80,
        confidence=70,
        stage="impact",
        techniques=(),
        first_seen="2026-11-21T09:00:00Z",
        last_seen="2026-11-21T09:00:00Z",
        asset_id="sts-07-cms",
        zone=None,
        addresses=(),
        accounts=(),
        link_keys=("sts-07-cms",),
        evidence=(_evidence("cms/events.log:7", "2026-11-21T09:00:00Z", target="hoist_speed_limit"),),
    )
    inc = make_incident(
        (cms,),
        incident_id="inc/../weird id",
        techniques=("T0836",),
        stages=("impact",),
        assets=("sts-07-cms",),
        primary_asset="sts-07-cms",
        zone="crane-ot",
        addresses=(),
        accounts=(),
        first_seen="2026-11-21T09:00:00Z",
        last_seen="2026-11-21T09:00:00Z",
        modified="",
    )
    b = incident_bundle(inc, make_config())
    path = write_bundle(b, tmp_path)
    assert path.parent == tmp_path / "stix" and path.name == "inc_.._weird_id.json"
    assert validate_bundle_file(path) == []
    assert not by_type(b, "observed-data") and not by_type(b, "sighting") and not by_type(b, "indicator")


def test_ipv6_and_unknown_service_validate(tmp_path: Path) -> None:
    """An IPv6 internet peer on an unregistered port with no transport: ipv6-addr, protocols [ipv6]."""
    peer = "2001:db8::7"
    f = Finding(
        finding_id="f-v6-0001",
        detection_id="ot_unexpected_egress",
        title="STS-03 PLC talks to an IPv6 internet address",
        severity=70,
        confidence=60,
        stage="exfiltration",
        techniques=("T0884",),
        first_seen="2026-11-22T10:00:00Z",
        last_seen="2026-11-22T10:00:00Z",
        asset_id="sts-03-plc",
        zone="crane-ot",
        addresses=("fd00:30::10", peer),
        accounts=(),
        link_keys=("sts-03-plc",),
        evidence=(
            _evidence("logs/conn.log:77", "2026-11-22T10:00:00Z", src_ip="fd00:30::10", src_port=40000, dst_ip=peer, dst_port=31337),
        ),
    )
    cfg = Config.model_validate(
        {**make_config().model_dump(exclude={"base_dir"}), "inventory": {"internal_networks": ["10.0.0.0/8", "fd00::/8"]}}
    )
    b = incident_bundle(make_incident((f,), techniques=("T0884",), addresses=("fd00:30::10", peer), accounts=()), cfg)
    assert validate_bundle_file(write_bundle(b, tmp_path)) == []
    [flow] = by_type(b, "network-traffic")
    assert flow["protocols"] == ["ipv6"]
    assert [i["pattern"] for i in by_type(b, "indicator")] == [f"[ipv6-addr:value = '{peer}']"]


def test_mac_addresses_become_observables_and_other_entities_stay_in_text(tmp_path: Path) -> None:
    f = make_findings()[2]
    extra = ("00-1A-2b-3c-4D-5e", "modem-7.carrier.example")
    f2 = Finding(**{**f.to_dict(), "evidence": f.evidence, "addresses": f.addresses + extra})
    b = incident_bundle(make_incident((f2,)), make_config())
    assert validate_bundle_file(write_bundle(b, tmp_path)) == []
    assert [o["value"] for o in by_type(b, "mac-addr")] == ["00:1a:2b:3c:4d:5e"]
    assert "modem-7.carrier.example" in by_type(b, "sighting")[0]["description"]


def test_service_names_are_in_the_validators_iana_list() -> None:
    from stix2validator.v21.enums import protocols

    from stix_export.bundle import PORT_SERVICES, SERVICE_NAMES, TRANSPORTS

    known = set(protocols())
    for name in [*PORT_SERVICES.values(), *SERVICE_NAMES.values(), *TRANSPORTS]:
        assert name in known, name


def test_tlp_objects_are_exactly_the_oasis_ones(tmp_path: Path) -> None:
    for level, (marking_id, name) in tlp.TLP_2_0.items():
        obj = tlp.tlp_marking(level)
        assert obj == {
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": marking_id,
            "created": "2022-10-01T00:00:00.000Z",
            "name": name,
            "extensions": {
                "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
                    "extension_type": "property-extension",
                    "tlp_2_0": level,
                }
            },
        }
        stix2.parse(obj, allow_custom=False)
    assert tlp.tlp_marking_id("TLP:AMBER+STRICT") == "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
    with pytest.raises(ValueError, match="white"):
        tlp.tlp_marking("white")


def _refs(value: Any, key: str = "") -> list[str]:
    """Every id a STIX object points at through *_ref / *_refs properties, at any depth."""
    if isinstance(value, dict):
        return [r for k, v in value.items() for r in _refs(v, k)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v, key)]
    if isinstance(value, str) and (key.endswith("_ref") or key.endswith("_refs")):
        return [value]
    return []


def test_every_reference_resolves_inside_the_bundle(bundle: dict[str, Any]) -> None:
    """enforce_refs only checks relationships; receivers need every other reference too."""
    ids_in_bundle = {o["id"] for o in bundle["objects"]}
    for obj in bundle["objects"]:
        for ref in _refs(obj):
            assert ref in ids_in_bundle, f"{obj['id']} -> {ref}"
        for ext_id in obj.get("extensions", {}):
            # OASIS-defined extensions (TLP 2.0, Incident Core) are known by id; ours is shipped.
            assert ext_id in ids_in_bundle or ext_id in {
                tlp.TLP_2_0_EXTENSION_ID,
                extension.INCIDENT_CORE_EXTENSION_ID,
            }, f"{obj['id']} uses undeclared extension {ext_id}"


# -- content -----------------------------------------------------------------------------


def test_every_object_carries_the_tlp_marking(bundle: dict[str, Any]) -> None:
    amber = tlp.tlp_marking_id("amber")
    assert by_type(bundle, "marking-definition") == [tlp.tlp_marking("amber")]
    for obj in bundle["objects"]:
        if obj["type"] != "marking-definition":
            assert obj["object_marking_refs"] == [amber], obj["id"]
    assert by_type(bundle, "ipv4-addr"), "observables must be marked too"


def test_indicators_only_for_external_addresses(bundle: dict[str, Any]) -> None:
    indicators = by_type(bundle, "indicator")
    patterns = sorted(i["pattern"] for i in indicators)
    assert patterns == [f"[ipv4-addr:value = '{EGRESS_PEER}']", f"[ipv4-addr:value = '{EXTERNAL_VPN_PEER}']"]
    for ind in indicators:
        assert ind["pattern_type"] == "stix" and ind["name"] and ind["description"]
        assert isinstance(ind["confidence"], int)
    vpn_peer = next(i for i in indicators if EXTERNAL_VPN_PEER in i["pattern"])
    assert vpn_peer["valid_from"] == "2026-11-20T02:14:05.123456Z"
    internal = [ipaddress.ip_network(n) for n in make_config().inventory.internal_networks]
    for ind in indicators:
        addr = ipaddress.ip_address(ind["pattern"].split("'")[1])
        assert not any(addr in net for net in internal)


def test_techniques_are_the_producers_references_never_mitres_ids(bundle: dict[str, Any]) -> None:
    """An object under MITRE's id with the port as creator would be a new version of MITRE's
    object in the recipient's platform: technique references live in the producer's id space."""
    mitre_ids = {t.stix_id for t in attack.all_techniques().values()}
    producer = by_type(bundle, "identity")[0]["id"]
    patterns = by_type(bundle, "attack-pattern")
    assert patterns
    for ap in patterns:
        assert ap["id"] not in mitre_ids
        assert ap["created_by_ref"] == producer
        tid = ap["external_references"][0]["external_id"]
        assert ap["id"] == ids.deterministic_id("attack-pattern", producer, "mitre-attack", tid)
        assert ap["kill_chain_phases"] == attack.resolve(tid).kill_chain_phases
        assert attack.technique_url(tid) in ap["description"]
    every_ref = json.dumps([o for o in bundle["objects"]])
    assert not any(m in every_ref for m in mitre_ids), "no MITRE STIX id anywhere in the bundle"


def test_t0855_is_exported_as_the_pinned_18_1_technique(bundle: dict[str, Any]) -> None:
    patterns = by_type(bundle, "attack-pattern")
    external_ids = {p["external_references"][0]["external_id"] for p in patterns}
    assert "T0855" in external_ids and not any(t.startswith("T169") for t in external_ids)
    ap = next(p for p in patterns if p["external_references"][0]["external_id"] == "T0855")
    # No "url": the strict validator wants hashes beside a URL (check 302); it is in the description.
    assert ap["external_references"][0] == {"source_name": "mitre-attack", "external_id": "T0855"}
    assert ap["name"] == "Unauthorized Command Message"
    assert {"kill_chain_name": "mitre-ics-attack", "phase_name": "impair-process-control"} in ap["kill_chain_phases"]


def test_observables_observations_and_sightings(bundle: dict[str, Any]) -> None:
    objs = index(bundle)
    producer = by_type(bundle, "identity")[0]
    assert producer["name"] == "Port of Example"
    assert producer["identity_class"] == "organization" and producer["sectors"] == ["transportation"]
    flows = by_type(bundle, "network-traffic")
    modbus = [f for f in flows if f["dst_port"] == 502]
    assert len(modbus) == 2  # two writes at different times stay two flows
    assert all(f["protocols"] == ["tcp", "mbap"] and f["src_port"] == 51515 and "start" in f for f in modbus)
    assert objs[modbus[0]["src_ref"]]["value"] == TUNNEL and objs[modbus[0]["dst_ref"]]["value"] == PLC
    https = [f for f in flows if f["dst_port"] == 443]
    assert https and https[0]["protocols"] == ["tcp", "https"]
    assert [u["account_login"] for u in by_type(bundle, "user-account")] == ["zpmc-svc1"]

    observed = by_type(bundle, "observed-data")
    sightings = by_type(bundle, "sighting")
    assert len(observed) == 3 and len(sightings) == 6  # one sighting per technique of each finding
    modbus_obs = next(o for o in observed if o["number_observed"] == 3)
    assert modbus_obs["first_observed"] == "2026-11-20T02:16:40.000Z"
    assert modbus_obs["last_observed"] == "2026-11-20T02:17:02.500Z"
    assert all(objs[r]["type"] in {"ipv4-addr", "network-traffic", "user-account"} for r in modbus_obs["object_refs"])
    for s in sightings:
        assert objs[s["sighting_of_ref"]]["type"] == "attack-pattern"
        assert s["where_sighted_refs"] == [producer["id"]]
        assert all(objs[r]["type"] == "observed-data" for r in s["observed_data_refs"])
        assert isinstance(s["count"], int) and isinstance(s["confidence"], int)
    modbus_sighting = next(s for s in sightings if s["count"] == 3)
    tech = objs[modbus_sighting["sighting_of_ref"]]["external_references"][0]["external_id"]
    assert tech == "T0855"  # first technique of the finding


def test_infrastructure_incident_and_grouping(bundle: dict[str, Any]) -> None:
    objs = index(bundle)
    producer_id = by_type(bundle, "identity")[0]["id"]
    [ext_def] = by_type(bundle, "extension-definition")
    assert ext_def["id"] == extension.crane_asset_extension_id(producer_id)
    assert ext_def["created_by_ref"] == producer_id and ext_def["version"] == "1.0"
    assert ext_def["extension_types"] == ["property-extension"] and "docs/stix.md" in ext_def["schema"]

    [infra] = by_type(bundle, "infrastructure")
    assert infra["infrastructure_types"] == ["control-system"]
    assert infra["extensions"][ext_def["id"]] == {
        "extension_type": "property-extension",
        "asset_id": "sts-03-plc",
        "asset_kind": "crane_plc",
        "crane": "STS-03",
        "terminal": "T2",
        "zone": "crane-ot",
    }

    [inc] = by_type(bundle, "incident")
    core = inc["extensions"][extension.INCIDENT_CORE_EXTENSION_ID]
    assert core["extension_type"] == "property-extension"
    assert core["determination"] == "suspected" and core["investigation_status"] == "open"
    assert core["criticality"] == 95
    assert isinstance(inc["confidence"], int)

    rels = by_type(bundle, "relationship")
    assert {r["relationship_type"] for r in rels} <= {"indicates", "related-to", "consists-of", "based-on", "mitigates"}
    assert any(r["source_ref"] == inc["id"] and r["target_ref"] == infra["id"] for r in rels)
    assert any(
        r["relationship_type"] == "consists-of" and r["source_ref"] == infra["id"] and objs[r["target_ref"]]["value"] == PLC
        for r in rels
    )
    for r in rels:
        assert r["source_ref"] in objs and r["target_ref"] in objs

    [grouping] = by_type(bundle, "grouping")
    assert grouping["context"] == "suspicious-activity"
    meta = {o["id"] for o in bundle["objects"] if o["type"] in {"marking-definition", "extension-definition"}}
    assert set(grouping["object_refs"]) == set(objs) - {grouping["id"]} - meta
    for needle in ("sts-03-plc", "STS-03", "access -> command -> exfiltration", "2026-11-20T02:14:05.123456Z", "T0822"):
        assert needle in grouping["description"]


def test_sdos_and_sros_are_created_by_the_producer_with_event_times(bundle: dict[str, Any]) -> None:
    producer_id = by_type(bundle, "identity")[0]["id"]
    finding_ends = {"2026-11-20T02:14:05.123456Z", "2026-11-20T02:17:02.500Z", "2026-11-20T02:25:00.000Z"}
    finding_starts = {"2026-11-20T02:14:05.123456Z", "2026-11-20T02:16:40.000Z", "2026-11-20T02:20:00.000Z"}
    shared = {"identity", "extension-definition", "attack-pattern", "course-of-action"}
    for obj in bundle["objects"]:
        if "created" not in obj or obj["type"] == "marking-definition":
            continue
        if obj["id"] == producer_id:  # the identity does not name itself as its creator
            assert "created_by_ref" not in obj
            continue
        assert obj["created_by_ref"] == producer_id, obj["id"]
        if obj["type"] not in shared and obj.get("relationship_type") != "mitigates":  # ATT&CK-dated
            assert obj["created"] == "2026-11-20T02:14:05.123456Z", obj["id"]
            # the version follows what the content depends on: the whole incident, one
            # finding (its latest evidence; an indicator: the first hits of those that saw it),
            # or nothing but the object's ids and the inventory
            if obj["type"] in ("incident", "grouping"):
                assert obj["modified"] == "2026-11-20T02:25:00.000Z", obj["id"]
            elif obj["type"] in ("relationship", "infrastructure"):
                assert obj["modified"] == obj["created"], obj["id"]
            else:
                assert obj["modified"] in (finding_starts if obj["type"] == "indicator" else finding_ends), obj["id"]


# -- determinism -------------------------------------------------------------------------


def test_two_builds_give_byte_identical_files(tmp_path: Path) -> None:
    first = write_bundle(incident_bundle(make_incident(), make_config()), tmp_path / "a")
    second = write_bundle(incident_bundle(make_incident(), make_config()), tmp_path / "b")
    assert first.name == second.name == "inc-20261120-sts-03-plc-0001.json"
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes().endswith(b"}\n")
    assert first.read_text() == serialize_bundle(json.loads(first.read_text()))


def test_a_revised_incident_keeps_ids_and_gets_a_new_modified() -> None:
    before = incident_bundle(make_incident(), make_config())
    after = incident_bundle(make_incident(modified="2026-11-20T03:00:00Z"), make_config())
    assert [o["id"] for o in before["objects"]] == [o["id"] for o in after["objects"]]
    assert by_type(after, "incident")[0]["modified"] == "2026-11-20T03:00:00.000Z"
    assert before["id"] != after["id"]


def test_a_revision_re_versions_only_the_objects_whose_content_changed() -> None:
    """One more egress hit (count 12 -> 13, seen until 02:40): the egress finding's objects, the
    incident and the grouping change; the VPN and Modbus findings' objects, the indicators
    (made from each finding's first hit), the asset and the relationships keep their version."""
    vpn, modbus, egress = make_findings()
    later = Finding(**{**egress.__dict__, "count": 13, "last_seen": "2026-11-20T02:40:00Z", "evidence": (
        *egress.evidence, _evidence("logs/conn.log:9950", "2026-11-20T02:40:00Z", src_ip=PLC, src_port="49153",
                                    dst_ip=EGRESS_PEER, dst_port="443", proto="tcp"))})
    before = index(incident_bundle(make_incident(), make_config()))
    after = index(incident_bundle(make_incident(findings=(vpn, modbus, later), last_seen="2026-11-20T02:40:00Z",
                                                modified="2026-11-20T02:40:00Z"), make_config()))
    changed, kept = [], []
    for oid, new in after.items():
        old = before.get(oid)
        if old is None or "modified" not in new:
            continue
        same = {k: v for k, v in old.items() if k != "modified"} == {k: v for k, v in new.items() if k != "modified"}
        if same:
            assert new["modified"] == old["modified"], (new["type"], "unchanged content, new version")
            kept.append(new["type"])
        else:
            assert new["modified"] > old["modified"], (new["type"], "changed content, same version")
            changed.append(new["type"])
    # the egress finding has two techniques: one sighting each
    assert sorted(changed) == ["grouping", "incident", "observed-data", "sighting", "sighting"]
    assert kept.count("indicator") == 2  # built from the findings' first hits, which did not change
    assert kept.count("observed-data") == 2 and kept.count("sighting") == 4 and "infrastructure" in kept
    assert kept.count("relationship") == len([o for o in after.values() if o["type"] == "relationship"])


def test_ids_are_v4_shaped_for_sdos_and_v5_for_observables(bundle: dict[str, Any]) -> None:
    for obj in bundle["objects"] + [bundle]:
        version = uuid.UUID(obj["id"].split("--")[1]).version
        if "created" in obj or obj["type"] == "bundle":
            assert ids.is_v4_shaped(obj["id"]), obj["id"]
        else:
            assert version == 5, obj["id"]


def test_deterministic_id_shape_and_stability() -> None:
    a = ids.deterministic_id("incident", "inc-1")
    assert a == ids.deterministic_id("incident", "inc-1")
    assert a.startswith("incident--") and ids.is_v4_shaped(a)
    assert a != ids.deterministic_id("incident", "inc-2")
    assert ids.deterministic_id("sighting", "a:b", "c") != ids.deterministic_id("sighting", "a", "b:c")
    u = uuid.UUID(a.split("--")[1])
    assert u.version == 4 and u.variant == uuid.RFC_4122
    assert not ids.is_v4_shaped("ipv4-addr--7dd44d27-f473-5ba9-b12b-0d3a61bbed2e")


def test_unknown_technique_fails_the_export() -> None:
    f = make_findings()[0]
    bad = Finding(**{**f.to_dict(), "evidence": f.evidence, "techniques": ("T0999",)})
    with pytest.raises(attack.UnknownTechniqueError, match="T0999"):
        incident_bundle(make_incident((bad,), techniques=("T0999",)), make_config())


def test_file_name_comes_from_the_incident_id(bundle: dict[str, Any]) -> None:
    assert bundle_file_name(bundle) == "inc-20261120-sts-03-plc-0001.json"


def test_a_revision_by_older_evidence_re_versions_every_finding_object() -> None:
    """Streaming: a late hit older than everything the incident had bumps the incident by a
    microsecond; which finding it changed is unknown, so no object keeps its old version."""
    vpn, modbus, egress = make_findings()
    late = Finding(**{**egress.__dict__, "count": 13})
    before = index(incident_bundle(make_incident(), make_config()))
    after = index(incident_bundle(make_incident(findings=(vpn, modbus, late), modified="2026-11-20T02:25:00.000001Z"),
                                  make_config()))
    for oid, new in after.items():
        if new["type"] in ("observed-data", "sighting", "indicator", "incident", "grouping"):
            assert new["modified"] == "2026-11-20T02:25:00.000001Z" != before[oid]["modified"], new["type"]
