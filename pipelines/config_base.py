"""The base of every config model: strict (unknown keys are errors) and frozen, and the
asset kinds an inventory may name. Kept below both the config loader and the models split
out of it (``config_reporting``), so either can import it without a cycle."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

ASSET_KINDS = (
    "crane_plc",
    "cms",
    "jump_host",
    "engineering_workstation",
    "hmi",
    "vpn_gateway",
    "server",
    "other",
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)
