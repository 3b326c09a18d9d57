"""NetFlow v5/v9/IPFIX as exported by ``nfdump -o csv`` → ``flow`` events.

Flow collectors (nfcapd fed by routers, firewalls or softflowd) keep NetFlow in binary
files; ``nfdump -r FILE -o csv`` turns them into comma-separated lines. Columns are read
by the names of the header line, so both header vocabularies work: the fixed one of
nfdump 1.6 to 1.7.4 (``ts,te,td,sa,da,sp,dp,pr,flg,...``) and the format-driven one of
1.7.5+ (``firstSeen,lastSeen,duration,srcAddr,...``). The ``Summary`` trailer of nfdump
1.6 is not a record. Flow exports are large, so blocks go through ``pyarrow.csv`` and are
mapped with Arrow compute. See docs/formats/nfdump.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.model import DeadLetter, empty_events
from transforms.parsers import _common as c
from transforms.parsers._buffers import block_text, take_rows
from transforms.parsers.base import ParseContext, ParseResult
from transforms.read import Block

#: The header nfdump 1.6 - 1.7.4 prints for ``-o csv``.
LEGACY_HEADER = tuple(
    "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,smk,dmk,dtos,dir,nh,nhb,"
    "svln,dvln,ismc,odmc,idmc,osmc,mpls1,mpls2,mpls3,mpls4,mpls5,mpls6,mpls7,mpls8,mpls9,mpls10,"
    "cl,sl,al,ra,eng,exid,tr".split(","))
#: Event-side name → the column names of both vocabularies (first present wins).
COLUMNS = {
    "ts": ("ts", "firstSeen"), "te": ("te", "lastSeen"), "td": ("td", "duration"),
    "sa": ("sa", "srcAddr"), "da": ("da", "dstAddr"), "sp": ("sp", "srcPort"), "dp": ("dp", "dstPort"),
    "pr": ("pr", "proto"), "flg": ("flg", "flags"), "ipkt": ("ipkt", "inPackets", "packets"),
    "ibyt": ("ibyt", "inBytes", "bytes"), "opkt": ("opkt", "outPackets"), "obyt": ("obyt", "outBytes"),
    "in": ("in", "input"), "out": ("out", "output"), "dir": ("dir", "direction"), "fwd": ("fwd", "fwdStatus"),
    "ra": ("ra", "routerIP"), "exid": ("exid", "exporterID"), "tr": ("tr", "received"),
    "sas": ("sas", "srcAS"), "das": ("das", "dstAS"), "fl": ("fl", "flows"),
}
_ICMP = r"^\d+\.\d+$"  # nfdump 1.6 prints an ICMP "port" as type.code


@dataclass
class CsvState:
    header: tuple[str, ...] = LEGACY_HEADER
    in_summary: int = 0  # lines of the 1.6 "Summary" trailer still to skip


class NfdumpCsvParser:
    name = "nfdump_csv"
    kind = "flow"
    description = "nfdump -o csv (NetFlow v5/v9/IPFIX, sFlow via nfcapd/sfcapd): one event per flow record"

    def new_file_state(self, path: str) -> CsvState:
        return CsvState()

    def parse_block(self, block: Block, state: CsvState, ctx: ParseContext) -> ParseResult:
        sections = self._sections_fast(block, state)
        if sections is not None:
            dl: list[DeadLetter] = []
            records, structure = sections.pop()
        else:
            dl, sections, records, structure = self._sections(block, state, ctx)
        tables = []
        for header, idx in sections:
            table, more = self._section(block, header, np.array(idx, dtype=np.int64), ctx)
            tables.append(table)
            dl += more
        dl.sort(key=lambda d: int(d.location.rsplit(":", 1)[1]))
        events = pa.concat_tables(tables) if tables else empty_events()
        return ParseResult(events, dl, records, structure)

    def _sections_fast(self, block: Block, state: CsvState) -> list | None:
        """The usual block (valid UTF-8, no summary or "no flows" lines, maybe a header)
        split into sections in Arrow; ``None`` sends any other block through ``_sections``.
        The last item is ``(records, structure)``."""
        lines = block.binary.view(pa.string())
        if state.in_summary or (not block.buffer.isascii() and not _valid_utf8(lines)):
            return None
        skip = c.is_blank(lines) | c._np_mask(pc.starts_with(lines, "###"))
        odd = pc.or_(pc.match_substring(lines, "Summary"),
                     pc.or_(pc.match_substring(lines, "No matching flows"), pc.match_substring(lines, "No flows matched")))
        if (c._np_mask(odd) & ~skip).any():
            return None
        head = c._np_mask(pc.or_(pc.starts_with(lines, "ts,"), pc.or_(pc.starts_with(lines, "firstSeen,"),
                                                                       pc.starts_with(lines, "tfs,"))))
        sections: list = []
        start = 0
        for cut in [int(i) for i in np.flatnonzero(head)] + [block.count]:
            idx = np.arange(start, cut)[~skip[start:cut]]
            if len(idx):
                sections.append((state.header, idx))
            if cut < block.count:
                state.header = tuple(block.line(cut).strip().decode("utf-8").split(","))
            start = cut + 1
        structure = int(head.sum())
        sections.append((int((~skip).sum()) - structure, structure))
        return sections

    def _sections(self, block: Block, state: CsvState, ctx: ParseContext) -> tuple:
        """Line by line: summary trailers, "no flows" notes, headers and bad UTF-8."""
        dl: list[DeadLetter] = []
        sections: list[tuple[tuple[str, ...], list[int]]] = []
        current: list[int] = []
        records = structure = 0
        for i, line in enumerate(block.lines):
            stripped = line.strip()
            if not stripped or line.startswith(b"###"):
                continue
            if state.in_summary:
                state.in_summary -= 1
                structure += 1
                continue
            if stripped in (b"No matching flows", b"No flows matched"):
                structure += 1
                continue
            if stripped == b"Summary":  # nfdump 1.6: "Summary", its header, its values
                state.in_summary = 2
                structure += 1
                continue
            if line.startswith((b"ts,", b"firstSeen,", b"tfs,")):
                structure += 1
                if current:
                    sections.append((state.header, current))
                    current = []
                state.header = tuple(c.decode(stripped).split(","))
                continue
            records += 1
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                dl.append(c.dead(ctx.source, block.path, block.first_line + i, "not valid UTF-8", line))
                continue
            current.append(i)
        if current:
            sections.append((state.header, current))
        return dl, sections, records, structure

    def _section(self, block: Block, header: tuple[str, ...], idx: np.ndarray, ctx: ParseContext
                 ) -> tuple[pa.Table, list[DeadLetter]]:
        import pyarrow.csv as pcsv

        dl: list[DeadLetter] = []
        if b"\r" in block.buffer:
            idx = c.without_cr(block, ctx.source, idx, dl)
        if not len(idx):
            return empty_events(), dl
        text = block.binary.view(pa.string())
        if b"\r" in block.buffer:  # CRs left at line ends go, as Arrow would end a row there
            data = pa.py_buffer(b"\n".join(block.lines[int(i)].rstrip(b"\r") for i in idx))
        else:
            data = block_text(block, text, idx)
        rejected: list[tuple[int, int]] = []

        def handler(row: pcsv.InvalidRow) -> str:
            rejected.append((row.number, row.actual_columns))
            return "skip"

        wanted = {name: next((n for n in names if n in header), None) for name, names in COLUMNS.items()}
        include = sorted({n for n in wanted.values() if n}, key=header.index) or [header[0]]
        try:
            table = pcsv.read_csv(
                pa.BufferReader(data),
                read_options=pcsv.ReadOptions(column_names=list(header), use_threads=False, block_size=data.size + 1),
                parse_options=pcsv.ParseOptions(quote_char=False, escape_char=False, ignore_empty_lines=False,
                                                invalid_row_handler=handler),
                convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in include},
                                                    include_columns=include, strings_can_be_null=False,
                                                    check_utf8=False))
        except (pa.ArrowInvalid, ValueError) as e:
            return empty_events(), dl + [c.dead(ctx.source, block.path, block.first_line + int(i),
                                                f"unreadable nfdump CSV: {e}", block.lines[int(i)]) for i in idx]
        if any(not 0 < number <= len(idx) for number, _ in rejected):  # not expected: stay accounted
            return empty_events(), dl + [c.dead(ctx.source, block.path, block.first_line + int(i),
                                                "unreadable nfdump CSV section", block.lines[int(i)]) for i in idx]
        drop = [number - 1 for number, _ in rejected]
        for number, actual in rejected:
            i = int(idx[number - 1])
            dl.append(c.dead(ctx.source, block.path, block.first_line + i,
                             f"expected {len(header)} comma-separated fields, got {actual}", block.lines[i]))
        rows = np.delete(idx, drop)
        if table.num_rows != len(rows):  # not expected: keep every record accounted for
            return empty_events(), dl + [c.dead(ctx.source, block.path, block.first_line + int(i),
                                                "unreadable nfdump CSV section", block.lines[int(i)]) for i in rows]
        n = len(rows)
        if n == 0:
            return empty_events(), dl
        col = lambda k: table.column(wanted[k]).combine_chunks() if wanted[k] else None  # noqa: E731
        chk = c.Checks(n)
        proto = c.proto_names(col("pr")) if col("pr") is not None else None
        dp = col("dp")
        icmp = None
        if dp is not None:
            is_icmp = pc.fill_null(pc.match_substring_regex(dp, _ICMP), False)
            if c._np_mask(is_icmp).any():
                icmp, dp = pc.if_else(is_icmp, dp, None), pc.if_else(is_icmp, None, dp)
        raw = take_rows(text, rows)
        line_numbers = np.asarray(rows + block.first_line)
        strip = lambda a: None if a is None else pc.utf8_trim_whitespace(a)  # noqa: E731
        dst_port = c.to_int(dp, wanted["dp"] or "dp", chk, "port", 65535, pa.int32())
        if proto is not None:  # ICMP: the "port" is type*256+code (1.7.4 and older)
            is_icmp = pc.fill_null(pc.is_in(proto, value_set=pa.array(["icmp", "icmp6"])), False)
            if c._np_mask(is_icmp).any():
                as_int = pc.cast(dst_port, pa.int64())
                kind = pc.divide(as_int, 256)
                code = pc.subtract(as_int, pc.multiply(kind, 256))
                joined = pc.binary_join_element_wise(pc.cast(kind, pa.string()), pc.cast(code, pa.string()), ".")
                from_port = pc.if_else(is_icmp, joined, None)
                icmp = from_port if icmp is None else pc.coalesce(icmp, from_port)
                dst_port = pc.if_else(is_icmp, None, dst_port)
        columns = {
            "time": c.to_time_text(strip(col("ts")), wanted["ts"] or "ts", chk, ctx.timezone),
            "source": c.const(ctx.source, n),
            "format": c.const(self.name, n),
            "kind": c.const(self.kind, n),
            "src_ip": col("sa"),
            "src_port": c.to_int(col("sp"), wanted["sp"] or "sp", chk, "port", 65535, pa.int32()),
            "dst_ip": col("da"),
            "dst_port": dst_port,
            "proto": proto,
            "bytes_out": c.to_int(col("ibyt"), wanted["ibyt"] or "ibyt", chk),
            "packets_out": c.to_int(col("ipkt"), wanted["ipkt"] or "ipkt", chk),
            "bytes_in": c.to_int(col("obyt"), wanted["obyt"] or "obyt", chk),
            "packets_in": c.to_int(col("opkt"), wanted["opkt"] or "opkt", chk),
            "duration": c.to_float(strip(col("td")), wanted["td"] or "td", chk),
            "raw": raw,
            "raw_ref": c.raw_refs(block.path, line_numbers),
            "attrs": c.build_attrs(n, {
                "tcp_flags": col("flg"), "icmp": icmp, "end": col("te"), "router_ip": col("ra"),
                "exporter_id": col("exid"), "input_if": col("in"), "output_if": col("out"),
                "direction": col("dir"), "fwd_status": col("fwd"), "src_as": col("sas"), "dst_as": col("das"),
                "flows": col("fl"), "received": col("tr"),
            }),
        }
        table, more = c.finish(columns, chk, lambda i: raw[i].as_py(), ctx.source, block.path, line_numbers)
        return table, dl + more


PARSER = NfdumpCsvParser()


def _valid_utf8(lines: pa.Array) -> bool:
    try:
        lines.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True
