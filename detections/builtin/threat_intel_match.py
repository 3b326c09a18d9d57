"""A flow, DNS query or login that matches a threat-intel indicator (STIX 2.1 indicator
bundles from an ISAC: the store `cranewatch intel import` fills, plus any bundle files
named in the parameters): an address on either side or the side the indicator names, a
port, a queried domain, or an address and port together (`stix_export.intel`)."""
from __future__ import annotations

import ipaddress
from typing import Any, NamedTuple

from detections.api import DetectionContext, Entities
from stix_export.techniques import C2_STAGE, c2_techniques
from stix_export.intel import (
    IntelHit,
    IntelStore,
    event_domains,
    load_for_config,
    normalize_domain,
)

#: Networks wider than this (IPv4 prefix length) are matched by octet-aligned text
#: prefixes; narrower ones by their addresses. Both are exact.
_EXPAND_FROM = 20


class _Match(NamedTuple):
    kind: str  # ip | domain | port | and
    matched: str  # what of the event matched: an address, a domain, "ip:port", "port 4444"
    hit: IntelHit | None  # None: listed inline in the config


def prepare(ctx: DetectionContext) -> dict[str, Any]:
    """Load the indicators once per run and derive the vectorized prefilter (the `where:`
    parameters): exact addresses (`in`) and octet-aligned text prefixes (`prefix`) covering
    every indicator network, the indicator domains (with a trailing-dot variant) for the
    `target` of `dns.query` events, and the source / destination ports of port indicators.
    An AND term (address and port) contributes its most selective part. Only rows that may
    match reach Python; ``rule`` then asks the store, which checks every part of a term on
    the event and applies valid_from/valid_until and revocation at the event's time."""
    store = _load(ctx)
    addresses: set[str] = set(ctx.params["addresses"])
    prefixes: set[str] = set(ctx.params["prefixes"])
    inline_domains = frozenset(normalize_domain(d) for d in ctx.params["domains"])
    domains: set[str] = set(inline_domains)
    ports: dict[str, set[int]] = {"src": {int(p) for p in ctx.params["src_ports"]},
                                  "dst": {int(p) for p in ctx.params["dst_ports"]}}
    for atom in store.prefilter_atoms():
        if atom["type"] == "ip":
            _cover(ipaddress.ip_network(atom["value"]), addresses, prefixes)
        elif atom["type"] == "domain":
            domains.add(atom["value"])
        elif atom["type"] == "port":
            ports[atom["side"]].add(int(atom["value"]))
    return {
        "addresses": sorted(addresses), "prefixes": sorted(prefixes),
        # events from zeek_dns carry normalized names; a source that keeps the root dot too
        "domains": sorted(domains | {f"{d}." for d in domains}),
        "src_ports": sorted(ports["src"]), "dst_ports": sorted(ports["dst"]),
        "_store": store, "_inline": frozenset(ctx.params["addresses"]), "_inline_domains": inline_domains,
    }


def _cover(net: ipaddress.IPv4Network | ipaddress.IPv6Network, addresses: set[str], prefixes: set[str]) -> None:
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


def _load(ctx: DetectionContext) -> IntelStore:
    """The store and the named bundle files, checked: unusable entries and indicators are
    left out (``cranewatch validate`` and the run's summary list each with its reason)."""
    return load_for_config(ctx.cfg)


def _hits(event: dict[str, Any], ctx: DetectionContext) -> list[_Match]:
    """Every match of the event, the one the title names first: inline addresses and
    domains, then the store's AND terms, (for a DNS query) domains, addresses (source side
    first), other domains, ports."""
    out = [_Match("ip", event[f], None) for f in ("src_ip", "dst_ip")
           if event.get(f) and event[f] in ctx.params["_inline"]]
    if ctx.params["_inline_domains"]:
        out += [_Match("domain", d, None) for d in event_domains(event) if d in ctx.params["_inline_domains"]]
    store: IntelStore = ctx.params["_store"]
    src, dns = str(event.get("src_ip")), event.get("action") == "dns.query"

    def rank(h: IntelHit) -> int:  # a DNS query is about its name; an address: source side first
        if h.kind == "ip":
            return 2 if h.matched == src else 3
        return {"and": 0, "domain": 1 if dns else 4}.get(h.kind, 5)

    hits = sorted(store.match_event(event), key=rank)  # stable: by indicator id within a rank
    return out + [_Match(h.kind, h.matched, h) for h in hits]


