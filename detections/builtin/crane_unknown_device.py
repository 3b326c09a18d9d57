"""An address that is not in the inventory, on a crane's own network, talking to that
crane's PLC, CMS or HMI: an unknown device (a modem, a laptop) on the crane network."""
from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from detections.api import DetectionContext
# The finding's dedup key and entities: the shared inbound shape (see detections/api.py).
from detections.api import inbound_dedup as dedup, inbound_entities as entities  # noqa: F401


@lru_cache(maxsize=4096)
def _same_net(a: str, b: str, prefix: int) -> bool:
    try:
        return ipaddress.ip_address(a) in ipaddress.ip_interface(f"{b}/{prefix}").network
    except ValueError:
        return False


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    src, dst = event.get("src_ip"), event.get("dst_ip")
    if not src or not dst:
        return False
    if ctx.inventory.in_networks(src, [ipaddress.ip_network(n) for n in ctx.params["networks"]]):
        return True
    return _same_net(src, dst, int(ctx.params["prefix"]))


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"Unknown device {event.get('src_ip')} on the network of {event.get('dst_asset')}"


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    return {"dst_port": event.get("dst_port"), "service": event.get("service")}
