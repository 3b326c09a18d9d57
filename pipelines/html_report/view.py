"""What a report shows, as plain values: built from a run's outputs, redacted per profile.

The template only lays these values out (and escapes every one of them), so what a sharing
profile's report may hold is decided here, in one place, by the same ``Redactor`` that
rewrites that profile's STIX bundles. A profile's report shows what its bundles show: the
incidents at or above ``export.min_severity`` under their keyed references, titles and texts
rewritten as each incident's bundle rewrites them, addresses, accounts, assets, zones and
evidence pointers as the profile has them, evidence digests as the bundles give them (keyed
in a redacting profile); never a raw record or a field the bundles leave out, and no
per-source record counts or dead letters.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from pipelines.html_report.charts import Chart, time_chart
from pipelines.html_report.evidence import RawRecord, read_back, resolve_ref
from transforms.model import Finding, Incident

if TYPE_CHECKING:
    from pipelines.config import Config, SharingProfile
    from stix_export.redact import Redactor, TextRewriter

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
#: Evidence records shown per finding (the rest are counted).
EVIDENCE_SHOWN = 5
#: Dead-letter groups (source, reason) listed in the summary (the rest are counted).
DEAD_GROUPS_SHOWN = 40


@dataclass(frozen=True)
class EvidenceView:
    time: str
    pointer: str  # "path:line", or a note that the profile withholds it
    digest_kind: str  # "SHA-256"; "HMAC-SHA256" (keyed) in a redacting profile; "" for none
    digest: str  # the record's digest as the profile's bundles give it
    endpoints: str  # "src → dst:port/proto", addresses as the profile shows them
    detail: tuple[tuple[str, str], ...]  # key fields (internal report only)
    raw: str | None  # the raw record (internal report only)
    raw_note: str = ""
    verified: bool = False
    pointer_withheld: bool = False


@dataclass(frozen=True)
class FindingView:
    finding_id: str
    time: str
    last_seen: str
    detection_id: str
    title: str
    stage: str
    severity: int
    count: int
    source: str  # the configured source(s) of its evidence ("" when the profile leaves it out)
    asset: str
    accounts: tuple[str, ...]
    techniques: tuple[str, ...]
    evidence: tuple[EvidenceView, ...]
    more_evidence: int


@dataclass(frozen=True)
class IncidentView:
    anchor: str
    incident_id: str
    title: str
    severity: int
    severity_label: str
    first_seen: str
    last_seen: str
    crane: str
    asset: str
    zone: str
    stages: tuple[str, ...]
    techniques: tuple[tuple[str, str], ...]  # (id, name)
    accounts: tuple[str, ...]
    addresses: tuple[str, ...]
    sources: tuple[str, ...]
    findings: tuple[FindingView, ...]


@dataclass(frozen=True)
class SourceRow:
    name: str
    files: int
    read: int
    parsed: int
    dead_lettered: int


@dataclass(frozen=True)
class DeadGroup:
    source: str
    reason: str
    count: int
    first_location: str
    example: str


@dataclass(frozen=True)
class DetectionRow:
    detection_id: str
    title: str
    findings: int
    hits: int


@dataclass(frozen=True)
class ClockView:
    due_utc: str
    due_local: str
    state: str  # "overdue by 3d 4h" / "due in 5h 2m" when the report was written
    regime: str
    citation: str
    deadline: str
    within: str
    incident_id: str
    incident_title: str
    path: str


def _span(seconds: float) -> str:
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 1440)
    return (f"{days}d " if days else "") + f"{rest // 60}h {rest % 60}m"


def clock_views(cfg: Config, incidents: list[Incident], now: Any = None) -> list[ClockView]:
    """The open mandated-report clocks, most urgent first (pipelines/mandated)."""
    import datetime as dt

    from pipelines.mandated import open_clocks
    from pipelines.mandated.clocks import parse_time

    now = now or dt.datetime.now(dt.timezone.utc)
    out = []
    for c in open_clocks(cfg, incidents):
        left = (parse_time(c.due_utc) - now).total_seconds()
        state = f"due in {_span(left)}" if left > 0 else f"overdue by {_span(left)}"
        out.append(ClockView(short_time(c.due_utc), c.due_local, state, c.regime, c.citation, c.deadline, c.within,
                             c.incident_id, c.incident_title, c.path))
    return out


@dataclass
class ReportView:
    site: str
    terminal: str
    profile: str  # "" for the port's own full report
    tlp: str
    span: tuple[str, str]  # first and last event time among the findings
    totals: dict[str, int]
    wall_seconds: float
    sources: list[SourceRow]
    dead: list[DeadGroup]
    dead_more: int
    detections: list[DetectionRow]
    by_severity: list[tuple[str, int]]
    incidents: list[IncidentView]
    charts: list[Chart] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)  # what this profile leaves out, said once
    clocks: list[ClockView] = field(default_factory=list)  # mandated-report deadlines (full report only)


def short_time(value: str) -> str:
    """``2026-03-02T14:05:07.123456Z`` -> ``2026-03-02 14:05:07Z`` (UTC, to the second)."""
    if not value:
        return ""
    day, _, rest = value.partition("T")
    return f"{day} {rest[:8]}Z" if rest else day


def _technique_name(tid: str) -> str:
    from stix_export import attack

    try:
        return attack.resolve(tid).name
    except LookupError:
        return ""


class _Shown:
    """How one value kind is shown: as is (internal report) or as a profile's bundles show it.

    ``rewriter`` rewrites free texts: the incident's own one (``Redactor.rewriter``, as its
    bundle's texts are rewritten) inside an incident, one for every shown incident in the
    summary; None when the profile redacts nothing."""

    def __init__(self, cfg: Config, full: bool, redactor: Redactor | None = None, rewriter: TextRewriter | None = None):
        self.cfg = cfg
        self.full = full  # the port's own report: raw records, key fields, sources
        self.redactor = redactor
        self.rewriter = rewriter
        self.assets = {a.id: a for a in cfg.inventory.assets}

    def within(self, inc: Incident) -> _Shown:
        """The same, with the text rewrite of ``inc``'s bundle."""
        if self.redactor is None or not self.redactor.active:
            return self
        return _Shown(self.cfg, self.full, self.redactor, self.redactor.rewriter(inc))

    def text(self, value: Any) -> str:
        s = "" if value is None else str(value)
        return self.rewriter.text(s) if self.rewriter is not None else s

    def incident_id(self, inc: Incident) -> str:
        return inc.incident_id if self.redactor is None else self.redactor.incident_ref(inc.incident_id)

    def finding_id(self, inc: Incident, f: Finding) -> str:
        return f.finding_id if self.redactor is None else self.redactor.finding_ref(inc.incident_id, f.finding_id)

    def title(self, inc: Incident) -> str:
        """As the bundle's incident is named: its subject in words, then the text rewrite."""
        return inc.title if self.redactor is None else self.text(self.redactor.incident_title(inc))

    def zone(self, zone: str | None) -> str:
        return (zone if self.redactor is None else self.redactor.zone(zone)) or ""

    def address(self, addr: str) -> str:
        return addr if self.redactor is None else self.redactor.address_text(addr)

    def account(self, acc: str) -> str:
        return acc if self.redactor is None else self.redactor.account(acc)

    def asset(self, asset_id: str | None) -> str:
        if not asset_id:
            return ""
        return asset_id if self.redactor is None else self.redactor.asset_id(asset_id)

    def crane(self, asset_id: str | None) -> str:
        asset = self.assets.get(asset_id or "")
        if asset is None or not asset.crane:
            return ""
        if self.redactor is None:
            return asset.crane
        return self.redactor.crane(asset.crane) or "[crane]"

    def pointer(self, raw_ref: str) -> tuple[str, bool]:
        """(what the evidence pointer shows, whether the profile withholds it): the port's own
        path; in a profile's report the path as its bundles give it (relative to the source
        roots), or a note."""
        if self.redactor is None:
            return raw_ref, False
        from transforms.locations import relative_ref

        shown = self.redactor.evidence_path(relative_ref(raw_ref, self.cfg))
        return (shown, False) if shown is not None else ("location withheld", True)

    def digest(self, sha256: str) -> tuple[str, str]:
        """(kind, value) of an evidence digest as the bundles give it: the plain SHA-256, or in
        a redacting profile the keyed digest (``Redactor.evidence_digest``), or none."""
        if self.redactor is None:
            return "SHA-256", sha256
        if len(sha256) != 64:  # the bundles cite no digest for it
            return "", ""
        ref = self.redactor.evidence_digest(sha256)
        if "hashes" in ref:
            return "SHA-256", ref["hashes"]["SHA-256"]  # type: ignore[index]
        kind, _, value = ref.get("external_id", "").partition(":")
        return (kind.upper(), value) if value else ("", "")


