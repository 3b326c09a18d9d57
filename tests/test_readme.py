"""The README's config example is a real, valid config (docs that drift are bugs)."""
from __future__ import annotations

import re
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
