"""Streaming benchmark: a corpus replayed through spool directories on Prism, beside batch.

One run, three measurements on the same seeded corpus (generated once, cached in bench-out/):

1. batch: ``cranewatch run`` in-process, events/s (the reference);
2. sustained: every file of the corpus dropped into the spools at once, then END; events/s
   from the stream's start to the last file read (Prism start-up included, and without it);
3. latency: the corpus cut into files of ``--chunk`` records (and at every ``--rotate``
   seconds of record time, as a shipper rotates) dropped at ``--rate`` records/s, the files
   of all sources in the order of their last record's time, as a live feed delivers them
   (``--order position`` drops each source's files at the same share of its records instead,
   so sources whose records spread differently over the day drift hours apart in record
   time, and the slowest holds the job's watermark); for every final incident, the delay
   from the arrival of the first file holding its evidence to the first bundle on disk that
   holds any of its findings (under any id: an incident's id moves when a finding with an
   earlier or equal first time joins, and the old id's early file is withdrawn), and to
   the first bundle under its final id: median and p99. The first file is dropped once
   every source has polled its spool (start-up apart). ``stream.idle_timeout`` is the
   config's default, 2 h (``--idle-timeout``), on the stream's clock: a sparse source
   (S7comm and CIP log a few dozen records a day) stops holding the job's watermark 2 h of
   record time after its last file. Findings of stateless detections reach correlation on
   arrival; findings of stateful ones leave once the watermark passes them.

Bars (streaming issue): >= 50,000 events/s sustained; p99 arrival -> first bundle <= 5 s at
10,000 events/s offered. The stream runs in a private network namespace (cranewatch's default).

    .venv/bin/python bench/stream_bench.py --events 1000000
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench._corpus import cached_corpus, header  # noqa: E402


def _lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        return fh.read().splitlines()


def _config(corpus: Path, spool: Path, name: str, idle_timeout: float = 0.0) -> Path:
    import yaml

    cfg = yaml.safe_load((corpus / "config.yaml").read_text())
    for s in cfg["sources"]:
        s.pop("paths")
        s["spool"] = str(spool / s["name"])
    cfg["stream"] = {"settle": 0.2, "poll_interval": 0.2, "idle_timeout": idle_timeout, "summary_interval": 1}
    path = corpus / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _record_times(source: dict, path: Path) -> dict[int, float]:
    """Line number (1-based, as evidence cites it) -> record time, from the project's parser."""
    from transforms.spool import SpoolSource, read_file

    spec = SpoolSource(source["name"], source["format"], str(path.parent), str(path.parent))
    times: dict[int, float] = {}
    for table in read_file(spec, str(path), None).tables:
        for row in table.select(["time", "raw_ref"]).to_pylist():
            if row["time"] is not None and row["raw_ref"]:
                times[int(row["raw_ref"].rsplit(":", 1)[1])] = row["time"].timestamp()
    return times


