"""zeek_conn conformance: real Zeek/Bro samples field by field, and every kind of bad input."""
from __future__ import annotations

import bz2
import datetime as dt
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard
from parse_helpers import parse_all, parse_untimed

from transforms.parsers import PARSERS
from transforms.parsers._common import NO_TIME

UTC = dt.timezone.utc
NEW_HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\t"
    "orig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\t"
    "orig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\t"
    "bool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n"
)
GOOD = ("1795162502.250000\tCx1\t10.30.5.20\t49152\t10.40.1.10\t502\ttcp\tmodbus\t1.500000\t120\t80\t"
        "SF\tT\tT\t0\tShADadFf\t6\t440\t4\t280\t-")


def parse(path: Path | str, block_bytes: int = 1 << 20, **kw) -> tuple[pa.Table, list, int]:
    return parse_all("zeek_conn", "zeek", path, block_bytes, **kw)


def untimed(path: Path) -> pa.Table:
    return parse_untimed("zeek_conn", "zeek", path)


def row(events: pa.Table, i: int) -> dict:
    return events.slice(i, 1).to_pylist()[0]


def test_registry() -> None:
    kinds = {name: p.kind for name, p in PARSERS.items()}
    assert {k: kinds.get(k) for k in ("zeek_conn", "zeek_modbus", "cms_events", "fortigate_vpn")} == {
        "zeek_conn": "flow", "zeek_modbus": "ot", "cms_events": "ot", "fortigate_vpn": "remote_access"}
    for name, p in PARSERS.items():
        assert p.name == name and p.description and "\n" not in p.description


def test_zat_tsv_old_bro_layout(shared_fixtures: Path) -> None:
    path = shared_fixtures / "zeek-conn-zat" / "conn.log"
    events, dead, records = parse(path)
    assert (records, events.num_rows, dead) == (360, 360, [])
    first = row(events, 0)
    assert first["time"] == dt.datetime(2013, 9, 15, 23, 44, 27, 706265, tzinfo=UTC)
    assert first["time"].timestamp() == 1379288667.706265
    assert (first["src_ip"], first["src_port"], first["dst_ip"], first["dst_port"]) == (
        "192.168.33.10", 1032, "54.245.228.191", 80)
    assert (first["proto"], first["service"], first["duration"]) == ("tcp", "http", 0.447460)
    assert (first["bytes_out"], first["bytes_in"], first["packets_out"], first["packets_in"]) == (601, 38393, 22, 31)
    assert first["conn_state"] == "RSTO"
    assert (first["source"], first["format"], first["kind"], first["action"]) == ("zeek", "zeek_conn", "flow", "flow")
    assert first["attrs"] == [("uid", "CoyZrY2g74UvMMgp4a")]
    assert first["raw_ref"] == f"{path}:9"
    assert first["raw"] == path.read_text().splitlines()[8]
    assert first["user"] is None and first["asset_id"] is None
    # ICMP row near the end: unset (-) fields are null, not zero.
    icmp = row(events, 358)
    assert icmp["raw_ref"] == f"{path}:367"
    assert icmp["time"] == dt.datetime(2013, 9, 15, 23, 48, 7, 734599, tzinfo=UTC)
    assert (icmp["src_ip"], icmp["src_port"], icmp["dst_ip"], icmp["dst_port"]) == ("31.171.135.249", 3, "192.168.33.10", 3)
    assert (icmp["proto"], icmp["service"], icmp["duration"], icmp["bytes_out"], icmp["bytes_in"]) == (
        "icmp", None, None, None, None)
    assert (icmp["conn_state"], icmp["packets_out"], icmp["packets_in"]) == ("OTH", 1, 0)
    # Line numbers follow the file exactly (8 header lines, then one record per line).
    assert events.column("raw_ref").to_pylist() == [f"{path}:{n}" for n in range(9, 369)]


