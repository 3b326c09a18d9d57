"""Run a detection's own test cases (the ``tests:`` in its YAML) against a small terminal.

Used by ``cranewatch detections test`` and by the parametrized pytest that collects every
detection's cases, so an author's cases run exactly as the pipeline would run them:
normalized events → enrichment → vectorized ``where`` → ``rule`` (or the stateful
detection's keyed state, run to the end of input) → dedup.
"""
from __future__ import annotations

import copy
import datetime as dt
import os
from typing import Any

import pyarrow as pa

from detections.api import Detection, TestCase
from pipelines.config import Config, parse_config
from transforms.detect import Detector
from transforms.enrich import Enricher
from transforms.model import EVENT_SCHEMA, Finding, conform

#: The terminal every detection test case runs against; a case may override parts of it.
TEST_TERMINAL: dict[str, Any] = {
    "site": {"name": "Detection test terminal", "terminal": "TT"},
    "sources": [{"name": "test", "format": "cms_events", "paths": ["unused"]}],
    "inventory": {
        "assets": [
            {"id": "sts01-plc", "kind": "crane_plc", "crane": "STS-01", "addresses": ["10.30.1.10"],
             "zone": "crane-sts01", "allowed_egress": ["10.30.0.0/16", "10.40.0.5/32"]},
            {"id": "sts01-cms", "kind": "cms", "crane": "STS-01", "addresses": ["10.30.1.20"],
             "zone": "crane-sts01", "allowed_egress": ["10.30.0.0/16", "10.40.0.0/24"]},
            {"id": "ntp-01", "kind": "server", "addresses": ["10.40.0.5"], "zone": "ot-core"},
            {"id": "ews-01", "kind": "engineering_workstation", "addresses": ["10.40.0.20"], "zone": "ot-core"},
            {"id": "vpn-gw", "kind": "vpn_gateway", "addresses": ["10.40.0.1"], "zone": "dmz"},
        ],
    },
    "vendors": [
        {"name": "zpmc", "accounts": ["zpmc-svc1", "zpmc-svc2"], "allowed_networks": ["203.0.113.0/24"],
         "tunnel_networks": ["10.212.134.0/24"]},
    ],
    "maintenance_windows": [
        {"vendor": "zpmc", "days": ["tue", "thu"], "from": "08:00", "to": "12:00"},
    ],
}


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def case_config(case: TestCase, base_dir: str = ".") -> Config:
    """The test terminal with the case's overrides; relative paths in it (a detection's
    data files) resolve from ``base_dir``, the detection's own directory in ``run_case``."""
    return terminal_config(case.config, f"<test terminal for {case.name!r}>", base_dir)


def terminal_config(overrides: dict[str, Any], name: str = "<test terminal>", base_dir: str = ".") -> Config:
    """The test terminal with ``overrides`` merged in (mappings merge, anything else
    replaces), validated like a real config."""
    return parse_config(_deep_merge(TEST_TERMINAL, overrides), name, base_dir)


def events_table(events: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> pa.Table:
    """Normalized test events (YAML-friendly: RFC 3339 strings, attrs as a dict) → a batch."""
    rows = []
    for i, e in enumerate(events):
        e = dict(e)
        t = e["time"]
        e["time"] = t if isinstance(t, dt.datetime) else dt.datetime.fromisoformat(str(t).replace("Z", "+00:00"))
        e["attrs"] = [(str(k), str(v)) for k, v in (e.get("attrs") or {}).items()]
        e.setdefault("source", "test")
        e.setdefault("format", "test")
        e.setdefault("raw_ref", f"case:{i + 1}")
        e.setdefault("raw", repr(sorted(e.items(), key=lambda kv: kv[0])))
        for k in ("src_port", "dst_port", "bytes_out", "bytes_in"):
            if k in e and e[k] is not None:
                e[k] = int(e[k])
        for k in ("value_old", "value_new", "session_id", "target"):
            if k in e and e[k] is not None:
                e[k] = str(e[k])
        rows.append(e)
    cols = {name: [r.get(name) for r in rows] for name in EVENT_SCHEMA.names}
    return conform(cols, len(rows))


def run_case(det: Detection, case: TestCase) -> list[Finding]:
    """Findings the detection raises on the case's events (after in-batch dedup); a
    stateful detection's candidates run through its keyed state to the end of input."""
    cfg = case_config(case, os.path.dirname(os.path.abspath(det.meta.path)))
    table = Enricher(cfg)(events_table(case.events))
    detector = Detector(cfg, {det.meta.id: det})
    findings, keyed = detector.scan(table)
    return findings + detector.run_stateful(keyed)
