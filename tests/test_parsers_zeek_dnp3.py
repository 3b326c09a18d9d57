"""Zeek dnp3.log and ICSNPP-DNP3 sibling logs: functions become actions, one request
counts once across the logs, the objects log is skipped with one notice."""
from __future__ import annotations

from pathlib import Path

from parse_helpers import parse_all

from detections.testing import terminal_config
from transforms.detect import Detector
from transforms.enrich import Enricher

HEAD = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t{path}\n#fields\t{fields}\n"
ENDS = "10.30.1.77\t50001\t10.30.1.10\t20000"


def _log(tmp_path: Path, name: str, fields: str, rows: list[str]) -> Path:
    p = tmp_path / f"{name}.log"
    p.write_text(HEAD.format(path=name, fields=fields) + "".join(r + "\n" for r in rows))
    return p


def _files(tmp_path: Path) -> list[Path]:
    e = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p"
    return [
        _log(tmp_path, "dnp3", f"{e}\tfc_request\tfc_reply\tiin", [
            f"1763248800.000000\tCd1\t{ENDS}\tREAD\tRESPONSE\t0",
            f"1763248801.000000\tCd1\t{ENDS}\tDIRECT_OPERATE\tRESPONSE\t0",
            f"1763248802.000000\tCd1\t{ENDS}\tCOLD_RESTART\tRESPONSE\t0",
            f"1763248803.000000\tCd1\t{ENDS}\t-\tUNSOLICITED_RESPONSE\t0",
        ]),
        _log(tmp_path, "dnp3_control", f"{e}\tblock_type\tfunction_code\tindex_number\ttrip_control_code\t"
             "operation_type\texecute_count\ton_time\toff_time\tstatus_code", [
            f"1763248801.000000\tCd1\t{ENDS}\tControl Relay Output Block\tDIRECT_OPERATE\t3\tTRIP\tLATCH_ON\t1\t0\t0\tSUCCESS",
            f"1763248801.000000\tCd1\t{ENDS}\tControl Relay Output Block\tDIRECT_OPERATE\t4\tTRIP\tLATCH_ON\t1\t0\t0\tSUCCESS",
        ]),
        _log(tmp_path, "dnp3_objects", f"{e}\tfunction_code\tobject_type\tobject_count\trange_low\trange_high", [
            f"1763248800.000000\tCd1\t{ENDS}\tREAD\t60:2\t0\t0\t0",
        ]),
    ]


def test_dnp3_logs_parse_and_objects_are_skipped(tmp_path: Path, caplog) -> None:
    dnp3, control, objects = _files(tmp_path)
    events, dead, records = parse_all("zeek_dnp3", "ot", dnp3)
    assert not dead and records == 4
    assert events.column("action").to_pylist() == ["dnp3.read", "dnp3.direct_operate", "dnp3.cold_restart",
                                                  "dnp3.unsolicited_response"]
    events, dead, _ = parse_all("zeek_dnp3", "ot", control)
    assert not dead
    assert events.column("target").to_pylist() == ["index=3;op=LATCH_ON", "index=4;op=LATCH_ON"]
    with caplog.at_level("WARNING", logger="cranewatch.parse"):
        events, dead, records = parse_all("zeek_dnp3", "ot", objects)
    assert (events.num_rows, len(dead), records) == (0, 0, 1)  # read and counted as skipped, not dead-lettered
    assert len(caplog.records) == 1 and "dnp3_objects" in caplog.records[0].getMessage()


def test_dnp3_control_and_restart_from_an_unknown_host_count_operations(tmp_path: Path) -> None:
    import pyarrow as pa

    tables = [parse_all("zeek_dnp3", "ot", p)[0] for p in _files(tmp_path)]
    cfg = terminal_config({})
    detector = Detector(cfg)
    findings, _ = detector.scan(Enricher(cfg)(pa.concat_tables(tables)))
    (f,) = [f for f in findings if f.detection_id == "dnp3_control_non_engineering"]
    # one DIRECT_OPERATE (in dnp3.log and as two control blocks) and one cold restart
    assert f.count == 2 and f.asset_id == "sts01-plc"
    assert {e.fields["action"] for e in f.evidence} == {"dnp3.direct_operate", "dnp3.cold_restart"}
