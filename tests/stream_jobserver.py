"""Run inside a private network namespace (the streaming tests start it under ``unshare
--net``): start a standalone Prism job server on loopback, submit ``cranewatch stream`` to it
with ``--runner=PortableRunner --job_endpoint=localhost:P``, stop Prism by PID.

Usage: stream_jobserver.py PRISM CONFIG OUTPUT
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(prism: str, config: str, output: str) -> int:
    sys.path.insert(0, str(ROOT))
    from pipelines.streaming import in_private_network, loopback_up

    if not in_private_network():
        print("refusing: not inside a private network namespace", file=sys.stderr)
        return 3
    loopback_up()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([prism, "--job_port", str(port), "--serve_http=false", "--log_level", "warn"])
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            print("prism did not listen", file=sys.stderr)
            return 4
        stream = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "stream", "--config", config, "--output", output, "--",
             "--runner=PortableRunner", f"--job_endpoint=localhost:{port}"],
            cwd=ROOT, capture_output=True, text=True, timeout=150,
        )
        sys.stdout.write(stream.stdout)
        sys.stderr.write(stream.stderr)
        return stream.returncode
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(10)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
