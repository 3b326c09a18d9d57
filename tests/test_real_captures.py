"""The OT pack on real captures (../shared/fixtures/real-captures: Zeek + ICSNPP logs of
public pcaps, with their times restored): every log a sensor folder's documented globs
sweep in is parsed (or, for a sibling log without detection value, skipped with a notice)
with zero dead letters, and the findings count protocol operations, not log rows.

Each capture's PLC is put in the inventory as a crane PLC; its clients are not
engineering workstations, so what they do is what the pack must see. Expected counts
are read off the logs (cited per case).
"""
from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import pyarrow as pa
import pytest
from parse_helpers import parse_all

from detections.testing import TEST_TERMINAL, terminal_config
from transforms.detect import Detector
from transforms.enrich import Enricher

#: The globs docs/formats and README give for each format.
GLOBS = {"conn*.log*": "zeek_conn", "modbus*.log*": "zeek_modbus", "s7comm*.log*": "zeek_s7comm",
         "cip*.log*": "zeek_cip"}


def _capture(shared_fixtures: Path, name: str, plcs: list[str]) -> tuple[list, dict[str, list]]:
    folder = shared_fixtures / "real-captures" / name
    tables, dead = [], []
    for path in sorted(folder.iterdir()):
        fmt = next((f for g, f in GLOBS.items() if fnmatch(path.name, g)), None)
        if fmt is None:
            continue
        events, dl, _ = parse_all(fmt, fmt, path)
        tables.append(events)
        dead += dl
    assets = [{"id": f"plc-{i}", "kind": "crane_plc", "addresses": [ip], "zone": "crane"} for i, ip in enumerate(plcs)]
    cfg = terminal_config({"inventory": {"assets": TEST_TERMINAL["inventory"]["assets"] + assets,
                                         "internal_networks": ["10.0.0.0/8", "192.168.0.0/16", "127.0.0.0/8",
                                                               "172.16.0.0/12", "134.217.0.0/16"]}})
    detector = Detector(cfg)
    findings, keyed = detector.scan(Enricher(cfg)(pa.concat_tables(tables)))
    out: dict[str, list] = {}
    for f in findings + detector.run_stateful(keyed):
        out.setdefault(f.detection_id, []).append(f)
    return dead, out


def _counts(found: dict[str, list], detection: str) -> dict[str, int]:
    """Operations per source address of one detection's findings."""
    return {next(a for a in f.addresses if f"ip:{a}" in f.link_keys): f.count for f in found.get(detection, [])}


def test_cip_set_attributes_single_from_an_uninventoried_host(shared_fixtures: Path) -> None:
    dead, found = _capture(shared_fixtures, "icsnpp-enip-setattr", ["10.100.40.11"])
    assert dead == []
    (f,) = found["cip_program_or_parameter_change"]
    assert (f.count, f.stage, f.asset_id) == (1, "impact", "plc-0")
    assert f.title == "CIP set attribute single on plc-0 from 10.100.90.51"
    assert f.evidence[0].fields["object"] == "class=0x01(Identity);instance=0x00"


def test_cip_example_attribute_reads_identity_and_a_write(shared_fixtures: Path) -> None:
    # cip.log: 1,075 Get Attribute List rows of which 543 requests, one Set Attribute List
    # request (and its response); cip_identity.log: one List Identity reply; cip_io.log:
    # 398 I/O payload rows, skipped with a notice (no dead letters).
    dead, found = _capture(shared_fixtures, "icsnpp-enip-example", ["192.168.10.120", "10.1.1.164"])
    assert dead == []
    assert _counts(found, "ot_recon_reads") == {"192.168.10.105": 543, "10.1.1.167": 1}
    assert _counts(found, "cip_program_or_parameter_change") == {"192.168.10.105": 1}


def test_cip_multiple_service_packet_counts_each_request(shared_fixtures: Path) -> None:
    dead, found = _capture(shared_fixtures, "icsnpp-enip-msp", ["192.168.10.120"])
    assert dead == []
    assert _counts(found, "ot_recon_reads") == {"192.168.10.105": 11}  # 11 Get Attribute List in one packet


def test_modbus_writes_count_once_across_sibling_logs(shared_fixtures: Path) -> None:
    # Nine write transactions (coil, register, multiple coils/registers, file record, two
    # mask writes, two read/write multiple), each in modbus.log, modbus_detailed.log and,
    # for mask and read/write, twice more in their own log (request and response).
    dead, found = _capture(shared_fixtures, "icsnpp-modbus-example", ["127.0.0.1"])
    assert dead == []
    assert _counts(found, "modbus_write_non_engineering") == {"127.0.0.1": 9}
    # Diagnostics, read exception status, report slave id (request and response rows in
    # modbus_detailed.log share a tid) and read device identification: four operations.
    assert _counts(found, "ot_recon_reads") == {"127.0.0.1": 4}


