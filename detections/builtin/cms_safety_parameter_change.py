"""A safety-relevant crane parameter changed outside the engineering envelope: a value
outside its limits, or any change outside maintenance or not from an engineering host.

Two views of one change: the crane management system's parameter-change event, and on the
wire a Modbus register write to a register the config maps to the parameter (``registers``:
PLC asset, unit, register address, parameter, scale). Both are judged by the same limits."""
from __future__ import annotations

import re
from typing import Any

from detections.api import DetectionContext, from_engineering
# The finding's dedup key and entities: the shared actor shape (see detections/api.py).
from detections.api import actor_dedup as dedup, actor_entities as entities  # noqa: F401

_TARGET = re.compile(r"^(?:unit=(?P<unit>\d+);)?addr=(?P<addr>\d+)$")


def prepare(ctx: DetectionContext) -> dict[str, Any]:
    """Index the register map: (asset, unit or None, address) → (parameter, scale), and the
    assets it names (the ``where:`` filter's ``$register_assets``)."""
    index: dict[tuple[str, int | None, int], tuple[str, float]] = {}
    key = "detections.cms_safety_parameter_change.params.registers"
    for i, r in enumerate(ctx.params["registers"]):
        if not isinstance(r, dict) or not {"asset", "address", "parameter"} <= set(r) or \
                set(r) - {"asset", "unit", "address", "parameter", "scale"}:
            raise ValueError(f"{key}[{i}]: expected {{asset, address, parameter[, unit, scale]}}, got {r!r}")
        if r["parameter"] not in ctx.params["parameters"]:
            raise ValueError(f"{key}[{i}].parameter: expected one of the watched parameters "
                             f"({', '.join(sorted(ctx.params['parameters']))}), got {r['parameter']!r}")
        if ctx.inventory.asset(r["asset"]) is None:
            raise ValueError(f"{key}[{i}].asset: expected an inventory asset id, got {r['asset']!r}")
        unit = int(r["unit"]) if r.get("unit") is not None else None
        index[(r["asset"], unit, int(r["address"]))] = (r["parameter"], float(r.get("scale", 1)))
    return {"_registers": index, "register_assets": sorted({asset for asset, _, _ in index})}


def changes(event: dict[str, Any], ctx: DetectionContext) -> list[tuple[str, Any, Any]]:
    """The watched parameters this event sets, as (parameter, old value, new value)."""
    if event.get("action") == "cms.parameter_change":
        p = event.get("target") or ""
        return [(p, event.get("value_old"), event.get("value_new"))] if p in ctx.params["parameters"] else []
    index = ctx.params["_registers"]
    m = _TARGET.match(event.get("target") or "")
    if not index or m is None or not event.get("value_new"):
        return []  # no register map, or a Modbus row without address and values
    unit = int(m["unit"]) if m["unit"] else None
    out = []
    for i, raw in enumerate(str(event["value_new"]).split(",")):  # consecutive registers
        hit = index.get((event.get("dst_asset"), unit, int(m["addr"]) + i)) or \
            index.get((event.get("dst_asset"), None, int(m["addr"]) + i))
        if hit is not None:
            try:
                value: Any = f"{float(raw) * hit[1]:g}"
            except ValueError:
                value = raw
            out.append((hit[0], None, value))
    return out


def out_of_limits(parameter: str, new: Any, ctx: DetectionContext) -> bool:
    lim = ctx.params["parameters"][parameter]
    if "values" in lim:
        return str(new).strip().lower() not in {str(v).lower() for v in lim["values"]}
    try:
        value = float(str(new))
    except ValueError:
        return True  # a limit parameter set to something that is not a number
    return ("min" in lim and value < float(lim["min"])) or ("max" in lim and value > float(lim["max"]))


def _why(event: dict[str, Any], ctx: DetectionContext) -> str | None:
    """Why the change is outside the envelope, or None when it is routine."""
    found = changes(event, ctx)
    if not found:
        return None
    if any(out_of_limits(p, new, ctx) for p, _, new in found):
        return "outside engineering limits"
    if not from_engineering(event, ctx):
        return "not from an engineering workstation"
    if not ctx.inventory.in_any_maintenance(event.get("asset_id"), event["time"]):
        return "outside maintenance"
    return None


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    return _why(event, ctx) is not None


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    found = changes(event, ctx)
    if event.get("action") == "cms.parameter_change":
        (p, old, new), = found
        return (f"{p} on {event.get('asset_id')} set {old} → {new} by {event.get('user')} "
                f"({_why(event, ctx)})")
    values = ", ".join(f"{p}={new}" for p, _, new in found)
    return (f"Modbus write sets {values} on {event.get('asset_id')} from {event.get('src_ip')} "
            f"({_why(event, ctx)})")


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    found = changes(event, ctx)
    return {"parameters": {p: new for p, _, new in found},
            "limits": {p: ctx.params["parameters"][p] for p, _, _ in found},
            "reason": _why(event, ctx), "crane": (event.get("attrs") or {}).get("crane_id")}
