"""STIX patterns -> match terms: the subset of STIX 2.1 patterning the intel store can match.

See the package docstring for the subset and the term shapes; everything outside it raises
``UnsupportedPattern`` with the reason, which import reports beside the indicator's id.
"""
from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any

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

