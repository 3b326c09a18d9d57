"""CIP services that change a crane PLC (attribute writes, tag writes, reset, stop/start,
object create/delete) from a host that is not an engineering workstation, or outside
maintenance: the EtherNet/IP side of scenarios 5 and 6."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext, from_engineering, is_reply
# The finding's dedup key and entities: the shared inbound shape (see detections/api.py).
from detections.api import inbound_dedup as dedup, inbound_entities as entities  # noqa: F401


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    if is_reply(event):  # the PLC's answer repeats the service: count the request
        return False
    if not from_engineering(event, ctx):
        return True
    return not ctx.inventory.in_any_maintenance(event.get("dst_asset"), event["time"])


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    what = (event.get("action") or "").removeprefix("cip.").replace("_", " ")
    why = "outside maintenance" if from_engineering(event, ctx) else f"from {event.get('src_ip')}"
    return f"CIP {what} on {event.get('dst_asset')} {why}"


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    attrs = event.get("attrs") or {}
    return {"operation": event.get("action"), "object": event.get("target"), "status": attrs.get("status_code")}
