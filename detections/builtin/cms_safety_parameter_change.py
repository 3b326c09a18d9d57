"""A safety-relevant crane parameter changed outside the engineering envelope: a value
outside its limits, or any change outside maintenance or not from an engineering host."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext
# The finding's dedup key and entities: the shared actor shape (see detections/api.py).
from detections.api import actor_dedup as dedup, actor_entities as entities  # noqa: F401


def _limits(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any] | None:
    return ctx.params["parameters"].get(event.get("target") or "")


def out_of_limits(event: dict[str, Any], ctx: DetectionContext) -> bool:
    lim = _limits(event, ctx) or {}
    new = event.get("value_new")
    if "values" in lim:
        return str(new).strip().lower() not in {str(v).lower() for v in lim["values"]}
    try:
        value = float(str(new))
    except ValueError:
        return True  # a limit parameter set to something that is not a number
    return ("min" in lim and value < float(lim["min"])) or ("max" in lim and value > float(lim["max"]))


def _engineering(event: dict[str, Any], ctx: DetectionContext) -> bool:
    return ctx.inventory.kind_of(event.get("src_asset")) in ctx.params["engineer_kinds"]


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    if _limits(event, ctx) is None:
        return False  # not a watched parameter
    if out_of_limits(event, ctx):
        return True
    return not (_engineering(event, ctx) and ctx.inventory.in_any_maintenance(event.get("asset_id"), event["time"]))


def _why(event: dict[str, Any], ctx: DetectionContext) -> str:
    if out_of_limits(event, ctx):
        return "outside engineering limits"
    if not _engineering(event, ctx):
        return "not from an engineering workstation"
    return "outside maintenance"


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    return (f"{event.get('target')} on {event.get('asset_id')} set {event.get('value_old')} → "
            f"{event.get('value_new')} by {event.get('user')} ({_why(event, ctx)})")


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    lim = _limits(event, ctx) or {}
    return {"parameter": event.get("target"), "limits": lim, "reason": _why(event, ctx),
            "crane": (event.get("attrs") or {}).get("crane_id")}
