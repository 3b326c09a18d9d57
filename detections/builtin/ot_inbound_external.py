"""Connections from external addresses to crane OT service ports: internet scanning or an
exposed controller."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext, Entities


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    return not ctx.inventory.is_internal(event.get("src_ip"))


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"External {event.get('src_ip')} reached OT service port {event.get('dst_port')} on {event.get('dst_asset')}"


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
    return {"conn_state": event.get("conn_state")}
