"""``cranewatch sigma check RULES...``: lint Sigma rules before a run loads them.

Detection engineers bring rules from SigmaHQ or write their own; this says, per rule,
what cranewatch will do with it: which configured sources it applies to (or that its log
source is not mapped), which of its fields no source fills, which values or modifiers the
engine cannot evaluate (the rule is then not run), and which rules fall back to row-wise
evaluation. Exit status 1 when a rule does not load or cannot be evaluated, 0 otherwise
(warnings only); 2 on bad arguments or config.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Optional

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@dataclass
class RuleReport:
    """What ``sigma check`` found about one rule (or one file that did not load)."""

    file: str
    id: str = ""
    title: str = ""
    type: str = "rule"  # rule | correlation | load-error
    logsource: str = ""
    pipeline: Optional[str] = None  # the taxonomy used, None: not mapped
    applies_to: list[str] = field(default_factory=list)  # configured sources (or formats without --config)
    vectorized: Optional[bool] = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("sigma", help="Sigma rules: lint them and show which sources they apply to")
    ssub = s.add_subparsers(dest="action", required=True)
    c = ssub.add_parser("check", help="load rules, name load errors, unmapped fields, unsupported modifiers, "
                        "row-wise rules and the sources each rule applies to")
    c.add_argument("rules", nargs="+", help="Sigma rule files or folders")
    c.add_argument("--config", help="a config file: list its sources per rule and apply its sigma.pipelines "
                   "files (default: none, formats are listed)")
    c.add_argument("--strict", action="store_true", help="warnings fail the check too")
    c.add_argument("--json", action="store_true", help="machine-readable output")


def _logsource_text(ls: Any) -> str:
    parts = [f"{k}: {getattr(ls, k)}" for k in ("category", "product", "service") if getattr(ls, k, None)]
    return "{" + ", ".join(parts) + "}"


def check(paths: Iterable[str], cfg: Any = None) -> list[RuleReport]:
    """One report per rule loaded and per file that failed to load."""
    from detections.sigma_engine.compile import compile_rule, rule_id
    from detections.sigma_engine.engine import _pipeline_files, pipeline_of, rule_paths
    from detections.sigma_engine.load import load_rules
    from detections.sigma_engine.pipelines import regex_on_rewritten, sources_for, taxonomy_for, unmapped_fields

    extra, pipe_errors = _pipeline_files(rule_paths(cfg)[1] if cfg is not None else ())
    loaded = load_rules(list(paths))
    reports = [RuleReport(file=f, type="load-error", errors=[reason]) for f, reason in [*loaded.errors, *pipe_errors]]
    sources = [s for s in getattr(cfg, "sources", []) if getattr(s, "enabled", True)]
    compiled: dict[str, RuleReport] = {}
    for rule in loaded.rules:
        rep = RuleReport(file=loaded.file_of(rule), id=rule_id(rule), title=rule.title or "",
                         logsource=_logsource_text(rule.logsource))
        tax = taxonomy_for(rule.logsource)
        if tax is None:
            rep.warnings.append(f"log source {rep.logsource} is not mapped: the rule applies to no source "
                                "(add a sigma pipelines: entry for it)")
        else:
            rep.pipeline = tax.name
            rep.applies_to = (sources_for(rule.logsource, sources) if cfg is not None
                              else sorted(tax.formats))
            if cfg is not None and not rep.applies_to:
                rep.warnings.append(f"no configured source reads {tax.name} ({', '.join(tax.formats)})")
            for f in unmapped_fields(rule):
                rep.warnings.append(f"field {f}: not mapped for {tax.name} (looked up as attrs.{f}; "
                                    "events without that key never match it)")
            for f in regex_on_rewritten(rule):
                prefix = tax.prefixes.get(f, "")
                rep.warnings.append(f"field {f}: a re value is matched against the event's form of the value "
                                    f"({'prefixed ' + repr(prefix) if prefix else 'as renamed by the parser'}; "
                                    "see docs/detections.md)")
            c = compile_rule(rule, pipeline_of(rule.logsource, extra))
            rep.vectorized = c.vectorized
            for reason in c.unsupported:
                rep.errors.append(f"not supported, the rule is not run: {reason}")
            if not c.unsupported and not c.vectorized:
                rep.warnings.append("evaluated row-wise (a value Arrow cannot match, e.g. a regex RE2 does not "
                                    "accept or a fieldref with startswith/endswith): slower on large sources")
        compiled[str(rule.id) if rule.id else ""] = rep
        if rule.name:
            compiled[rule.name] = rep
        reports.append(rep)
    for corr in loaded.correlations:
        rep = RuleReport(file=loaded.file_of(corr), id=rule_id(corr), title=corr.title or "", type="correlation")
        refs = []
        for ref in corr.rules:
            target = getattr(ref, "rule", None)
            key = (str(target.id) if getattr(target, "id", None) else "") if target is not None else ""
            base = compiled.get(key) or compiled.get(getattr(target, "name", None) or "")
            refs.append(getattr(ref, "reference", "?"))
            if base is not None:
                rep.applies_to += [s for s in base.applies_to if s not in rep.applies_to]
                if base.errors:
                    rep.errors.append(f"rule {getattr(ref, 'reference', '?')} it correlates cannot be evaluated")
        kind = getattr(getattr(corr, "type", None), "name", str(getattr(corr, "type", ""))).lower()
        rep.logsource = f"{kind} of {', '.join(refs)}"
        reports.append(rep)
    return reports


def run(args: argparse.Namespace) -> int:
    cfg = None
    if args.config:
        from pipelines.config import load_config

        cfg = load_config(args.config)  # ConfigError: the CLI prints it and exits 2
    reports = check(args.rules, cfg)
    errors = sum(len(r.errors) for r in reports)
    warnings = sum(len(r.warnings) for r in reports)
    if args.json:
        print(json.dumps([asdict(r) for r in reports], indent=2))
    else:
        for r in reports:
            print(_text(r, cfg is not None))
        rules = sum(r.type == "rule" for r in reports)
        corrs = sum(r.type == "correlation" for r in reports)
        print(f"{rules} rules, {corrs} correlation rules: {errors} errors, {warnings} warnings")
    return EXIT_FAILED if errors or (args.strict and warnings) else EXIT_OK


def _text(r: RuleReport, configured: bool) -> str:
    if r.type == "load-error":
        return f"{r.file}: error: {r.errors[0]}"
    head = f"{r.file}: {r.title} ({r.id}) {r.logsource}"
    lines = [head]
    if r.type == "rule":
        how = "not mapped" if r.pipeline is None else (
            f"pipeline {r.pipeline}, " + ("vectorized" if r.vectorized else "row-wise" if r.vectorized is False else ""))
        lines.append(f"  {how}")
    what = "sources" if configured else "formats"
    lines.append(f"  applies to {what}: {', '.join(r.applies_to) if r.applies_to else '(none)'}")
    lines += [f"  error: {e}" for e in r.errors]
    lines += [f"  warning: {w}" for w in r.warnings]
    return "\n".join(lines)
