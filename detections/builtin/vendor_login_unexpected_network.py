"""Vendor VPN login from an address outside the vendor's configured public networks."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext, Entities


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    vendor = ctx.inventory.vendor_by_account.get(event.get("user") or "")
    networks = ctx.inventory.vendor_networks(vendor)
    if vendor is None or not networks:
        return False  # nothing to compare with: not a vendor, or no allowlist configured
    return not ctx.inventory.in_networks(event.get("src_ip"), networks)


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    vendor = ctx.inventory.vendor_by_account.get(event.get("user") or "")
    return f"{vendor} account {event.get('user')} logged in from {event.get('src_ip')}, outside {vendor}'s networks"


def dedup(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"{event.get('user')}|{event.get('src_ip')}"


def entities(event: dict[str, Any], ctx: DetectionContext) -> Entities:
    tunnel = (event.get("attrs") or {}).get("tunnel_ip")
    addresses = tuple(a for a in (event.get("src_ip"), tunnel) if a)
    keys = [f"account:{event.get('user')}"] + ([f"ip:{tunnel}"] if tunnel else [])
    return Entities(None, addresses, (event["user"],) if event.get("user") else (), tuple(keys))


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    vendor = ctx.inventory.vendor_by_account.get(event.get("user") or "")
    v = ctx.inventory.vendors.get(vendor or "")
    return {"vendor": vendor, "allowed_networks": list(v.allowed_networks) if v else []}