def test_zat_json_lines(shared_fixtures: Path) -> None:
    path = shared_fixtures / "zeek-conn-zat" / "conn.json.log"
    events, dead, records = parse(path)
    assert (records, events.num_rows, dead) == (50, 50, [])
    first = row(events, 0)
    assert first["time"] == dt.datetime(2019, 12, 3, 22, 44, 56, 52279, tzinfo=UTC)
    assert (first["src_ip"], first["src_port"], first["dst_ip"], first["dst_port"]) == ("10.18.20.97", 49187, "10.18.20.8", 88)
    assert (first["proto"], first["service"], first["conn_state"]) == ("tcp", "krb_tcp", "RSTR")
    assert first["duration"] == pytest.approx(0.0012309551239013672)
    assert (first["bytes_out"], first["bytes_in"], first["packets_out"], first["packets_in"]) == (242, 283, 4, 4)
    assert first["attrs"] == [("uid", "CH53301MTU21BMj2Bj")]
    assert first["raw_ref"] == f"{path}:1"
    last = row(events, 49)
    assert last["time"] == dt.datetime(2019, 12, 3, 22, 46, 4, 247294, tzinfo=UTC)
    assert (last["proto"], last["service"], last["dst_port"], last["bytes_in"]) == ("udp", "dns", 53, 277)


@pytest.mark.parametrize("folder,count", [("zeek-icsnpp-modbus", 2), ("zeek-icsnpp-s7comm", 1), ("zeek-modbus-scanners", 8)])
def test_masked_btest_baselines_are_dead_lettered_with_reason(shared_fixtures: Path, folder: str, count: int) -> None:
    path = shared_fixtures / folder / "conn.log"
    events, dead, records = parse(path)
    assert (records, events.num_rows, len(dead)) == (count, 0, count)
    lines = path.read_text().splitlines()
    for k, d in enumerate(dead):
        assert d.reason == NO_TIME
        assert d.location == f"{path}:{10 + k}"  # banner + 8 header lines first
        assert d.raw == lines[9 + k] and d.raw.startswith("XXXXXXXXXX.XXXXXX\t")
        assert d.source == "zeek"


def test_masked_baselines_fields(shared_fixtures: Path) -> None:
    ev = untimed(shared_fixtures / "zeek-icsnpp-modbus" / "conn.log")
    a, b = ev.to_pylist()
    assert a["time"] is None
    assert (a["src_ip"], a["src_port"], a["dst_ip"], a["dst_port"], a["proto"], a["service"]) == (
        "127.0.0.1", 47785, "127.0.0.1", 502, "tcp", "modbus")
    assert (a["duration"], a["bytes_out"], a["bytes_in"], a["packets_out"], a["packets_in"], a["conn_state"]) == (
        0.006324, 292, 393, 50, 48, "SF")
    assert a["attrs"] == [("uid", "CHhAvVGS1DHFjwGM9")]
    assert (b["src_ip"], b["src_port"], b["dst_ip"], b["conn_state"], b["bytes_out"], b["bytes_in"]) == (
        "192.168.1.6", 37699, "3.15.227.20", "OTH", 12, 9)

    (s7,) = untimed(shared_fixtures / "zeek-icsnpp-s7comm" / "conn.log").to_pylist()
    assert (s7["src_ip"], s7["src_port"], s7["dst_ip"], s7["dst_port"], s7["service"]) == (
        "134.217.61.131", 51212, "134.217.61.211", 102, "cotp,s7comm")
    assert (s7["duration"], s7["bytes_out"], s7["bytes_in"], s7["packets_out"], s7["packets_in"]) == (0.548674, 1216, 2540, 32, 32)

    scan = untimed(shared_fixtures / "zeek-modbus-scanners" / "conn.log")  # has extra ip_proto
    assert scan.num_rows == 8
    assert scan.column("service").to_pylist() == ["modbus", "dce_rpc", None, "ssl", None, None, None, None]
    assert scan.column("conn_state").to_pylist() == ["SF", "SF", "SF", "SF", "RSTO", "RSTRH", "SF", "SF"]
    assert row(scan, 5)["bytes_out"] == 109 and row(scan, 5)["duration"] == 0.000054
    assert set(scan.column("dst_port").to_pylist()) == {502}


def _write_compressed(src: Path, dst: Path, kind: str) -> Path:
    data = src.read_bytes()
    dst.write_bytes({"gz": gzip.compress, "bz2": bz2.compress,
                     "zst": zstandard.ZstdCompressor().compress}[kind](data))
    return dst


@pytest.mark.parametrize("kind", ["gz", "bz2", "zst"])
def test_compressed_copies(shared_fixtures: Path, tmp_path: Path, kind: str) -> None:
    src = shared_fixtures / "zeek-conn-zat" / "conn.log"
    plain, _, _ = parse(src)
    path = _write_compressed(src, tmp_path / f"conn.log.{kind}", kind)
    events, dead, records = parse(path, block_bytes=4096)
    assert (records, events.num_rows, dead) == (360, 360, [])
    assert events.drop(["raw_ref"]).equals(plain.drop(["raw_ref"]))
    assert events.column("raw_ref")[0].as_py() == f"{path}:9"