def _endpoints(fields: dict[str, Any], shown: _Shown) -> str:
    src, dst = fields.get("src_ip"), fields.get("dst_ip")
    left = shown.address(str(src)) + (f":{fields['src_port']}" if fields.get("src_port") is not None else "") if src else ""
    right = shown.address(str(dst)) + (f":{fields['dst_port']}" if fields.get("dst_port") is not None else "") if dst else ""
    proto = f" {fields['proto']}" if fields.get("proto") else ""
    if left and right:
        return f"{left} → {right}{proto}"
    return f"from {left}{proto}" if left else (f"to {right}{proto}" if right else "")


_DETAIL_KEYS = ("action", "user", "session_id", "target", "value_old", "value_new", "result", "service", "tunnel_ip")


def _finding_view(inc: Incident, f: Finding, shown: _Shown, raws: dict[tuple[str, str], RawRecord]) -> FindingView:
    evidence = []
    for ev in f.evidence[:EVIDENCE_SHOWN]:
        raw = raws.get((ev.raw_ref, ev.sha256)) if shown.full else None
        detail = tuple((k, str(ev.fields[k])) for k in _DETAIL_KEYS if ev.fields.get(k) not in (None, "")) if shown.full else ()
        pointer, withheld = shown.pointer(ev.raw_ref) if ev.raw_ref else ("no pointer", False)
        digest_kind, digest = shown.digest(ev.sha256)
        evidence.append(EvidenceView(
            time=short_time(ev.time),
            pointer=pointer,
            digest_kind=digest_kind,
            digest=digest,
            endpoints=_endpoints(ev.fields, shown),
            detail=detail,
            raw=raw.text if raw else None,
            raw_note=raw.note if raw else "",
            verified=raw.verified if raw else False,
            pointer_withheld=withheld,
        ))
    sources = sorted({str(ev.fields["source"]) for ev in f.evidence if ev.fields.get("source")})
    return FindingView(
        finding_id=shown.finding_id(inc, f),
        time=short_time(f.first_seen),
        last_seen=short_time(f.last_seen),
        detection_id=f.detection_id,
        title=shown.text(f.title),
        stage=f.stage,
        severity=f.severity,
        count=f.count,
        source=", ".join(sources) if shown.full else "",
        asset=shown.asset(f.asset_id),
        accounts=tuple(shown.account(a) for a in f.accounts),
        techniques=tuple(f.techniques),
        evidence=tuple(evidence),
        more_evidence=max(0, len(f.evidence) - EVIDENCE_SHOWN) + max(0, f.count - len(f.evidence)),
    )


