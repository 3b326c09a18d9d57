"""cranewatch's generic remote-access JSON-lines schema → ``remote_access`` events.

PAM vaults, jump-host session brokers and vendor portals each have their own export; a
small script that writes one JSON object per session event in this documented schema
(docs/formats/remote-access-jsonl.md) lets any of them feed correlation. Volumes are small
(sessions, not packets), so this is a per-line parser.
"""
from __future__ import annotations

import json
import re

from transforms.parsers import _common as c
from transforms.parsers._common import Reject
from transforms.parsers.base import ParseContext, ParseResult
from transforms.read import Block

_ACTION = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
TEXT_FIELDS = ("user", "vendor", "session_id", "target", "result", "service", "proto")
INT_FIELDS = {"src_port": 65535, "dst_port": 65535, "bytes_out": None, "bytes_in": None,
              "packets_out": None, "packets_in": None}
IP_FIELDS = ("src_ip", "dst_ip")
KNOWN = {"time", "action", "duration", "attrs", *TEXT_FIELDS, *INT_FIELDS, *IP_FIELDS}


def to_event(line: str, ctx: ParseContext, ref: str) -> dict:
    obj = c.json_object(line)
    t = obj.get("time")
    if t is None or t == "":
        raise Reject("no usable timestamp (no time)")
    if isinstance(t, bool) or not isinstance(t, (str, int, float)):
        raise Reject(f"no usable timestamp: invalid time {t!r}")
    try:
        tz = c.tzinfo(ctx.timezone)
    except ValueError:
        raise Reject(f"no usable timestamp: unknown time zone {ctx.timezone!r}") from None
    us = c.text_time_to_us(str(t), tz)
    if us is None:
        raise Reject(f"no usable timestamp: invalid time {t!r}")
    action = obj.get("action")
    if not isinstance(action, str) or not _ACTION.match(action):
        raise Reject(f"invalid action {action!r}: expected a dotted lower-case verb such as 'vpn.login'")
    row: dict = {"time": us, "source": ctx.source, "format": "remote_access_jsonl", "kind": "remote_access",
                 "action": action, "raw_ref": ref, "raw": line}
    for k in TEXT_FIELDS:
        v = obj.get(k)
        if v is not None and not isinstance(v, str):
            raise Reject(f"invalid {k} {v!r}: expected text")
        row[k] = v or None
    for k in IP_FIELDS:
        v = obj.get(k)
        if v not in (None, ""):
            if not isinstance(v, str) or not c.valid_ip(v):
                raise Reject(f"invalid address {v!r} in {k}")
            row[k] = v
    for k, hi in INT_FIELDS.items():
        v = obj.get(k)
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > (hi or 2**63 - 1):
                raise Reject(f"invalid {'port' if hi else 'count'} {str(v)[:40]} in {k}")
            row[k] = v
    d = obj.get("duration")
    if d is not None:
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0 <= d < 1e12:
            raise Reject(f"invalid number {str(d)[:40]} in duration")
        row["duration"] = float(d)
    attrs = obj.get("attrs") or {}
    if not isinstance(attrs, dict):
        raise Reject("invalid attrs: expected an object")
    extra = {k: v for k, v in obj.items() if k not in KNOWN}  # unknown top-level keys ride along
    merged = {**extra, **attrs}
    row["attrs"] = {k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
                    for k, v in merged.items() if v is not None}
    return row


class RemoteAccessJsonlParser:
    name = "remote_access_jsonl"
    kind = "remote_access"
    description = "Generic remote-access JSON lines (PAM, jump-host and vendor-portal session records)"

    def new_file_state(self, path: str) -> None:
        return None

    def parse_block(self, block: Block, state: None, ctx: ParseContext) -> ParseResult:
        return ParseResult(*c.parse_lines(block, ctx.source, lambda line, ref: to_event(line, ctx, ref)))


PARSER = RemoteAccessJsonlParser()
