"""Time the zeek_conn parser on N synthetic conn.log TSV lines (the bulk path).

    .venv/bin/python bench/parse_speed.py [N]          # default 1,000,000
    taskset -c 0 .venv/bin/python bench/parse_speed.py  # one core

Prints rows/s for parse_file (read + parse, events and dead letters built). Not a test:
timing depends on the machine. Target: >= 600k rows/s on one core.
"""
from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transforms.parsers import parse_file  # noqa: E402

HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
    "#open\t2026-11-20-08-00-00\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\t"
    "orig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\t"
    "orig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\t"
    "bool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n"
)


def write_corpus(path: str, n: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    t0 = 1_763_625_600.0
    services = ["modbus", "-", "ssl", "http", "dns", "s7comm"]
    states = ["SF", "S0", "RSTO", "REJ", "OTH"]
    with open(path, "w") as fh:
        fh.write(HEADER)
        for i in range(n):
            fh.write(
                f"{t0 + i * 0.0005:.6f}\tC{rnd.getrandbits(64):x}\t10.30.{i % 250}.{rnd.randrange(1, 254)}"
                f"\t{rnd.randrange(1024, 65535)}\t10.40.{i % 16}.{rnd.randrange(1, 254)}\t502\ttcp"
                f"\t{services[i % 6]}\t{rnd.random() * 10:.6f}\t{rnd.randrange(0, 5000)}"
                f"\t{rnd.randrange(0, 90000)}\t{states[i % 5]}\tT\tT\t0\tShADadFf\t{rnd.randrange(1, 60)}"
                f"\t{rnd.randrange(40, 9000)}\t{rnd.randrange(1, 60)}\t{rnd.randrange(40, 99000)}\t-\n"
            )
        fh.write("#close\t2026-11-20-09-00-00\n")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "conn.log")
        write_corpus(path, n)
        size = os.path.getsize(path)
        best = None
        for _ in range(3):
            start = time.perf_counter()
            rows = dead = 0
            for result in parse_file("zeek_conn", "bench", path):
                rows += result.events.num_rows
                dead += len(result.dead_letters)
            elapsed = time.perf_counter() - start
            best = elapsed if best is None else min(best, elapsed)
        print(f"{n} lines, {size / 1e6:.0f} MB: {rows} events, {dead} dead letters; "
              f"best of 3 {best:.2f} s = {rows / best:,.0f} rows/s")


if __name__ == "__main__":
    main()
