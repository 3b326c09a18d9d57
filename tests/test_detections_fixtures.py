"""Detections over real third-party logs (../shared/fixtures), not only hand-written cases.

The ICSNPP-S7comm baseline is a snap7 client talking to a PLC: setup, five SZL reads, a
block listing, block info and block uploads. Its timestamps are masked, so the test gives
each record a time (one second apart, at night) before enrichment and detection.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
from parse_helpers import parse_untimed

from detections.registry import load_registry
from detections.testing import TEST_TERMINAL, terminal_config
from transforms.detect import Detector
from transforms.enrich import Enricher

CLIENT, PLC = "134.217.61.131", "134.217.61.211"
NIGHT = dt.datetime(2026, 11, 18, 2, 0, tzinfo=dt.timezone.utc)


def _s7_events(shared_fixtures: Path) -> pa.Table:
    t = pa.concat_tables([parse_untimed("zeek_s7comm", "ot", shared_fixtures / "zeek-icsnpp-s7comm" / name)
                          for name in ("s7comm.log", "s7comm_read_szl.log")])
    times = pa.array([NIGHT + dt.timedelta(seconds=i) for i in range(t.num_rows)], pa.timestamp("us", tz="UTC"))
    return t.set_column(0, t.schema.field(0), times)


def _findings(shared_fixtures: Path, client_kind: str | None) -> dict[str, list]:
    assets = [{"id": "sts09-plc", "kind": "crane_plc", "addresses": [PLC], "zone": "crane-sts09"}]
    if client_kind:
        assets.append({"id": "client", "kind": client_kind, "addresses": [CLIENT], "zone": "ot-core"})
    cfg = terminal_config({"inventory": {"assets": TEST_TERMINAL["inventory"]["assets"] + assets,
                                         "internal_networks": ["10.0.0.0/8", "134.217.61.0/24"]}})
    registry = load_registry()
    detector = Detector(cfg, {k: registry[k] for k in ("ot_recon_reads", "s7_program_or_stop")})
    findings, keyed = detector.scan(Enricher(cfg)(_s7_events(shared_fixtures)))
    out: dict[str, list] = {}
    for f in findings + detector.run_stateful(keyed):
        out.setdefault(f.detection_id, []).append(f)
    return out


def test_snap7_client_identifying_and_uploading_is_recon_then_impact(shared_fixtures: Path) -> None:
    found = _findings(shared_fixtures, None)
    (recon,) = found["ot_recon_reads"]
    assert recon.asset_id == "sts09-plc" and recon.addresses == (CLIENT, PLC)
    assert recon.stage == "recon" and set(recon.techniques) == {"T0846", "T0888", "T0861"}
    # SZL reads in both logs, the block listing and block info: counted per S7 job (PDU
    # reference), not per row (request, ACK-Data, the read_szl log's copy)
    rows = _s7_events(shared_fixtures).to_pylist()
    identifying = [r for r in rows if r["action"] in ("s7.read_szl", "s7.list_blocks", "s7.get_block_info")]
    jobs = {dict(r["attrs"])["pdu_reference"] for r in identifying}
    assert recon.count == len(jobs) == 8 < len(identifying)
    assert [f.detection_id for f in found["s7_program_or_stop"]] == ["s7_program_or_stop"]


def test_the_same_session_from_the_engineering_workstation_is_not_recon(shared_fixtures: Path) -> None:
    found = _findings(shared_fixtures, "engineering_workstation")
    assert "ot_recon_reads" not in found
    assert "s7_program_or_stop" in found  # uploads at night still are (outside maintenance)
