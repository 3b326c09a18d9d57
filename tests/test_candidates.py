"""The one-pass candidate search keeps exactly the rows the reference ``where_mask`` keeps,
and its row conversion equals ``Table.to_pylist``."""
from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from detections.api import where_mask
from detections.registry import BUILTIN_DIR, load_registry
from detections.testing import events_table, terminal_config
from transforms.candidates import BatchMasks, row_indices, take_rows, to_pylist
from transforms.detect import Detector
from transforms.enrich import Enricher


def _reference(table: pa.Table, kinds: tuple[str, ...], where: dict) -> list[int]:
    mask = pc.and_(where_mask(table, {"kind": {"in": list(kinds)}}), where_mask(table, where))
    return pc.indices_nonzero(mask).to_pylist()


@pytest.fixture(scope="module")
def batch():
    """Every built-in detection's test events in one batch (all kinds, many null fields)."""
    cfg = terminal_config({}, base_dir=str(BUILTIN_DIR))
    events = [e for det in load_registry().values() for case in det.meta.tests for e in case.events]
    return cfg, Enricher(cfg)(events_table(events))


def test_every_detection_keeps_the_reference_rows_in_mixed_and_single_kind_batches(batch) -> None:
    cfg, table = batch
    detector = Detector(cfg)
    kinds = sorted(set(table.column("kind").to_pylist()))
    assert len(kinds) >= 3
    # One kind per batch is the pipeline's case (one file, one format): the kind conditions
    # are then answered without compute, and every other detection stops at once.
    batches = [table] + [table.filter(pc.equal(table.column("kind"), k)) for k in kinds]
    kept = 0
    for t in batches:
        masks = BatchMasks(t)
        for det, _ in detector.active:
            where = detector.where[det.meta.id]
            got = row_indices(t.num_rows, masks.detection(det.meta.kinds, where)).to_pylist()
            assert got == _reference(t, det.meta.kinds, where), (det.meta.id, t.num_rows)
            kept += len(got)
    assert kept > 0


@pytest.mark.parametrize("where", [
    {"user": {"in": []}},  # an empty list matches nothing
    {"user": {"in": [None]}},  # on an all-null column, null is in the list
    {"value_old": {"in": [None, "1"]}},
    {"user": {"exists": False}},
    {"src_ip": {"exists": True}},
    {"src_ip": {"prefix": []}},
    {"src_ip": {"prefix": ["10.30.", "10.40.0."]}},
    {"not": {"kind": "flow"}},
    {"not": {"user": {"exists": False}}},
    {"any": [{"kind": "ot"}, {"dst_port": {"gte": 500, "lte": 502}}]},
    {"kind": {"in": ["ot", "flow"]}, "bytes_out": {"gte": 1}},
    {"kind": "auth", "not": {"any": [{"src_ip": {"prefix": "10."}}]}},
])
def test_edge_conditions_match_the_reference(where) -> None:
    t0 = dt.datetime(2026, 11, 17, tzinfo=dt.timezone.utc)
    rows = [
        {"time": t0, "kind": "flow", "src_ip": "10.30.1.10", "dst_port": 502, "bytes_out": 5},
        {"time": t0, "kind": "flow", "src_ip": "203.0.113.9", "dst_port": 443},
        {"time": t0, "kind": "ot", "src_ip": "10.40.0.20", "value_old": "1"},
        {"time": t0, "kind": "auth", "src_ip": "198.51.100.2"},
    ]
    table = events_table(rows)
    kinds = ("flow", "ot", "auth")
    for t in (table, table.slice(0, 2), table.slice(3, 1)):  # mixed, flow only, auth only
        got = row_indices(t.num_rows, BatchMasks(t).detection(kinds, where)).to_pylist()
        assert got == _reference(t, kinds, where), (where, t.num_rows)


def test_rows_convert_as_table_to_pylist_does(batch) -> None:
    _, table = batch
    with_null_time = pa.concat_tables([table.slice(0, 3), table.slice(0, 1).set_column(
        0, "time", pa.nulls(1, table.schema.field("time").type))])
    for t in (table, with_null_time):
        expected = t.to_pylist()
        got = to_pylist(t)
        assert got == expected
        assert [type(e["time"] and e["time"].tzinfo) for e in got] == \
            [type(e["time"] and e["time"].tzinfo) for e in expected]


def test_shared_rows_are_separate_dicts_per_detection(batch) -> None:
    _, table = batch
    a, b = take_rows(table, [pa.array([0, 2], pa.uint64()), pa.array([2, 1], pa.uint64())])
    expected = table.to_pylist()
    assert [e["raw_ref"] for e in a] == [expected[0]["raw_ref"], expected[2]["raw_ref"]]
    assert [e["raw_ref"] for e in b] == [expected[2]["raw_ref"], expected[1]["raw_ref"]]
    assert a[1] == b[0] and a[1] is not b[0]
    assert isinstance(a[1]["attrs"], dict) and a[1]["attrs"] is not b[0]["attrs"]
    a[1]["attrs"]["changed"] = "1"
    assert "changed" not in b[0]["attrs"]

