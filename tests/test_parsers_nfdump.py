"""nfdump_csv and nfdump_json conformance.

No nfdump output ships in ../shared/fixtures, so the lines below are written field for
field after nfdump's own writers: ``csv_prolog``/``csv_record`` of nfdump 1.7.x
(``src/output/output_csv.c``: the fixed 48-column header also printed by 1.6), the
token table of 1.7.5+ (``firstSeen,lastSeen,...`` headers, ``%Y-%m-%d %H:%M:%S.mmm``
times, numeric protocol, ICMP as ``type.code``) and ``flow_record_to_json``
(``src/output/output_json.c``: a JSON array of pretty-printed objects with a comma after
every field, or one object per line for ``-o json-log``). See docs/formats/nfdump.md.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
from parse_helpers import parse_all

from transforms.parsers.nfdump_csv import LEGACY_HEADER

UTC = dt.timezone.utc
MAC = "00:00:00:00:00:00"


def legacy_row(ts: str, te: str, td: str, sa: str, da: str, sp: int, dp: int, pr: str, flg: str,
               ipkt: int, ibyt: int, opkt: int = 0, obyt: int = 0, ra: str = "10.40.0.1") -> str:
    """One ``csv_record`` line of nfdump 1.7.x, every column in order."""
    fields = [ts, te, td, sa, da, str(sp), str(dp), pr, flg, "0", "0", str(ipkt), str(ibyt), str(opkt), str(obyt),
              "3", "4", "0", "0", "24", "24", "0", "0", "0.0.0.0", "0.0.0.0", "0", "0", MAC, MAC, MAC, MAC]
    fields += ["0-0-0"] * 10 + ["    0.000", "    0.000", "    0.000", ra, "0/0", "1", "2026-11-20 09:16:10.123"]
    assert len(fields) == len(LEGACY_HEADER)
    return ",".join(fields)


ROW1 = legacy_row("2026-11-20 09:15:02", "2026-11-20 09:16:02", "60.500", "10.40.0.20", "10.30.1.10", 50100, 502,
                  "TCP", "...AP.SF", 12, 1024, 10, 980)
ROW2 = legacy_row("2026-11-20 09:20:00", "2026-11-20 09:20:00", "0.000", "203.0.113.45", "10.30.1.10", 0, 2048,
                  "ICMP", "........", 1, 84)
ROW3 = legacy_row("2026-11-20 09:21:00", "2026-11-20 09:21:01", "1.250", "2001:db8::5", "2001:db8::1", 53000, 53,
                  "UDP", "........", 2, 150)
HEADER = ",".join(LEGACY_HEADER)


def parse(parser: str, path: Path, block_bytes: int = 1 << 20, timezone: str = "Europe/Amsterdam"
          ) -> tuple[pa.Table, list, int]:
    return parse_all(parser, "nf", path, block_bytes, timezone=timezone)


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_csv_legacy_field_by_field(tmp_path: Path) -> None:
    # nfdump 1.6 adds a Summary trailer after a blank line: not records.
    text = "\n".join([HEADER, ROW1, ROW2, ROW3, "", "Summary", "flows,bytes,packets,avg_bps,avg_pps,avg_bpp",
                      "3,1258,15,167,0,83"]) + "\n"
    path = write(tmp_path, "flows.csv", text)
    events, dead, records = parse("nfdump_csv", path)
    assert (records, events.num_rows, dead) == (3, 3, [])
    a, icmp, v6 = events.to_pylist()
    assert a["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, tzinfo=UTC)  # local time of the nfdump host
    assert (a["source"], a["format"], a["kind"]) == ("nf", "nfdump_csv", "flow")
    assert (a["src_ip"], a["src_port"], a["dst_ip"], a["dst_port"], a["proto"]) == ("10.40.0.20", 50100, "10.30.1.10", 502, "tcp")
    assert (a["bytes_out"], a["packets_out"], a["bytes_in"], a["packets_in"], a["duration"]) == (1024, 12, 980, 10, 60.5)
    assert dict(a["attrs"]) == {"tcp_flags": "...AP.SF", "end": "2026-11-20 09:16:02", "router_ip": "10.40.0.1",
                                "exporter_id": "1", "input_if": "3", "output_if": "4", "direction": "0",
                                "fwd_status": "0", "src_as": "0", "dst_as": "0", "received": "2026-11-20 09:16:10.123"}
    assert (a["raw_ref"], a["raw"], a["service"], a["conn_state"]) == (f"{path}:2", ROW1, None, None)
    # ICMP echo request: nfdump puts type*256+code in the destination port.
    assert (icmp["proto"], icmp["dst_port"], icmp["src_port"], dict(icmp["attrs"])["icmp"]) == ("icmp", None, 0, "8.0")
    assert (v6["src_ip"], v6["dst_ip"], v6["proto"], v6["duration"]) == ("2001:db8::5", "2001:db8::1", "udp", 1.25)


def test_csv_175_header_vocabulary(tmp_path: Path) -> None:
    text = ("firstSeen,lastSeen,duration,proto,srcAddr,srcPort,dstAddr,dstPort,inPackets,inBytes,flags,routerIP\n"
            "2026-11-20 09:15:02.250,2026-11-20 09:15:03.000,0.750,6,10.40.0.20,50100,10.30.1.10,102,5,400,...AP.SF,10.40.0.1\n"
            "2026-11-20 09:15:04.000,2026-11-20 09:15:04.000,0.000,1,10.40.0.20,0,10.30.1.10,3.3,1,84,........,10.40.0.1\n"
            "0000-00-00 00:00:00.000,0000-00-00 00:00:00.000,0.000,17,10.40.0.20,1,10.30.1.10,2,1,1,........,10.40.0.1\n")
    path = write(tmp_path, "flows.csv", text)
    events, dead, records = parse("nfdump_csv", path, timezone="UTC")
    assert (records, events.num_rows) == (3, 2)
    assert [(d.location, d.reason) for d in dead] == [
        (f"{path}:4", "no usable timestamp: invalid firstSeen '0000-00-00 00:00:00.000'")]
    a, icmp = events.to_pylist()
    assert a["time"] == dt.datetime(2026, 11, 20, 9, 15, 2, 250000, tzinfo=UTC)
    assert (a["proto"], a["dst_port"], a["bytes_out"], a["packets_out"], a["bytes_in"], a["duration"]) == (
        "tcp", 102, 400, 5, None, 0.75)
    assert dict(a["attrs"]) == {"tcp_flags": "...AP.SF", "end": "2026-11-20 09:15:03.000", "router_ip": "10.40.0.1"}
    assert (icmp["proto"], icmp["dst_port"], dict(icmp["attrs"])["icmp"]) == ("icmp", None, "3.3")


def test_csv_malformed_lines_accounted(tmp_path: Path) -> None:
    bad_port = ROW1.replace(",50100,", ",port,", 1)
    bad_bytes = ROW3.replace(",2,150,", ",2,-5,", 1)
    lines = [HEADER, ROW1, "2026-11-20 09:15:02,garbage", bad_port, ROW2, bad_bytes,
             ROW1.replace("2026-11-20 09:15:02", "yesterday", 1)]
    data = ("\r\n".join(lines) + "\r\n").encode() + ROW3.replace("UDP", "U\xffP").encode("latin-1") + b"\n" + (ROW3 + "\n").encode()
    path = write(tmp_path, "flows.csv", data)
    for block_bytes in (1 << 20, 600):
        events, dead, records = parse("nfdump_csv", path, block_bytes)
        assert (records, events.num_rows, len(dead)) == (8, 3, 5)
        assert [(d.location.rsplit(":", 1)[1], d.reason) for d in dead] == [
            ("3", "expected 48 comma-separated fields, got 2"),
            ("4", "invalid port 'port' in sp"),
            ("6", "invalid count '-5' in ibyt"),
            ("7", "no usable timestamp: invalid ts 'yesterday'"),
            ("8", "not valid UTF-8"),
        ]
        assert [r.rsplit(":", 1)[1] for r in events.column("raw_ref").to_pylist()] == ["2", "5", "9"]


JSON_RECORD = """{
\t"type" : "FLOW",
\t"sampled" : 0,
\t"export_sysid" : 1,
\t"first" : "2026-11-20T09:15:02.250",
\t"last" : "2026-11-20T09:16:02.750",
\t"received" : "2026-11-20T09:16:10.000",
\t"in_packets" : 12,
\t"in_bytes" : 1024,
\t"proto" : 6,
\t"tcp_flags" : "...AP.SF",
\t"src_port" : 50100,
\t"dst_port" : 502,
\t"fwd_status" : 0,
\t"src_tos" : 0,
\t"src4_addr" : "10.40.0.20",
\t"dst4_addr" : "10.30.1.10",
\t"src_geo" : "",
\t"dst_geo" : "",
\t"input_snmp" : 3,
\t"output_snmp" : 4,
\t"src_mask" : 24,
\t"dst_mask" : 24,
\t"src_net" : "10.40.0.0",
\t"dst_net" : "10.30.1.0",
\t"direction" : 0,
\t"dst_tos" : 0,
\t"out_packets" : 10,
\t"out_bytes" : 980,
\t"aggr_flows" : 1,
\t"ip4_router" : "10.40.0.1",
}"""
JSON_ICMP = """{
\t"type" : "FLOW",
\t"sampled" : 0,
\t"export_sysid" : 1,
\t"first" : "2026-11-20T09:20:00.000",
\t"last" : "2026-11-20T09:20:00.000",
\t"received" : "2026-11-20T09:20:05.000",
\t"in_packets" : 1,
\t"in_bytes" : 84,
\t"proto" : 1,
\t"icmp_type" : 8,
\t"icmp_code" : 0,
\t"src_tos" : 0,
\t"src6_addr" : "2001:db8::5",
\t"dst6_addr" : "2001:db8::1",
\t"src_geo" : "",
\t"dst_geo" : "",
}"""


def test_json_array_field_by_field(tmp_path: Path) -> None:
    text = "[\n" + JSON_RECORD + ",\n" + JSON_ICMP + "]\n"
    path = write(tmp_path, "flows.json", text)
    for block_bytes in (1 << 20, 200):  # small blocks: objects span blocks
        events, dead, records = parse("nfdump_json", path, block_bytes)
        assert (records, events.num_rows, dead) == (2, 2, [])
        a, icmp = events.to_pylist()
        assert a["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, 250000, tzinfo=UTC)
        assert (a["source"], a["format"], a["kind"]) == ("nf", "nfdump_json", "flow")
        assert (a["src_ip"], a["src_port"], a["dst_ip"], a["dst_port"], a["proto"]) == (
            "10.40.0.20", 50100, "10.30.1.10", 502, "tcp")
        assert (a["bytes_out"], a["packets_out"], a["bytes_in"], a["packets_in"], a["duration"]) == (1024, 12, 980, 10, 60.5)
        assert dict(a["attrs"]) == {"type": "FLOW", "tcp_flags": "...AP.SF", "exporter_id": "1", "router_ip": "10.40.0.1",
                                    "input_if": "3", "output_if": "4", "direction": "0", "fwd_status": "0",
                                    "flows": "1", "sampled": "0", "end": "2026-11-20T09:16:02.750",
                                    "received": "2026-11-20T09:16:10.000"}
        assert (a["raw_ref"], a["raw"]) == (f"{path}:2", JSON_RECORD)
        assert icmp["raw_ref"] == f"{path}:34"
        assert (icmp["proto"], icmp["src_ip"], icmp["dst_port"], icmp["duration"]) == ("icmp", "2001:db8::5", None, 0.0)
        assert (dict(icmp["attrs"])["icmp_type"], dict(icmp["attrs"])["icmp_code"]) == ("8", "0")


def test_json_log_lines_and_malformed_records(tmp_path: Path) -> None:
    one_line = JSON_RECORD.replace("\n\t", "").replace("\n", "")
    lines = [
        one_line,                                                   # 1: json-log, one object per line
        one_line.replace('"in_bytes" : 1024', '"in_bytes" : -1'),   # 2: negative count
        one_line.replace('"first" : "2026-11-20T09:15:02.250",', ''),  # 3: no first
        "nfdump: Error reading file",                               # 4: not a record
        one_line.replace('"proto" : 6,', '"proto" : 6 6,'),          # 5: broken JSON
        one_line.replace("10.40.0.20", "10.40.0.999"),              # 6: bad address
        JSON_RECORD.split("\n", 5)[0],                              # 7: "{" never closed (file ends)
        '\t"type" : "FLOW",',
    ]
    path = write(tmp_path, "flows.json", "\n".join(lines) + "\n")
    events, dead, records = parse("nfdump_json", path)
    assert (records, events.num_rows, len(dead)) == (7, 1, 6)
    assert [(d.location.rsplit(":", 1)[1], d.reason) for d in dead] == [
        ("2", "invalid in_bytes -1"),
        ("3", "no usable timestamp: first missing"),
        ("4", "not part of an nfdump JSON record"),
        ("5", "invalid nfdump JSON record: Expecting ',' delimiter at line 1 column 209"),
        ("6", "invalid src_addr '10.40.0.999'"),
        ("7", "nfdump JSON record cut off at the end of the file"),
    ]
    assert events.column("raw_ref").to_pylist() == [f"{path}:1"]
