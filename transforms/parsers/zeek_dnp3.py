"""Zeek DNP3 logs (``dnp3.log`` and ICSNPP-DNP3's ``dnp3_control.log``) → ``ot`` events.

DNP3 (TCP 20000) reaches substation-style outstations and some crane power and drive
controllers. Zeek's ``dnp3.log`` holds one row per request/reply (``fc_request``,
``fc_reply``, ``iin``): the request's function becomes the action (``WRITE`` →
``dnp3.write``, ``COLD_RESTART`` → ``dnp3.cold_restart``; an unsolicited response,
which has no request, ``dnp3.unsolicited_response``). ICSNPP's ``dnp3_control.log``
details each control relay output block of a SELECT/OPERATE/DIRECT_OPERATE (point index,
operation, trip/close code): the same function as action, the point as target.
``dnp3_objects.log`` (object headers of every message) repeats what those two say and is
skipped with one notice per file. Operation ids (``attrs.op``) make one request count once
across the two logs. See docs/formats/zeek-dnp3.md.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.model import DeadLetter, conform
from transforms.parsers import _common as c
from transforms.parsers._buffers import take_rows
from transforms.parsers._zeek import ZeekBatch, ZeekLogParser
from transforms.parsers.base import ParseContext
from transforms.parsers.zeek_modbus import _operations
from transforms.read import Block

_ENDPOINTS = ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p")
DEFAULT_FIELDS = _ENDPOINTS + ("fc_request", "fc_reply", "iin")
CONTROL_FIELDS = _ENDPOINTS + ("block_type", "function_code", "index_number", "trip_control_code",
                               "operation_type", "execute_count", "on_time", "off_time", "status_code")
OBJECTS_FIELDS = _ENDPOINTS + ("function_code", "object_type", "object_count", "range_low", "range_high")
_S, _I = pa.string(), pa.int64()
WANTED = {"ts": pa.float64(), "id.orig_p": _I, "id.resp_p": _I,
          **{f: _S for f in DEFAULT_FIELDS + CONTROL_FIELDS if f not in ("ts", "id.orig_p", "id.resp_p")}}


#: Functions too frequent to number (class polls, confirmations, replies).
_POLLING = {"read", "confirm", "response", "unsolicited_response"}


def _slug(col: pa.Array) -> pa.Array:
    return pc.utf8_trim(pc.replace_substring_regex(pc.utf8_lower(col), r"[^a-z0-9]+", "_"), "_")


class ZeekDnp3Parser(ZeekLogParser):
    name = "zeek_dnp3"
    kind = "ot"
    description = "Zeek DNP3 logs (dnp3.log, ICSNPP dnp3_control.log): one event per request or control block"
    log_name = "DNP3"
    default_fields = DEFAULT_FIELDS
    wanted = WANTED
    layouts = {9: ("dnp3", DEFAULT_FIELDS), 15: ("dnp3_control", CONTROL_FIELDS), 11: ("dnp3_objects", OBJECTS_FIELDS)}
    skip_logs = {"dnp3_objects": "object headers; requests are in dnp3.log, control blocks in dnp3_control.log"}
    skip_fields = {"object_type": "dnp3_objects"}

    def _events(self, b: ZeekBatch, block: Block, lines: pa.Array, ctx: ParseContext,
                require_time: bool) -> tuple[pa.Table, list[DeadLetter]]:
        n = len(b.rows)
        cols = {k: c.to_text(v, n, b.empty_field) for k, v in b.cols.items() if k not in ("ts", "id.orig_p", "id.resp_p")}
        get = cols.get
        line_numbers = np.asarray(b.rows + block.first_line)
        raw = take_rows(lines, b.rows)
        control = "function_code" in b.fields and "index_number" in b.fields
        if not control and "fc_request" not in b.fields:
            what = f"#path {b.log_path}" if b.log_path else "no fc_request field"
            dl = [c.dead(ctx.source, block.path, int(ln), f"not a Zeek DNP3 log ({what})", raw[i].as_py())
                  for i, ln in enumerate(line_numbers)]
            return conform({}, 0), dl
        chk = c.Checks(n)
        if control:
            verb = _slug(get("function_code"))
            target = c.join_text("index=", get("index_number"))
            if get("operation_type") is not None:
                target = pc.coalesce(c.join_text(target, ";op=", get("operation_type")), target)
            status = get("status_code")
            result = c.const("ok", n) if status is None else pc.if_else(
                pc.fill_null(pc.is_in(status, value_set=pa.array(["SUCCESS", "Success", ""])), True),
                "ok", c.join_text("error:", status))
            # One request's blocks share its time: an ordinal per (connection, function, time).
            tid = c.to_text(b.cols.get("ts"), n, None) if b.cols.get("ts") is not None else None
        else:
            verb = _slug(pc.coalesce(get("fc_request"), get("fc_reply")))
            target, result, tid = None, c.const("ok", n), None
        ops = _operations(b.memo.table("ops"), get("uid"), verb, tid, _POLLING)
        columns = {
            **self._common_columns(b, ctx, chk, require_time),
            "proto": c.const("tcp", n), "service": c.const("dnp3", n),
            "action": c.join_text("dnp3.", verb), "target": target, "result": result,
            "raw": raw, "raw_ref": c.raw_refs(block.path, line_numbers),
            "attrs": c.build_attrs(n, {
                "uid": get("uid"), "fc_reply": get("fc_reply"), "iin": get("iin"),
                "block_type": get("block_type"), "trip_control_code": get("trip_control_code"),
                "execute_count": get("execute_count"), "status_code": get("status_code"), "op": ops,
            }),
        }
        return c.finish(columns, chk, lambda i: raw[i].as_py(), ctx.source, block.path, line_numbers)


PARSER = ZeekDnp3Parser()
