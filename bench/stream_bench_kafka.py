"""The Kafka half of ``bench/stream_bench.py --source kafka``: the same corpus produced into a
loopback broker (``scripts/kafka_broker.py``, in its own private network namespace, the
stream beside it), one topic per source.

Messages are what shippers send: CMS and FortiGate records one message each, Zeek records
in messages of ``--chunk`` lines carrying their header (a shipper batching a log file). A
source's files are sent as a shipper tailing each of them would: their messages interleaved
in time order (``zeek-modbus`` reads two sibling logs, each spanning the whole day; sent one
after the other, the second would arrive a day behind the first, all late).

1. sustained: every message produced first (and the end markers), then the stream started;
   records/s from the first batch read to the last output written (the sustained figure, as
   the spool run's), from the stream's start to its end (with start-up), and from the first
   to the last batch read;
2. latency: the stream running, messages produced at ``--rate`` records/s, every source's in
   the order of their newest record's time (as the spool run drops its files); for every
   incident, the delay from producing the message that holds its first finding's evidence
   to its first bundle on disk: median and p99.
"""
from __future__ import annotations

import gzip
import json
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

PARTITIONS = 2


def _timed_messages(corpus: Path, chunk: int) -> dict[str, list[tuple[float, bytes]]]:
    """Per source, its messages in time order of their first record (each file's own
    messages stay in file order), each with its newest record's time."""
    import yaml
    from stream_helpers import record_time

    cfg = yaml.safe_load((corpus / "config.yaml").read_text())
    out: dict[str, list[bytes]] = {}
    for s in cfg["sources"]:
        msgs: list[tuple[float, int, int, bytes]] = []
        for pattern in s["paths"]:
            for f in sorted(corpus.glob(pattern)):
                opener = gzip.open if f.suffix == ".gz" else open
                with opener(f, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
                    lines = fh.read().splitlines()
                head = [ln for ln in lines if ln.startswith("#") and not ln.startswith(("#close", "#open"))]
                data = [ln for ln in lines if ln and not ln.startswith("#")]
                n = len(msgs)
                step = chunk if head else 1
                for i in range(0, len(data), step):
                    part = data[i:i + step]
                    msgs.append((record_time(s["format"], part[0]), n, i,
                                 "\n".join(head + part).encode() if head else part[0].encode(),
                                 max(record_time(s["format"], ln) for ln in part)))
        msgs.sort(key=lambda m: m[:3])
        out[s["name"]] = [(m[4], m[3]) for m in msgs]
    return out


def _messages(corpus: Path, chunk: int) -> dict[str, list[bytes]]:
    return {source: [m for _, m in ms] for source, ms in _timed_messages(corpus, chunk).items()}


def _records(msg: bytes) -> int:
    return sum(1 for ln in msg.split(b"\n") if ln and not ln.startswith(b"#"))


def _config(corpus: Path, name: str, prefix: str, bootstrap: str, idle_timeout: float = 0.0) -> Path:
    import yaml

    cfg = yaml.safe_load((corpus / "config.yaml").read_text())
    for s in cfg["sources"]:
        s.pop("paths")
        s["kafka"] = {"bootstrap": bootstrap, "topic": f"{prefix}-{s['name']}", "partition_refresh": 2}
    cfg["stream"] = {"poll_interval": 0.2, "idle_timeout": idle_timeout, "summary_interval": 1}
    path = corpus / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _produce(client: Any, prefix: str, source: str, msg: bytes, counters: dict[str, int]) -> tuple[str, int, int]:
    n = counters.get(source, 0)
    counters[source] = n + 1
    p, offset = n % PARTITIONS, n // PARTITIONS
    client.produce(f"{prefix}-{source}", p, msg)
    return f"{prefix}-{source}", p, offset


def sustained(broker: Any, client: Any, corpus: Path, work: Path, chunk: int) -> dict[str, float]:
    from kafka_helpers import start_stream_beside

    out = work / "out-kafka-sustained"
    shutil.rmtree(out, ignore_errors=True)
    prefix = f"s{int(time.time())}"
    msgs = _messages(corpus, chunk)
    counters: dict[str, int] = {}
    for source, ms in msgs.items():
        client.create(f"{prefix}-{source}", PARTITIONS)
        for m in ms:
            _produce(client, prefix, source, m, counters)
        client.end(f"{prefix}-{source}", PARTITIONS)
    client.flush()
    config = _config(corpus, "stream-bench-kafka-sustained.yaml", prefix, broker.bootstrap)
    started = time.time()
    proc = start_stream_beside(broker, config, out)
    stdout, stderr = proc.communicate(timeout=1800)
    ended = time.time()
    assert proc.returncode == 0, stderr[-2000:]
    rows = [json.loads(ln) for f in (out / "_stream" / "kafka").glob("*.jsonl") for ln in f.read_text().splitlines()]
    read = sum(r["read"] for r in rows)
    first, last = min(r["at"] for r in rows), max(r["at"] for r in rows)
    # The last output: every incident is final once the job is DONE; the newest file written.
    written = max(p.stat().st_mtime for p in out.rglob("*") if p.is_file() and "_stream" not in p.parts
                  and p.name not in ("summary.json", "_streaming.json") and not p.name.startswith("report"))
    summary = json.loads((out / "summary.json").read_text())
    return {"read": read, "messages": sum(len(m) for m in msgs.values()), "wall": ended - started,
            "eps_with_startup": read / (ended - started), "eps_reading": read / max(last - first, 1e-9),
            "eps_end_to_end": read / max(written - first, 1e-9), "startup": first - started,
            "incidents": summary["incidents"]["total"]}


def latency(broker: Any, client: Any, corpus: Path, work: Path, rate: float, chunk: int, limit: int,
            idle_timeout: float = 7200.0) -> dict[str, float]:
    from kafka_helpers import start_stream_beside

    out = work / "out-kafka-latency"
    shutil.rmtree(out, ignore_errors=True)
    prefix = f"l{int(time.time())}"
    # Every source's messages in the order of their newest record's time, as a live feed
    # sends them (the spool run's record-time order): at the same share of each source's
    # records instead, sources drift hours apart in record time and the slowest holds the
    # job's watermark.
    msgs = _timed_messages(corpus, chunk)
    order = []
    for source, ms in msgs.items():
        client.create(f"{prefix}-{source}", PARTITIONS)
        order += [(t, n, source, m) for n, (t, m) in enumerate(ms)]
    order.sort(key=lambda x: x[:2])
    config = _config(corpus, "stream-bench-kafka-latency.yaml", prefix, broker.bootstrap, idle_timeout)
    seen: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for p in (out / "stix").glob("*.json") if (out / "stix").is_dir() else []:
                seen.setdefault(p.stem, time.time())
            time.sleep(0.05)

    proc = start_stream_beside(broker, config, out)
    time.sleep(8)  # start-up (Prism, consumers), not part of the delay
    threading.Thread(target=watch, daemon=True).start()
    produced: dict[tuple[str, int, int], float] = {}
    counters: dict[str, int] = {}
    offered = 0
    started = time.time()
    for _, _, source, m in order:
        if offered >= limit:
            break
        time.sleep(max(0.0, started + offered / rate - time.time()))
        where = _produce(client, prefix, source, m, counters)
        client.flush()  # sent now: the delay starts when the broker has it
        produced[where] = time.time()
        offered += _records(m)
    for source in msgs:
        client.end(f"{prefix}-{source}", PARTITIONS)
    client.flush()
    proc.communicate(timeout=1800)
    stop.set()
    from bench.stream_bench import delays, stats

    def arrival_of(ev: dict[str, Any]) -> float | None:
        topic, p, rest = ev["raw_ref"].split("/", 2)
        return produced.get((topic, int(p), int(rest.split(":", 1)[0])))

    first_alert, _ = delays(out, seen, arrival_of)
    return {"offered": offered, "rate": rate, "incidents": len(first_alert), **stats(first_alert)}


def run_kafka(corpus: Path, work: Path, rate: float, chunk: int, limit: int, spool: dict[str, float],
              only: str | None = None, load: Any = lambda: "", idle_timeout: float = 7200.0) -> None:
    """The Kafka measurements against one broker, printed beside the spool figures."""
    from kafka_helpers import Client, running_broker

    for broker in running_broker(work / "kafka-broker"):
        client = Client(broker)
        try:
            if only != "latency":
                k = sustained(broker, client, corpus, work, chunk)
                ratio = (f" = kafka/spool {k['eps_end_to_end'] / spool['eps_end_to_end']:.2f}"
                         if spool.get("eps_end_to_end") else "")
                print(f"kafka  : {k['read']:,} records in {k['messages']:,} messages, all produced first: "
                      f"{k['eps_end_to_end']:,.0f} records/s first batch read to last output written{ratio} "
                      f"(bar >= 30,000 records/s); {k['wall']:.2f} s wall = {k['eps_with_startup']:,.0f} records/s "
                      f"with start-up ({k['startup']:.1f} s to the first batch read); {k['eps_reading']:,.0f} records/s "
                      f"first to last batch read; {k['incidents']} incidents [{load()}]")
            if only == "sustained":
                continue
            lat = latency(broker, client, corpus, work, rate, chunk, limit, idle_timeout)
            print(f"kafka latency: {lat['offered']:,} records produced at {lat['rate']:,.0f}/s "
                  f"(idle_timeout {idle_timeout:g} s on the stream clock); {lat['incidents']} "
                  f"incidents: produce -> first bundle median {lat['median']:.2f} s, p99 {lat['p99']:.2f} s "
                  f"(spool in this run: arrival -> first bundle median {spool['median']:.2f} s, p99 {spool['p99']:.2f} s) "
                  f"[{load()}]")
        finally:
            client.close()
        shutil.rmtree(work / "kafka-broker", ignore_errors=True)
