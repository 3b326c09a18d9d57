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
- ``stage(event, ctx) -> str|None``  the finding's stage when it depends on the event (None: the YAML's)
- ``techniques(event, ctx) -> tuple|None`` the same for the techniques
- ``prepare(ctx) -> dict``            once per run: derived parameters (e.g. values loaded
                                      from a file) merged into ``ctx.params``, so ``where:``
                                      can reference them as ``$name``

Stateful detections (thresholds, distinct counts, "A then B", first-seen) subclass
``StatefulDetection`` in their module: the same ``where:`` filter picks candidate rows
vectorized, ``key`` groups them, and ``on_event``/``on_timer`` see each key's candidates in
event-time order with an explicit, picklable ``KeyState`` and one event-time timer. The hits
they return are events, turned into findings by the module's ``title``/``dedup``/...
functions exactly like row hits.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.config_site import Asset, DetectionSettings, parse_duration
from transforms.geo import CountryTable

if TYPE_CHECKING:  # the whole config is only passed through here; the loader is not imported
    from pipelines.config import Config

STAGES = ("recon", "access", "c2", "command", "impact", "exfiltration", "other")
CONDITION_OPS = ("equals", "in", "prefix", "exists", "gte", "lte", "kind", "not", "any")
SHAPES = ("row", "stateful")


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
    # Stateful only: event fields whose first row (in event time) per batch is all that a
    # batch passes on, e.g. [src_ip, dst_ip] for a first-seen pair. Empty: every candidate.
    distinct: tuple[str, ...] = ()
    # A declarative pattern (detections/declarative.py): ("sequence"|"absence"|"threshold", block).
    pattern: tuple[str, dict[str, Any]] | None = None


@dataclass(frozen=True)
class Entities:
    asset_id: str | None = None
    addresses: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    link_keys: tuple[str, ...] = ()


@dataclass
class KeyState:
    """One key's state in a stateful detection: plain picklable data plus one event-time
    timer (epoch seconds). The runner persists both (in Beam keyed state when streaming)."""

    data: dict[str, Any] = field(default_factory=dict)
    timer: float | None = None
    #: Set by the runner before each call, not state: how far the input is known to
    #: reach in event time (the latest event the detect stage has seen). An absence fires
    #: only where the input covers its deadline, not because the input ended.
    horizon: float | None = None

    def set_timer(self, when: dt.datetime | float) -> None:
        self.timer = when.timestamp() if isinstance(when, dt.datetime) else float(when)

    def clear_timer(self) -> None:
        self.timer = None


class StatefulDetection:
    """Base class of a stateful detection (one subclass per detection module).

    ``key`` groups candidate events (None: ignore the event); ``on_event`` is called per
    candidate in event-time order and ``on_timer`` when event time passes the key's timer.
    Both return the events that hit; an event is cited as evidence of the finding, and
    several events with one dedup key merge into one finding.
    """

    def key(self, event: dict[str, Any], ctx: "DetectionContext") -> str | None:
        raise NotImplementedError

    def on_event(self, event: dict[str, Any], state: KeyState, ctx: "DetectionContext") -> list[dict[str, Any]]:
        raise NotImplementedError

    def on_timer(self, when: dt.datetime, state: KeyState, ctx: "DetectionContext") -> list[dict[str, Any]]:
        return []

    #: True: the runner keeps ``KeyState.horizon`` up to date (absence detections).
    needs_horizon: bool = False

    def state_horizon(self, ctx: "DetectionContext") -> float | None:
        """How far back in event time (seconds) a key's state can reach: a restarted stream
        replays at least this much input so the state is rebuilt as it was. None (the
        default): without bound, as for a first-seen detection's learned set; a restart then
        replays every finished spool file."""
        return None


