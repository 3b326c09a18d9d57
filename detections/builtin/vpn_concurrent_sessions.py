"""One account in two VPN sessions at once from different addresses: shared or stolen
credentials (stateful: the account's open sessions, pruned by a timer)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from detections.api import DetectionContext, Entities, KeyState, StatefulDetection, duration_seconds


def _session(event: dict[str, Any]) -> str:
    tunnel = (event.get("attrs") or {}).get("tunnel_ip")
    return event.get("session_id") or tunnel or event.get("src_ip") or ""


class ConcurrentSessions(StatefulDetection):
    """State per account: open sessions, session key → login event."""

    def key(self, event: dict[str, Any], ctx: DetectionContext) -> str | None:
        user = (event.get("user") or "").strip().lower()
        return user or None

    def on_event(self, event: dict[str, Any], state: KeyState, ctx: DetectionContext) -> list[dict[str, Any]]:
        open_: dict[str, dict[str, Any]] = state.data.setdefault("open", {})
        if event.get("action") == "vpn.logout":
            open_.pop(_session(event), None)
            self._arm(state, ctx)
            return []
        others = [e for e in open_.values() if e.get("src_ip") != event.get("src_ip")]
        open_[_session(event)] = event
        self._arm(state, ctx)
        return [*others, event] if others else []

    def on_timer(self, when: dt.datetime, state: KeyState, ctx: DetectionContext) -> list[dict[str, Any]]:
        # Sessions without a logout record (a lost syslog line) end after max_session.
        limit = duration_seconds(ctx.params["max_session"])
        open_ = state.data.get("open", {})
        for k in [k for k, e in open_.items() if when.timestamp() - e["time"].timestamp() >= limit]:
            del open_[k]
        self._arm(state, ctx)
        return []

    @staticmethod
    def _arm(state: KeyState, ctx: DetectionContext) -> None:
        open_ = state.data.get("open", {})
        if not open_:
            state.data.clear()
            state.clear_timer()
            return
        oldest = min(e["time"].timestamp() for e in open_.values())
        state.set_timer(oldest + duration_seconds(ctx.params["max_session"]))


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"Account {event.get('user')} in concurrent VPN sessions from different addresses"


def dedup(event: dict[str, Any], ctx: DetectionContext) -> str:
    return (event.get("user") or "").strip().lower()


def entities(event: dict[str, Any], ctx: DetectionContext) -> Entities:
    tunnel = (event.get("attrs") or {}).get("tunnel_ip")
    user = (event.get("user") or "").strip()
    keys = [f"account:{user}"] + ([f"ip:{tunnel}"] if tunnel else [])
    return Entities(None, tuple(a for a in (event.get("src_ip"), tunnel) if a), (user,) if user else (), tuple(keys))
