"""The demo explains its own speed figure: at demo size start-up dominates events/s."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_says_what_its_events_per_second_means_and_where_the_benchmark_is(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    proc = subprocess.run([str(Path(sys.executable).with_name("cranewatch")), "demo", "--out", str(out),
                           "--events", "3000"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    note = next((line for line in proc.stdout.splitlines() if "start-up" in line), "")
    assert "which dominates at this size" in note and "`make bench`" in note, proc.stdout[-2000:]
    read = re.search(r"is ([\d,]+) records over", note)
    assert read and int(read.group(1).replace(",", "")) >= 3000
    # the note points at a README section that exists and holds a measured events/s figure
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## Benchmark\n", 1)
    assert len(section) == 2 and "events/s" in section[1].split("\n## ", 1)[0]
