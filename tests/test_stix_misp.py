"""MISP's own STIX 2.1 importer (misp-stix, ExternalSTIX2toMISPParser) on cranewatch bundles.

What an ISAC running MISP gets from a bundle: the TLP tag on the event, the ATT&CK for ICS
techniques with their external ids (as galaxy clusters), the indicators' addresses flagged
``to_ids`` (for detection), and errors only for the object types MISP does not import
(``incident``, ``infrastructure``: their essentials are repeated in the grouping and sighting
descriptions, see docs/stix.md).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# misp-stix is in setup.py's test extra (make test installs it): a missing one fails, never skips.
from misp_stix_converter import ExternalSTIX2toMISPParser  # noqa: E402
from misp_stix_converter.tools.stix2_loading_helpers import load_stix2_file  # noqa: E402

from stix_export import tlp  # noqa: E402
from stix_export.bundle import incident_bundle  # noqa: E402
from stix_export.writer import write_bundle  # noqa: E402
from tests.test_stix_export import make_config, make_incident  # noqa: E402
from tests.test_stix_redaction import ISAC, SECRET, profile, profiles_config  # noqa: E402

#: STIX object types misp-stix 2026.10.12 does not import (reported as errors, by design).
KNOWN_UNSUPPORTED = {"incident", "infrastructure"}


def misp_import(path: Path) -> tuple[Any, list[str]]:
    parser = ExternalSTIX2toMISPParser()
    parser.load_stix_bundle(load_stix2_file(str(path)))
    parser.parse_stix_bundle(single_event=True)
    errors = [e for errs in parser.errors.values() for e in errs]
    return parser.misp_event, errors


def attribute_flags(event_json: dict[str, Any]) -> dict[str, bool]:
    """value -> to_ids, over the event's attributes and its objects' attributes."""
    flags: dict[str, bool] = {}
    attrs = list(event_json.get("Attribute", []))
    for obj in event_json.get("Object", []):
        attrs += obj.get("Attribute", [])
    for a in attrs:
        flags[str(a["value"])] = flags.get(str(a["value"]), False) or bool(a["to_ids"])
    return flags


def check_event(bundle: dict[str, Any], path: Path, level: str) -> Any:
    event, errors = misp_import(path)
    tags = [t.name for t in event.tags]
    assert f"tlp:{level}" in tags, tags
    # Only the known unsupported types, each named, nothing else.
    unsupported = set()
    for e in errors:
        kind = e.rsplit(":", 1)[-1].strip()
        assert kind in KNOWN_UNSUPPORTED, e
        unsupported.add(kind)
    types = {o["type"] for o in bundle["objects"]}
    assert unsupported == KNOWN_UNSUPPORTED & types
    # ATT&CK external ids survive as galaxy cluster metadata.
    expected = {
        o["external_references"][0]["external_id"] for o in bundle["objects"] if o["type"] == "attack-pattern"
    }
    got = {c.meta.get("external_id") for g in event.galaxies for c in g.clusters}
    assert expected and expected <= got, (expected, got)
    # Every indicator's address is an attribute flagged for detection.
    flags = attribute_flags(json.loads(event.to_json()))
    for ind in (o for o in bundle["objects"] if o["type"] == "indicator"):
        value = ind["pattern"].split("'")[1]
        assert flags.get(value) is True, (value, flags)
    assert event.info == next(o for o in bundle["objects"] if o["type"] == "grouping")["name"]
    return event


@pytest.mark.parametrize("level", ["amber", "amber+strict", "red", "green", "clear"])
def test_misp_imports_the_internal_bundle(level: str, tmp_path: Path) -> None:
    bundle = incident_bundle(make_incident(), make_config(level))
    check_event(bundle, write_bundle(bundle, tmp_path), level)


def test_misp_imports_the_redacted_isac_bundle(tmp_path: Path) -> None:
    cfg = profiles_config(ISAC)
    bundle = incident_bundle(make_incident(), cfg, profile(cfg, "isac"), SECRET)
    event = check_event(bundle, write_bundle(bundle, tmp_path, "stix-isac"), "amber")
    text = event.to_json()
    for value in ("10.30.1.10", "zpmc-svc1", "sts-03-plc", "STS-03"):
        assert value not in text
    assert tlp.tlp_marking_id("amber") in json.dumps(bundle)


def test_misp_does_not_flag_known_vendor_infrastructure_for_detection(tmp_path: Path) -> None:
    """What an analyst sees for a vendor login outside its window from the vendor's own
    network: the address as a plain attribute (``to_ids`` false, so MISP never exports it to
    an IDS), the unknown internet peer flagged, every technique of the findings as a galaxy."""
    from tests.test_stix_export import EGRESS_PEER, EXTERNAL_VPN_PEER
    from tests.test_stix_indicators import _config

    bundle = incident_bundle(make_incident(), _config())
    event = check_event(bundle, write_bundle(bundle, tmp_path), "amber")
    flags = attribute_flags(json.loads(event.to_json()))
    assert flags[EXTERNAL_VPN_PEER] is False and flags[EGRESS_PEER] is True
    got = {c.meta.get("external_id") for g in event.galaxies for c in g.clusters}
    assert {"T0822", "T0859", "T0855", "T0836", "T0883", "T0882"} <= got


def test_what_a_misp_analyst_sees_for_a_threat_intel_match(tmp_path: Path) -> None:
    """A TLP:AMBER bundle holding the ISAC's TLP:GREEN indicator that matched: the event is
    titled by the grouping and tagged TLP:AMBER; the ISAC's indicator arrives as a STIX
    pattern object flagged for detection and tagged with its own TLP:GREEN; the port's
    observed flow is context (``to_ids`` only on the listed destination); techniques and
    MITRE's mitigations are galaxy clusters; the STIX sightings do not become MISP sightings
    (the importer makes none), which is why the event report carries the counts in text."""
    from tests.test_stix_intel_sighting import IND, intel_config, intel_incident

    cfg = intel_config(tmp_path)
    bundle = incident_bundle(intel_incident([IND]), cfg)
    misp, errors = misp_import(write_bundle(bundle, tmp_path / "out"))
    assert {e.rsplit(":", 1)[-1].strip() for e in errors} == KNOWN_UNSUPPORTED
    event = json.loads(misp.to_json())
    assert event["info"] == next(o for o in bundle["objects"] if o["type"] == "grouping")["name"]
    assert [t["name"] for t in event["Tag"] if t["name"].startswith("tlp:")] == ["tlp:amber"]
    pattern = next(o for o in event["Object"] if o["name"] == "stix2-pattern")
    value = next(a for a in pattern["Attribute"] if a["object_relation"] == "stix2-pattern")
    assert value["value"] == "[ipv4-addr:value ISSUBSET '91.92.240.0/22']" and value["to_ids"] is True
    assert [t["name"] for t in value["Tag"]] == ["tlp:green"]  # the ISAC's marking, not the bundle's
    flow = next(o for o in event["Object"] if o["name"] == "network-traffic")
    flags = {a["object_relation"]: a["to_ids"] for a in flow["Attribute"] if a["object_relation"] in ("src_ip", "dst_ip")}
    assert flags == {"src_ip": False, "dst_ip": True}
    galaxies = {g["type"]: {c["meta"]["external_id"][0] if isinstance(c["meta"]["external_id"], list) else c["meta"]["external_id"]
                            for c in g["GalaxyCluster"]} for g in event["Galaxy"]}
    assert galaxies["stix-2.1-attack-pattern"] == {"T0822", "T0869"}
    assert galaxies["stix-2.1-course-of-action"] == {
        c["external_references"][0]["external_id"] for c in bundle["objects"] if c["type"] == "course-of-action"}
    assert "Sighting" not in event and not any(a.get("Sighting") for a in event.get("Attribute", []))
    report = event["EventReport"][0]["content"]
    assert "Techniques: T0822 External Remote Services; T0869 Standard Application Layer Protocol" in report