def rule(event: dict[str, Any], ctx: DetectionContext) -> bool:
    return bool(_hits(event, ctx))


def title(event: dict[str, Any], ctx: DetectionContext) -> str:
    m = _hits(event, ctx)[0]
    name = m.hit.name if m.hit is not None else f"configured {'domain' if m.kind == 'domain' else 'address'}"
    src, dst = event.get("src_ip"), event.get("dst_ip")
    if event.get("action") == "dns.query":
        what = f"DNS query {src} → {dst} for {event.get('target')}"
    else:
        what = f"{event.get('kind')} {src} → {dst}"
    return f"{what} matches threat intel ({name}: {m.matched})"


def dedup(event: dict[str, Any], ctx: DetectionContext) -> str:
    """Per matched value and indicator (an address, domain or ip:port: every host reaching
    it joins one finding); a port-only match also per source and destination, since a port
    alone says little about which hosts belong together."""
    m = _hits(event, ctx)[0]
    value = m.matched if m.kind != "port" else f"{event.get('src_ip')}>{event.get('dst_ip')} {m.matched}"
    key = f"{value}|{m.hit.indicator_id if m.hit else 'config'}|{event.get('user') or ''}"
    return key + "|c2" if _c2(event, ctx) else key  # C2 contact and other hits never merge


def _c2(event: dict[str, Any], ctx: DetectionContext) -> tuple[str, ...] | None:
    return c2_techniques(event, (m.matched for m in _hits(event, ctx)))


def stage(event: dict[str, Any], ctx: DetectionContext) -> str | None:
    """``c2`` when a port host reached out to what matched (a DNS query for a listed name, a
    flow to a listed address or port); else (None) the YAML's ``access``: a login, inbound traffic."""
    return C2_STAGE if _c2(event, ctx) else None


def techniques(event: dict[str, Any], ctx: DetectionContext) -> tuple[str, ...] | None:
    """C2 contact: T0869 Standard Application Layer Protocol (+ T0885 Commonly Used Port to
    a common destination port); otherwise (None) the YAML's techniques."""
    return _c2(event, ctx)


def entities(event: dict[str, Any], ctx: DetectionContext) -> Entities:
    """The event's asset and addresses. For a DNS query the finding is about the host that
    asked (``src_asset``; enrichment's ``asset_id`` would name an inventoried resolver) and
    is not linked by the resolver's address, which every host's queries share."""
    dns = event.get("action") == "dns.query"
    asset = event.get("src_asset") if dns else event.get("asset_id")
    tunnel = (event.get("attrs") or {}).get("tunnel_ip")
    ips = tuple(a for a in (event.get("src_ip"), event.get("dst_ip"), tunnel) if a)
    linked = tuple(a for a in (event.get("src_ip"), None if dns else event.get("dst_ip"), tunnel) if a)
    keys = [f"ip:{a}" for a in linked] + ([f"asset:{asset}"] if asset else [])
    keys += [f"account:{event['user']}"] if event.get("user") else []
    return Entities(asset, ips, (event["user"],) if event.get("user") else (), tuple(keys))


def context(event: dict[str, Any], ctx: DetectionContext) -> dict[str, Any]:
    hits = _hits(event, ctx)
    return {"indicators": sorted({m.hit.indicator_id for m in hits if m.hit is not None}),
            "intel_sources": sorted({m.hit.source for m in hits if m.hit is not None}),
            "intel_matched": sorted({m.matched for m in hits})}
