"""Detection: run every enabled detection over an enriched batch, emit only hits.

The ``where:`` block of each detection is evaluated on the whole Arrow batch; only the rows
it keeps become Python dicts for the detection's ``rule``. Hits with the same
(detection, dedup key) in one batch are merged at once, so the data leaving this stage is
small whatever the input volume.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, Iterable, Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.utils.timestamp import Timestamp

from detections.api import Detection, DetectionContext, Entities, Inventory, where_mask
from detections.registry import load_registry
from pipelines.config import Config, DetectionSettings
from transforms.model import Evidence, Finding, sha256_text

MAX_EVIDENCE = 5  # raw records cited per finding; the count says how many hits there were


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stable_id(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]


class Detector:
    """Holds the enabled detections with their resolved parameters for one config."""

    def __init__(self, cfg: Config, registry: dict[str, Detection] | None = None):
        registry = registry if registry is not None else load_registry()
        inventory = Inventory(cfg)
        self.active: list[tuple[Detection, DetectionContext]] = []
        for det_id in sorted(registry):
            det = registry[det_id]
            settings = cfg.detections.get(det_id, DetectionSettings())
            if not settings.enabled:
                continue
            params = {**det.meta.params, **settings.params}
            self.active.append((det, DetectionContext(cfg, inventory, params, settings)))

    def detect(self, table: pa.Table) -> list[Finding]:
        """All findings in one batch, merged per (detection, dedup key)."""
        if table.num_rows == 0:
            return []
        hits: list[Finding] = []
        for det, ctx in self.active:
            kinds_mask = pc.is_in(table.column("kind"), value_set=pa.array(det.meta.kinds))
            mask = pc.and_(pc.fill_null(kinds_mask, False), where_mask(table, det.meta.where))
            candidates = table.filter(mask)
            if candidates.num_rows == 0:
                continue
            for event in candidates.to_pylist():
                if isinstance(event.get("attrs"), list):
                    event["attrs"] = dict(event["attrs"])
                finding = hit(det, ctx, event)
                if finding is not None:
                    hits.append(finding)
        return merge_all(hits)


def hit(det: Detection, ctx: DetectionContext, event: dict[str, Any]) -> Finding | None:
    """Apply one detection to one candidate event; a Finding (count 1) or None."""
    rule = det.fn("rule")
    if rule is not None and not rule(event, ctx):
        return None
    if ctx.allowlisted(event):
        return None
    ents: Entities = det.fn("entities")(event, ctx) if det.fn("entities") else Entities(
        event.get("asset_id"),
        tuple(a for a in (event.get("src_ip"), event.get("dst_ip")) if a),
        (event["user"],) if event.get("user") else (),
        (f"asset:{event['asset_id']}",) if event.get("asset_id") else (),
    )
    dedup = det.fn("dedup")(event, ctx) if det.fn("dedup") else event.get("raw_ref") or ""
    title = det.fn("title")(event, ctx) if det.fn("title") else det.meta.title
    extra = det.fn("context")(event, ctx) if det.fn("context") else {}
    when = rfc3339(event["time"])
    evidence = Evidence(
        raw_ref=event.get("raw_ref") or "",
        sha256=sha256_text(event.get("raw")),
        time=when,
        fields=_key_fields(event, extra),
    )
    severity = ctx.settings.severity if ctx.settings.severity is not None else det.meta.severity
    return Finding(
        finding_id=stable_id(det.meta.id, dedup, when),
        detection_id=det.meta.id,
        title=title,
        severity=severity,
        confidence=det.meta.confidence,
        stage=det.meta.stage,
        techniques=det.meta.techniques,
        first_seen=when,
        last_seen=when,
        asset_id=ents.asset_id,
        zone=ctx.inventory.asset(ents.asset_id).zone if ctx.inventory.asset(ents.asset_id) else None,
        addresses=tuple(sorted(set(ents.addresses))),
        accounts=tuple(sorted(set(ents.accounts))),
        link_keys=tuple(sorted(set(ents.link_keys))),
        evidence=(evidence,),
        count=1,
        context={"dedup": dedup, "window": ctx.settings.suppression or ctx.cfg.correlation.gap},
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
    return Finding(
        finding_id=first.finding_id,
        detection_id=a.detection_id,
        title=first.title,
        severity=max(a.severity, b.severity),
        confidence=max(a.confidence, b.confidence),
        stage=a.stage,
        techniques=a.techniques,
        first_seen=min(a.first_seen, b.first_seen),
        last_seen=max(a.last_seen, b.last_seen),
        asset_id=first.asset_id or second.asset_id,
        zone=first.zone or second.zone,
        addresses=tuple(sorted({*a.addresses, *b.addresses})),
        accounts=tuple(sorted({*a.accounts, *b.accounts})),
        link_keys=tuple(sorted({*a.link_keys, *b.link_keys})),
        evidence=evidence,
        count=a.count + b.count,
        context={**second.context, **first.context},
    )


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
            open_[key] = merge(cur, f)
            continue
        if cur is not None:
            out.append(cur)
        open_[key] = f
    out.extend(open_.values())
    return sorted(out, key=lambda f: (f.first_seen, f.finding_id))


def _seconds(ts: str) -> float:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


class _DetectFn(beam.DoFn):
    """Enrich a batch, run the detections, emit findings timestamped by event time."""

    def __init__(self, cfg: Config):
        self.cfg = cfg

    def setup(self) -> None:
        from transforms.enrich import Enricher

        self.enrich = Enricher(self.cfg)
        self.detector = Detector(self.cfg)

    def process(self, table: pa.Table) -> Iterator[Any]:
        for f in self.detector.detect(self.enrich(table)):
            yield beam.window.TimestampedValue(f, Timestamp.of(_seconds(f.last_seen)))


class DetectFindings(beam.PTransform):
    """Event batches → findings (only hits leave this stage)."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg

    def expand(self, batches: beam.PCollection) -> beam.PCollection:
        return batches | "Enrich and detect" >> beam.ParDo(_DetectFn(self.cfg))
