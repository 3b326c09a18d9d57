"""Many failed VPN logins for one account, then a successful one: password guessing that
worked (a stateful detection: per-account failures in keyed state, expired by a timer)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from detections.api import DetectionContext, Entities, KeyState, StatefulDetection, duration_seconds


class FailedThenSuccess(StatefulDetection):
    """State per account: the recent failures (kept as events, for evidence)."""

    def key(self, event: dict[str, Any], ctx: DetectionContext) -> str | None:
        user = (event.get("user") or "").strip().lower()
        return user or None

    def on_event(self, event: dict[str, Any], state: KeyState, ctx: DetectionContext) -> list[dict[str, Any]]:
        window = duration_seconds(ctx.params["window"])
        t = event["time"].timestamp()
        failures = [f for f in state.data.get("failures", []) if t - f["time"].timestamp() <= window]
        if event.get("action") == "auth.failure" or event.get("result") == "failure":
            failures.append(event)
            # Keep only what can still count (and cite): the last `min_failures` failures.
            state.data["failures"] = failures[-int(ctx.params["min_failures"]):]
            state.set_timer(t + window)  # forget them once they are too old to matter
            return []
        state.data.clear()
        state.clear_timer()
        if len(failures) >= int(ctx.params["min_failures"]):
            return [*failures, event]
        return []

    def on_timer(self, when: dt.datetime, state: KeyState, ctx: DetectionContext) -> list[dict[str, Any]]:
        state.data.clear()
        return []

    def state_horizon(self, ctx: DetectionContext) -> float | None:
        return duration_seconds(ctx.params["window"])  # older failures are forgotten


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"Repeated failed VPN logins for {event.get('user')}, then a successful login"


def dedup(event: dict[str, Any], ctx: DetectionContext) -> str:
    return (event.get("user") or "").strip().lower()


def entities(event: dict[str, Any], ctx: DetectionContext) -> Entities:
    tunnel = (event.get("attrs") or {}).get("tunnel_ip")
    user = (event.get("user") or "").strip()
    addresses = tuple(a for a in (event.get("src_ip"), tunnel) if a)
    keys = [f"account:{user}"] + ([f"ip:{tunnel}"] if tunnel else [])
    return Entities(None, addresses, (user,) if user else (), tuple(keys))


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    return {"reason": (event.get("attrs") or {}).get("reason")}