@dataclass(frozen=True)
class Detection:
    meta: DetectionMeta
    module: ModuleType
    stateful: StatefulDetection | None = None
    #: Functions used where the module defines none (a declarative pattern's dedup key).
    defaults: dict[str, Callable[..., Any]] = field(default_factory=dict)
    #: A vectorized filter of its own instead of ``where:`` (a compiled Sigma condition):
    #: ``mask(table, cache) -> BooleanArray`` over the batch.
    mask: Callable[[pa.Table, dict[str, Any]], Any] | None = None

    @property
    def is_stateful(self) -> bool:
        return self.stateful is not None

    def fn(self, name: str) -> Callable[..., Any] | None:
        return getattr(self.module, name, None) or self.defaults.get(name)


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

    def vendor_networks(self, vendor: str | None, which: str = "allowed_networks") -> list[Any]:
        v = self.vendors.get(vendor or "")
        return [ipaddress.ip_network(n) for n in getattr(v, which, ())] if v else []

    @cached_property
    def geo(self) -> CountryTable:
        """Countries of public addresses (loaded on first use: only login checks need it)."""
        return CountryTable.from_config(self.cfg)

    @lru_cache(maxsize=65536)
    def country_of(self, ip: str | None) -> str | None:
        return self.geo.country(ip)

    @lru_cache(maxsize=65536)
    def vendor_of_tunnel(self, ip: str | None) -> str | None:
        """The vendor whose VPN tunnel pool (``tunnel_networks``) holds ``ip``, if any."""
        addr = _ip(ip)
        if addr is None:
            return None
        return next((name for name in self.vendors
                     if any(addr in n for n in self.vendor_networks(name, "tunnel_networks"))), None)

    def expected_tunnel(self, ip: str | None, asset_id: str | None, when: dt.datetime) -> bool:
        """Is ``ip`` a vendor's tunnel address while that vendor may work on the asset
        (inside its maintenance window)? Vendors may touch PLCs only then."""
        vendor = self.vendor_of_tunnel(ip)
        return vendor is not None and self.in_maintenance(vendor, asset_id, when)

    def in_networks(self, ip: str | None, networks: list[Any]) -> bool:
        addr = _ip(ip)
        return addr is not None and any(addr in n for n in networks)

    def in_any_maintenance(self, asset_id: str | None, when: dt.datetime) -> bool:
        """Is ``when`` inside any vendor's window that covers this asset (a planned
        maintenance slot for the crane, whoever does the work)?"""
        return any(self.in_maintenance(v, asset_id, when) for v in self.vendors)

    def in_maintenance(self, vendor: str | None, asset_id: str | None, when: dt.datetime) -> bool:
        """Is ``when`` inside an approved window for this vendor (and asset, if given)?"""
        for w in self.cfg.maintenance_windows:
            if w.vendor != vendor:
                continue
            if w.assets and asset_id is not None and asset_id not in w.assets:
                continue
            if w.is_open(when):  # weekly windows may cross midnight (pipelines/config_site.py)
                return True
        return False


def duration_seconds(value: Any) -> float:
    """A duration parameter: seconds, or text such as ``90s``, ``30m``, ``2h``."""
    return parse_duration(value)


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


def resolve_where(where: Any, params: dict[str, Any]) -> Any:
    """Replace ``$name`` values in a ``where:`` block by the detection's parameter ``name``,
    so a deployment's parameter (ports, a byte threshold) also narrows the vectorized filter."""
    if isinstance(where, dict):
        return {k: resolve_where(v, params) for k, v in where.items()}
    if isinstance(where, list):
        return [resolve_where(v, params) for v in where]
    if isinstance(where, str) and where.startswith("$"):
        return params[where[1:]]
    return where


def resolve_kinds(where: Any, inventory: "Inventory") -> Any:
    """``{kind: [crane_plc, ...]}`` on an asset-id field (``src_asset``, ``dst_asset``,
    ``asset_id``) becomes ``{in: [ids of the inventory's assets of those kinds]}``, so a
    condition on what kind of asset an event concerns runs vectorized too."""
    if not isinstance(where, dict):
        return where
    out: dict[str, Any] = {}
    for k, v in where.items():
        if isinstance(v, dict) and "kind" in v:
            kinds = v["kind"] if isinstance(v["kind"], list) else [v["kind"]]
            v = {op: arg for op, arg in v.items() if op != "kind"}
            v["in"] = sorted(a.id for a in inventory.assets.values() if a.kind in kinds)
        if k == "not":
            v = resolve_kinds(v, inventory)
        elif k == "any":
            v = [resolve_kinds(b, inventory) for b in v]
        out[k] = v
    return out


def where_mask(table: pa.Table, where: dict[str, Any], cache: dict[str, Any] | None = None) -> pa.ChunkedArray | pa.Array:
    """Evaluate a ``where:`` block (all conditions must hold) on a batch, vectorized.

    ``cache`` (one dict per batch) shares condition masks between detections: most of them
    test the same few fields (``kind``, ``action``, ``dst_asset``)."""
    mask: Any = None
    for fname, cond in where.items():
        memo = f"{fname}={cond!r}"
        if cache is not None and memo in cache:
            m = cache[memo]
        else:
            if fname == "any":  # a list of blocks, at least one must hold
                m = None
                for block in cond:
                    bm = pc.fill_null(where_mask(table, block, cache), False)
                    m = bm if m is None else pc.or_(m, bm)
            elif fname == "not":
                m = pc.invert(pc.fill_null(where_mask(table, cond, cache), False))
            else:
                m = pc.fill_null(_condition(table.column(fname), cond), False)
            if cache is not None:
                cache[memo] = m
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
            if not arg:
                m = pc.fill_null(m, False)
        elif op == "prefix":
            prefixes = arg if isinstance(arg, list) else [arg]
            m = pc.and_kleene(pc.is_valid(col), False)  # no prefixes: nothing matches
            for p in prefixes:
                m = pc.or_(m, pc.starts_with(col, p))
        elif op == "exists":
            m = pc.is_valid(col) if arg else pc.is_null(col)
        elif op == "gte":
            m = pc.greater_equal(col, pa.scalar(arg).cast(col.type))
        elif op == "lte":
            m = pc.less_equal(col, pa.scalar(arg).cast(col.type))
        else:  # validated at load time
            raise ValueError(f"unknown condition {op!r}")
        out = m if out is None else pc.and_(out, m)
    return out


