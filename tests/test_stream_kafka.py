"""``cranewatch stream`` from Kafka topics on Prism, beside a real broker in one private
network namespace (the broker, the producer and the stream all run inside it).

A generated terminal is cut into six event-time slices and produced slice after slice into
one topic per source, over several partitions: Zeek logs as messages of up to 40 records
carrying their header, CMS and FortiGate records one message each. The CMS slices 2 and 3
arrive swapped (out of order, within allowed lateness), and a last batch of CMS records is
a day old (late). Every message is also written as a file named
``<topic>/<partition>/<offset>`` beside the config, so ``cranewatch run`` over those files
reads the same records under the same evidence pointers, and the stream's final incidents
and bundles must equal batch's.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from kafka_helpers import Client, running_broker, start_stream_beside
from pipelines.batch import run_batch
from pipelines.config import load_config
from pipelines.generate import generate
from pipelines.summary import build_summary
from stream_helpers import compare_bundles, final_incidents, jsonl, kill_hard, record_time, slice_sources, wait_for

pytestmark = pytest.mark.slow
SLICES = 6
SWAPPED = "cms"
LATE_RECORDS = 12
CHUNK = 40  # data lines per Zeek message
PARTITIONS = {"zeek-conn": 3, "cms": 3}  # others: 2


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> Iterator[Any]:
    yield from running_broker(tmp_path_factory.mktemp("kafka") / "broker")


@pytest.fixture(scope="module")
def client(broker) -> Iterator[Client]:
    c = Client(broker)
    yield c
    c.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, Any], dict[str, list[Any]]]:
    root = tmp_path_factory.mktemp("kstream")
    generate(str(root / "corpus"), events=4000, seed=7)
    cfg, parts = slice_sources(root / "corpus", SLICES)
    return root / "corpus", cfg, parts


class Topics:
    """Produces a run's messages and mirrors each as a file for the batch run."""

    def __init__(self, client: Client, corpus: Path, cfg: dict[str, Any], prefix: str):
        self.client, self.corpus, self.prefix = client, corpus, prefix
        self.formats = {s["name"]: s["format"] for s in cfg["sources"]}
        self.next: dict[str, list[int]] = {}
        self.files: dict[str, list[Path]] = {s: [] for s in self.formats}
        self.records: dict[str, int] = {s: 0 for s in self.formats}
        for s in self.formats:
            n = PARTITIONS.get(s, 2)
            assert client.create(self.topic(s), n) == n
            self.next[s] = [0] * n

    def topic(self, source: str) -> str:
        return f"{self.prefix}-{source}"

    def _send(self, source: str, lines: list[str], data: int, mirror: bool = True) -> None:
        offsets = self.next[source]
        p = sum(offsets) % len(offsets)  # round robin
        value = ("\n".join(lines) + ("\n" if len(lines) > 1 else "")).encode()
        stamp = max(record_time(self.formats[source], ln) for ln in lines if not ln.startswith("#"))
        self.client.produce(self.topic(source), p, value, timestamp_ms=int(stamp * 1000))
        if mirror:
            path = self.corpus / self.topic(source) / str(p) / str(offsets[p])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(value if value.endswith(b"\n") else value + b"\n")
            self.files[source].append(path)
            self.records[source] += data
        offsets[p] += 1

    def slice(self, source: str, part: list[tuple[str, list[str], list[str]]]) -> None:
        for _fam, header, data in part:
            if header:
                for i in range(0, len(data), CHUNK):
                    self._send(source, [*header, *data[i:i + CHUNK]], len(data[i:i + CHUNK]))
            else:
                for line in data:
                    self._send(source, [line], 1)

    def late(self, source: str, lines: list[str]) -> None:
        for line in lines:
            self._send(source, [line], 1, mirror=False)

    def end(self) -> None:
        for s, offsets in self.next.items():
            self.client.end(self.topic(s), len(offsets))
            for p in range(len(offsets)):
                offsets[p] += 1
        self.client.flush()


