"""NetFlow v5/v9/IPFIX as exported by ``nfdump -o json`` (and ``-o json-log``) → ``flow``.

``nfdump -o json`` prints one JSON array with a pretty-printed object per flow, several
lines each; ``-o json-log`` prints one object per line. nfdump writes a comma after every
field, the last one too (``"dst_tos" : 0,\\n}``), which strict JSON parsers refuse, so each
object is collected line by line, the trailing comma dropped, and decoded on its own: a
bad object is one dead letter, the rest still parse. An object may span two blocks; the
file state carries it over, and ``finish_file`` dead-letters one cut off at the end of the
file. Records are objects, cited by their first line. See docs/formats/nfdump.md.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from transforms.model import DeadLetter
from transforms.parsers import _common as c
from transforms.parsers._common import Reject
from transforms.parsers.base import ParseContext, ParseResult
from transforms.read import Block

_TRAILING_COMMA = re.compile(r",\s*}\s*$")
_WS = " \t\n\r\f\v"  # ASCII whitespace, as the read layer judges blank lines
MAX_RECORD_LINES = 1000  # nfdump prints some 40 fields per record: more is not a record
_ATTRS = {  # nfdump JSON key → attrs key
    "type": "type", "tcp_flags": "tcp_flags", "icmp_type": "icmp_type", "icmp_code": "icmp_code",
    "export_sysid": "exporter_id", "ip4_router": "router_ip", "ip6_router": "router_ip",
    "input_snmp": "input_if", "output_snmp": "output_if", "direction": "direction", "fwd_status": "fwd_status",
    "src_as": "src_as", "dst_as": "dst_as", "aggr_flows": "flows", "sampled": "sampled", "last": "end",
    "received": "received",
}


@dataclass
class JsonState:
    path: str
    lines: list[str] = field(default_factory=list)  # the open object's lines
    first_line: int = 0


def _int(obj: dict, key: str, hi: int | None = None) -> int | None:
    v = obj.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > (hi if hi is not None else 2**63 - 1):
        raise Reject(f"invalid {key} {str(v)[:40] if isinstance(v, int) else repr(v)[:80]}")
    return v


def _time(obj: dict, key: str, ctx: ParseContext) -> int:
    v = obj.get(key)
    if not isinstance(v, str):
        raise Reject(f"no usable timestamp: {key} missing" if v is None else f"no usable timestamp: invalid {key} {v!r}")
    try:
        us = c.text_time_to_us(v, c.tzinfo(ctx.timezone))
    except ValueError:
        raise Reject(f"no usable timestamp: unknown time zone {ctx.timezone!r}") from None
    if us is None:
        raise Reject(f"no usable timestamp: invalid {key} {v!r}")
    return us


def _decode(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:  # records span lines: say which
        raise Reject(f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None


def to_event(text: str, ctx: ParseContext, ref: str) -> dict:
    try:
        obj = c.json_value(_TRAILING_COMMA.sub("}", text), _decode)
    except Reject as e:
        raise Reject(f"invalid nfdump JSON record: {str(e).removeprefix('invalid JSON: ')}") from None
    if not isinstance(obj, dict):
        raise Reject("not an nfdump JSON record")
    start = _time(obj, "first", ctx)
    end = _time(obj, "last", ctx) if obj.get("last") is not None else None
    proto = obj.get("proto")
    proto = c.IP_PROTOCOLS.get(str(proto), str(proto)) if proto is not None else None
    src = obj.get("src4_addr") or obj.get("src6_addr")
    dst = obj.get("dst4_addr") or obj.get("dst6_addr")
    for key, value in (("src_addr", src), ("dst_addr", dst)):
        if value is not None and not (isinstance(value, str) and c.valid_ip(value)):
            raise Reject(f"invalid {key} {value!r}")
    icmp = proto in ("icmp", "icmp6")
    return {
        "time": start,
        "source": ctx.source,
        "format": "nfdump_json",
        "kind": "flow",
        "src_ip": src,
        "src_port": None if icmp else _int(obj, "src_port", 65535),
        "dst_ip": dst,
        "dst_port": None if icmp else _int(obj, "dst_port", 65535),
        "proto": proto,
        "bytes_out": _int(obj, "in_bytes"),
        "packets_out": _int(obj, "in_packets"),
        "bytes_in": _int(obj, "out_bytes"),
        "packets_in": _int(obj, "out_packets"),
        "duration": (end - start) / 1e6 if end is not None and end >= start else None,
        "raw_ref": ref,
        "raw": text,
        "attrs": {name: str(obj[key]) for key, name in _ATTRS.items() if obj.get(key) not in (None, "")},
    }


class NfdumpJsonParser:
    name = "nfdump_json"
    kind = "flow"
    description = "nfdump -o json / -o json-log (NetFlow v5/v9/IPFIX): one event per flow record"

    def new_file_state(self, path: str) -> JsonState:
        return JsonState(path)

    def parse_block(self, block: Block, state: JsonState, ctx: ParseContext) -> ParseResult:
        rows: list[dict] = []
        dead: list[DeadLetter] = []
        records = structure = 0

        def close(reason: str | None = None) -> None:
            # A record counts where it ends: its lines were structure until now (so a
            # block may count a record whose lines an earlier block read).
            nonlocal records, structure
            records += 1
            structure -= 1
            text = "\n".join(state.lines)
            ref = f"{block.path}:{state.first_line}"
            try:
                if reason is not None:
                    raise Reject(reason)
                rows.append(to_event(text, ctx, ref))
            except Reject as e:
                dead.append(DeadLetter(ctx.source, ref, str(e), text))
            state.lines = []

        for i, raw in enumerate(block.lines):
            line_no = block.first_line + i
            if not raw or raw.isspace() or raw.startswith(b"###"):
                if state.lines:  # blank or a comment inside an object: kept, not counted
                    state.lines.append(c.decode(raw).rstrip("\r"))
                continue  # not counted by the read layer either
            try:
                line = raw.decode("utf-8").rstrip("\r")
            except UnicodeDecodeError:
                if not state.lines:  # a line of its own; inside an object, the object fails on it
                    records += 1
                    dead.append(c.dead(ctx.source, block.path, line_no, "not valid UTF-8", raw))
                    continue
                line = c.decode(raw)
            s = line.strip(_WS)
            body = s.lstrip("[,").lstrip(_WS)
            if state.lines and body.startswith("{"):  # the open object never closed
                close("nfdump JSON record not closed before the next one")
            if not state.lines:
                if not body or body == "]":
                    structure += 1
                    continue  # the array's brackets and separators
                if not body.startswith("{"):
                    records += 1
                    dead.append(DeadLetter(ctx.source, f"{block.path}:{line_no}", "not part of an nfdump JSON record", line))
                    continue
                if body != "{":  # -o json-log: the whole object on its line, closed or not
                    state.first_line, state.lines = line_no, [body.rstrip("],").rstrip(_WS)]
                    structure += 1
                    close()
                    continue
                state.first_line = line_no
                line = s = body
            structure += 1
            state.lines.append(line)
            if s.rstrip("],").rstrip(_WS).endswith("}"):
                state.lines[-1] = line.rstrip(_WS).rstrip("],").rstrip(_WS)
                close()
            elif len(state.lines) >= MAX_RECORD_LINES:
                close(f"nfdump JSON record longer than {MAX_RECORD_LINES} lines")
        table = c.rows_to_table(rows, dead)
        dead.sort(key=lambda d: int(d.location.rsplit(":", 1)[1]))
        return ParseResult(table, dead, records, structure)

    def finish_file(self, state: JsonState, ctx: ParseContext) -> ParseResult:
        if not state.lines:
            return ParseResult(c.rows_to_table([]), [], 0)
        text = "\n".join(state.lines)
        state.lines = []
        return ParseResult(c.rows_to_table([]), [DeadLetter(
            ctx.source, f"{state.path}:{state.first_line}", "nfdump JSON record cut off at the end of the file", text)])


PARSER = NfdumpJsonParser()
