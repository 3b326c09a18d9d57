"""Every detection's own YAML test cases, collected by one parametrized test."""
from __future__ import annotations

import pytest

from detections.api import STAGES
from detections.registry import load_registry
from stix_export import attack
from detections.testing import run_case

CASES = [
    pytest.param(det, case, id=f"{det_id}: {case.name}")
    for det_id, det in sorted(load_registry().items())
    for case in det.meta.tests
]


@pytest.mark.parametrize("det, case", CASES)
def test_detection_case(det, case) -> None:
    findings = run_case(det, case)
    assert len(findings) == case.expect
    for f in findings:
        assert f.detection_id == det.meta.id
        if det.fn("techniques") is None:  # else the module names them per event
            assert f.techniques == det.meta.techniques
        assert f.techniques and all(attack.resolve(t) for t in f.techniques)
        assert f.stage in STAGES
        assert f.evidence and all(e.raw_ref for e in f.evidence)


def test_every_detection_has_positive_and_negative_cases() -> None:
    for det_id, det in load_registry().items():
        expects = [c.expect for c in det.meta.tests]
        assert any(e > 0 for e in expects), det_id
        assert any(e == 0 for e in expects), det_id


def test_dedup_counts_hits() -> None:
    det = load_registry()["modbus_write_non_engineering"]
    case = next(c for c in det.meta.tests if c.expect == 1)
    (finding,) = run_case(det, case)
    assert finding.count == len(case.events)
    assert finding.first_seen < finding.last_seen


@pytest.mark.parametrize("entry,message", [
    ({"asset": "sts01-plc", "address": 110, "parameter": "hoist.speed"},
     r"registers\[0\]\.parameter: expected one of the watched parameters \(.*hoist\.max_speed.*\), got 'hoist\.speed'"),
    ({"asset": "sts99-plc", "address": 110, "parameter": "hoist.max_speed"},
     r"registers\[0\]\.asset: expected an inventory asset id, got 'sts99-plc'"),
    ({"asset": "sts01-plc", "parameter": "hoist.max_speed"},
     r"registers\[0\]: expected \{asset, address, parameter\[, unit, scale\]\}"),
])
def test_a_bad_register_map_stops_the_run_naming_the_entry(entry, message) -> None:
    from detections.testing import terminal_config
    from transforms.detect import Detector

    cfg = terminal_config({"detections": {"cms_safety_parameter_change": {"params": {"registers": [entry]}}}})
    with pytest.raises(ValueError, match=message):
        Detector(cfg)


def test_only_writes_to_plcs_with_mapped_registers_leave_the_vectorized_filter() -> None:
    """A Modbus register write to a crane PLC is turned into a Python row for the
    safety-parameter rule only when the register map names that PLC: without, it can never
    set a watched parameter and stays in the vectorized filter."""
    import pyarrow as pa

    from detections.testing import events_table, terminal_config
    from transforms.candidates import BatchMasks, row_indices
    from transforms.detect import Detector
    from transforms.enrich import Enricher

    writes = [{"time": "2026-11-18T02:30:00Z", "kind": "ot", "action": "modbus.write_single_register",
               "src_ip": "10.212.134.200", "dst_ip": "10.30.1.10", "dst_port": 502, "target": "unit=1;addr=110",
               "value_new": "9999"}]
    mapped = [{"asset": "sts01-plc", "unit": 1, "address": 110, "parameter": "hoist.max_speed"}]
    for registers, want in (([], []), (mapped, ["sts01-plc"])):
        cfg = terminal_config({"detections": {"cms_safety_parameter_change": {"params": {"registers": registers}}}})
        detector = Detector(cfg)
        table = Enricher(cfg)(events_table(writes))
        assert table.column("dst_asset").to_pylist() == ["sts01-plc"]  # a crane PLC
        det, _ = detector.by_id["cms_safety_parameter_change"]
        idx = row_indices(table.num_rows, BatchMasks(table).detection(det.meta.kinds, detector.where[det.meta.id]))
        assert pa.array(table.column("dst_asset")).take(idx).to_pylist() == want