def test_json_gz(shared_fixtures: Path, tmp_path: Path) -> None:
    path = _write_compressed(shared_fixtures / "zeek-conn-zat" / "conn.json.log", tmp_path / "c.json.gz", "gz")
    events, dead, _ = parse(path)
    assert events.num_rows == 50 and not dead


def test_crlf_bom_and_banner(shared_fixtures: Path, tmp_path: Path) -> None:
    src = shared_fixtures / "zeek-conn-zat" / "conn.log"
    plain, _, _ = parse(src)
    path = tmp_path / "conn.log"
    text = "### BTest baseline data generated by btest-diff. Do not edit.\n" + src.read_text()
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    events, dead, records = parse(path, block_bytes=3000)
    assert (records, events.num_rows, dead) == (360, 360, [])
    assert events.drop(["raw_ref"]).equals(plain.drop(["raw_ref"]))
    assert events.column("raw_ref")[0].as_py() == f"{path}:10"


def test_block_size_does_not_change_result(shared_fixtures: Path) -> None:
    src = shared_fixtures / "zeek-conn-zat" / "conn.log"
    whole, _, _ = parse(src)
    for size in (200, 1000, 7777):
        events, dead, records = parse(src, block_bytes=size)
        assert events.equals(whole) and not dead and records == 360