def test_s7comm_plus_is_its_own_protocol(shared_fixtures: Path) -> None:
    # s7comm.log: 8 Write Variable jobs from .33; s7comm_plus.log: 26 Set Variable and 2 Set
    # Multi Variables requests from .3 (never read as classic S7 functions); cotp.log skipped.
    dead, found = _capture(shared_fixtures, "icsnpp-s7comm-plus", ["192.168.0.1"])
    assert dead == []
    assert _counts(found, "s7_write_non_engineering") == {"192.168.0.33": 8, "192.168.0.3": 28}
    assert "s7_program_or_stop" not in found


def test_s7ident_identification_and_known_device(shared_fixtures: Path) -> None:
    dead, found = _capture(shared_fixtures, "icsnpp-s7comm-s7ident", ["172.17.0.2"])
    assert dead == []
    assert found["ot_recon_reads"][0].count == 5  # five SZL read jobs


def test_snap7_full_function_set(shared_fixtures: Path) -> None:
    # Jobs by PDU reference: 13 upload phases (8-10, 12-21), PLC stop (28), copy RAM to ROM (29),
    # compress memory (30), PLC start (31): 17 program operations; 2 Write Variable and a Set
    # Clock: 3 writes; 6 SZL reads, a block listing and block info: 8 recon jobs.
    dead, found = _capture(shared_fixtures, "icsnpp-s7comm-snap7", ["134.217.61.211"])
    assert dead == []
    assert _counts(found, "s7_program_or_stop") == {"134.217.61.131": 17}
    ops = {e.fields["operation"] for e in found["s7_program_or_stop"][0].evidence}
    assert ops <= {"s7.upload_block", "s7.plc_stop", "s7.copy_ram_to_rom", "s7.compress_memory", "s7.plc_start"}
    assert _counts(found, "s7_write_non_engineering") == {"134.217.61.131": 3}
    assert _counts(found, "ot_recon_reads") == {"134.217.61.131": 8}


@pytest.mark.parametrize("spelling", ["PLC Control", "plc control", "PLC CONTROL"])
def test_s7_function_names_match_in_any_case(shared_fixtures: Path, tmp_path: Path, spelling: str) -> None:
    src = shared_fixtures / "real-captures" / "icsnpp-s7comm-snap7" / "s7comm.log"
    text = src.read_text().replace("\tPLC Control\t_MODU\tPLC Copy Ram to Rom", f"\t{spelling}\t_MODU\tplc copy ram to rom")
    text = text.replace("\tPLC Stop\t", "\tplc stop\t")
    (tmp_path / "s7comm.log").write_text(text)
    events, dead, _ = parse_all("zeek_s7comm", "ot", tmp_path / "s7comm.log")
    assert not dead
    actions = events.column("action").to_pylist()
    assert actions.count("s7.copy_ram_to_rom") == 1 and actions.count("s7.plc_stop") == 2


def test_modbus_unknown_codes_and_exception_replies_map_to_their_function(shared_fixtures: Path,
                                                                          tmp_path: Path) -> None:
    """Zeek writes ``unknown-<N>`` for codes it cannot name; N >= 128 is the exception reply
    to N - 128. A device-identification scan answered by exceptions is still recon."""
    src = shared_fixtures / "real-captures" / "icsnpp-modbus-example" / "modbus.log"
    text = src.read_text().replace("\tENCAP_INTERFACE_TRANSPORT\t-", "\tunknown-171\tILLEGAL_FUNCTION")
    text = text.replace("\tREPORT_SLAVE_ID\t-", "\tunknown-17\t-").replace("\tREAD_FIFO_QUEUE\t-", "\tunknown-90\t-")
    (tmp_path / "modbus.log").write_text(text)
    events, dead, _ = parse_all("zeek_modbus", "ot", tmp_path / "modbus.log")
    assert not dead
    rows = {(r["action"], r["result"]) for r in events.select(["action", "result"]).to_pylist()}
    assert ("modbus.encap_interface_transport", "exception:ILLEGAL_FUNCTION") in rows
    assert ("modbus.report_slave_id", "ok") in rows
    assert ("modbus.unknown-90", "ok") in rows  # a code no table names stays as Zeek wrote it
    cfg = terminal_config({"inventory": {"assets": TEST_TERMINAL["inventory"]["assets"] + [
        {"id": "plc-0", "kind": "crane_plc", "addresses": ["127.0.0.1"], "zone": "crane"}],
        "internal_networks": ["127.0.0.0/8"]}})
    findings, _ = Detector(cfg).scan(Enricher(cfg)(events))
    (recon,) = [f for f in findings if f.detection_id == "ot_recon_reads"]
    assert {e.fields["action"] for e in recon.evidence} >= {"modbus.encap_interface_transport", "modbus.report_slave_id"}
