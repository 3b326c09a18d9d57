"""Compile one Sigma rule into a mask over event batches.

The rule goes through its log source's pySigma processing pipeline first (Sigma field
names → event fields), then pySigma parses its condition into a tree of and/or/not over
field = value items (selections, ``1 of``/``all of``/``them`` and modifiers already
resolved by pySigma); that tree is walked here. ``mask`` evaluates it on a whole Arrow
batch with pyarrow.compute; an item that cannot be vectorized is evaluated row by row
inside the same mask, and the rule says so (``vectorized`` False).

Field names after the pipeline are event fields (``src_ip``) or ``attrs.<name>``; a name
that is neither is looked up in ``attrs`` and listed in ``unmapped`` (``sigma check``).
Keywords (values without a field) search the raw record text.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc
from sigma.conditions import (
    ConditionAND, ConditionFieldEqualsValueExpression, ConditionNOT, ConditionOR, ConditionValueExpression,
)
from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaLogSource, SigmaRule

from detections.sigma_engine import meta
from detections.sigma_engine.match import Matcher, NumberMatch, NumbersMatch, Unsupported, View, matcher
from transforms.model import EVENT_FIELDS

RAW = "raw"  # where keywords are searched


@dataclass
class Leaf:
    field: str  # event field or attrs.<name>
    m: Matcher


@dataclass
class Op:
    op: str  # and | or | not
    args: list[Any]


def value_of(event: dict[str, Any], name: str) -> Any:
    """An event field or ``attrs.<name>`` of one event dict (attrs as a dict or as the
    list of pairs Arrow's ``to_pylist`` gives)."""
    if name.startswith("attrs."):
        attrs = event.get("attrs") or {}
        if isinstance(attrs, list):
            attrs = dict(attrs)
        return attrs.get(name[6:])
    return event.get(name)


def column(table: pa.Table, name: str, cache: dict[str, Any] | None = None) -> Any:
    """An event field or ``attrs.<name>`` as an Arrow column (shared per batch via ``cache``)."""
    memo = f"\x00sigma-col:{name}"
    if cache is not None and memo in cache:
        return cache[memo]
    if name.startswith("attrs."):
        if "attrs" in table.column_names:
            col = pc.map_lookup(table.column("attrs"), pa.scalar(name[6:]), "first")
        else:
            col = pa.nulls(table.num_rows, pa.string())
    elif name in table.column_names:
        col = table.column(name)
    else:
        col = pa.nulls(table.num_rows, pa.string())
    if cache is not None:
        cache[memo] = col
    return col


@dataclass
class CompiledRule:
    """One Sigma rule ready to run: metadata for findings and the condition as a mask."""

    id: str
    title: str
    level: str | None
    tags: list[str]
    logsource: SigmaLogSource
    vectorized: bool
    unsupported: list[str]
    name: str | None = None
    description: str = ""
    references: list[str] = field(default_factory=list)
    falsepositives: list[str] = field(default_factory=list)
    severity: int = meta.DEFAULT_SEVERITY
    techniques: tuple[str, ...] = ()
    stage: str = "other"
    notes: list[str] = field(default_factory=list)  # tags not mapped, and why
    fields: list[str] = field(default_factory=list)  # event fields the condition reads
    unmapped: list[str] = field(default_factory=list)  # Sigma field names the pipeline left as they were
    tree: Any = None

    def mask(self, table: pa.Table, cache: dict[str, Any] | None = None, rowwise: bool = False) -> pa.Array:
        """Which rows of ``table`` match (nulls count as no match). ``rowwise``: evaluate
        every item row by row (the reference the vectorized path is tested against)."""
        n = table.num_rows
        if self.tree is None or n == 0:
            return pa.array([False] * n, pa.bool_())
        if rowwise:
            rows = table.select([f for f in {*self.fields, "attrs"} if f in table.column_names]).to_pylist()
            return pa.array([_one(self.tree, r) for r in rows], pa.bool_())
        out = _vec(self.tree, table, cache)
        return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out

    def matches(self, event: dict[str, Any]) -> bool:
        """The condition on one event dict (row-wise)."""
        return self.tree is not None and _one(self.tree, event)


def _vec(node: Any, table: pa.Table, cache: dict[str, Any] | None) -> Any:
    if cache is None:
        cache = {}
    if isinstance(node, Leaf):
        col = column(table, node.field, cache)
        if node.m.vectorizable:
            memo = f"\x00sigma-leaf:{node.field}:{node.m.key}"  # the same test in another rule
            if memo not in cache:
                def other(f: str) -> View:
                    return View(column(table, f, cache), cache, f)
                cache[memo] = pc.fill_null(node.m.vector(View(col, cache, node.field), other), False)
            return cache[memo]
        vals = col.to_pylist()
        refs = {r: column(table, r, cache).to_pylist() for r in node.m.refs}
        return pa.array([node.m.one(v, lambda f, i=i: refs[f][i]) for i, v in enumerate(vals)], pa.bool_())
    if node.op == "not":
        return pc.invert(_vec(node.args[0], table, cache))
    fn = pc.and_ if node.op == "and" else pc.or_
    out = None
    for a in node.args:
        m = _vec(a, table, cache)
        out = m if out is None else fn(out, m)
    return out


def _one(node: Any, event: dict[str, Any]) -> bool:
    if isinstance(node, Leaf):
        return node.m.one(value_of(event, node.field), lambda f: value_of(event, f))
    if node.op == "not":
        return not _one(node.args[0], event)
    if node.op == "and":
        return all(_one(a, event) for a in node.args)
    return any(_one(a, event) for a in node.args)


class _Builder:
    """Walks pySigma's condition tree into ``Leaf``/``Op`` nodes."""

    def __init__(self) -> None:
        self.unsupported: list[str] = []
        self.unmapped: list[str] = []
        self.fields: list[str] = []

    def resolve(self, name: str) -> str:
        if name.startswith("attrs.") or (name in EVENT_FIELDS and name != "attrs"):
            out = name
        else:
            if name not in self.unmapped:
                self.unmapped.append(name)
            out = f"attrs.{name}"
        if out.split(".", 1)[0] not in self.fields:
            self.fields.append(out.split(".", 1)[0])
        return out

    def leaf(self, fname: str | None, value: Any) -> Any:
        try:
            if fname is None:
                self.resolve(RAW)
                return Leaf(RAW, matcher(value, self.resolve, keyword=True))
            return Leaf(self.resolve(fname), matcher(value, self.resolve))
        except Unsupported as exc:
            where = f"field {fname}" if fname else "keyword"
            self.unsupported.append(f"{where}: {exc}")
            return None

    def walk(self, node: Any) -> Any:
        if isinstance(node, ConditionFieldEqualsValueExpression):
            return self.leaf(node.field, node.value)
        if isinstance(node, ConditionValueExpression):
            return self.leaf(None, node.value)
        if isinstance(node, (ConditionAND, ConditionOR, ConditionNOT)):
            op = {ConditionAND: "and", ConditionOR: "or", ConditionNOT: "not"}[type(node)]
            args = [self.walk(a) for a in node.args]
            return Op(op, _numbers_in(args) if op == "or" else args)
        self.unsupported.append(f"condition item {type(node).__name__} is not supported")
        return None


def _numbers_in(args: list[Any]) -> list[Any]:
    """Or-ed numbers of one field (``dst_port: [21, 23, 80, ...]``) as one set look-up."""
    by_field: dict[str, list[Leaf]] = {}
    for a in args:
        if isinstance(a, Leaf) and type(a.m) is NumberMatch:
            by_field.setdefault(a.field, []).append(a)
    out = [a for a in args if not (isinstance(a, Leaf) and type(a.m) is NumberMatch and len(by_field[a.field]) > 1)]
    out += [Leaf(f, NumbersMatch([x.m.n for x in leaves])) for f, leaves in by_field.items() if len(leaves) > 1]
    return out


def rule_id(rule: Any) -> str:
    return str(rule.id) if rule.id else (rule.name or rule.title)


def compile_rule(rule: SigmaRule, pipeline: ProcessingPipeline | None) -> CompiledRule:
    """The rule after ``pipeline`` (applied to a copy: the loaded rule stays as written)."""
    unsupported: list[str] = []
    processed = copy.deepcopy(rule)
    if pipeline is not None:
        try:
            pipeline.apply(processed)
        except SigmaError as exc:
            unsupported.append(f"processing pipeline: {exc}")
    b = _Builder()
    tree = None
    if not unsupported:
        try:
            trees = [b.walk(c.parse()) for c in processed.detection.parsed_condition]
            tree = trees[0] if len(trees) == 1 else Op("or", trees)
        except SigmaError as exc:
            unsupported.append(f"condition: {exc}")
    unsupported += b.unsupported
    if unsupported:
        tree = None
    techniques, notes = meta.techniques(rule.tags)
    return CompiledRule(
        id=rule_id(rule),
        title=rule.title,
        level=meta.level_name(rule.level),
        tags=meta.tag_texts(rule.tags),
        logsource=rule.logsource,
        vectorized=tree is not None and _all_vectorized(tree),
        unsupported=unsupported,
        name=rule.name,
        description=(rule.description or "").strip(),
        references=list(rule.references or ()),
        falsepositives=list(rule.falsepositives or ()),
        severity=meta.severity(rule.level),
        techniques=techniques,
        stage=meta.stage(rule.tags, techniques),
        notes=notes,
        fields=b.fields,
        unmapped=b.unmapped,
        tree=tree,
    )


def _all_vectorized(node: Any) -> bool:
    if isinstance(node, Leaf):
        return node.m.vectorizable
    return all(_all_vectorized(a) for a in node.args)
