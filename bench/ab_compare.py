"""A/B: this checkout's ``cranewatch run`` against a reference checkout's, on one corpus.

For a speed change that must not change what a run writes. Runs alternate (A, B, A, B, ...)
in one process run so both see the same machine load; each line prints the wall and CPU
time of the whole ``cranewatch run`` process, its peak RSS and the load average beside it,
and the end prints the B/A ratios per pair and their median. Every run's output folder is
compared with the first reference run's, file by file and byte for byte; only what states
the run itself (wall time, run id, PID, start and end time, "run took", and the reporting
clocks' "due in" / "overdue by", counted from the wall clock) is masked first. Any other difference fails the script (exit status 1).

    .venv/bin/python bench/ab_compare.py --ref ../main --events 1000000 --pairs 3

The reference is any checkout of this project (a ``git worktree`` of main, say); both run
with this venv's Python and libraries, each with its own source tree first on the path.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._corpus import ROOT, cached_corpus, header  # noqa: E402

RUN = "import sys; from pipelines.cli import main; sys.exit(main())"
#: Keys that state the run itself, not its results (summary.json, _complete.json).
VOLATILE_KEYS = {"wall_seconds", "events_per_second", "run_id", "pid", "started", "finished"}
#: Files whose text states the run's wall time or the time it was made at.
VOLATILE_TEXT = [
    (re.compile(r"run took [0-9.]+ s"), "run took _ s"),
    (re.compile(r"(overdue by|due in) [0-9dhm ]+"), r"\1 _"),
]


def run_once(checkout: str, config: str, out: str) -> tuple[float, float, int]:
    """One ``cranewatch run`` with ``checkout``'s code: (wall seconds, CPU seconds (user +
    system), peak RSS in MB). CPU time moves less with other work on the machine."""
    env = {**os.environ, "PYTHONPATH": os.path.abspath(checkout)}
    cmd = [sys.executable, "-c", RUN, "run", "--config", config, "--output", out, "--quiet"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{checkout}: cranewatch run failed ({proc.returncode}):\n{err.decode(errors='replace')[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def _normalized(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name in ("summary.json", "_complete.json"):
        doc = json.loads(data)
        return json.dumps(_drop(doc, path.name), sort_keys=True).encode()
    if path.suffix == ".html":
        text = data.decode()
        for pattern, repl in VOLATILE_TEXT:
            text = pattern.sub(repl, text)
        return text.encode()
    return data


def _drop(doc: object, name: str) -> object:
    if isinstance(doc, dict):
        out = {k: _drop(v, name) for k, v in doc.items() if k not in VOLATILE_KEYS}
        if name == "_complete.json" and isinstance(out.get("files"), dict):  # sizes of masked files
            out["files"] = {k: v for k, v in out["files"].items() if not k.endswith((".html", "summary.json"))}
        return out
    if isinstance(doc, list):
        return [_drop(v, name) for v in doc]
    return doc


def differences(a: str, b: str) -> list[str]:
    """Files that differ (or exist on one side only) between two output folders."""
    def files(root: str) -> set[str]:
        return {str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file()}

    fa, fb = files(a), files(b)
    out = [f"only in {a}: {f}" for f in sorted(fa - fb)] + [f"only in {b}: {f}" for f in sorted(fb - fa)]
    out += [f"differs: {f}" for f in sorted(fa & fb)
            if _normalized(Path(a, f)) != _normalized(Path(b, f))]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", required=True, help="the reference checkout (A)")
    ap.add_argument("--new", default=ROOT, help="the checkout under test (B; default: this one)")
    ap.add_argument("--config", help="a corpus's config.yaml (default: the generated corpus)")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-out"))
    args = ap.parse_args()
    config = args.config or os.path.join(cached_corpus(args.out, "corpus", args.events, args.seed), "config.yaml")
    print(header())
    print(f"A (reference): {os.path.abspath(args.ref)}\nB (new):       {os.path.abspath(args.new)}\ncorpus: {config}")
    first = os.path.join(args.out, "ab-A-1")
    ratios, cpu_ratios, failed = [], [], False
    for i in range(1, args.pairs + 1):
        walls, cpus = {}, {}
        for label, checkout in (("A", args.ref), ("B", args.new)):
            out = os.path.join(args.out, f"ab-{label}-{i}")
            load = open("/proc/loadavg").read().split()[0]
            walls[label], cpus[label], rss = run_once(checkout, config, out)
            diff = differences(first, out) if out != first else []
            failed |= bool(diff)
            print(f"pair {i} {label}: {walls[label]:7.2f} s wall  {cpus[label]:7.2f} s CPU  peak RSS {rss:5d} MB  "
                  f"load {load:>5}  "
                  f"{'identical' if not diff else f'{len(diff)} DIFFERENT'}")
            for d in diff[:20]:
                print(f"    {d}")
        ratios.append(walls["B"] / walls["A"])
        cpu_ratios.append(cpus["B"] / cpus["A"])
        print(f"pair {i} B/A wall: {ratios[-1]:.3f}  CPU: {cpu_ratios[-1]:.3f}")
    print(f"B/A, median of {len(ratios)} pairs: wall {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}), CPU {statistics.median(cpu_ratios):.3f}; "
          f"outputs {'DIFFER' if failed else 'byte-identical'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
