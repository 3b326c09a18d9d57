"""Declarative stateful patterns in a detection's YAML: sequences, absences, thresholds.

A detection whose YAML has one of these blocks needs no Python (its module may be only a
docstring); the registry builds the ``StatefulDetection`` here from the block. Top-level
``where:`` still picks the candidate rows vectorized (it must admit every row a step
names); each step's own ``where:`` is then checked per candidate, in Python, with the
same conditions. State is keyed and timed like any stateful detection (``KeyState`` data
plus one event-time timer), so batch and streaming run it the same way.

```yaml
sequence:                       # A then B within T, joined on a field of each
  first: {where: {action: vpn.login}, key: attrs.tunnel_ip}
  then: {where: {action: {prefix: modbus.write_}}, key: src_ip}
  within: 10m
absence:                        # A not followed by B within T
  first: {where: {action: cms.maintenance_start}, key: asset_id}
  then: {where: {action: cms.maintenance_end}, key: asset_id}
  within: 4h
threshold:                      # per group and sliding window
  group: [src_ip]               # key fields (joined)
  window: 30m
  count: 10                     # count >= N               (any of these three)
  distinct: user                # distinct(user) >= min_distinct
  min_distinct: 5
  sum: bytes_out                # sum(bytes_out) >= min_sum
  min_sum: 50000000
  then: {where: {result: success}}   # optional: fire on this event once the bar is met
```

A ``rule(event, ctx)`` in the module, if any, filters candidates before they reach state
(a check ``where:`` cannot express, such as "outside the internal networks").
A key or group field is an event field or ``attrs.<name>``; rows without it are ignored.
A value may be ``$param`` (the detection's parameter). An absence fires only where the
input covers its deadline (``KeyState.horizon``), never because the input ended.
Findings dedup by the pattern's key (``attrs.pattern_key``).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from detections.api import (
    DetectionContext, Entities, KeyState, StatefulDetection, duration_seconds, resolve_kinds, resolve_where,
)

PATTERNS = ("sequence", "absence", "threshold")
_STEP_KEYS = {"where", "key"}
_THRESHOLD_KEYS = {"group", "window", "count", "distinct", "min_distinct", "sum", "min_sum", "then"}
_MAX_KEPT = 200  # window events kept per key for a threshold (the count needs no more)


def value(event: dict[str, Any], name: str) -> Any:
    """An event field, or ``attrs.<name>``."""
    if name.startswith("attrs."):
        return (event.get("attrs") or {}).get(name[6:])
    return event.get(name)


def matches(event: dict[str, Any], where: dict[str, Any]) -> bool:
    """The ``where:`` conditions (resolved: no ``$param``, no ``kind``) on one event dict."""
    for fname, cond in where.items():
        if fname == "not":
            if matches(event, cond):
                return False
        elif fname == "any":
            if not any(matches(event, b) for b in cond):
                return False
        elif not _holds(value(event, fname), cond):
            return False
    return True


def _holds(v: Any, cond: Any) -> bool:
    if not isinstance(cond, dict):
        return v is not None and v == cond
    for op, arg in cond.items():
        if op == "equals":
            ok = v is not None and v == arg
        elif op == "in":
            ok = v is not None and v in arg
        elif op == "prefix":
            ok = isinstance(v, str) and any(v.startswith(p) for p in (arg if isinstance(arg, list) else [arg]))
        elif op == "exists":
            ok = (v is not None) == bool(arg)
        elif op == "gte":
            ok = v is not None and v >= arg
        elif op == "lte":
            ok = v is not None and v <= arg
        else:
            ok = False
        if not ok:
            return False
    return True


def spec_errors(raw: dict[str, Any], path: str) -> list[str]:
    """Load-time checks of a pattern block (file and key named, like the other YAML keys)."""
    found = [p for p in PATTERNS if p in raw]
    if len(found) > 1:
        return [f"{path}: {found[1]}: expected at most one of {', '.join(PATTERNS)}, got {', '.join(found)}"]
    if not found:
        return []
    name = found[0]
    block = raw[name]
    if not isinstance(block, dict):
        return [f"{path}: {name}: expected a mapping"]
    errs: list[str] = []
    params = raw.get("params") or {}

    def duration(key: str) -> None:
        v = block.get(key)
        v = params.get(v[1:]) if isinstance(v, str) and v.startswith("$") else v
        try:
            if duration_seconds(v) <= 0:
                raise ValueError
        except (ValueError, TypeError):
            errs.append(f"{path}: {name}.{key}: expected a positive duration (90s, 30m, 2h), got {block.get(key)!r}")

    if name in ("sequence", "absence"):
        for step in ("first", "then"):
            s = block.get(step)
            if not isinstance(s, dict) or not isinstance(s.get("where"), dict) or not isinstance(s.get("key"), str):
                errs.append(f"{path}: {name}.{step}: expected a mapping with where: (conditions) and key: (a field)")
            elif set(s) - _STEP_KEYS:
                errs.append(f"{path}: {name}.{step}.{sorted(set(s) - _STEP_KEYS)[0]}: unknown key; expected where, key")
        duration("within")
        for k in set(block) - {"first", "then", "within"}:
            errs.append(f"{path}: {name}.{k}: unknown key; expected first, then, within")
    else:
        for k in sorted(set(block) - _THRESHOLD_KEYS):
            errs.append(f"{path}: threshold.{k}: unknown key; expected one of {', '.join(sorted(_THRESHOLD_KEYS))}")
        group = block.get("group")
        if not isinstance(group, list) or not group or not all(isinstance(g, str) for g in group):
            errs.append(f"{path}: threshold.group: expected a non-empty list of fields, got {group!r}")
        duration("window")
        if not any(k in block for k in ("count", "min_distinct", "min_sum")):
            errs.append(f"{path}: threshold: expected at least one of count, min_distinct (with distinct), min_sum (with sum)")
        for bar, field in (("min_distinct", "distinct"), ("min_sum", "sum")):
            if (bar in block) != (field in block):
                errs.append(f"{path}: threshold.{bar}: expected together with threshold.{field}")
        then = block.get("then")
        if then is not None and (not isinstance(then, dict) or not isinstance(then.get("where"), dict)):
            errs.append(f"{path}: threshold.then: expected a mapping with where: (conditions)")
    return errs


def _tag(event: dict[str, Any], key: str) -> dict[str, Any]:
    """The event as a hit, carrying the pattern key its finding dedups by."""
    return {**event, "attrs": {**(event.get("attrs") or {}), "pattern_key": key}}


class Pattern(StatefulDetection):
    """A YAML ``sequence``/``absence``/``threshold`` block as a stateful detection."""

    def __init__(self, kind: str, spec: dict[str, Any], rule: Any = None):
        self.kind = kind
        self.spec = spec
        self.rule = rule  # the module's ``rule``, if any: candidates it rejects never reach state
        self.needs_horizon = kind == "absence"
        self._resolved: dict[int, tuple[DetectionContext, dict[str, Any]]] = {}

    def state_horizon(self, ctx: DetectionContext) -> float | None:
        """A pattern keeps only what its ``within`` / ``window`` can still use."""
        spec = self._r(ctx)
        return float(spec.get("within", spec.get("window", 0)))

    def _r(self, ctx: DetectionContext) -> dict[str, Any]:
        """The block with parameters and asset kinds resolved (once per context)."""
        cached = self._resolved.get(id(ctx))
        got = cached[1] if cached is not None and cached[0] is ctx else None
        if got is None:
            spec = resolve_where(self.spec, ctx.params)
            for step in ("first", "then"):
                if isinstance(spec.get(step), dict) and "where" in spec[step]:
                    spec[step] = {**spec[step], "where": resolve_kinds(spec[step]["where"], ctx.inventory)}
            for k in ("within", "window"):
                if k in spec:
                    spec[k] = duration_seconds(spec[k])
            if len(self._resolved) > 32:  # contexts of finished runs
                self._resolved.clear()
            self._resolved[id(ctx)] = (ctx, spec)  # the context kept: its id is not reused meanwhile
            got = spec
        return got

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_resolved": {}}

    def _step(self, event: dict[str, Any], ctx: DetectionContext) -> tuple[str | None, str | None]:
        """Which step the event is (``first``/``then``/None) and its key value."""
        spec = self._r(ctx)
        if self.kind == "threshold":
            parts = [value(event, g) for g in spec["group"]]
            if any(p is None or p == "" for p in parts):
                return None, None
            key = "|".join(str(p) for p in parts)
            then = spec.get("then")
            if then is not None and matches(event, then["where"]):
                return "then", key
            return "first", key
        for step in ("first", "then"):
            s = spec[step]
            if matches(event, s["where"]):
                v = value(event, s["key"])
                if v is not None and v != "":
                    return step, str(v)
        return None, None

    def key(self, event: dict[str, Any], ctx: DetectionContext) -> str | None:
        if self.rule is not None and not self.rule(event, ctx):
            return None
        return self._step(event, ctx)[1]

    def on_event(self, event: dict[str, Any], state: KeyState, ctx: DetectionContext) -> list[dict[str, Any]]:
        step, key = self._step(event, ctx)
        if step is None or key is None:
            return []
        t = event["time"].timestamp()
        return getattr(self, f"_{self.kind}")(step, key, event, t, state, ctx)

    def _sequence(self, step: str, key: str, event: dict[str, Any], t: float, state: KeyState,
                  ctx: DetectionContext) -> list[dict[str, Any]]:
        within = self._r(ctx)["within"]
        pending = [a for a in state.data.get("first", []) if t - a["time"].timestamp() <= within]
        if step == "then" and pending:
            state.data.clear()
            state.clear_timer()
            return [_tag(pending[0], key), _tag(event, key)]
        if step == "first":
            pending.append(event)
        self._keep(state, pending, within)
        return []

    def _absence(self, step: str, key: str, event: dict[str, Any], t: float, state: KeyState,
                 ctx: DetectionContext) -> list[dict[str, Any]]:
        within = self._r(ctx)["within"]
        pending = state.data.get("first", [])
        if step == "then":  # B answers every A before it that is still waiting
            pending = [a for a in pending if a["time"].timestamp() > t]
        else:
            pending.append(event)
        self._keep(state, pending, within)
        return []

    def _threshold(self, step: str, key: str, event: dict[str, Any], t: float, state: KeyState,
                   ctx: DetectionContext) -> list[dict[str, Any]]:
        spec = self._r(ctx)
        window = spec["window"]
        kept = [e for e in state.data.get("events", []) if t - e["time"].timestamp() <= window]
        if step == "then":
            if self._met(kept, spec):
                state.data.clear()
                state.clear_timer()
                return [_tag(e, key) for e in (*kept, event)]
            return []
        kept.append(event)
        state.data["events"] = kept[-_MAX_KEPT:] if "sum" not in spec and "distinct" not in spec else kept
        state.set_timer(t + window)
        if spec.get("then") is None and self._met(kept, spec) and not state.data.get("fired"):
            state.data["fired"] = True  # once per burst; the timer re-arms it
            return [_tag(e, key) for e in kept]
        if spec.get("then") is None and state.data.get("fired"):
            return [_tag(event, key)]  # the burst goes on: same finding, one more hit
        return []

    @staticmethod
    def _met(events: list[dict[str, Any]], spec: dict[str, Any]) -> bool:
        if "count" in spec and len(events) < int(spec["count"]):
            return False
        if "distinct" in spec and len({value(e, spec["distinct"]) for e in events} - {None}) < int(spec["min_distinct"]):
            return False
        if "sum" in spec and sum(int(value(e, spec["sum"]) or 0) for e in events) < int(spec["min_sum"]):
            return False
        return True

    @staticmethod
    def _keep(state: KeyState, pending: list[dict[str, Any]], within: float) -> None:
        if pending:
            state.data["first"] = pending
            state.set_timer(min(a["time"].timestamp() for a in pending) + within)
        else:
            state.data.pop("first", None)
            state.clear_timer()

    def on_timer(self, when: dt.datetime, state: KeyState, ctx: DetectionContext) -> list[dict[str, Any]]:
        now = when.timestamp()
        if self.kind == "threshold":
            state.data.clear()
            return []
        within = self._r(ctx)["within"]
        pending = state.data.get("first", [])
        due = [a for a in pending if a["time"].timestamp() + within <= now]
        rest = [a for a in pending if a["time"].timestamp() + within > now]
        out: list[dict[str, Any]] = []
        if self.kind == "absence":
            # The runner fires this timer only once the input covers it (``needs_horizon``):
            # an input that ends before the deadline says nothing about B.
            for a in due:
                _, key = self._step(a, ctx)
                out.append(_tag(a, key or ""))
        if rest:
            state.data["first"] = rest
            state.set_timer(min(a["time"].timestamp() for a in rest) + within)
        else:
            state.data.pop("first", None)
        return out


def pattern_dedup(event: dict[str, Any], ctx: DetectionContext) -> str:
    return (event.get("attrs") or {}).get("pattern_key") or event.get("raw_ref") or ""


def pattern_entities(event: dict[str, Any], ctx: DetectionContext) -> Entities:
    """About the event's asset; linked by it, both addresses and the account."""
    asset, user = event.get("asset_id"), event.get("user")
    addrs = tuple(a for a in (event.get("src_ip"), event.get("dst_ip")) if a)
    keys = ([f"asset:{asset}"] if asset else []) + [f"ip:{a}" for a in addrs] + ([f"account:{user}"] if user else [])
    return Entities(asset, addrs, (user,) if user else (), tuple(keys))


def build(raw: dict[str, Any], rule: Any = None) -> tuple[Pattern, dict[str, Any]] | None:
    """The pattern of a loaded YAML (validated by ``spec_errors``) and its default functions;
    ``rule`` (the module's) filters candidates before they reach state."""
    for kind in PATTERNS:
        if kind in raw:
            return Pattern(kind, dict(raw[kind]), rule), {"dedup": pattern_dedup, "entities": pattern_entities}
    return None
