"""suricata_eve conformance: EVE JSON flow and netflow records as documented in Suricata's
"EVE JSON Format" (event types flow and netflow, their common fields and counters)."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
from parse_helpers import parse_all

UTC = dt.timezone.utc
FLOW = {"timestamp": "2026-11-20T09:16:02.500123+0100", "flow_id": 1204543001234567, "in_iface": "eth1",
        "event_type": "flow", "src_ip": "10.40.0.20", "src_port": 50100, "dest_ip": "10.30.1.10",
        "dest_port": 502, "proto": "TCP", "app_proto": "modbus",
        "flow": {"pkts_toserver": 12, "pkts_toclient": 10, "bytes_toserver": 1024, "bytes_toclient": 980,
                 "start": "2026-11-20T09:15:02.000100+0100", "end": "2026-11-20T09:16:02.500100+0100",
                 "age": 60, "state": "closed", "reason": "timeout", "alerted": False},
        "community_id": "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
        "tcp": {"tcp_flags": "1b", "tcp_flags_ts": "1b", "tcp_flags_tc": "1b", "syn": True, "fin": True,
                "psh": True, "ack": True, "state": "closed"}}
NETFLOW = {"timestamp": "2026-11-20T08:20:00.000000+0000", "flow_id": 99, "event_type": "netflow",
           "src_ip": "203.0.113.45", "src_port": 51234, "dest_ip": "10.30.1.10", "dest_port": 102,
           "proto": "TCP", "app_proto": "failed",
           "netflow": {"pkts": 3, "bytes": 180, "start": "2026-11-20T08:19:58.000000+0000",
                       "end": "2026-11-20T08:19:59.250000+0000", "age": 1, "min_ttl": 52, "max_ttl": 52}}
UDP = {"timestamp": "2026-11-20T08:21:00.000000+0000", "flow_id": 100, "event_type": "flow",
       "src_ip": "10.40.0.5", "src_port": 53000, "dest_ip": "10.40.0.1", "dest_port": 53, "proto": "UDP",
       "app_proto": "dns", "flow": {"pkts_toserver": 1, "pkts_toclient": 1, "bytes_toserver": 74,
                                     "bytes_toclient": 90, "start": "2026-11-20T08:20:00.000000+0000",
                                     "end": "2026-11-20T08:20:00.010000+0000", "age": 0, "state": "established",
                                     "reason": "timeout", "alerted": False}}
ALERT = {"timestamp": "2026-11-20T08:22:00.000000+0000", "flow_id": 100, "event_type": "alert",
         "src_ip": "10.40.0.5", "src_port": 53000, "dest_ip": "10.40.0.1", "dest_port": 53, "proto": "UDP",
         "alert": {"action": "allowed", "gid": 1, "signature_id": 2100498, "rev": 7,
                   "signature": "GPL ATTACK_RESPONSE id check returned root", "category": "Potentially Bad Traffic",
                   "severity": 2}}
STATS = {"timestamp": "2026-11-20T08:23:00.000000+0000", "event_type": "stats",
         "stats": {"uptime": 60, "capture": {"kernel_packets": 100}}}


def parse(path: Path, block_bytes: int = 1 << 20) -> tuple[pa.Table, list, int]:
    return parse_all("suricata_eve", "ids", path, block_bytes)


def write(tmp_path: Path, lines: list) -> Path:
    path = tmp_path / "eve.json"
    path.write_bytes(b"".join((l if isinstance(l, bytes) else (l if isinstance(l, str) else json.dumps(l)).encode()) + b"\n"
                              for l in lines))
    return path


def test_flow_and_netflow_field_by_field(tmp_path: Path) -> None:
    path = write(tmp_path, [FLOW, NETFLOW, ALERT, UDP, STATS])
    events, dead, records = parse(path)
    assert (records, events.num_rows) == (5, 4)
    assert [(d.location, d.reason) for d in dead] == [
        (f"{path}:5", "not a flow/netflow/alert EVE event (event_type=stats)"),
    ]
    assert dead[0].raw == json.dumps(STATS)
    flow, netflow, udp, alert = events.to_pylist()
    assert alert["time"] == dt.datetime(2026, 11, 20, 8, 22, tzinfo=UTC)
    assert (alert["action"], alert["target"], alert["result"], alert["src_ip"], alert["dst_port"]) == (
        "ids.alert", "GPL ATTACK_RESPONSE id check returned root", "allowed", "10.40.0.5", 53)
    assert dict(alert["attrs"]) == {"event_type": "alert", "flow_id": "100", "signature_id": "2100498", "gid": "1",
                                    "rev": "7", "severity": "2", "category": "Potentially Bad Traffic"}
    assert alert["raw"] == json.dumps(ALERT)
    assert flow["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, 100, tzinfo=UTC)  # flow.start, +0100
    assert (flow["source"], flow["format"], flow["kind"]) == ("ids", "suricata_eve", "flow")
    assert (flow["src_ip"], flow["src_port"], flow["dst_ip"], flow["dst_port"], flow["proto"], flow["service"]) == (
        "10.40.0.20", 50100, "10.30.1.10", 502, "tcp", "modbus")
    assert (flow["bytes_out"], flow["bytes_in"], flow["packets_out"], flow["packets_in"]) == (1024, 980, 12, 10)
    assert flow["duration"] == 60.5
    assert flow["conn_state"] is None  # Suricata's flow states are not Zeek's: see attrs
    assert dict(flow["attrs"]) == {
        "event_type": "flow", "flow_id": "1204543001234567", "community_id": "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
        "in_iface": "eth1", "app_proto": "modbus", "flow_state": "closed", "flow_reason": "timeout",
        "alerted": "false", "tcp_flags": "1b", "tcp_state": "closed"}
    assert (flow["raw_ref"], flow["raw"]) == (f"{path}:1", json.dumps(FLOW))
    assert netflow["time"] == dt.datetime(2026, 11, 20, 8, 19, 58, tzinfo=UTC)
    assert (netflow["bytes_out"], netflow["packets_out"], netflow["bytes_in"], netflow["packets_in"]) == (180, 3, None, None)
    assert (netflow["duration"], netflow["service"], netflow["dst_port"]) == (1.25, None, 102)
    assert dict(netflow["attrs"]) == {"event_type": "netflow", "flow_id": "99", "app_proto": "failed",
                                      "min_ttl": "52", "max_ttl": "52"}
    assert (udp["proto"], udp["service"], udp["duration"], udp["raw_ref"]) == ("udp", "dns", 0.01, f"{path}:4")


def test_malformed_lines_accounted(tmp_path: Path) -> None:
    no_time = {k: v for k, v in UDP.items() if k != "timestamp"}
    no_time["flow"] = {k: v for k, v in UDP["flow"].items() if k != "start"}
    lines = [
        "### banner",                                            # 1: not a record
        FLOW,                                                    # 2
        '{"event_type": "flow", "src_ip": "10.0.0.1"',           # 3: truncated JSON
        dict(FLOW, src_port="fifty"),                            # 4: port as text
        dict(FLOW, dest_port=70000),                             # 5: port out of range
        no_time,                                                 # 6: no time at all
        dict(UDP, flow=dict(UDP["flow"], start="yesterday")),    # 7: bad start
        [1, 2],                                                  # 8: not an object
        b'{"event_type": "flow", "src_ip": "\xff"}',            # 9: not UTF-8
        "",                                                      # 10: blank
        {"timestamp": "2026-11-20T08:23:00+0000"},               # 11: no event_type
        NETFLOW,                                                 # 12
        dict(UDP, flow=dict(UDP["flow"], start="2026-11-20 09:20:00")),  # 13: naive: source tz (UTC)
    ]
    path = write(tmp_path, lines)
    for block_bytes in (1 << 20, 700):
        events, dead, records = parse(path, block_bytes)
        assert (records, events.num_rows, len(dead)) == (11, 3, 8)
        assert [(d.location.rsplit(":", 1)[1], d.reason) for d in dead] == [
            ("3", "invalid JSON: Expecting ',' delimiter at column 44"),
            ("4", "invalid src_port 'fifty': expected an integer"),
            ("5", "invalid port '70000' in dest_port"),
            ("6", "no usable timestamp (masked or missing ts)"),
            ("7", "no usable timestamp: invalid flow.start 'yesterday'"),
            ("8", "not a JSON object (list)"),
            ("9", "not valid UTF-8"),
            ("11", "not a flow/netflow/alert EVE event (event_type=missing)"),
        ]
        assert [r.rsplit(":", 1)[1] for r in events.column("raw_ref").to_pylist()] == ["2", "12", "13"]
        assert events.column("time")[2].as_py() == dt.datetime(2026, 11, 20, 9, 20, tzinfo=UTC)
