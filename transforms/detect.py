"""Detection: run every enabled detection over an enriched batch, emit only hits.

The ``where:`` blocks of all detections are evaluated on the whole Arrow batch in one pass
(``transforms/candidates.py``); only the rows they keep become Python dicts for the
detections' ``rule``. Hits with the same (detection, dedup key) in one batch are merged at
once, so the data leaving this stage is small whatever the input volume.

Stateful detections share the vectorized filter: their candidate rows (optionally reduced
to the first row per ``distinct`` tuple in the batch) leave this stage keyed by
(detection, key) and go to a keyed stateful stage (``_StatefulFn``) that feeds them to the
detection in event-time order, with the detection's state and timer in Beam keyed state.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import threading
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.coders import PickleCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

from detections.api import (
    Detection,
    DetectionContext,
    Entities,
    Inventory,
    KeyState,
    criticality_severity,
    resolve_kinds,
    resolve_where,
)
from detections.registry import load_registry
from pipelines.config import Config, DetectionSettings
from transforms.candidates import BatchMasks, first_per_distinct_indices, row_indices, take_rows
from transforms.locations import relative_ref
from transforms.model import Evidence, Finding, sha256_text

MAX_EVIDENCE = 5  # raw records cited per finding; the count says how many hits there were


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stable_id(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]


class Detector:
    """Holds the enabled detections with their resolved parameters for one config."""

    def __init__(self, cfg: Config, registry: dict[str, Detection] | None = None):
        if registry is None:  # built-ins and plugins, and the config's Sigma rules
            registry = load_registry()
            if cfg.sigma.rules:  # pySigma is imported only for a config that has rules
                from detections.sigma_engine.engine import sigma_registry

                registry = {**registry, **sigma_registry(cfg)}
        inventory = Inventory(cfg)
        self.active: list[tuple[Detection, DetectionContext]] = []
        for det_id in sorted(registry):
            det = registry[det_id]
            settings = cfg.detections.get(det_id, DetectionSettings())
            if not settings.enabled:
                continue
            params = {**det.meta.params, **settings.params}
            ctx = DetectionContext(cfg, inventory, params, settings)
            prepare = det.fn("prepare")
            if prepare is not None:
                ctx.params.update(prepare(ctx))
            self.active.append((det, ctx))
        self.where = {
            det.meta.id: resolve_kinds(resolve_where(det.meta.where, ctx.params), inventory)
            for det, ctx in self.active
        }
        self.by_id = {det.meta.id: (det, ctx) for det, ctx in self.active}
        # Absence detections learn how far the input reaches from a clock candidate per batch.
        self.horizon_ids = [det.meta.id for det, _ in self.active
                            if det.stateful is not None and det.stateful.needs_horizon]

    def detect(self, table: pa.Table) -> list[Finding]:
        """All findings of the row detections in one batch, merged per (detection, dedup key)."""
        return self.scan(table)[0]

    def scan(self, table: pa.Table) -> tuple[list[Finding], list[tuple[str, dict[str, Any]]]]:
        """Row findings (merged) and the stateful detections' keyed candidates:
        ``("<detection id>\x1f<key>", event)`` pairs."""
        if table.num_rows == 0:
            return [], []
        hits: list[Finding] = []
        keyed: list[tuple[str, dict[str, Any]]] = []
        masks = BatchMasks(table)  # condition masks shared by the detections on this batch
        chosen: list[tuple[Detection, DetectionContext]] = []
        wanted: list[pa.Array] = []
        for det, ctx in self.active:
            if det.mask is not None:  # a Sigma rule: its own compiled mask, sharing the batch's cache
                idx = row_indices(table.num_rows, masks.with_own(det.meta.kinds, det.mask))
            else:
                idx = row_indices(table.num_rows, masks.detection(det.meta.kinds, self.where[det.meta.id]))
            if len(idx) and det.stateful is not None and det.meta.distinct:
                idx = first_per_distinct_indices(table, det.meta.distinct, idx)
            if len(idx):
                chosen.append((det, ctx))
                wanted.append(idx)
        for (det, ctx), events in zip(chosen, take_rows(table, wanted)):
            for event in events:
                if det.stateful is not None:
                    if ctx.allowlisted(event):
                        continue
                    key = det.stateful.key(event, ctx)
                    if key is not None:
                        keyed.append((f"{det.meta.id}\x1f{key}", _compact(event)))
                    continue
                finding = hit(det, ctx, event)
                if finding is not None:
                    hits.append(finding)
        if self.horizon_ids:
            latest = pc.max(table.column("time")).as_py()
            if latest is not None:
                keyed += [(f"{det_id}\x1f{CLOCK}{shard}", {"time": latest, CLOCK: True})
                          for det_id in self.horizon_ids for shard in range(STATE_SHARDS)]
        return merge_all(hits), keyed

    def advance(self, state_key: str, state: KeyState, events: list[dict[str, Any]],
                until: float | None, horizon: float | None = None) -> list[Finding]:
        """Run one stateful key forward: its pending ``events`` (any order) and its timer,
        in event-time order, up to ``until`` (epoch seconds; None: the end of input).
        ``horizon``: the latest event time of the whole input seen so far (``KeyState.horizon``).
        ``state`` is updated in place; the caller persists it."""
        det_id, _ = state_key.split("\x1f", 1)
        det, ctx = self.by_id[det_id]
        assert det.stateful is not None
        known = [h for h in (horizon, state.horizon, *(e["time"].timestamp() for e in events)) if h is not None]
        state.horizon = max(known) if known else None
        found: list[dict[str, Any]] = []
        for event in sorted(events, key=lambda e: (e["time"], e.get("raw_ref") or "")):
            t = event["time"].timestamp()
            while state.timer is not None and state.timer <= t:
                found += self._fire(det, ctx, state)
            found += det.stateful.on_event(event, state, ctx)
        if det.stateful.needs_horizon:  # a timer past what the input covers waits for more input
            covered = state.horizon if state.horizon is not None else float("-inf")
            until = covered if until is None else min(until, covered)
        while state.timer is not None and (until is None or state.timer <= until):
            found += self._fire(det, ctx, state)
        out = [f for e in found if (f := hit(det, ctx, e, check_rule=False)) is not None]
        return merge_all(out)

    def needs_horizon(self, state_key: str) -> bool:
        """Do this key's detection's timers wait for the input to cover them (absence)?"""
        return state_key.split("\x1f", 1)[0] in self.horizon_ids

    @staticmethod
    def _fire(det: Detection, ctx: DetectionContext, state: KeyState) -> list[dict[str, Any]]:
        assert det.stateful is not None and state.timer is not None
        fired = state.timer
        state.timer = None
        out = det.stateful.on_timer(dt.datetime.fromtimestamp(fired, dt.timezone.utc), state, ctx)
        if state.timer is not None and state.timer <= fired:
            raise ValueError(f"{det.meta.id}: on_timer must set its next timer after {fired}, got {state.timer}")
        return out

    def run_stateful(self, keyed: Iterable[tuple[str, dict[str, Any]]]) -> list[Finding]:
        """Every stateful key run to the end of input (tests and ``detections test``)."""
        by_key: dict[str, list[dict[str, Any]]] = {}
        horizon: dict[str, float] = {}
        for k, e in keyed:
            if e.get(CLOCK):
                det_id = k.split("\x1f", 1)[0]
                horizon[det_id] = max(horizon.get(det_id, float("-inf")), e["time"].timestamp())
                continue
            by_key.setdefault(k, []).append(e)
        out: list[Finding] = []
        for k in sorted(by_key):
            out += self.advance(k, KeyState(), by_key[k], None, horizon.get(k.split("\x1f", 1)[0]))
        return merge_all(out)


def _compact(event: dict[str, Any]) -> dict[str, Any]:
    """A candidate as kept in keyed state: no null fields, and the raw text replaced by
    its hash (all a finding keeps of it), so state stays small and cheap to commit."""
    out = {k: v for k, v in event.items() if v is not None and k != "raw"}
    out["raw_sha256"] = sha256_text(event.get("raw"))
    return out


def first_per_distinct(table: pa.Table, fields: tuple[str, ...], mask: Any = None) -> pa.Table:
    """The earliest row (of those ``mask`` keeps) of each distinct ``fields`` tuple
    (``transforms/candidates.py``)."""
    idx = row_indices(table.num_rows, True if mask is None else mask)
    return table.take(first_per_distinct_indices(table, fields, idx))


def hit(det: Detection, ctx: DetectionContext, event: dict[str, Any], check_rule: bool = True) -> Finding | None:
    """Apply one detection to one candidate event; a Finding (count 1) or None."""
    rule = det.fn("rule")
    if check_rule and rule is not None and not rule(event, ctx):
        return None
    if ctx.allowlisted(event):
        return None
    ents: Entities = det.fn("entities")(event, ctx) if det.fn("entities") else Entities(
        event.get("asset_id"),
        tuple(a for a in (event.get("src_ip"), event.get("dst_ip")) if a),
        (event["user"],) if event.get("user") else (),
        (f"asset:{event['asset_id']}",) if event.get("asset_id") else (),
    )
    # Evidence paths relative to the source roots: ids and bundles must not depend on the
    # folder the logs were read from.
    raw_ref = relative_ref(event.get("raw_ref") or "", ctx.cfg)
    dedup = det.fn("dedup")(event, ctx) if det.fn("dedup") else raw_ref
    title = det.fn("title")(event, ctx) if det.fn("title") else det.meta.title
    extra = det.fn("context")(event, ctx) if det.fn("context") else {}
    when = rfc3339(event["time"])
    # ``operation``: hits naming one protocol operation (a request and its response, the
    # same write in sibling logs) count once; the finding's count reads as operations.
    op = det.fn("operation")(event, ctx) if det.fn("operation") else None
    more = {"ops": [op or event.get("raw_ref") or ""]} if det.fn("operation") else {}
    evidence = Evidence(
        raw_ref=raw_ref,
        sha256=event.get("raw_sha256") or sha256_text(event.get("raw")),
        time=when,
        fields=_key_fields(event, extra),
    )
    severity = ctx.settings.severity if ctx.settings.severity is not None else (
        det.fn("severity")(event, ctx) if det.fn("severity") else det.meta.severity)
    # a detection whose events differ in kind (threat intel: a login is access, a lookup of
    # a C2 name is c2) says per event; else the YAML's stage and techniques
    stage = (det.fn("stage")(event, ctx) if det.fn("stage") else None) or det.meta.stage
    techniques = tuple((det.fn("techniques")(event, ctx) if det.fn("techniques") else None) or det.meta.techniques)
    severity, why = criticality_severity(severity, stage, ctx.inventory.asset(ents.asset_id))
    if why:
        more["severity_reason"] = why
    if det.fn("finding_context"):  # e.g. a Sigma rule's id, references, false positives
        more.update(det.fn("finding_context")(event, ctx))
    return Finding(
        finding_id=stable_id(det.meta.id, dedup, when),
        detection_id=det.meta.id,
        title=title,
        severity=severity,
        confidence=det.meta.confidence,
        stage=stage,
        techniques=techniques,
        first_seen=when,
        last_seen=when,
        asset_id=ents.asset_id,
        zone=ctx.inventory.asset(ents.asset_id).zone if ctx.inventory.asset(ents.asset_id) else None,
        addresses=tuple(sorted(set(ents.addresses))),
        accounts=tuple(sorted(set(ents.accounts))),
        link_keys=tuple(sorted(set(ents.link_keys))),
        evidence=(evidence,),
        count=1,
        context={"dedup": dedup, "window": ctx.settings.suppression or ctx.cfg.correlation.gap, **more},
    )


_KEY_FIELDS = (
    "source", "format", "kind", "action", "src_ip", "src_port", "dst_ip", "dst_port", "proto",
    "service", "user", "session_id", "target", "value_old", "value_new", "result", "bytes_out",
    "bytes_in",
)


def _key_fields(event: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    fields = {k: event[k] for k in _KEY_FIELDS if event.get(k) is not None}
    attrs = event.get("attrs") or {}
    if attrs.get("tunnel_ip"):
        fields["tunnel_ip"] = attrs["tunnel_ip"]
    fields.update({k: v for k, v in extra.items() if v is not None})
    return fields


def merge(a: Finding, b: Finding) -> Finding:
    """Two hits of one detection and dedup key: one finding, earliest id, summed count."""
    first, second = (a, b) if (a.first_seen, a.finding_id) <= (b.first_seen, b.finding_id) else (b, a)
    unique = {(e.time, e.raw_ref): e for e in (*a.evidence, *b.evidence)}
    evidence = tuple(unique[k] for k in sorted(unique))[:MAX_EVIDENCE]
    context = {**second.context, **first.context}
    count = a.count + b.count
    if "ops" in a.context and "ops" in b.context:  # distinct operations, not rows
        context["ops"] = _union(a.context["ops"], b.context["ops"])
        count = len(context["ops"])
    return Finding(
        finding_id=first.finding_id,
        detection_id=a.detection_id,
        title=first.title,
        severity=max(a.severity, b.severity),
        confidence=max(a.confidence, b.confidence),
        stage=a.stage,
        techniques=tuple(dict.fromkeys((*first.techniques, *second.techniques))),
        first_seen=min(a.first_seen, b.first_seen),
        last_seen=max(a.last_seen, b.last_seen),
        asset_id=first.asset_id or second.asset_id,
        zone=first.zone or second.zone,
        addresses=tuple(sorted({*a.addresses, *b.addresses})),
        accounts=tuple(sorted({*a.accounts, *b.accounts})),
        link_keys=tuple(sorted({*a.link_keys, *b.link_keys})),
        evidence=evidence,
        count=count,
        context=context,
    )


def _union(a: Any, b: Any) -> Any:
    """Operation ids of two merged hits. ``merge_all`` passes a set it owns as ``a`` (one
    update per hit, not a copy: a finding may gather many thousand operations); findings
    carry a sorted list."""
    if isinstance(a, set):
        a.update(b)
        return a
    return sorted({*a, *b})


def merge_all(findings: Iterable[Finding]) -> list[Finding]:
    """Dedup and suppression: hits of one (detection, dedup key) merge while each starts
    within the suppression window (default: the correlation gap) of the previous one.

    Works on partly merged input too, so batches can be merged early and again later with
    the same result as merging everything at once.
    """
    out: list[Finding] = []
    open_: dict[tuple[str, str], Finding] = {}
    for f in sorted(findings, key=lambda f: (f.first_seen, f.finding_id)):
        key = (f.detection_id, f.context["dedup"])
        cur = open_.get(key)
        if cur is not None and _seconds(f.first_seen) - _seconds(cur.last_seen) <= f.context["window"]:
            if "ops" in cur.context and not isinstance(cur.context["ops"], set):
                cur = dataclasses.replace(cur, context={**cur.context, "ops": set(cur.context["ops"])})
            open_[key] = merge(cur, f)
            continue
        if cur is not None:
            out.append(_sealed(cur))
        open_[key] = f
    out.extend(_sealed(f) for f in open_.values())
    return sorted(out, key=lambda f: (f.first_seen, f.finding_id))


def _sealed(f: Finding) -> Finding:
    """A finding leaving ``merge_all``: its operation ids as a sorted list again."""
    if isinstance(f.context.get("ops"), set):
        return dataclasses.replace(f, context={**f.context, "ops": sorted(f.context["ops"])})
    return f


def _seconds(ts: str) -> float:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


CANDIDATES = "candidates"

_SHARED: dict[str, Detector] = {}
_SHARED_LOCK = threading.Lock()


def shared_detector(cfg: Config, token: str | None) -> Detector:
    """The ``Detector`` of one pipeline's detect stage, built once per worker process and
    shared by its DoFns (building one runs every detection's ``prepare``: threat intel,
    Sigma rules). ``token`` names the pipeline's ``DetectFindings``; None: a Detector of its own."""
    if token is None:
        return Detector(cfg)
    with _SHARED_LOCK:
        found = _SHARED.get(token)
        if found is None:
            if len(_SHARED) >= 4:  # a long-lived process (tests) builds many pipelines
                _SHARED.pop(next(iter(_SHARED)))
            found = _SHARED[token] = Detector(cfg)
        return found


