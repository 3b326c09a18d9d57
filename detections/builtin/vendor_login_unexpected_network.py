"""Vendor VPN login from an address outside the vendor's configured public networks, or
from a country the vendor's engineers do not log in from."""
from __future__ import annotations

import re
from typing import Any

from detections.api import DetectionContext, Entities

_CC = re.compile(r"^[A-Z]{2}$")


def _vendor(event: dict[str, Any], ctx: DetectionContext) -> Any:
    return ctx.inventory.vendors.get(ctx.inventory.vendor_by_account.get(event.get("user") or "", ""))


def country(event: dict[str, Any], ctx: DetectionContext) -> str | None:
    """The log's own country when it carries one (GlobalProtect's source region), else the
    configured geo data's; None when neither knows the address."""
    attrs = event.get("attrs") or {}
    for key in ("country", "region"):
        code = (attrs.get(key) or "").strip().upper()
        if _CC.match(code):
            return code
    return ctx.inventory.country_of(event.get("src_ip"))


def reasons(event: dict[str, Any], ctx: DetectionContext) -> list[str]:
    """What is unexpected about this login: its network, its country, or both. Each
    allowlist the vendor has must hold; an unknown country is only flagged on request."""
    v = _vendor(event, ctx)
    if v is None:
        return []  # not a vendor account
    out = []
    networks = ctx.inventory.vendor_networks(v.name)
    if networks and not ctx.inventory.in_networks(event.get("src_ip"), networks):
        out.append("network")
    if v.allowed_countries:
        cc = country(event, ctx)
        if (cc is None and ctx.params["flag_unknown_country"]) or (cc is not None and cc not in v.allowed_countries):
            out.append("country")
    return out


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    return bool(reasons(event, ctx))


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    v = _vendor(event, ctx)
    why = reasons(event, ctx)
    outside = " and ".join(f"{v.name}'s {'networks' if r == 'network' else 'countries'}" for r in why)
    cc = country(event, ctx)
    return (f"{v.name} account {event.get('user')} logged in from {event.get('src_ip')}"
            f"{f' ({cc})' if cc else ''}, outside {outside}")


def dedup(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"{event.get('user')}|{event.get('src_ip')}"


def entities(event: dict[str, Any], ctx: DetectionContext) -> Entities:
    tunnel = (event.get("attrs") or {}).get("tunnel_ip")
    addresses = tuple(a for a in (event.get("src_ip"), tunnel) if a)
    keys = [f"account:{event.get('user')}"] + ([f"ip:{tunnel}"] if tunnel else [])
    return Entities(None, addresses, (event["user"],) if event.get("user") else (), tuple(keys))


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    v = _vendor(event, ctx)
    return {"vendor": v.name if v else None, "reasons": reasons(event, ctx), "country": country(event, ctx),
            "allowed_networks": list(v.allowed_networks) if v else [],
            "allowed_countries": list(v.allowed_countries) if v else []}
