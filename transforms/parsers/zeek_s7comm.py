"""Zeek ICSNPP S7comm logs (``s7comm``, ``s7comm_upload_download``, ``s7comm_read_szl``) → ``ot``.

Siemens S7 PLCs (crane drives, spreader and gantry controllers) are programmed and
stopped over S7comm; CISA's ICSNPP-S7comm plugin logs every PDU. One parser reads the three
logs, driven by the columns the header names (like ``zeek_modbus``):

* ``s7comm.log``: ``function_name`` (job functions such as ``Write Variable``, ``PLC Stop``,
  ``Start Upload``; user-data ``Request: CPU Functions`` with a ``subfunction_name`` such as
  ``Read SZL``),
* ``s7comm_upload_download.log``: block uploads/downloads with block type and number,
* ``s7comm_read_szl.log``: system status list reads (``szl_id``).

A section with neither ``function_name`` nor ``szl_id`` (``cotp.log``, ``conn.log``) is not
S7comm: its records are dead-lettered, never dropped. Polling (``Read Variable``) makes
these logs large, so the mapping is vectorized. See docs/formats/zeek-s7comm.md.
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
from transforms.read import Block

#: Headerless TSV (zeek-cut output): ICSNPP's ``s7comm.log`` fields.
DEFAULT_FIELDS = (
    "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "is_orig", "source_h",
    "source_p", "destination_h", "destination_p", "rosctr_code", "rosctr_name", "pdu_reference",
    "function_code", "function_name", "subfunction_code", "subfunction_name", "error_class",
    "error_code",
)
_S, _I = pa.string(), pa.int64()
WANTED = {
    "ts": pa.float64(), "uid": _S, "id.orig_h": _S, "id.orig_p": _I, "id.resp_h": _S,
    "id.resp_p": _I, "is_orig": _S, "rosctr_code": _S, "rosctr_name": _S, "rosctr": _S,
    "pdu_reference": _S, "function_code": _S, "function_name": _S, "subfunction_code": _S,
    "subfunction_name": _S, "error_class": _S, "error_code": _S,
    # s7comm_upload_download
    "function_status": _S, "session_id": _S, "blocklength": _S, "filename": _S,
    "block_type": _S, "block_number": _S, "destination_filesystem": _S,
    # s7comm_read_szl
    "method": _S, "szl_id": _S, "szl_id_name": _S, "szl_index": _S, "return_code": _S,
    "return_code_name": _S,
    # s7comm_plus (S7-1200/1500)
    "version": _S, "opcode": _S, "opcode_name": _S,
    # s7comm_known_devices
    "automation_system_name": _S, "module_name": _S, "plant_name": _S, "module_serial": _S,
}

#: Function (job) or user-data sub-function name → action; any other name becomes
#: ``s7.`` + its lower-case words joined by ``_`` (``Get Block Info`` → ``s7.get_block_info``).
#: Every phase of a transfer maps to one action; the phase is ``attrs.phase``.
ACTIONS = {name.lower(): action for name, action in {
    "Read Variable": "s7.read_var",
    "Write Variable": "s7.write_var",
    "Request Download": "s7.download_block",
    "Download Block": "s7.download_block",
    "Download Ended": "s7.download_block",
    "Start Upload": "s7.upload_block",
    "Upload": "s7.upload_block",
    "End Upload": "s7.upload_block",
    "PLC Stop": "s7.plc_stop",
    "PLC Control": "s7.plc_control",
    "Setup Communication": "s7.setup_communication",
    "Read SZL": "s7.read_szl",
    "PLC Password": "s7.plc_password",
    "Delete Block": "s7.delete_block",
}.items()}
#: Names are matched in any case (the plugin's spelling varies between releases:
#: ``PLC Copy Ram to Rom``, ``Compress PLC memory``).
PHASES = {name.lower(): phase for name, phase in {
    "Request Download": "start", "Download Block": "transfer", "Download Ended": "end",
    "Start Upload": "start", "Upload": "transfer", "End Upload": "end",
}.items()}
#: PLC Control (0x28) PI services (``subfunction_code`` of the request) → action.
PI_SERVICES = {
    "P_PROGRAM": "s7.plc_start",  # "PLC Start / Stop": warm/cold start (stop is 0x29)
    "_MODU": "s7.copy_ram_to_rom",
    "_GARB": "s7.compress_memory",
    "_INSE": "s7.activate_block",
    "_INS2": "s7.activate_block",
    "_DELE": "s7.delete_block",
}
#: Headerless (zeek-cut) S7 logs by field count.
LAYOUTS = {
    20: ("s7comm", DEFAULT_FIELDS),
    21: ("s7comm_upload_download", DEFAULT_FIELDS[:11] + (
        "rosctr", "pdu_reference", "function_name", "function_status", "session_id", "blocklength",
        "filename", "block_type", "block_number", "destination_filesystem")),
    18: ("s7comm_read_szl", DEFAULT_FIELDS[:11] + (
        "pdu_reference", "method", "szl_id", "szl_id_name", "szl_index", "return_code", "return_code_name")),
    16: ("s7comm_plus", DEFAULT_FIELDS[:11] + ("version", "opcode", "opcode_name", "function_code", "function_name")),
    15: ("s7comm_known_devices", DEFAULT_FIELDS[:11] + (
        "automation_system_name", "module_name", "plant_name", "module_serial")),
    13: ("cotp", DEFAULT_FIELDS[:11] + ("pdu_code", "pdu_name")),
}
#: ICSNPP ``block_type`` names → the short names in Siemens tools (target ``OB1``, ``DB100``).
BLOCK_TYPES = {
    "Organization Block": "OB", "Data Block": "DB", "System Data Block": "SDB", "Function": "FC",
    "System Function": "SFC", "Function Block": "FB", "System Function Block": "SFB",
}


def _lookup(col: pa.Array, table: dict[str, str], fold: bool = False) -> pa.Array:
    """``table[value]`` per row, null where the value is not a key (vectorized); ``fold``:
    compare lower-cased (the table's keys are lower case)."""
    keys = pa.array(list(table), _S)
    return pa.array(list(table.values()), _S).take(pc.index_in(pc.utf8_lower(col) if fold else col, value_set=keys))


def _slug(col: pa.Array) -> pa.Array:
    words = pc.replace_substring_regex(pc.utf8_lower(col), r"[^a-z0-9]+", "_")
    return c.join_text("s7.", pc.utf8_trim(words, "_"))


class ZeekS7commParser(ZeekLogParser):
    name = "zeek_s7comm"
    kind = "ot"
    description = ("Zeek ICSNPP S7comm logs (s7comm, s7comm_upload_download, s7comm_read_szl): "
                   "one event per PDU row")
    log_name = "S7comm"
    default_fields = DEFAULT_FIELDS
    wanted = WANTED
    required_field = None  # either function_name or szl_id: checked in _events
    layouts = LAYOUTS
    skip_logs = {"cotp": "COTP transport PDUs; the S7comm logs carry the operations"}

    def _events(self, b: ZeekBatch, block: Block, lines: pa.Array, ctx: ParseContext,
                require_time: bool) -> tuple[pa.Table, list[DeadLetter]]:
        n = len(b.rows)
        line_numbers = np.asarray(b.rows + block.first_line)
        raw = take_rows(lines, b.rows)
        if b.log_path == "s7comm_plus" or "opcode" in b.fields:
            return self._plus(b, block, lines, ctx, require_time, _text(b))
        if b.log_path == "s7comm_known_devices" or "module_serial" in b.fields:
            return self._known(b, block, lines, ctx, require_time, _text(b))
        if "function_name" not in b.fields and "szl_id" not in b.fields:
            what = f"#path {b.log_path}" if b.log_path else "no function_name or szl_id field"
            dl = [c.dead(ctx.source, block.path, int(ln), f"not a Zeek S7comm log ({what})", raw[i].as_py())
                  for i, ln in enumerate(line_numbers)]
            return conform({}, 0), dl
        cols = _text(b)
        get = cols.get
        chk = c.Checks(n)
        fn = get("function_name")
        sub = get("subfunction_name")
        result = c.const("ok", n)
        target = None
        phase = None
        if fn is not None:  # s7comm.log or s7comm_upload_download.log
            userdata = pc.or_(pc.starts_with(fn, "Request: ", ignore_case=True),
                              pc.starts_with(fn, "Response: ", ignore_case=True))
            key = fn if sub is None else pc.if_else(pc.and_(userdata, pc.is_valid(sub)), sub, fn)
            action = pc.coalesce(_lookup(key, ACTIONS, fold=True), _slug(key))
            sub_code = get("subfunction_code")
            if sub_code is not None:  # PLC Control requests name their PI service
                is_control = pc.equal(pc.utf8_lower(fn), "plc control")
                pi = pc.if_else(is_control, _lookup(sub_code, PI_SERVICES), None)
                action = pc.coalesce(pi, action)
                target = pc.if_else(is_control, c.join_text("pi=", sub_code), None)
            phase = _lookup(fn, PHASES, fold=True)
            err = get("error_class")
            if err is not None:
                failed = pc.fill_null(pc.and_(pc.not_equal(err, ""), pc.not_equal(err, "No error")), False)
                result = pc.if_else(failed, c.join_text("error:", err), "ok")
            btype, bnum = get("block_type"), get("block_number")
            if btype is not None and bnum is not None:
                short = pc.coalesce(_lookup(btype, BLOCK_TYPES), btype)
                number = pc.replace_substring_regex(bnum, r"^0+(\d)", r"\1")
                target = c.join_text(short, number)
        else:  # s7comm_read_szl.log
            action = c.const("s7.read_szl", n)
            szl, index = get("szl_id"), get("szl_index")
            target = c.join_text("szl=", szl) if index is None else pc.coalesce(
                c.join_text("szl=", szl, ";index=", index), c.join_text("szl=", szl))
            rc = get("return_code_name")
            if rc is not None:
                failed = pc.fill_null(pc.and_(pc.not_equal(rc, ""), pc.not_equal(rc, "Success")), False)
                result = pc.if_else(failed, c.join_text("error:", rc), "ok")
        columns = {
            **self._common_columns(b, ctx, chk, require_time),
            "proto": c.const("tcp", n),
            "service": c.const("s7comm", n),
            "action": action,
            "target": target,
            "result": result,
            "raw": raw,
            "raw_ref": c.raw_refs(block.path, line_numbers),
            "attrs": c.build_attrs(n, {
                "uid": get("uid"), "is_orig": get("is_orig"),
                "rosctr": pc.coalesce(*[x for x in (get("rosctr_name"), get("rosctr")) if x is not None])
                if get("rosctr_name") is not None or get("rosctr") is not None else None,
                "pdu_reference": get("pdu_reference"), "function_code": get("function_code"),
                "function_name": fn, "subfunction_code": get("subfunction_code"),
                "subfunction_name": sub, "phase": phase, "error_code": get("error_code"),
                "function_status": get("function_status"), "session_id": get("session_id"),
                "blocklength": get("blocklength"), "filename": get("filename"),
                "block_type": get("block_type"), "block_number": get("block_number"),
                "destination_filesystem": get("destination_filesystem"),
                "method": get("method"), "szl_id_name": get("szl_id_name"),
                "return_code": get("return_code"),
            }),
        }
        return c.finish(columns, chk, lambda i: raw[i].as_py(), ctx.source, block.path, line_numbers)

    def _plus(self, b: ZeekBatch, block: Block, lines: pa.Array, ctx: ParseContext, require_time: bool,
              cols: dict[str, pa.Array]) -> tuple[pa.Table, list[DeadLetter]]:
        """``s7comm_plus.log`` (S7-1200/1500, a different protocol on the same port): its
        own actions (``s7plus.set_variable``), never read as classic S7comm functions."""
        n = len(b.rows)
        get = cols.get
        chk = c.Checks(n)
        opname = get("opcode_name") if get("opcode_name") is not None else c.const("unknown", n)
        key = opname if get("function_name") is None else pc.coalesce(get("function_name"), opname)
        words = pc.utf8_trim(pc.replace_substring_regex(pc.utf8_lower(key), r"[^a-z0-9]+", "_"), "_")
        line_numbers = np.asarray(b.rows + block.first_line)
        raw = take_rows(lines, b.rows)
        columns = {
            **self._common_columns(b, ctx, chk, require_time),
            "proto": c.const("tcp", n), "service": c.const("s7comm_plus", n),
            "action": c.join_text("s7plus.", words), "result": c.const("ok", n),
            "raw": raw, "raw_ref": c.raw_refs(block.path, line_numbers),
            "attrs": c.build_attrs(n, {
                "uid": get("uid"), "is_orig": get("is_orig"), "version": get("version"),
                "opcode": get("opcode"), "opcode_name": get("opcode_name"),
                "function_code": get("function_code"), "function_name": get("function_name"),
            }),
        }
        return c.finish(columns, chk, lambda i: raw[i].as_py(), ctx.source, block.path, line_numbers)

    def _known(self, b: ZeekBatch, block: Block, lines: pa.Array, ctx: ParseContext, require_time: bool,
               cols: dict[str, pa.Array]) -> tuple[pa.Table, list[DeadLetter]]:
        """``s7comm_known_devices.log``: what a PLC said it is (system, module, serial), an
        inventory fact (``s7.known_device``, target the module)."""
        n = len(b.rows)
        get = cols.get
        chk = c.Checks(n)
        line_numbers = np.asarray(b.rows + block.first_line)
        raw = take_rows(lines, b.rows)
        columns = {
            **self._common_columns(b, ctx, chk, require_time),
            "proto": c.const("tcp", n), "service": c.const("s7comm", n),
            "action": c.const("s7.known_device", n), "target": get("module_name"), "result": c.const("ok", n),
            "raw": raw, "raw_ref": c.raw_refs(block.path, line_numbers),
            "attrs": c.build_attrs(n, {
                "uid": get("uid"), "automation_system_name": get("automation_system_name"),
                "module_name": get("module_name"), "plant_name": get("plant_name"),
                "module_serial": get("module_serial"),
            }),
        }
        return c.finish(columns, chk, lambda i: raw[i].as_py(), ctx.source, block.path, line_numbers)


def _text(b: ZeekBatch) -> dict[str, pa.Array]:
    return {k: c.to_text(v, len(b.rows), b.empty_field) for k, v in b.cols.items()
            if k not in ("ts", "id.orig_p", "id.resp_p")}


PARSER = ZeekS7commParser()
