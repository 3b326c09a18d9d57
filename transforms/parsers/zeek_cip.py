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

from transforms.model import DeadLetter
from transforms.parsers import _common as c
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
_S, _I = pa.string(), pa.int64()
WANTED = {"ts": pa.float64(), "id.orig_p": _I, "id.resp_p": _I,
          **{f: _S for f in DEFAULT_FIELDS if f not in ("ts", "id.orig_p", "id.resp_p")}}


class ZeekCipParser(ZeekLogParser):
    name = "zeek_cip"
    kind = "ot"
    description = "Zeek ICSNPP EtherNet/IP CIP log (cip.log): one event per CIP request/response"
    log_name = "CIP"
    default_fields = DEFAULT_FIELDS
    wanted = WANTED
    required_field = "cip_service"

    def _events(self, b: ZeekBatch, block: Block, lines: pa.Array, ctx: ParseContext,
                require_time: bool) -> tuple[pa.Table, list[DeadLetter]]:
        n = len(b.rows)
        cols = {k: c.to_text(v, n, b.empty_field) for k, v in b.cols.items() if k not in ("ts", "id.orig_p", "id.resp_p")}
        get = cols.get
        chk = c.Checks(n)
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
        raw = lines.take(pa.array(b.rows))
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


PARSER = ZeekCipParser()
