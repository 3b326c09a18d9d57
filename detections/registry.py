"""Find detections: built-ins in ``detections/builtin/`` and third-party packages that
register a module under the ``cranewatch.detections`` entry-point group.

Discovery reads each module's YAML sibling; a broken detection is reported with its file
and key (like a config error), never skipped silently.
"""
from __future__ import annotations

import importlib
import importlib.metadata
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from detections.declarative import PATTERNS, spec_errors
from detections.api import CONDITION_OPS, STAGES, Detection, DetectionMeta, StatefulDetection, TestCase
from transforms.model import EVENT_FIELDS, KINDS

BUILTIN_DIR = Path(__file__).parent / "builtin"
ENTRY_POINT_GROUP = "cranewatch.detections"
_META_KEYS = {
    "id", "title", "description", "severity", "confidence", "stage", "techniques",
    "kinds", "where", "params", "tests", "distinct", *PATTERNS,
}


class DetectionError(Exception):
    """A detection's metadata is wrong; the message names the file and key."""


def _where_errors(where: Any, path: str, key: str = "where") -> list[str]:
    errs: list[str] = []
    if not isinstance(where, dict):
        return [f"{path}: {key}: expected a mapping of event field to condition, got {where!r}"]
    for fname, cond in where.items():
        if fname == "not":
            errs += _where_errors(cond, path, f"{key}.not")
            continue
        if fname == "any":
            if not isinstance(cond, list) or not cond:
                errs.append(f"{path}: {key}.any: expected a non-empty list of condition blocks")
                continue
            for i, block in enumerate(cond):
                errs += _where_errors(block, path, f"{key}.any[{i}]")
            continue
        if fname not in EVENT_FIELDS:
            errs.append(f"{path}: {key}.{fname}: expected an event field ({', '.join(EVENT_FIELDS)})")
        if isinstance(cond, dict):
            for op in cond:
                if op not in CONDITION_OPS:
                    errs.append(f"{path}: {key}.{fname}.{op}: expected one of {', '.join(CONDITION_OPS)}")
    return errs


