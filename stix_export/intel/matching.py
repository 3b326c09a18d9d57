"""Matching: which stored indicators apply to an event at its time.

``IntelIndex`` indexes the match terms of validated store entries (see ``validation``) by
what they name, so a lookup costs a dict access per address, domain and port plus a scan
of the (few) networks and AND terms.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import Any

from stix_export.intel.patterns import normalize_domain
from stix_export.intel.validation import stix_time

_SIDES = ("src", "dst")


def _time(value: str | dt.datetime) -> dt.datetime:
    """An event time (aware datetime or ISO 8601 text) as an aware datetime."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    t = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class IntelHit:
    indicator_id: str
    name: str
    source: str
    value: str  # the indicator's address, network, domain, port or AND term that matched
    kind: str = "ip"  # ip | domain | port | and
    matched: str = ""  # what of the event matched: "198.51.100.7", "c2.example", "198.51.100.7:8443", "port 4444"


class IntelIndex:
    """Validated store entries by id (``indicators``); ``match_event`` (and
    ``match_ip``/``match_domain``) answer "which apply now?". Entries must have passed
    ``validation.check_entry``: the index trusts their shape."""

    indicators: dict[str, dict[str, Any]]

    def _index(self) -> None:
        # validity windows parsed once; a revoked indicator has none and never matches
        self._window: dict[str, tuple[dt.datetime, dt.datetime | None]] = {
            ind["id"]: (stix_time(ind["valid_from"]), stix_time(ind["valid_until"]) if ind.get("valid_until") else None)
            for ind in self.indicators.values() if not ind.get("revoked")}
        # standalone terms by what they name; AND terms are checked whole
        self._hosts: dict[str, list[tuple[dict[str, Any], str | None, str]]] = {}  # address -> (ind, side, net)
        self._nets: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, dict[str, Any], str | None]] = []
        self._domains: dict[str, list[tuple[dict[str, Any], str | None]]] = {}
        self._ports: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._conj: list[tuple[dict[str, Any], list[dict[str, Any]], list[tuple[str, str | None, Any]]]] = []
        for ind in self.indicators.values():
            if ind.get("revoked"):
                continue
            for term in ind["match"]:
                kind, side = term["type"], term.get("side")
                if kind == "ip":
                    net = ipaddress.ip_network(term["value"])
                    if net.num_addresses == 1:
                        self._hosts.setdefault(str(net.network_address), []).append((ind, side, str(net)))
                    else:
                        self._nets.append((net, ind, side))
                elif kind == "domain":
                    self._domains.setdefault(term["value"], []).append((ind, side))
                elif kind == "port":
                    self._ports.setdefault((side, int(term["value"])), []).append(ind)
                elif kind == "and":
                    self._conj.append((ind, term["terms"], [_parsed(a) for a in term["terms"]]))
                else:  # a store written by a newer version: never match what is not understood
                    continue

    def _active(self, ind: dict[str, Any], when: dt.datetime) -> bool:
        window = self._window.get(ind["id"])
        if window is None or window[0] > when:
            return False
        return window[1] is None or when < window[1]

    @staticmethod
    def _hit(ind: dict[str, Any], value: str, kind: str = "ip", matched: str = "") -> IntelHit:
        return IntelHit(ind["id"], ind.get("name", ""), ind.get("source", ""), value, kind, matched)

    def _ip_terms(self, ip: str) -> list[tuple[dict[str, Any], str | None, str]]:
        """Standalone address terms whose network contains ``ip``: (indicator, side, net)."""
        try:
            addr = ipaddress.ip_address(str(ip).strip())
        except ValueError:
            return []
        out = list(self._hosts.get(str(addr), ()))
        out += [(ind, side, str(net)) for net, ind, side in self._nets if addr.version == net.version and addr in net]
        return out

    def match_ip(self, ip: str, when: str | dt.datetime) -> list[IntelHit]:
        """Indicators in force at ``when`` whose address or network contains ``ip`` (on
        either side of a flow, or the side a ``network-traffic`` pattern names)."""
        t = _time(when)
        hits = [self._hit(ind, net, "ip", str(ip).strip()) for ind, _, net in self._ip_terms(ip) if self._active(ind, t)]
        return sorted(set(hits), key=lambda h: (h.indicator_id, h.value))

    def match_domain(self, domain: str, when: str | dt.datetime) -> list[IntelHit]:
        """Indicators in force at ``when`` naming exactly ``domain`` (case-insensitive)."""
        key = normalize_domain(domain)
        t = _time(when)
        return sorted({self._hit(ind, key, "domain", key) for ind, _ in self._domains.get(key, []) if self._active(ind, t)},
                      key=lambda h: h.indicator_id)

    def match_event(self, event: dict[str, Any], when: str | dt.datetime | None = None) -> list[IntelHit]:
        """Indicators in force at ``when`` (default: the event's ``time``) that the event
        matches: its ``src_ip``/``dst_ip`` (side-specific terms on their side only),
        ``src_port``/``dst_port``, its domain names (``target`` of a ``dns.query`` event;
        ``attrs.server_name``/``attrs.host`` when present), and AND terms whose every part
        holds on this one event. Sorted: AND terms first, then addresses, domains, ports."""
        t = _time(when if when is not None else event["time"])
        ips = {side: event.get(f"{side}_ip") for side in _SIDES}
        addrs = {side: _address(ips[side]) for side in _SIDES}
        ports = {side: event.get(f"{side}_port") for side in _SIDES}
        domains = event_domains(event)
        hits: set[IntelHit] = set()
        for side in _SIDES:
            if ips[side]:
                for ind, term_side, net in self._ip_terms(ips[side]):
                    if term_side in (None, side) and self._active(ind, t):
                        hits.add(self._hit(ind, net, "ip", str(ips[side])))
            if ports[side] is not None:
                for ind in self._ports.get((side, int(ports[side])), ()):
                    if self._active(ind, t):
                        hits.add(self._hit(ind, str(ports[side]), "port", f"port {ports[side]}"))
        for name in domains:
            for ind, _ in self._domains.get(name, ()):
                if self._active(ind, t):
                    hits.add(self._hit(ind, name, "domain", name))
        for ind, atoms, parsed in self._conj:
            if self._active(ind, t) and all(_atom_holds(a, addrs, ports, domains) for a in parsed):
                hits.add(self._hit(ind, term_text(atoms), "and", _conj_matched(atoms, ips, ports, domains)))
        order = {"and": 0, "ip": 1, "domain": 2, "port": 3}
        return sorted(hits, key=lambda h: (order.get(h.kind, 9), h.indicator_id, h.value, h.matched))

    def prefilter_atoms(self) -> list[dict[str, Any]]:
        """One atom per term of every indicator that is not revoked, for a vectorized
        prefilter that lets through every row ``match_event`` could match (and more): a
        standalone term itself; for an AND term, its most selective part (a narrow
        network, else a port, else a domain, else any network but the whole space)."""
        out = []
        for ind in self.indicators.values():
            if ind.get("revoked"):
                continue
            for term in ind["match"]:
                if term["type"] == "and":
                    out.append(min(term["terms"], key=_selectivity))
                elif term["type"] in ("ip", "domain", "port"):
                    out.append(term)
        return out

    def indicator_object(self, indicator_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """The indicator as received (the stored version) and the objects it references that
        came with it (its creator identity, marking definitions), or None if the store does not
        hold the received object (stores written before objects were kept)."""
        ind = self.indicators.get(indicator_id)
        if not ind or not ind.get("object"):
            return None
        return ind["object"], list(ind.get("related", []))

def event_domains(event: dict[str, Any]) -> list[str]:
    """The domain names an event carries, normalized: the query of a ``dns.query`` event
    (``target``) and the ``server_name`` (TLS SNI) / ``host`` (HTTP) attributes."""
    out = []
    if event.get("action") == "dns.query" and event.get("target"):
        out.append(normalize_domain(event["target"]))
    attrs = event.get("attrs") or {}
    if isinstance(attrs, list):  # Arrow map rows come as (key, value) pairs
        attrs = dict(attrs)
    for key in ("server_name", "host"):
        if attrs.get(key):
            out.append(normalize_domain(attrs[key]))
    return list(dict.fromkeys(d for d in out if d))


def _address(ip: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(str(ip).strip()) if ip else None
    except ValueError:
        return None


def _parsed(atom: dict[str, Any]) -> tuple[str, str | None, Any]:
    """An AND term's atom ready to test: (type, side, network | port | domain)."""
    kind = atom["type"]
    value = ipaddress.ip_network(atom["value"]) if kind == "ip" else int(atom["value"]) if kind == "port" else atom["value"]
    return kind, atom.get("side"), value


def _atom_holds(atom: tuple[str, str | None, Any], addrs: dict[str, Any], ports: dict[str, Any],
                domains: list[str]) -> bool:
    kind, side, value = atom
    if kind == "ip":
        return any(a is not None and a.version == value.version and a in value
                   for a in ((addrs[side],) if side else addrs.values()))
    if kind == "port":
        return ports.get(side) is not None and int(ports[side]) == value
    if kind == "domain":
        return value in domains
    return False


def term_text(atoms: list[dict[str, Any]]) -> str:
    """An AND term as text, e.g. ``dst_ref.value = 198.51.100.7/32 AND dst_port = 8443``."""
    def one(a: dict[str, Any]) -> str:
        side = a.get("side")
        if a["type"] == "port":
            return f"{side}_port = {a['value']}"
        return f"{side}_ref.value = {a['value']}" if side else f"{a['type']} = {a['value']}"
    return " AND ".join(one(a) for a in atoms)


def _conj_matched(atoms: list[dict[str, Any]], ips: dict[str, Any], ports: dict[str, Any], domains: list[str]) -> str:
    """What of the event an AND term matched, per side: ``198.51.100.7:8443``,
    ``c2.example:443``, ``port 4444``; both sides as ``src → dst``."""
    parts = []
    for side in _SIDES:
        mine = [a for a in atoms if a.get("side") == side]
        if not mine:
            continue
        host = None
        if any(a["type"] == "ip" for a in mine) and ips.get(side):
            ip = str(ips[side])
            host = f"[{ip}]" if ":" in ip else ip
        elif any(a["type"] == "domain" for a in mine):
            host = next(a["value"] for a in mine if a["type"] == "domain")
        port = ports.get(side) if any(a["type"] == "port" for a in mine) else None
        if host and port is not None:
            parts.append(f"{host}:{port}")
        elif host:
            parts.append(host.strip("[]"))
        elif port is not None:
            parts.append(f"port {port}")
    rest = [a["value"] for a in atoms if not a.get("side")]
    return " → ".join(parts + [str(v) for v in rest])


def _selectivity(atom: dict[str, Any]) -> tuple[int, int]:
    """Sort key: the most selective atom of an AND term first (see ``prefilter_atoms``)."""
    if atom["type"] == "ip":
        net = ipaddress.ip_network(atom["value"])
        narrow = net.prefixlen >= (16 if net.version == 4 else 48)
        return (0 if narrow else 3 if net.prefixlen else 4, -net.prefixlen)
    return (1, 0) if atom["type"] == "port" else (2, 0)


