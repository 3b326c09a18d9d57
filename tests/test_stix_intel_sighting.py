"""Issue 5: a threat-intel match produces a sighting of the ISAC's indicator.

The threat_intel_match finding names the matched indicator ids in its evidence fields
(``indicators``); the bundle gets one sighting per indicator with ``sighting_of_ref`` = the
ISAC's id and includes the indicator as received from the intel store (with the identity
and TLP marking that came with it), validated strictly with enforce_refs and parsed by
stix2 without custom content, for the internal profile and a redacting one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import stix2

from pipelines.config import Config
from stix_export import intel, tlp
from stix_export.bundle import incident_bundle
from stix_export.validate import validate_bundle_file
from stix_export.writer import serialize_bundle, write_bundle
from tests.test_stix_export import PLC, _evidence, by_type, index, make_config, make_incident
from tests.test_stix_redaction import ISAC, SECRET, leaks, profile, redacted_values

BAD = "91.92.243.200"
ISAC_IDENTITY = "identity--7d1c1f0e-2b7a-4c1e-9a53-3b0a4c6d2e11"
IND = "indicator--0b8f0f4e-6a8e-4c53-9d0c-0c6c8c1d0a02"
IND_RED = "indicator--0b8f0f4e-6a8e-4c53-9d0c-0c6c8c1d0a09"
GREEN = tlp.tlp_marking_id("green")


def isac_bundle() -> dict[str, Any]:
    common = {"spec_version": "2.1", "created": "2026-10-01T00:00:00.000Z", "modified": "2026-10-01T00:00:00.000Z"}
    return {"type": "bundle", "id": "bundle--5d0f3bd4-4c1b-4f4e-9d1e-2f8c4b0a1c02", "objects": [
        tlp.tlp_marking("green"),
        {"type": "identity", "id": ISAC_IDENTITY, **common, "name": "Maritime Transportation System ISAC",
         "identity_class": "organization", "description": "The ISAC.", "created_by_ref": ISAC_IDENTITY, "object_marking_refs": [GREEN]},
        {"type": "indicator", "id": IND, **common, "created_by_ref": ISAC_IDENTITY, "object_marking_refs": [GREEN],
         "name": "Bulletproof hosting range",
         "description": "Hosting range used for scanning and C2 against port OT in 2026.", "indicator_types": ["malicious-activity"], "pattern_type": "stix",
         "pattern": "[ipv4-addr:value ISSUBSET '91.92.240.0/22']", "valid_from": "2026-10-01T00:00:00Z"},
        {"type": "indicator", "id": IND_RED, **common, "created_by_ref": ISAC_IDENTITY,
         "object_marking_refs": [tlp.tlp_marking_id("red")], "name": "Restricted C2", "description": "Shared with ports only.", "pattern_type": "stix",
         "pattern": f"[ipv4-addr:value = '{BAD}']", "valid_from": "2026-10-01T00:00:00Z"},
    ]}


def intel_config(tmp: Path, tlp_level: str = "amber", profiles: list[dict[str, Any]] | None = None) -> Config:
    src = tmp / "isac.json"
    src.write_text(json.dumps(isac_bundle()), encoding="utf-8")
    intel.import_files(tmp / "intel" / "store.json", [src])
    data = make_config(tlp_level).model_dump(exclude={"base_dir"}, by_alias=True)
    if profiles:
        data["export"] = {"tlp": tlp_level, "profiles": [{"name": "internal", "tlp": "red"}, *profiles]}
    return Config.model_validate({**data, "base_dir": str(tmp)})


def intel_incident(indicators: list[str]):
    from transforms.model import Finding

    ev = _evidence("logs/conn.log:77", "2026-11-20T02:30:00Z", kind="flow", src_ip=PLC, src_port=50000,
                   dst_ip=BAD, dst_port=443, proto="tcp", indicators=indicators, intel_sources=["file:isac.json"])
    f = Finding(
        finding_id="f-intel", detection_id="threat_intel_match",
        title=f"flow {PLC} → {BAD} matches threat intel (Bulletproof hosting range: 91.92.240.0/22)",
        severity=70, confidence=70, stage="access", techniques=("T0822", "T0869"),
        first_seen="2026-11-20T02:30:00Z", last_seen="2026-11-20T02:35:00Z", asset_id="sts-03-plc",
        zone="crane-ot", addresses=(PLC, BAD), accounts=(), link_keys=("asset:sts-03-plc",),
        evidence=(ev,), count=2,
    )
    return make_incident(findings=(f,), stages=("access",), last_seen="2026-11-20T02:35:00Z",
                         modified="2026-11-20T02:35:00Z", accounts=())


def test_a_match_is_a_sighting_of_the_isac_indicator(tmp_path: Path) -> None:
    cfg = intel_config(tmp_path)
    b = incident_bundle(intel_incident([IND]), cfg)
    path = write_bundle(b, tmp_path / "out")
    assert validate_bundle_file(path) == []
    stix2.parse(path.read_text(encoding="utf-8"), allow_custom=False)
    objs = index(b)
    intel_sightings = [s for s in by_type(b, "sighting") if s["sighting_of_ref"] == IND]
    assert len(intel_sightings) == 1
    s = intel_sightings[0]
    assert objs[s["where_sighted_refs"][0]]["name"] == "Port of Example"
    assert all(objs[r]["type"] == "observed-data" for r in s["observed_data_refs"])
    assert s["count"] == 2 and s["object_marking_refs"] == [tlp.tlp_marking_id("amber")]
    # the indicator as received: same id and content, its creator and marking with it
    received = next(o for o in isac_bundle()["objects"] if o["id"] == IND)
    assert objs[IND] == received
    assert objs[ISAC_IDENTITY]["name"] == "Maritime Transportation System ISAC"
    assert objs[GREEN] == tlp.tlp_marking("green")
    # the technique sighting is still there
    assert any(objs[x["sighting_of_ref"]]["type"] == "attack-pattern" for x in by_type(b, "sighting"))
    grouping = by_type(b, "grouping")[0]
    assert IND in grouping["object_refs"] and ISAC_IDENTITY in grouping["object_refs"]


def test_deterministic(tmp_path: Path) -> None:
    cfg = intel_config(tmp_path)
    first = serialize_bundle(incident_bundle(intel_incident([IND]), cfg))
    intel.store._CONFIG_CACHE.clear()
    assert serialize_bundle(incident_bundle(intel_incident([IND]), cfg)) == first


def test_more_restrictive_indicator_is_not_reshared(tmp_path: Path) -> None:
    cfg = intel_config(tmp_path)  # profile TLP:AMBER, indicator TLP:RED
    b = incident_bundle(intel_incident([IND, IND_RED]), cfg)
    objs = index(b)
    assert IND in objs and IND_RED not in objs
    assert not [s for s in by_type(b, "sighting") if s["sighting_of_ref"] == IND_RED]
    assert validate_bundle_file(write_bundle(b, tmp_path / "out")) == []


def test_indicator_unknown_to_the_store_gives_no_dangling_sighting(tmp_path: Path) -> None:
    cfg = intel_config(tmp_path)
    b = incident_bundle(intel_incident(["indicator--00000000-0000-4000-8000-000000000000"]), cfg)
    assert all(index(b)[s["sighting_of_ref"]]["type"] == "attack-pattern" for s in by_type(b, "sighting"))


@pytest.mark.parametrize("level", list(tlp.TLP_2_0))
def test_every_tlp_level_validates(level: str, tmp_path: Path) -> None:
    b = incident_bundle(intel_incident([IND]), intel_config(tmp_path, level))
    assert validate_bundle_file(write_bundle(b, tmp_path / "out")) == []
    assert (IND in index(b)) == (level != "clear")


def test_survives_redaction(tmp_path: Path) -> None:
    cfg = intel_config(tmp_path, profiles=[ISAC])
    b = incident_bundle(intel_incident([IND]), cfg, profile(cfg, "isac"), SECRET)
    path = write_bundle(b, tmp_path / "out")
    assert validate_bundle_file(path) == []
    stix2.parse(path.read_text(encoding="utf-8"), allow_custom=False)
    objs = index(b)
    received = next(o for o in isac_bundle()["objects"] if o["id"] == IND)
    assert objs[IND] == received  # the ISAC's object is not rewritten
    assert [s for s in by_type(b, "sighting") if s["sighting_of_ref"] == IND]
    assert any(o.get("value") == BAD for o in by_type(b, "ipv4-addr"))  # the external address stays
    assert leaks(b, [v for v in redacted_values(cfg) if v != "logs/conn.log:77"] + ["logs/conn.log:77"]) == []


def test_without_the_creator_identity_created_by_ref_is_left_out(tmp_path: Path) -> None:
    src = tmp_path / "isac.json"
    bundle = isac_bundle()
    bundle["objects"] = [o for o in bundle["objects"] if o["type"] != "identity"]
    src.write_text(json.dumps(bundle), encoding="utf-8")
    intel.import_files(tmp_path / "intel" / "store.json", [src])
    data = make_config().model_dump(exclude={"base_dir"}, by_alias=True)
    cfg = Config.model_validate({**data, "base_dir": str(tmp_path)})
    b = incident_bundle(intel_incident([IND]), cfg)
    path = write_bundle(b, tmp_path / "out")
    assert validate_bundle_file(path) == []
    copy = index(b)[IND]
    assert "created_by_ref" not in copy and ISAC_IDENTITY not in index(b)
    assert {k: v for k, v in next(o for o in bundle["objects"] if o["id"] == IND).items() if k != "created_by_ref"} == copy


# --- echoed intel: the ISAC's match is its sighting; nothing of the ISAC's is pushed back ------


def echo_incident(with_egress: bool):
    """A threat-intel match on BAD (inside the ISAC's 91.92.240.0/22, as the detection names it
    in ``intel_matched``), optionally beside an egress finding to the same address."""
    from transforms.model import Finding

    match = intel_incident([IND]).findings[0]
    ev = _evidence("logs/conn.log:77", "2026-11-20T02:30:00Z", kind="flow", src_ip=PLC, src_port=50000, dst_ip=BAD,
                   dst_port=443, proto="tcp", indicators=[IND], intel_sources=["file:isac.json"], intel_matched=[BAD])
    findings = [Finding(**{**match.__dict__, "evidence": (ev,)})]
    if with_egress:
        out = _evidence("logs/conn.log:90", "2026-11-20T02:33:00Z", kind="flow", src_ip=PLC, src_port=50001,
                        dst_ip=BAD, dst_port=443, proto="tcp", bytes_out=9_000_000)
        findings.append(Finding(**{**match.__dict__, "finding_id": "f-egress", "detection_id": "ot_unexpected_egress",
                                   "title": f"crane PLC {PLC} sent 9 MB to {BAD}", "stage": "exfiltration",
                                   "techniques": ("T0882",), "evidence": (out,), "count": 1}))
    return make_incident(findings=tuple(findings), stages=tuple(dict.fromkeys(f.stage for f in findings)),
                         last_seen="2026-11-20T02:35:00Z", modified="2026-11-20T02:35:00Z", accounts=())


def test_a_match_on_the_isac_indicator_is_its_sighting_not_a_new_indicator(tmp_path: Path) -> None:
    b = incident_bundle(echo_incident(with_egress=False), intel_config(tmp_path))
    assert validate_bundle_file(write_bundle(b, tmp_path / "out")) == []
    assert [s for s in by_type(b, "sighting") if s["sighting_of_ref"] == IND]
    assert [i["id"] for i in by_type(b, "indicator")] == [IND]  # the ISAC's, no port-made echo of it


def test_an_indicator_for_other_findings_is_derived_from_the_isac_indicator(tmp_path: Path) -> None:
    b = incident_bundle(echo_incident(with_egress=True), intel_config(tmp_path))
    assert validate_bundle_file(write_bundle(b, tmp_path / "out")) == []
    (own,) = [i for i in by_type(b, "indicator") if i["id"] != IND]
    assert BAD in own["pattern"]
    derived = [r for r in by_type(b, "relationship") if r["relationship_type"] == "derived-from"]
    assert [(r["source_ref"], r["target_ref"]) for r in derived] == [(own["id"], IND)]


def test_share_does_not_push_back_objects_created_by_others(tmp_path: Path) -> None:
    from taxii2client.v21 import Collection, as_pages

    from stix_export.share import collection_url, push_bundles
    from tests import taxii_server

    b = incident_bundle(echo_incident(with_egress=True), intel_config(tmp_path))
    path = write_bundle(b, tmp_path / "out")
    for server in taxii_server.serve():
        col = Collection(collection_url(server.url, taxii_server.COLLECTION_ID),
                         user=taxii_server.USER, password=taxii_server.PASSWORD)

        def held() -> set[str]:
            return {r["id"] for page in as_pages(col.get_manifest, per_request=100) for r in page.get("objects", [])}

        result = push_bundles([path], col)
        assert result.withheld == 2 and not result.failed  # the ISAC's identity and indicator
        assert "2 object(s) created by others" in result.describe("c")
        pushed = held()
        assert IND not in pushed and ISAC_IDENTITY not in pushed
        assert {s["id"] for s in by_type(b, "sighting")} <= pushed  # the port's sightings of them do go
        assert result.sent == len(b["objects"]) - 2
        again = push_bundles([path], col, include_received=True)  # asked for: sent
        assert again.sent == 2 and {IND, ISAC_IDENTITY} <= held()
