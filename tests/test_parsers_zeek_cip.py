"""zeek_cip conformance. No ICSNPP-ENIP baseline ships in ../shared/fixtures, so the lines
below copy the layout of its btest baselines (``tests/baseline/analyzer.basic/cip.log``:
19 fields with a header; ``analyzer.set_attr_single_service/cip.log``: headerless, 23
fields with source/destination columns) with real times; see docs/formats/zeek-cip.md."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
from parse_helpers import parse_all

UTC = dt.timezone.utc
HEADER = """#separator \\x09
#set_separator\t,
#empty_field\t(empty)
#unset_field\t-
#path\tcip
#open\t2026-11-20-08-00-00
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tis_orig\tcip_sequence_count\tdirection\tcip_service_code\tcip_service\tcip_status_code\tcip_status\tcip_extended_status_code\tcip_extended_status\tclass_id\tclass_name\tinstance_id\tattribute_id
#types\ttime\tstring\taddr\tport\taddr\tport\tbool\tcount\tstring\tstring\tstring\tstring\tstring\tstring\tstring\tstring\tstring\tstring\tstring
"""
ROWS = [
    "1795162502.000100\tCHhAvVGS1DHFjwGM9\t10.40.0.20\t3033\t10.30.2.10\t44818\tT\t1929\trequest\t0x0a\tMultiple Service Packet\t-\t-\t-\t-\t0x02\tMessage Router\t0x01\t-",
    "1795162502.000200\tCHhAvVGS1DHFjwGM9\t10.40.0.20\t3033\t10.30.2.10\t44818\tT\t1929\trequest\t0x03\tGet Attribute List\t-\t-\t-\t-\t0x69\tunknown\t0x00\t-",
    "1795162502.100000\tCHhAvVGS1DHFjwGM9\t10.40.0.20\t3033\t10.30.2.10\t44818\tF\t1929\tresponse\t0x03\tGet Attribute List\t0x00\tSuccess\t-\t-\t-\t-\t-\t-",
    "1795162510.000000\tCHhAvVGS1DHFjwGM9\t10.40.0.20\t3033\t10.30.2.10\t44818\tT\t1930\trequest\t0x07\tStop\t-\t-\t-\t-\t0x01\tIdentity\t0x01\t-",
    "1795162510.050000\tCHhAvVGS1DHFjwGM9\t10.40.0.20\t3033\t10.30.2.10\t44818\tF\t1930\tresponse\t0x07\tStop\t0x0c\tObject state conflict\t-\t-\t-\t-\t-\t-",
]
HEADERLESS = ("1795162520.000000\tCHhAvVGS1DHFjwGM9\t10.100.90.51\t37844\t10.100.40.11\t44818\tT\t10.100.90.51\t37844\t"
              "10.100.40.11\t44818\t13\trequest\t0x10\tSet Attributes Single\t-\t-\t-\t-\t0x01\tIdentity\t0x00\t0x03")


def parse(path: Path, block_bytes: int = 1 << 20) -> tuple[pa.Table, list, int]:
    return parse_all("zeek_cip", "ot", path, block_bytes)


def test_cip_log_field_by_field(tmp_path: Path) -> None:
    path = tmp_path / "cip.log"
    path.write_text(HEADER + "\n".join(ROWS) + "\n#close\t2026-11-20-09-00-00\n")
    events, dead, records = parse(path)
    assert (records, events.num_rows, dead) == (5, 5, [])
    msp, gal, resp, stop, refused = events.to_pylist()
    assert msp["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, 100, tzinfo=UTC)
    assert (msp["source"], msp["format"], msp["kind"], msp["service"]) == ("ot", "zeek_cip", "ot", "cip")
    assert (msp["src_ip"], msp["src_port"], msp["dst_ip"], msp["dst_port"]) == ("10.40.0.20", 3033, "10.30.2.10", 44818)
    assert (msp["action"], msp["target"], msp["result"]) == (
        "cip.multiple_service_packet", "class=0x02(Message Router);instance=0x01", "ok")
    assert dict(msp["attrs"]) == {"uid": "CHhAvVGS1DHFjwGM9", "is_orig": "T", "direction": "request", "sequence": "1929",
                                  "service_code": "0x0a", "service_name": "Multiple Service Packet",
                                  "class_name": "Message Router"}
    assert msp["raw_ref"] == f"{path}:9"
    assert (gal["action"], gal["target"]) == ("cip.get_attribute_list", "class=0x69;instance=0x00")
    assert (resp["target"], resp["result"], dict(resp["attrs"])["status_code"]) == (None, "ok", "0x00")
    assert (stop["action"], stop["target"]) == ("cip.stop", "class=0x01(Identity);instance=0x01")
    assert (refused["action"], refused["result"]) == ("cip.stop", "error:Object state conflict")


def test_headerless_and_malformed_lines(tmp_path: Path) -> None:
    bad_port = HEADERLESS.replace("\t44818\t", "\tport\t", 1)
    lines = [HEADERLESS, bad_port, "1795162520.5\tCx\t10.0.0.9", HEADERLESS.replace("1795162520.000000", "-", 1)]
    path = tmp_path / "cip.log"
    path.write_text("\n".join(lines) + "\n")
    events, dead, records = parse(path, block_bytes=200)
    assert (records, events.num_rows, len(dead)) == (4, 1, 3)
    assert [(d.location.rsplit(":", 1)[1], d.reason) for d in dead] == [
        ("2", "invalid port 'port' in id.resp_p"),
        ("3", "expected 23 tab-separated fields, got 3"),
        ("4", "no usable timestamp (masked or missing ts)"),
    ]
    (row,) = events.to_pylist()
    assert (row["action"], row["target"], row["src_ip"]) == (
        "cip.set_attribute_single", "class=0x01(Identity);instance=0x00;attr=0x03", "10.100.90.51")


def test_conn_log_is_not_cip(shared_fixtures: Path) -> None:
    path = shared_fixtures / "zeek-icsnpp-modbus" / "conn.log"
    events, dead, records = parse(path)
    assert (records, events.num_rows) == (2, 0)
    assert {d.reason for d in dead} == {"not a Zeek CIP log (#path conn)"}
