"""The ``cranewatch`` command line.

Exit status: 0 success, 1 a failed run (or one that found nothing to analyse, or failing
detection tests), 2 bad config or arguments, 130 interrupted (Ctrl-C). Config errors are
printed one per line, all at once, naming file and key.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Sequence

from pipelines.config import ConfigError, load_config
from pipelines.html_report import write_reports

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _HelpFormatter(argparse.HelpFormatter):
    """Help lines end with the option's default, unless the help text already states it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" not in text and action.default not in (None, False, argparse.SUPPRESS)
                and action.option_strings):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


class _VersionAction(argparse.Action):
    """``--version``; the version string is built only when asked for (it imports Beam)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(version())
        parser.exit()


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as dist_version

    try:
        own = dist_version("cranewatch")
    except PackageNotFoundError:
        own = "unknown"
    try:
        beam = dist_version("apache-beam")
    except PackageNotFoundError:
        beam = "not installed"
    return f"cranewatch {own} (apache-beam {beam}, Python {sys.version.split()[0]})"


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
                        "allowed_roots: (repeatable; default: [], the config's folder only)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="cranewatch",
        description="Correlate crane OT, flow and vendor remote-access logs into incidents; export STIX 2.1.",
    )
    p.add_argument("--version", action=_VersionAction, help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    g = sub.add_parser("generate", help="write a realistic sample terminal dataset with planted scenarios")
    g.add_argument("--out", required=True, help="directory for logs, config.yaml and truth.json")
    g.add_argument("--events", type=int, default=20000, help="number of log records (default 20000)")
    g.add_argument("--seed", type=int, default=7, help="random seed: the same seed writes the same corpus")
    g.add_argument("--formats", default="", help="write remote-access/flow logs in these formats instead "
                   "(comma-separated: globalprotect, openvpn_log, openvpn_status, remote_access_jsonl, "
                   "windows_security; suricata_eve, nfdump_csv, nfdump_json)")
    g.add_argument("--benign-only", action="store_true",
                   help="the same benign traffic with no planted scenario (truth.json lists none): a false-positive corpus")

    r = sub.add_parser("run", help="batch run over archived logs (Beam local runner)")
    r.add_argument("--config", required=True, help="the config file (YAML) naming sources, site and export")
    _run_options(r, "cranewatch-out")
    _allow_root_option(r)

    st = sub.add_parser("stream", help="streaming run over spool directories, until stopped (Prism; any Beam job server)")
    st.add_argument("--config", required=True, help="the config file (YAML); sources need a spool: directory")
    st.add_argument("--output", default="cranewatch-out",
                    help="where bundles, rolling JSONL files and summary.json go (default: cranewatch-out)")
    st.add_argument("--allow-open-ports", action="store_true",
                    help="run without a private network namespace: the runner's ports then listen on every "
                    "interface (only behind a firewall that blocks them; default: off)")

    v = sub.add_parser("validate", help="check a config file, the files it names and the detections; "
                       "report every error")
    v.add_argument("--config", required=True, help="the config file to check")
    _allow_root_option(v)

    d = sub.add_parser("detections", help="list detections or run their test cases")
    dsub = d.add_subparsers(dest="action", required=True)
    dl = dsub.add_parser("list", help="every detection with its kinds and ATT&CK techniques")
    dl.add_argument("--config", help="show enabled/disabled as configured")
    ds = dsub.add_parser("show", help="description, parameters (defaults, units) and test cases")
    ds.add_argument("id", help="a detection id (see detections list)")
    dt_ = dsub.add_parser("test", help="run the detections' own test cases")
    dt_.add_argument("id", nargs="?", help="one detection id (default: all)")

    m = sub.add_parser("demo", help="generate a sample terminal and run the batch pipeline on it")
    m.add_argument("--out", default="demo-out", help="folder for the sample data (data/) and the run's outputs")
    m.add_argument("--events", type=int, default=50000, help="number of log records to generate")
    m.add_argument("--seed", type=int, default=7, help="random seed of the sample terminal")
    _run_options(m, None)

    from stix_export.cli import add_parsers as add_sharing_parsers  # share, intel (ISAC in/out)

    add_sharing_parsers(sub)
    from pipelines.formats_cli import add_parsers as add_format_parsers  # formats list

    add_format_parsers(sub)
    from pipelines.sigma_cli import add_parsers as add_sigma_parsers  # sigma check

    add_sigma_parsers(sub)
    return p


def _run_options(p: argparse.ArgumentParser, output_default: str | None) -> None:
    if output_default is not None:
        p.add_argument("--output", default=output_default,
                       help="output folder; each run replaces it whole, all at once")
    p.add_argument("--quiet", action="store_true",
                   help="no progress and no tables; still prints where the outputs went and any failure")
    p.add_argument("--verbose", action="store_true", help="also show Apache Beam's own log lines")


def _setup_logging(verbose: bool) -> None:
    """Warnings and errors only; Beam's own lines (INFO, and its start-up warnings) only when verbose."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    # Beam warns at import (on the root logger) about optional GCP client libraries a local
    # run never uses.
    logging.getLogger().handlers[0].addFilter(lambda r: "apitools not found" not in r.getMessage())
    logging.getLogger("apache_beam").setLevel(logging.INFO if verbose else logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    own, beam_args = _split_beam_args(sys.argv[1:] if argv is None else argv)
    _setup_logging("--verbose" in own)  # before anything imports Beam, which logs at import
    try:
        args = _parser().parse_args(own)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    try:
        if args.command == "generate":
            return _generate(args.out, args.events, args.seed, args.formats, benign_only=args.benign_only)
        if args.command == "run":
            return _run(args.config, args.output, beam_args, quiet=args.quiet, allow_roots=args.allow_root)
        if args.command == "stream":
            return _stream(args, own, beam_args)
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
        if args.command == "sigma":
            from pipelines.sigma_cli import run as run_sigma

            return run_sigma(args)
        if args.command == "demo":
            data = os.path.join(args.out, "data")
            rc = _generate(data, args.events, args.seed)
            rc = rc or _run(os.path.join(data, "config.yaml"), args.out, beam_args, quiet=args.quiet, keep=("data",))
            if rc == EXIT_OK and not args.quiet:
                _print_speed_note(args.out)
            return rc
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return EXIT_USAGE
    return EXIT_USAGE


def _print_speed_note(out: str) -> None:
    from pipelines.summary import speed_note

    with open(os.path.join(out, "summary.json"), encoding="utf-8") as fh:
        note = speed_note(json.load(fh))
    if note:
        print(note)


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
    from stix_export.intel import check_config as check_intel

    cfg = check(config, allow_roots, empty_is_error=True).cfg
    for line in check_intel(cfg, config):  # skipped indicators: id and reason
        print(line, file=sys.stderr)
    print(f"{config}: OK ({len(cfg.sources)} sources, {len(cfg.inventory.assets)} assets)")
    return EXIT_OK


def _run(config: str, output: str, beam_args: list[str], quiet: bool = False, keep: tuple[str, ...] = (),
         allow_roots: Sequence[str] = ()) -> int:
    from pipelines.batch import run_batch
    from pipelines.outputs import OutputError, OutputLocked
    from pipelines.preflight import check
    from pipelines.progress import RunProgress
    from pipelines.summary import print_summary
    from stix_export.intel import check_config as check_intel

    checked = check(config, allow_roots)  # the same checks as validate: any failing one exits 2
    cfg = checked.cfg
    from pipelines.config_sigma import report_rules

    report_rules(cfg)  # rules left out (sigma.skip_invalid) and technique tags not mapped
    for line in check_intel(cfg, config):  # unusable intel is skipped, one line each (also in summary.json)
        print(line, file=sys.stderr)
    for name in checked.empty_sources:  # a typo'd glob would otherwise read nothing quietly
        print(f"{config}: sources.{name}: warning: paths matched no files "
              f"(relative to {cfg.base_dir})", file=sys.stderr)
    try:
        result = run_batch(cfg, output, beam_args, progress=None if quiet else RunProgress(), keep=keep,
                           before_commit=lambda staging, summary: write_reports(cfg, summary, staging))
    except OutputLocked as exc:
        print(f"cranewatch run: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OutputError as exc:
        print(f"cranewatch run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"cranewatch run: interrupted; {output} still holds the previous complete run (if any)", file=sys.stderr)
        return 130
    except Exception as exc:  # a failed run: report it and exit 1, never a traceback dump
        logging.getLogger("cranewatch").exception("batch run failed")
        print(f"cranewatch run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    summary = result.summary or {}
    if not quiet:
        print_summary(summary, output)
    report = os.path.join(output, "report.html")
    where = f"outputs in {output}/ (summary: {os.path.join(output, 'summary.json')}"
    print(where + (f", report: {report})" if os.path.exists(report) else ")"))
    if summary.get("status", "ok") != "ok":
        print(f"cranewatch run: nothing to analyse: {summary['status_message']}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _stream(args: argparse.Namespace, own: list[str], beam_args: list[str]) -> int:
    """``cranewatch stream``: isolate the network, run until stopped, exit without Beam's
    slow exit hook (README "Streaming")."""
    cfg = load_config(args.config)
    from pipelines.config_sigma import report_rules
    from stix_export.redact import load_secret

    report_rules(cfg)

    load_secret(cfg)
    from pipelines.stream_kafka import kafka_sources
    from pipelines.streaming import isolate, run_stream, spool_sources

    if not spool_sources(cfg, args.output) and not kafka_sources(cfg, args.output):
        print(f"{args.config}: sources: expected at least one source with a spool: directory or a kafka: topic "
              "for cranewatch stream",
              file=sys.stderr)
        return EXIT_USAGE
    endpoint = next((a.split("=", 1)[1] for a in beam_args if a.startswith("--job_endpoint=")), None)
    if endpoint and endpoint.rsplit(":", 1)[0] not in ("localhost", "127.0.0.1", "[::1]") and not args.allow_open_ports:
        print(f"cranewatch stream: --job_endpoint={endpoint} is not on this host: a private network namespace "
              "cannot reach it; pass --allow-open-ports to submit over the network", file=sys.stderr)
        return EXIT_USAGE
    refusal = isolate([*own, *(["--", *beam_args] if beam_args else [])], args.allow_open_ports)
    if refusal:
        print(refusal, file=sys.stderr)
        return EXIT_USAGE
    if args.allow_open_ports:
        print("cranewatch stream: warning: no private network namespace; the runner's ports listen on every interface",
              file=sys.stderr)
    try:
        result = run_stream(cfg, args.output, beam_args)
    except Exception as exc:
        logging.getLogger("cranewatch").exception("stream run failed")
        print(f"cranewatch stream failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return _exit_now(EXIT_FAILED)
    print(f"stream {result.state.lower()} after {result.wall_seconds:.1f} s; outputs in {args.output}/")
    return _exit_now(EXIT_FAILED if result.state == "FAILED" else EXIT_OK)


def _exit_now(code: int) -> int:
    """Exit at once: Beam's exit hook would spend ~6 s signalling a Prism already stopped."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _detections(args: argparse.Namespace) -> int:
    from detections.registry import load_registry
    from detections.testing import run_case

    registry = load_registry()
    if args.action == "list":
        cfg = load_config(args.config) if args.config else None
        from detections.describe import shape

        if cfg is not None:  # the config's Sigma rules, beside the built-ins
            from detections.sigma_engine.engine import sigma_registry

            registry = {**registry, **sigma_registry(cfg)}

        rows = [(det_id, "yes" if (cfg.detections[det_id].enabled if cfg and det_id in cfg.detections else True)
                 else "no", shape(det), ",".join(det.meta.kinds), ",".join(det.meta.techniques), det.meta.title)
                for det_id, det in sorted(registry.items())]
        heads = ("id", "enabled", "shape", "kinds", "techniques")
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
        for row in [(*heads, "title"), *rows]:
            print(" ".join(f"{v:{w}}" for v, w in zip(row, widths)) + f" {row[-1]}")
        return EXIT_OK
    if args.action == "show":
        from detections.describe import show

        if args.id not in registry:
            print(f"detections show: expected a known detection id ({', '.join(sorted(registry))}), got {args.id!r}",
                  file=sys.stderr)
            return EXIT_USAGE
        print(show(registry[args.id]))
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
