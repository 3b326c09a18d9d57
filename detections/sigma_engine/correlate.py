"""Sigma correlation rules (specification v2) as stateful detections, in event time.

The events a correlation looks at are those its referenced rules match (their compiled
masks pick them vectorized); ``group-by`` fields (through ``aliases`` where the rules name
them differently, and through each rule's own field mapping) make the key, so state and
the event-time timer are the project's keyed-state machinery (``StatefulDetection``):
batch and streaming run it alike, candidates arrive in event-time order per key, and a
late candidate is still placed in its window.

Windows are ``timespan`` long and inclusive at both ends (an event exactly ``timespan``
after the first is in). Conditions that can only grow true (``gt``/``gte``; ``temporal``
and ``temporal_ordered`` without ``not``) are checked on every event, over each window
that holds it, and fire at once; the others (``lt``, ``lte``, ``eq``, ``neq``, an extended
condition with ``not``) are judged when a window closes, and only where the input reaches
past the close (``needs_horizon``), never because the input ended. Growing windows keep
their events for ``correlation.allowed_lateness`` past the window, so a late event still
meets the events of its window; a late event for a window already judged at its close
cannot change that judgement and is left out.
"""
from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc
from sigma.correlations import (
    CorrelationConditionAND, CorrelationConditionNOT, CorrelationConditionOR, SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator as Op, SigmaCorrelationRule, SigmaExtendedCorrelationCondition,
    SigmaRuleReference,
)
from sigma.rule import SigmaLogSource, SigmaRule

from detections.api import Detection, DetectionContext, DetectionMeta, KeyState, StatefulDetection
from detections.declarative import pattern_dedup, pattern_entities
from detections.sigma_engine import meta
from detections.sigma_engine.compile import _Builder, rule_id, value_of
from transforms.model import KINDS

_OPS: dict[Op, Callable[[float, float], bool]] = {
    Op.LT: lambda a, b: a < b, Op.LTE: lambda a, b: a <= b, Op.GT: lambda a, b: a > b,
    Op.GTE: lambda a, b: a >= b, Op.EQ: lambda a, b: a == b, Op.NEQ: lambda a, b: a != b,
}
_GROWING = {Op.GT, Op.GTE}
_METRICS = ("event_count", "value_count", "value_sum", "value_avg", "value_median", "value_percentile")
_KEPT = 10000  # events kept per key and window (a flood beyond that is judged on the newest)
MATCHED = "sigma_inputs"  # on a candidate: the indices of the correlation's rules it matched
#: Timers fire this long after a window's end, so an event exactly at the end is still in it.
_EPS = 0.001


def _tag(event: dict[str, Any], key: str) -> dict[str, Any]:
    """The event as a hit, carrying the key its finding dedups by (``pattern_dedup``)."""
    return {**event, "attrs": {**(event.get("attrs") or {}), "pattern_key": key}}


@dataclass
class Input:
    ref: str  # the reference as the correlation names it
    entry: Any  # engine.SigmaEntry
    group: list[str]  # event fields of the group-by entries, for this rule
    value: str | None  # event field of ``condition.field`` for this rule


@dataclass
class CompiledCorrelation:
    id: str
    title: str
    type: str
    timespan: float
    inputs: list[Input]
    group_by: list[str]
    op: Op | None = None
    count: float = 0
    percentile: float | None = None
    expr: Any = None  # extended temporal condition (parse tree over rule references)
    growing: bool = True
    severity: int = meta.DEFAULT_SEVERITY
    level: str | None = None
    techniques: tuple[str, ...] = ()
    stage: str = "other"
    tags: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    falsepositives: list[str] = field(default_factory=list)
    description: str = ""
    notes: list[str] = field(default_factory=list)
    file: str = ""


