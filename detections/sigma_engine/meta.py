"""What a Sigma rule's metadata becomes on a cranewatch finding: level → severity, tags →
ATT&CK for ICS techniques and a kill-chain stage.

Only ATT&CK for ICS ids of the pinned release (detections/attack_ics.yml) become
techniques; an Enterprise id (``attack.t1021``) or an id the release does not list is kept
out and reported in the rule's notes, never mapped to a guess.
"""
from __future__ import annotations

import re
from typing import Any

#: Sigma level → finding severity (0-100; medium/high/critical meet the labels of
#: transforms/model.py ``severity_label``).
LEVEL_SEVERITY = {"informational": 10, "low": 30, "medium": 50, "high": 75, "critical": 95}
DEFAULT_SEVERITY = 50

#: ATT&CK for ICS tactics (tag names) → the stage correlation chains findings by.
TACTIC_STAGE = {
    "initial-access": "access", "lateral-movement": "access", "persistence": "access",
    "privilege-escalation": "access", "evasion": "access", "discovery": "recon",
    "collection": "recon", "command-and-control": "command", "execution": "command",
    "inhibit-response-function": "impact", "impair-process-control": "impact", "impact": "impact",
    "exfiltration": "exfiltration",
}
STAGE_ORDER = ("impact", "command", "exfiltration", "access", "recon", "other")
_TECHNIQUE = re.compile(r"^t(\d{4})(\.\d{3})?$")


def severity(level: Any) -> int:
    name = getattr(level, "name", None) or (str(level) if level is not None else "")
    return LEVEL_SEVERITY.get(name.lower(), DEFAULT_SEVERITY)


def level_name(level: Any) -> str | None:
    name = getattr(level, "name", None)
    return name.lower() if name else None


def tag_texts(tags: Any) -> list[str]:
    return [f"{t.namespace}.{t.name}" for t in (tags or ())]


def techniques(tags: Any) -> tuple[tuple[str, ...], list[str]]:
    """(ATT&CK for ICS technique ids, notes on tags that name a technique not taken)."""
    from stix_export.attack import UnknownTechniqueError, resolve

    out: list[str] = []
    notes: list[str] = []
    for t in tags or ():
        if t.namespace != "attack":
            continue
        name = t.name.lower().removeprefix("ics.")
        m = _TECHNIQUE.match(name)
        if not m:
            continue
        tid = name.upper()
        if not m.group(1).startswith("0"):
            notes.append(f"tag attack.{t.name}: an ATT&CK Enterprise technique, not ATT&CK for ICS; not mapped")
            continue
        try:
            resolve(tid)
        except UnknownTechniqueError:
            notes.append(f"tag attack.{t.name}: not in detections/attack_ics.yml (ATT&CK for ICS 18.1); not mapped")
            continue
        if tid not in out:
            out.append(tid)
    return tuple(out), notes


def stage(tags: Any, technique_ids: tuple[str, ...]) -> str:
    """A ``cranewatch.stage.<stage>`` tag, else the furthest stage of the rule's tactic
    tags and techniques' tactics, else ``other``."""
    from stix_export.attack import resolve

    found: set[str] = set()
    for t in tags or ():
        if t.namespace == "cranewatch" and t.name.startswith("stage."):
            return t.name[len("stage."):]
        if t.namespace == "attack":
            tactic = t.name.lower().removeprefix("ics.")
            if tactic in TACTIC_STAGE:
                found.add(TACTIC_STAGE[tactic])
    for tid in technique_ids:
        for tactic in resolve(tid).tactics:
            if tactic in TACTIC_STAGE:
                found.add(TACTIC_STAGE[tactic])
    return next((s for s in STAGE_ORDER if s in found), "other")
