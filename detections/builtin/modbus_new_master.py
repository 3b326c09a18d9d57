"""A host issuing Modbus requests to a crane PLC for the first time after the learning
period: a new or rogue master (stateful: per PLC, the first-seen time and known masters)."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext, KeyState, StatefulDetection, duration_seconds
# The finding's dedup key and entities: the shared inbound shape (see detections/api.py).
from detections.api import inbound_dedup as dedup, inbound_entities as entities  # noqa: F401


class FirstSeenMaster(StatefulDetection):
    """State per PLC: when it was first seen (learning starts there) and its masters."""

    def key(self, event: dict[str, Any], ctx: DetectionContext) -> str | None:
        plc = event.get("dst_asset")
        return plc if ctx.inventory.kind_of(plc) in ctx.params["plc_kinds"] else None

    def on_event(self, event: dict[str, Any], state: KeyState, ctx: DetectionContext) -> list[dict[str, Any]]:
        t = event["time"].timestamp()
        first = state.data.setdefault("first", t)
        masters: set[str] = state.data.setdefault("masters", set())
        src = event.get("src_ip") or ""
        if src in masters:
            return []
        masters.add(src)
        if t - first < duration_seconds(ctx.params["learning_period"]) or _expected(event, ctx):
            return []
        return [event]


def _expected(event: dict[str, Any], ctx: DetectionContext) -> bool:
    """Engineering workstations may start talking to any PLC; a vendor's tunnel address
    only while that vendor's maintenance window is open."""
    if ctx.inventory.kind_of(event.get("src_asset")) in ctx.params["trusted_kinds"]:
        return True
    return ctx.inventory.expected_tunnel(event.get("src_ip"), event.get("dst_asset"), event["time"])


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"New Modbus master {event.get('src_ip')} → {event.get('dst_asset')} after the learning period"


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    return {"action": event.get("action"), "learning_period": ctx.params["learning_period"]}
