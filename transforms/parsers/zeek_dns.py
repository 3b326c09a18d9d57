"""Zeek ``dns.log`` (TSV with ``#`` header, or JSON lines) → ``flow`` events that carry the
queried name.

One event per DNS transaction row: ``action`` ``dns.query``, ``service`` ``dns``, ``target``
the query name lower-cased without its trailing dot (so the threat-intel detection can
compare it to domain indicators with one vectorized membership test; resolvers using DNS
0x20 randomize the case on the wire), ``result`` the response code name. DNS is a large
log on a busy network, so the mapping is vectorized like conn. A TSV section whose header
has no ``query`` column, or a JSON section without the fields every dns.log row carries, is
some other log: its records are dead-lettered with the reason, never dropped.
See docs/formats/zeek-dns.md.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.model import DeadLetter, empty_events
from transforms.parsers import _common as c
from transforms.parsers._buffers import take_rows
from transforms.parsers._zeek import ZeekBatch, ZeekLogParser
from transforms.parsers.base import ParseContext
from transforms.read import Block

#: Field list of a headerless TSV (zeek-cut output of a current Zeek dns.log, 24 fields).
DEFAULT_FIELDS = (
    "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "trans_id", "rtt",
    "query", "qclass", "qclass_name", "qtype", "qtype_name", "rcode", "rcode_name", "AA", "TC", "RD",
    "RA", "Z", "answers", "TTLs", "rejected",
)
_S, _I = pa.string(), pa.int64()
#: Fields read, with the type a TSV column is first converted as (text if that fails).
WANTED = {
    "ts": pa.float64(), "uid": _S, "id.orig_h": _S, "id.orig_p": _I, "id.resp_h": _S, "id.resp_p": _I,
    "proto": _S, "trans_id": _S, "query": _S, "qtype_name": _S, "rcode_name": _S, "answers": _S,
    "rejected": _S,
}
#: Zeek's JSON writer leaves unset fields out, so a JSON row without a question has no
#: ``query`` key; these two are written on every dns.log row (``&default=F``) and on no
#: other Zeek log, so a JSON section holding them is DNS even when no row names a query.
_ALWAYS_JSON = ("RD", "rejected")


def query_names(col: pa.Array) -> pa.Array:
    """Query names as the event model keeps them: lower case, trailing dots removed (the
    root ``.`` stays ``.``)."""
    lowered = pc.utf8_lower(col)
    stripped = pc.utf8_rtrim(lowered, characters=".")
    return pc.if_else(pc.equal(stripped, ""), lowered, stripped)


class ZeekDnsParser(ZeekLogParser):
    name = "zeek_dns"
    kind = "flow"
    description = "Zeek dns.log (TSV or JSON lines): one flow event per DNS query, the name in target"
    log_name = "DNS"
    default_fields = DEFAULT_FIELDS
    wanted = WANTED

    def _is_dns(self, b: ZeekBatch) -> bool:
        if "query" in b.fields:
            return True
        # only JSON sections omit unset fields (their batches carry no empty-field marker)
        return b.empty_field is None and all(f in b.fields for f in _ALWAYS_JSON)

    def _events(self, b: ZeekBatch, block: Block, lines: pa.Array, ctx: ParseContext,
                require_time: bool) -> tuple[pa.Table, list[DeadLetter]]:
        if not self._is_dns(b):
            what = f"#path {b.log_path}" if b.log_path else "no query field"
            return empty_events(), [
                c.dead(ctx.source, block.path, block.first_line + int(i), f"not a Zeek DNS log ({what})",
                       lines[int(i)].as_py())
                for i in b.rows
            ]
        n = len(b.rows)
        col = b.cols.get
        chk = c.Checks(n)

        def text(name: str) -> pa.Array:
            return c.to_text(col(name), n, b.empty_field)

        line_numbers = np.asarray(b.rows + block.first_line)
        raw = take_rows(lines, b.rows)
        columns = {
            **self._common_columns(b, ctx, chk, require_time),
            "proto": text("proto"),
            "service": c.const("dns", n),
            "action": c.const("dns.query", n),
            "target": query_names(text("query")),
            "result": text("rcode_name"),
            "raw": raw,
            "raw_ref": c.raw_refs(block.path, line_numbers),
            "attrs": c.build_attrs(n, {
                "uid": text("uid"), "qtype_name": text("qtype_name"), "answers": text("answers"),
                "trans_id": text("trans_id"), "rejected": text("rejected"),
            }),
        }
        return c.finish(columns, chk, lambda i: raw[i].as_py(), ctx.source, block.path, line_numbers)


PARSER = ZeekDnsParser()
