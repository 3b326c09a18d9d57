"""S7 program transfers and PLC stop/start to a crane PLC outside maintenance, or not from
an engineering workstation (the wire-level side of scenario 5)."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext, counts_as_request, from_engineering
from detections.api import protocol_operation as operation  # noqa: F401  (count operations, not rows)
# The finding's dedup key and entities: the shared inbound shape (see detections/api.py).
from detections.api import inbound_dedup as dedup, inbound_entities as entities  # noqa: F401


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    if ctx.inventory.kind_of(event.get("dst_asset")) != "crane_plc" or not counts_as_request(event, ctx):
        return False
    if not from_engineering(event, ctx):
        return True
    return not ctx.inventory.in_any_maintenance(event.get("dst_asset"), event["time"])


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    what = (event.get("action") or "").removeprefix("s7.").replace("_", " ")
    why = "outside maintenance" if from_engineering(event, ctx) else f"from {event.get('src_ip')}"
    return f"S7 {what} on {event.get('dst_asset')} {why}"


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    return {"operation": event.get("action"), "block": event.get("target")}
