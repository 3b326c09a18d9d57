"""Crane management system (CMS) event log, JSON lines → ``ot`` events.

The schema is cranewatch's own (docs/formats/cms-events.md); this module implements it
exactly. Lines are decoded one at a time with ``json.loads`` rather than ``pyarrow.json``:
CMS logs are small (operator actions, not traffic), values are kept as the exact text the
CMS wrote (``1.50`` stays ``1.50``, unknown keys keep their JSON), and a block where
``old_value`` is a string on one line and a number on the next is normal here, which
Arrow's typed reader rejects for the whole block.
"""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from transforms.parsers import _common as c
from transforms.parsers._common import Reject
from transforms.parsers.base import ParseContext, ParseResult
from transforms.read import Block

EVENT_TYPES = frozenset({
    "login", "logout", "mode_change", "program_download", "program_upload",
    "firmware_update", "parameter_change", "alarm", "estop", "remote_command",
})
KNOWN_KEYS = frozenset({
    "time", "crane_id", "controller", "event_type", "user", "source_ip", "parameter",
    "old_value", "new_value", "result", "message",
})


def text(value: Any) -> str | None:
    """A JSON value as text: strings as-is, numbers exactly as written, others as JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def parse_time(value: Any) -> int:
    """``time``: RFC 3339 text with an offset, or epoch seconds as a JSON number."""
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        us = c.epoch_to_us(value)
        if us is None:
            raise Reject(f"no usable timestamp: epoch time {value} out of range")
        return us
    if not isinstance(value, str):
        raise Reject(f"no usable timestamp: time must be RFC 3339 text or epoch seconds, got {text(value)}")
    try:
        t = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise Reject(f"no usable timestamp: unparseable time {value!r}") from None
    if t.tzinfo is None:
        raise Reject(f"no usable timestamp: time {value!r} has no UTC offset")
    return c.dt_to_us(t)


def _required(obj: dict, key: str) -> str:
    value = obj.get(key)
    if value is None or value == "":
        raise Reject(f"missing required key '{key}'")
    if not isinstance(value, str):
        raise Reject(f"invalid {key} {text(value)}: expected a string")
    return value


def to_event(obj: Any, source: str, ref: str, raw: str) -> dict:
    """One decoded CMS record → event row (``time`` in µs); raises ``Reject``."""
    if not isinstance(obj, dict):
        raise Reject(f"not a JSON object ({type(obj).__name__})")
    for key in ("time", "crane_id", "event_type"):
        if key not in obj or obj[key] is None:
            raise Reject(f"missing required key '{key}'")
    crane_id = _required(obj, "crane_id")
    event_type = obj["event_type"]
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        raise Reject(f"unknown event_type {text(event_type)!r}")
    time_us = parse_time(obj["time"])
    source_ip = text(obj.get("source_ip"))
    if source_ip is not None and not c.valid_ip(source_ip):
        raise Reject(f"invalid source_ip {source_ip!r}: expected an IP address")
    controller = text(obj.get("controller")) or None
    attrs = {"crane_id": crane_id, "controller": controller, "message": text(obj.get("message"))}
    attrs.update({k: text(v) for k, v in obj.items() if k not in KNOWN_KEYS})
    return {
        "time": time_us,
        "source": source,
        "format": "cms_events",
        "kind": "ot",
        "src_ip": source_ip,
        "asset_id": controller or crane_id,
        "action": f"cms.{event_type}",
        "user": text(obj.get("user")),
        "target": text(obj.get("parameter")) or controller,
        "value_old": text(obj.get("old_value")),
        "value_new": text(obj.get("new_value")),
        "result": text(obj.get("result")) or "success",
        "raw_ref": ref,
        "raw": raw,
        "attrs": {k: v for k, v in attrs.items() if v is not None},
    }


# One decoder for all lines (json.loads with options builds a new one per call); numbers
# stay Decimal so a value is kept as the exact text the CMS wrote.
_DECODER = json.JSONDecoder(parse_float=Decimal)


class CmsEventsParser:
    name = "cms_events"
    kind = "ot"
    description = "Crane management system events, cranewatch JSON-lines schema (docs/formats/cms-events.md)"

    def new_file_state(self, path: str) -> None:
        return None

    def parse_block(self, block: Block, state: None, ctx: ParseContext) -> ParseResult:
        def to_row(line: str, ref: str) -> dict:
            return to_event(c.json_value(line, _DECODER.decode), ctx.source, ref, line)

        return ParseResult(*c.parse_lines(block, ctx.source, to_row))


PARSER = CmsEventsParser()
