"""Recommended ICS mitigations: MITRE's mitigations of the techniques seen, as the producer's
own course-of-action references linked ``mitigates`` to its technique references; never an
object in MITRE's id space."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from stix_export import attack, mitigations
from stix_export.bundle import incident_bundle
from stix_export.validate import validate_bundle_file
from stix_export.writer import write_bundle
from tests.test_attack_mapping import MITRE_BUNDLE
from tests.test_stix_export import by_type, index, make_config, make_findings, make_incident
from tests.test_stix_misp import misp_import
from tests.test_stix_redaction import ISAC, SECRET, profile, profiles_config


def _mitre_objects() -> list[dict]:
    return json.loads(MITRE_BUNDLE.read_text(encoding="utf-8"))["objects"]


def test_the_packaged_data_is_mitres_for_every_technique_used() -> None:
    techniques = {t.id: t.stix_id for t in attack.all_techniques().values() if t.stix_id}
    packaged = yaml.safe_load(mitigations.data_path().read_text(encoding="utf-8"))
    assert packaged == mitigations.build_data(_mitre_objects(), techniques)
    # every mitigates link MITRE has for a technique cranewatch cites is there
    mitre = {o["id"]: o for o in _mitre_objects()}
    links = {(mitre[r["source_ref"]]["external_references"][0]["external_id"], r["target_ref"])
             for r in mitre.values() if r["type"] == "relationship" and r["relationship_type"] == "mitigates"
             and r["target_ref"] in techniques.values()}
    packaged_links = {(link["mitigation"], techniques[t]) for t, ls in packaged["techniques"].items() for link in ls}
    assert links == packaged_links and len(links) > 100
    assert "The MITRE Corporation" in mitigations.data_path().read_text(encoding="utf-8").split("mitigations:")[0]


def test_each_technique_seen_gets_mitres_mitigations_as_the_producers_references(tmp_path: Path) -> None:
    b = incident_bundle(make_incident(make_findings()), make_config())
    objs = index(b)
    producer = by_type(b, "identity")[0]["id"]
    mitre_ids = {o["id"] for o in _mitre_objects()}
    coas = by_type(b, "course-of-action")
    rels = [r for r in by_type(b, "relationship") if r["relationship_type"] == "mitigates"]
    expected = {}
    for ap in by_type(b, "attack-pattern"):
        tid = ap["external_references"][0]["external_id"]
        for mit, how in mitigations.for_technique(tid):
            expected[(mit.id, ap["id"])] = (mit, how)
    got = {}
    for r in rels:
        coa, target = objs[r["source_ref"]], objs[r["target_ref"]]
        assert coa["type"] == "course-of-action" and target["type"] == "attack-pattern"
        got[(coa["external_references"][0]["external_id"], target["id"])] = r
    assert set(got) == set(expected) and len(got) > 10
    for (mid, _), r in got.items():
        assert r["description"] == expected[(mid, r["target_ref"])][1]
    for coa in coas:
        mit = mitigations.load_mitigations().mitigations[coa["external_references"][0]["external_id"]]
        assert coa["external_references"] == [{"source_name": "mitre-attack", "external_id": mit.id}]
        assert coa["name"] == mit.name and coa["description"].startswith(mit.description) and mit.url in coa["description"]
        assert coa["created_by_ref"] == producer and coa["object_marking_refs"] == by_type(b, "sighting")[0]["object_marking_refs"]
    assert len({c["id"] for c in coas}) == len(coas)
    # nothing in MITRE's id space: neither MITRE's course-of-action nor its relationship ids
    assert not ({o["id"] for o in b["objects"]} & mitre_ids)
    assert validate_bundle_file(write_bundle(b, tmp_path)) == []


def test_mitigations_are_one_version_in_every_bundle_and_profile(tmp_path: Path) -> None:
    cfg = profiles_config(ISAC)
    findings = make_findings()
    first = incident_bundle(make_incident(findings), cfg, profile(cfg, "internal"), SECRET)
    other = incident_bundle(make_incident((findings[1],), incident_id="inc-other"), cfg, profile(cfg, "internal"), SECRET)
    isac = incident_bundle(make_incident(findings), cfg, profile(cfg, "isac"), SECRET)

    def keyed(b):
        return {o["id"]: {k: v for k, v in o.items() if k != "object_marking_refs"}
                for o in b["objects"] if o["type"] == "course-of-action" or o.get("relationship_type") == "mitigates"}

    a, o, i = keyed(first), keyed(other), keyed(isac)
    assert o and all(a[k] == v for k, v in o.items())  # same id, same version, same content
    assert a == i  # MITRE's text is not rewritten by redaction; only the TLP marking differs
    assert validate_bundle_file(write_bundle(isac, tmp_path, "stix-isac")) == []


def test_every_shipped_mitigation_survives_the_redacting_profiles_final_scan(tmp_path: Path) -> None:
    """An incident citing every technique of the data file: MITRE's texts hold nothing the
    fail-closed scan would take for a port value, and the bundle validates strictly."""
    cfg = profiles_config(ISAC)
    f = make_findings()[0]
    every = dataclasses.replace(f, techniques=tuple(t.id for t in attack.all_techniques().values()))
    b = incident_bundle(make_incident((every,)), cfg, profile(cfg, "isac"), SECRET)
    assert {c["external_references"][0]["external_id"] for c in by_type(b, "course-of-action")} == set(
        mitigations.load_mitigations().mitigations)
    assert validate_bundle_file(write_bundle(b, tmp_path, "stix-isac")) == []


@pytest.mark.parametrize("level", ["amber", "clear"])
def test_misp_gets_the_mitigations_as_course_of_action_clusters(level: str, tmp_path: Path) -> None:
    b = incident_bundle(make_incident(), make_config(level))
    event, _ = misp_import(write_bundle(b, tmp_path))
    got = {c.meta.get("external_id") for g in event.galaxies if g.type == "stix-2.1-course-of-action" for c in g.clusters}
    assert got == {c["external_references"][0]["external_id"] for c in by_type(b, "course-of-action")} and got
