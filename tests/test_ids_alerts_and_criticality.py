"""Suricata alerts become findings that correlate like any other; an asset's criticality
raises the severity of findings about it, with the reasoning kept on the finding."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
from parse_helpers import parse_all

from detections.testing import TEST_TERMINAL, events_table, terminal_config
from transforms.correlate import correlate
from transforms.detect import Detector
from transforms.enrich import Enricher

ALERT = {"timestamp": "2026-11-18T03:00:00.000000+0000", "flow_id": 7, "event_type": "alert",
         "src_ip": "10.212.134.200", "src_port": 51000, "dest_ip": "10.30.1.10", "dest_port": 502, "proto": "TCP",
         "app_proto": "modbus", "alert": {"action": "allowed", "gid": 1, "signature_id": 2027001, "rev": 2,
                                          "signature": "ET SCADA Modbus write to PLC", "category": "Attempted Administrator Privilege Gain",
                                          "severity": 1}}
WRITE = {"time": "2026-11-18T03:01:00Z", "kind": "ot", "action": "modbus.write_single_register",
         "src_ip": "10.212.134.200", "src_port": 51000, "dst_ip": "10.30.1.10", "dst_port": 502, "target": "unit=1;addr=10"}


def test_suricata_alert_is_a_finding_that_joins_the_writes_incident(tmp_path: Path) -> None:
    eve = tmp_path / "eve.json"
    eve.write_text(json.dumps(ALERT) + "\n")
    alerts, dead, _ = parse_all("suricata_eve", "ids", eve)
    assert not dead
    cfg = terminal_config({})
    table = Enricher(cfg)(pa.concat_tables([alerts, events_table([WRITE])]))
    findings, _ = Detector(cfg).scan(table)
    by_id = {f.detection_id: f for f in findings}
    alert = by_id["ids_alert"]
    assert alert.severity == 80 and alert.asset_id == "sts01-plc"
    assert alert.title == "IDS alert: ET SCADA Modbus write to PLC (10.212.134.200 → 10.30.1.10)"
    fields = alert.evidence[0].fields
    assert (fields["signature_id"], fields["ids_severity"], fields["category"]) == (
        "2027001", "1", "Attempted Administrator Privilege Gain")
    (incident,) = correlate([alert, by_id["modbus_write_non_engineering"]], gap=1800)
    assert {f.detection_id for f in incident.findings} == {"ids_alert", "modbus_write_non_engineering"}


def _write_finding(criticality: str | None):
    assets = [dict(a) for a in TEST_TERMINAL["inventory"]["assets"]]
    if criticality:
        assets[0]["criticality"] = criticality
    cfg = terminal_config({"inventory": {"assets": assets}})
    findings, _ = Detector(cfg).scan(Enricher(cfg)(events_table([WRITE])))
    return next(f for f in findings if f.detection_id == "modbus_write_non_engineering")


def test_asset_criticality_raises_severity_with_reasoning() -> None:
    normal, high, safety = _write_finding(None), _write_finding("high"), _write_finding("safety")
    assert (normal.severity, high.severity, safety.severity) == (75, 85, 90)
    assert "severity_reason" not in normal.context
    assert safety.context["severity_reason"] == (
        "sts01-plc is a safety-critical asset: command finding raised 75 → 90")


def test_an_unknown_criticality_is_a_config_error() -> None:
    import pytest

    from pipelines.config import ConfigError

    assets = [dict(a) for a in TEST_TERMINAL["inventory"]["assets"]]
    assets[0]["criticality"] = "vital"
    with pytest.raises(ConfigError, match="criticality"):
        terminal_config({"inventory": {"assets": assets}})
