"""Find reporting regimes: built-ins in ``pipelines/mandated/regimes/`` and packages that
register a module under the ``cranewatch.regimes`` entry-point group (the detections' shape).

A regime is data plus a small module: the YAML beside the module names the authority, the
legal text it cites, its deadlines and the fields it asks for, in order; the module may fill
fields of its own (``FILLERS``: field key -> function of the draft context). A broken regime
is reported with its file and key, never skipped.
"""
from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import yaml

from pipelines.mandated.clocks import Within, parse_within

BUILTIN_DIR = Path(__file__).parent / "regimes"
ENTRY_POINT_GROUP = "cranewatch.regimes"
_KEYS = {"id", "title", "authority", "citation", "legal_text", "source", "clock_start", "deadlines", "fields", "vocabulary"}
_REQUIRED = ("id", "title", "authority", "citation", "legal_text", "deadlines", "fields")


class RegimeError(Exception):
    """A regime's data is wrong; the message names the file and key."""


@dataclass(frozen=True)
class Deadline:
    id: str
    title: str
    within: Within
    citation: str
    note: str = ""  # how the tool counts it, where the regime counts differently


@dataclass(frozen=True)
class FieldSpec:
    key: str
    label: str
    asks: str  # where the regime asks for it
    analyst: str = ""  # set: always left for the analyst, with this prompt


@dataclass(frozen=True)
class Regime:
    id: str
    title: str
    authority: str
    citation: str
    legal_text: str
    source: str
    deadlines: tuple[Deadline, ...]
    fields: tuple[FieldSpec, ...]
    path: str
    vocabulary: dict[str, Any] = field(default_factory=dict)  # fixed wording the module uses
    fillers: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def meta_strings(self) -> set[str]:
        """Every fixed text of the regime (what a draft may say that no incident holds)."""
        out = {self.id, self.title, self.authority, self.citation, self.legal_text, self.source}
        for d in self.deadlines:
            out |= {d.id, d.title, d.citation, d.within.text, d.note}
        for f in self.fields:
            out |= {f.key, f.label, f.asks, f.analyst}
        stack: list[Any] = [self.vocabulary]
        while stack:
            v = stack.pop()
            if isinstance(v, dict):
                stack.extend(v.values())
            elif isinstance(v, list):
                stack.extend(v)
            elif isinstance(v, str):
                out.add(v)
        return out - {""}


def _load_yaml(text: str) -> Any:
    """``yaml.safe_load`` through libyaml when PyYAML has it (every run with reporting reads
    every regime); a document libyaml rejects is read again by the Python loader, so the
    error is worded the same whichever loader is installed."""
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 (a safe loader)
    except yaml.YAMLError:
        return yaml.safe_load(text)


def load_regime(yml: Path, module: ModuleType | None = None) -> Regime:
    path = str(yml)
    try:
        raw = _load_yaml(yml.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RegimeError(f"{path}: (file): expected readable YAML, got {exc}") from None
    if not isinstance(raw, dict):
        raise RegimeError(f"{path}: (top level): expected a mapping")
    errs = [f"{path}: {k}: unknown key; expected one of: {', '.join(sorted(_KEYS))}" for k in raw if k not in _KEYS]
    errs += [f"{path}: {k}: required key is missing" for k in _REQUIRED if k not in raw]
    if errs:
        raise RegimeError("\n".join(errs))
    if raw["id"] != yml.stem:
        errs.append(f"{path}: id: expected the file's name {yml.stem!r}, got {raw['id']!r}")
    deadlines = []
    for i, d in enumerate(raw["deadlines"] or []):
        try:
            deadlines.append(Deadline(d["id"], d["title"], parse_within(d["within"]), d["citation"],
                                      str(d.get("note", "")).strip()))
        except (KeyError, TypeError) as exc:
            errs.append(f"{path}: deadlines[{i}]: expected id, title, within and citation, missing {exc}")
        except ValueError as exc:
            errs.append(f"{path}: deadlines[{i}].within: {exc}")
    if not deadlines:
        errs.append(f"{path}: deadlines: expected at least one deadline")
    fillers = dict(getattr(module, "FILLERS", {}) or {})
    from pipelines.mandated.fields import COMMON

    specs = []
    for i, f in enumerate(raw["fields"] or []):
        if not isinstance(f, dict) or "key" not in f or "label" not in f or "asks" not in f:
            errs.append(f"{path}: fields[{i}]: expected key, label and asks")
            continue
        spec = FieldSpec(f["key"], f["label"], f["asks"], str(f.get("analyst", "")).strip())
        if not spec.analyst and spec.key not in COMMON and spec.key not in fillers:
            errs.append(f"{path}: fields[{i}].key: expected a common field ({', '.join(sorted(COMMON))}), "
                        f"one the module fills, or an analyst prompt, got {spec.key!r}")
        specs.append(spec)
    if errs:
        raise RegimeError("\n".join(errs))
    return Regime(raw["id"], raw["title"], raw["authority"], raw["citation"], str(raw["legal_text"]).strip(),
                  raw.get("source", ""), tuple(deadlines), tuple(specs), path, raw.get("vocabulary") or {}, fillers)


def _from_module(module: ModuleType) -> Regime:
    yml = Path(module.__file__ or "").with_suffix(".yml")
    if not yml.exists():
        raise RegimeError(f"{yml}: (file): expected the regime's YAML beside {module.__file__}")
    return load_regime(yml, module)


@lru_cache(maxsize=1)
def load_regimes() -> dict[str, Regime]:
    """Every regime by id: built-ins first, then entry-point plugins."""
    found: dict[str, Regime] = {}
    for yml in sorted(BUILTIN_DIR.glob("*.yml")):
        regime = _from_module(importlib.import_module(f"pipelines.mandated.regimes.{yml.stem}"))
        found[regime.id] = regime
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        regime = _from_module(ep.load())
        if regime.id in found:
            raise RegimeError(f"{regime.path}: id: expected a unique regime id, got {regime.id!r} twice")
        found[regime.id] = regime
    return found
