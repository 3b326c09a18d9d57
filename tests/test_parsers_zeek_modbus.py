"""zeek_modbus conformance on the ICSNPP and Zeek btest baselines, field by field."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest
from parse_helpers import parse_all, parse_untimed

from transforms.parsers._common import NO_TIME

UTC = dt.timezone.utc
ICSNPP = "zeek-icsnpp-modbus"
BASIC_ACTIONS = [
    "read_coils", "read_coils", "read_discrete_inputs", "read_discrete_inputs",
    "read_holding_registers", "read_holding_registers", "read_input_registers",
    "read_input_registers", "write_single_coil", "write_single_register",
    "read_exception_status", "diagnostics", "write_multiple_coils", "write_multiple_registers",
    "report_slave_id", "read_file_record", "write_file_record", "mask_write_register",
    "mask_write_register", "read_write_multiple_registers", "read_write_multiple_registers",
    "read_fifo_queue", "encap_interface_transport", "read_holding_registers",
]


def parse(path: Path | str, block_bytes: int = 1 << 20) -> tuple[pa.Table, list, int]:
    return parse_all("zeek_modbus", "ot", path, block_bytes)


def untimed(path: Path) -> list[dict]:
    """Fields of a masked baseline, row by row."""
    return parse_untimed("zeek_modbus", "ot", path).to_pylist()


def attrs(row: dict) -> dict:
    return dict(row["attrs"] or [])


@pytest.mark.parametrize("rel,count,first_line", [
    (f"{ICSNPP}/modbus.log", 24, 2),
    (f"{ICSNPP}/modbus_detailed.log", 26, 10),
    (f"{ICSNPP}/modbus_mask_write_register.log", 4, 10),
    (f"{ICSNPP}/modbus_read_write_multiple_registers.log", 4, 10),
    ("zeek-modbus-scanners/modbus.log", 12, 10),
])
def test_masked_baselines_dead_letter_every_record(shared_fixtures: Path, rel: str, count: int, first_line: int) -> None:
    path = shared_fixtures / rel
    events, dead, records = parse(path)
    assert (records, events.num_rows, len(dead)) == (count, 0, count)
    lines = path.read_text().splitlines()
    for k, d in enumerate(dead):
        assert d.reason == NO_TIME
        assert d.location == f"{path}:{first_line + k}"
        assert d.raw == lines[first_line - 1 + k]


def test_headerless_zeek_cut_modbus_log(shared_fixtures: Path) -> None:
    path = shared_fixtures / ICSNPP / "modbus.log"
    rows = untimed(path)
    assert [r["action"] for r in rows] == [f"modbus.{a}" for a in BASIC_ACTIONS]
    first = rows[0]
    assert first["time"] is None
    assert (first["src_ip"], first["src_port"], first["dst_ip"], first["dst_port"]) == ("127.0.0.1", 47785, "127.0.0.1", 502)
    assert (first["proto"], first["service"], first["kind"], first["format"]) == ("tcp", "modbus", "ot", "zeek_modbus")
    assert (first["target"], first["value_new"], first["result"]) == (None, None, "ok")
    assert attrs(first) == {"uid": "CHhAvVGS1DHFjwGM9"}
    assert first["raw_ref"] == f"{path}:2"
    # READ_HOLDING_REGISTERS_EXCEPTION: the verb is the function, the exception the result.
    last = rows[-1]
    assert (last["src_ip"], last["src_port"], last["dst_ip"]) == ("192.168.1.6", 37699, "3.15.227.20")
    assert last["action"] == "modbus.read_holding_registers"
    assert last["result"] == "exception:ILLEGAL_DATA_ADDRESS"
    assert attrs(last) == {"uid": "ClEkJM2Vm5giqnMf4h"}


def test_icsnpp_modbus_detailed(shared_fixtures: Path) -> None:
    path = shared_fixtures / ICSNPP / "modbus_detailed.log"
    rows = untimed(path)
    assert len(rows) == 26
    by_tid = {(attrs(r)["tid"], attrs(r)["unit"]): r for r in rows}
    wsr = by_tid[("10", "7")]
    assert wsr["action"] == "modbus.write_single_register"
    assert (wsr["target"], wsr["value_new"], wsr["result"]) == ("unit=7;addr=1", "43981", "ok")
    assert attrs(wsr) == {"uid": "CHhAvVGS1DHFjwGM9", "unit": "7", "tid": "10", "quantity": "1", "matched": "T",
                          "op": "CHhAvVGS1DHFjwGM9/write_single_register#1"}
    wmr = by_tid[("14", "7")]
    assert (wmr["action"], wmr["target"], wmr["value_new"]) == (
        "modbus.write_multiple_registers", "unit=7;addr=1", "170,187,204,221")
    wmc = by_tid[("13", "7")]
    assert (wmc["action"], wmc["value_new"], attrs(wmc)["quantity"]) == ("modbus.write_multiple_coils", "1,0,0,1", "4")
    coils = rows[0]
    assert (coils["action"], coils["target"], coils["value_new"], coils["raw_ref"]) == (
        "modbus.read_coils", "unit=4;addr=1", None, f"{path}:10")
    # No address known: target names the unit only.
    diag = by_tid[("12", "2")]
    assert (diag["action"], diag["target"], diag["result"]) == ("modbus.diagnostics", "unit=2", "ok")
    exc = rows[-1]
    assert (exc["src_ip"], exc["dst_ip"], exc["action"]) == ("192.168.1.6", "3.15.227.20", "modbus.read_holding_registers")
    assert (exc["target"], exc["result"]) == ("unit=0;addr=600", "exception:ILLEGAL_DATA_ADDRESS")
    assert attrs(exc) == {"uid": "ClEkJM2Vm5giqnMf4h", "unit": "0", "tid": "1", "quantity": "10", "matched": "T"}


def test_icsnpp_mask_write_register(shared_fixtures: Path) -> None:
    rows = untimed(shared_fixtures / ICSNPP / "modbus_mask_write_register.log")
    assert [r["action"] for r in rows] == ["modbus.mask_write_register"] * 4
    assert [r["target"] for r in rows] == ["unit=4;addr=10"] * 4
    assert [r["value_new"] for r in rows] == ["and_mask=57005;or_mask=0"] * 2 + ["and_mask=65535;or_mask=57005"] * 2
    assert [attrs(r)["pdu_type"] for r in rows] == ["REQUEST", "RESPONSE"] * 2
    assert [attrs(r)["tid"] for r in rows] == ["18", "18", "19", "19"]
    assert {r["result"] for r in rows} == {"ok"}


def test_icsnpp_read_write_multiple_registers(shared_fixtures: Path) -> None:
    rows = untimed(shared_fixtures / ICSNPP / "modbus_read_write_multiple_registers.log")
    req, resp, req2, _ = rows
    assert (req["action"], req["target"], req["value_new"]) == ("modbus.read_write_multiple_registers", "unit=6;addr=2", "255")
    assert attrs(req) == {"uid": "CHhAvVGS1DHFjwGM9", "unit": "6", "tid": "20", "quantity": "1",
                          "pdu_type": "REQUEST", "read_start_address": "1",
                          "op": "CHhAvVGS1DHFjwGM9/read_write_multiple_registers#1"}
    assert (resp["target"], resp["value_new"], attrs(resp)["pdu_type"]) == ("unit=6", None, "RESPONSE")
    assert (req2["value_new"], attrs(req2)["quantity"]) == ("170,187,204", "4")


def test_zeek_modbus_with_pdu_type(shared_fixtures: Path) -> None:
    rows = untimed(shared_fixtures / "zeek-modbus-scanners" / "modbus.log")
    assert len(rows) == 12
    assert [attrs(r)["pdu_type"] for r in rows] == ["REQ", "RESP"] * 6
    assert [r["action"] for r in rows][::2] == [
        "modbus.read_coils", "modbus.read_coils", "modbus.read_holding_registers",
        "modbus.write_single_coil", "modbus.write_single_coil", "modbus.write_single_register"]
    r = rows[-1]
    assert (r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"], r["target"], r["result"]) == (
        "10.0.0.9", 3082, "10.0.0.3", 502, "unit=10", "ok")
    assert attrs(r) == {"uid": "CHhAvVGS1DHFjwGM9", "unit": "10", "tid": "1", "pdu_type": "RESP",
                        "op": "CHhAvVGS1DHFjwGM9/write_single_register#1"}


def test_conn_log_is_not_modbus(shared_fixtures: Path) -> None:
    path = shared_fixtures / ICSNPP / "conn.log"
    events, dead, records = parse(path)
    assert (records, events.num_rows) == (2, 0)
    assert [(d.location, d.reason) for d in dead] == [
        (f"{path}:10", "not a Zeek Modbus log (#path conn)"),
        (f"{path}:11", "not a Zeek Modbus log (#path conn)"),
    ]


def test_unmasked_log_with_bad_lines(shared_fixtures: Path, tmp_path: Path) -> None:
    """A real-time copy of the scanners' modbus.log, with malformed lines mixed in."""
    src = (shared_fixtures / "zeek-modbus-scanners" / "modbus.log").read_text().splitlines()
    lines = [l.replace("XXXXXXXXXX.XXXXXX", "1795162502.000100") for l in src]
    base = lines[9].split("\t")  # line 10, the first record
    exception = base[:8] + ["WRITE_MULTIPLE_REGISTERS_EXCEPTION", "RESP", "ILLEGAL_FUNCTION"]
    lines[11:11] = [
        "\t".join(base[:3] + ["port"] + base[4:]),  # line 12: bad port
        "1795162502.5\tCx\t10.0.0.9",              # line 13: too few fields
        "\t".join(exception),                       # line 14: exception response
    ]
    path = tmp_path / "modbus.log"
    path.write_bytes(("\n".join(lines) + "\n").encode())
    events, dead, records = parse(path, block_bytes=300)
    assert (records, events.num_rows, len(dead)) == (15, 13, 2)
    assert [(d.location, d.reason) for d in dead] == [
        (f"{path}:12", "invalid port 'port' in id.orig_p"),
        (f"{path}:13", "expected 11 tab-separated fields, got 3"),
    ]
    first = events.slice(0, 1).to_pylist()[0]
    assert first["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, 100, tzinfo=UTC)
    exc = events.slice(2, 1).to_pylist()[0]
    assert exc["raw_ref"] == f"{path}:14"
    assert (exc["action"], exc["result"]) == ("modbus.write_multiple_registers", "exception:ILLEGAL_FUNCTION")


def test_json_modbus_detailed(tmp_path: Path) -> None:
    rec = {"ts": 1795162502.5, "uid": "Cm1", "id.orig_h": "10.30.5.20", "id.orig_p": 50100,
           "id.resp_h": "10.40.3.11", "id.resp_p": 502, "tid": 7, "unit": 1,
           "func": "WRITE_MULTIPLE_REGISTERS", "address": 40100, "quantity": 2,
           "request_values": [1200, 1300], "matched": True, "exception_code": None}
    path = tmp_path / "modbus_detailed.json"
    path.write_text(json.dumps(rec) + "\n" + json.dumps(dict(rec, func="READ_COILS", request_values=None)) + "\n")
    events, dead, _ = parse(path)
    assert not dead
    a, b = events.to_pylist()
    assert a["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, 500000, tzinfo=UTC)
    assert (a["action"], a["target"], a["value_new"], a["result"]) == (
        "modbus.write_multiple_registers", "unit=1;addr=40100", "1200,1300", "ok")
    assert attrs(a) == {"uid": "Cm1", "unit": "1", "tid": "7", "quantity": "2", "matched": "T",
                        "op": "Cm1/write_multiple_registers#1"}
    assert (b["action"], b["value_new"]) == ("modbus.read_coils", None)