def kafka_config(corpus: Path, cfg: dict[str, Any], name: str, topics: Topics, bootstrap: str | None) -> Path:
    """Sources read their topics (stream) or exactly the mirrored message files (batch)."""
    cfg = json.loads(json.dumps(cfg))
    for s in cfg["sources"]:
        s.pop("paths")
        if bootstrap is not None:
            s["kafka"] = {"bootstrap": bootstrap, "topic": topics.topic(s["name"]), "partition_refresh": 1}
        else:
            # relative to the config: evidence cites <topic>/<partition>/<offset>:<line>, as the stream does
            s["paths"] = [str(p.relative_to(corpus)) for p in topics.files[s["name"]]]
    cfg["stream"] = {"poll_interval": 0.2, "idle_timeout": 0, "summary_interval": 0.5}
    cfg.setdefault("correlation", {})["allowed_lateness"] = "2h"
    path = corpus / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def read_ends(out: Path, source: str) -> dict[int, int]:
    """The offset after the last one each partition has recorded as read."""
    ends: dict[int, int] = {}
    for b in jsonl(out / "_stream" / "kafka" / f"{source}.jsonl"):
        ends[b["partition"]] = max(ends.get(b["partition"], 0), b["last"] + 1)
    return ends


def _late_lines(parts: dict[str, list[Any]]) -> list[str]:
    out = []
    for line in parts[SWAPPED][0][0][2][:LATE_RECORDS]:
        rec = json.loads(line)
        t = dt.datetime.fromisoformat(rec["time"].replace("Z", "+00:00")) - dt.timedelta(days=1)
        rec["time"] = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
        out.append(json.dumps(rec))
    return out


def _stream(broker: Any, client: Client, corpus: Path, cfg: dict[str, Any], parts: dict[str, list[Any]], prefix: str,
            kill_after: int | None = None) -> dict[str, Any]:
    topics = Topics(client, corpus, cfg, prefix)
    config = kafka_config(corpus, cfg, f"stream-{prefix}.yaml", topics, broker.bootstrap)
    out = corpus / f"out-{prefix}"
    proc = start_stream_beside(broker, config, out)
    at_kill: dict[str, Any] = {}
    try:
        for i in range(SLICES):
            if kill_after is not None and i == kill_after:
                kill_hard(proc)
                at_kill = {"read": {s: read_ends(out, s) for s in parts},
                           "committed": {s: client.offsets(topics.topic(s), f"cranewatch-{s}") for s in parts}}
                for s in parts:  # more records arrive while the stream is down
                    topics.slice(s, parts[s][{2: 3, 3: 2}.get(i, i) if s == SWAPPED else i])
                client.flush()
                proc = start_stream_beside(broker, config, out)
                continue
            for s in parts:
                topics.slice(s, parts[s][{2: 3, 3: 2}.get(i, i) if s == SWAPPED else i])
            client.flush()
            for s in parts:
                want = list(topics.next[s])
                try:
                    wait_for(lambda s=s, want=want: all(read_ends(out, s).get(p, 0) >= n for p, n in enumerate(want) if n),
                             60, proc, f"slice {i} of {s}")
                except AssertionError as exc:
                    kill_hard(proc)
                    raise AssertionError(f"{exc}; read {read_ends(out, s)} of {want}; stream said: "
                                         f"{proc.stderr.read()[-3000:] if proc.stderr else ''}") from None
        topics.late(SWAPPED, _late_lines(parts))
        topics.end()
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            kill_hard(proc)
    assert proc.returncode == 0, stderr[-3000:]
    assert "stream done" in stdout, stdout + stderr[-2000:]
    return {"out": out, "topics": topics, "at_kill": at_kill, "stderr": stderr}


def _batch(corpus: Path, cfg: dict[str, Any], topics: Topics, out: Path) -> dict[str, Any]:
    loaded = load_config(kafka_config(corpus, cfg, f"batch-{topics.prefix}.yaml", topics, None))
    return build_summary(loaded, run_batch(loaded, str(out)))


def _assert_same_as_batch(out: Path, batch_out: Path) -> None:
    batch = {r["incident_id"]: r for r in jsonl(batch_out / "incidents.jsonl")}
    stream = final_incidents(out)
    assert batch, "the corpus produced no incident"
    assert sorted(stream) == sorted(batch)
    for iid, b in batch.items():
        s = stream[iid]
        assert [f["finding_id"] for f in s["findings"]] == [f["finding_id"] for f in b["findings"]], iid
        assert (s["severity"], s["techniques"], s["stages"]) == (b["severity"], b["techniques"], b["stages"]), iid
    assert compare_bundles(batch_out / "stix", out / "stix")["identical"] > 0
    compare_bundles(batch_out / "stix-isac", out / "stix-isac")


@pytest.fixture(scope="module")
def golden(broker, client, corpus) -> dict[str, Any]:
    path, cfg, parts = corpus
    run = _stream(broker, client, path, cfg, parts, "g")
    run["batch"] = _batch(path, cfg, run["topics"], path / "batch-g")
    return run


