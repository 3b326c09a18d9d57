"""Zeek ICSNPP EtherNet/IP-CIP ``cip.log`` → ``ot`` events.

Rockwell/Allen-Bradley PLCs and drives speak CIP over EtherNet/IP (TCP/UDP 44818); CISA's
ICSNPP-ENIP plugin logs one row per CIP request and response. The service name becomes the
action (``Set Attributes Single`` → ``cip.set_attribute_single``, ``Stop`` → ``cip.stop``),
class / instance / attribute the target. A log without a ``cip_service`` field (``enip.log``,
``conn.log``) is not CIP: its records are dead-lettered. See docs/formats/zeek-cip.md.
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

#: Headerless TSV (zeek-cut output): ICSNPP-ENIP's ``cip.log`` with the source/destination
#: columns of 2024+ releases (23 fields).
DEFAULT_FIELDS = (
    "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "is_orig", "source_h", "source_p",
    "destination_h", "destination_p", "cip_sequence_count", "direction", "cip_service_code", "cip_service",
    "cip_status_code", "cip_status", "cip_extended_status_code", "cip_extended_status", "class_id",
    "class_name", "instance_id", "attribute_id",
)
_ENDPOINTS = DEFAULT_FIELDS[:11]
#: ``cip_identity.log``: List Identity replies (who a device says it is).
IDENTITY_FIELDS = _ENDPOINTS + (
    "encapsulation_version", "socket_address", "socket_port", "vendor_id", "vendor_name", "device_type_id",
    "device_type_name", "product_code", "revision", "device_status", "serial_number", "product_name",
    "device_state",
)
#: ``cip_io.log``: implicit (class 1) I/O payloads; ``enip.log``: the encapsulation layer.
IO_FIELDS = _ENDPOINTS + ("connection_id", "sequence_number", "data_length", "io_data")
ENIP_FIELDS = _ENDPOINTS + ("enip_command_code", "enip_command", "length", "session_handle", "enip_status",
                            "sender_context", "options")
#: Headerless sibling logs by field count (zeek-cut output has no ``#path``).
LAYOUTS = {23: ("cip", DEFAULT_FIELDS), 24: ("cip_identity", IDENTITY_FIELDS), 15: ("cip_io", IO_FIELDS),
           18: ("enip", ENIP_FIELDS)}
_S, _I = pa.string(), pa.int64()
WANTED = {"ts": pa.float64(), "id.orig_p": _I, "id.resp_p": _I,
          **{f: _S for f in DEFAULT_FIELDS + IDENTITY_FIELDS if f not in ("ts", "id.orig_p", "id.resp_p")}}


class ZeekCipParser(ZeekLogParser):
    name = "zeek_cip"
    kind = "ot"
    description = "Zeek ICSNPP EtherNet/IP CIP log (cip.log): one event per CIP request/response"
    log_name = "CIP"
    default_fields = DEFAULT_FIELDS
    wanted = WANTED
    required_field = None  # cip_service, or a recognised sibling: checked in _events
    layouts = LAYOUTS
    skip_logs = {"cip_io": "implicit I/O payloads; requests and identities are in cip.log and cip_identity.log",
                 "enip": "the encapsulation layer; its CIP requests are in cip.log"}
    skip_fields = {"io_data": "cip_io"}

    def _events(self, b: ZeekBatch, block: Block, lines: pa.Array, ctx: ParseContext,
                require_time: bool) -> tuple[pa.Table, list[DeadLetter]]:
        n = len(b.rows)
        cols = {k: c.to_text(v, n, b.empty_field) for k, v in b.cols.items() if k not in ("ts", "id.orig_p", "id.resp_p")}
        get = cols.get
        chk = c.Checks(n)
        if b.log_path == "cip_identity" or "product_name" in b.fields:
            return self._identity(b, block, lines, ctx, require_time, cols)
        if "cip_service" not in b.fields:
            what = f"#path {b.log_path}" if b.log_path else "no cip_service field"
            dl = [c.dead(ctx.source, block.path, block.first_line + int(i), f"not a Zeek CIP log ({what})",
                         lines[int(i)].as_py()) for i in b.rows]
            return conform({}, 0), dl
        words = pc.utf8_trim(pc.replace_substring_regex(pc.utf8_lower(get("cip_service")), r"[^a-z0-9]+", "_"), "_")
        action = c.join_text("cip.", pc.replace_substring(words, "attributes", "attribute"))
        target = None
        if get("class_id") is not None:
            cls = get("class_id")
            if get("class_name") is not None:
                named = pc.and_(pc.is_valid(get("class_name")), pc.not_equal(get("class_name"), "unknown"))
                cls = pc.if_else(pc.fill_null(named, False), c.join_text(cls, "(", get("class_name"), ")"), cls)
            target = c.join_text("class=", cls)
            for key, label in (("instance_id", ";instance="), ("attribute_id", ";attr=")):
                if get(key) is not None:
                    target = pc.coalesce(c.join_text(target, label, get(key)), target)
        status = get("cip_status")
        result = c.const("ok", n)
        if status is not None:
            failed = pc.fill_null(pc.and_(pc.not_equal(status, ""), pc.not_equal(status, "Success")), False)
            result = pc.if_else(failed, c.join_text("error:", status), "ok")
        line_numbers = np.asarray(b.rows + block.first_line)
        raw = take_rows(lines, b.rows)
        columns = {
            **self._common_columns(b, ctx, chk, require_time),
            "service": c.const("cip", n),
            "action": action, "target": target, "result": result,
            "raw": raw, "raw_ref": c.raw_refs(block.path, line_numbers),
            "attrs": c.build_attrs(n, {
                "uid": get("uid"), "is_orig": get("is_orig"), "direction": get("direction"),
                "sequence": get("cip_sequence_count"), "service_code": get("cip_service_code"),
                "service_name": get("cip_service"), "status_code": get("cip_status_code"),
                "extended_status": get("cip_extended_status"), "class_name": get("class_name"),
            }),
        }
        return c.finish(columns, chk, lambda i: raw[i].as_py(), ctx.source, block.path, line_numbers)

    def _identity(self, b: ZeekBatch, block: Block, lines: pa.Array, ctx: ParseContext, require_time: bool,
                  cols: dict[str, pa.Array]) -> tuple[pa.Table, list[DeadLetter]]:
        """``cip_identity.log``: a device's List Identity reply to the connection's originator
        (``cip.list_identity``, target the product): inventory for the analyst, and
        reconnaissance when the originator has no business asking."""
        n = len(b.rows)
        get = cols.get
        chk = c.Checks(n)
        line_numbers = np.asarray(b.rows + block.first_line)
        raw = take_rows(lines, b.rows)
        columns = {
            **self._common_columns(b, ctx, chk, require_time),
            "service": c.const("cip", n), "action": c.const("cip.list_identity", n),
            "target": get("product_name"), "result": c.const("ok", n),
            "raw": raw, "raw_ref": c.raw_refs(block.path, line_numbers),
            "attrs": c.build_attrs(n, {
                "uid": get("uid"), "is_orig": get("is_orig"), "vendor_name": get("vendor_name"),
                "device_type_name": get("device_type_name"), "product_code": get("product_code"),
                "revision": get("revision"), "serial_number": get("serial_number"),
                "product_name": get("product_name"), "device_ip": get("socket_address"),
            }),
        }
        return c.finish(columns, chk, lambda i: raw[i].as_py(), ctx.source, block.path, line_numbers)


PARSER = ZeekCipParser()
