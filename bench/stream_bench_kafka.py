"""The Kafka half of ``bench/stream_bench.py --source kafka``: the same corpus produced into a
loopback broker (``scripts/kafka_broker.py``, in its own private network namespace, the
stream beside it), one topic per source.

Messages are what shippers send: CMS and FortiGate records one message each, Zeek records
in messages of ``--chunk`` lines carrying their header (a shipper batching a log file).

1. sustained: every message produced first (and the end markers), then the stream started;
   records/s from its start to the end (with Prism start-up) and from the first to the last
   batch read;
2. latency: the stream running, messages produced at ``--rate`` records/s; for every
   incident, the delay from producing the message that holds its first finding's evidence
   to its first bundle on disk: median and p99.
"""
from __future__ import annotations

import gzip
import json
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

PARTITIONS = 2


def _messages(corpus: Path, chunk: int) -> dict[str, list[bytes]]:
    """Per source, its messages in record order (each file's records, files in name order)."""
    import yaml

    cfg = yaml.safe_load((corpus / "config.yaml").read_text())
    out: dict[str, list[bytes]] = {}
    for s in cfg["sources"]:
        msgs: list[bytes] = []
        for pattern in s["paths"]:
            for f in sorted(corpus.glob(pattern)):
                opener = gzip.open if f.suffix == ".gz" else open
                with opener(f, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
                    lines = fh.read().splitlines()
                head = [ln for ln in lines if ln.startswith("#") and not ln.startswith(("#close", "#open"))]
                data = [ln for ln in lines if ln and not ln.startswith("#")]
                if head:
                    msgs += ["\n".join(head + data[i:i + chunk]).encode() for i in range(0, len(data), chunk)]
                else:
                    msgs += [ln.encode() for ln in data]
        out[s["name"]] = msgs
    return out


def _records(msg: bytes) -> int:
    return sum(1 for ln in msg.split(b"\n") if ln and not ln.startswith(b"#"))


def _config(corpus: Path, name: str, prefix: str, bootstrap: str) -> Path:
    import yaml

    cfg = yaml.safe_load((corpus / "config.yaml").read_text())
    for s in cfg["sources"]:
        s.pop("paths")
        s["kafka"] = {"bootstrap": bootstrap, "topic": f"{prefix}-{s['name']}", "partition_refresh": 2}
    cfg["stream"] = {"poll_interval": 0.2, "idle_timeout": 0, "summary_interval": 1}
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
    summary = json.loads((out / "summary.json").read_text())
    return {"read": read, "messages": sum(len(m) for m in msgs.values()), "wall": ended - started,
            "eps_with_startup": read / (ended - started), "eps_reading": read / max(last - first, 1e-9),
            "incidents": summary["incidents"]["total"]}


def latency(broker: Any, client: Any, corpus: Path, work: Path, rate: float, chunk: int, limit: int) -> dict[str, float]:
    from kafka_helpers import start_stream_beside

    out = work / "out-kafka-latency"
    shutil.rmtree(out, ignore_errors=True)
    prefix = f"l{int(time.time())}"
    msgs = _messages(corpus, chunk)
    order = []
    for source, ms in msgs.items():
        client.create(f"{prefix}-{source}", PARTITIONS)
        total = sum(_records(m) for m in ms) or 1
        pos = 0
        for m in ms:
            order.append((pos / total, source, m))
            pos += _records(m)
    order.sort(key=lambda x: x[0])
    config = _config(corpus, "stream-bench-kafka-latency.yaml", prefix, broker.bootstrap)
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
    for _, source, m in order:
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
    delays = []
    for row in (json.loads(ln) for ln in (out / "incidents.jsonl").read_text().splitlines()):
        iid = row.get("incident_id")
        if iid not in seen or not row.get("findings"):
            continue
        times = []
        for f in row["findings"]:
            for ev in f["evidence"]:
                topic, p, rest = ev["raw_ref"].split("/", 2)
                t = produced.get((topic, int(p), int(rest.split(":", 1)[0])))
                if t is not None:
                    times.append(t)
        if times:
            delays.append(seen.pop(iid) - min(times))
    delays.sort()
    p99 = delays[min(len(delays) - 1, int(round(0.99 * (len(delays) - 1))))] if delays else float("nan")
    return {"offered": offered, "rate": rate, "incidents": len(delays),
            "median": statistics.median(delays) if delays else float("nan"), "p99": p99}


def run_kafka(corpus: Path, work: Path, rate: float, chunk: int, limit: int, spool: dict[str, float]) -> None:
    """Both Kafka measurements against one broker, printed beside the spool figure."""
    from kafka_helpers import Client, running_broker

    for broker in running_broker(work / "kafka-broker"):
        client = Client(broker)
        try:
            k = sustained(broker, client, corpus, work, chunk)
            print(f"kafka  : {k['read']:,} records in {k['messages']:,} messages, all produced first: {k['wall']:.2f} s "
                  f"wall = {k['eps_with_startup']:,.0f} records/s with start-up, {k['eps_reading']:,.0f} records/s "
                  f"first to last batch read; {k['incidents']} incidents (bar >= 30,000 records/s; spool in this run: "
                  f"{spool['eps_with_startup']:,.0f} events/s with start-up = kafka/spool "
                  f"{k['eps_with_startup'] / spool['eps_with_startup']:.2f})")
            lat = latency(broker, client, corpus, work, rate, chunk, limit)
            print(f"kafka latency: {lat['offered']:,} records produced at {lat['rate']:,.0f}/s; {lat['incidents']} "
                  f"incidents: produce -> first bundle median {lat['median']:.2f} s, p99 {lat['p99']:.2f} s "
                  f"(spool in this run: arrival -> first bundle median {spool['median']:.2f} s, p99 {spool['p99']:.2f} s)")
        finally:
            client.close()
        shutil.rmtree(work / "kafka-broker", ignore_errors=True)