def _chunks(corpus: Path, chunk: int, rotate: float) -> dict[str, list[tuple[str, list[str], float, float]]]:
    """Per source, its records cut into files of at most ``chunk`` lines (Zeek headers
    repeated), and at every ``rotate`` seconds of record time (a shipper's rotation: a file
    holds no record later than its rotation's end), each with its (first, last) record time."""
    import yaml

    cfg = yaml.safe_load((corpus / "config.yaml").read_text())
    out: dict[str, list[tuple[str, list[str], float, float]]] = {}
    for s in cfg["sources"]:
        files: list[tuple[str, list[str], float, float]] = []
        for pattern in s["paths"]:
            for f in sorted(corpus.glob(pattern)):
                lines = _lines(f)
                times = _record_times(s, f) if rotate > 0 else {}
                head = [ln for ln in lines if ln.startswith("#") and not ln.startswith(("#close", "#open"))]
                stem = f.name.split(".", 1)[0]
                cur: list[str] = []
                span: list[float] = []
                last = -1.0
                for n, ln in enumerate(lines, 1):
                    if not ln or ln.startswith("#"):
                        continue
                    t = times.get(n, last)  # a line the parser dead-letters keeps its neighbour's time
                    if cur and (len(cur) >= chunk or (rotate > 0 and t // rotate != span[0] // rotate)):
                        files.append((f"{stem}-{len(files):05d}.log", head + cur, min(span), max(span)))
                        cur, span = [], []
                    cur.append(ln)
                    span.append(t)
                    last = t
                if cur:
                    files.append((f"{stem}-{len(files):05d}.log", head + cur, min(span), max(span)))
        out[s["name"]] = files
    return out


def _drop(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(ln + "\n" for ln in lines))
    os.replace(tmp, path)


def _stream(config: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", "stream", "--config", str(config),
                             "--output", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finished(out: Path) -> list[dict]:
    rows = []
    for f in (out / "_stream" / "spool").glob("*.jsonl"):
        rows += [json.loads(ln) for ln in f.read_text().splitlines() if ln.strip()]
    return rows


def batch_run(corpus: Path, out: Path) -> tuple[float, int]:
    from pipelines.batch import run_batch
    from pipelines.config import load_config
    from pipelines.summary import build_summary

    cfg = load_config(corpus / "config.yaml")
    summary = build_summary(cfg, run_batch(cfg, str(out)))
    return summary["wall_seconds"], summary["totals"]["read"]


def sustained(corpus: Path, work: Path) -> dict[str, float]:
    spool, out = work / "spool-sustained", work / "out-sustained"
    shutil.rmtree(spool, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    config = _config(corpus, spool, "stream-bench-sustained.yaml")
    import yaml

    for s in yaml.safe_load((corpus / "config.yaml").read_text())["sources"]:
        (spool / s["name"]).mkdir(parents=True)
        for pattern in s["paths"]:
            for f in sorted(corpus.glob(pattern)):
                shutil.copy(f, spool / s["name"] / f.name)
        (spool / s["name"] / "END").write_text("")
    started = time.time()
    proc = _stream(config, out)
    stdout, stderr = proc.communicate(timeout=1800)
    ended = time.time()
    assert proc.returncode == 0, stderr[-2000:]
    rows = [r for r in _finished(out) if r["name"] != "END"]
    read = sum(r["read"] for r in rows)
    first = min(r["finished_at"] for r in rows)
    last = max(r["finished_at"] for r in rows)
    # The last output: every incident is final once the job is DONE; the newest file written.
    written = max(p.stat().st_mtime for p in out.rglob("*") if p.is_file() and "_stream" not in p.parts
                  and p.name not in ("summary.json", "_streaming.json") and not p.name.startswith("report"))
    summary = json.loads((out / "summary.json").read_text())
    return {"read": read, "wall": ended - started, "eps_with_startup": read / (ended - started),
            "eps_reading": read / max(last - first, 1e-9), "eps_end_to_end": read / max(written - first, 1e-9),
            "startup": first - started, "incidents": summary["incidents"]["total"]}


def latency(corpus: Path, work: Path, rate: float, chunk: int, limit: int, rotate: float = 3600.0,
            order_by: str = "time", idle_timeout: float = 7200.0) -> dict[str, float]:
    spool, out = work / "spool-latency", work / "out-latency"
    shutil.rmtree(spool, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    config = _config(corpus, spool, "stream-bench-latency.yaml", idle_timeout)
    chunks = _chunks(corpus, chunk, rotate if order_by == "time" else 0)
    order = []
    for source, files in chunks.items():
        (spool / source).mkdir(parents=True)
        total = sum(len(x[1]) for x in files) or 1
        pos = 0
        for name, lines, _, last in files:
            # time: as a live feed delivers them, each file once its last record has happened
            # (all sources advance together in record time); position: each source's files at
            # the same share of its records (sources drift apart in record time where their
            # density over the day differs, and the slowest holds the job's watermark).
            order.append((last if order_by == "time" else pos / total, source, name, lines))
            pos += len(lines)
    order.sort(key=lambda x: x[0])
    arrivals: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for p in (out / "stix").glob("*.json") if (out / "stix").is_dir() else []:
                seen.setdefault(p.stem, time.time())
            time.sleep(0.05)

    proc = _stream(config, out)
    # Start-up (namespace, Prism, job submission) is not part of the delay: the first file
    # is dropped once every source has polled its spool (its watermark file is written then).
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not all(
            (out / "_stream" / "watermark" / f"{s}.json").exists() for s in chunks):
        time.sleep(0.1)
    threading.Thread(target=watch, daemon=True).start()
    offered = 0
    started = time.time()
    for _, source, name, lines in order:
        if offered >= limit:
            break
        due = started + offered / rate
        time.sleep(max(0.0, due - time.time()))
        path = spool / source / name
        _drop(path, lines)
        arrivals[name] = time.time()  # evidence cites files relative to the spool directory
        offered += len(lines) - sum(1 for ln in lines if ln.startswith("#"))
    for source in chunks:
        (spool / source / "END").write_text("")
    proc.communicate(timeout=1800)
    stop.set()
    (work / "arrivals.json").write_text(json.dumps({"arrivals": arrivals, "seen": seen}))
    first_alert, final_id = delays(out, seen, lambda ev: arrivals.get(os.path.basename(ev["raw_ref"].rsplit(":", 1)[0])))
    return {"offered": offered, "rate": rate, "incidents": len(first_alert),
            **stats(first_alert), **{f"final_id_{k}": v for k, v in stats(final_id).items()}}


def delays(out: Path, seen: dict[str, float], arrival_of: Any) -> tuple[list[float], list[float]]:
    """Per final incident: arrival of the first input holding its evidence (``arrival_of``:
    an evidence entry's arrival time, or None) → the first bundle on disk holding any of its
    findings, under any id (the first alert an analyst got of it), and → the first bundle
    under its final id.

    The two differ where the id moved: ids come from an incident's first finding, so a
    finding that joins with an earlier or equal first time (a threshold's finding that
    starts at the first of the uploads it counts) gives the incident a new id, and the
    early file of the old id is withdrawn; the alert was on disk from the old id's write."""
    rows = [json.loads(ln) for ln in (out / "incidents.jsonl").read_text().splitlines()]
    alerted: dict[str, float] = {}  # finding id -> first write of a bundle holding it
    for row in rows:
        if row.get("version") in ("early", "final") and row["incident_id"] in seen:
            for f in row["findings"]:
                alerted[f["finding_id"]] = min(alerted.get(f["finding_id"], float("inf")), seen[row["incident_id"]])
    first_alert, final_id, done = [], [], set()
    for row in rows:
        if row.get("version") != "final" or row["incident_id"] not in seen or row["incident_id"] in done:
            continue  # (a revision by a late finding is a second final row: counted once)
        done.add(row["incident_id"])
        times = [t for f in row["findings"] for ev in f["evidence"] if (t := arrival_of(ev)) is not None]
        if times:
            arrived = min(times)
            first_alert.append(min(alerted[f["finding_id"]] for f in row["findings"]) - arrived)
            final_id.append(seen[row["incident_id"]] - arrived)
    return sorted(first_alert), sorted(final_id)


def stats(delays: list[float]) -> dict[str, float]:
    nan = float("nan")
    p99 = delays[min(len(delays) - 1, int(round(0.99 * (len(delays) - 1))))] if delays else nan
    return {"median": statistics.median(delays) if delays else nan, "p99": p99, "max": max(delays) if delays else nan}


def _load() -> str:
    """The machine's load beside each figure: the cores are shared."""
    one, five, _ = os.getloadavg()
    return f"load {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-out"))
    ap.add_argument("--rate", type=float, default=10_000.0, help="offered records/s in the latency run")
    ap.add_argument("--chunk", type=int, default=2_000, help="records per dropped file in the latency run")
    ap.add_argument("--rotate", type=float, default=3600.0,
                    help="latency run: a file also ends at every this many seconds of record time (a shipper's rotation)")
    ap.add_argument("--order", choices=("time", "position"), default="time",
                    help="latency run: drop files in record-time order (as live) or at the same share of each source")
    ap.add_argument("--idle-timeout", type=float, default=7200.0,
                    help="latency run: stream.idle_timeout in seconds, on the stream clock (0: off)")
    ap.add_argument("--latency-events", type=int, default=300_000, help="records offered in the latency run")
    ap.add_argument("--source", choices=("spool", "kafka"), default="spool",
                    help="kafka: after the spool figure, the same corpus from a loopback Kafka broker "
                         "(bench/stream_bench_kafka.py)")
    ap.add_argument("--only", choices=("sustained", "latency"), help="run the batch reference and this part only")
    args = ap.parse_args()
    print(header())
    corpus = Path(cached_corpus(args.out, "corpus", args.events, args.seed))
    work = Path(args.out) / "stream"
    work.mkdir(parents=True, exist_ok=True)
    wall, read = batch_run(corpus, work / "batch")
    print(f"batch  : {read:,} records in {wall:.2f} s = {read / wall:,.0f} events/s (reference, same corpus) [{_load()}]")
    if args.only != "latency":
        s = sustained(corpus, work)
        print(f"stream : {s['read']:,} records, all dropped at once: {s['wall']:.2f} s wall = "
              f"{s['eps_with_startup']:,.0f} events/s with start-up ({s['startup']:.1f} s to the first file read); "
              f"{s['eps_end_to_end']:,.0f} events/s first file read to last output written; "
              f"{s['eps_reading']:,.0f} events/s first to last file read; {s['incidents']} incidents "
              f"(bar >= 50,000 events/s); ratio to batch {s['eps_end_to_end'] / (read / wall):.2f} [{_load()}]")
    lat: dict = {}
    if args.only != "sustained":
        idle = args.idle_timeout
        lat = latency(corpus, work, args.rate, args.chunk, args.latency_events, args.rotate, args.order, idle)
        print(f"latency: {lat['offered']:,} records offered at {lat['rate']:,.0f}/s in files of {args.chunk:,} "
              f"({'in record-time order, rotated every %g s' % args.rotate if args.order == 'time' else 'at the same share of each source'}; "
              f"idle_timeout {idle:g} s on the stream clock); "
              f"{lat['incidents']} incidents: arrival -> first bundle median {lat['median']:.2f} s, "
              f"p99 {lat['p99']:.2f} s, max {lat['max']:.2f} s (bar p99 <= 5 s); under the final id "
              f"median {lat['final_id_median']:.2f} s, p99 {lat['final_id_p99']:.2f} s [{_load()}]")
    if args.source == "kafka":  # the same corpus from a loopback broker, beside the spool figures
        from bench.stream_bench_kafka import run_kafka

        run_kafka(corpus, work, args.rate, min(args.chunk, 500), args.latency_events,
                  {**(s if args.only != "latency" else {}), **lat}, args.only, _load, args.idle_timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