def map_field(name: str, logsource: SigmaLogSource, pipeline: Any) -> str:
    """A Sigma field name as the event field a rule of this log source reads: pySigma
    applies the pipeline to a one-item probe rule, so every field transformation counts."""
    b = _Builder()
    if pipeline is None:
        return b.resolve(name)
    probe = SigmaRule.from_dict({
        "title": "field probe", "logsource": {k: v for k, v in (("category", logsource.category),
                                                               ("product", logsource.product),
                                                               ("service", logsource.service)) if v},
        "detection": {"probe": {name: "x"}, "condition": "probe"},
    })
    pipeline.apply(probe)
    item = probe.detection.detections["probe"].detection_items[0]
    return b.resolve(item.field or name)


def _refs(node: Any) -> set[str]:
    if isinstance(node, SigmaRuleReference):
        return {node.reference}
    return set().union(*(_refs(a) for a in node.args))


def _has_not(node: Any) -> bool:
    if isinstance(node, SigmaRuleReference):
        return False
    return isinstance(node, CorrelationConditionNOT) or any(_has_not(a) for a in node.args)


def holds(node: Any, seen: set[str]) -> bool:
    """An extended temporal condition over the references seen in a window."""
    if isinstance(node, SigmaRuleReference):
        return node.reference in seen
    if isinstance(node, CorrelationConditionNOT):
        return not holds(node.args[0], seen)
    if isinstance(node, CorrelationConditionAND):
        return all(holds(a, seen) for a in node.args)
    assert isinstance(node, CorrelationConditionOR)
    return any(holds(a, seen) for a in node.args)


def compile_correlation(corr: SigmaCorrelationRule, by_rule: dict[int, Any],
                        pipeline_of: Callable[[SigmaLogSource], Any]) -> tuple[CompiledCorrelation, list[str]]:
    problems: list[str] = []
    ctype = str(corr.type.name).lower()
    aliases = {a.alias: {r.reference: f for r, f in a.mapping.items()} for a in corr.aliases}
    cond = corr.condition
    inputs: list[Input] = []
    for ref in corr.referenced_rules:
        rule = ref.rule
        if isinstance(rule, SigmaCorrelationRule):
            problems.append(f"rule {ref.reference!r} is a correlation (correlations of correlations are not supported)")
            continue
        entry = by_rule.get(id(rule))
        if entry is None:
            problems.append(f"rule {ref.reference!r} did not compile (see its own error)")
            continue
        pipe = pipeline_of(rule.logsource)

        def mapped(name: str) -> str:
            own = aliases.get(name, {}).get(ref.reference, name)
            return map_field(own, rule.logsource, pipe)

        group = [mapped(g) for g in (corr.group_by or [])]
        value = None
        if isinstance(cond, SigmaCorrelationCondition) and cond.fieldref is not None:
            if isinstance(cond.fieldref, list):
                problems.append("a condition on several fields is not supported")
            else:
                value = mapped(cond.fieldref)
        inputs.append(Input(ref.reference, entry, group, value))
    techniques, notes = meta.techniques(corr.tags)
    out = CompiledCorrelation(
        id=rule_id(corr), title=corr.title, type=ctype, timespan=float(corr.timespan.seconds), inputs=inputs,
        group_by=list(corr.group_by or []), severity=meta.severity(corr.level), level=meta.level_name(corr.level),
        techniques=techniques, stage=meta.stage(corr.tags, techniques), tags=meta.tag_texts(corr.tags),
        references=list(corr.references or ()), falsepositives=list(corr.falsepositives or ()),
        description=(corr.description or "").strip(), notes=notes,
    )
    if isinstance(cond, SigmaExtendedCorrelationCondition):
        out.expr = cond.parsed
        out.growing = not _has_not(cond.parsed)
        if ctype == "temporal_ordered" and (not out.growing or isinstance(cond.parsed, CorrelationConditionOR)):
            problems.append("temporal_ordered with an extended condition other than 'and' is not supported")
    elif ctype in _METRICS:
        out.op, out.count = cond.op, float(cond.count)
        out.percentile = float(cond.percentile) if cond.percentile is not None else None
        out.growing = cond.op in _GROWING
        if ctype == "value_percentile" and out.percentile is None:
            problems.append("value_percentile needs condition.percentile")
    elif ctype not in ("temporal", "temporal_ordered"):
        problems.append(f"correlation type {ctype} is not supported")
    else:  # temporal with a plain condition (pySigma's default gte 1): all rules, in a window
        if cond.op not in _GROWING or cond.count > len(inputs):
            problems.append(f"temporal condition {cond.op.name.lower()} {cond.count} is not supported (all rules)")
    return out, problems


