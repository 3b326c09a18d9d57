"""Which incidents are reportable, and since when: ``reporting.reportable`` over the findings.

The detection time of a reportable incident is the event time (``first_seen``) of the finding
with which the incident first met a rule: findings are taken in event-time order, and the
first prefix in which one finding matches a rule's stages, asset kinds and detections while
the prefix's incident severity (as correlation scores it) reaches the rule's ``min_severity``
ends at that finding. It is the earliest moment a live run could have flagged the incident,
so it is the same in batch, in streaming and on a re-run, and a clock counted from it is never
later than one counted from when a person first read the alert.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from transforms.model import Finding, Incident

if TYPE_CHECKING:
    from pipelines.config import Config, ReportableRule


@dataclass(frozen=True)
class Reportable:
    detected_at: str  # first_seen of ``finding``: the detection time
    rule_index: int  # which ``reporting.reportable`` rule held first
    finding: Finding  # the finding that made it hold


def _finding_matches(rule: ReportableRule, f: Finding, kinds: dict[str, str]) -> bool:
    if rule.stages and f.stage not in rule.stages:
        return False
    if rule.asset_kinds and kinds.get(f.asset_id or "") not in rule.asset_kinds:
        return False
    return not rule.detections or f.detection_id in rule.detections


def reportable(incident: Incident, cfg: Config, rules: Sequence[ReportableRule] | None = None) -> Reportable | None:
    """When and why ``incident`` became reportable, or None if no rule holds."""
    from transforms.correlate import build_incident

    rules = cfg.reporting.reportable if rules is None else rules
    kinds = {a.id: a.kind for a in cfg.inventory.assets}
    findings = sorted(incident.findings, key=lambda f: (f.first_seen, f.finding_id))
    for k in range(1, len(findings) + 1):
        prefix = findings[:k]
        severity = build_incident(list(prefix)).severity if k < len(findings) else incident.severity
        for i, rule in enumerate(rules):
            if severity >= rule.min_severity and any(_finding_matches(rule, f, kinds) for f in prefix):
                return Reportable(findings[k - 1].first_seen, i, findings[k - 1])
    return None
