"""Hostile records and files that once failed a run or lost records, each kept as a test.

Every case goes through the pipeline's per-file parse (``transforms.parse.parse_file``, what
the Beam step runs) and is checked the exact way the fuzz suite checks: nothing raises,
``read`` is the records written, every record line is one event or one dead letter. The
last tests run the real batch pipeline over such files, with the config's ``limits:``.
"""
from __future__ import annotations

import bz2
import copy
import gzip
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
import zstandard

from pipelines.config import ConfigError, load_config
from test_fuzz import PARQUET_MAPPING, SAMPLES, Outcome, check_file, check_parquet, run_parse
from transforms.parse import Counts, InputFile, parse_file
from transforms.parsers import checkpoint, parse_block_safely
from transforms.parsers.zeek_modbus import ZeekModbusParser
from transforms.parsers.base import ParseContext, ParseResult
from transforms.read import Block, Limits


def _lines(fmt: str, bad: list[str], good: int = 3) -> bytes:
    """The sample's head, ``good`` valid records, the bad lines, ``good`` more valid records."""
    s = SAMPLES[fmt]
    recs = [s.records[i % len(s.records)] for i in range(good)]
    return "\n".join([*s.head, *recs, *bad, *recs]).encode() + b"\n"


def _check(fmt: str, bad: list[str], tmp_path: Path, good: int = 3) -> Outcome:
    out = check_file(SAMPLES[fmt], _lines(fmt, bad, good), tmp_path / "in.log")
    assert out.counts.parsed == 2 * good, out.reasons
    assert out.counts.dead_lettered == len(bad)
    return out


def _json_with(fmt: str, **changes: object) -> str:
    obj = json.loads(SAMPLES[fmt].records[0])
    obj.update(changes)
    return json.dumps(obj)


def test_cms_event_type_as_a_list(tmp_path: Path) -> None:
    out = _check("cms_events", [_json_with("cms_events", event_type=["login"]),
                                _json_with("cms_events", event_type={"a": 1})], tmp_path)
    assert out.reasons == ["unknown event_type '[\"login\"]'", "unknown event_type '{\"a\":1}'"]


@pytest.mark.parametrize("fmt,line", [
    ("fortigate_vpn", SAMPLES["fortigate_vpn"].records[1].replace("sentbyte=1024", "sentbyte=" + "9" * 30)),
    ("fortigate_vpn", SAMPLES["fortigate_vpn"].records[1].replace("rcvdbyte=2048", "rcvdbyte=" + "9" * 5000)),
    ("openvpn_status", SAMPLES["openvpn_status"].records[0].replace(",1,2,", ",18446744073709551616,2,")),
    ("openvpn_status", SAMPLES["openvpn_status"].records[0].replace(",1,2,", ",1," + "9" * 5000 + ",")),
    ("remote_access_jsonl", _json_with("remote_access_jsonl", bytes_in=2**64)),
    ("remote_access_jsonl", '{"time": 1795167730, "action": "session.end", "bytes_out": ' + "9" * 5000 + "}"),
])
def test_huge_integers(tmp_path: Path, fmt: str, line: str) -> None:
    (reason,) = _check(fmt, [line], tmp_path).reasons
    assert "invalid" in reason


def test_nfdump_csv_wrong_column_count_and_stray_carriage_return(tmp_path: Path) -> None:
    row = SAMPLES["nfdump_csv"].records[0]
    bad = [row + ",extra,columns", ",".join(row.split(",")[:5]), row.replace(",", ",\r", 1), "x"]
    out = _check("nfdump_csv", bad, tmp_path)
    assert out.reasons == ["expected 48 comma-separated fields, got 50", "expected 48 comma-separated fields, got 5",
                           "carriage return inside the record", "expected 48 comma-separated fields, got 1"]


def test_openvpn_log_auth_error_without_text(tmp_path: Path) -> None:
    """``TLS Auth Error:`` with nothing after it made the reason None (TypeError)."""
    line = "2026-11-20 09:15:02 203.0.113.45:51234 TLS Auth Error: "
    path = tmp_path / "openvpn.log"
    path.write_text(line + "\n")
    out = run_parse("openvpn_log", path, None)
    assert out.counts == Counts(1, 1, 0, 1)


@pytest.mark.parametrize("fmt", ["zeek_conn/json", "zeek_modbus/json", "nfdump_json"])
@pytest.mark.parametrize("depth", [150, 1100, 100_000])
def test_deep_nesting(tmp_path: Path, fmt: str, depth: int) -> None:
    deep = "[" * depth + "]" * depth
    line = SAMPLES[fmt].records[0][:-1] + ', "nested": ' + deep + "}"
    (reason,) = _check(fmt, [line, '{"x":' + "[" * depth], tmp_path).reasons[:1]
    assert "nested deeper than 100 levels" in reason or "invalid" in reason


