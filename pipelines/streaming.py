"""The streaming job: spool directories → incidents and STIX bundles, live, on Prism.

Wiring only. The stage list is the batch job's (``pipelines/assembly.py``); the ends differ:
``transforms/spool.py`` reads the spool directories with an event-time watermark and
``transforms/stream_sinks.py`` writes incident versions as they open, grow and close. The
driver rewrites ``summary.json`` every few seconds from what the job has recorded, and
``report.html`` every ``stream.report_interval`` (``pipelines/stream_reports.py``).

Prism's job port and Beam's loopback worker port listen on every interface, and the job
API runs whatever a client submits. So by default the command runs inside a private network
namespace (``unshare --net``; loopback only), and refuses when it cannot make one, unless
``--allow-open-ports`` is given (``isolate``).
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import math
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.assembly import assemble
from pipelines.config import Config
from pipelines.outputs import write_stream_marker
from transforms.spool import END_MARKER, STATE_DIR, FinishedFiles, ReadSpools, SpoolSource, watermark_path
from transforms.kafka_source import KafkaSource, ReadKafka
from transforms.stream_sinks import WriteStreamOutputs, open_versions

log = logging.getLogger("cranewatch.stream")
NETNS_ENV = "CRANEWATCH_NETNS"  # set on the re-executed command inside the namespace
PRISM_ENV = "CRANEWATCH_PRISM"  # a Prism binary to use instead of the project's cache


def prism_location() -> str:
    """The Prism binary matching the installed Beam: $CRANEWATCH_PRISM, the project cache
    (``make prism``), or ``prism`` on PATH."""
    if os.environ.get(PRISM_ENV):
        return os.environ[PRISM_ENV]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cached = os.path.join(root, ".cache", "prism", f"v{beam.__version__}", "prism")
    return cached if os.path.exists(cached) else (shutil.which("prism") or cached)


def stream_beam_args(beam_args: Sequence[str]) -> list[str]:
    """Prism with a loopback worker unless the user names another runner."""
    args = list(beam_args)
    names = {a.split("=", 1)[0] for a in args}
    out = ["--streaming"]
    if "--runner" not in names:
        out += ["--runner=PrismRunner", f"--prism_location={prism_location()}", "--prism_log_level=warn"]
    if "--environment_type" not in names:
        out.append("--environment_type=LOOPBACK")
    return out + args


def replay_horizon(cfg: Config) -> float:
    """How much event time a restart replays (seconds; inf: every finished file): the
    correlation horizon (gap + allowed lateness) plus the longest state horizon of the
    enabled stateful detections, so each detection's keyed state and each open incident
    are rebuilt as an uninterrupted run has them. A detection whose state has no bound
    (a first-seen detection's learned set) makes it every finished file still in the spool."""
    from transforms.detect import Detector

    horizons = [det.stateful.state_horizon(ctx) for det, ctx in Detector(cfg).active if det.stateful is not None]
    if any(h is None for h in horizons):
        return math.inf
    return cfg.correlation.gap + cfg.correlation.allowed_lateness + max(horizons, default=0.0)


def spool_sources(cfg: Config, out_dir: str) -> list[SpoolSource]:
    """One ``SpoolSource`` per enabled source with a ``spool:`` directory."""
    state_dir = os.path.join(os.path.abspath(out_dir), STATE_DIR)
    horizon = replay_horizon(cfg)
    out = []
    for s in cfg.sources:
        if not s.enabled or s.spool is None:
            continue
        directory = s.spool if os.path.isabs(s.spool) else os.path.join(cfg.base_dir, s.spool)
        os.makedirs(directory, exist_ok=True)
        bound = s.out_of_orderness if s.out_of_orderness is not None else cfg.stream.out_of_orderness
        out.append(SpoolSource(
            source=s.name, format=s.format, directory=os.path.abspath(directory), state_dir=state_dir,
            timezone=s.timezone, mapping=s.mapping.model_dump_json() if s.mapping is not None else None,
            out_of_orderness=bound, allowed_lateness=cfg.correlation.allowed_lateness,
            horizon=horizon,
            idle_timeout=cfg.stream.idle_timeout, settle=cfg.stream.settle, poll_interval=cfg.stream.poll_interval,
            limits=cfg.limits.read_limits(),
        ))
    return out


def build_stream(p: beam.Pipeline, cfg: Config, sources: list[Any], out_dir: str) -> None:
    """The streaming ends around the shared stages: spool directories and Kafka topics in,
    versions out."""
    spools = [s for s in sources if isinstance(s, SpoolSource)]
    topics = [s for s in sources if isinstance(s, KafkaSource)]
    reads = ([p | "Read spool directories" >> ReadSpools(spools)] if spools else []) + (
        [p | "Read Kafka topics" >> ReadKafka(topics)] if topics else [])
    if len(reads) == 1:
        events, dead = reads[0].events, reads[0].dead_letters
    else:
        events = tuple(r.events for r in reads) | "All sources' events" >> beam.Flatten()
        dead = tuple(r.dead_letters for r in reads) | "All sources' dead letters" >> beam.Flatten()
    stages = assemble(cfg, events, dead, early=True, prior_early=open_versions(os.path.abspath(out_dir)))
    stages.as_dict() | "Write outputs" >> WriteStreamOutputs(cfg, os.path.abspath(out_dir))


# -- summary -------------------------------------------------------------------------------

def _count_lines(path: str) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for _ in fh)
    except FileNotFoundError:
        return 0


