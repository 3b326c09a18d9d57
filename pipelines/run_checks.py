"""What a run says about its input: nothing read, mostly rejected, overlapping or unread files.

A security tool that reads nothing and reports no incidents looks exactly like an all-clear,
so the run summary states why a run found nothing to look at (and the run exits 1), and
points at the likely mistake in a config: a source reading the wrong format, two sources
reading one file, a log in a source's folder that no source reads.
"""
from __future__ import annotations

import glob
import json
import os
from collections import Counter, defaultdict
from typing import Any, Iterable

from pipelines.config import Config, resolve_sources
from transforms.reasons import reason_code, reason_label

#: A source with more than this share of its records dead-lettered gets a hint.
MOSTLY_DEAD = 0.5
_ADVICE = {
    "wrong_format": "wrong format for these files?",
    "invalid_json": "wrong format for these files?",
    "field_count": "wrong format (or delimiter) for these files?",
    "not_utf8": "wrong format or encoding for these files?",
    "bad_time": "wrong timezone or time format for this source?",
    "truncated": "damaged or truncated files?",
    "unreadable_file": "damaged or unreadable files?",
}
_LISTED = 50  # file names listed per problem in summary.json (the count is always complete)


def dead_letter_counts(path: str) -> tuple[dict[str, dict[str, int]], dict[tuple[str, str], str], int]:
    """(source → reason code → count, (source, code) → most common reason label, late findings)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    labels: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    late = 0
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                d = json.loads(line)
                code = d.get("reason_code") or reason_code(d.get("reason", ""))
                counts[d["source"]][code] += 1
                labels[(d["source"], code)][reason_label(d.get("reason", ""))] += 1
                late += bool(d.get("late"))
    return ({s: dict(sorted(c.items())) for s, c in sorted(counts.items())},
            {k: c.most_common(1)[0][0] for k, c in labels.items()}, late)


def verdict(sources: dict[str, dict[str, int]], input_files: int) -> tuple[str, str]:
    """("ok", "") or (status, message) for a run that has nothing to show."""
    read = sum(s["read"] for s in sources.values())
    parsed = sum(s["parsed"] for s in sources.values())
    if input_files == 0:
        return "no_input", "no source matched any file: nothing was read (check the sources' paths)"
    if read == 0:
        return "nothing_read", f"the {input_files} input file(s) held no records"
    if parsed == 0:
        return "all_dead_lettered", (f"every one of the {read:,} records read was dead-lettered: nothing was "
                                     "analysed (see deadletter/deadletter.jsonl)")
    return "ok", ""


def _folders(cfg: Config) -> list[tuple[str, bool]]:
    """(folder, recursive) that each source's paths point into."""
    out = []
    for s in cfg.sources:
        for pattern in s.paths:
            full = pattern if os.path.isabs(pattern) else os.path.join(cfg.base_dir, pattern)
            if os.path.isdir(full):
                out.append((os.path.normpath(full), True))
                continue
            parts = full.split(os.sep)
            static = [p for p in parts[: next((i for i, p in enumerate(parts) if glob.has_magic(p)), len(parts) - 1)]]
            folder = os.sep.join(static) or os.sep
            out.append((os.path.normpath(folder), "**" in pattern))
    return out


def _disabled_files(cfg: Config) -> set[str]:
    files: set[str] = set()
    for s in cfg.sources:
        if s.enabled:
            continue
        for pattern in s.paths:
            full = pattern if os.path.isabs(pattern) else os.path.join(cfg.base_dir, pattern)
            if os.path.isdir(full):
                files.update(os.path.join(d, n) for d, _, names in os.walk(full) for n in names)
            else:
                files.update(glob.glob(full, recursive=True))
    return {os.path.realpath(f) for f in files}


def _under(path: str, folders: Iterable[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip(os.sep) + os.sep) for f in folders)


def input_problems(cfg: Config, sources: dict[str, dict[str, int]], dead: dict[str, dict[str, int]],
                   labels: dict[tuple[str, str], str], exclude: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Problems worth a line after the run: each ``{"kind", "message", ...}``."""
    problems: list[dict[str, Any]] = []
    resolved = resolve_sources(cfg)
    for src in resolved:
        if not src.files:
            problems.append({"kind": "no_files", "source": src.name,
                             "message": f"{src.name}: paths matched no files (relative to {cfg.base_dir})"})
    for name, s in sources.items():
        if s["read"] and s["dead_lettered"] / s["read"] > MOSTLY_DEAD:
            code, _ = max(dead.get(name, {"other": 0}).items(), key=lambda kv: kv[1])
            share = round(100 * s["dead_lettered"] / s["read"])
            label = labels.get((name, code), code)
            problems.append({"kind": "mostly_dead_lettered", "source": name, "reason_code": code, "percent": share,
                             "message": f"{name}: {share}% {label}: {_ADVICE.get(code, 'see deadletter/deadletter.jsonl')}"})
    readers: dict[str, list[str]] = defaultdict(list)
    for src in resolved:
        for f in src.files:
            readers[os.path.realpath(f)].append(src.name)
    for path, names in sorted(readers.items()):
        if len(names) > 1:
            problems.append({"kind": "file_read_twice", "file": path, "sources": names,
                             "message": f"{path} is read by {len(names)} sources ({', '.join(names)}): "
                                        "its records are counted and detected on twice"})
    skip = [os.path.realpath(e) for e in exclude]
    unread: set[str] = set()
    for folder, recursive in _folders(cfg):
        if not os.path.isdir(folder) or _under(os.path.realpath(folder), skip):
            continue
        if recursive:
            found = (os.path.join(d, n) for d, dirs, names in os.walk(folder) for n in names)
        else:
            found = (os.path.join(folder, n) for n in os.listdir(folder))
        for f in found:
            real = os.path.realpath(f)
            if (os.path.isfile(real) and not os.path.basename(f).startswith(".") and real not in readers
                    and not _under(real, skip)):
                unread.add(real)
    unread -= _disabled_files(cfg)
    if unread:
        names = sorted(os.path.relpath(f, cfg.base_dir) for f in unread)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        problems.append({"kind": "unread_files", "count": len(names), "files": names[:_LISTED],
                         "message": f"{len(names)} file(s) in the sources' folders are read by no source: {shown}"})
    return problems
