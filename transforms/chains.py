"""Attack chains inside an incident: stages in event-time order, linked by entity.

An incident is findings that share entities and are close in time; that alone does not
make an attack. A critical chain needs the stages in order: an access finding (a vendor
session, an unexpected login), then a command on what that access reached (writes from
the session's address), then an impact (a program or safety-parameter change) on the same
crane, each stage starting no earlier than the one before and sharing a link key (an
address, an account, an asset) with it. The same stages in another order, a legitimate
parameter change and hours later a login with no writes, stay what their findings say.

Used by ``transforms/correlate.py`` (``build_incident``) for the incident's severity and
the order its title names.
"""
from __future__ import annotations

from typing import Sequence

from transforms.model import Finding

CHAIN = ("access", "command", "impact")
CRITICAL = 95  # a full ordered chain
PAIR_RAISE, PAIR_CAP = 10, 89  # two ordered, linked stages: raised, but below critical


def _before(a: Finding, b: Finding) -> bool:
    """``a`` leads to ``b``: it starts no later and they share an entity."""
    return a.first_seen <= b.first_seen and bool(set(a.link_keys) & set(b.link_keys))


def ordered_stages(members: Sequence[Finding]) -> tuple[str, ...]:
    """The longest chain of CHAIN stages (in CHAIN's order) whose findings follow each other
    in event time and link by entity; () when no two stages do."""
    by = {s: [f for f in members if f.stage == s] for s in CHAIN}
    access, command, impact = by["access"], by["command"], by["impact"]
    if any(any(_before(a, c) for a in access) and any(_before(c, i) for i in impact) for c in command):
        return CHAIN
    for first, second in (("access", "command"), ("command", "impact"), ("access", "impact")):
        if any(_before(x, y) for x in by[first] for y in by[second]):
            return (first, second)
    return ()


def chain_severity(members: Sequence[Finding], stages: Sequence[str]) -> tuple[int, str]:
    """The incident's severity and how its title names the stages: ``a → b → c`` when
    they were first seen in that order, else in the order they were first seen
    (``impact, then access``), which claims no causation. ``stages``: the incident's
    stages in chain order."""
    severity = max(f.severity for f in members)
    chain = ordered_stages(members)
    if len(chain) == 3:
        severity = max(severity, CRITICAL)
    elif len(chain) == 2:
        severity = max(severity, min(PAIR_CAP, severity + PAIR_RAISE))
    seen: list[str] = []
    for f in sorted(members, key=lambda f: (f.first_seen, f.finding_id)):
        if f.stage not in seen:
            seen.append(f.stage)
    if seen == list(stages):
        return severity, " → ".join(stages)
    return severity, ", then ".join(seen)
