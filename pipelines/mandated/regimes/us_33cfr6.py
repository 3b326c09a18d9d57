"""33 CFR 6.16-1: evidence of an actual or threatened cyber incident, to the FBI, CISA and COTP."""
from __future__ import annotations

from typing import Any

from pipelines.mandated.fields import Context


def recipients(ctx: Context) -> Any:
    """The three recipients the rule names; the COTP with the facility's configured zone."""
    names = list(ctx.regime.vocabulary.get("recipients", []))
    zone = ctx.cfg.reporting.facility.cotp_zone
    return [{"recipient": n, "zone": zone if "COTP" in n else None} for n in names]


FILLERS = {"recipients": recipients}
