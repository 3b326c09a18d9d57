"""Threat intel in: STIX 2.1 indicator bundles (what an ISAC publishes) -> a JSON store.

``cranewatch intel import FILE...`` or ``--taxii API_ROOT --collection ID`` loads indicators
into the store named by the config's ``intel.store`` (a JSON file, relative to the config).
The threat-intel detection reads it through this module's small API::

    from stix_export.intel import load_store
    store = load_store(path)                    # an empty store if the file does not exist
    for hit in store.match_event(event):        # an event dict; its "time" unless when= is given
        hit.indicator_id, hit.name, hit.source  # e.g. for a sighting_of_ref
        hit.kind, hit.value, hit.matched        # "and", "dst_ref.value = 198.51.100.7/32 AND dst_port = 8443", "198.51.100.7:8443"
    store.match_ip("198.51.100.7", when)        # when: aware datetime or RFC 3339 text
    store.match_domain("c2.example.net", when)

What is kept, and when it matches:

* Only ``indicator`` objects with ``pattern_type: stix`` whose pattern is in the supported
  subset, comparisons of
  - ``ipv4-addr:value``/``ipv6-addr:value`` (``=``, ``IN (...)``, ``ISSUBSET`` a CIDR; ``=`` to
    a CIDR value also matches the network): the address on either side of an event;
  - ``domain-name:value`` (``=``, ``IN``; exact, case-insensitive, trailing dot ignored): the
    event's domain (the query of a ``dns.query`` event, ``attrs.server_name``/``attrs.host``);
  - ``network-traffic:src_port``/``dst_port`` (``=``, ``IN`` of integers): that side's port;
  - ``network-traffic:src_ref.value``/``dst_ref.value`` (``=``, ``IN``, ``ISSUBSET``): an
    address or network on that side only (a domain name on ``dst_ref``: the event's domain);
  - ``network-traffic:src_ref.type``/``dst_ref.type`` ``=`` ipv4-addr/ipv6-addr/domain-name:
    only beside other comparisons joined by AND, as a consistency check (a value on that side
    must be of that type; without one, ipv4-addr/ipv6-addr require an address of that version).

  joined either by ``OR`` (within and between observation expressions: any one matches), or
  by ``AND`` when the whole pattern is one observation expression of AND-ed
  ``network-traffic`` comparisons (``[network-traffic:dst_ref.value = '198.51.100.7' AND
  network-traffic:dst_port = 8443]``, the usual C2 ip:port form): one conjunctive term whose
  parts must all hold on the same event (``IN`` lists in it expand to one term per
  combination, at most ``MAX_TERMS``). AND mixed with OR, AND between observation expressions,
  ``FOLLOWEDBY``, qualifiers (``WITHIN``, ``REPEATS``, ``START``/``STOP``), negation, other
  operators (``!=``, ``<``, ``LIKE``, ``MATCHES``, ...), and other object paths are reported at
  import with the reason and not stored.
* An indicator matches at time ``when`` if it is not revoked, ``valid_from <= when`` and
  (no ``valid_until`` or ``when < valid_until``).
* Versions: for each indicator id the store keeps the version with the latest ``modified``;
  a revoked version (``revoked: true``) marks the indicator revoked, so it never matches.

Store file: JSON with sorted keys (the same imports give the same bytes), version 1:
``{"version": 1, "indicators": {id: {"id", "name", "pattern", "match": [term, ...],
"valid_from", "valid_until", "modified", "revoked", "source", "object", "related"}}}``.
A term (any one of an indicator's terms matching is a match) is one of:

* ``{"type": "ip", "value": "198.51.100.0/24"}`` an address or network on either side
  (the only address shape stores written before ports and sides existed hold);
* ``{"type": "ip", "side": "src"|"dst", "value": ...}`` the same on that side only;
* ``{"type": "domain", "value": "c2.example.net"}`` (also with ``"side": "dst"``, from
  ``dst_ref.value``; the same match) a domain name, normalized;
* ``{"type": "port", "side": "src"|"dst", "value": 4444}`` that side's port;
* ``{"type": "and", "terms": [atom, ...]}`` every atom (one of the shapes above) holds on the
  same event.

A term of a type this version does not know never matches.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

STORE_VERSION = 1
_VALUE_PATHS = {"ipv4-addr": "ip", "ipv6-addr": "ip", "domain-name": "domain"}
_REF_TYPES = ("ipv4-addr", "ipv6-addr", "domain-name")
_SIDES = ("src", "dst")
#: A domain name as an indicator's ``network-traffic:*_ref.value`` may give it (the
#: ``domain-name:value`` path keeps accepting any text, as before).
_DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_-]{1,63})*$")
#: Most conjunctive terms one indicator may expand to (``IN`` lists multiply).
MAX_TERMS = 4096


class UnsupportedPattern(ValueError):
    """The pattern is valid STIX but outside the subset the store can match."""


def _time(value: str | dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    t = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def _unquote(text: str) -> str:
    return text[1:-1].replace("\\'", "'").replace("\\\\", "\\")


def normalize_domain(name: str) -> str:
    """A domain as the store and the event model compare it: lower case, no trailing dot."""
    return str(name).strip().lower().rstrip(".")


# --- patterns -----------------------------------------------------------------------------


@dataclass
class _Leaf:
    """One comparison of a pattern: ``obj_type:path op values``."""

    obj_type: str
    path: list[Any]
    op: str
    values: list[Any]  # str for string literals, int for integers, None for anything else

    @property
    def where(self) -> str:
        from stix2patterns.inspector import INDEX_STAR

        text = ""
        for p in self.path:
            if p is INDEX_STAR or isinstance(p, int):
                text += "[*]" if p is INDEX_STAR else f"[{p}]"
            else:
                text += f".{p}" if text else str(p)
        return f"{self.obj_type}:{text}"


def _literal(ctx: Any) -> Any:
    """A pattern literal as Python: a string literal's text, a non-negative integer, or None
    (booleans, floats, negative numbers, binary, hex and timestamp literals)."""
    lit = ctx.orderableLiteral() if hasattr(ctx, "orderableLiteral") else ctx
    if lit is None:
        return None
    if lit.IntPosLiteral() is not None:
        return int(lit.getText())
    if lit.StringLiteral() is not None:
        return _unquote(lit.getText())
    return None


def _leaf(ctx: Any) -> _Leaf:
    """Object type, path and operator of a comparison (via stix2patterns' inspector, walked
    over this comparison only) and its literal values (from the parse tree)."""
    import antlr4
    from stix2patterns.v21.inspector import InspectionListener

    name = type(ctx).__name__
    if getattr(ctx, "NOT", lambda: None)() is not None:
        raise UnsupportedPattern("negated comparisons are not supported")
    if name == "PropTestExistsContext":
        raise UnsupportedPattern("EXISTS is not supported")
    listener = InspectionListener()
    antlr4.ParseTreeWalker.DEFAULT.walk(listener, ctx)
    found = [(t, c) for t, cs in listener.pattern_data().comparisons.items() for c in cs]
    if len(found) != 1:  # not expected: the leaf is one comparison
        raise UnsupportedPattern(f"unreadable comparison {ctx.getText()!r}")
    obj_type, (path, op, _raw) = found[0]
    if name == "PropTestEqualContext" and ctx.EQ() is not None:
        values = [_literal(ctx.primitiveLiteral())]
    elif name == "PropTestSetContext":
        values = [_literal(v) for v in ctx.setLiteral().primitiveLiteral()]
    elif name == "PropTestIsSubsetContext":
        values = [_unquote(ctx.StringLiteral().getText())]
    else:  # != < > <= >= LIKE MATCHES ISSUPERSET EXISTS
        values = []
    return _Leaf(obj_type, list(path), op, values)


def _comparisons(ctx: Any) -> tuple[str, list[Any]]:
    """A comparison expression as ``("or" | "and" | "leaf", [comparison contexts])``;
    AND and OR mixed in one observation expression are refused."""
    name = type(ctx).__name__
    if name == "ComparisonExpressionContext":
        if ctx.OR() is None:
            return _comparisons(ctx.comparisonExpressionAnd())
        parts, op = [_comparisons(c) for c in ctx.comparisonExpression()], "or"
    elif name == "ComparisonExpressionAndContext":
        if ctx.AND() is None:
            return _comparisons(ctx.propTest())
        parts, op = [_comparisons(c) for c in ctx.comparisonExpressionAnd()], "and"
    elif name == "PropTestParenContext":
        return _comparisons(ctx.comparisonExpression())
    else:
        return "leaf", [ctx]
    if any(kind not in ("leaf", op) for kind, _ in parts):
        raise UnsupportedPattern("AND and OR mixed in one observation expression are not supported")
    return op, [leaf for _, leaves in parts for leaf in leaves]


def _observations(ctx: Any) -> list[Any]:
    """The comparison expressions of observation expressions joined by OR (the caller has
    refused FOLLOWEDBY, AND between observations and qualifiers already)."""
    name = type(ctx).__name__
    if name == "PatternContext":
        return _observations(ctx.observationExpressions())
    if name == "ObservationExpressionsContext":
        if ctx.FOLLOWEDBY() is not None:
            raise UnsupportedPattern("observation operators other than OR (FOLLOWEDBY)")
        return _observations(ctx.observationExpressionOr())
    if name == "ObservationExpressionOrContext":
        if ctx.OR() is None:
            return _observations(ctx.observationExpressionAnd())
        return [c for sub in ctx.observationExpressionOr() for c in _observations(sub)]
    if name == "ObservationExpressionAndContext":
        if ctx.AND() is not None:
            raise UnsupportedPattern("observation operators other than OR (AND)")
        return _observations(ctx.observationExpression())
    if name == "ObservationExpressionSimpleContext":
        return [ctx.comparisonExpression()]
    if name == "ObservationExpressionCompoundContext":
        return _observations(ctx.observationExpressions())
    raise UnsupportedPattern("qualifiers are not supported")


def _net(value: Any, obj_type: str | None = None) -> str:
    try:
        net = ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError:
        raise UnsupportedPattern(f"{value!r} is not an IP address or network") from None
    if obj_type is not None and (net.version == 4) != (obj_type == "ipv4-addr"):
        raise UnsupportedPattern(f"{value!r} does not match {obj_type}")
    return str(net)


def _atoms(leaf: _Leaf) -> list[dict[str, Any]]:
    """The match atoms one comparison stands for (several for ``IN``: any of them)."""
    op, values = leaf.op, leaf.values
    if leaf.obj_type in _VALUE_PATHS:
        kind = _VALUE_PATHS[leaf.obj_type]
        if leaf.path != ["value"]:
            raise UnsupportedPattern(f"{leaf.where} is not a supported object path")
        if op not in ("=", "IN") and not (op == "ISSUBSET" and kind == "ip"):
            raise UnsupportedPattern(f"operator {op} on {leaf.obj_type}:value is not supported")
        if any(not isinstance(v, str) for v in values):
            raise UnsupportedPattern(f"{leaf.where} must be compared to strings")
        if kind == "ip":
            return [{"type": "ip", "value": _net(v, leaf.obj_type)} for v in values]
        return [{"type": "domain", "value": normalize_domain(v)} for v in values]
    if leaf.obj_type != "network-traffic":
        raise UnsupportedPattern(f"{leaf.where} is not a supported object path")
    path = [str(p) for p in leaf.path]
    if len(path) == 1 and path[0] in ("src_port", "dst_port"):
        if op not in ("=", "IN"):
            raise UnsupportedPattern(f"operator {op} on {leaf.where} is not supported")
        if any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 65535 for v in values):
            raise UnsupportedPattern(f"{leaf.where} must be compared to port numbers (integers 0-65535)")
        return [{"type": "port", "side": path[0][:3], "value": v} for v in values]
    if len(path) == 2 and path[0] in ("src_ref", "dst_ref") and path[1] in ("value", "type"):
        side = path[0][:3]
        if any(not isinstance(v, str) for v in values):
            raise UnsupportedPattern(f"{leaf.where} must be compared to strings")
        if path[1] == "type":
            if op != "=" or values[0] not in _REF_TYPES:
                raise UnsupportedPattern(f"{leaf.where} may only be compared (=) to {', '.join(_REF_TYPES)}")
            return [{"type": "ref_type", "side": side, "value": values[0]}]
        if op not in ("=", "IN", "ISSUBSET"):
            raise UnsupportedPattern(f"operator {op} on {leaf.where} is not supported")
        out = []
        for v in values:
            try:
                out.append({"type": "ip", "side": side, "value": _net(v)})
                continue
            except UnsupportedPattern:
                if op == "ISSUBSET":
                    raise
            name = normalize_domain(v)
            if side == "src":
                raise UnsupportedPattern(f"{leaf.where} {v!r}: events carry no domain name of the source")
            if not _DOMAIN.match(name):
                raise UnsupportedPattern(f"{leaf.where} {v!r} is neither an IP address or network nor a domain name")
            out.append({"type": "domain", "side": side, "value": name})
        return out
    raise UnsupportedPattern(f"{leaf.where} is not a supported object path")


def _conjunction(alternatives: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The terms of one observation expression of AND-ed network-traffic comparisons: one
    ``and`` term per combination of the ``IN`` alternatives. ``*_ref.type`` comparisons are
    consistency checks: a value on that side must be of that type; without a value on that
    side, ipv4-addr/ipv6-addr require an address of that version (0.0.0.0/0, ::/0) and
    domain-name requires nothing the events could show."""
    import itertools

    types: dict[str, str] = {}
    rest: list[list[dict[str, Any]]] = []
    for alts in alternatives:
        if alts[0]["type"] == "ref_type":
            side, value = alts[0]["side"], alts[0]["value"]
            if types.setdefault(side, value) != value:
                raise UnsupportedPattern(f"{side}_ref.type compared to both {types[side]} and {value}")
        else:
            rest.append(alts)
    for side, ref_type in types.items():
        valued = [a for alts in rest for a in alts if a.get("side") == side and a["type"] in ("ip", "domain")]
        for a in valued:
            ok = (a["type"] == "domain") if ref_type == "domain-name" else (
                a["type"] == "ip" and ipaddress.ip_network(a["value"]).version == (4 if ref_type == "ipv4-addr" else 6))
            if not ok:
                raise UnsupportedPattern(f"{side}_ref.value {a['value']!r} does not match {side}_ref.type {ref_type}")
        if not valued and ref_type != "domain-name":
            rest.append([{"type": "ip", "side": side, "value": "0.0.0.0/0" if ref_type == "ipv4-addr" else "::/0"}])
    if not any(_selective(a) for alts in rest for a in alts):
        raise UnsupportedPattern("no comparison the store can match (only *_ref.type consistency checks)")
    count = 1
    for alts in rest:
        count *= len(alts)
    if count > MAX_TERMS:
        raise UnsupportedPattern(f"AND of IN lists expands to {count} combinations (at most {MAX_TERMS})")
    terms = []
    for combo in itertools.product(*rest):
        atoms = list({json.dumps(a, sort_keys=True): a for a in combo}.values())
        terms.append(atoms[0] if len(atoms) == 1 else {"type": "and", "terms": atoms})
    return terms


