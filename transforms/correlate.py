"""Correlation: findings that share an entity and are close in event time become one incident.

Findings link when they share a link key (an asset id, the tunnel address of a VPN session
and the source address of the writes it made, an account) and the later one starts within
``gap`` of the earlier one's last sighting. That is how "vendor VPN login, then Modbus
writes from the tunnel address to a crane PLC" becomes one incident on that crane.

The grouping logic is a plain function (``correlate``) tested without Beam; the Beam side
(``CorrelateIncidents``) buffers findings in keyed state and closes incidents with an
event-time timer once the watermark passes the last finding + gap. Batch and streaming run
the same code: in batch the watermark jumps to the end of input and every incident closes.

Findings are few (only hits leave detection), so the state is keyed by site: one key per
deployment holds every open finding and linking across keys never has to be shuffled.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from typing import Any, Iterable, Iterator, Optional

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    ReadModifyWriteStateSpec,
    TimerSpec,
    on_timer,
)
from apache_beam.utils.timestamp import MIN_TIMESTAMP, Timestamp

from transforms.chains import chain_severity
from transforms.detect import _seconds, merge_all, ms_ceil, stable_id
from transforms.model import Finding, Incident, severity_label
from transforms.state_guard import Cell, Guard, new_stage_id

STAGE_ORDER = {"recon": 0, "access": 1, "c2": 2, "command": 3, "impact": 4, "exfiltration": 5, "other": 6}
CHAIN = ("access", "command", "impact")


def correlate(findings: Iterable[Finding], gap: float) -> list[Incident]:
    """Group (deduplicated) findings into incidents; deterministic for the same input."""
    merged = merge_all(findings)
    parent = list(range(len(merged)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # Per link key: a finding of the key's current chain and the chain's latest time.
    chain_by_key: dict[str, tuple[int, float]] = {}
    for i, f in enumerate(merged):  # sorted by first_seen
        start, end = _seconds(f.first_seen), _seconds(f.last_seen)
        for key in f.link_keys:
            prev = chain_by_key.get(key)
            if prev is not None and start - prev[1] <= gap:
                parent[find(i)] = find(prev[0])
                chain_by_key[key] = (i, max(end, prev[1]))
            else:
                chain_by_key[key] = (i, end)
    groups: dict[int, list[Finding]] = {}
    for i, f in enumerate(merged):
        groups.setdefault(find(i), []).append(f)
    incidents = [build_incident(g) for g in groups.values()]
    return sorted(incidents, key=lambda x: (x.first_seen, x.incident_id))


def build_incident(members: list[Finding]) -> Incident:
    members = sorted(members, key=lambda f: (f.first_seen, f.finding_id))
    stages = tuple(sorted({f.stage for f in members}, key=STAGE_ORDER.__getitem__))
    severity, order = chain_severity(members, stages)  # ordered, linked stages raise it
    assets = tuple(sorted({f.asset_id for f in members if f.asset_id}))
    counts = Counter(f.asset_id for f in members if f.asset_id)
    primary = sorted(counts, key=lambda a: (-counts[a], a))[0] if counts else None
    zone = next((f.zone for f in members if f.asset_id == primary and f.zone), None)
    techniques = tuple(dict.fromkeys(t for f in members for t in f.techniques))
    accounts = tuple(sorted({a for f in members for a in f.accounts}))
    subject = primary or (accounts[0] if accounts else members[0].addresses[0] if members[0].addresses else "unknown")
    label = severity_label(severity)
    return Incident(
        incident_id=stable_id("incident", members[0].finding_id),
        title=f"{label.capitalize()}: {order} on {subject}",
        severity=severity,
        severity_label=label,
        stages=stages,
        techniques=techniques,
        first_seen=members[0].first_seen,
        last_seen=max(f.last_seen for f in members),
        assets=assets,
        primary_asset=primary,
        zone=zone,
        addresses=tuple(sorted({a for f in members for a in f.addresses})),
        accounts=accounts,
        findings=tuple(members),
        modified=max(f.last_seen for f in members),
    )


def _ts(rfc3339: str) -> Timestamp:
    return Timestamp.of(_seconds(rfc3339))


def _close_time(latest_seconds: float, gap: float) -> Timestamp:
    """When to close: latest finding + gap, rounded up to the runner's millisecond timers."""
    return ms_ceil(latest_seconds + gap)


LATE = "late"  # tagged output: findings too late to revise any incident
INCIDENTS = "incidents"
EARLY = "early"  # streaming: versions of incidents still open (early alerts)
WITHDRAWN = "withdrawn"  # streaming: ids of early versions superseded by another id


