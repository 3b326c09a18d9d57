"""Modbus writes to a crane PLC by anything but an engineering workstation."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext, Entities


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    if ctx.inventory.kind_of(event.get("dst_asset")) != "crane_plc":
        return False
    return ctx.inventory.kind_of(event.get("src_asset")) not in ctx.params["writer_kinds"]


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"Modbus writes to {event.get('dst_asset')} from {event.get('src_ip')}"


def dedup(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"{event.get('src_ip')}|{event.get('dst_asset')}"


def entities(event: dict[str, Any], ctx: DetectionContext) -> Entities:
    asset = event.get("dst_asset")
    return Entities(
        asset,
        tuple(a for a in (event.get("src_ip"), event.get("dst_ip")) if a),
        (),
        (f"asset:{asset}", f"ip:{event.get('src_ip')}"),
    )


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    return {"action": event.get("action"), "target": event.get("target"), "value": event.get("value_new")}