def stream_summary(cfg: Config, sources: list[SpoolSource], out_dir: str, started: float) -> dict[str, Any]:
    """Counts so far: per source read = parsed + dead-lettered (from the finished-file
    records), its watermark, and the incidents written (from the sinks' index)."""
    from transforms.stream_sinks import _read_index

    from pipelines.stream_kafka import kafka_summary

    per_source: dict[str, Any] = {}
    for spec in sources:
        if isinstance(spec, KafkaSource):
            per_source[spec.source] = kafka_summary(spec)
            continue
        recs = [r for r in FinishedFiles(os.path.join(spec.state_dir, "spool", f"{spec.source}.jsonl")).records.values()
                if r.name != END_MARKER]
        try:
            with open(watermark_path(spec.state_dir, spec.source), encoding="utf-8") as fh:
                wm = json.load(fh)
        except (FileNotFoundError, ValueError):
            wm = {"watermark": None, "idle": False, "ended": False}
        per_source[spec.source] = {
            "files": len(recs), "read": sum(r.read for r in recs), "parsed": sum(r.parsed for r in recs),
            "dead_lettered": sum(r.dead_lettered for r in recs), "late": sum(r.late for r in recs),
            "skipped": sum(r.skipped for r in recs),
            "watermark": wm.get("watermark"), "idle": wm.get("idle", False), "ended": wm.get("ended", False),
            "spool": spec.directory,
        }
    index = _read_index(os.path.abspath(out_dir))
    live = [e for e in index.values() if e["kind"] != "withdrawn"]
    wall = time.time() - started
    read = sum(s["read"] for s in per_source.values())
    return {
        "mode": "stream",
        "sources": per_source,
        "totals": {k: sum(s[k] for s in per_source.values()) for k in ("read", "parsed", "dead_lettered", "late", "skipped", "files")},
        "incidents": {"total": len(live), "final": sum(1 for e in live if e["final"]),
                      "open": sum(1 for e in live if not e["final"])},
        "dead_letter_lines": _count_lines(os.path.join(out_dir, "deadletter", "deadletter.jsonl")),
        "updated": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_seconds": round(wall, 3),
        "events_per_second": round(read / wall) if wall > 0 else 0,
    }