class _UsesDetector:
    """The detect stage's DoFns: the worker's shared ``Detector`` (``shared_detector``),
    fetched with the first element, not in ``setup``: by then the parse step's threads are
    reading the next blocks, so the detections' preparing (threat intel, Sigma rules)
    overlaps them instead of delaying the start of the run. (A method, not a property:
    Beam reads every attribute of a DoFn when the graph is built.)"""

    cfg: Config
    token: str | None
    _detector: Detector | None = None

    def detector(self) -> Detector:
        if self._detector is None:
            self._detector = shared_detector(self.cfg, self.token)
        return self._detector


class _DetectFn(_UsesDetector, beam.DoFn):
    """Enrich a batch, run the detections, emit findings timestamped by event time and the
    stateful detections' keyed candidates on the ``candidates`` output."""

    def __init__(self, cfg: Config, token: str | None = None):
        self.cfg = cfg
        self.token = token

    def setup(self) -> None:
        from transforms.enrich import Enricher

        self.enrich = Enricher(self.cfg)

    def process(self, table: pa.Table) -> Iterator[Any]:
        findings, keyed = self.detector().scan(self.enrich(table))
        for f in findings:
            yield beam.window.TimestampedValue(f, Timestamp.of(_seconds(f.last_seen)))
        for k, event in keyed:
            yield beam.pvalue.TaggedOutput(
                CANDIDATES, beam.window.TimestampedValue((k, event), Timestamp.of(event["time"].timestamp()))
            )


