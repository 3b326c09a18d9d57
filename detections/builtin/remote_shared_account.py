"""A remote or jump-host login with a shared or default account: nobody can tell afterwards
who was behind it, and default accounts are what password guessing tries first
(SCENARIOS.md #9, the second half: "shared or default vendor accounts on jump hosts")."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext, Entities


def account(event: dict[str, Any]) -> str:
    """The account name without its domain (``PORT\\Administrator``, ``admin@vendor.example``
    → ``administrator``, ``admin``), lower-cased as Windows and most VPNs compare them."""
    user = str(event.get("user") or "")
    return user.rsplit("\\", 1)[-1].split("@", 1)[0].strip().lower()


def _why(event: dict[str, Any], ctx: DetectionContext) -> str | None:
    name = account(event)
    if name in {a.lower() for a in ctx.params["shared_accounts"]}:
        return "a shared or default account"
    if name in {v.lower() for v in ctx.inventory.vendors}:
        return "the vendor's company name as an account"
    return None


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    return _why(event, ctx) is not None


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    host = (event.get("attrs") or {}).get("host") or event.get("dst_asset") or event.get("target") or "remote access"
    return f"Login as {event.get('user')} ({_why(event, ctx)}) on {host} from {event.get('src_ip') or 'unknown address'}"


def dedup(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"{account(event)}|{event.get('src_ip')}"


def entities(event: dict[str, Any], ctx: DetectionContext) -> Entities:
    """About the account and where it came from; a VPN session's tunnel address links what
    the session then does."""
    tunnel = (event.get("attrs") or {}).get("tunnel_ip")
    addresses = tuple(a for a in (event.get("src_ip"), tunnel) if a)
    keys = [f"account:{event.get('user')}"] + [f"ip:{a}" for a in addresses]
    asset = event.get("dst_asset")
    return Entities(asset, addresses, (event["user"],), tuple(keys + ([f"asset:{asset}"] if asset else [])))


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    attrs = event.get("attrs") or {}
    return {"reason": _why(event, ctx), "host": attrs.get("host"), "logon_type": attrs.get("logon_type_name")}