#: libyaml's loader when PyYAML has it: the same documents ~8× faster (every run reads every
#: detection's YAML, test cases included, before it starts).
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml(text: str) -> Any:
    """``yaml.safe_load``; a document libyaml rejects is read again by the Python loader,
    so the error names the place the same way whichever loader is installed."""
    try:
        return yaml.load(text, Loader=_FAST_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError:
        return yaml.safe_load(text)


def load_meta(yml: Path) -> DetectionMeta:
    path = str(yml)
    try:
        raw = _load_yaml(yml.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DetectionError(f"{path}: (yaml): expected valid YAML, got {exc}") from None
    errs: list[str] = []
    if not isinstance(raw, dict):
        raise DetectionError(f"{path}: (top level): expected a mapping")
    for k in raw:
        if k not in _META_KEYS:
            errs.append(f"{path}: {k}: unknown key; expected one of: {', '.join(sorted(_META_KEYS))}")
    for k in ("id", "title", "description", "severity", "stage", "techniques", "kinds"):
        if k not in raw:
            errs.append(f"{path}: {k}: required key is missing")
    if errs:
        raise DetectionError("\n".join(errs))
    if raw["id"] != yml.stem:
        errs.append(f"{path}: id: expected the file's name {yml.stem!r}, got {raw['id']!r}")
    if not isinstance(raw["severity"], int) or not 0 <= raw["severity"] <= 100:
        errs.append(f"{path}: severity: expected an integer 0-100, got {raw['severity']!r}")
    if raw["stage"] not in STAGES:
        errs.append(f"{path}: stage: expected one of {', '.join(STAGES)}, got {raw['stage']!r}")
    for k in raw["kinds"]:
        if k not in KINDS:
            errs.append(f"{path}: kinds: expected one of {', '.join(KINDS)}, got {k!r}")
    errs += _technique_errors(raw["techniques"], path)
    errs += _where_errors(raw.get("where", {}), path)
    errs += _param_ref_errors(raw.get("where", {}), raw.get("params") or {}, path)
    errs += spec_errors(raw, path)
    pattern = next(((k, raw[k]) for k in PATTERNS if k in raw), None)
    if pattern is not None:
        errs += _param_ref_errors(pattern[1], raw.get("params") or {}, path, pattern[0])
        for step in ("first", "then"):
            sub = pattern[1].get(step) if isinstance(pattern[1], dict) else None
            if isinstance(sub, dict) and isinstance(sub.get("where"), dict):
                errs += _where_errors(sub["where"], path, f"{pattern[0]}.{step}.where")
    distinct = raw.get("distinct", [])
    if not isinstance(distinct, list) or any(f not in EVENT_FIELDS for f in distinct):
        errs.append(f"{path}: distinct: expected a list of event fields, got {distinct!r}")
    tests = []
    for i, t in enumerate(raw.get("tests", [])):
        if not isinstance(t, dict) or "name" not in t or "events" not in t or "expect" not in t:
            errs.append(f"{path}: tests[{i}]: expected name, events and expect")
            continue
        tests.append(TestCase(t["name"], tuple(t["events"]), int(t["expect"]), t.get("config", {})))
    if errs:
        raise DetectionError("\n".join(errs))
    return DetectionMeta(
        id=raw["id"],
        title=raw["title"],
        description=raw["description"].strip(),
        severity=raw["severity"],
        confidence=int(raw.get("confidence", 70)),
        stage=raw["stage"],
        techniques=tuple(raw["techniques"]),
        kinds=tuple(raw["kinds"]),
        where=raw.get("where", {}),
        params=dict(raw.get("params", {})),
        tests=tuple(tests),
        path=path,
        distinct=tuple(distinct),
        pattern=pattern,
    )


def _param_ref_errors(where: Any, params: dict[str, Any], path: str, key: str = "where") -> list[str]:
    """``$name`` in a ``where:`` value must name a declared parameter."""
    if isinstance(where, dict):
        return [e for k, v in where.items() for e in _param_ref_errors(v, params, path, f"{key}.{k}")]
    if isinstance(where, list):
        return [e for i, v in enumerate(where) for e in _param_ref_errors(v, params, path, f"{key}[{i}]")]
    if isinstance(where, str) and where.startswith("$") and where[1:] not in params:
        return [f"{path}: {key}: expected a declared parameter ({', '.join(sorted(params)) or 'none'}), got {where!r}"]
    return []


def _technique_errors(techniques: Any, path: str) -> list[str]:
    """Technique ids must be in the ATT&CK mapping data file (detections/attack_ics.yml):
    an unknown id is rejected here, at load, not discovered at export."""
    from stix_export.attack import UnknownTechniqueError, resolve

    if not isinstance(techniques, list) or not techniques:
        return [f"{path}: techniques: expected a non-empty list of ATT&CK for ICS ids, got {techniques!r}"]
    errs = []
    for i, t in enumerate(techniques):
        try:
            resolve(str(t))
        except UnknownTechniqueError as exc:
            errs.append(f"{path}: techniques[{i}]: {exc}")
    return errs


def _from_module(module: ModuleType) -> Detection:
    yml = Path(module.__file__ or "").with_suffix(".yml")
    if not yml.exists():
        raise DetectionError(f"{yml}: (file): expected the detection's YAML beside {module.__file__}")
    meta = load_meta(yml)
    classes = [
        v for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, StatefulDetection) and v is not StatefulDetection
        and v.__module__ == module.__name__
    ]
    if len(classes) > 1:
        names = ", ".join(c.__name__ for c in classes)
        raise DetectionError(f"{module.__file__}: (module): expected at most one StatefulDetection subclass, got {names}")
    if meta.pattern is not None:
        if classes:
            raise DetectionError(f"{meta.path}: {meta.pattern[0]}: expected either a YAML pattern or a "
                                 f"StatefulDetection subclass in {module.__file__}, not both")
        from detections.declarative import build

        built = build({meta.pattern[0]: meta.pattern[1]}, getattr(module, "rule", None))
        assert built is not None
        return Detection(meta, module, built[0], built[1])
    if meta.distinct and not classes:
        raise DetectionError(f"{meta.path}: distinct: only a stateful detection (a StatefulDetection subclass) may set it")
    return Detection(meta, module, classes[0]() if classes else None)


@lru_cache(maxsize=1)
def load_registry() -> dict[str, Detection]:
    """Every detection by id: built-ins first, then entry-point plugins."""
    found: dict[str, Detection] = {}
    for yml in sorted(BUILTIN_DIR.glob("*.yml")):
        module = importlib.import_module(f"detections.builtin.{yml.stem}")
        det = _from_module(module)
        found[det.meta.id] = det
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        det = _from_module(ep.load())
        if det.meta.id in found:
            raise DetectionError(f"{det.meta.path}: id: expected a unique detection id, got {det.meta.id!r} twice")
        found[det.meta.id] = det
    return found