def _selective(atom: dict[str, Any]) -> bool:
    """False for the whole-address-space atoms a ``*_ref.type`` check stands for."""
    return not (atom["type"] == "ip" and ipaddress.ip_network(atom["value"]).prefixlen == 0)


def parse_pattern(pattern: str) -> list[dict[str, Any]]:
    """The match terms of a supported pattern (any one term matching is a match); the term
    shapes are listed in the module docstring.

    Raises ``UnsupportedPattern`` (with the reason) for anything outside the subset, and for
    patterns that are not valid STIX 2.1.
    """
    from stix2patterns.v21.grammars.STIXPatternVisitor import STIXPatternVisitor
    from stix2patterns.v21.pattern import Pattern

    class _Root(STIXPatternVisitor):
        def visitPattern(self, ctx: Any) -> Any:  # antlr's visitor naming
            return ctx

    try:
        parsed = Pattern(pattern)
        info = parsed.inspect()
    except Exception as exc:  # the pattern library raises its own parse errors
        raise UnsupportedPattern(f"not a valid STIX 2.1 pattern ({exc})") from None
    if info.qualifiers:
        raise UnsupportedPattern(f"qualifiers are not supported ({', '.join(sorted(info.qualifiers))})")
    if info.observation_ops - {"OR"}:
        raise UnsupportedPattern(f"observation operators other than OR ({', '.join(sorted(info.observation_ops))})")
    groups = [_comparisons(obs) for obs in _observations(parsed.visit(_Root()))]
    terms: list[dict[str, Any]] = []
    if any(kind == "and" for kind, _ in groups):
        if len(groups) > 1:
            raise UnsupportedPattern("AND inside an observation expression is supported only in a pattern of "
                                     "that one observation expression (not combined with OR)")
        leaves = [_leaf(c) for c in groups[0][1]]
        if any(leaf.obj_type != "network-traffic" for leaf in leaves):
            raise UnsupportedPattern("AND inside an observation expression is supported only between "
                                     "network-traffic comparisons (one flow)")
        terms = _conjunction([_atoms(leaf) for leaf in leaves])
    else:
        for _, comparisons in groups:
            for c in comparisons:
                atoms = _atoms(_leaf(c))
                if atoms[0]["type"] == "ref_type":
                    raise UnsupportedPattern(f"network-traffic:{atoms[0]['side']}_ref.type is only a consistency "
                                             "check beside comparisons joined by AND")
                terms += atoms
    if not terms:
        raise UnsupportedPattern("no comparison the store can match")
    return list({json.dumps(t, sort_keys=True): t for t in terms}.values())


