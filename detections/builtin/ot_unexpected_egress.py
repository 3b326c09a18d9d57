"""An OT asset reaching outside its allowed egress: the out-of-band path signal."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext
# The finding's dedup key and entities: the shared outbound shape (see detections/api.py).
from detections.api import outbound_dedup as dedup, outbound_entities as entities  # noqa: F401


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    asset = event.get("src_asset")
    if ctx.inventory.kind_of(asset) not in ctx.params["asset_kinds"]:
        return False
    return not ctx.inventory.egress_allowed(asset, event.get("dst_ip"))


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"{event.get('src_asset')} reached {event.get('dst_ip')}:{event.get('dst_port')} outside its allowed egress"


