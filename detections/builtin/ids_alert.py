"""An IDS alert (Suricata EVE ``alert``) is a finding: its signature, severity and category
kept, linked by both addresses and the inventoried asset so it joins the incident of
whatever else those hosts did."""
from __future__ import annotations

from typing import Any

from detections.api import DetectionContext, Entities


def _attrs(event: dict[str, Any]) -> dict[str, str]:
    return event.get("attrs") or {}


def severity(event: dict[str, Any], ctx: DetectionContext) -> int:
    """Suricata's severity (1 highest) on the pack's 0-100 scale (``severity_map``)."""
    table = ctx.params["severity_map"]
    return int(table.get(str(_attrs(event).get("severity")), table["default"]))


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"IDS alert: {event.get('target') or 'unnamed signature'} ({event.get('src_ip')} → {event.get('dst_ip')})"


def dedup(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"{_attrs(event).get('signature_id')}|{event.get('src_ip')}|{event.get('dst_ip')}"


def entities(event: dict[str, Any], ctx: DetectionContext) -> Entities:
    asset = event.get("dst_asset") or event.get("src_asset")
    addrs = tuple(a for a in (event.get("src_ip"), event.get("dst_ip")) if a)
    keys = tuple(f"ip:{a}" for a in addrs) + ((f"asset:{asset}",) if asset else ())
    return Entities(asset, addrs, (), keys)


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    a = _attrs(event)
    return {"signature": event.get("target"), "signature_id": a.get("signature_id"),
            "ids_severity": a.get("severity"), "category": a.get("category"), "ids_action": event.get("result")}