@dataclass(frozen=True)
class IntelHit:
    indicator_id: str
    name: str
    source: str
    value: str  # the indicator's address, network, domain, port or AND term that matched
    kind: str = "ip"  # ip | domain | port | and
    matched: str = ""  # what of the event matched: "198.51.100.7", "c2.example", "198.51.100.7:8443", "port 4444"


@dataclass
class ImportReport:
    indicators: int = 0  # indicator objects read
    stored: int = 0  # new indicators or newer versions stored
    unchanged: int = 0  # versions the store already had (or older ones)
    revoked: int = 0  # indicators marked revoked by this import
    unsupported: list[tuple[str, str]] = field(default_factory=list)  # (indicator id, reason)
    ignored_objects: int = 0  # other object types in the bundles

    def lines(self) -> list[str]:
        out = [
            f"read {self.indicators} indicator(s): {self.stored} stored, {self.unchanged} unchanged, "
            f"{self.revoked} revoked, {len(self.unsupported)} unsupported; {self.ignored_objects} other object(s) ignored"
        ]
        out += [f"unsupported {ind_id}: {reason}" for ind_id, reason in self.unsupported]
        return out


class IntelStore:
    """Indicators by id, as stored; ``match_event`` (and ``match_ip``/``match_domain``)
    answer "which apply now?"."""

    def __init__(self, indicators: dict[str, dict[str, Any]] | None = None):
        self.indicators: dict[str, dict[str, Any]] = indicators or {}
        self._index()

    def _index(self) -> None:
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

    @staticmethod
    def _active(ind: dict[str, Any], when: dt.datetime) -> bool:
        if ind.get("revoked") or _time(ind["valid_from"]) > when:
            return False
        return not ind.get("valid_until") or when < _time(ind["valid_until"])

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

    def import_objects(self, objects: Iterable[dict[str, Any]], source: str) -> ImportReport:
        report = ImportReport()
        objects = list(objects)
        # identities and marking definitions of the same bundle, kept beside the indicators
        # that reference them (a sighting of the indicator re-shares them with it)
        by_id = {o["id"]: o for o in objects
                 if isinstance(o, dict) and o.get("type") in ("identity", "marking-definition") and "id" in o}
        for obj in objects:
            if obj.get("type") != "indicator":
                report.ignored_objects += 1
                continue
            report.indicators += 1
            ind_id = obj["id"]
            modified = obj.get("modified") or obj.get("created")
            old = self.indicators.get(ind_id)
            # Revocation is final in STIX; otherwise the latest modified wins.
            if old is not None and (old.get("revoked") or _time(old["modified"]) >= _time(modified)):
                report.unchanged += 1
                continue
            if obj.get("revoked"):
                entry = {**(old or {"match": [], "pattern": obj.get("pattern", "")}), "id": ind_id,
                         "modified": modified, "revoked": True, "source": source,
                         "name": obj.get("name", (old or {}).get("name", "")),
                         "valid_from": obj.get("valid_from", (old or {}).get("valid_from", modified))}
                self.indicators[ind_id] = entry
                report.revoked += 1
                continue
            if obj.get("pattern_type", "stix") != "stix":
                report.unsupported.append((ind_id, f"pattern_type {obj.get('pattern_type')} is not supported (stix only)"))
                continue
            try:
                terms = parse_pattern(obj["pattern"])
            except UnsupportedPattern as exc:
                report.unsupported.append((ind_id, str(exc)))
                continue
            self.indicators[ind_id] = {
                "id": ind_id,
                "name": obj.get("name", ""),
                "pattern": obj["pattern"],
                "match": terms,
                "valid_from": obj["valid_from"],
                "valid_until": obj.get("valid_until"),
                "modified": modified,
                "revoked": False,
                "source": source,
                "object": obj,
                "related": [by_id[r] for r in _refs_of(obj) if r in by_id],
            }
            report.stored += 1
        self._index()
        return report

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        data = {"version": STORE_VERSION, "indicators": self.indicators}
        tmp.write_text(json.dumps(data, sort_keys=True, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path


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


def _refs_of(obj: dict[str, Any]) -> list[str]:
    """The ids an object names in ``created_by_ref`` and ``object_marking_refs``, in order."""
    refs = [obj["created_by_ref"]] if isinstance(obj.get("created_by_ref"), str) else []
    refs += [r for r in obj.get("object_marking_refs", []) if isinstance(r, str)]
    return list(dict.fromkeys(refs))


def load_store(path: str | os.PathLike[str]) -> IntelStore:
    """The store at ``path``; an empty store when the file does not exist yet."""
    path = Path(path)
    if not path.exists():
        return IntelStore()
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("version") != STORE_VERSION:
        raise ValueError(f"{path}: expected an intel store of version {STORE_VERSION}, got {data.get('version')!r}")
    return IntelStore(data.get("indicators", {}))


def import_files(store_path: str | os.PathLike[str], files: Iterable[str | os.PathLike[str]]) -> ImportReport:
    """Import STIX 2.1 bundle files into the store at ``store_path`` and save it."""
    store = load_store(store_path)
    total = ImportReport()
    for f in files:
        bundle = json.loads(Path(f).read_text(encoding="utf-8"))
        objects = bundle.get("objects", []) if isinstance(bundle, dict) else bundle
        _merge(total, store.import_objects(objects, source=f"file:{Path(f).name}"))
    store.save(store_path)
    return total


def import_taxii(store_path: str | os.PathLike[str], collection: Any, source: str) -> ImportReport:
    """Import every indicator version a TAXII 2.1 collection holds (all pages)."""
    from taxii2client.v21 import as_pages

    store = load_store(store_path)
    objects: list[dict[str, Any]] = []
    for page in as_pages(collection.get_objects, per_request=100, type="indicator", version="all"):
        objects += page.get("objects", [])
    objects.sort(key=lambda o: (o["id"], _time(o.get("modified") or o.get("created"))))
    report = store.import_objects(objects, source=source)
    store.save(store_path)
    return report


def _merge(total: ImportReport, part: ImportReport) -> None:
    total.indicators += part.indicators
    total.stored += part.stored
    total.unchanged += part.unchanged
    total.revoked += part.revoked
    total.unsupported += part.unsupported
    total.ignored_objects += part.ignored_objects


_CONFIG_CACHE: dict[tuple[Any, ...], IntelStore] = {}


def load_for_config(cfg: Any) -> IntelStore:
    """What the threat-intel detection matches against for ``cfg``: the store at
    ``intel.store`` plus the bundle files in ``detections.threat_intel_match.params.bundles``
    (both relative to the config file). Cached per file set and modification time, so the
    export can look up a matched indicator's received object for every incident cheaply.
    Unsupported indicators in the bundle files are skipped here (the detection refuses them
    when the run starts)."""
    base = getattr(cfg, "base_dir", ".")

    def full(p: str) -> str:
        return p if os.path.isabs(p) else os.path.join(base, p)

    settings = (getattr(cfg, "detections", None) or {}).get("threat_intel_match")
    bundles = list((settings.params if settings is not None else {}).get("bundles", []))
    paths = [full(cfg.intel.store), *(full(b) for b in bundles)]
    key = tuple((p, os.stat(p).st_mtime_ns if os.path.exists(p) else None) for p in paths)
    if key not in _CONFIG_CACHE:
        store = load_store(paths[0])
        for path in paths[1:]:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            store.import_objects(data.get("objects", []) if isinstance(data, dict) else data, os.path.basename(path))
        _CONFIG_CACHE.clear()
        _CONFIG_CACHE[key] = store
    return _CONFIG_CACHE[key]
