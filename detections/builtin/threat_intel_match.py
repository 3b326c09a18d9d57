"""A flow or login to or from an address listed in the threat-intel indicators (STIX 2.1
indicator bundles from an ISAC: the store `cranewatch intel import` fills, plus any bundle
files named in the parameters)."""
from __future__ import annotations

import ipaddress
import json
import os
from typing import Any

from detections.api import DetectionContext, Entities
from stix_export.intel import IntelStore, load_store

#: Networks wider than this (IPv4 prefix length) are matched by octet-aligned text
#: prefixes; narrower ones by their addresses. Both are exact.
_EXPAND_FROM = 20


def prepare(ctx: DetectionContext) -> dict[str, Any]:
    """Load the indicators once per run and derive the vectorized prefilter: exact
    addresses (`in`) and octet-aligned text prefixes (`prefix`) covering every indicator
    network, so only rows that may match reach Python; ``rule`` then asks the store, which
    also applies valid_from/valid_until and revocation at the event's time."""
    store = _load(ctx)
    addresses: set[str] = set(ctx.params["addresses"])
    prefixes: set[str] = set(ctx.params["prefixes"])
    for ind in store.indicators.values():
        for term in ind.get("match", []):
            if term["type"] != "ip":
                continue
            net = ipaddress.ip_network(term["value"])
            if net.num_addresses == 1:
                addresses.add(str(net.network_address))
            elif net.version == 4 and net.prefixlen >= _EXPAND_FROM:
                addresses.update(str(a) for a in net)
            elif net.version == 4:
                octets = max(1, net.prefixlen // 8 + (net.prefixlen % 8 > 0))
                for sub in net.subnets(new_prefix=octets * 8):
                    prefixes.add(".".join(str(sub.network_address).split(".")[:octets]) + ".")
            else:
                prefixes.add(str(net.network_address).rstrip(":"))  # IPv6: coarse, rule decides
    inline = frozenset(ctx.params["addresses"])
    return {"addresses": sorted(addresses), "prefixes": sorted(prefixes), "_store": store, "_inline": inline}


def _load(ctx: DetectionContext) -> IntelStore:
    base = ctx.cfg.base_dir
    path = ctx.cfg.intel.store
    store = load_store(path if os.path.isabs(path) else os.path.join(base, path))
    for bundle in ctx.params["bundles"]:
        full = bundle if os.path.isabs(bundle) else os.path.join(base, bundle)
        with open(full, encoding="utf-8") as fh:
            report = store.import_objects(json.load(fh).get("objects", []), os.path.basename(full))
        if report.unsupported:  # reported at load, never ignored
            reasons = "; ".join(f"{i}: {r}" for i, r in report.unsupported)
            raise ValueError(f"{full}: indicators the matcher cannot evaluate: {reasons}")
    return store


def _hits(event: dict[str, Any], ctx: DetectionContext) -> list[tuple[str, Any]]:
    store: IntelStore = ctx.params["_store"]
    out = []
    for field in ("src_ip", "dst_ip"):
        ip = event.get(field)
        if not ip:
            continue
        if ip in ctx.params["_inline"]:
            out.append((ip, None))  # listed inline in the config
        out += [(ip, h) for h in store.match_ip(ip, event["time"])]
    return out


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    return bool(_hits(event, ctx))


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    ip, hit = _hits(event, ctx)[0]
    name = hit.name if hit is not None else "configured address"
    return f"{event.get('kind')} {event.get('src_ip')} → {event.get('dst_ip')} matches threat intel ({name}: {ip})"


def dedup(event: dict[str, Any], ctx: DetectionContext) -> str:
    ip, hit = _hits(event, ctx)[0]
    return f"{ip}|{hit.indicator_id if hit else 'config'}|{event.get('user') or ''}"


def entities(event: dict[str, Any], ctx: DetectionContext) -> Entities:
    asset = event.get("asset_id")
    ips = tuple(a for a in (event.get("src_ip"), event.get("dst_ip"), (event.get("attrs") or {}).get("tunnel_ip")) if a)
    keys = [f"ip:{a}" for a in ips] + ([f"asset:{asset}"] if asset else [])
    keys += [f"account:{event['user']}"] if event.get("user") else []
    return Entities(asset, ips, (event["user"],) if event.get("user") else (), tuple(keys))


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    return {"indicators": sorted({h.indicator_id for _, h in _hits(event, ctx) if h is not None}),
            "intel_sources": sorted({h.source for _, h in _hits(event, ctx) if h is not None})}
