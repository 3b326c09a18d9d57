"""Connections from external addresses to crane OT service ports: internet scanning or an
exposed controller."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext
# The finding's dedup key and entities: the shared inbound shape (see detections/api.py).
from detections.api import inbound_dedup as dedup, inbound_entities as entities  # noqa: F401


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    return not ctx.inventory.is_internal(event.get("src_ip"))


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"External {event.get('src_ip')} reached OT service port {event.get('dst_port')} on {event.get('dst_asset')}"


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    return {"conn_state": event.get("conn_state")}
