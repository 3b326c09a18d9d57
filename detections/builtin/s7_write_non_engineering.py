"""S7 variable writes and clock changes on a crane PLC from a host that is not an
engineering workstation (the S7 side of scenario 4; S7comm-Plus writes too)."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext, counts_as_request
from detections.api import protocol_operation as operation  # noqa: F401  (count operations, not rows)
# The finding's dedup key and entities: the shared inbound shape (see detections/api.py).
from detections.api import inbound_dedup as dedup, inbound_entities as entities  # noqa: F401


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    return counts_as_request(event, ctx)


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    what = "clock change" if event.get("action") == "s7.set_clock" else "variable writes"
    return f"S7 {what} on {event.get('dst_asset')} from {event.get('src_ip')}"


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    return {"action": event.get("action"), "target": event.get("target")}
