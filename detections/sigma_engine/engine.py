"""Sigma rules as detections the Detector runs beside the built-ins.

``sigma_set`` loads and compiles a config's rules once per process (per worker: the
Detector is built in each worker's ``setup``); ``sigma_registry`` turns them into
``Detection`` objects: a single-event rule is a row detection whose vectorized filter is
the compiled Sigma condition, routed to the events of its log source; a correlation rule
is a stateful detection (``correlate.py``). A rule referenced by a correlation without
``generate: true`` raises no findings of its own, as the Sigma specification says.
"""
from __future__ import annotations

import os
import types
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaLogSource

from detections.api import Detection, DetectionContext, DetectionMeta
from detections.declarative import pattern_entities
from detections.sigma_engine import pipelines as shipped
from detections.sigma_engine.compile import CompiledRule, compile_rule
from detections.sigma_engine.load import load_rules
from transforms.model import KINDS

if TYPE_CHECKING:
    from pipelines.config import Config

PREFIX = "sigma:"
#: Sigma ``status`` → finding confidence.
STATUS_CONFIDENCE = {"stable": 80, "test": 70, "experimental": 60, "deprecated": 50, "unsupported": 40}


@dataclass
class Route:
    """Which events a rule looks at: event kinds and/or parser formats."""

    kinds: tuple[str, ...]
    formats: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.kinds and not self.formats

    @classmethod
    def of(cls, logsource: SigmaLogSource, taxonomies: Any = None) -> "Route":
        found = shipped.source_kinds(logsource, taxonomies)
        return cls(tuple(sorted(k for k in found if k in KINDS)), tuple(sorted(k for k in found if k not in KINDS)))

    def key(self) -> str:
        return f"\x00sigma-route:{','.join(self.kinds)}|{','.join(self.formats)}"


@dataclass
class SigmaEntry:
    """One compiled single-event rule with where it came from and where it applies."""

    compiled: CompiledRule
    file: str
    route: Route
    confidence: int
    output: bool  # False: only a correlation's input (``generate`` not set)


@dataclass
class SigmaSet:
    entries: list[SigmaEntry] = field(default_factory=list)
    correlations: list[Any] = field(default_factory=list)  # correlate.CompiledCorrelation
    errors: list[tuple[str, str]] = field(default_factory=list)  # (file, reason): load errors, unsupported


def _pipeline_files(files: tuple[str, ...]) -> tuple[list[ProcessingPipeline], list[tuple[str, str]]]:
    out, errors = [], []
    for f in files:
        try:
            with open(f, encoding="utf-8") as fh:
                out.append(ProcessingPipeline.from_yaml(fh.read()))
        except Exception as exc:  # pySigma raises several types for a bad pipeline file
            errors.append((f, f"expected a pySigma processing pipeline (YAML): {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"))
    return out, errors


def pipeline_of(logsource: SigmaLogSource, extra: list[ProcessingPipeline],
                taxonomies: Any = None) -> ProcessingPipeline | None:
    """The shipped pipeline of the log source (of the selected taxonomies: None, all), then
    the config's own pipelines."""
    base = shipped.pipeline_for(logsource, taxonomies)
    if not extra:
        return base
    out = base if base is not None else ProcessingPipeline()
    for p in extra:
        out = out + p
    return out


def _stamp(paths: tuple[str, ...]) -> tuple[Any, ...]:
    """What the cache of loaded rules is keyed by besides the paths: each file's mtime."""
    out = []
    for p in paths:
        for root, _, files in (os.walk(p) if os.path.isdir(p) else [(os.path.dirname(p), [], [os.path.basename(p)])]):
            for f in sorted(files):
                try:
                    st = os.stat(os.path.join(root, f))
                    out.append((root, f, st.st_mtime_ns, st.st_size))
                except OSError:
                    out.append((root, f))
    return tuple(out)


def load_set(rules: tuple[str, ...], pipeline_files: tuple[str, ...] = (),
             taxonomies: tuple[str, ...] = ()) -> SigmaSet:
    """``taxonomies``: the names of the shipped taxonomies to map with (empty: all)."""
    return _load_set(rules, pipeline_files, taxonomies, _stamp(rules + pipeline_files))


def selected_taxonomies(names: tuple[str, ...]) -> Any:
    """The shipped taxonomies named (in their shipped order); None (all) when none is named."""
    return tuple(t for t in shipped.TAXONOMIES if t.name in names) if names else None


