"""Indicators peers can act on: legitimate infrastructure is never one, and every indicator
says how long it holds, which ATT&CK phases it belongs to and what kind of activity it is."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pipelines.config import Config, parse_config
from stix_export.bundle import incident_bundle
from stix_export.validate import validate_bundle_file
from stix_export.writer import write_bundle
from tests.test_stix_export import EGRESS_PEER, EXTERNAL_VPN_PEER, by_type, make_config, make_incident


def _config(**export: Any) -> Config:
    data = make_config().model_dump(mode="json", exclude_defaults=True)
    data["vendors"] = [
        {"name": "zpmc", "accounts": ["zpmc-svc1"], "allowed_networks": ["203.0.113.0/24"],
         "tunnel_networks": ["10.212.134.0/24"]}
    ]
    data["export"] = {**data.get("export", {}), **export}
    return parse_config(data, "test.yaml")


def _t(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_vendor_address_from_allowed_networks_is_a_note_not_an_indicator(tmp_path: Path) -> None:
    b = incident_bundle(make_incident(), _config())
    patterns = [i["pattern"] for i in by_type(b, "indicator")]
    assert all(EXTERNAL_VPN_PEER not in p for p in patterns), patterns
    assert any(EGRESS_PEER in p for p in patterns)  # the unknown internet peer still is one
    notes = by_type(b, "note")
    assert len(notes) == 1
    note = notes[0]
    assert note["abstract"] == "Known vendor infrastructure, used outside the window"
    assert EXTERNAL_VPN_PEER in note["content"] and "zpmc" in note["content"]
    addr_ids = {o["id"] for o in by_type(b, "ipv4-addr") if o["value"] == EXTERNAL_VPN_PEER}
    assert addr_ids <= set(note["object_refs"]) and addr_ids
    assert any(r.startswith("observed-data--") for r in note["object_refs"])
    assert validate_bundle_file(write_bundle(b, tmp_path)) == []


def test_an_allowlisted_address_is_never_an_indicator() -> None:
    cfg = _config()
    data = cfg.model_dump(mode="json", exclude_defaults=True)
    data["detections"] = {"ot_unexpected_egress": {"allowlist": {"addresses": [EGRESS_PEER]}}}
    b = incident_bundle(make_incident(), parse_config(data, "test.yaml"))
    assert by_type(b, "indicator") == []
    assert {n["abstract"] for n in by_type(b, "note")} == {
        "Known vendor infrastructure, used outside the window", "Allowlisted address, not an indicator",
    }


def test_indicators_expire_and_carry_phases_labels_and_honest_types(tmp_path: Path) -> None:
    b = incident_bundle(make_incident(), make_config())
    indicators = {i["pattern"].split("'")[1]: i for i in by_type(b, "indicator")}
    egress = indicators[EGRESS_PEER]
    assert _t(egress["valid_until"]) - _t(egress["valid_from"]) == dt.timedelta(days=30)
    assert egress["indicator_types"] == ["anomalous-activity"]  # a behavioural detection, not known-bad
    assert "ot_unexpected_egress" in egress["labels"] and "exfiltration" in egress["labels"]
    phases = {p["phase_name"] for p in egress["kill_chain_phases"]}
    assert {p["kill_chain_name"] for p in egress["kill_chain_phases"]} == {"mitre-ics-attack"}
    assert "initial-access" in phases  # T0883 Internet Accessible Device
    assert validate_bundle_file(write_bundle(b, tmp_path)) == []


def test_the_indicator_lifetime_is_configurable() -> None:
    b = incident_bundle(make_incident(), _config(indicator_lifetime="2h"))
    (ind,) = by_type(b, "indicator")
    assert _t(ind["valid_until"]) - _t(ind["valid_from"]) == dt.timedelta(hours=2)
