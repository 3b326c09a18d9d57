"""Modbus writes to a crane PLC by anything but an engineering workstation."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext, counts_as_request
from detections.api import protocol_operation as operation  # noqa: F401  (count operations, not rows)
# The finding's dedup key and entities: the shared inbound shape (see detections/api.py).
from detections.api import inbound_dedup as dedup, inbound_entities as entities  # noqa: F401


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    if ctx.inventory.kind_of(event.get("dst_asset")) != "crane_plc" or not counts_as_request(event, ctx):
        return False
    return ctx.inventory.kind_of(event.get("src_asset")) not in ctx.params["writer_kinds"]


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"Modbus writes to {event.get('dst_asset')} from {event.get('src_ip')}"


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    return {"action": event.get("action"), "target": event.get("target"), "value": event.get("value_new")}
