"""A CMS remote command issued from a host that is not the crane's own HMI."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    return ctx.inventory.kind_of(event.get("src_asset")) not in ctx.params["allowed_kinds"]


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"Remote command on {event.get('asset_id')} from {event.get('src_ip')}"


def dedup(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"{event.get('asset_id')}|{event.get('src_ip')}"
