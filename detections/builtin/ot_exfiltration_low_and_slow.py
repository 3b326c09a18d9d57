"""Low-and-slow exfiltration: many small uploads from one crane asset to one external
address, adding up over a window. Declarative (a ``threshold`` summing ``bytes_out``);
the rule keeps to crane assets sending outside the port's networks."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext
# The finding's entities: the shared outbound shape (see detections/api.py).
from detections.api import outbound_entities as entities  # noqa: F401


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    return not ctx.inventory.is_internal(event.get("dst_ip"))


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"{event.get('src_asset')} sent many small uploads to external {event.get('dst_ip')}"


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    return {"bytes_out": event.get("bytes_out"), "threshold": ctx.params["min_bytes"], "window": ctx.params["window"]}
