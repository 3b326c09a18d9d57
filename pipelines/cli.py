"""The ``cranewatch`` command line.

Exit status: 0 success, 1 a failed run (or failing detection tests), 2 bad config or
arguments. Config errors are printed one per line, all at once, naming file and key.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from pipelines.config import ConfigError, load_config

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _split_beam_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``cranewatch run --config X -- --runner=...``: everything after ``--`` goes to Beam."""
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def _allow_root_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-root", action="append", default=[], metavar="DIR",
                   help="a folder outside the config's own that source paths may read, like the config's "
                        "allowed_roots: (repeatable; default: none)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cranewatch",
        description="Correlate crane OT, flow and vendor remote-access logs into incidents; export STIX 2.1.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write a realistic sample terminal dataset with planted scenarios")
    g.add_argument("--out", required=True, help="directory for logs, config.yaml and truth.json")
    g.add_argument("--events", type=int, default=20000, help="number of log records (default 20000)")
    g.add_argument("--seed", type=int, default=7)
    g.add_argument("--formats", default="", help="write remote-access/flow logs in these formats instead "
                   "(comma-separated: globalprotect, openvpn_log, openvpn_status, remote_access_jsonl, "
                   "windows_security; suricata_eve, nfdump_csv, nfdump_json)")
    g.add_argument("--benign-only", action="store_true",
                   help="the same benign traffic with no planted scenario (truth.json lists none): a false-positive corpus")

    r = sub.add_parser("run", help="batch run over archived logs (Beam local runner)")
    r.add_argument("--config", required=True)
    r.add_argument("--output", default="cranewatch-out")
    r.add_argument("--quiet", action="store_true", help="no summary table")
    _allow_root_option(r)

    v = sub.add_parser("validate", help="check a config file, the files it names and the detections; "
                       "report every error")
    v.add_argument("--config", required=True)
    _allow_root_option(v)

    d = sub.add_parser("detections", help="list detections or run their test cases")
    dsub = d.add_subparsers(dest="action", required=True)
    dl = dsub.add_parser("list")
    dl.add_argument("--config", help="show enabled/disabled as configured")
    dt_ = dsub.add_parser("test")
    dt_.add_argument("id", nargs="?", help="one detection id (default: all)")

    m = sub.add_parser("demo", help="generate a sample terminal and run the batch pipeline on it")
    m.add_argument("--out", default="demo-out")
    m.add_argument("--events", type=int, default=50000)
    m.add_argument("--seed", type=int, default=7)

    from stix_export.cli import add_parsers as add_sharing_parsers  # share, intel (ISAC in/out)

    add_sharing_parsers(sub)
    from pipelines.formats_cli import add_parsers as add_format_parsers  # formats list

    add_format_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    own, beam_args = _split_beam_args(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(own)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Beam warns at import about optional GCP client libraries a local run never uses.
    logging.getLogger().handlers[0].addFilter(lambda r: "apitools not found" not in r.getMessage())
    try:
        if args.command == "generate":
            return _generate(args.out, args.events, args.seed, args.formats, benign_only=args.benign_only)
        if args.command == "run":
            return _run(args.config, args.output, beam_args, quiet=args.quiet, allow_roots=args.allow_root)
        if args.command == "validate":
            return _validate(args.config, args.allow_root)
        if args.command == "detections":
            return _detections(args)
        if args.command in ("share", "intel"):
            from stix_export.cli import run as run_sharing

            return run_sharing(args)
        if args.command == "formats":
            from pipelines.formats_cli import run as run_formats

            return run_formats(args)
        if args.command == "demo":
            data = os.path.join(args.out, "data")
            rc = _generate(data, args.events, args.seed)
            return rc or _run(os.path.join(data, "config.yaml"), args.out, beam_args)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return EXIT_USAGE
    return EXIT_USAGE


def _generate(out: str, events: int, seed: int, formats: str = "", benign_only: bool = False) -> int:
    from pipelines.generate import generate

    if events < 1:
        print(f"--events: expected a positive number, got {events}", file=sys.stderr)
        return EXIT_USAGE
    from pipelines.generate.extra_formats import apply as apply_formats, check as check_formats

    wanted = [f.strip() for f in formats.split(",") if f.strip()]
    try:
        check_formats(wanted)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    info = generate(out, events=events, seed=seed, benign_only=benign_only)
    if wanted:  # the remote-access/flow logs in other formats: pipelines/generate/extra_formats.py
        apply_formats(out, wanted)
    print(f"wrote {info.get('events', events):,} records and {len(info.get('scenarios', []))} planted scenarios"
          f"{' (benign only)' if benign_only else ''} to {out}")
    return EXIT_OK


def _validate(config: str, allow_roots: list[str]) -> int:
    """The run's own pre-flight checks (pipelines/preflight.py); a source matching no file
    is an error here, where a run only warns."""
    from pipelines.preflight import check

    cfg = check(config, allow_roots, empty_is_error=True).cfg
    print(f"{config}: OK ({len(cfg.sources)} sources, {len(cfg.inventory.assets)} assets)")
    return EXIT_OK


def _run(config: str, output: str, beam_args: list[str], quiet: bool = False,
         allow_roots: Sequence[str] = ()) -> int:
    from pipelines.batch import run_batch
    from pipelines.preflight import check
    from pipelines.summary import build_summary, print_summary, write_summary

    checked = check(config, allow_roots)  # the same checks as validate: any failing one exits 2
    cfg = checked.cfg
    for name in checked.empty_sources:  # a typo'd glob would otherwise read nothing quietly
        print(f"{config}: sources.{name}: warning: paths matched no files "
              f"(relative to {cfg.base_dir})", file=sys.stderr)
    try:
        result = run_batch(cfg, output, beam_args)
    except Exception as exc:  # a failed run: report it and exit 1, never a traceback dump
        logging.getLogger("cranewatch").exception("batch run failed")
        print(f"cranewatch run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    summary = build_summary(cfg, result)
    path = write_summary(summary, output)
    if not quiet:
        print_summary(summary)
        print(f"outputs in {output}/ (summary: {path})")
    return EXIT_OK


def _detections(args: argparse.Namespace) -> int:
    from detections.registry import load_registry
    from detections.testing import run_case

    registry = load_registry()
    if args.action == "list":
        cfg = load_config(args.config) if args.config else None
        rows = [(det_id, "yes" if (cfg.detections[det_id].enabled if cfg and det_id in cfg.detections else True)
                 else "no", ",".join(det.meta.kinds), ",".join(det.meta.techniques), det.meta.title)
                for det_id, det in sorted(registry.items())]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(("id", "enabled", "kinds", "techniques"))]
        for row in [("id", "enabled", "kinds", "techniques", "title"), *rows]:
            print(" ".join(f"{v:{w}}" for v, w in zip(row, widths)) + f" {row[4]}")
        return EXIT_OK
    ids = [args.id] if args.id else sorted(registry)
    unknown = [i for i in ids if i not in registry]
    if unknown:
        print(f"detections test: expected a known detection id ({', '.join(sorted(registry))}), got {unknown[0]!r}", file=sys.stderr)
        return EXIT_USAGE
    failed = 0
    total = 0
    for det_id in ids:
        det = registry[det_id]
        for case in det.meta.tests:
            total += 1
            got = len(run_case(det, case))
            ok = got == case.expect
            failed += not ok
            print(f"{'PASS' if ok else 'FAIL'} {det_id}: {case.name} (expected {case.expect}, got {got})")
    print(f"{total - failed} passed, {failed} failed")
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