def test_concatenated_files_with_different_headers(shared_fixtures: Path, tmp_path: Path) -> None:
    """Old Bro layout then a current one (22 columns) in one file; headers may fall mid-block."""
    old = (shared_fixtures / "zeek-conn-zat" / "conn.log").read_text()
    new = NEW_HEADER.replace("\ttunnel_parents\n", "\ttunnel_parents\tip_proto\n") + GOOD + "\t6\n#close\tx\n"
    path = tmp_path / "conn.log"
    path.write_text(old + new + old)
    for size in (500, 1 << 20):
        events, dead, records = parse(path, block_bytes=size)
        assert (records, events.num_rows, dead) == (721, 721, [])
        mid = row(events, 360)
        assert mid["raw_ref"] == f"{path}:{369 + 7 + 1}"
        assert (mid["src_ip"], mid["dst_port"], mid["service"], mid["bytes_out"], mid["packets_in"]) == (
            "10.30.5.20", 502, "modbus", 120, 4)
        assert mid["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, 250000, tzinfo=UTC)
        assert row(events, 361)["attrs"] == [("uid", "CoyZrY2g74UvMMgp4a")]


def test_headerless_tsv_uses_default_fields(tmp_path: Path) -> None:
    path = tmp_path / "conn.cut"
    path.write_text(GOOD + "\n" + GOOD.replace("Cx1", "Cx2") + "\n")
    events, dead, records = parse(path)
    assert (records, events.num_rows, dead) == (2, 2, [])
    assert events.column("attrs").to_pylist() == [[("uid", "Cx1")], [("uid", "Cx2")]]


def test_malformed_tsv_lines(tmp_path: Path) -> None:
    bad_port = GOOD.replace("\t49152\t", "\tabc\t")
    lines = [
        *NEW_HEADER.splitlines(),             # 1-7 header
        GOOD,                                 # 8 ok
        "",                                   # 9 blank: not a record
        "garbage\tline\tonly",                # 10 wrong column count
        bad_port,                             # 11 bad port
        GOOD.replace("\t120\t", "\t-5\t"),    # 12 negative count
        GOOD.replace("\t1.500000\t", "\tslow\t"),  # 13 bad interval
        "   ",                                # 14 whitespace only: not a record
        GOOD.replace("1795162502.250000", "-"),    # 15 unset ts
        GOOD.replace("1795162502.250000", "yesterday"),  # 16 garbage ts
        GOOD.replace("\t502\t", "\t70000\t"),  # 17 port out of range
        GOOD + "\textra",                     # 18 one field too many
        GOOD,                                 # 19 ok
    ]
    path = tmp_path / "conn.log"
    path.write_bytes("\n".join(lines).encode() + b"\n" + GOOD.encode() + b"\xff\n" + GOOD.encode())  # 20 bad UTF-8, 21 ok
    for size in (100, 1 << 20):
        events, dead, records = parse(path, block_bytes=size)
        assert (records, events.num_rows, len(dead)) == (12, 3, 9)
        got = {int(d.location.rsplit(":", 1)[1]): d.reason for d in dead}
        assert got == {
            10: "expected 21 tab-separated fields, got 3",
            11: "invalid port 'abc' in id.orig_p",
            12: "invalid count '-5' in orig_bytes",
            13: "invalid number 'slow' in duration",
            15: NO_TIME,
            16: "no usable timestamp: invalid ts 'yesterday'",
            17: "invalid port '70000' in id.resp_p",
            18: "expected 21 tab-separated fields, got 22",
            20: "not valid UTF-8",
        }
        assert all(d.location.startswith(f"{path}:") for d in dead)
        assert next(d for d in dead if d.location.endswith(":11")).raw == bad_port
        assert next(d for d in dead if d.location.endswith(":20")).raw == GOOD + "\\xff"
        assert events.column("raw_ref").to_pylist() == [f"{path}:8", f"{path}:19", f"{path}:21"]


def test_json_lines_with_bad_records(tmp_path: Path) -> None:
    good = {"ts": 1795162502.25, "uid": "Cj1", "id.orig_h": "10.30.5.20", "id.orig_p": 49152,
            "id.resp_h": "10.40.1.10", "id.resp_p": 502, "proto": "tcp", "service": "modbus",
            "duration": 1.5, "orig_bytes": 120, "resp_bytes": 80, "conn_state": "SF",
            "orig_pkts": 6, "resp_pkts": 4, "tunnel_parents": ["Cabc"]}
    iso = dict(good, ts="2026-11-20T08:15:02.250000Z", uid="Cj2")
    lines = [
        json.dumps(good),                          # 1 ok
        '{"ts": 1795162502.25, "uid": ',           # 2 truncated JSON
        "[1, 2]",                                  # 3 not an object
        json.dumps(dict(good, **{"id.orig_p": "abc"})),  # 4 bad port (string)
        "",                                        # 5 blank
        json.dumps(iso),                           # 6 ISO 8601 ts
        json.dumps(dict(good, ts=None)),           # 7 null ts
        json.dumps(dict(good, orig_bytes=1.5)),    # 8 fractional count
    ]
    path = tmp_path / "conn.json"
    path.write_text("\n".join(lines) + "\n")
    events, dead, records = parse(path)
    assert (records, events.num_rows, len(dead)) == (7, 2, 5)
    assert {d.location: d.reason for d in dead} == {
        f"{path}:2": "invalid JSON: Expecting value at column 30",
        f"{path}:3": "not a JSON object (list)",
        f"{path}:4": "invalid port 'abc' in id.orig_p",
        f"{path}:7": NO_TIME,
        f"{path}:8": "invalid count '1.5' in orig_bytes",
    }
    a, b = events.to_pylist()
    assert a["time"] == b["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, 250000, tzinfo=UTC)
    assert (b["src_port"], b["dst_port"], b["bytes_out"], b["raw_ref"]) == (49152, 502, 120, f"{path}:6")
    assert b["attrs"] == [("uid", "Cj2")]


def test_clean_json_block_uses_arrow_types(tmp_path: Path) -> None:
    """A clean block goes through pyarrow.json (typed columns) with the same result."""
    rec = {"ts": "2026-11-20T08:15:02.250000+01:00", "uid": "Cq", "id.orig_h": "fe80::1", "id.orig_p": 1,
           "id.resp_h": "ff02::1", "id.resp_p": 2, "proto": "udp", "local_orig": True}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(rec) + "\n")
    events, dead, _ = parse(path)
    assert not dead
    r = row(events, 0)
    assert r["time"] == dt.datetime(2026, 11, 20, 7, 15, 2, 250000, tzinfo=UTC)
    assert (r["src_ip"], r["dst_ip"], r["bytes_out"], r["service"]) == ("fe80::1", "ff02::1", None, None)


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_text("")
    assert parse(empty)[0].num_rows == 0
    header = tmp_path / "header.log"
    header.write_text(NEW_HEADER + "#close\t2026-11-20-09-00-00\n")
    events, dead, records = parse(header)
    assert (events.num_rows, dead, records) == (0, [], 0)
