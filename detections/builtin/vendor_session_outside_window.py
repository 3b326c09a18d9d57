"""Vendor VPN login while none of the vendor's maintenance windows is open."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext, Entities


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    vendor = ctx.inventory.vendor_by_account.get(event.get("user") or "")
    if vendor is None:
        return bool(ctx.params["unknown_accounts"]) and bool(event.get("user"))
    return not ctx.inventory.in_maintenance(vendor, None, event["time"])


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    vendor = ctx.inventory.vendor_by_account.get(event.get("user") or "", "unknown vendor")
    return f"{vendor} account {event.get('user')} connected from {event.get('src_ip')} outside maintenance"


def dedup(event: dict[str, Any], ctx: DetectionContext) -> str:
    # One finding per session: the gateway's tunnel id, else the account + tunnel address.
    return event.get("session_id") or f"{event.get('user')}|{_tunnel(event)}"


def entities(event: dict[str, Any], ctx: DetectionContext) -> Entities:
    tunnel = _tunnel(event)
    addresses = tuple(a for a in (event.get("src_ip"), tunnel) if a)
    keys = [f"account:{event.get('user')}"] + ([f"ip:{tunnel}"] if tunnel else [])
    return Entities(None, addresses, (event["user"],) if event.get("user") else (), tuple(keys))


def _tunnel(event: dict[str, Any]) -> str | None:
    return (event.get("attrs") or {}).get("tunnel_ip")
