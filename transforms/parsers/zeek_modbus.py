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
from transforms.parsers._buffers import take_rows
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


#: Modbus public function codes → the names Zeek writes (lower-cased). Zeek logs a code it
#: cannot name as ``unknown-<N>``, exception replies included: N >= 128 is the exception
#: to function N - 128 (``unknown-171`` answers a device identification request, 43).
FUNCTIONS = {
    1: "read_coils", 2: "read_discrete_inputs", 3: "read_holding_registers",
    4: "read_input_registers", 5: "write_single_coil", 6: "write_single_register",
    7: "read_exception_status", 8: "diagnostics", 11: "get_comm_event_counter",
    12: "get_comm_event_log", 15: "write_multiple_coils", 16: "write_multiple_registers",
    17: "report_slave_id", 20: "read_file_record", 21: "write_file_record",
    22: "mask_write_register", 23: "read_write_multiple_registers", 24: "read_fifo_queue",
    43: "encap_interface_transport",
}
#: Polling functions: far too many rows to number one by one (see ``_operations``).
_POLLING = {"read_coils", "read_discrete_inputs", "read_holding_registers", "read_input_registers"}


def _unknown_codes(verb: pa.Array) -> tuple[pa.Array, pa.Array]:
    """``unknown-<N>`` verbs → the function name, and a mask of the exception replies."""
    unknown = pc.fill_null(pc.match_substring_regex(verb, r"^unknown-\d+$"), False)
    if not pc.any(unknown).as_py():
        return verb, pa.array(np.zeros(len(verb), dtype=bool))
    names = verb.to_pylist()
    exc = np.zeros(len(names), dtype=bool)
    for i in np.flatnonzero(c._np_mask(unknown)):
        code = int(names[i].split("-", 1)[1])
        base = code - 128 if code >= 128 else code
        if base in FUNCTIONS:
            names[i], exc[i] = FUNCTIONS[base], code >= 128
    return pa.array(names, pa.string()), pa.array(exc)


def _operations(memo: tuple[dict, dict], uid: pa.Array | None, verb: pa.Array, tid: pa.Array | None,
                polling: frozenset[str] | set[str] = _POLLING) -> pa.Array:
    """An operation id per row, equal for every row of one Modbus request across the
    sibling logs (modbus.log, modbus_detailed.log, the mask/read-write logs, request and
    response rows): the connection uid, the function and its ordinal in the connection.
    The ordinal counts distinct transaction ids (adjacent rows of one transaction share
    one) where the log has ``tid``, rows where it has not (Zeek's own modbus.log: one row
    per reply), so logs with and without ``tid`` agree; a tid alone repeats (clients
    reuse a constant one). Polling reads are not numbered (null). ``memo`` is the file's
    ``(known, new)`` counts per (uid, function) (``BlockMemo.table``): new ones go to ``new``."""
    n = len(verb)
    if uid is None:
        return pa.nulls(n, pa.string())
    keep = c._np_mask(pc.invert(pc.fill_null(pc.is_in(verb, value_set=pa.array(sorted(polling), pa.string())), False)))
    out: list[str | None] = [None] * n
    idx = np.flatnonzero(keep)
    if not len(idx):
        return pa.nulls(n, pa.string())
    uids = uid.take(pa.array(idx)).to_pylist()
    verbs = verb.take(pa.array(idx)).to_pylist()
    tids = tid.take(pa.array(idx)).to_pylist() if tid is not None else [None] * len(idx)
    known, new = memo
    for j, i in enumerate(idx):
        if uids[j] is None or verbs[j] is None:
            continue
        key = (uids[j], verbs[j])
        count, last = new.get(key) or known.get(key, (0, None))
        if tids[j] is None or tids[j] != last:
            count += 1
        new[key] = (count, tids[j])
        out[i] = f"{uids[j]}/{verbs[j]}#{count}"
    return pa.array(out, pa.string())


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
        verb, unknown_exc = _unknown_codes(verb)
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
        result = pc.if_else(unknown_exc, pc.coalesce(pc.if_else(pc.equal(result, "ok"), None, result),
                                                      pa.scalar("exception")), result)
        ops = _operations(b.memo.table("ops"), cols.get("uid"), verb, cols.get("tid"))
        line_numbers = np.asarray(b.rows + block.first_line)
        raw = take_rows(lines, b.rows)
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
                "op": ops,
            }),
        }
        return c.finish(columns, chk, lambda i: raw[i].as_py(), ctx.source, block.path, line_numbers)


PARSER = ZeekModbusParser()