def _routed(entry: Any, event: dict[str, Any]) -> bool:
    r = entry.route
    return event.get("kind") in r.kinds or event.get("format") in r.formats


class Correlation(StatefulDetection):
    """The state machine of one correlation rule; state per group key."""

    def __init__(self, c: CompiledCorrelation):
        self.c = c
        self.needs_horizon = not c.growing

    def _inputs(self, event: dict[str, Any]) -> list[int]:
        return [i for i, inp in enumerate(self.c.inputs) if _routed(inp.entry, event) and inp.entry.compiled.matches(event)]

    def _group(self, event: dict[str, Any], i: int) -> str | None:
        parts = [value_of(event, f) for f in self.c.inputs[i].group]
        if any(p is None or p == "" for p in parts):
            return None
        return "|".join(str(p) for p in parts) or "*"

    def key(self, event: dict[str, Any], ctx: DetectionContext) -> str | None:
        # Which rules matched is decided here, on the whole event (a keyword rule reads the
        # raw text, which the candidate kept in state no longer carries).
        matched = [i for i in self._inputs(event) if self._group(event, i) is not None]
        event[MATCHED] = matched
        return self._group(event, matched[0]) if matched else None

    def on_event(self, event: dict[str, Any], state: KeyState, ctx: DetectionContext) -> list[dict[str, Any]]:
        matched = event.get(MATCHED)
        if matched is None:
            matched = [i for i in self._inputs(event) if self._group(event, i) is not None]
        if not matched:
            return []
        key = self._group(event, matched[0]) or "*"
        t = event["time"].timestamp()
        span = self.c.timespan
        value = value_of(event, self.c.inputs[matched[0]].value) if self.c.inputs[matched[0]].value else None
        rows: list[list[Any]] = state.data.setdefault("rows", [])
        newest = max([t] + [r[0] for r in rows])
        keep = newest - span - (ctx.cfg.correlation.allowed_lateness if self.c.growing else 0)
        rows[:] = [r for r in rows if r[0] >= keep][-_KEPT:]
        if self.c.growing:
            row = [t, event.get("raw_ref") or "", matched, value, event]
            bisect.insort(rows, row, key=lambda r: (r[0], r[1]))
            # Kept for the allowed lateness past the window: a late event still finds its window.
            state.set_timer(newest + span + ctx.cfg.correlation.allowed_lateness + _EPS)
            return self._check(rows, row, key, state)
        # Judged at the window's close: a window opens at its first event.
        start = state.data.get("start")
        if start is None:
            state.data["start"] = start = t
            state.set_timer(t + span + _EPS)
        if t < start:  # later than its window's close was judged: it cannot change that
            return []
        bisect.insort(rows, [t, event.get("raw_ref") or "", matched, value, event], key=lambda r: (r[0], r[1]))
        return []

    def on_timer(self, when: Any, state: KeyState, ctx: DetectionContext) -> list[dict[str, Any]]:
        rows: list[list[Any]] = state.data.get("rows", [])
        if self.c.growing:
            state.data.clear()
            return []
        start = state.data.get("start")
        end = (start if start is not None else when.timestamp()) + self.c.timespan
        window = [r for r in rows if start is not None and start <= r[0] <= end]
        rest = [r for r in rows if r[0] > end]
        out: list[dict[str, Any]] = []
        if window and self._holds(window):
            key = self._group(window[0][4], window[0][2][0]) or "*"
            out = [_tag(r[4], self._tag_key(key)) for r in window]
        state.data.clear()
        if rest:
            state.data["rows"] = rest
            state.data["start"] = rest[0][0]
            state.set_timer(rest[0][0] + self.c.timespan + _EPS)
        return out

    def _tag_key(self, key: str) -> str:
        return f"{self.c.id}|{key}"

    def _check(self, rows: list[list[Any]], row: list[Any], key: str, state: KeyState) -> list[dict[str, Any]]:
        """Does a window holding the new event meet the condition? The first window that
        does fires with all its events (the chain, for temporal_ordered); later events of
        windows overlapping it join that finding."""
        span, t = self.c.timespan, row[0]
        # Trailing windows (the timespan up to an event) that hold the new event: in order,
        # only the one ending at it; a late event also falls in windows ending after it.
        for end in sorted({r[0] for r in rows if t <= r[0] <= t + span}):
            window = [r for r in rows if end - span <= r[0] <= end]
            hit = self._holds(window)
            if not hit:
                continue
            fired = state.data.get("fired_until")
            state.data["fired_until"] = max(fired or end, end)
            chain = hit if isinstance(hit, list) else window
            if fired is not None and fired >= end - span:
                return [_tag(row[4], self._tag_key(key))]
            return [_tag(r[4], self._tag_key(key)) for r in chain]
        return []

    def _holds(self, window: list[list[Any]]) -> Any:
        c = self.c
        if c.type in _METRICS:
            return _OPS[c.op](self._metric(window), c.count)  # type: ignore[index]
        seen = {c.inputs[i].ref for r in window for i in r[2]}
        if c.type == "temporal":
            return holds(c.expr, seen) if c.expr is not None else len(seen) == len(c.inputs)
        # temporal_ordered: the rules in the order listed, the earliest such chain
        chain, j = [], 0
        for r in window:
            if j < len(c.inputs) and j in r[2]:
                chain.append(r)
                j += 1
        return chain if j == len(c.inputs) else False

    def _metric(self, window: list[list[Any]]) -> float:
        t = self.c.type
        if t == "event_count":
            return float(len(window))
        values = [r[3] for r in window if r[3] is not None and r[3] != ""]
        if t == "value_count":
            return float(len({str(v) for v in values}))
        from detections.sigma_engine.match import number

        nums = [x for x in (number(v) for v in values) if x is not None]
        if not nums:
            return float("nan")  # no value: no comparison holds
        if t == "value_sum":
            return float(sum(nums))
        if t == "value_avg":
            return statistics.fmean(nums)
        if t == "value_median":
            return float(statistics.median(nums))
        q = statistics.quantiles(nums, n=100, method="inclusive") if len(nums) > 1 else [nums[0]] * 99
        p = int(self.c.percentile or 50)
        return float(nums[0] if p <= 0 else (max(nums) if p >= 100 else q[p - 1]))