def incident_order(inc: Incident) -> tuple[int, str, str]:
    """Most severe first, earliest first within a severity."""
    return (SEVERITY_ORDER.get(inc.severity_label, 9), inc.first_seen, inc.incident_id)


def _incident_view(inc: Incident, shown: _Shown, raws: dict[tuple[str, str], RawRecord]) -> IncidentView:
    shown = shown.within(inc)
    findings = sorted(inc.findings, key=lambda f: (f.first_seen, f.finding_id))
    primary = inc.primary_asset or next((f.asset_id for f in findings if f.asset_id), None)
    sources = sorted({str(ev.fields["source"]) for f in findings for ev in f.evidence if ev.fields.get("source")})
    incident_id = shown.incident_id(inc)  # as the bundles cite it: a keyed reference when redacted
    return IncidentView(
        anchor="inc-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in incident_id),
        incident_id=incident_id,
        title=shown.title(inc),
        severity=inc.severity,
        severity_label=inc.severity_label,
        first_seen=short_time(inc.first_seen),
        last_seen=short_time(inc.last_seen),
        crane=shown.crane(primary),
        asset=shown.asset(primary),
        zone=shown.zone(inc.zone),
        stages=tuple(inc.stages),
        techniques=tuple((t, _technique_name(t)) for t in dict.fromkeys(
            [*inc.techniques, *(t for f in findings for t in f.techniques)])),
        accounts=tuple(dict.fromkeys(shown.account(a) for a in inc.accounts)),
        addresses=tuple(dict.fromkeys(shown.address(a) for a in inc.addresses)),
        sources=tuple(sources) if shown.full else (),
        findings=tuple(_finding_view(inc, f, shown, raws) for f in findings),
    )


