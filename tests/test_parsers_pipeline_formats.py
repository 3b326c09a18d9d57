"""The formats added with issue 3 through a whole batch run: every source accounted for
(read = parsed + dead-lettered) and a NetFlow-style Suricata flow from the internet to a
PLC's S7 port found like a Zeek conn record would be."""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from test_parsers_globalprotect import CONNECTED, LOGOUT
from test_parsers_openvpn import LOG, V2
from test_parsers_suricata_eve import ALERT, FLOW, NETFLOW, UDP
from test_parsers_windows_security import EVTX_LOGOFF, FAILED_FLAT, RDP_LOGON

from pipelines.batch import run_batch
from pipelines.config import load_config
from pipelines.summary import build_summary


def test_batch_run_over_the_new_formats(tmp_path: Path, shared_fixtures: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "eve.json").write_text("\n".join(json.dumps(x) for x in [FLOW, NETFLOW, UDP, ALERT]) + "\n")
    (data / "sec.jsonl").write_text("\n".join(json.dumps(x) for x in [RDP_LOGON, FAILED_FLAT, EVTX_LOGOFF]) + "\n")
    (data / "openvpn.log").write_text("\n".join(LOG[:5]) + "\n")
    (data / "status.log").write_text(V2)
    (data / "gp.log").write_text(CONNECTED + "\n" + LOGOUT + "\n")
    (data / "badges.csv").write_text("when,who\n20/11/2026 09:15:02,j.devries\n")
    cfg = {
        "site": {"name": "E2E", "terminal": "T9"},
        "sources": [
            {"name": "eve", "format": "suricata_eve", "paths": ["data/eve.json"]},
            {"name": "sec", "format": "windows_security", "paths": ["data/sec.jsonl"]},
            {"name": "ovpn", "format": "openvpn_log", "paths": ["data/openvpn.log"], "timezone": "Europe/Amsterdam"},
            {"name": "ovpn-status", "format": "openvpn_status", "paths": ["data/status.log"]},
            {"name": "gp", "format": "globalprotect", "paths": ["data/gp.log"]},
            {"name": "s7", "format": "zeek_s7comm", "paths": [str(shared_fixtures / "zeek-icsnpp-s7comm" / "s7comm.log")]},
            {"name": "badges", "format": "csv_mapped", "paths": ["data/badges.csv"],
             "mapping": {"kind": "auth", "fields": {"when": "time", "who": "user"},
                         "time_format": "%d/%m/%Y %H:%M:%S", "constants": {"action": "badge.access"}}},
        ],
        "inventory": {"internal_networks": ["10.0.0.0/8"],
                      "assets": [{"id": "sts01-plc", "kind": "crane_plc", "addresses": ["10.30.1.10"],
                                  "zone": "crane-sts01"}]},
        "allowed_roots": [str(shared_fixtures)],  # the s7 source reads the shared fixtures
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    config = load_config(str(path))
    summary = build_summary(config, run_batch(config, str(tmp_path / "out")))
    counts = {name: (s["read"], s["parsed"], s["dead_lettered"]) for name, s in summary["sources"].items()}
    assert counts == {"eve": (4, 4, 0), "sec": (3, 3, 0), "ovpn": (5, 4, 1), "ovpn-status": (2, 2, 0),
                      "gp": (2, 2, 0), "s7": (61, 0, 61), "badges": (1, 1, 0)}
    # the EVE alert is a finding of its own (ids_alert)
    assert summary["findings"]["per_detection"] == {"ids_alert": 1, "ot_inbound_external": 1}