def from_engineering(event: dict[str, Any], ctx: DetectionContext) -> bool:
    """Did an engineering host send this: is the source an asset of one of the kinds the
    detection's ``engineer_kinds`` parameter names? (Program, mode and parameter changes
    are routine only from there, and inside maintenance.)"""
    return ctx.inventory.kind_of(event.get("src_asset")) in ctx.params["engineer_kinds"]


# Two entity shapes most network detections share; a module names one, e.g.
# ``from detections.api import inbound_dedup as dedup, inbound_entities as entities``.


def _endpoints(event: dict[str, Any]) -> tuple[str, ...]:
    return tuple(a for a in (event.get("src_ip"), event.get("dst_ip")) if a)


def inbound_entities(event: dict[str, Any], ctx: DetectionContext) -> Entities:
    """Traffic aimed at an inventoried asset (a command, an inbound connection): the finding
    is about the destination asset and links by it and by the source address, so the
    commands of one remote session meet the session's own finding."""
    asset = event.get("dst_asset")
    return Entities(asset, _endpoints(event), (), (f"asset:{asset}", f"ip:{event.get('src_ip')}"))


def inbound_dedup(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"{event.get('src_ip')}|{event.get('dst_asset')}"


def outbound_entities(event: dict[str, Any], ctx: DetectionContext) -> Entities:
    """Traffic leaving an inventoried asset (egress, uploads, beacons): the finding is about
    the source asset and links by it and by the outside address it reached."""
    asset = event.get("src_asset")
    return Entities(asset, _endpoints(event), (), (f"asset:{asset}", f"ip:{event.get('dst_ip')}"))


def outbound_dedup(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"{event.get('src_asset')}|{event.get('dst_ip')}"


def actor_entities(event: dict[str, Any], ctx: DetectionContext) -> Entities:
    """An action a user took on an asset from an address (CMS events): about that asset,
    linked by it, the address and the account, so a remote session's changes join it."""
    asset, src, user = event.get("asset_id"), event.get("src_ip"), event.get("user")
    keys = [f"asset:{asset}"] + ([f"ip:{src}"] if src else []) + ([f"account:{user}"] if user else [])
    return Entities(asset, (src,) if src else (), (user,) if user else (), tuple(keys))


def actor_dedup(event: dict[str, Any], ctx: DetectionContext) -> str:
    return f"{event.get('asset_id')}|{event.get('src_ip')}|{event.get('user')}"


# Operations, not rows: one protocol request shows up in a request row, a response row and
# sibling logs (modbus.log, modbus_detailed.log, the mask/read-write logs; s7comm.log and
# s7comm_upload_download.log). A module that names ``operation`` counts each once.

_REPLY_MARKS = {("is_orig", "F"), ("direction", "response"), ("pdu_type", "RESPONSE"), ("pdu_type", "RESP")}


def protocol_operation(event: dict[str, Any], ctx: DetectionContext) -> str | None:
    """The operation an OT row belongs to: the parser's ``op`` id (Modbus), else the
    connection and PDU reference of an S7 job; None: the row is its own operation."""
    attrs = event.get("attrs") or {}
    if attrs.get("op"):
        return attrs["op"]
    if event.get("service") == "s7comm" and attrs.get("uid") and attrs.get("pdu_reference"):
        return f"{attrs['uid']}/pdu{attrs['pdu_reference']}"
    return None


def is_reply(event: dict[str, Any]) -> bool:
    """A response row (the device answering), by the markers the Zeek OT logs use."""
    attrs = event.get("attrs") or {}
    return any(attrs.get(k) == v for k, v in _REPLY_MARKS)


def counts_as_request(event: dict[str, Any], ctx: DetectionContext) -> bool:
    """Does the row stand for a request? Replies count only through their request's
    operation id (they carry the same one), so a log without ids counts requests."""
    return protocol_operation(event, ctx) is not None or not is_reply(event)


#: Severity points a finding gains on an asset of this criticality, by the finding's stage:
#: a command or impact on a safety system (hoist, load limits, interlocks) is worse than
#: reconnaissance of it, and both are worse than on an ordinary asset.
CRITICALITY_RAISE = {
    "safety": {"command": 15, "impact": 15, "exfiltration": 10, "access": 10, "c2": 10, "recon": 5, "other": 5},
    "high": {"command": 10, "impact": 10, "exfiltration": 5, "access": 5, "c2": 5, "recon": 0, "other": 0},
}


def criticality_severity(severity: int, stage: str, asset: Asset | None) -> tuple[int, str | None]:
    """The severity raised for the asset's criticality and the finding's stage, and the
    reasoning kept on the finding (None: unchanged)."""
    if asset is None or asset.criticality not in CRITICALITY_RAISE:
        return severity, None
    raise_by = CRITICALITY_RAISE[asset.criticality].get(stage, 0)
    raised = min(100, severity + raise_by)
    if raised == severity:
        return severity, None
    return raised, (f"{asset.id} is a {asset.criticality}-critical asset: {stage} finding raised "
                    f"{severity} → {raised}")