def _dead_groups(dead: list[dict[str, Any]]) -> tuple[list[DeadGroup], int]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for d in dead:
        reason = str(d.get("reason", ""))
        code = d.get("code") or d.get("reason_code")
        groups.setdefault((str(d.get("source", "")), f"{code}: {reason}" if code else reason), []).append(d)
    rows = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    out = [DeadGroup(source, reason, len(rows_), str(rows_[0].get("location", "")), str(rows_[0].get("raw", ""))[:500])
           for (source, reason), rows_ in rows[:DEAD_GROUPS_SHOWN]]
    return out, sum(len(r) for _, r in rows[DEAD_GROUPS_SHOWN:])


def _detection_rows(incidents: Iterable[Incident], shown: _Shown) -> list[DetectionRow]:
    from detections.registry import load_registry

    titles = {k: d.meta.title for k, d in load_registry().items()}
    findings: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    for inc in incidents:
        for f in inc.findings:
            findings[f.detection_id] += 1
            hits[f.detection_id] += f.count
    return [DetectionRow(d, shown.text(titles.get(d, "")), n, hits[d]) for d, n in sorted(findings.items(), key=lambda kv: (-kv[1], kv[0]))]


def build_view(cfg: Config, summary: dict[str, Any], incidents: list[Incident], dead: list[dict[str, Any]],
               profile: SharingProfile | None = None, redactor: Redactor | None = None, now: Any = None) -> ReportView:
    """The report of one run: the port's full report (no ``profile``), or one sharing profile's."""
    full = profile is None
    rewriter = None
    if not full:  # what the profile's bundles hold: incidents at or above min_severity
        incidents = [i for i in incidents if i.severity >= cfg.export.min_severity]
        if redactor is None:
            from stix_export.redact import Redactor

            redactor = Redactor(profile, cfg, None)  # fails closed when its rules need the secret
        if redactor.active:
            rewriter = redactor.rewriter_for(incidents)
    shown = _Shown(cfg, full, None if full else redactor, rewriter)
    incidents = sorted(incidents, key=incident_order)
    raws: dict[tuple[str, str], RawRecord] = {}
    if full:  # pointers are stored relative to the source roots: read from where they are now
        from transforms.locations import source_roots

        roots = source_roots(cfg)
        wanted = {(ev.raw_ref, ev.sha256): (resolve_ref(ev.raw_ref, roots), ev.sha256) for i in incidents
                  for f in i.findings for ev in f.evidence[:EVIDENCE_SHOWN] if ev.raw_ref}
        found = read_back(wanted.values())
        raws = {key: found[at] for key, at in wanted.items()}
    views = [_incident_view(i, shown, raws) for i in incidents]
    all_findings = [f for i in incidents for f in i.findings]
    times = sorted(t for f in all_findings for t in (f.first_seen, f.last_seen))
    sev = Counter(i.severity_label for i in incidents)
    dead_rows, dead_more = _dead_groups(dead) if full else ([], 0)
    totals = dict(summary.get("totals", {})) if full else {}
    charts = [
        time_chart("Findings over time per detection", [(f.detection_id, f.first_seen) for f in all_findings]),
        time_chart("Findings over time per crane", [(shown.crane(f.asset_id) or "no crane", f.first_seen) for f in all_findings]),
    ]
    view = ReportView(
        site=cfg.site.name,
        terminal=shown.text(cfg.site.terminal),
        profile="" if full else profile.name,
        tlp=(profile or cfg.export.effective_profiles()[0]).tlp,
        span=(short_time(times[0]), short_time(times[-1])) if times else ("", ""),
        totals={k: int(v) for k, v in totals.items() if isinstance(v, (int, float))},
        wall_seconds=float(summary.get("wall_seconds", 0.0)) if full else 0.0,
        sources=[SourceRow(n, int(s.get("files", 0)), int(s.get("read", 0)), int(s.get("parsed", 0)), int(s.get("dead_lettered", 0)))
                 for n, s in summary.get("sources", {}).items()] if full else [],
        dead=dead_rows,
        dead_more=dead_more,
        detections=_detection_rows(incidents, shown),
        by_severity=sorted(sev.items(), key=lambda kv: SEVERITY_ORDER.get(kv[0], 9)),
        incidents=views,
        charts=[c for c in charts if c.rows],
        clocks=clock_views(cfg, incidents, now) if full else [],
    )
    if not full:
        view.withheld = _withheld(profile, redactor)
        if redactor.active:
            _refuse_leaks(view, incidents, redactor, rewriter)
    return view


