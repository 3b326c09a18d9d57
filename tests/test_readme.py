"""The README is executable documentation: its config example validates and its quick start runs."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from pipelines.config import parse_config

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_config_example_validates() -> None:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    assert blocks, "README lost its config example"
    cfg = parse_config(yaml.safe_load(blocks[0]), "README.md")
    assert {s.format for s in cfg.sources} == {"zeek_conn", "zeek_modbus", "cms_events", "fortigate_vpn"}
    assert cfg.detections["ot_unexpected_egress"].suppression == 1800.0


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    first_block = re.search(r"```sh\n(.*?)```", text, flags=re.S).group(1)
    assert first_block.splitlines()[0].startswith("make demo")
    assert first_block.splitlines()[1].startswith("make test")


def _quick_start() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start on your own logs", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_quick_start_runs_verbatim_and_reaches_a_report(tmp_path: Path) -> None:
    """Every quick-start line, as written, in a fresh folder; only ``$EDITOR`` is ``true``.

    The first line (create the venv, install) is the one not re-run: it would re-point the
    editable install; the test's own venv stands in for it through a ``.venv`` link.
    """
    lines = _quick_start()
    assert lines[0].startswith("python3 -m venv .venv && .venv/bin/pip install -e ."), lines[0]
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    env = {**os.environ, "EDITOR": "true", "PAGER": "cat"}
    for line in lines[1:]:
        proc = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=300)
        assert proc.returncode == 0, f"README quick start line failed ({proc.returncode}): {line}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    report = tmp_path / "out" / "report.html"
    assert report.is_file() and "<table" in report.read_text(encoding="utf-8")
    assert any((tmp_path / "out" / "stix").glob("*.json"))
