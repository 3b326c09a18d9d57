"""33 CFR 101.650(g): reportable cyber incidents of MTSA-regulated facilities, to the NRC."""
from __future__ import annotations

from typing import Any

from pipelines.mandated.fields import Context


def criteria(ctx: Context) -> Any:
    """The 33 CFR 101.615 criteria the observed stages may point to (wording from the YAML)."""
    words = ctx.regime.vocabulary.get("criteria", {})
    return [{"stage": s, "may_point_to": words[s]} for s in ctx.incident.stages if s in words] or None


FILLERS = {"cyber_incident_criteria": criteria}
