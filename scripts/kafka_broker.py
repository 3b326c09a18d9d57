"""A single-node Apache Kafka broker on loopback, for trying the Kafka source, its tests and
its bench.

The broker's jars (``org.apache.kafka:kafka_2.13`` and its runtime dependencies, listed in
``scripts/kafka/pom.xml``) are fetched with Maven into the git-ignored ``.cache/kafka/``. The
broker runs in KRaft mode (its own controller, no ZooKeeper), listens on 127.0.0.1 only, and
by default inside a private network namespace of its own (``unshare --net``): nothing beyond
this host's loopback can reach it, and ``cranewatch stream`` joins that namespace through
``exec`` (the stream isolates its runner the same way, see README "Streaming").

    python scripts/kafka_broker.py fetch            # the jars (~35 s the first time)
    python scripts/kafka_broker.py up               # format storage, start, wait until ready
    python scripts/kafka_broker.py exec -- cranewatch stream --config C --output O
    python scripts/kafka_broker.py client < commands.jsonl   # create topics, produce (JSON lines)
    python scripts/kafka_broker.py down             # stop it by its PID

``make kafka-up`` / ``make kafka-down`` run ``up`` and ``down``.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
POM = ROOT / "scripts" / "kafka" / "pom.xml"
VERSION = "4.1.0"  # kafka.version in the pom
CACHE = ROOT / ".cache" / "kafka"
LIBS = CACHE / VERSION / "libs"
DEFAULT_DIR = CACHE / "broker"
PORT = 19092  # the client listener; the controller listens on PORT + 1


def fetch(quiet: bool = True) -> Path:
    """The broker's jars in the cache, fetched with Maven when missing."""
    if LIBS.is_dir() and any(LIBS.glob("kafka_2.13-*.jar")):
        return LIBS
    if shutil.which("mvn") is None:
        raise SystemExit("kafka_broker: Maven (mvn) is needed to fetch the broker jars")
    tmp = LIBS.with_name("libs.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = ["mvn", "-B", "-f", str(POM), "dependency:copy-dependencies", f"-DoutputDirectory={tmp}"]
    subprocess.run([*cmd[:1], "-q", *cmd[1:]] if quiet else cmd, check=True)
    os.replace(tmp, LIBS)
    return LIBS


def _properties(data: Path, port: int) -> str:
    return "\n".join([
        "process.roles=broker,controller", "node.id=1",
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{port + 1}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
        f"controller.quorum.voters=1@127.0.0.1:{port + 1}", "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "offsets.topic.replication.factor=1", "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1", "share.coordinator.state.topic.replication.factor=1",
        "group.initial.rebalance.delay.ms=0", "num.partitions=1", "auto.create.topics.enable=false",
        # Kept until deleted: the records are logs with their own (often weeks-old) times as
        # Kafka timestamps, and the default 7-day time retention, checked every 5 minutes,
        # would delete replayed archives under a reader (offset 0 "out of range").
        "log.retention.ms=-1",
        f"log.dirs={data}", "",
    ])


_LOG4J = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders><Console name="out" target="SYSTEM_OUT"><PatternLayout pattern="[%d] %p %m (%c)%n"/></Console></Appenders>
  <Loggers><Root level="WARN"><AppenderRef ref="out"/></Root>
    <Logger name="kafka.server.KafkaRaftServer" level="INFO"/></Loggers>
</Configuration>
"""

_IN_NAMESPACE = (  # the broker's launcher inside a fresh namespace: loopback up, then Java
    "import os, sys; sys.path.insert(0, sys.argv[1]); "
    "from pipelines.streaming import loopback_up; loopback_up(); os.execvp(sys.argv[2], sys.argv[2:])"
)


@dataclass
class Broker:
    """One broker: its folder (storage, config, log, PID file) and port."""

    directory: Path = DEFAULT_DIR
    port: int = PORT

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.directory / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "broker.log"

    def pid(self) -> Optional[int]:
        try:
            pid = int(self.pid_file.read_text())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def start(self, private_network: bool = True, timeout: float = 90.0) -> int:
        """Format storage (first start only), start the broker and wait until it listens."""
        if self.pid() is not None:
            raise SystemExit(f"kafka_broker: already running (PID {self.pid()}, {self.directory})")
        libs = fetch()
        java = shutil.which("java")
        if java is None:
            raise SystemExit("kafka_broker: Java (java) is needed to run the broker")
        self.directory.mkdir(parents=True, exist_ok=True)
        data = self.directory / "data"
        props, log4j = self.directory / "server.properties", self.directory / "log4j2.xml"
        props.write_text(_properties(data, self.port))
        log4j.write_text(_LOG4J)
        cp = f"{libs}/*"
        jvm = [java, "-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
               f"-Dlog4j2.configurationFile={log4j}", "-cp", cp]
        if not (data / "meta.properties").exists():
            uuid = subprocess.run([*jvm, "kafka.tools.StorageTool", "random-uuid"], check=True,
                                  capture_output=True, text=True).stdout.strip().splitlines()[-1]
            subprocess.run([*jvm, "kafka.tools.StorageTool", "format", "-t", uuid, "-c", str(props), "--standalone"],
                           check=True, capture_output=True, text=True)
        cmd = [*jvm, "kafka.Kafka", str(props)]
        if private_network:
            prefix = _unshare()
            cmd = [*prefix, sys.executable, "-c", _IN_NAMESPACE, str(ROOT), *cmd]
        with open(self.log_file, "wb") as log:  # a fresh log: readiness is read from it
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.pid_file.write_text(str(proc.pid))
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"kafka_broker: the broker exited ({proc.returncode}); see {self.log_file}")
            if "Kafka Server started" in self.log_file.read_text(errors="replace"):
                return proc.pid
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"kafka_broker: not started after {timeout:g} s; see {self.log_file}")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM by PID (the broker shuts down cleanly), SIGKILL if it is still there."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + timeout
        while time.time() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)

    def enter(self) -> list[str]:
        """The command prefix that runs a command in the broker's network namespace."""
        pid = self.pid()
        if pid is None:
            raise SystemExit("kafka_broker: not running")
        return ["nsenter", f"--net=/proc/{pid}/ns/net"]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _unshare() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from pipelines.streaming import unshare_command

    cmd = unshare_command()
    if cmd is None:
        raise SystemExit("kafka_broker: cannot make a private network namespace here (unshare --net); "
                         "pass --host-network to bind 127.0.0.1 of this host instead")
    return cmd


# -- client: topics and messages as JSON lines, inside the broker's namespace ---------------

def client(bootstrap: str, lines: Iterator[str], out: Any = sys.stdout) -> None:
    """One JSON command a line; one JSON answer a line after each ``flush`` / query.

    ``{"op": "create", "topic": T, "partitions": N}`` (or more partitions for an existing
    topic), ``{"op": "produce", "topic": T, "partition": P, "value": TEXT | "value_b64": B64,
    "timestamp_ms": MS, "headers": {K: V}}``, ``{"op": "flush"}``,
    ``{"op": "committed", "topic": T, "group": G}``, ``{"op": "end_offsets", "topic": T}``."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    # Idempotent: a retried send (a fresh topic's partition leader not yet known to the
    # producer) keeps its place in the partition, so a message's offset is its send order,
    # which the tests use to name each dead letter's <topic>/<partition>/<offset>.
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "message.max.bytes": 16 << 20,
                         "batch.num.messages": 10000, "queue.buffering.max.messages": 1000000,
                         "enable.idempotence": True})
    failed: list[str] = []

    def answer(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            failed.append(str(err))

    for line in lines:
        if not line.strip():
            continue
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "produce":
            value = base64.b64decode(cmd["value_b64"]) if "value_b64" in cmd else cmd["value"].encode()
            kwargs: dict[str, Any] = {"partition": cmd.get("partition", -1), "on_delivery": delivered}
            if cmd.get("timestamp_ms") is not None:
                kwargs["timestamp"] = int(cmd["timestamp_ms"])
            if cmd.get("headers"):
                kwargs["headers"] = list(cmd["headers"].items())
            while True:
                try:
                    producer.produce(cmd["topic"], value, **kwargs)
                    break
                except BufferError:
                    producer.poll(0.1)
            producer.poll(0)
        elif op == "flush":
            left = producer.flush(60)  # messages still undelivered: not ok, said so
            answer({"ok": not failed and left == 0, "failed": failed[:5], "undelivered": left})
            failed.clear()
        elif op == "create":
            meta = admin.list_topics(timeout=10).topics.get(cmd["topic"])
            if meta is None:
                futures = admin.create_topics([NewTopic(cmd["topic"], cmd["partitions"], 1)])
            elif len(meta.partitions) < cmd["partitions"]:
                futures = admin.create_partitions([NewPartitions(cmd["topic"], cmd["partitions"])])
            else:
                futures = {}
            for f in futures.values():
                f.result(30)
            deadline = time.time() + 30  # the leader elected for each partition
            while time.time() < deadline:
                meta = admin.list_topics(cmd["topic"], timeout=10).topics[cmd["topic"]]
                if len(meta.partitions) >= cmd["partitions"] and all(p.leader >= 0 for p in meta.partitions.values()):
                    break
                time.sleep(0.1)
            answer({"ok": True, "partitions": len(meta.partitions)})
        elif op in ("committed", "end_offsets"):
            meta = admin.list_topics(cmd["topic"], timeout=10).topics[cmd["topic"]]
            parts = [TopicPartition(cmd["topic"], p) for p in sorted(meta.partitions)]
            consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": cmd.get("group") or "cranewatch-probe",
                                 "enable.auto.commit": False})
            try:
                if op == "committed":
                    got = {tp.partition: tp.offset for tp in consumer.committed(parts, timeout=10)}
                else:
                    got = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
            finally:
                consumer.close()
            answer({"ok": True, "offsets": {str(k): v for k, v in got.items()}})
        else:
            answer({"ok": False, "error": f"unknown op {op!r}"})
    producer.flush(60)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="kafka_broker.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=("fetch", "up", "down", "exec", "client", "status"))
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the broker's folder (storage, log, PID)")
    ap.add_argument("--port", type=int, default=PORT)
    ap.add_argument("--host-network", action="store_true",
                    help="listen on 127.0.0.1 of this host's network instead of a private namespace")
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    broker = Broker(args.dir, args.port)
    if args.command == "fetch":
        print(fetch(quiet=False))
    elif args.command == "up":
        pid = broker.start(private_network=not args.host_network)
        where = "this host's loopback" if args.host_network else "loopback of its own network namespace"
        print(f"kafka broker up: PID {pid}, {broker.bootstrap} on {where} ({broker.directory})")
    elif args.command == "down":
        broker.stop()
        print("kafka broker down")
    elif args.command == "status":
        print(f"running, PID {broker.pid()}" if broker.pid() else "not running")
        return 0 if broker.pid() else 1
    elif args.command == "client":
        client(f"127.0.0.1:{args.port}", iter(sys.stdin))
    else:
        if not rest:
            ap.error("exec: name the command to run after --")
        os.execvp("nsenter", [*broker.enter(), *rest])
    return 0


if __name__ == "__main__":
    sys.exit(main())
