"""Load Sigma rule files and folders with pySigma, every problem reported in one pass.

Each file is parsed on its own (pySigma's ``collect_errors``), so one broken rule names its
file and reason and the others still load; the conditions are parsed here too (pySigma
parses them lazily), so a condition naming an undefined selection is a load error, not a
failure in the middle of a run. Correlation rules are resolved against every rule loaded.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.policy.profiles import TrustedPolicy
from sigma.rule import SigmaRule

RULE_SUFFIXES = (".yml", ".yaml")


@dataclass
class LoadResult:
    rules: list[SigmaRule] = field(default_factory=list)
    correlations: list[SigmaCorrelationRule] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    #: The file each loaded rule came from, by ``id(rule)``.
    files: dict[int, str] = field(default_factory=dict)

    def file_of(self, rule: SigmaRule | SigmaCorrelationRule) -> str:
        return self.files.get(id(rule), "")


def rule_from_dict(d: dict) -> SigmaRule:
    """One rule from its parsed YAML, with the same (trusted) policy as ``load_rules``."""
    return SigmaRule.from_dict(d, policy=TrustedPolicy)


def rule_files(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[str], list[tuple[str, str]]]:
    """The rule files named by ``paths`` (folders: every .yml/.yaml below, sorted)."""
    files: list[str] = []
    errors: list[tuple[str, str]] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(str(f) for f in path.rglob("*") if f.suffix in RULE_SUFFIXES and f.is_file())
            if not found:
                errors.append((str(path), "expected a folder of Sigma rules (.yml), found none"))
            files += found
        elif path.is_file():
            files.append(str(path))
        else:
            errors.append((str(path), "expected a Sigma rule file or folder, found nothing there"))
    return list(dict.fromkeys(files)), errors


def _reason(exc: BaseException, path: str = "") -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line.removesuffix(f" in {path}") if path else line


def _check_conditions(rule: SigmaRule) -> str | None:
    try:
        for cond in rule.detection.parsed_condition:
            cond.parse()
    except SigmaError as exc:
        return _reason(exc)
    return None


def load_rules(paths: Iterable[str | os.PathLike[str]]) -> LoadResult:
    """Every rule and correlation rule in ``paths``; ``errors`` names each file that failed."""
    files, errors = rule_files(paths)
    out = LoadResult(errors=errors)
    loaded: list[SigmaRule | SigmaCorrelationRule] = []
    for path in files:
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            coll = SigmaCollection.from_yaml(text, collect_errors=True, source=SigmaRuleLocation(path),
                                             resolve_references=False, policy=TrustedPolicy)
        except (OSError, UnicodeDecodeError) as exc:
            out.errors.append((path, f"expected a readable UTF-8 file: {_reason(exc)}"))
            continue
        except yaml.YAMLError as exc:
            out.errors.append((path, f"expected valid YAML: {_reason(exc)}"))
            continue
        except SigmaError as exc:
            out.errors.append((path, _reason(exc, path)))
            continue
        bad = False
        for err in coll.errors:
            out.errors.append((path, _reason(err, path)))
            bad = True
        if bad:
            continue
        for rule in coll.rules:
            problem = _check_conditions(rule) if isinstance(rule, SigmaRule) else None
            if problem:
                out.errors.append((path, f"{rule.title or '(untitled)'}: {problem.removesuffix(f' in {path}')}"))
                continue
            out.files[id(rule)] = path
            loaded.append(rule)
        for flt in coll.filters:  # a Sigma filter is not a detection: say so, never ignore it
            out.errors.append((path, f"{flt.title or '(untitled)'}: Sigma filters are not supported"))
    _dedupe(out, loaded)
    _resolve(out, loaded)
    return out


def _dedupe(out: LoadResult, loaded: list[SigmaRule | SigmaCorrelationRule]) -> None:
    seen: dict[str, str] = {}
    for rule in list(loaded):
        for key in (str(rule.id) if rule.id else None, rule.name):
            if key is None:
                continue
            if key in seen:
                out.errors.append((out.file_of(rule), f"{rule.title}: rule id or name {key!r} already used in {seen[key]}"))
                loaded.remove(rule)
                break
            seen[key] = out.file_of(rule)


def _resolve(out: LoadResult, loaded: list[SigmaRule | SigmaCorrelationRule]) -> None:
    """Correlation references resolved against all loaded rules; a correlation naming a
    rule that is not loaded (or failed) is an error of the correlation's file."""
    coll = SigmaCollection(loaded, resolve_references=False)
    for rule in loaded:
        if isinstance(rule, SigmaCorrelationRule):
            try:
                rule.resolve_rule_references(coll)
            except SigmaError as exc:
                out.errors.append((out.file_of(rule), f"{rule.title}: {_reason(exc, out.file_of(rule))}"))
                continue
            out.correlations.append(rule)
        else:
            out.rules.append(rule)