@lru_cache(maxsize=16)
def _load_set(rules: tuple[str, ...], pipeline_files: tuple[str, ...], taxonomy_names: tuple[str, ...],
              _stamp: Any) -> SigmaSet:
    from detections.sigma_engine.correlate import compile_correlation

    taxes = selected_taxonomies(taxonomy_names)

    loaded = load_rules(rules)
    extra, errors = _pipeline_files(pipeline_files)
    out = SigmaSet(errors=list(loaded.errors) + errors)
    by_rule: dict[int, SigmaEntry] = {}
    for rule in loaded.rules:
        file = loaded.file_of(rule)
        compiled = compile_rule(rule, pipeline_of(rule.logsource, extra, taxes))
        if compiled.unsupported:
            out.errors += [(file, f"{rule.title}: not supported: {u}") for u in compiled.unsupported]
            continue
        status = getattr(rule.status, "name", "") or ""
        entry = SigmaEntry(compiled, file, Route.of(rule.logsource, taxes), STATUS_CONFIDENCE.get(status.lower(), 70),
                           bool(getattr(rule, "_output", True)))
        by_rule[id(rule)] = entry
        out.entries.append(entry)
    for corr in loaded.correlations:
        file = loaded.file_of(corr)
        compiled, problems = compile_correlation(corr, by_rule, lambda ls: pipeline_of(ls, extra, taxes))
        if problems:
            out.errors += [(file, f"{corr.title}: not supported: {p}") for p in problems]
            continue
        compiled.file = file
        out.correlations.append(compiled)
    return out


def rule_paths(cfg: "Config") -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The config's rule and pipeline paths, relative to the config file."""
    def full(p: str) -> str:
        return p if os.path.isabs(p) else os.path.normpath(os.path.join(cfg.base_dir, p))

    s = cfg.sigma
    return tuple(full(p) for p in s.rules), tuple(full(p) for p in s.pipelines)


def sigma_set(cfg: "Config") -> SigmaSet:
    rules, pipes = rule_paths(cfg)
    if not rules:
        return SigmaSet()
    return load_set(rules, pipes, tuple(cfg.sigma.taxonomies))


def routed_mask(route: Route, cond: Callable[[pa.Table, dict[str, Any]], Any], table: pa.Table,
                cache: dict[str, Any] | None) -> Any:
    """``cond`` evaluated on the rows of the route only (the filtered rows are shared by
    every rule of the same route in one batch), scattered back to the whole batch."""
    n = table.num_rows
    if route.empty or n == 0:
        return pa.array(np.zeros(n, dtype=bool))
    cache = cache if cache is not None else {}
    key = route.key()
    if key not in cache:
        m = None
        if route.kinds:
            m = pc.is_in(table.column("kind"), value_set=pa.array(route.kinds, pa.string()))
        if route.formats:
            f = pc.is_in(table.column("format"), value_set=pa.array(route.formats, pa.string()))
            m = f if m is None else pc.or_(m, f)
        m = pc.fill_null(m, False)
        idx = pc.indices_nonzero(m)
        cache[key] = (len(idx) == n, table if len(idx) == n else table.take(idx), idx.to_numpy(), {})
    whole, sub, idx, subcache = cache[key]
    if whole:
        return cond(table, cache)
    if sub.num_rows == 0:
        return pa.array(np.zeros(n, dtype=bool))
    hits = np.asarray(cond(sub, subcache).to_numpy(zero_copy_only=False), dtype=bool)
    out = np.zeros(n, dtype=bool)
    out[idx[hits]] = True
    return pa.array(out)


def sigma_context(entry_file: str, c: Any) -> dict[str, Any]:
    """What a finding keeps of its Sigma rule (``Finding.context['sigma']``)."""
    return {"sigma": {
        "id": c.id, "title": c.title, "level": c.level, "tags": list(c.tags), "references": list(c.references),
        "falsepositives": list(c.falsepositives), "file": os.path.basename(entry_file),
        **({"notes": list(c.notes)} if c.notes else {}),
    }}


def _module(name: str, fns: dict[str, Any]) -> types.ModuleType:
    mod = types.ModuleType(name)
    for k, v in fns.items():
        setattr(mod, k, v)
    return mod


def _dedup(event: dict[str, Any], ctx: DetectionContext) -> str:
    return "|".join(str(event.get(k) or "") for k in ("asset_id", "src_ip", "dst_ip", "user"))


def single_detection(entry: SigmaEntry) -> Detection:
    c = entry.compiled
    det_id = PREFIX + c.id
    kinds = KINDS if entry.route.formats else entry.route.kinds
    meta = DetectionMeta(
        id=det_id, title=c.title, description=c.description, severity=c.severity, confidence=entry.confidence,
        stage=c.stage, techniques=c.techniques, kinds=tuple(kinds), where={}, params={}, tests=(), path=entry.file,
    )
    ctx_extra = sigma_context(entry.file, c)
    module = _module(det_id, {
        "dedup": _dedup, "entities": pattern_entities,
        "finding_context": lambda event, ctx: ctx_extra,
    })
    route = entry.route
    return Detection(meta, module, mask=lambda table, cache: routed_mask(route, c.mask, table, cache))


def sigma_registry(cfg: "Config") -> dict[str, Detection]:
    """The config's Sigma rules as detections by id (rules that failed are left out: the
    config check reports them, and fails the run unless ``sigma.skip_invalid``)."""
    from detections.sigma_engine.correlate import correlation_detection

    found: dict[str, Detection] = {}
    s = sigma_set(cfg)
    for entry in s.entries:
        if entry.output:
            det = single_detection(entry)
            found[det.meta.id] = det
    for corr in s.correlations:
        det = correlation_detection(corr)
        found[det.meta.id] = det
    return found

