"""Password spraying: one outside address failing logins on many accounts, then one of its
logins succeeding. Declarative (a ``threshold`` with a distinct count and a ``then`` step
in the YAML); only the title and entities are Python."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext, Entities


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"Password spraying from {event.get('src_ip')} across accounts, then a successful login"


def entities(event: dict[str, Any], ctx: DetectionContext) -> Entities:
    """Linked by the spraying address, each account tried and the session's tunnel address."""
    user = (event.get("user") or "").strip()
    tunnel = (event.get("attrs") or {}).get("tunnel_ip")
    addrs = tuple(a for a in (event.get("src_ip"), tunnel) if a)
    keys = [f"ip:{a}" for a in addrs] + ([f"account:{user}"] if user else [])
    return Entities(None, addrs, (user,) if user else (), tuple(keys))
