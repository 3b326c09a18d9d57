"""Program download/upload, firmware update or operating-mode change on a crane controller
outside maintenance, or from a host that is not an engineering workstation."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext, from_engineering
# The finding's dedup key and entities: the shared actor shape (see detections/api.py).
from detections.api import actor_dedup as dedup, actor_entities as entities  # noqa: F401


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    if not from_engineering(event, ctx):
        return True
    return not ctx.inventory.in_any_maintenance(event.get("asset_id"), event["time"])


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    what = (event.get("action") or "").removeprefix("cms.").replace("_", " ")
    why = "outside maintenance" if from_engineering(event, ctx) else f"from {event.get('src_ip') or 'an unknown host'}"
    return f"{what} on {event.get('asset_id')} by {event.get('user')} {why}"


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    return {"operation": event.get("action"), "crane": (event.get("attrs") or {}).get("crane_id")}
