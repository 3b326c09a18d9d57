"""STIX export cost per incident: this checkout against a reference checkout, interleaved.

    .venv/bin/python bench/export_bench.py --run OUT --config CFG [--reference DIR] [--rounds 3]

``OUT`` is a finished run's output (its ``incidents.jsonl``), ``CFG`` that run's config.
Each round times, in fresh processes one after the other (reference, current, reference,
...), building and writing every incident's bundle for every sharing profile, exactly as the
batch export does (``incident_bundle`` + ``write_bundle``), and prints ms per incident with
the load average beside it, then the ratio current/reference. The first incident is built
once untimed in each process (imports, data files), so the figure is the steady per-incident
cost of a worker. ``--reference`` is a directory holding another checkout's packages (e.g.
``git archive <commit> stix_export transforms pipelines detections | tar -x -C DIR``); without
it only this checkout is timed. Not a test: timing depends on the machine and its load.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(run: str, config: str, out: str) -> float:
    """ms per incident for building and writing every incident's bundles (all profiles)."""
    from pipelines.config import load_config
    from stix_export.bundle import incident_bundle
    from stix_export.redact import load_secret
    from stix_export.writer import profile_dir_name, write_bundle
    from transforms.model import Incident

    cfg = load_config(config)
    secret = load_secret(cfg)
    with open(os.path.join(run, "incidents.jsonl"), encoding="utf-8") as fh:
        incidents = [Incident.from_dict(json.loads(line)) for line in fh if line.strip()]
    profiles = cfg.export.effective_profiles()

    def export(incident: Incident) -> None:
        for p in profiles:
            write_bundle(incident_bundle(incident, cfg, p, secret), out, profile_dir_name(p.name, profiles[0].name))

    export(incidents[0])  # imports, data files, compiled patterns: once per worker
    start = time.perf_counter()
    for incident in incidents[1:]:
        export(incident)
    return (time.perf_counter() - start) * 1000 / max(1, len(incidents) - 1)


def _timed(code_dir: str, args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([code_dir, str(ROOT)])}
        res = subprocess.run(
            [sys.executable, __file__, "--worker", "--run", args.run, "--config", args.config, "--out", out],
            env=env, capture_output=True, text=True, check=True,
        )
        return float(res.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--reference")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(f"{worker(args.run, args.config, args.out):.3f}")
        return 0
    with open(os.path.join(args.run, "incidents.jsonl"), encoding="utf-8") as fh:
        n = sum(1 for line in fh if line.strip())
    print(f"{n} incidents ({n - 1} timed per process), every sharing profile, {args.rounds} round(s)")
    sides = [("reference", args.reference)] if args.reference else []
    sides.append(("current", str(ROOT)))
    times: dict[str, list[float]] = {name: [] for name, _ in sides}
    for r in range(args.rounds):
        for name, code in sides:
            ms = _timed(code, args)
            times[name].append(ms)
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"round {r + 1} {name:9s} {ms:8.2f} ms/incident   load {load}")
    for name, values in times.items():
        print(f"{name:9s} best {min(values):8.2f} ms/incident  median {sorted(values)[len(values) // 2]:8.2f}")
    if args.reference:
        print(f"current/reference (best): {min(times['current']) / min(times['reference']):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
