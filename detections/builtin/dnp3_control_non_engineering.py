"""DNP3 writes, control operations and restarts sent to a crane controller by a host that
is not an engineering workstation (the DNP3 side of scenarios 4 and 5)."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext
from detections.api import protocol_operation as operation  # noqa: F401  (count operations, not rows)
# The finding's dedup key and entities: the shared inbound shape (see detections/api.py).
from detections.api import inbound_dedup as dedup, inbound_entities as entities  # noqa: F401

_RESTARTS = ("dnp3.cold_restart", "dnp3.warm_restart", "dnp3.stop_appl", "dnp3.start_appl",
             "dnp3.initialize_appl", "dnp3.initialize_data")


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    what = "restart or application control" if event.get("action") in _RESTARTS else "writes and control operations"
    return f"DNP3 {what} on {event.get('dst_asset')} from {event.get('src_ip')}"


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    return {"action": event.get("action"), "point": event.get("target")}
