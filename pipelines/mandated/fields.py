"""The facts a draft can hold, each filled only from the incident, its findings and the config.

A filler returns a value or None; None (and every field a regime marks ``analyst``) becomes
``"status": "analyst_required"`` in the draft: the tool never guesses an impact, an action
taken or a contact it was not given. Values pass through the regime's sharing profile.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from pipelines.mandated.clocks import parse_time, stamp
from pipelines.mandated.rule import Reportable
from transforms.model import Incident

if TYPE_CHECKING:
    from pipelines.config import Config, RegimeSettings
    from pipelines.mandated.registry import Regime
    from stix_export.redact import Redactor, TextRewriter

#: Asset kinds that are operational technology (the rest of the inventory is IT).
OT_KINDS = ("crane_plc", "cms", "hmi", "engineering_workstation")
#: Evidence records listed per finding.
EVIDENCE_LISTED = 5


@dataclass
class Context:
    """What a filler may read: the incident, why it is reportable, the config, the profile."""

    cfg: Config
    incident: Incident
    why: Reportable
    regime: Regime
    settings: RegimeSettings
    profile: str
    redactor: Redactor | None = None
    rewriter: TextRewriter | None = None

    @property
    def zone(self) -> str:
        return self.cfg.reporting.facility.timezone

    def time(self, value: str) -> dict[str, str]:
        out = stamp(parse_time(value), self.zone)
        out["utc"] = value  # exactly as the incident has it
        return out

    def text(self, value: Any) -> str:
        s = "" if value is None else str(value)
        return self.rewriter.text(s) if self.rewriter else s

    def address(self, addr: str) -> str:
        return self.redactor.address_text(addr) if self.rewriter else addr

    def account(self, acc: str) -> str:
        return self.redactor.account(acc) if self.rewriter else acc

    def asset(self, asset_id: str) -> str:
        return self.redactor.asset_id(asset_id) if self.rewriter else asset_id

    def crane(self, crane: str | None) -> str | None:
        if not crane:
            return None
        return (self.redactor.crane(crane) or "[crane]") if self.rewriter else crane

    def zone_name(self, zone: str | None) -> str | None:
        """A zone as the profile's bundles show it (a crane-naming zone is generalised)."""
        return self.redactor.zone(zone) if self.rewriter and self.redactor is not None else zone

    def pointer(self, raw_ref: str) -> str | None:
        return self.redactor.evidence_path(raw_ref) if self.rewriter else raw_ref

    def is_internal(self, addr: str) -> bool:
        from stix_export.redact import Redactor
        from pipelines.config import SharingProfile

        r = self.redactor
        if r is None:  # one plain redactor per context, not one per address
            r = self.__dict__.get("_plain")
            if r is None:
                r = self.__dict__["_plain"] = Redactor(SharingProfile(name="internal", tlp="red"), self.cfg, None)
        return r.is_internal(addr)


def _facility(attr: str) -> Callable[[Context], Any]:
    return lambda ctx: getattr(ctx.cfg.reporting.facility, attr) or None


def _point_of_contact(ctx: Context) -> Any:
    fac = ctx.cfg.reporting.facility
    if not fac.cybersecurity_officer and not fac.contact:
        return None
    return {"name": fac.cybersecurity_officer or None, "contact": fac.contact or None}


def _assets(ctx: Context) -> Any:
    inventory = {a.id: a for a in ctx.cfg.inventory.assets}
    out = []
    for aid in ctx.incident.assets:
        a = inventory.get(aid)
        out.append({"asset": ctx.asset(aid), "kind": a.kind if a else None, "zone": ctx.zone_name(a.zone) if a else None,
                    "crane": ctx.crane(a.crane) if a else None, "vendor": a.vendor if a else None})
    return out or None


def _ot_or_it(ctx: Context) -> Any:
    kinds = {a.kind for a in ctx.cfg.inventory.assets if a.id in ctx.incident.assets}
    if not kinds:
        return None
    domains = [d for d, hit in (("OT", kinds & set(OT_KINDS)), ("IT", kinds - set(OT_KINDS))) if hit]
    return {"domains": domains, "asset_kinds": sorted(kinds)}


