"""Large uploads from a crane PLC/CMS/HMI to an external address: theft of operational data."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext
# The finding's dedup key and entities: the shared outbound shape (see detections/api.py).
from detections.api import outbound_dedup as dedup, outbound_entities as entities  # noqa: F401


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    if ctx.inventory.kind_of(event.get("src_asset")) not in ctx.params["asset_kinds"]:
        return False
    return not ctx.inventory.is_internal(event.get("dst_ip"))


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    mb = (event.get("bytes_out") or 0) / 1e6
    return f"{event.get('src_asset')} uploaded {mb:.0f} MB to external {event.get('dst_ip')}:{event.get('dst_port')}"


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    return {"bytes_out": event.get("bytes_out"), "threshold": ctx.params["min_bytes"]}
