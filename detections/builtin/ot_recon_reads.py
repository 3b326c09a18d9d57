"""Reconnaissance reads on a crane PLC: device identification and diagnostics from a host
that has no business asking, or any read from outside the port's networks (scenario 8,
after the port scan: the scanner talks the protocol)."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext, counts_as_request
from detections.api import protocol_operation as operation  # noqa: F401  (count operations, not rows)
# The finding's dedup key and entities: the shared inbound shape (see detections/api.py).
from detections.api import inbound_dedup as dedup, inbound_entities as entities  # noqa: F401


def _identifying(event: dict[str, Any], ctx: DetectionContext) -> bool:
    return event.get("action") in ctx.params["identify_actions"]


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    if not counts_as_request(event, ctx) and event.get("action") not in ctx.params["reply_actions"]:
        return False
    src = event.get("src_ip")
    if not ctx.inventory.is_internal(src):
        return True  # nobody outside the port reads a crane PLC
    if not _identifying(event, ctx):
        return False  # a plain register read from inside: new_master's business, not recon
    # A vendor identifying a PLC during its maintenance window is part of the job.
    return not ctx.inventory.expected_tunnel(src, event.get("dst_asset"), event["time"])


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    what = (event.get("action") or "").replace("_", " ")
    where = "external" if not ctx.inventory.is_internal(event.get("src_ip")) else "unexpected"
    return f"Reconnaissance read ({what}) of {event.get('dst_asset')} from {where} host {event.get('src_ip')}"


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    attrs = event.get("attrs") or {}
    return {"action": event.get("action"), "target": event.get("target"),
            "szl": attrs.get("szl_id_name") or attrs.get("szl_id"),
            "external": not ctx.inventory.is_internal(event.get("src_ip"))}