def test_kafka_stream_ends_with_batch_incidents_and_bundles(golden, corpus) -> None:
    path = corpus[0]
    _assert_same_as_batch(golden["out"], path / "batch-g")
    # evidence points at <topic>/<partition>/<offset>:<line>
    refs = [e["raw_ref"] for r in jsonl(golden["out"] / "findings.jsonl") for e in r.get("evidence", [])]
    assert refs and all(r.startswith("g-") and r.count("/") == 2 for r in refs), refs[:5]


def test_kafka_every_record_is_counted_and_late_ones_are_dead_letters(golden) -> None:
    summary = json.loads((golden["out"] / "summary.json").read_text())
    batch = golden["batch"]
    for name, s in summary["sources"].items():
        assert s["read"] == s["parsed"] + s["dead_lettered"] + s["skipped"], name
        extra = LATE_RECORDS if name == SWAPPED else 0
        assert s["read"] == batch["sources"][name]["read"] + extra, name
        assert s["parsed"] == batch["sources"][name]["parsed"], name
        assert s["late"] == extra and s["ended"] and s["watermark"] == "+inf", name
    late = [d for d in jsonl(golden["out"] / "deadletter" / "deadletter.jsonl") if d["late"]]
    assert len(late) == LATE_RECORDS
    assert all(d["source"] == SWAPPED and d["location"].startswith(f"g-{SWAPPED}/") for d in late)


def test_kafka_group_offsets_are_committed_once_the_sinks_have_written(golden, client) -> None:
    topics = golden["topics"]
    for s, offsets in topics.next.items():
        ends = client.offsets(topics.topic(s))
        assert ends == dict(enumerate(offsets)), s
        assert client.offsets(topics.topic(s), f"cranewatch-{s}") == ends, s


@pytest.fixture(scope="module")
def restarted(broker, client, corpus) -> dict[str, Any]:
    """Killed (SIGKILL) after three slices; the fourth produced while it is down; restarted."""
    path, cfg, parts = corpus
    run = _stream(broker, client, path, cfg, parts, "r", kill_after=3)
    _batch(path, cfg, run["topics"], path / "batch-r")
    return run


def test_kafka_restart_loses_no_incident_duplicates_nothing_and_commits_behind_the_sinks(restarted, client, corpus) -> None:
    path, _cfg, parts = corpus
    run = restarted
    batch = {r["incident_id"] for r in jsonl(path / "batch-r" / "incidents.jsonl")}
    assert batch and batch <= set(final_incidents(run["out"])), "an incident of the batch run is missing"
    # A final version is written again only as a revision (a late finding joined, or more
    # hits): never the same content twice, the replay after the restart included.
    finals = [(r["incident_id"], json.dumps([(f["finding_id"], f["count"], f["last_seen"]) for f in r["findings"]]))
              for r in jsonl(run["out"] / "incidents.jsonl") if r["version"] == "final"]
    assert len(finals) == len(set(finals)), "an incident version was written twice"
    for name in {p.stem for p in (run["out"] / "stix").glob("*.json")}:
        assert name in final_incidents(run["out"]), name
    # Each offset was recorded as read once, before and after the restart together.
    for s in parts:
        seen: dict[int, set[int]] = {}
        for b in jsonl(run["out"] / "_stream" / "kafka" / f"{s}.jsonl"):
            offs = set(range(b["first"], b["last"] + 1))
            assert not seen.setdefault(b["partition"], set()) & offs, (s, b)
            seen[b["partition"]] |= offs
    summary = json.loads((run["out"] / "summary.json").read_text())
    assert summary["totals"]["read"] == sum(run["topics"].records.values()) + LATE_RECORDS
    assert summary["totals"]["read"] == summary["totals"]["parsed"] + summary["totals"]["dead_lettered"]
    # Committed while running: never past what had been read; after the end: everything.
    kill = run["at_kill"]
    assert any(v >= 0 for s in parts for v in kill["committed"][s].values()), kill
    for s in parts:
        for p, committed in kill["committed"][s].items():
            assert committed <= kill["read"][s].get(p, 0), (s, p, committed)
        topic = run["topics"].topic(s)
        assert client.offsets(topic, f"cranewatch-{s}") == client.offsets(topic), s


def test_kafka_restart_ends_with_the_batch_incidents_and_bundles(restarted, corpus) -> None:
    _assert_same_as_batch(restarted["out"], corpus[0] / "batch-r")


