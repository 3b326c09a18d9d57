"""zeek_dns conformance. No dns.log ships in ../shared/fixtures, so the lines below follow
Zeek's own dns.log layout (header and JSON as Zeek 6/7 writes them, the sample rows of
Zeek's documentation with a port's addresses and times), plus every kind of bad input, and
how the flow detections see the resulting events."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest
from parse_helpers import parse_all

from transforms.parsers import PARSERS
from transforms.parsers._common import NO_TIME

UTC = dt.UTC
HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdns\n"
    "#open\t2026-11-20-08-00-00\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\ttrans_id\trtt\tquery\tqclass\t"
    "qclass_name\tqtype\tqtype_name\trcode\trcode_name\tAA\tTC\tRD\tRA\tZ\tanswers\tTTLs\trejected\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tcount\tinterval\tstring\tcount\tstring\tcount\t"
    "string\tcount\tstring\tbool\tbool\tbool\tbool\tcount\tvector[string]\tvector[interval]\tbool\n"
)
A = ("1795162502.250000\tCMdzit1AMNsmfAIiQc\t10.30.1.20\t36844\t10.40.0.53\t53\tudp\t10185\t0.000527\t"
     "update.crane-vendor.example\t1\tC_INTERNET\t1\tA\t0\tNOERROR\tF\tF\tT\tT\t0\t"
     "cdn.crane-vendor.example,198.51.100.7\t300.000000,60.000000\tF")
NX = ("1795162503.000000\tC5Xrzv3ZbhyNpYDEzb\t10.30.1.20\t36845\t10.40.0.53\t53\tudp\t22\t0.012000\t"
      "WPAD.Terminal.Example.\t1\tC_INTERNET\t28\tAAAA\t3\tNXDOMAIN\tF\tF\tT\tT\t0\t-\t-\tF")
NO_QUESTION = ("1795162504.000000\tCp4s7R1ehGkX8DRsO2\t10.40.0.20\t5353\t10.40.0.53\t53\ttcp\t0\t-\t-\t-\t-\t-\t-\t"
               "1\tFORMERR\tF\tF\tF\tF\t0\t-\t-\tT")
ROOT = ("1795162505.000000\tCq1\t10.40.0.53\t40000\t198.41.0.4\t53\tudp\t7\t0.020000\t.\t1\tC_INTERNET\t2\tNS\t"
        "0\tNOERROR\tT\tF\tF\tF\t0\ta.root-servers.net\t518400.000000\tF")
JSON_A = {"ts": 1795162502.25, "uid": "CMdzit1AMNsmfAIiQc", "id.orig_h": "10.30.1.20", "id.orig_p": 36844,
          "id.resp_h": "10.40.0.53", "id.resp_p": 53, "proto": "udp", "trans_id": 10185, "rtt": 0.000527,
          "query": "Update.Crane-Vendor.EXAMPLE", "qclass": 1, "qclass_name": "C_INTERNET", "qtype": 1,
          "qtype_name": "A", "rcode": 0, "rcode_name": "NOERROR", "AA": False, "TC": False, "RD": True,
          "RA": True, "Z": 0, "answers": ["cdn.crane-vendor.example", "198.51.100.7"], "TTLs": [300.0, 60.0],
          "rejected": False}
#: Zeek's JSON writer leaves unset fields out: a message without a question.
JSON_NO_QUESTION = {"ts": 1795162504.0, "uid": "Cp4s7R1ehGkX8DRsO2", "id.orig_h": "10.40.0.20", "id.orig_p": 5353,
                    "id.resp_h": "10.40.0.53", "id.resp_p": 53, "proto": "tcp", "trans_id": 0, "rcode": 1,
                    "rcode_name": "FORMERR", "AA": False, "TC": False, "RD": False, "RA": False, "Z": 0,
                    "rejected": True}


def parse(path: Path, block_bytes: int = 1 << 20) -> tuple[pa.Table, list, int]:
    return parse_all("zeek_dns", "dns", path, block_bytes)


def test_registered_as_a_flow_format() -> None:
    p = PARSERS["zeek_dns"]
    assert (p.name, p.kind) == ("zeek_dns", "flow")
    assert list(PARSERS).index("zeek_dns") == list(PARSERS).index("zeek_conn") + 1


def test_dns_log_field_by_field(tmp_path: Path) -> None:
    path = tmp_path / "dns.log"
    path.write_text(f"{HEADER}{A}\n{NX}\n{NO_QUESTION}\n{ROOT}\n#close\t2026-11-20-09-00-00\n")
    events, dead, records = parse(path)
    assert (records, events.num_rows, dead) == (4, 4, [])
    a, nx, noq, root = events.to_pylist()
    assert a["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, 250000, tzinfo=UTC)
    assert (a["source"], a["format"], a["kind"], a["service"], a["action"]) == (
        "dns", "zeek_dns", "flow", "dns", "dns.query")
    assert (a["src_ip"], a["src_port"], a["dst_ip"], a["dst_port"], a["proto"]) == (
        "10.30.1.20", 36844, "10.40.0.53", 53, "udp")
    assert (a["target"], a["result"]) == ("update.crane-vendor.example", "NOERROR")
    assert dict(a["attrs"]) == {"uid": "CMdzit1AMNsmfAIiQc", "qtype_name": "A",
                                "answers": "cdn.crane-vendor.example,198.51.100.7", "trans_id": "10185",
                                "rejected": "F"}
    assert a["raw_ref"] == f"{path}:9" and a["raw"] == A
    assert (a["bytes_out"], a["duration"], a["conn_state"], a["user"]) == (None, None, None, None)
    # the name as resolvers send it (DNS 0x20 mixes case; a fully qualified name ends in a dot)
    assert (nx["target"], nx["result"], dict(nx["attrs"])["qtype_name"]) == ("wpad.terminal.example", "NXDOMAIN", "AAAA")
    assert "answers" not in dict(nx["attrs"])
    # unset query (a message without a question): no target, the record is still an event
    assert (noq["target"], noq["result"], noq["proto"], dict(noq["attrs"])["rejected"]) == (None, "FORMERR", "tcp", "T")
    assert "qtype_name" not in dict(noq["attrs"])
    assert root["target"] == "."


def test_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "dns.json"
    iso = dict(JSON_A, ts="2026-11-20T08:15:02.250000Z", uid="Ciso")
    path.write_text("\n".join(json.dumps(x) for x in [JSON_A, JSON_NO_QUESTION, iso]) + "\n")
    events, dead, records = parse(path)
    assert (records, events.num_rows, dead) == (3, 3, [])
    a, noq, b = events.to_pylist()
    assert a["time"] == b["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, 250000, tzinfo=UTC)
    assert (a["target"], a["result"], a["action"], a["dst_port"]) == ("update.crane-vendor.example", "NOERROR", "dns.query", 53)
    assert dict(a["attrs"]) == {"uid": "CMdzit1AMNsmfAIiQc", "qtype_name": "A",
                                "answers": "cdn.crane-vendor.example,198.51.100.7", "trans_id": "10185",
                                "rejected": "F"}
    assert (noq["target"], noq["result"], dict(noq["attrs"])["rejected"]) == (None, "FORMERR", "T")
    assert dict(b["attrs"])["uid"] == "Ciso"


def test_tsv_and_json_give_the_same_events(tmp_path: Path) -> None:
    tsv, js = tmp_path / "dns.log", tmp_path / "dns.json"
    tsv.write_text(HEADER + A + "\n")
    js.write_text(json.dumps(JSON_A) + "\n")
    (t,), (j,) = parse(tsv)[0].to_pylist(), parse(js)[0].to_pylist()
    drop = ("raw", "raw_ref")
    assert {k: v for k, v in t.items() if k not in drop} == {k: v for k, v in j.items() if k not in drop}


def test_headerless_tsv_uses_the_default_fields(tmp_path: Path) -> None:
    path = tmp_path / "dns.cut"
    path.write_text(A + "\n" + NX + "\n")
    events, dead, records = parse(path)
    assert (records, events.num_rows, dead) == (2, 2, [])
    assert events.column("target").to_pylist() == ["update.crane-vendor.example", "wpad.terminal.example"]


def test_bad_rows_are_dead_lettered_with_reasons(tmp_path: Path) -> None:
    bad_port = A.replace("\t36844\t", "\tabc\t")
    lines = [
        *HEADER.splitlines(),                              # 1-8 header
        A,                                                 # 9 ok
        "",                                                # 10 blank: not a record
        "garbage\tline",                                   # 11 wrong field count
        bad_port,                                          # 12 bad port
        A.replace("1795162502.250000", "-"),               # 13 unset ts
        A.replace("1795162502.250000", "XXXXXXXXXX.XXXXXX"),  # 14 masked ts
        A.replace("1795162502.250000", "soon"),            # 15 garbage ts
        A.replace("\t53\t", "\t65536\t"),                  # 16 port out of range
        NX,                                                # 17 ok
    ]
    path = tmp_path / "dns.log"
    path.write_bytes("\n".join(lines).encode() + b"\n" + NX.encode() + b"\xff\n")  # 18 bad UTF-8
    for size in (150, 1 << 20):
        events, dead, records = parse(path, block_bytes=size)
        assert (records, events.num_rows, len(dead)) == (9, 2, 7)
        assert {int(d.location.rsplit(":", 1)[1]): d.reason for d in dead} == {
            11: "expected 24 tab-separated fields, got 2",
            12: "invalid port 'abc' in id.orig_p",
            13: NO_TIME,
            14: NO_TIME,
            15: "no usable timestamp: invalid ts 'soon'",
            16: "invalid port '65536' in id.resp_p",
            18: "not valid UTF-8",
        }
        assert next(d for d in dead if d.location.endswith(":12")).raw == bad_port
        assert events.column("raw_ref").to_pylist() == [f"{path}:9", f"{path}:17"]


def test_bad_json_records(tmp_path: Path) -> None:
    lines = [json.dumps(JSON_A), '{"ts": 1795162502.25, "uid": ', "[1]",
             json.dumps(dict(JSON_A, **{"id.resp_p": "domain"})), json.dumps(dict(JSON_A, ts=None))]
    path = tmp_path / "dns.json"
    path.write_text("\n".join(lines) + "\n")
    events, dead, records = parse(path)
    assert (records, events.num_rows, len(dead)) == (5, 1, 4)
    assert {int(d.location.rsplit(":", 1)[1]): d.reason for d in dead} == {
        2: "invalid JSON: Expecting value at column 30",
        3: "not a JSON object (list)",
        4: "invalid port 'domain' in id.resp_p",
        5: NO_TIME,
    }
    # the row-by-row JSON reading (used when a block does not parse whole) maps the same way
    clean = tmp_path / "clean.json"
    clean.write_text(json.dumps(JSON_A) + "\n")
    drop = ("raw_ref",)
    assert events.drop(drop).equals(parse(clean)[0].drop(drop))


def test_a_log_without_a_query_column_is_dead_lettered(shared_fixtures: Path, tmp_path: Path) -> None:
    conn = shared_fixtures / "zeek-conn-zat" / "conn.log"
    events, dead, records = parse(conn)
    assert (records, events.num_rows, len(dead)) == (360, 0, 360)
    assert {d.reason for d in dead} == {"not a Zeek DNS log (#path conn)"}
    conn_json = shared_fixtures / "zeek-conn-zat" / "conn.json.log"
    events, dead, records = parse(conn_json)
    assert (records, events.num_rows, len(dead)) == (50, 0, 50)
    assert {d.reason for d in dead} == {"not a Zeek DNS log (no query field)"}
    # a dns.log section then a conn section in one file: each judged by its own header
    mixed = tmp_path / "mixed.log"
    mixed.write_text(HEADER + A + "\n" + conn.read_text())
    events, dead, records = parse(mixed, block_bytes=2000)
    assert (records, events.num_rows, len(dead)) == (361, 1, 360)


@pytest.mark.parametrize("size", [120, 700, 1 << 20])
def test_block_size_does_not_change_the_result(tmp_path: Path, size: int) -> None:
    path = tmp_path / "dns.log"
    path.write_text(HEADER + "\n".join([A, NX, NO_QUESTION, ROOT] * 5) + "\n")
    whole, _, _ = parse(path)
    events, dead, records = parse(path, block_bytes=size)
    assert (records, dead) == (20, []) and events.equals(whole)


# --- how the flow detections see DNS events --------------------------------------------------


def _detect(tmp_path: Path, dns_rows: list[str], conn_rows: list[str] = ()) -> dict[str, int]:
    """Hits per detection (finding counts summed) for a dns.log of ``dns_rows`` and a
    headerless conn.log of ``conn_rows``, over the detection test terminal."""
    from detections.testing import TEST_TERMINAL
    from pipelines.config import parse_config
    from transforms.detect import Detector
    from transforms.enrich import Enricher

    (tmp_path / "dns.log").write_text(HEADER + "\n".join(dns_rows) + "\n")
    (tmp_path / "conn.log").write_text("".join(r + "\n" for r in conn_rows))
    dns, dead, _ = parse(tmp_path / "dns.log")
    conn, dead2, _ = parse_all("zeek_conn", "conn", tmp_path / "conn.log")
    assert not dead and not dead2
    cfg = parse_config(TEST_TERMINAL, "<test terminal>", str(tmp_path))
    detector = Detector(cfg)
    findings, keyed = detector.scan(Enricher(cfg)(pa.concat_tables([conn, dns])))
    out: dict[str, int] = {}
    for f in findings + detector.run_stateful(keyed):
        out[f.detection_id] = out.get(f.detection_id, 0) + f.count
    return out


def test_flow_detections_on_dns_events(tmp_path: Path) -> None:
    """A crane PLC asking an outside resolver every minute. Each query is a conn.log row and
    a dns.log row at the same time: ot_beaconing keeps to the connections (its where: leaves
    dns.* out; counted twice, the gaps would alternate 0 s / 60 s and hide the beacon);
    ot_unexpected_egress flags both rows under one dedup key (one finding, the DNS rows add
    the query names to its evidence); volume and unknown-device detections stay silent."""
    start = 1795162502
    dns = [A.replace("1795162502.250000", f"{start + 60 * i}.250000").replace("10.30.1.20", "10.30.1.10")
           .replace("10.40.0.53", "8.8.8.8").replace("\t36844\t", f"\t{36844 + i}\t") for i in range(12)]
    conn = [f"{start + 60 * i}.250000\tCc{i}\t10.30.1.10\t{36844 + i}\t8.8.8.8\t53\tudp\tdns\t0.000527\t45\t"
            f"120\tSF\tT\tF\t0\tDd\t1\t73\t1\t148\t-" for i in range(12)]
    assert _detect(tmp_path, dns) == {"ot_unexpected_egress": 12}
    assert _detect(tmp_path, dns, conn) == {"ot_unexpected_egress": 24, "ot_beaconing": 5}
    assert _detect(tmp_path, [], conn) == {"ot_unexpected_egress": 12, "ot_beaconing": 5}
    # internal resolver, ordinary names: nothing at all
    assert _detect(tmp_path, [A, NX, NO_QUESTION, ROOT]) == {}
