"""Zeek Modbus logs (``modbus.log`` and the ICSNPP detail logs) → ``ot`` events.

One parser reads every Modbus log Zeek and CISA's ICSNPP plugin write, driven by the
columns the header names rather than by ``#path``: ``modbus.log`` (function and
exception, plus ``tid``/``unit``/``pdu_type`` in newer versions), ``modbus_detailed.log``
(address, quantity, register values), ``modbus_mask_write_register.log`` and
``modbus_read_write_multiple_registers.log``. A log without a ``func`` column is not
Modbus: its records are dead-lettered, never silently dropped. Polling makes these logs
large, so the mapping is vectorized like conn. See docs/formats/zeek-modbus.md.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.model import DeadLetter
from transforms.parsers import _common as c
from transforms.parsers._zeek import ZeekBatch, ZeekLogParser
from transforms.parsers.base import ParseContext
from transforms.read import Block

#: Field list of a headerless TSV: Zeek's base ``modbus.log`` (what ``zeek-cut`` leaves).
DEFAULT_FIELDS = ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "func", "exception")
_S, _I = pa.string(), pa.int64()
WANTED = {
    "ts": pa.float64(), "uid": _S, "id.orig_h": _S, "id.orig_p": _I, "id.resp_h": _S,
    "id.resp_p": _I, "func": _S, "exception": _S, "exception_code": _S, "tid": _S, "unit": _S,
    "pdu_type": _S, "request_response": _S, "address": _S, "write_start_address": _S,
    "quantity": _S, "request_values": _S, "write_registers": _S, "and_mask": _S, "or_mask": _S,
    "matched": _S, "read_start_address": _S, "read_quantity": _S,
}


def _first(cols: dict[str, pa.Array], *names: str) -> pa.Array | None:
    for name in names:
        if name in cols:
            return cols[name]
    return None


class ZeekModbusParser(ZeekLogParser):
    name = "zeek_modbus"
    kind = "ot"
    description = "Zeek and ICSNPP Modbus logs (modbus, modbus_detailed, ...): one event per PDU row"
    log_name = "Modbus"
    default_fields = DEFAULT_FIELDS
    wanted = WANTED
    required_field = "func"

    def _events(self, b: ZeekBatch, block: Block, lines: pa.Array, ctx: ParseContext,
                require_time: bool) -> tuple[pa.Table, list[DeadLetter]]:
        n = len(b.rows)
        cols = {k: c.to_text(v, n, b.empty_field) for k, v in b.cols.items() if k not in
                ("ts", "id.orig_p", "id.resp_p")}
        chk = c.Checks(n)
        func = cols["func"]
        # Zeek names an exception response "<FUNC>_EXCEPTION"; the verb is the function.
        verb = pc.replace_substring_regex(pc.utf8_lower(func), "_exception$", "")
        unit = cols.get("unit")
        address = _first(cols, "address", "write_start_address")
        exception = _first(cols, "exception", "exception_code")
        value_new = _first(cols, "request_values", "write_registers")
        if "and_mask" in cols and "or_mask" in cols:
            value_new = c.join_text("and_mask=", cols["and_mask"], ";or_mask=", cols["or_mask"])
        target = None
        if unit is not None:
            target = c.join_text("unit=", unit)
            if address is not None:
                target = pc.coalesce(c.join_text("unit=", unit, ";addr=", address), target)
        elif address is not None:
            target = c.join_text("addr=", address)
        result = c.const("ok", n)
        if exception is not None:
            has = pc.fill_null(pc.not_equal(exception, ""), False)
            result = pc.if_else(has, c.join_text("exception:", exception), "ok")
        line_numbers = np.asarray(b.rows + block.first_line)
        raw = lines.take(pa.array(b.rows))
        columns = {
            **self._common_columns(b, ctx, chk, require_time),
            "proto": c.const("tcp", n),
            "service": c.const("modbus", n),
            "action": c.join_text("modbus.", verb),
            "target": target,
            "value_new": value_new,
            "result": result,
            "raw": raw,
            "raw_ref": c.raw_refs(block.path, line_numbers),
            "attrs": c.build_attrs(n, {
                "uid": cols.get("uid"), "unit": unit, "tid": cols.get("tid"),
                "quantity": _first(cols, "quantity", "read_quantity"),
                "pdu_type": _first(cols, "pdu_type", "request_response"),
                "matched": cols.get("matched"), "read_start_address": cols.get("read_start_address"),
            }),
        }
        return c.finish(columns, chk, lambda i: raw[i].as_py(), ctx.source, block.path, line_numbers)


PARSER = ZeekModbusParser()
