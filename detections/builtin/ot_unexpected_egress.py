"""An OT asset reaching outside its allowed egress: the out-of-band path signal."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext, Entities


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    asset = event.get("src_asset")
    if ctx.inventory.kind_of(asset) not in ctx.params["asset_kinds"]:
        return False
    return not ctx.inventory.egress_allowed(asset, event.get("dst_ip"))


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"{event.get('src_asset')} reached {event.get('dst_ip')}:{event.get('dst_port')} outside its allowed egress"


def dedup(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"{event.get('src_asset')}|{event.get('dst_ip')}"


def entities(event: dict[str, Any], ctx: DetectionContext) -> Entities:
    asset = event.get("src_asset")
    return Entities(
        asset,
        tuple(a for a in (event.get("src_ip"), event.get("dst_ip")) if a),
        (),
        (f"asset:{asset}", f"ip:{event.get('dst_ip')}"),
    )
