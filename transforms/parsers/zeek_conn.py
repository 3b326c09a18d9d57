"""Zeek ``conn.log`` (TSV with ``#`` header, or JSON lines) → ``flow`` events.

This is the bulk path (most of a port's events), so a block is read by Arrow and every
field is converted as a column; per-row Python runs only for rows that fail a check.
See docs/formats/zeek-conn.md.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from transforms.parsers import _common as c
from transforms.parsers._buffers import take_rows
from transforms.parsers._zeek import ZeekBatch, ZeekLogParser
from transforms.parsers.base import ParseContext
from transforms.read import Block

#: Field list of a headerless TSV (zeek-cut output of a current Zeek conn.log).
DEFAULT_FIELDS = (
    "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service",
    "duration", "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp",
    "missed_bytes", "history", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes",
    "tunnel_parents",
)
_S, _I, _F = pa.string(), pa.int64(), pa.float64()
#: Fields read, with the type a TSV column is first converted as (text if that fails).
WANTED = {
    "ts": _F, "uid": _S, "id.orig_h": _S, "id.orig_p": _I, "id.resp_h": _S, "id.resp_p": _I,
    "proto": _S, "service": _S, "duration": _F, "orig_bytes": _I, "resp_bytes": _I,
    "conn_state": _S, "orig_pkts": _I, "resp_pkts": _I,
}


class ZeekConnParser(ZeekLogParser):
    name = "zeek_conn"
    kind = "flow"
    description = "Zeek conn.log (TSV or JSON lines, also old Bro layout): one flow per connection"
    log_name = "conn"
    default_fields = DEFAULT_FIELDS
    wanted = WANTED

    def _events(self, b: ZeekBatch, block: Block, lines: pa.Array, ctx: ParseContext,
                require_time: bool) -> tuple[pa.Table, list]:
        n = len(b.rows)
        col = b.cols.get
        chk = c.Checks(n)
        text = lambda name: c.to_text(col(name), n, b.empty_field)  # noqa: E731
        columns = {
            **self._common_columns(b, ctx, chk, require_time),
            "proto": text("proto"),
            "service": text("service"),
            "duration": c.to_float(col("duration"), "duration", chk),
            "bytes_out": c.to_int(col("orig_bytes"), "orig_bytes", chk),
            "bytes_in": c.to_int(col("resp_bytes"), "resp_bytes", chk),
            "packets_out": c.to_int(col("orig_pkts"), "orig_pkts", chk),
            "packets_in": c.to_int(col("resp_pkts"), "resp_pkts", chk),
            "conn_state": text("conn_state"),
            "action": c.const("flow", n),
        }
        line_numbers = b.rows + block.first_line
        raw = take_rows(lines, b.rows)
        columns["raw"] = raw
        columns["raw_ref"] = c.raw_refs(block.path, line_numbers)
        columns["attrs"] = c.build_attrs(n, {"uid": col("uid")})
        return c.finish(columns, chk, lambda i: raw[i].as_py(), ctx.source, block.path,
                        np.asarray(line_numbers))


PARSER = ZeekConnParser()
