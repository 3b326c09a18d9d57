"""Helpers for the Kafka streaming tests and bench: a broker in its own private network
namespace (``scripts/kafka_broker.py``), a client process inside that namespace to create
topics and produce, and ``cranewatch stream`` run inside it too."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from kafka_broker import Broker  # noqa: E402


def running_broker(directory: Path) -> Iterator[Broker]:
    """A fresh broker for a test module, stopped by PID afterwards."""
    broker = Broker(directory)
    broker.start(private_network=True)
    try:
        yield broker
    finally:
        broker.stop()


class Client:
    """``kafka_broker.py client`` in the broker's namespace: JSON commands in, answers out."""

    def __init__(self, broker: Broker):
        self.bootstrap = broker.bootstrap
        self.proc = subprocess.Popen(
            [*broker.enter(), sys.executable, str(ROOT / "scripts" / "kafka_broker.py"), "client", "--port", str(broker.port)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def _send(self, cmd: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the Kafka client process ended"
        out = json.loads(line)
        assert out.get("ok"), out
        return out

    def create(self, topic: str, partitions: int) -> int:
        self._send({"op": "create", "topic": topic, "partitions": partitions})
        return self._answer()["partitions"]

    def produce(self, topic: str, partition: int, value: bytes, timestamp_ms: Optional[int] = None,
                headers: Optional[dict[str, str]] = None) -> None:
        self._send({"op": "produce", "topic": topic, "partition": partition,
                    "value_b64": base64.b64encode(value).decode(), "timestamp_ms": timestamp_ms,
                    "headers": headers or {}})

    def end(self, topic: str, partitions: int) -> None:
        """The end marker into every partition: the stream finishes once all have ended."""
        for p in range(partitions):
            self.produce(topic, p, b"", headers={"cranewatch-end": "1"})

    def flush(self) -> None:
        self._send({"op": "flush"})
        self._answer()

    def offsets(self, topic: str, group: Optional[str] = None) -> dict[int, int]:
        self._send({"op": "committed" if group else "end_offsets", "topic": topic, "group": group})
        return {int(k): v for k, v in self._answer()["offsets"].items()}

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def start_stream_beside(broker: Broker, config: Path, out: Path, *beam_args: str) -> subprocess.Popen:
    """``cranewatch stream`` in the broker's namespace (it finds itself in a private one)."""
    args = [*broker.enter(), sys.executable, "-m", "pipelines.cli", "stream", "--config", str(config), "--output", str(out)]
    if beam_args:
        args += ["--", *beam_args]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