JSON_LINES = ["cms_events", "suricata_eve", "remote_access_jsonl", "windows_security", "jsonl_mapped",
              "nfdump_json", "zeek_conn/json", "zeek_modbus/json"]


@pytest.mark.parametrize("fmt", JSON_LINES)
def test_lone_surrogate_is_one_dead_letter_and_the_file_goes_on(tmp_path: Path, fmt: str) -> None:
    """One ``"\\ud800"`` made every JSON-lines parser give up on its whole file."""
    s = SAMPLES[fmt]
    line = s.records[0].replace('":"', '":"\\ud800', 1)
    assert "\\ud800" in line
    out = _check(fmt, [line, s.records[0].replace('":"', '":"\\udfff x', 1)], tmp_path, good=200)
    assert all("surrogate" in r for r in out.reasons), out.reasons


@pytest.mark.parametrize("fmt", ["cms_events", "zeek_conn", "suricata_eve", "nfdump_csv", "openvpn_log"])
def test_unicode_space_lines_are_records(tmp_path: Path, fmt: str) -> None:
    """Lines of U+00A0 / U+3000 were neither counted nor dead-lettered."""
    out = _check(fmt, ["\u00a0", "\u3000\u3000", " \u00a0\t"], tmp_path)
    assert out.counts.read == 9


# --- files: truncated archives, bombs, long lines, Parquet --------------------------------


COMPRESS = {"gz": gzip.compress, "bz2": lambda d: bz2.compress(d, 1),  # 100 kB bzip2 blocks
            "zst": lambda d: zstandard.ZstdCompressor().compress(d)}


@pytest.mark.parametrize("kind", sorted(COMPRESS))
def test_truncated_archive_keeps_the_records_before_the_cut(tmp_path: Path, kind: str) -> None:
    """A cut archive lost its whole first block (~380 readable records) as one dead letter."""
    s = SAMPLES["zeek_conn"]
    r = random.Random(3)
    records = [s.records[0].replace("\tCx1\t", "\tC%016x\t" % r.getrandbits(64)) for _ in range(4000)]
    data = ("\n".join([*s.head, *records]) + "\n").encode()
    packed = COMPRESS[kind](data)
    path = tmp_path / f"conn.log.{kind}"
    path.write_bytes(packed[: int(len(packed) * 0.8)])
    out = run_parse("zeek_conn", path, None)
    stop = [r for r in out.reasons if "truncated" in r]
    assert len(stop) == 1 and out.counts.dead_lettered == 1
    assert out.counts.parsed > 0.5 * len(records)
    assert out.counts.read == out.counts.parsed + 1
    # every record before the cut is an event, in order; the cut line is the dead letter
    head = len(s.head)
    assert sorted(out.cited) == list(range(head + 1, head + out.counts.read + 1))
    offset = sum(len(x) + 1 for x in [*s.head, *records[: out.counts.parsed]])
    assert f"reading stopped at line {head + out.counts.read}, byte {offset}:" in stop[0]


def _parse_with(path: Path, fmt: str, limits: Limits) -> tuple[Counts, list]:
    out = list(parse_file(InputFile("s", fmt, str(path)), limits))
    dead = [o[1] for o in out if isinstance(o, tuple) and o[0] == "dead"]
    return out[-1][1][1], dead


@pytest.mark.parametrize("kind", ["gz", "zst"])
def test_decompression_bomb_is_one_dead_letter(tmp_path: Path, kind: str) -> None:
    s = SAMPLES["zeek_conn"]
    path = tmp_path / f"bomb.{kind}"
    path.write_bytes(COMPRESS[kind](("\n".join(s.head) + "\n" + (s.records[0] + "\n") * 100_000).encode()))
    counts, dead = _parse_with(path, "zeek_conn", Limits(max_ratio=20))  # 11 MB from ~11 kB (gzip) or less
    assert counts.dead_lettered == 1 and counts.read == counts.parsed + 1
    assert counts.parsed < 100_000 // 5
    assert "expands more than max_ratio (20:1)" in dead[0].reason


def test_size_bound_and_long_line_are_one_dead_letter_each(tmp_path: Path) -> None:
    line = SAMPLES["cms_events"].records[0]
    path = tmp_path / "cms.jsonl"
    path.write_text("\n".join([line] * 1000) + "\n")
    counts, dead = _parse_with(path, "cms_events", Limits(max_decompressed_bytes=10 * (len(line) + 1) + 5))
    assert (counts.read, counts.parsed, counts.dead_lettered) == (11, 10, 1)
    assert "max_decompressed_bytes" in dead[0].reason and dead[0].location == f"{path}:11"
    path.write_text("\n".join([line, line[:-1] + ', "pad": "' + "p" * 50_000 + '"}', line]) + "\n")
    counts, dead = _parse_with(path, "cms_events", Limits(max_line_bytes=10_000))
    assert (counts.read, counts.parsed, counts.dead_lettered) == (2, 1, 1)
    assert "line 2 longer than max_line_bytes (10000 bytes)" in dead[0].reason


