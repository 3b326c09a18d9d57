"""One regime's draft for one reportable incident, as plain JSON values.

The Markdown and HTML renderings are laid out from this same dict, so the three files hold
the same fields. Every field is either filled from the incident, its findings or the config
(``"status": "filled"``, with ``source`` naming where from) or left for the analyst
(``"status": "analyst_required"`` with a prompt): the tool never fills a fact it was not given.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.mandated.clocks import due, parse_time, stamp
from pipelines.mandated.fields import COMMON, Context
from pipelines.mandated.rule import Reportable
from transforms.model import Incident

if TYPE_CHECKING:
    from pipelines.config import Config, RegimeSettings
    from pipelines.mandated.registry import Regime

SCHEMA = "cranewatch/mandated-draft/1"
NOTICE = ("Draft aid, not legal advice. cranewatch filled the fields below only from the incident it "
          "correlated, its findings and the site's config; fields marked ANALYST REQUIRED are for you. "
          "Whether the incident must be reported, to whom and by when is the reporting entity's decision.")
DETECTION_TIME = ("Detection time: the event time of the finding with which the incident first met a "
                  "reporting.reportable rule (the earliest moment a live run could flag it). Deadlines are "
                  "counted from it; if the facility became aware later, the legal clock may start later.")


def _profile(cfg: Config, name: str) -> Any:
    return next((p for p in cfg.export.effective_profiles() if p.name == name), None)


def _context(cfg: Config, incident: Incident, why: Reportable, regime: Regime, settings: RegimeSettings,
             secret: bytes | None) -> Context:
    from stix_export.redact import Redactor

    profile = _profile(cfg, settings.profile)
    ctx = Context(cfg, incident, why, regime, settings, settings.profile)
    if profile is not None and profile.redaction.redacts:
        ctx.redactor = Redactor(profile, cfg, secret)
        ctx.rewriter = ctx.redactor.rewriter(incident)
    return ctx


def clock(why: Reportable, regime: Regime, zone: str) -> dict[str, Any]:
    detected = parse_time(why.detected_at)
    return {
        "detection_time": stamp(detected, zone) | {"utc": why.detected_at},
        "definition": DETECTION_TIME,
        "deadlines": [
            {"id": d.id, "title": d.title, "within": d.within.text, "without_delay": d.within.without_delay,
             "citation": d.citation, "due": stamp(due(detected, d.within, zone), zone), "note": d.note}
            for d in regime.deadlines
        ],
    }


def build_draft(cfg: Config, incident: Incident, why: Reportable, regime: Regime, settings: RegimeSettings,
                secret: bytes | None = None) -> dict[str, Any]:
    """The draft's fields; raises ``RedactionError`` if a value its profile redacts remains."""
    ctx = _context(cfg, incident, why, regime, settings, secret)
    fields = []
    for spec in regime.fields:
        row: dict[str, Any] = {"key": spec.key, "label": spec.label, "asks": spec.asks}
        value = None
        if not spec.analyst:
            filler = regime.fillers.get(spec.key) or COMMON[spec.key]
            value = filler(ctx)
        if value is None:
            row |= {"status": "analyst_required", "value": None,
                    "prompt": spec.analyst or "cranewatch has no value for this field: fill it in (or add it to the config)."}
        else:
            row |= {"status": "filled", "value": value,
                    "source": f"regime {regime.id}" if spec.key in regime.fillers else "incident/config"}
        fields.append(row)
    draft = {
        "schema": SCHEMA,
        "notice": NOTICE,
        "regime": {"id": regime.id, "title": regime.title, "authority": regime.authority, "citation": regime.citation,
                   "legal_text": regime.legal_text, "source": regime.source},
        "incident_id": ctx.text(incident.incident_id),
        "incident_modified": incident.modified,
        "profile": settings.profile,
        "clock": clock(why, regime, ctx.zone),
        "fields": fields,
    }
    if ctx.rewriter:
        _refuse_leaks(draft, ctx)
    return draft


def _strings(value: Any) -> Any:
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def _refuse_leaks(draft: dict[str, Any], ctx: Context) -> None:
    from stix_export.redact import RedactionError, leak_kinds

    leaks = sorted({hit for f in draft["fields"] for s in _strings(f.get("value")) for hit in ctx.rewriter.found(s)})
    if leaks:  # kinds and where, never the values (the message travels further than the draft)
        names = ctx.redactor.sensitive_names(ctx.incident) if ctx.redactor is not None else {}
        kinds = leak_kinds(ctx.redactor, names, {"draft": leaks}) if ctx.redactor is not None else {"value": len(leaks)}
        raise RedactionError(ctx.profile, ctx.incident.incident_id, kinds, [f"{draft['regime']['id']} draft fields"],
                             output="mandated-report draft")
