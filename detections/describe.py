"""What ``cranewatch detections show ID`` prints: a detection's description, parameters
(default, unit, the comment above it in the YAML) and test cases, for the analyst or
engineer tuning it; and whether a detection is stateful, for ``detections list``."""
from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from typing import Any

from detections.api import Detection, duration_seconds

_PARAM = re.compile(r"^  ([A-Za-z_][A-Za-z0-9_]*):")


@dataclass(frozen=True)
class ParamDoc:
    name: str
    default: Any
    unit: str
    doc: str


def shape(det: Detection) -> str:
    """``row``, ``stateful``, ``stateful:<pattern>`` (a declarative YAML pattern), ``sigma``
    or ``sigma:<correlation type>``."""
    if det.meta.id.startswith("sigma:"):  # a Sigma rule, or a Sigma correlation rule
        kind = getattr(det.stateful, "c", None)
        return f"sigma:{kind.type}" if kind is not None else "sigma"
    if det.meta.pattern is not None:
        return f"stateful:{det.meta.pattern[0]}"
    return "stateful" if det.stateful is not None else "row"


def _unit(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes/no"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    if "bytes" in name:
        return "bytes"
    if isinstance(value, str):
        try:
            duration_seconds(value)
            return "duration"
        except (ValueError, TypeError):
            return "text"
    if name in ("window", "gap") or name.endswith(("_seconds", "_period", "_interval")):
        return "seconds"
    return "count" if isinstance(value, int) else "number"


def param_docs(det: Detection) -> list[ParamDoc]:
    """Each parameter with its default, unit and the YAML comment lines just above it."""
    comments: dict[str, str] = {}
    try:
        with open(det.meta.path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError:
        lines = []
    inside, pending = False, []
    for line in lines:
        if not line.startswith(" ") and line.strip():
            inside = line.startswith("params:")
            pending = []
            continue
        if not inside:
            continue
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
            continue
        m = _PARAM.match(line)
        if m:
            comments[m.group(1)] = " ".join(pending)
        pending = [] if m or stripped else pending
    return [ParamDoc(k, v, _unit(k, v), comments.get(k, "")) for k, v in det.meta.params.items()]


def show(det: Detection) -> str:
    m = det.meta
    out = [f"{m.id}: {m.title}",
           f"stage {m.stage}  severity {m.severity}  confidence {m.confidence}  shape {shape(det)}",
           f"kinds {', '.join(m.kinds)}  techniques {', '.join(m.techniques)}", ""]
    out += textwrap.wrap(m.description, 92) + [""]
    params = param_docs(det)
    out.append("Parameters (config: detections.<id>.params):" if params else "Parameters: none")
    for p in params:
        out.append(f"  {p.name} = {p.default!r}  [{p.unit}]")
        out += textwrap.wrap(p.doc, 88, initial_indent="      ", subsequent_indent="      ") if p.doc else []
    out.append("")
    out.append(f"Test cases ({len(m.tests)}):")
    for t in m.tests:
        out.append(f"  - {t.name}: {len(t.events)} event(s), expect {t.expect} finding(s)")
    return "\n".join(out)