def test_parquet_struct_column_is_dead_lettered_by_row(tmp_path: Path) -> None:
    t = pa.table({"start": pa.array([1795162502_000] * 4, pa.timestamp("ms")), "src": ["10.40.0.20"] * 4,
                  "dst": ["10.30.1.10"] * 4, "dport": pa.array([{"a": 1}, None, {"a": 2}, None]),
                  "bytes": pa.array([1, 2, 3, 4], pa.uint64()), "proto": ["tcp"] * 4})
    path = tmp_path / "flows.parquet"
    pq.write_table(t, path, row_group_size=2)
    out = check_parquet(path, 4)
    assert out.counts.parsed == 2
    assert out.reasons == ["unusable dport (struct<a: int64>) for dst_port: ArrowNotImplementedError: "
                           "Unsupported cast from struct<a: int64> to double using function cast_double"] * 2 or \
        all(r.startswith("unusable dport (struct<a: int64>) for dst_port") for r in out.reasons)


def test_corrupt_parquet_row_group_is_dead_lettered_by_row(tmp_path: Path) -> None:
    t = pa.table({"start": pa.array([1795162502_000 + i for i in range(300)], pa.timestamp("ms")),
                  "src": [f"10.40.0.{i % 250}" for i in range(300)], "dst": ["10.30.1.10"] * 300,
                  "dport": pa.array([502] * 300), "bytes": pa.array(range(300)), "proto": ["tcp"] * 300})
    path = tmp_path / "flows.parquet"
    pq.write_table(t, path, row_group_size=100, compression="none")
    meta = pq.ParquetFile(path).metadata
    col = meta.row_group(1).column(1)  # "src" of the second row group
    data = bytearray(path.read_bytes())
    start = col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset
    data[start:start + 16] = b"\xff" * 16  # its first page header
    path.write_bytes(bytes(data))
    out = check_parquet(path, 300)
    assert out.counts.parsed == 200
    assert len(out.reasons) == 100 and all(r.startswith("unreadable row group 1: column src: ") for r in out.reasons)


# --- the read/parse layer's safety net ----------------------------------------------------


class _Fragile:
    """A parser whose block code fails when a block holds ``boom`` (as a bug would), and
    whose per-line code fails only on that line."""

    name, kind, description = "fragile", "ot", "test parser"

    def new_file_state(self, path: str) -> list:
        return []

    def parse_block(self, block: Block, state: list, ctx: ParseContext) -> ParseResult:
        if any(b"boom" in line for line in block.lines):
            raise KeyError("boom")
        state.extend(block.lines)
        return ParseResult(SAMPLE_EVENTS.slice(0, 0), [], len(block.lines))


SAMPLE_EVENTS = pa.Table.from_pylist([], schema=__import__("transforms.model", fromlist=["EVENT_SCHEMA"]).EVENT_SCHEMA)


def test_a_parser_that_raises_costs_only_the_lines_that_raise() -> None:
    block = Block("s", "f.log", 10, [b"a", b"boom", b"", b"b", b"boom boom"])
    state: list = ["before"]
    result, state = parse_block_safely(_Fragile(), block, state, ParseContext("s"))
    assert [(d.location, d.reason, d.raw) for d in result.dead_letters] == [
        ("f.log:11", "parser error: KeyError: 'boom'", "boom"), ("f.log:14", "parser error: KeyError: 'boom'", "boom boom")]
    assert result.records == 4  # the blank line is not a record
    assert state == ["before", b"a", b"", b"b"]  # the lines that parsed, each once


_MODBUS_HEAD = [b"#separator \\x09", b"#path\tmodbus",
                b"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tfunc\texception"]


def _modbus_rows(first: int, count: int) -> list[bytes]:
    """Writes on one connection: each is a numbered operation (``attrs.op``)."""
    return [f"{1700000000 + i}.5\tCop1\t10.0.0.5\t5020{i % 10}\t10.0.1.9\t502\tWRITE_SINGLE_REGISTER\t-".encode()
            for i in range(first, first + count)]


class _FailsAfterCounting(ZeekModbusParser):
    """Zeek Modbus whose block code raises, when ``fail`` is set, after the block's
    operations were counted (a bug late in a block): one-line blocks never raise."""

    fail = False

    def _events(self, b, block, lines, ctx, require_time):  # type: ignore[no-untyped-def]
        out = super()._events(b, block, lines, ctx, require_time)
        if self.fail and block.count > 1:
            raise RuntimeError("late failure")
        return out


