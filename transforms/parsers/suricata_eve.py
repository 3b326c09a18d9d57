"""Suricata EVE JSON ``flow``, ``netflow`` and ``alert`` events → ``flow`` events.

Where a port runs Suricata instead of (or beside) Zeek, its EVE log carries the flow
records: ``flow`` events are bidirectional (to-server and to-client counters, like Zeek's
conn.log), ``netflow`` events one direction each. An ``alert`` (an IDS signature match)
becomes an ``ids.alert`` event (signature as target, id/severity/category in attrs) that
the ``ids_alert`` detection turns into a finding. EVE files mix every event type; the other
types (dns, http, stats, ...) are records too and are dead-lettered
``not a flow/netflow/alert EVE event (event_type=stats)`` so the accounting holds. Flow logs are
large, so the block is read with ``pyarrow.json`` and mapped with Arrow compute.
See docs/formats/suricata-eve.md.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.model import DeadLetter, empty_events
from transforms.parsers import _common as c
from transforms.parsers._jsonl import column, read_jsonl_block
from transforms.parsers.base import ParseContext, ParseResult
from transforms.read import Block

_S, _I, _B = pa.string(), pa.int64(), pa.bool_()
SCHEMA = pa.schema([
    ("timestamp", _S), ("flow_id", _I), ("event_type", _S), ("in_iface", _S),
    ("src_ip", _S), ("src_port", _I), ("dest_ip", _S), ("dest_port", _I), ("proto", _S),
    ("app_proto", _S), ("community_id", _S),
    ("flow", pa.struct([("pkts_toserver", _I), ("pkts_toclient", _I), ("bytes_toserver", _I),
                        ("bytes_toclient", _I), ("start", _S), ("end", _S), ("age", _I),
                        ("state", _S), ("reason", _S), ("alerted", _B)])),
    ("netflow", pa.struct([("pkts", _I), ("bytes", _I), ("start", _S), ("end", _S), ("age", _I),
                           ("min_ttl", _I), ("max_ttl", _I)])),
    ("tcp", pa.struct([("tcp_flags", _S), ("state", _S)])),
    ("alert", pa.struct([("action", _S), ("gid", _I), ("signature_id", _I), ("rev", _I), ("signature", _S),
                         ("category", _S), ("severity", _I)])),
])
FLOW_TYPES = ("flow", "netflow", "alert")


class SuricataEveParser:
    name = "suricata_eve"
    kind = "flow"
    description = "Suricata EVE JSON flow, netflow and alert events (other event types are dead-lettered)"

    def new_file_state(self, path: str) -> None:
        return None

    def parse_block(self, block: Block, state: None, ctx: ParseContext) -> ParseResult:
        jb = read_jsonl_block(block, ctx.source, SCHEMA)
        dl = list(jb.dead_letters)
        t = jb.table
        if t.num_rows == 0:
            return ParseResult(empty_events(), dl, jb.records)
        rows, raw_all = jb.rows, jb.raw()
        et = t.column("event_type").combine_chunks()
        is_flow = c._np_mask(pc.is_in(et, value_set=pa.array(FLOW_TYPES)))
        if not is_flow.all():
            for i in np.flatnonzero(~is_flow):
                kind = et[int(i)].as_py()
                dl.append(c.dead(ctx.source, block.path, block.first_line + int(rows[i]),
                                 f"not a flow/netflow/alert EVE event (event_type={kind if kind is not None else 'missing'})",
                                 raw_all[int(i)].as_py()))
            keep = pa.array(is_flow)
            t, rows, raw_all = t.filter(keep), rows[is_flow], raw_all.filter(keep)
        tables = []
        if t.num_rows:
            alert = c._np_mask(pc.equal(t.column("event_type").combine_chunks(), "alert"))
            for mask, fn in ((~alert, self._events), (alert, self._alerts)):
                if mask.any():
                    keep = pa.array(mask)
                    events, more = fn(t.filter(keep), rows[mask], raw_all.filter(keep), block, ctx)
                    tables.append(events)
                    dl += more
        events = pa.concat_tables(tables) if tables else empty_events()
        dl.sort(key=lambda d: int(d.location.rsplit(":", 1)[1]))
        return ParseResult(events, dl, jb.records)

    def _events(self, t: pa.Table, rows: np.ndarray, raw: pa.Array, block: Block, ctx: ParseContext
                ) -> tuple[pa.Table, list[DeadLetter]]:
        n = t.num_rows
        chk = c.Checks(n)
        col = lambda p: column(t, p)  # noqa: E731
        netflow = pc.equal(col("event_type"), "netflow")
        pick = lambda f, nf: pc.if_else(netflow, col(nf), col(f))  # noqa: E731
        start_text = pc.coalesce(pick("flow.start", "netflow.start"), col("timestamp"))
        start = c.to_time_text(start_text, "flow.start", chk, ctx.timezone)
        end = c.to_time_text(pick("flow.end", "netflow.end"), "flow.end", c.Checks(n), ctx.timezone, required=False)
        span = pc.divide(pc.cast(pc.subtract(pc.cast(end, _I), pc.cast(start, _I)), pa.float64()), 1e6)
        age = pc.cast(pick("flow.age", "netflow.age"), pa.float64())
        duration = pc.coalesce(pc.if_else(pc.less(span, 0.0), None, span), age)
        zero = pa.scalar(None, _I)
        bytes_out = pc.if_else(netflow, col("netflow.bytes"), col("flow.bytes_toserver"))
        pkts_out = pc.if_else(netflow, col("netflow.pkts"), col("flow.pkts_toserver"))
        bytes_in = pc.if_else(netflow, zero, col("flow.bytes_toclient"))
        pkts_in = pc.if_else(netflow, zero, col("flow.pkts_toclient"))
        for name, values in (("bytes", bytes_out), ("pkts", pkts_out), ("bytes_toclient", bytes_in),
                             ("pkts_toclient", pkts_in)):
            neg = c._np_mask(pc.less(values, 0))
            chk.add(neg, lambda i, name=name, values=values: f"invalid count {values[i].as_py()!r} in {name}")
        app = col("app_proto")
        line_numbers = np.asarray(rows + block.first_line)
        columns = {
            "time": start,
            "source": c.const(ctx.source, n),
            "format": c.const(self.name, n),
            "kind": c.const(self.kind, n),
            "src_ip": col("src_ip"),
            "src_port": c.to_int(col("src_port"), "src_port", chk, "port", 65535, pa.int32()),
            "dst_ip": col("dest_ip"),
            "dst_port": c.to_int(col("dest_port"), "dest_port", chk, "port", 65535, pa.int32()),
            "proto": pc.utf8_lower(col("proto")),
            "service": pc.if_else(pc.is_in(app, value_set=pa.array(["failed", "unknown"])), None, app),
            "bytes_out": bytes_out, "bytes_in": bytes_in, "packets_out": pkts_out, "packets_in": pkts_in,
            "duration": duration,
            "raw": raw,
            "raw_ref": c.raw_refs(block.path, line_numbers),
            "attrs": c.build_attrs(n, {
                "event_type": col("event_type"), "flow_id": col("flow_id"), "community_id": col("community_id"),
                "in_iface": col("in_iface"), "app_proto": app, "flow_state": col("flow.state"),
                "flow_reason": col("flow.reason"), "alerted": col("flow.alerted"),
                "tcp_flags": col("tcp.tcp_flags"), "tcp_state": col("tcp.state"),
                "min_ttl": col("netflow.min_ttl"), "max_ttl": col("netflow.max_ttl"),
            }),
        }
        return c.finish(columns, chk, lambda i: raw[i].as_py(), ctx.source, block.path, line_numbers)

    def _alerts(self, t: pa.Table, rows: np.ndarray, raw: pa.Array, block: Block, ctx: ParseContext
                ) -> tuple[pa.Table, list[DeadLetter]]:
        """Alert records: an IDS verdict on one packet or flow, at the alert's own time."""
        n = t.num_rows
        chk = c.Checks(n)
        col = lambda p: column(t, p)  # noqa: E731
        line_numbers = np.asarray(rows + block.first_line)
        app = col("app_proto")
        columns = {
            "time": c.to_time_text(col("timestamp"), "timestamp", chk, ctx.timezone),
            "source": c.const(ctx.source, n), "format": c.const(self.name, n), "kind": c.const(self.kind, n),
            "src_ip": col("src_ip"),
            "src_port": c.to_int(col("src_port"), "src_port", chk, "port", 65535, pa.int32()),
            "dst_ip": col("dest_ip"),
            "dst_port": c.to_int(col("dest_port"), "dest_port", chk, "port", 65535, pa.int32()),
            "proto": pc.utf8_lower(col("proto")),
            "service": pc.if_else(pc.is_in(app, value_set=pa.array(["failed", "unknown"])), None, app),
            "action": c.const("ids.alert", n),
            "target": col("alert.signature"),
            "result": col("alert.action"),
            "raw": raw,
            "raw_ref": c.raw_refs(block.path, line_numbers),
            "attrs": c.build_attrs(n, {
                "event_type": col("event_type"), "flow_id": col("flow_id"), "community_id": col("community_id"),
                "signature_id": col("alert.signature_id"), "gid": col("alert.gid"), "rev": col("alert.rev"),
                "severity": col("alert.severity"), "category": col("alert.category"),
            }),
        }
        return c.finish(columns, chk, lambda i: raw[i].as_py(), ctx.source, block.path, line_numbers)


PARSER = SuricataEveParser()