#: Beam keys per stateful detection. Candidates are few (only ``where:`` hits), so one
#: Beam key (one state cell, one commit per timer round) per detection holds all its
#: logical keys; raise this to spread a detection with very many keys over workers.
STATE_SHARDS = 1


#: The logical-key prefix of the per-batch clock candidates (one per shard) that tell a
#: detection's state how far the input reaches (``KeyState.horizon``).
CLOCK = "\x00clock"


def _beam_key(state_key: str) -> str:
    det_id, key = state_key.split("\x1f", 1)
    if key.startswith(CLOCK):
        return f"{det_id}\x1f{int(key[len(CLOCK):])}"
    return f"{det_id}\x1f{zlib.crc32(key.encode()) % STATE_SHARDS}"


@dataclass
class _Pending:
    """One Beam key's state, in one cell (one read and one commit per bundle): candidates
    waiting for the watermark as (logical key, event), the flush timer's time, and each
    logical key's ``KeyState``."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    flush_at: float = float("inf")
    keys: dict[str, KeyState] = field(default_factory=dict)
    seen: float | None = None  # latest input event time (clock candidates)


class _StatefulFn(_UsesDetector, beam.DoFn):
    """Keyed by detection (and shard): pending candidates wait until the watermark passes
    their event time, then go to the detection per logical key in event-time order; each
    logical key's ``KeyState`` (data + its own timer) is kept between firings."""

    STATE = ReadModifyWriteStateSpec("state", PickleCoder())
    FLUSH = TimerSpec("flush", TimeDomain.WATERMARK)

    def __init__(self, cfg: Config, token: str | None = None):
        self.cfg = cfg
        self.token = token

    def process(
        self,
        element: tuple[str, tuple[str, dict[str, Any]]],
        state: Any = beam.DoFn.StateParam(STATE),
        flush: Any = beam.DoFn.TimerParam(FLUSH),
    ) -> Iterator[Any]:
        _, (state_key, event) = element
        st: _Pending = state.read() or _Pending()
        t = event["time"].timestamp()
        if event.get(CLOCK):
            before = st.seen if st.seen is not None else float("-inf")
            st.seen = max(before, t)
            # Timers that waited for the input to reach them can fire now.
            waiting = [ks.timer for ks in st.keys.values() if ks.timer is not None and before < ks.timer <= t]
            if waiting and min(waiting) < st.flush_at:
                st.flush_at = min(waiting)
                flush.set(ms_ceil(st.flush_at))
            state.write(st)
            return iter(())
        st.events.append((state_key, event))
        # Only an earlier event moves the flush timer, so a busy key's flush is never
        # postponed by newer events.
        if t < st.flush_at:
            st.flush_at = t
            flush.set(ms_ceil(t))
        state.write(st)
        return iter(())

    @on_timer(FLUSH)
    def on_flush(
        self,
        fire_ts: Any = beam.DoFn.TimestampParam,
        state: Any = beam.DoFn.StateParam(STATE),
        flush: Any = beam.DoFn.TimerParam(FLUSH),
    ) -> Iterator[Any]:
        until = fire_ts.micros / 1e6
        st: _Pending = state.read() or _Pending()
        ready: dict[str, list[dict[str, Any]]] = {}
        rest = []
        for k, e in st.events:
            if e["time"].timestamp() <= until:
                ready.setdefault(k, []).append(e)
            else:
                rest.append((k, e))
        st.events = rest
        found: list[Finding] = []
        due = [k for k, ks in st.keys.items() if ks.timer is not None and ks.timer <= until]
        for k in sorted(set(ready) | set(due)):
            ks = st.keys.setdefault(k, KeyState())
            found += self.detector().advance(k, ks, ready.get(k, []), until, st.seen)
            if not ks.data and ks.timer is None:
                del st.keys[k]  # nothing left to remember
        # Next flush: when the watermark passes the *latest* pending event, so a batch run
        # needs two or three timer rounds, not one per distinct event time (events arriving
        # meanwhile with earlier times pull the timer back, see ``process``). Detection
        # timers fire in order inside ``advance``; they need a flush of their own only when
        # nothing is pending.
        waits = bool(st.keys) and self.detector().needs_horizon(next(iter(st.keys)))
        covered = (st.seen if st.seen is not None else float("-inf")) if waits else None
        timers = [ks.timer for ks in st.keys.values() if ks.timer is not None and (covered is None or ks.timer <= covered)]
        nxt = max(e["time"].timestamp() for _, e in rest) if rest else min(timers, default=None)
        st.flush_at = float("inf")
        if nxt is not None:
            st.flush_at = max(nxt, until)
            flush.set(ms_ceil(st.flush_at))
        state.write(st)
        for f in found:
            # Stamped with the firing time: never behind this stage's watermark hold.
            yield beam.window.TimestampedValue(f, fire_ts)


