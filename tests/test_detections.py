"""Every detection's own YAML test cases, collected by one parametrized test."""
from __future__ import annotations

import pytest

from detections.registry import load_registry
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
        assert f.techniques == det.meta.techniques
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
