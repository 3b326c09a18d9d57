"""A crane OT asset connecting to one external address at regular intervals: a beacon
(stateful: per (asset, destination), the recent connection times; a timer forgets idle
pairs)."""
from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

from detections.api import DetectionContext, KeyState, StatefulDetection, duration_seconds
# The finding's dedup key and entities: the shared outbound shape (see detections/api.py).
from detections.api import outbound_dedup as dedup, outbound_entities as entities  # noqa: F401


class Beaconing(StatefulDetection):
    """State per (source asset, external destination): the last connection times."""

    def key(self, event: dict[str, Any], ctx: DetectionContext) -> str | None:
        if ctx.inventory.is_internal(event.get("dst_ip")):
            return None
        return f"{event.get('src_asset')}|{event.get('dst_ip')}"

    def on_event(self, event: dict[str, Any], state: KeyState, ctx: DetectionContext) -> list[dict[str, Any]]:
        p = ctx.params
        t = event["time"].timestamp()
        times: list[float] = state.data.setdefault("times", [])
        times.append(t)
        del times[: max(0, len(times) - int(p["samples"]))]
        state.set_timer(t + duration_seconds(p["idle"]))
        if len(times) < int(p["min_connections"]):
            return []
        gaps = [b - a for a, b in zip(times, times[1:])]
        mean = statistics.fmean(gaps)
        if mean < duration_seconds(p["min_interval"]):
            return []  # a burst, not a beacon
        return [event] if statistics.pstdev(gaps) / mean <= float(p["max_jitter"]) else []

    def on_timer(self, when: dt.datetime, state: KeyState, ctx: DetectionContext) -> list[dict[str, Any]]:
        state.data.clear()  # idle: a later series starts afresh
        return []


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"{event.get('src_asset')} beacons to {event.get('dst_ip')}:{event.get('dst_port')} at regular intervals"