def ms_ceil(seconds: float) -> Timestamp:
    """Runners keep timers in milliseconds; round up so a timer never fires before its
    events are due (rounding down would re-arm it at the same instant forever)."""
    micros = round(seconds * 1_000_000)
    return Timestamp(micros=-(-micros // 1000) * 1000)


class DetectFindings(beam.PTransform):
    """Event batches → findings (only hits leave this stage; stateful detections' candidate
    rows go through a keyed stateful stage first)."""

    def __init__(self, cfg: Config, stateful_fn: beam.DoFn | None = None):
        super().__init__()
        self.cfg = cfg
        # Streaming passes its own stateful stage (transforms/stream_detect.py).
        self.stateful_fn = stateful_fn
        self.token = uuid.uuid4().hex  # this pipeline's DoFns share one Detector per worker

    def expand(self, batches: beam.PCollection) -> beam.PCollection:
        out = batches | "Enrich and detect" >> beam.ParDo(_DetectFn(self.cfg, self.token)).with_outputs(
            CANDIDATES, main="findings"
        )
        stateful = (
            out[CANDIDATES]
            | "Key stateful candidates"
            >> beam.Map(lambda kv: (_beam_key(kv[0]), kv)).with_output_types(tuple[str, Any])
            | "Stateful detections" >> beam.ParDo(self.stateful_fn or _StatefulFn(self.cfg, self.token))
        )
        return (out.findings, stateful) | "All findings" >> beam.Flatten()