def test_a_block_that_raises_part_way_leaves_the_file_state_as_it_was() -> None:
    """The line-by-line retry starts from the state the block found: the operations the
    failed attempt counted are not counted twice, so events and the file's memory equal
    a clean parse of the same lines; the checkpoint does not copy that memory."""
    first = Block("s", "modbus.log", 1, _MODBUS_HEAD + _modbus_rows(0, 3))
    second = Block("s", "modbus.log", 7, _modbus_rows(3, 4))
    ctx = ParseContext("s")
    clean = ZeekModbusParser()
    state = clean.new_file_state("modbus.log")
    parse_block_safely(clean, first, state, ctx, b"#")
    expected, state = parse_block_safely(clean, second, state, ctx, b"#")

    fragile = _FailsAfterCounting()
    fstate = fragile.new_file_state("modbus.log")
    parse_block_safely(fragile, first, fstate, ctx, b"#")
    assert checkpoint(fstate).memo is fstate.memo
    fragile.fail = True
    result, fstate = parse_block_safely(fragile, second, fstate, ctx, b"#")
    assert result.records == 4 and not result.dead_letters
    ops = [dict(a)["op"] for a in result.events.column("attrs").to_pylist()]
    assert ops == [f"Cop1/write_single_register#{n}" for n in range(4, 8)]
    assert result.events.equals(expected.events)
    assert fstate.memo == state.memo and fstate.fields == state.fields


# --- the batch pipeline and the config's limits: block ---------------------------------------


def _config(tmp_path: Path, sources: list[dict], limits: dict | None = None) -> Path:
    from detections.testing import TEST_TERMINAL

    data = copy.deepcopy(TEST_TERMINAL)
    data["sources"] = sources
    if limits is not None:
        data["limits"] = limits
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("limits,error", [
    ({"max_ratio": "high"}, "limits.max_ratio"),
    ({"max_line_bytes": 0}, "limits.max_line_bytes"),
    ({"max_decompressed_bytes": True}, "limits.max_decompressed_bytes"),
    ({"max_lines": 5}, "limits.max_lines"),
])
def test_limits_config_is_strict(tmp_path: Path, limits: dict, error: str) -> None:
    path = _config(tmp_path, [{"name": "cms", "format": "cms_events", "paths": ["x"]}], limits)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert any(str(path) in e and error in e for e in err.value.errors), err.value.errors


@pytest.mark.slow
def test_batch_run_over_hostile_files_accounts_for_every_record(tmp_path: Path) -> None:
    from pipelines.batch import run_batch
    from pipelines.summary import build_summary

    cms = SAMPLES["cms_events"].records[0]
    good = [cms] * 398
    (tmp_path / "cms").mkdir()
    (tmp_path / "cms" / "a.jsonl").write_text("\n".join(good[:100] + [cms.replace('":"', '":"\\ud800', 1),
                                                                     _json_with("cms_events", event_type=["x"]),
                                                                     "\u3000"] + good[100:]) + "\n")
    packed = gzip.compress(("\n".join(good) + "\n").encode())
    (tmp_path / "cms" / "b.jsonl.gz").write_bytes(packed[: len(packed) - 40])
    (tmp_path / "cms" / "c.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(
        (cms + "\n").encode() * 100_000))  # a small bomb under these limits
    path = _config(tmp_path, [{"name": "cms", "format": "cms_events", "paths": ["cms/*"]}],
                   {"max_ratio": 50, "max_line_bytes": 100_000})
    cfg = load_config(path)
    assert cfg.limits.max_ratio == 50
    summary = build_summary(cfg, run_batch(cfg, str(tmp_path / "out")))
    s = summary["sources"]["cms"]
    assert s["read"] == s["parsed"] + s["dead_lettered"]
    dead = [json.loads(x) for x in (tmp_path / "out" / "deadletter" / "deadletter.jsonl").read_text().splitlines()] \
        if (tmp_path / "out" / "deadletter" / "deadletter.jsonl").exists() else []
    by_file = {}
    for d in dead:
        by_file.setdefault(Path(d["location"].rsplit(":", 1)[0]).name, []).append(d["reason"])
    assert len(by_file["a.jsonl"]) == 3
    assert len(by_file["b.jsonl.gz"]) == 1 and "truncated" in by_file["b.jsonl.gz"][0]
    assert len(by_file["c.jsonl.zst"]) == 1 and "max_ratio (50:1)" in by_file["c.jsonl.zst"][0]
    assert s["dead_lettered"] == 5
    assert s["parsed"] >= 398 + 300  # a.jsonl whole, most of b before the cut, c before the bound
