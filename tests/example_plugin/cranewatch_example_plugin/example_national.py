"""An example national regime: its one own field lists the cranes of the affected assets."""
from __future__ import annotations

from typing import Any

from pipelines.mandated.fields import Context


def cranes(ctx: Context) -> Any:
    by_id = {a.id: a for a in ctx.cfg.inventory.assets}
    found = sorted({by_id[a].crane for a in ctx.incident.assets if a in by_id and by_id[a].crane})
    return [ctx.crane(c) for c in found] or None


FILLERS = {"cranes": cranes}