def test_kafka_bad_messages_are_dead_letters_with_topic_partition_offset(broker, client, corpus) -> None:
    """Garbage, oversized, non-UTF-8 and empty messages, and a bad line inside a message of
    several records: each a dead letter at <topic>/<partition>/<offset>[:line]; counts add up."""
    path, cfg, parts = corpus
    good = [line for sl in parts[SWAPPED] for _f, _h, data in sl for line in data][:20]
    topic = "b-cms"
    assert client.create(topic, 2) == 2
    sent: dict[int, list[tuple[str, bytes]]] = {0: [], 1: []}

    def send(p: int, kind: str, value: bytes) -> None:
        client.produce(topic, p, value)
        sent[p].append((kind, value))

    for i, line in enumerate(good):
        send(i % 2, "good", line.encode())
    send(0, "garbage", b"this is not a CMS event")
    send(1, "oversized", json.dumps({**json.loads(good[0]), "message": "x" * 5000}).encode())
    send(0, "not utf-8", b'{"time": "2026-11-17T00:00:00Z", "message": "\xff\xfe\xfa"}')
    send(1, "empty", b"")
    send(0, "several", "\n".join([good[1], "{broken json", good[2]]).encode())
    client.end(topic, 2)
    client.flush()
    one = json.loads(json.dumps(cfg))
    one["sources"] = [s for s in one["sources"] if s["name"] == SWAPPED]
    one["sources"][0].pop("paths")
    one["sources"][0]["kafka"] = {"bootstrap": broker.bootstrap, "topic": topic, "partition_refresh": 1,
                                  "max_message_bytes": 4096}
    one["stream"] = {"poll_interval": 0.2, "idle_timeout": 0, "summary_interval": 0.5}
    config = path / "stream-bad.yaml"
    config.write_text(yaml.safe_dump(one, sort_keys=False))
    out = path / "out-bad"
    proc = start_stream_beside(broker, config, out)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            kill_hard(proc)
    assert proc.returncode == 0 and "stream done" in stdout, stderr[-3000:]
    dead = {d["location"]: d for d in jsonl(out / "deadletter" / "deadletter.jsonl")}
    where = {kind: (p, o) for p, msgs in sent.items() for o, (kind, _v) in enumerate(msgs)}
    expected = {
        "garbage": f"{topic}/%d/%d:1", "oversized": f"{topic}/%d/%d:1", "not utf-8": f"{topic}/%d/%d:1",
        "empty": f"{topic}/%d/%d:1", "several": f"{topic}/%d/%d:2",
    }
    for kind, pattern in expected.items():
        assert pattern % where[kind] in dead, (kind, sorted(dead))
    assert "max_message_bytes" in dead[expected["oversized"] % where["oversized"]]["reason"]
    assert "not UTF-8" in dead[expected["not utf-8"] % where["not utf-8"]]["reason"]
    assert len(dead) == len(expected)
    s = json.loads((out / "summary.json").read_text())["sources"][SWAPPED]
    records = len(good) + 4 + 3  # four bad single messages, three lines in one message
    assert (s["read"], s["parsed"], s["dead_lettered"]) == (records, len(good) + 2, len(expected)), s


def test_kafka_stage_watermark_is_the_minimum_over_every_partition_of_this_run(tmp_path) -> None:
    """Each partition reports the minimum over the job's partitions (Prism takes a stage's
    watermark from the bundle it finished last): held while a partition has none yet, an
    earlier run's marks ignored, +inf once every partition has ended."""
    from transforms.kafka_state import RUN_STARTED, PartitionMark, stage_watermark, write_mark

    state, now = str(tmp_path), RUN_STARTED + 1
    assert stage_watermark(state, ["a", "b"]) is None  # no partition listed yet
    write_mark(state, "a", 0, PartitionMark(1000.0, 700.0, False, False, now))
    write_mark(state, "a", 1, PartitionMark(None, None, False, True, now))  # listed, not read yet
    write_mark(state, "b", 0, PartitionMark(2000.0, 1700.0, False, False, now))
    assert stage_watermark(state, ["a", "b"]) is None
    write_mark(state, "a", 1, PartitionMark(900.0, 600.0, False, True, now))
    assert stage_watermark(state, ["a", "b"]) == 600.0
    assert stage_watermark(state, ["b"]) == 1700.0
    write_mark(state, "b", 1, PartitionMark(400.0, 100.0, False, False, RUN_STARTED - 60))  # an earlier run's
    assert stage_watermark(state, ["a", "b"]) == 600.0
    for source, p in (("a", 0), ("a", 1), ("b", 0)):
        write_mark(state, source, p, PartitionMark(None, math.inf, True, True, now))
    assert stage_watermark(state, ["a", "b"]) == math.inf
