"""zeek_s7comm conformance on the ICSNPP-S7comm btest baselines (snap7 trace), field by field."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest
from parse_helpers import parse_all, parse_untimed

from transforms.parsers._common import NO_TIME

UTC = dt.timezone.utc
S7 = "zeek-icsnpp-s7comm"
CLIENT, PLC = "134.217.61.131", "134.217.61.211"


def parse(path: Path | str, block_bytes: int = 1 << 20) -> tuple[pa.Table, list, int]:
    return parse_all("zeek_s7comm", "ot", path, block_bytes)


def untimed(path: Path) -> list[dict]:
    """Fields of a masked baseline, row by row."""
    return parse_untimed("zeek_s7comm", "ot", path).to_pylist()


def attrs(row: dict) -> dict:
    return dict(row["attrs"] or [])


@pytest.mark.parametrize("name,count", [
    ("s7comm.log", 61), ("s7comm_upload_download.log", 25), ("s7comm_read_szl.log", 9)])
def test_masked_baselines_dead_letter_every_record(shared_fixtures: Path, name: str, count: int) -> None:
    path = shared_fixtures / S7 / name
    events, dead, records = parse(path)
    assert (records, events.num_rows, len(dead)) == (count, 0, count)
    lines = path.read_text().splitlines()
    for k, d in enumerate(dead):
        assert d.reason == NO_TIME
        assert d.location == f"{path}:{10 + k}"
        assert d.raw == lines[9 + k]


def test_s7comm_log_actions(shared_fixtures: Path) -> None:
    path = shared_fixtures / S7 / "s7comm.log"
    rows = untimed(path)
    requests = [r["action"] for r in rows if attrs(r)["is_orig"] == "T"]
    assert requests == (
        ["s7.setup_communication"] + ["s7.read_szl"] * 5 + ["s7.list_blocks"]
        + ["s7.upload_block"] * 3 + ["s7.get_block_info"] + ["s7.upload_block"] * 10
        + ["s7.read_clock", "s7.set_clock", "s7.write_var", "s7.read_var", "s7.write_var", "s7.read_var",
           "s7.plc_stop", "s7.copy_ram_to_rom", "s7.compress_memory", "s7.plc_start"])
    first = rows[0]
    assert first["time"] is None
    assert (first["src_ip"], first["src_port"], first["dst_ip"], first["dst_port"]) == (CLIENT, 51212, PLC, 102)
    assert (first["proto"], first["service"], first["kind"], first["format"], first["source"]) == (
        "tcp", "s7comm", "ot", "zeek_s7comm", "ot")
    assert (first["action"], first["target"], first["result"], first["raw_ref"]) == (
        "s7.setup_communication", None, "ok", f"{path}:10")
    assert attrs(first) == {"uid": "CHhAvVGS1DHFjwGM9", "is_orig": "T", "rosctr": "Job-Request",
                            "pdu_reference": "0", "function_code": "0xf0", "function_name": "Setup Communication"}
    # A response keeps the connection's direction (client → PLC); is_orig tells them apart.
    ack = rows[1]
    assert (ack["src_ip"], ack["dst_ip"], ack["result"]) == (CLIENT, PLC, "ok")
    assert attrs(ack)["is_orig"] == "F" and attrs(ack)["error_code"] == "0x00"
    # User-data: the sub-function names the action.
    szl = rows[2]
    assert szl["action"] == "s7.read_szl"
    assert attrs(szl) == {"uid": "CHhAvVGS1DHFjwGM9", "is_orig": "T", "rosctr": "User-Data", "pdu_reference": "1",
                          "function_code": "0x44", "function_name": "Request: CPU Functions",
                          "subfunction_code": "0x01", "subfunction_name": "Read SZL"}
    # Get Block Info refused: the error class is the result.
    info = rows[21]
    assert (info["action"], info["result"], attrs(info)["error_code"]) == (
        "s7.get_block_info", "error:Parameter Error", "0xd209")
    upload = rows[14]
    assert (upload["action"], attrs(upload)["phase"], attrs(upload)["function_name"]) == (
        "s7.upload_block", "start", "Start Upload")
    assert [attrs(r)["phase"] for r in rows[14:20]] == ["start", "start", "transfer", "transfer", "end", "end"]
    by_line = {r["raw_ref"].rsplit(":", 1)[1]: r for r in rows}
    assert (by_line["63"]["action"], by_line["63"]["target"]) == ("s7.plc_stop", None)
    assert (by_line["65"]["action"], by_line["65"]["target"]) == ("s7.copy_ram_to_rom", "pi=_MODU")
    assert attrs(by_line["65"])["subfunction_name"] == "PLC Copy Ram to Rom"
    # The PLC Control response names no PI service.
    assert (by_line["66"]["action"], by_line["66"]["target"]) == ("s7.plc_control", None)
    assert (by_line["69"]["action"], by_line["69"]["target"]) == ("s7.plc_start", "pi=P_PROGRAM")


def test_upload_download_log(shared_fixtures: Path) -> None:
    path = shared_fixtures / S7 / "s7comm_upload_download.log"
    rows = untimed(path)
    assert len(rows) == 25
    assert {r["action"] for r in rows} == {"s7.upload_block"}
    start = rows[0]
    assert (start["src_ip"], start["src_port"], start["dst_ip"], start["dst_port"]) == (CLIENT, 51212, PLC, 102)
    assert (start["target"], start["result"], start["raw_ref"]) == ("SDB0", "ok", f"{path}:10")
    assert attrs(start) == {
        "uid": "CHhAvVGS1DHFjwGM9", "is_orig": "T", "rosctr": "Job-Request", "pdu_reference": "8",
        "function_name": "Start Upload", "phase": "start", "function_status": "0x00", "session_id": "0",
        "filename": "_0B00000A", "block_type": "System Data Block", "block_number": "00000",
        "destination_filesystem": "Active"}
    ack = rows[1]
    assert (ack["target"], attrs(ack)["session_id"], attrs(ack)["blocklength"]) == (None, "7", "216")
    assert [attrs(r)["phase"] for r in rows[:6]] == ["start", "start", "transfer", "transfer", "end", "end"]
    assert "function_status" not in attrs(rows[5])  # End Upload ACK: all unset
    last = rows[-1]
    assert (last["target"], attrs(last)["block_type"], attrs(last)["filename"]) == (
        "OB0", "Organization Block", "_0800000A")


def test_read_szl_log(shared_fixtures: Path) -> None:
    rows = untimed(shared_fixtures / S7 / "s7comm_read_szl.log")
    assert [r["action"] for r in rows] == ["s7.read_szl"] * 9
    assert [r["target"] for r in rows] == [
        "szl=0x0011;index=0x0000", "szl=0x0011;index=0x0000", "szl=0x001c;index=0x0000",
        "szl=0x0131;index=0x0001", "szl=0x0131;index=0x0001", "szl=0x0424;index=0x0000",
        "szl=0x0424;index=0x0000", "szl=0x0011;index=0x0000", "szl=0x0011;index=0x0000"]
    assert {r["result"] for r in rows} == {"ok"}
    assert attrs(rows[5]) == {"uid": "CHhAvVGS1DHFjwGM9", "is_orig": "T", "pdu_reference": "5",
                              "method": "Request", "szl_id_name": "Modes", "return_code": "0xff"}


def test_cotp_log_is_skipped_with_one_notice(shared_fixtures: Path, caplog) -> None:
    """A sensor folder's cotp.log (transport PDUs) is recognised by #path: no S7comm
    records, no dead letter per row, one notice for the file."""
    path = shared_fixtures / S7 / "cotp.log"
    with caplog.at_level("WARNING", logger="cranewatch.parse"):
        events, dead, records = parse(path)
    data_lines = sum(1 for l in path.read_text().splitlines() if l.strip() and not l.startswith("#"))
    # every row read and counted as skipped (parse_helpers checks records == events + dead + skipped)
    assert data_lines > 0 and (records, events.num_rows, len(dead)) == (data_lines, 0, 0)
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: skipping Zeek cotp log records (COTP transport PDUs; the S7comm logs carry the operations)"]


def test_conn_log_is_still_not_s7comm(shared_fixtures: Path) -> None:
    """A log no S7 sibling layout names stays dead-lettered, record by record."""
    path = shared_fixtures / "real-captures" / "icsnpp-s7comm-snap7" / "conn.log"
    events, dead, records = parse(path)
    assert (records, events.num_rows, len(dead)) == (1, 0, 1)
    assert dead[0].reason == "not a Zeek S7comm log (#path conn)"


def test_unmasked_log_with_bad_lines(shared_fixtures: Path, tmp_path: Path) -> None:
    """A real-time copy of the upload/download log with malformed lines and a download mixed in."""
    src = (shared_fixtures / S7 / "s7comm_upload_download.log").read_text().splitlines()
    lines = [l.replace("XXXXXXXXXX.XXXXXX", "1795162502.000100") for l in src]
    base = lines[9].split("\t")  # line 10, Start Upload of SDB 0
    download = base[:12] + ["30", "Request Download", "0x00", "0", "-", "_0A00100P", "Data Block", "00100", "Passive"]
    lines[11:11] = [
        "\t".join(base[:5] + ["x102"] + base[6:]),   # line 12: bad port
        "1795162502.5\tCx\t10.0.0.9",                # line 13: too few fields
        "\t".join(download),                          # line 14: download of DB100
        "\t".join(["-"] + base[1:]),                  # line 15: unset ts
    ]
    path = tmp_path / "s7comm_upload_download.log"
    path.write_bytes(("\n".join(lines) + "\n").encode())
    events, dead, records = parse(path, block_bytes=400)
    assert (records, events.num_rows, len(dead)) == (29, 26, 3)
    assert [(d.location, d.reason) for d in dead] == [
        (f"{path}:12", "invalid port 'x102' in id.resp_p"),
        (f"{path}:13", "expected 21 tab-separated fields, got 3"),
        (f"{path}:15", NO_TIME),
    ]
    first, _, dl = events.slice(0, 3).to_pylist()
    assert first["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, 100, tzinfo=UTC)
    assert (dl["raw_ref"], dl["action"], dl["target"]) == (f"{path}:14", "s7.download_block", "DB100")
    assert (attrs(dl)["phase"], attrs(dl)["destination_filesystem"]) == ("start", "Passive")


def test_json_s7comm(tmp_path: Path) -> None:
    rec = {"ts": 1795162502.5, "uid": "Cs1", "id.orig_h": "10.40.0.20", "id.orig_p": 50100,
           "id.resp_h": "10.30.1.10", "id.resp_p": 102, "is_orig": True, "rosctr_code": 1,
           "rosctr_name": "Job-Request", "pdu_reference": 28, "function_code": "0x29",
           "function_name": "PLC Stop"}
    path = tmp_path / "s7comm.json"
    path.write_text(json.dumps(rec) + "\n" + json.dumps(dict(rec, function_code="0x1b", function_name="Download Block",
                                                             is_orig=False, error_class="Access error")) + "\n")
    events, dead, _ = parse(path)
    assert not dead
    a, b = events.to_pylist()
    assert a["time"] == dt.datetime(2026, 11, 20, 8, 15, 2, 500000, tzinfo=UTC)
    assert (a["action"], a["result"], a["dst_ip"], a["dst_port"]) == ("s7.plc_stop", "ok", "10.30.1.10", 102)
    assert attrs(a) == {"uid": "Cs1", "is_orig": "T", "rosctr": "Job-Request", "pdu_reference": "28",
                        "function_code": "0x29", "function_name": "PLC Stop"}
    assert (b["action"], b["result"], attrs(b)["phase"]) == ("s7.download_block", "error:Access error", "transfer")