def _digest(incident: Incident) -> tuple[Any, ...]:
    """When an open incident is alerted again: a member finding joined (not every further hit
    of a member, which would rewrite its bundles for each beacon; the final version counts
    them all)."""
    return tuple(f.finding_id for f in incident.findings)


def _revise(emitted: Incident, finding: Finding) -> Incident:
    """The emitted incident with ``finding`` added: same id, a strictly later ``modified``."""
    members = merge_all([*emitted.findings, finding])  # a later part of a member merges into it
    revised = build_incident(members)
    modified = max(_seconds(revised.modified), _seconds(finding.last_seen))
    if modified <= _seconds(emitted.modified):
        modified = _seconds(emitted.modified) + 1e-6  # a new version must be newer (STIX)
    return dataclasses.replace(revised, incident_id=emitted.incident_id, modified=_rfc3339(modified))


def _rfc3339(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _CorrelateFn(beam.DoFn):
    """Keyed state: buffered findings; a timer at the earliest (last finding + gap) of the open
    incidents closes those the watermark has passed.

    Emitted incidents stay in state until the watermark passes their last finding + gap +
    ``allowed_lateness`` (the GC timer): a late finding that links to one re-emits it with
    the same id and a later ``modified``; a finding older than that goes to ``LATE``.
    """

    # Single cells (whole lists), not bags: a bag cleared and appended to within one bundle
    # lost appends on Prism (the open findings of one incident were split in two).
    FINDINGS = ReadModifyWriteStateSpec("findings", PickleCoder())  # open findings
    CLOSE_AT = ReadModifyWriteStateSpec("close_at", PickleCoder())  # the close timer's time
    EARLY_SENT = ReadModifyWriteStateSpec("early_sent", PickleCoder())  # open id -> digest
    EMITTED = ReadModifyWriteStateSpec("emitted", PickleCoder())  # emitted incidents, until GC
    WATERMARK = ReadModifyWriteStateSpec("watermark", PickleCoder())  # latest fired timer, s
    VERSION = ReadModifyWriteStateSpec("version", PickleCoder())  # transforms/state_guard.py
    CLOSE = TimerSpec("close", TimeDomain.WATERMARK)
    GC = TimerSpec("gc", TimeDomain.WATERMARK)

    def __init__(self, gap: float, allowed_lateness: float = 0.0, early: bool = False, close_slack: float = 0.0,
                 whole_input: bool = False, prior_early: tuple[tuple[str, str], ...] = ()):
        self.gap = gap
        self.allowed_lateness = allowed_lateness
        self.early = early
        self.close_slack = close_slack
        self.whole_input = whole_input
        self.prior_early = prior_early  # (id, last seen) of open versions an earlier run wrote
        self.stage_id = new_stage_id()  # see transforms/state_guard.py

    def _closes_at(self, last_seen: str) -> Timestamp:
        return _close_time(_seconds(last_seen) + self.close_slack, self.gap)

    def _expiry(self, last_seen: str) -> float:
        return _seconds(last_seen) + self.gap + self.allowed_lateness

    def _keep(self, emitted: Any, gc: Any, incidents: list[Incident]) -> None:
        """Replace the kept emitted incidents and arm the GC timer for the first to expire."""
        emitted.write(list(incidents))
        if incidents:
            gc.set(ms_ceil(min(self._expiry(i.last_seen) for i in incidents)))

    def process(
        self,
        element: tuple[str, Finding],
        findings: Any = beam.DoFn.StateParam(FINDINGS),
        close_at: Any = beam.DoFn.StateParam(CLOSE_AT),
        early_sent: Any = beam.DoFn.StateParam(EARLY_SENT),
        emitted: Any = beam.DoFn.StateParam(EMITTED),
        watermark: Any = beam.DoFn.StateParam(WATERMARK),
        version: Any = beam.DoFn.StateParam(VERSION),
        close: Any = beam.DoFn.TimerParam(CLOSE),
        gc: Any = beam.DoFn.TimerParam(GC),
    ) -> Iterator[Any]:
        key, finding = element
        guard, (findings, close_at, early_sent, emitted, watermark) = self._guard(
            key, version, findings, close_at, early_sent, emitted, watermark)
        with guard:  # outputs are collected and leave after the key's state is settled
            out = list(self._on_finding(finding, findings, close_at, early_sent, emitted, watermark, close, gc))
        yield from out

    def _on_finding(self, finding: Finding, findings: Any, close_at: Any, early_sent: Any, emitted: Any,
                    watermark: Any, close: Any, gc: Any) -> Iterator[Any]:
        kept = list(emitted.read() or [])
        buffered: list[Finding] = list(findings.read() or [])
        if kept and self._joins_open(buffered, finding):
            kept = []  # it belongs with findings still open: those decide, as in batch
        for n, incident in enumerate(kept):
            if len(correlate([*incident.findings, finding], self.gap)) == 1:
                kept[n] = revised = _revise(incident, finding)
                self._keep(emitted, gc, kept)
                yield revised
                return
        # ``watermark`` is the latest timer that fired: the watermark is at least there.
        known = watermark.read()
        if known and ms_ceil(self._expiry(finding.last_seen)) <= Timestamp.of(known):
            yield beam.pvalue.TaggedOutput(LATE, finding)
            return
        buffered.append(finding)
        findings.write(buffered)
        # The timer is at the earliest close among open incidents, so one quiet incident
        # closes while others on the same key are still growing. With the whole input in
        # before the watermark moves (batch), it is at the latest: one firing closes every
        # incident, where the earliest would take a runner round (a bundle) per incident.
        at = self._closes_at(finding.last_seen)
        current = close_at.read()
        if current is None or (at > current if self.whole_input else at < current):
            close_at.write(at)
            close.set(at)
        if self.early:
            yield from self._early(correlate(buffered, self.gap), {}, early_sent, None)

    def _guard(self, key: Any, version: Any, *cells: Any) -> tuple[Guard, list[Cell]]:
        guard = Guard(version, self.stage_id, key)
        names = ("findings", "close_at", "early_sent", "emitted", "watermark")
        return guard, [guard.bind(n, c) for c, n in zip(cells, names)]

    def _joins_open(self, buffered: list[Finding], finding: Finding) -> bool:
        """Whether ``finding`` merges into or links with the open (buffered) findings: then it
        joins them rather than revising an emitted incident it may also touch."""
        return bool(buffered) and len(correlate([*buffered, finding], self.gap)) <= len(correlate(buffered, self.gap))

    def _early(self, still_open: list[Incident], closed: dict[str, Incident], early_sent: Any,
               fired: Any) -> Iterator[Any]:
        """Early alerts: a version of each open incident whose members changed, and the
        withdrawal of an early id that no open or closed incident carries any more (an
        earlier finding arrived and the incident's id, taken from its first finding, moved).

        After a restart the state starts empty, but the open versions the earlier run wrote
        are on disk. Each is kept as sent (``prior_early``) until a close firing at ``fired``
        reaches its close time: its findings have been replayed by then, so if no open or
        closed incident carries its id any more, the id moved while the job was down (a
        finding of another partition or source joined) and the version is withdrawn."""
        sent: Optional[dict[str, Any]] = early_sent.read()
        if sent is None:  # the key's first use in this run
            sent = {iid: ("prior", float(self._closes_at(last))) for iid, last in self.prior_early}
        now: dict[str, Any] = {}
        for incident in still_open:
            now[incident.incident_id] = digest = _digest(incident)
            if sent.get(incident.incident_id) != digest:
                yield beam.pvalue.TaggedOutput(EARLY, incident)
        for incident_id in sorted(set(sent) - set(now) - set(closed)):
            mark = sent[incident_id]
            if isinstance(mark, tuple) and mark[:1] == ("prior",) and (fired is None or float(fired) < mark[1]):
                now[incident_id] = mark  # an earlier run's version whose findings may still come
                continue
            # From a timer: stamped with its time, as the incidents it closes (never late).
            withdrawn = incident_id if fired is None else beam.window.TimestampedValue(incident_id, fired)
            yield beam.pvalue.TaggedOutput(WITHDRAWN, withdrawn)
        early_sent.write(now)

    @on_timer(CLOSE)
    def on_close(
        self,
        fire_ts: Any = beam.DoFn.TimestampParam,
        key: Any = beam.DoFn.KeyParam,
        findings: Any = beam.DoFn.StateParam(FINDINGS),
        close_at: Any = beam.DoFn.StateParam(CLOSE_AT),
        early_sent: Any = beam.DoFn.StateParam(EARLY_SENT),
        emitted: Any = beam.DoFn.StateParam(EMITTED),
        watermark: Any = beam.DoFn.StateParam(WATERMARK),
        version: Any = beam.DoFn.StateParam(VERSION),
        close: Any = beam.DoFn.TimerParam(CLOSE),
        gc: Any = beam.DoFn.TimerParam(GC),
    ) -> Iterator[Any]:
        guard, (findings, close_at, early_sent, emitted, watermark) = self._guard(
            key, version, findings, close_at, early_sent, emitted, watermark)
        with guard:
            out = list(self._on_close(fire_ts, findings, close_at, early_sent, emitted, watermark, close, gc))
        yield from out

    def _on_close(self, fire_ts: Any, findings: Any, close_at: Any, early_sent: Any, emitted: Any,
                  watermark: Any, close: Any, gc: Any) -> Iterator[Any]:
        watermark.write(max(float(fire_ts), watermark.read() or 0.0))
        buffered = list(findings.read() or [])
        close_at.clear()
        still_open: list[Incident] = []
        closed: list[Incident] = []
        for incident in correlate(buffered, self.gap):
            if self._closes_at(incident.last_seen) <= fire_ts:
                # Stamped with the closing time: that is when the incident became known,
                # and it stays at or after the timer's watermark hold (never late).
                closed.append(incident)
                yield beam.window.TimestampedValue(incident, fire_ts)
            else:
                still_open.append(incident)
        findings.write([f for incident in still_open for f in incident.findings])
        if still_open:
            at = min(self._closes_at(i.last_seen) for i in still_open)
            close_at.write(at)
            close.set(at)
        if self.early:
            yield from self._early(still_open, {i.incident_id: i for i in closed}, early_sent, fire_ts)
        if closed and not self.whole_input:  # with the whole input in, nothing can revise them
            self._keep(emitted, gc, [*(emitted.read() or []), *closed])

    @on_timer(GC)
    def on_gc(
        self,
        fire_ts: Any = beam.DoFn.TimestampParam,
        key: Any = beam.DoFn.KeyParam,
        emitted: Any = beam.DoFn.StateParam(EMITTED),
        watermark: Any = beam.DoFn.StateParam(WATERMARK),
        version: Any = beam.DoFn.StateParam(VERSION),
        gc: Any = beam.DoFn.TimerParam(GC),
    ) -> Iterator[Any]:
        """Forget incidents the watermark has passed by gap + allowed lateness."""
        with Guard(version, self.stage_id, key) as guard:
            emitted, watermark = guard.bind("emitted", emitted), guard.bind("watermark", watermark)
            watermark.write(max(float(fire_ts), watermark.read() or 0.0))
            self._keep(emitted, gc, [i for i in emitted.read() or [] if ms_ceil(self._expiry(i.last_seen)) > fire_ts])
        return iter(())


def _key(finding: Finding, site: str) -> tuple[str, Finding]:
    return site, finding


def _key_on_arrival(finding: Finding, site: str) -> Any:
    return beam.window.TimestampedValue((site, finding), MIN_TIMESTAMP)


class CorrelateIncidents(beam.PTransform):
    """Findings (timestamped by event time) → ``INCIDENTS`` (closed or revised Incidents)
    and ``LATE`` (findings beyond allowed lateness), as a tagged output tuple."""

    def __init__(self, site: str, gap: float, allowed_lateness: float = 0.0, early: bool = False,
                 close_slack: float = 0.0, whole_input: bool = False, prior_early: tuple[tuple[str, str], ...] = ()):
        super().__init__()
        self.prior_early = prior_early  # streaming restart: open versions on disk (see ``_CorrelateFn._early``)
        self.site = site
        self.gap = gap
        self.allowed_lateness = allowed_lateness
        self.early = early  # also ``EARLY`` versions of open incidents and ``WITHDRAWN`` ids
        # Streaming: how far behind event time findings may leave detection (close that much later).
        self.close_slack = close_slack
        # Batch: every finding arrives before the watermark moves (see ``_CorrelateFn``).
        self.whole_input = whole_input

    def expand(self, findings: beam.PCollection) -> Any:
        if self.early:
            # A portable runner gives a key's elements and timers in event-time order: Prism
            # holds every element of the key stamped after its earliest unfired timer. The
            # close timer sits at the first open incident's last finding + gap, which the
            # watermark reaches only when the slowest source passes it (an hour later with
            # hourly rotation), so a finding stamped by its own time would wait that long
            # for its early alert. Stamped at the start of time it is run on arrival; the
            # function decides by the findings' own times and the fired timers, never by an
            # element's timestamp, and a global window drops nothing for being behind.
            key = _key_on_arrival
        else:
            key = _key
        return (
            findings
            | "Key findings by site"
            >> beam.Map(key, self.site).with_output_types(tuple[str, Any])
            | "Group into incidents"
            >> beam.ParDo(_CorrelateFn(self.gap, self.allowed_lateness, self.early, self.close_slack,
                                      self.whole_input, self.prior_early)).with_outputs(
                *((LATE, EARLY, WITHDRAWN) if self.early else (LATE,)), main=INCIDENTS
            )
        )
