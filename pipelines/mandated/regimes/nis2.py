"""NIS2 Art. 23: early warning (24 h), incident notification (72 h), final report (one month)."""
from __future__ import annotations

from typing import Any

from pipelines.mandated.fields import Context


def recipient(ctx: Context) -> Any:
    """The CSIRT or authority named in the config: it differs per Member State."""
    return ctx.settings.recipient or None


FILLERS = {"recipient": recipient}