def _activity(ctx: Context) -> Any:
    return [{"time": ctx.time(f.first_seen), "last_seen": ctx.time(f.last_seen), "stage": f.stage,
             "detection": f.detection_id, "title": ctx.text(f.title), "asset": ctx.asset(f.asset_id) if f.asset_id else None,
             "hits": f.count}
            for f in sorted(ctx.incident.findings, key=lambda f: (f.first_seen, f.finding_id))]


def _impact(ctx: Context) -> Any:
    """What the logs show was changed on the crane side (impact-stage findings): not an
    assessment of the operational impact, which is the analyst's."""
    out = []
    for f in ctx.incident.findings:
        if f.stage != "impact":
            continue
        for ev in f.evidence[:EVIDENCE_LISTED]:
            fields = ev.fields
            out.append({"time": ctx.time(ev.time), "action": ctx.text(fields.get("action")) or None,
                        "target": ctx.text(fields.get("target")) or None,
                        "value_old": ctx.text(fields.get("value_old")) or None,
                        "value_new": ctx.text(fields.get("value_new")) or None,
                        "result": ctx.text(fields.get("result")) or None})
    return out or None


def _addresses(internal: bool) -> Callable[[Context], Any]:
    def fill(ctx: Context) -> Any:
        addrs = [a for a in ctx.incident.addresses if ctx.is_internal(a) == internal]
        return list(dict.fromkeys(ctx.address(a) for a in addrs)) or None
    return fill


def _accounts(ctx: Context) -> Any:
    return list(dict.fromkeys(ctx.account(a) for a in ctx.incident.accounts)) or None


def _techniques(ctx: Context) -> Any:
    from stix_export import attack

    out = []
    for t in ctx.incident.techniques:
        try:
            name = attack.resolve(t).name
        except LookupError:
            name = None
        out.append({"id": t, "name": name})
    return out or None


def _evidence(ctx: Context) -> Any:
    out = []
    for f in sorted(ctx.incident.findings, key=lambda f: (f.first_seen, f.finding_id)):
        for ev in f.evidence[:EVIDENCE_LISTED]:
            out.append({"time": ctx.time(ev.time), "detection": f.detection_id, "sha256": ev.sha256,
                        "pointer": ctx.pointer(ev.raw_ref) if ev.raw_ref else None})
    return out or None


def _reportable_because(ctx: Context) -> Any:
    rule = ctx.cfg.reporting.reportable[ctx.why.rule_index]
    f = ctx.why.finding
    return {"rule": f"reporting.reportable[{ctx.why.rule_index}]", "stages": list(rule.stages),
            "asset_kinds": list(rule.asset_kinds), "detections": list(rule.detections), "min_severity": rule.min_severity,
            "finding": {"detection": f.detection_id, "title": ctx.text(f.title), "stage": f.stage,
                        "asset": ctx.asset(f.asset_id) if f.asset_id else None, "time": ctx.time(f.first_seen)}}


#: Field key -> filler, for every regime (a regime module adds its own in ``FILLERS``).
COMMON: dict[str, Callable[[Context], Any]] = {
    "facility_name": _facility("name"),
    "mtsa_facility_id": _facility("mtsa_facility_id"),
    "cotp_zone": _facility("cotp_zone"),
    "operator": _facility("operator"),
    "point_of_contact": _point_of_contact,
    "site": lambda ctx: {"site": ctx.cfg.site.name, "terminal": ctx.text(ctx.cfg.site.terminal)},
    "incident_reference": lambda ctx: ctx.text(ctx.incident.incident_id),
    "what_happened": lambda ctx: ctx.text(ctx.incident.title),
    "observed_activity": _activity,
    "began_at": lambda ctx: ctx.time(ctx.incident.first_seen),
    "detected_at": lambda ctx: ctx.time(ctx.why.detected_at),
    "last_activity_at": lambda ctx: ctx.time(ctx.incident.last_seen),
    "systems_affected": _assets,
    "ot_or_it": _ot_or_it,
    "attack_stages": lambda ctx: list(ctx.incident.stages),
    "techniques": _techniques,
    "observed_impact": _impact,
    "external_addresses": _addresses(internal=False),
    "internal_addresses": _addresses(internal=True),
    "accounts": _accounts,
    "evidence": _evidence,
    "tool_severity": lambda ctx: {"score": ctx.incident.severity, "label": ctx.incident.severity_label},
    "reportable_because": _reportable_because,
}
