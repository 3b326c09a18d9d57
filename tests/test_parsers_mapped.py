"""csv_mapped, jsonl_mapped and parquet: a source's mapping: block turns any columns into
events; the block is validated with the rest of the config (docs/formats/mapped.md)."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from parse_helpers import parse_all

from pipelines.batch import input_files
from pipelines.config import ConfigError, load_config
from transforms.parsers import parse_file

UTC = dt.timezone.utc


def config(tmp_path: Path, source: dict) -> Path:
    cfg = {"site": {"name": "Port of Example", "terminal": "T3"}, "sources": [source],
           "inventory": {"internal_networks": ["10.0.0.0/8"], "assets": []}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def parse_source(tmp_path: Path, source: dict, block_bytes: int = 1 << 20) -> tuple[pa.Table, list, int]:
    """Config → resolved input file → parser, the way a run reads it."""
    (item,) = input_files(load_config(str(config(tmp_path, source))))
    return parse_all(item.format, item.source, item.path, block_bytes, timezone=item.timezone, mapping=item.mapping)


def test_csv_mapped_field_by_field(tmp_path: Path) -> None:
    (tmp_path / "badges.csv").write_text(
        "when,badge_user,door,outcome,reader_ip,note\r\n"
        "20/11/2026 09:15:02,j.devries,STS-01 E-house,granted,10.40.9.11,\"night shift, crane 1\"\r\n"
        "20/11/2026 09:16:00,unknown,STS-01 E-house,denied,10.40.9.11,\r\n"
        "2026-11-20 09:17:00,j.devries,STS-02 E-house,granted,10.40.9.12,\r\n"   # line 4: wrong time format
        "20/11/2026 09:18:00,j.devries,STS-02 E-house\r\n"                     # line 5: too few fields
        "\r\n")
    source = {"name": "badges", "format": "csv_mapped", "paths": ["badges.csv"], "timezone": "Europe/Amsterdam",
              "mapping": {"kind": "auth", "time_format": "%d/%m/%Y %H:%M:%S",
                          "fields": {"when": "time", "badge_user": "user", "door": "target", "outcome": "result",
                                     "reader_ip": "dst_ip", "note": "attrs.note"},
                          "constants": {"action": "badge.access"}}}
    events, dead, records = parse_source(tmp_path, source, block_bytes=150)
    assert (records, events.num_rows, len(dead)) == (4, 2, 2)
    path = tmp_path / "badges.csv"
    assert [(d.location, d.reason) for d in dead] == [
        (f"{path}:4", "no usable timestamp: '2026-11-20 09:17:00' does not match time_format '%d/%m/%Y %H:%M:%S'"),
        (f"{path}:5", "expected 6 ','-separated fields, got 3"),
    ]
    a, b = events.to_pylist()
    assert a["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, tzinfo=UTC)
    assert (a["source"], a["format"], a["kind"], a["action"]) == ("badges", "csv_mapped", "auth", "badge.access")
    assert (a["user"], a["target"], a["result"], a["dst_ip"]) == ("j.devries", "STS-01 E-house", "granted", "10.40.9.11")
    assert dict(a["attrs"]) == {"note": "night shift, crane 1"}
    assert (a["raw_ref"], a["raw"]) == (f"{path}:2", '20/11/2026 09:15:02,j.devries,STS-01 E-house,granted,10.40.9.11,"night shift, crane 1"')
    assert (b["result"], b["attrs"]) == ("denied", None)


def test_csv_mapped_headerless_with_epoch_ms(tmp_path: Path) -> None:
    (tmp_path / "x.log").write_text("1795162502123;10.40.0.20;50100\n1795162503000;10.40.0.21;port\n")
    source = {"name": "x", "format": "csv_mapped", "paths": ["x.log"],
              "mapping": {"kind": "flow", "delimiter": ";", "columns": ["t", "ip", "p"],
                          "fields": {"t": "time", "ip": "src_ip", "p": "src_port"}}}
    events, dead, records = parse_source(tmp_path, source)
    assert (records, events.num_rows) == (2, 1)
    assert [d.reason for d in dead] == ["invalid port 'port' in p"]
    row = events.to_pylist()[0]
    assert (row["time"], row["src_ip"], row["src_port"], row["kind"]) == (
        dt.datetime(2026, 11, 20, 8, 15, 2, 123000, tzinfo=UTC), "10.40.0.20", 50100, "flow")


def test_jsonl_mapped_nested_fields(tmp_path: Path) -> None:
    recs = [
        {"ts": "2026-11-20T09:15:02+01:00", "event": "vpn.login", "account": {"name": "zpmc-svc1"},
         "client": {"ip": "203.0.113.45", "port": 51234}, "sid": 77, "extra": {"deep": [1, 2]}},
        {"ts": 1795167730, "event": "vpn.logout", "account": {"name": "zpmc-svc1"}, "client": {"ip": "203.0.113.45"},
         "sid": 77},
    ]
    lines = [json.dumps(r) for r in recs] + ['{"ts": "never", "event": "vpn.login"}', "not json"]
    (tmp_path / "portal.jsonl").write_text("\n".join(lines) + "\n")
    source = {"name": "portal", "format": "jsonl_mapped", "paths": ["portal.jsonl"],
              "mapping": {"kind": "remote_access",
                          "fields": {"ts": "time", "event": "action", "account.name": "user", "client.ip": "src_ip",
                                     "client.port": "src_port", "sid": "session_id"}}}
    events, dead, records = parse_source(tmp_path, source)
    assert (records, events.num_rows, len(dead)) == (4, 2, 2)
    assert [(d.location.rsplit(":", 1)[1], d.reason) for d in dead] == [
        ("3", "no usable timestamp: invalid ts 'never'"),
        ("4", "invalid JSON: Expecting value at column 1"),
    ]
    login, logout = events.to_pylist()
    assert login["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, tzinfo=UTC)
    assert (login["action"], login["user"], login["src_ip"], login["src_port"], login["session_id"], login["kind"]) == (
        "vpn.login", "zpmc-svc1", "203.0.113.45", 51234, "77", "remote_access")
    assert (logout["time"], logout["src_port"]) == (dt.datetime(2026, 11, 20, 9, 42, 10, tzinfo=UTC), None)
    # Clean lines alone take the Arrow path with inferred (numeric) types: same events.
    (tmp_path / "portal.jsonl").write_text("\n".join(lines[:2]) + "\n")
    clean, dead2, _ = parse_source(tmp_path, source)
    assert not dead2
    assert clean.drop(["raw"]).to_pylist() == events.drop(["raw"]).to_pylist()


def test_parquet(tmp_path: Path) -> None:
    t = pa.table({"start": pa.array([dt.datetime(2026, 11, 20, 8, 15, 2), None, dt.datetime(2026, 11, 20, 8, 16)],
                                    pa.timestamp("ms")),
                  "src": ["10.40.0.20", "10.40.0.21", "10.40.0.22"], "dst": ["10.30.1.10"] * 3,
                  "dport": pa.array([502, 102, 70000], pa.int64()), "bytes": pa.array([1024, 5, 7], pa.int64()),
                  "proto": ["tcp"] * 3, "unused": [1, 2, 3]})
    pq.write_table(t, tmp_path / "flows-1.parquet", row_group_size=2)
    source = {"name": "archive", "format": "parquet", "paths": ["flows-*.parquet"],
              "mapping": {"kind": "flow", "fields": {"start": "time", "src": "src_ip", "dst": "dst_ip",
                                                       "dport": "dst_port", "bytes": "bytes_out", "proto": "proto"}}}
    events, dead, records = parse_source(tmp_path, source, block_bytes=64)
    path = tmp_path / "flows-1.parquet"
    assert (records, events.num_rows, len(dead)) == (3, 1, 2)
    assert [(d.location, d.reason) for d in dead] == [
        (f"{path}:2", "no usable timestamp (masked or missing ts)"),
        (f"{path}:3", "invalid port '70000' in dport"),
    ]
    row = events.to_pylist()[0]
    assert (row["time"], row["src_ip"], row["dst_port"], row["bytes_out"], row["proto"], row["format"]) == (
        dt.datetime(2026, 11, 20, 8, 15, 2, tzinfo=UTC), "10.40.0.20", 502, 1024, "tcp", "parquet")
    assert (row["raw_ref"], row["raw"]) == (
        f"{path}:1", "start=2026-11-20 08:15:02.000 src=10.40.0.20 dst=10.30.1.10 dport=502 bytes=1024 proto=tcp")
    # Read a row group at a time (memory bounded by a row group, not the file).
    (item,) = input_files(load_config(str(config(tmp_path, source))))
    results = list(parse_file("parquet", item.source, item.path, mapping=item.mapping))
    assert [r.records for r in results] == [2, 1]


@pytest.mark.parametrize("source,error", [
    ({"name": "a", "format": "csv_mapped", "paths": ["x"]},
     "sources[0].mapping: expected a mapping block for format 'csv_mapped'"),
    ({"name": "a", "format": "jsonl_mapped", "paths": ["x"], "mapping": {"kind": "flow", "fields": {"a": "src_ip"}}},
     "expected one source field mapped to time"),
    ({"name": "a", "format": "jsonl_mapped", "paths": ["x"], "mapping": {"kind": "flow", "fields": {"a": "time", "b": "asset_id"}}},
     "got 'asset_id'"),
    ({"name": "a", "format": "jsonl_mapped", "paths": ["x"],
      "mapping": {"kind": "flow", "fields": {"a": "time"}, "timezone": "Mars/Olympus"}},
     "expected an IANA timezone such as UTC, got 'Mars/Olympus'"),
    ({"name": "a", "format": "jsonl_mapped", "paths": ["x"], "mapping": {"kind": "crane", "fields": {"a": "time"}}},
     "sources[0].mapping.kind: expected 'flow', 'ot', 'remote_access' or 'auth', got 'crane'"),
])
def test_mapping_config_errors(tmp_path: Path, source: dict, error: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(str(config(tmp_path, source)))
    assert any(error in e for e in exc.value.errors), exc.value.errors
