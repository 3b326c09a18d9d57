"""cms_csv: the CMS schema as CSV gives the same events as the JSON-lines encoding."""
from __future__ import annotations

import json
from pathlib import Path

from parse_helpers import parse_all

HEADER = "time,crane_id,controller,event_type,user,source_ip,parameter,old_value,new_value,result,message"
ROWS = [
    "2026-11-20T08:15:02.123Z,STS-03,sts03-plc,parameter_change,eng.lopez,10.30.5.20,hoist.max_speed,1.5,1.6,success,",
    '1795162600,STS-03,,alarm,,,,,,success,"wind speed 18 m/s, gusting"',
]
JSONL = [
    {"time": "2026-11-20T08:15:02.123Z", "crane_id": "STS-03", "controller": "sts03-plc", "event_type": "parameter_change",
     "user": "eng.lopez", "source_ip": "10.30.5.20", "parameter": "hoist.max_speed", "old_value": "1.5",
     "new_value": "1.6", "result": "success"},
    {"time": 1795162600, "crane_id": "STS-03", "event_type": "alarm", "result": "success",
     "message": "wind speed 18 m/s, gusting"},
]


def test_csv_equals_jsonl(tmp_path: Path) -> None:
    csv_path = tmp_path / "cms.csv"
    csv_path.write_text("\ufeff" + HEADER + "\r\n" + "\r\n".join(ROWS) + "\r\n")
    json_path = tmp_path / "cms.jsonl"
    json_path.write_text("\n".join(json.dumps(o) for o in JSONL) + "\n")
    got, dead, records = parse_all("cms_csv", "cms", csv_path)
    want, _, _ = parse_all("cms_events", "cms", json_path)
    assert (records, got.num_rows, dead) == (2, 2, [])
    skip = ("raw", "raw_ref", "format")
    cols = [c for c in got.column_names if c not in skip]
    assert got.select(cols).to_pylist() == want.select(cols).to_pylist()
    a = got.to_pylist()[0]
    assert (a["format"], a["action"], a["target"], a["value_new"], a["raw_ref"]) == (
        "cms_csv", "cms.parameter_change", "hoist.max_speed", "1.6", f"{csv_path}:2")


def test_malformed_rows_accounted(tmp_path: Path) -> None:
    rows = ROWS + [
        "2026-11-20T08:15:02Z,STS-03,short",
        "2026-11-20T08:15:02Z,STS-03,,teleport,,,,,,,",
        "yesterday,STS-03,,alarm,,,,,,,",
        "2026-11-20T08:15:02Z,,,alarm,,,,,,,",
        "2026-11-20T08:15:02Z,STS-03,,login,x,10.0.0.999,,,,,",
    ]
    path = tmp_path / "cms.csv"
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    events, dead, records = parse_all("cms_csv", "cms", path)
    assert (records, events.num_rows, len(dead)) == (7, 2, 5)
    assert [(d.location.rsplit(":", 1)[1], d.reason) for d in dead] == [
        ("4", "expected 11 comma-separated fields, got 3"),
        ("5", "unknown event_type 'teleport'"),
        ("6", "no usable timestamp: unparseable time 'yesterday'"),
        ("7", "missing required key 'crane_id'"),
        ("8", "invalid source_ip '10.0.0.999': expected an IP address"),
    ]
