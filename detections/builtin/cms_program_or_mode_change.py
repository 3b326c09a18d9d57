"""Program download/upload, firmware update or operating-mode change on a crane controller
outside maintenance, or from a host that is not an engineering workstation."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext, Entities


def _engineering(event: dict[str, Any], ctx: DetectionContext) -> bool:
    return ctx.inventory.kind_of(event.get("src_asset")) in ctx.params["engineer_kinds"]


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    if not _engineering(event, ctx):
        return True
    return not ctx.inventory.in_any_maintenance(event.get("asset_id"), event["time"])


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    what = (event.get("action") or "").removeprefix("cms.").replace("_", " ")
    why = "outside maintenance" if _engineering(event, ctx) else f"from {event.get('src_ip') or 'an unknown host'}"
    return f"{what} on {event.get('asset_id')} by {event.get('user')} {why}"


def dedup(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"{event.get('asset_id')}|{event.get('src_ip')}|{event.get('user')}"


def entities(event: dict[str, Any], ctx: DetectionContext) -> Entities:
    asset, src, user = event.get("asset_id"), event.get("src_ip"), event.get("user")
    keys = [f"asset:{asset}"] + ([f"ip:{src}"] if src else []) + ([f"account:{user}"] if user else [])
    return Entities(asset, (src,) if src else (), (user,) if user else (), tuple(keys))


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    return {"operation": event.get("action"), "crane": (event.get("attrs") or {}).get("crane_id")}