def _withheld(profile: SharingProfile, redactor: Redactor) -> list[str]:
    rules = profile.redaction
    out = ["raw records and their fields", "records per source and dead letters"]
    if redactor.active:
        out.append("incident and finding ids (shown as keyed references)")
        keyed = bool(redactor.evidence_digest("0" * 64))  # without the export secret: no digest at all
        out.append("evidence hashes (shown as keyed digests)" if keyed else "evidence hashes")
    if rules.internal_addresses == "pseudonym":
        out.append("internal addresses (shown as stable pseudonyms in 240.0.0.0/4)")
    elif rules.internal_addresses == "zone":
        out.append("internal addresses (shown by zone)")
    if rules.accounts == "hash":
        out.append("account names (shown as keyed hashes)")
    if rules.assets == "asset_kind":
        out.append("asset and crane ids (shown as asset kinds), and zone names that name them")
    if rules.evidence_paths == "drop":
        out.append("evidence file locations")
    return out


#: Times, as the report formats them from the findings: no incident text.
_TIMES = {"time", "last_seen", "first_seen", "span"}
#: Fixed texts a bundle holds in the objects shared by all of a producer's bundles (ATT&CK
#: technique names, the site name), scanned as the bundle's scan scans those: for addresses.
_SHARED = {"techniques": "attack-pattern", "site": "identity"}
#: The part of a report each view holds, as a leak is reported (never the value).
_PARTS = {"ReportView": "report summary", "IncidentView": "incident", "FindingView": "finding",
          "EvidenceView": "evidence", "Chart": "chart", "ChartRow": "chart", "Bar": "chart"}


def _scan_objects(value: Any) -> list[dict[str, Any]]:
    """The strings of a view as objects for ``stix_export.redact.leaks``: one per part of the
    page (``type`` names it), fixed shared texts apart; ``withheld`` (the fixed list above,
    built from the profile's rules alone) and times are left out."""
    objects: list[dict[str, Any]] = []

    def walk(v: Any, texts: list[str]) -> None:
        if dataclasses.is_dataclass(v):
            own: list[str] = []
            objects.append({"type": _PARTS.get(type(v).__name__, "report"), "texts": own})
            for f in dataclasses.fields(v):
                if f.name in _TIMES or f.name == "withheld":
                    continue
                if f.name in _SHARED:
                    shared: list[str] = []
                    objects.append({"type": _SHARED[f.name], "texts": shared})
                    walk(getattr(v, f.name), shared)
                else:
                    walk(getattr(v, f.name), own)
        elif isinstance(v, dict):
            for k, x in v.items():
                texts.append(str(k))
                walk(x, texts)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x, texts)
        elif isinstance(v, str):
            texts.append(v)

    walk(value, [])
    return [o for o in objects if o["texts"]]


def _refuse_leaks(view: ReportView, incidents: list[Incident], redactor: Redactor, rewriter: TextRewriter | None) -> None:
    """The bundle writer's last scan, over the report: each incident's part with that
    incident's rewriter, the rest with the one for every shown incident. A hit raises
    ``RedactionError`` (kinds and parts, never the value) and the report is not written."""
    from stix_export.redact import RedactionError, leak_kinds, leaks

    by_id = {redactor.incident_ref(i.incident_id): i for i in incidents}
    summary = dataclasses.replace(view, incidents=[])
    checks = [(None, rewriter or redactor.rewriter_for(incidents), _scan_objects(summary))]
    checks += [(by_id[iv.incident_id], redactor.rewriter(by_id[iv.incident_id]), _scan_objects(iv)) for iv in view.incidents]
    for inc, scan, objects in checks:
        found = leaks(redactor, scan, objects)
        if found:
            names = redactor.sensitive_names(inc)
            for other in incidents if inc is None else ():
                names.update(redactor.sensitive_names(other))
            raise RedactionError(redactor.profile.name, inc.incident_id if inc is not None else "",
                                 leak_kinds(redactor, names, found), sorted(found), output="HTML report")
