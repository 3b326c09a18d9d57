"""The detection plugin contract.

A detection is one module plus a YAML sibling (panther-analysis style): the YAML holds the
metadata (id, title, severity, ATT&CK for ICS techniques, event kinds, parameters, test
cases) and a ``where:`` block of simple field conditions; the module holds plain functions
over one event. The pipeline evaluates ``where:`` vectorized on Arrow batches, so the Python
``rule`` only ever sees the few rows that could match, and a detection author never touches
the pipeline.

Module functions (all optional except ``rule`` when ``where`` alone is not enough):

- ``rule(event, ctx) -> bool``        does this event hit?
- ``title(event, ctx) -> str``        finding title (default: the YAML title)
- ``dedup(event, ctx) -> str``        hits with one dedup key merge into one finding
- ``entities(event, ctx) -> Entities`` asset, addresses, accounts and correlation link keys
- ``context(event, ctx) -> dict``     extra fields kept with the finding's evidence
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import zoneinfo
from dataclasses import dataclass, field
from functools import lru_cache
from types import ModuleType
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.config import Asset, Config, DetectionSettings

STAGES = ("recon", "access", "command", "impact", "exfiltration", "other")
CONDITION_OPS = ("equals", "in", "prefix", "exists", "not")


@dataclass(frozen=True)
class TestCase:
    name: str
    events: tuple[dict[str, Any], ...]
    expect: int  # number of findings expected (after dedup)
    config: dict[str, Any] = field(default_factory=dict)  # overrides merged into the test config


@dataclass(frozen=True)
class DetectionMeta:
    id: str
    title: str
    description: str
    severity: int
    confidence: int
    stage: str
    techniques: tuple[str, ...]
    kinds: tuple[str, ...]
    where: dict[str, Any]
    params: dict[str, Any]
    tests: tuple[TestCase, ...]
    path: str


@dataclass(frozen=True)
class Entities:
    asset_id: str | None = None
    addresses: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    link_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Detection:
    meta: DetectionMeta
    module: ModuleType

    def fn(self, name: str) -> Callable[..., Any] | None:
        return getattr(self.module, name, None)


class Inventory:
    """Fast look-ups over the asset inventory, vendors and maintenance windows."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.assets: dict[str, Asset] = {a.id: a for a in cfg.inventory.assets}
        self.asset_by_ip: dict[str, Asset] = {ip: a for a in cfg.inventory.assets for ip in a.addresses}
        self.internal = [ipaddress.ip_network(n) for n in cfg.inventory.internal_networks]
        self.vendor_by_account = {acc: v.name for v in cfg.vendors for acc in v.accounts}
        self.vendors = {v.name: v for v in cfg.vendors}
        self._egress = {
            a.id: [ipaddress.ip_network(n) for n in a.allowed_egress] for a in cfg.inventory.assets
        }

    def asset(self, asset_id: str | None) -> Asset | None:
        return self.assets.get(asset_id) if asset_id else None

    def kind_of(self, asset_id: str | None) -> str | None:
        a = self.asset(asset_id)
        return a.kind if a else None

    @lru_cache(maxsize=65536)
    def is_internal(self, ip: str | None) -> bool:
        addr = _ip(ip)
        return addr is not None and any(addr in n for n in self.internal)

    def egress_allowed(self, asset_id: str, ip: str | None) -> bool:
        addr = _ip(ip)
        if addr is None:
            return True  # nothing to judge
        if ip in self.asset_by_ip:
            return True  # another inventoried asset is never "outside"
        return any(addr in n for n in self._egress.get(asset_id, ()))

    def in_maintenance(self, vendor: str | None, asset_id: str | None, when: dt.datetime) -> bool:
        """Is ``when`` inside an approved window for this vendor (and asset, if given)?"""
        for w in self.cfg.maintenance_windows:
            if w.vendor != vendor:
                continue
            if w.assets and asset_id is not None and asset_id not in w.assets:
                continue
            if w.start is not None and w.end is not None:
                if w.start <= when < w.end:
                    return True
                continue
            local = when.astimezone(zoneinfo.ZoneInfo(w.timezone))
            day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local.weekday()]
            hhmm = local.strftime("%H:%M")
            if day in w.days and w.from_ is not None and w.to is not None and w.from_ <= hhmm < w.to:
                return True
        return False


def _ip(ip: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not ip:
        return None
    try:
        return ipaddress.ip_address(ip)
    except ValueError:
        return None


@dataclass
class DetectionContext:
    """What a detection function may consult besides the event itself."""

    cfg: Config
    inventory: Inventory
    params: dict[str, Any]
    settings: DetectionSettings

    def allowlisted(self, event: dict[str, Any]) -> bool:
        allow = self.settings.allowlist
        return (
            any(event.get(k) in allow.get("addresses", ()) for k in ("src_ip", "dst_ip"))
            or event.get("user") in allow.get("accounts", ())
            or event.get("asset_id") in allow.get("assets", ())
        )


def where_mask(table: pa.Table, where: dict[str, Any]) -> pa.ChunkedArray | pa.Array:
    """Evaluate a ``where:`` block (all conditions must hold) on a batch, vectorized."""
    mask: Any = None
    for fname, cond in where.items():
        if fname == "not":
            m = pc.invert(pc.fill_null(where_mask(table, cond), False))
        else:
            col = table.column(fname)
            m = _condition(col, cond)
        m = pc.fill_null(m, False)
        mask = m if mask is None else pc.and_(mask, m)
    if mask is None:
        return pa.array([True] * table.num_rows)
    return mask


def _condition(col: Any, cond: Any) -> Any:
    if not isinstance(cond, dict):
        return pc.equal(col, pa.scalar(cond, type=col.type))
    out: Any = None
    for op, arg in cond.items():
        if op == "equals":
            m = pc.equal(col, pa.scalar(arg, type=col.type))
        elif op == "in":
            m = pc.is_in(col, value_set=pa.array(arg, type=col.type))
        elif op == "prefix":
            prefixes = arg if isinstance(arg, list) else [arg]
            m = None
            for p in prefixes:
                pm = pc.starts_with(col, p)
                m = pm if m is None else pc.or_(m, pm)
        elif op == "exists":
            m = pc.is_valid(col) if arg else pc.is_null(col)
        else:  # validated at load time
            raise ValueError(f"unknown condition {op!r}")
        out = m if out is None else pc.and_(out, m)
    return out