def write_stream_summary(cfg: Config, sources: list[SpoolSource], out_dir: str, started: float) -> dict[str, Any]:
    summary = stream_summary(cfg, sources, out_dir, started)
    path = os.path.join(out_dir, "summary.json")
    tmp = os.path.join(out_dir, ".summary.json.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)
    return summary


def refresh_reports(cfg: Config, summary: dict[str, Any], out_dir: str) -> None:
    """``report.html`` and the profiles' reports from the outputs so far. A report that cannot
    be built is said on stderr and skipped: the bundles and drafts go on being written."""
    from pipelines.stream_reports import write_stream_reports

    try:
        write_stream_reports(cfg, summary, out_dir)
    except Exception as exc:  # a RedactionError, a file cut mid-write: the next refresh retries
        print(f"cranewatch stream: report not refreshed: {type(exc).__name__}: {exc}", file=sys.stderr)


# -- network isolation ---------------------------------------------------------------------

def _interfaces() -> list[str]:
    """Network interfaces of this process's namespace (/proc/net/dev follows the namespace;
    /sys/class/net does not)."""
    with open("/proc/net/dev", encoding="ascii") as fh:
        return [line.split(":", 1)[0].strip() for line in fh.readlines()[2:] if ":" in line]


def in_private_network() -> bool:
    """True when this process's network namespace has no interface but loopback."""
    try:
        return _interfaces() == ["lo"]
    except OSError:
        return False


def loopback_up() -> None:
    """Bring ``lo`` up in a fresh namespace (SIOCGIFFLAGS / SIOCSIFFLAGS), as ``ip link set
    lo up`` would, without needing iproute2."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, siocgifflags, req))[1]
        if not flags & iff_up:
            fcntl.ioctl(s, siocsifflags, struct.pack("16sH14s", b"lo", flags | iff_up, b""))


def unshare_command() -> Optional[list[str]]:
    """The ``unshare`` prefix that gives a private network namespace here, or None."""
    if shutil.which("unshare") is None or sys.platform != "linux":
        return None
    for cmd in (["unshare", "--net"], ["unshare", "--net", "--map-root-user"]):
        if os.geteuid() != 0 and "--map-root-user" not in cmd:
            continue
        try:
            ok = subprocess.run([*cmd, "true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return cmd
    return None


def isolate(argv: Sequence[str], allow_open_ports: bool) -> Optional[str]:
    """Make sure the runner's ports cannot be reached from another host.

    Inside a private namespace already: bring loopback up and go on. Otherwise re-execute
    the command under ``unshare --net`` (this call does not return). Where no namespace can
    be made, return the message to print: the caller refuses unless ``allow_open_ports``."""
    if in_private_network():
        loopback_up()
        return None
    if allow_open_ports:
        return None
    if os.environ.get(NETNS_ENV):
        return "cranewatch stream: the re-executed command is not in a private network namespace"
    cmd = unshare_command()
    if cmd is None:
        return ("cranewatch stream: cannot create a private network namespace here (unshare --net, as root "
                "or with --map-root-user, failed), so the runner's job and worker ports would listen on every "
                "interface and anyone who can reach them can run code; refusing. Pass --allow-open-ports "
                "only on a host whose firewall blocks those ports.")
    env = {**os.environ, NETNS_ENV: "1"}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(cmd[0], [*cmd, sys.executable, "-m", "pipelines.cli", *argv], env)
    return None  # not reached


# -- running -------------------------------------------------------------------------------

def _child_pids(name: str) -> list[int]:
    """PIDs of this process's children whose executable is called ``name`` (the Prism job
    server PrismRunner started)."""
    me, out = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == me and os.path.basename(os.readlink(f"/proc/{entry}/exe")) == name:
                out.append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    return out


def _stop_prism() -> None:
    for pid in _child_pids("prism"):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


@dataclass
class StreamResult:
    state: str  # DONE (every source ended), CANCELLED (stopped by a signal), FAILED
    wall_seconds: float


def run_stream(cfg: Config, out_dir: str, beam_args: Sequence[str] = ()) -> StreamResult:
    """Run until every source has ended (an END file in each spool) or SIGTERM / Ctrl-C.

    On a signal the job is cancelled (Prism fires no pending timers then: the incidents
    still open keep their early version on disk, and a restart rebuilds them), Prism is
    stopped by PID and the summary rewritten; the caller then exits with ``os._exit``."""
    from pipelines.stream_kafka import commit_finished, kafka_sources

    sources: list[Any] = [*spool_sources(cfg, out_dir), *kafka_sources(cfg, out_dir)]
    if not sources:
        raise ValueError("no source has a spool: directory or a kafka: topic to stream from")
    os.makedirs(out_dir, exist_ok=True)
    options = PipelineOptions(stream_beam_args(beam_args))
    p = beam.Pipeline(options=options)
    build_stream(p, cfg, sources, out_dir)
    started = time.time()
    write_stream_marker(out_dir, "running", started)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    result = p.run()
    state = "RUNNING"
    next_summary = next_report = 0.0
    try:
        while not stop.is_set():
            if time.time() >= next_summary:
                summary = write_stream_summary(cfg, sources, out_dir, started)
                next_summary = time.time() + cfg.stream.summary_interval
                if time.time() >= next_report:
                    took = time.time()
                    refresh_reports(cfg, summary, out_dir)
                    took = time.time() - took
                    # The driver shares the worker's interpreter (loopback): a report that
                    # takes long to build is rebuilt less often, at most a tenth of the time.
                    next_report = time.time() + max(cfg.stream.report_interval, 9 * took)
            try:
                state = str(result.state)
            except Exception:  # Prism gone (the whole process group got the signal)
                state = "FAILED"
            if any(s in state for s in ("DONE", "FAILED", "CANCELLED", "STOPPED")):
                break
            stop.wait(0.2)
        if stop.is_set():
            for call in (result.cancel, lambda: result.wait_until_finish(5000)):
                try:
                    call()
                except Exception:  # wait_until_finish raises CANCELLED; gRPC errors if Prism died
                    pass
            state = "CANCELLED"
    finally:
        _stop_prism()
        for s, handler in previous.items():
            signal.signal(s, handler)
        refresh_reports(cfg, write_stream_summary(cfg, sources, out_dir, started), out_dir)
    state = "DONE" if "DONE" in state else "CANCELLED" if "CANCELLED" in state or stop.is_set() else "FAILED"
    if state == "DONE":  # every sink has written: the Kafka sources' offsets can be committed
        commit_finished([s for s in sources if isinstance(s, KafkaSource)])
    write_stream_marker(out_dir, state.lower(), started)
    return StreamResult(state, time.time() - started)