def correlation_detection(c: CompiledCorrelation) -> Detection:
    """The correlation as a stateful detection: its candidates are the events any of its
    rules match (routed per rule, vectorized)."""
    from detections.sigma_engine.engine import PREFIX, _module, routed_mask, sigma_context

    det_id = PREFIX + c.id
    kinds: set[str] = set()
    for inp in c.inputs:
        kinds |= set(KINDS) if inp.entry.route.formats else set(inp.entry.route.kinds)
    detection_meta = DetectionMeta(
        id=det_id, title=c.title, description=c.description, severity=c.severity, confidence=70, stage=c.stage,
        techniques=c.techniques, kinds=tuple(sorted(kinds)), where={}, params={}, tests=(), path=c.file,
    )
    extra = sigma_context(c.file, c)
    extra["sigma"].update({"correlation": c.type, "timespan": c.timespan, "group_by": list(c.group_by),
                           "rules": [i.ref for i in c.inputs]})
    module = _module(det_id, {"dedup": pattern_dedup, "entities": pattern_entities,
                              "finding_context": lambda event, ctx: extra})
    inputs = list(c.inputs)

    def mask(table: pa.Table, cache: dict[str, Any]) -> Any:
        out = None
        for inp in inputs:
            m = routed_mask(inp.entry.route, inp.entry.compiled.mask, table, cache)
            out = m if out is None else pc.or_(out, m)
        return out if out is not None else pa.array([False] * table.num_rows)

    return Detection(detection_meta, module, Correlation(c), mask=mask)
