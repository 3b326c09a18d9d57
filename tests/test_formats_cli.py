"""``cranewatch formats list`` and the format catalogue: every registered parser is listed
with its kind, a doc listing its fields, and a config snippet that the config loader accepts."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipelines.cli import main
from pipelines.config import MAPPED_FORMATS, load_config
from pipelines.formats_cli import EXAMPLES, snippet
from transforms.model import KINDS
from transforms.parsers import PARSERS

ROOT = Path(__file__).resolve().parents[1]


def test_every_parser_has_an_example_and_a_doc() -> None:
    assert set(EXAMPLES) == set(PARSERS)
    for name, p in PARSERS.items():
        assert p.kind in KINDS or (p.kind == "mapped" and name in MAPPED_FORMATS)
        assert (ROOT / "docs" / "formats" / EXAMPLES[name][3]).is_file(), name


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_snippet_is_a_valid_source(name: str, tmp_path: Path) -> None:
    (entry,) = yaml.safe_load(snippet(name))
    assert entry["format"] == name
    config = {"site": {"name": "Port of Example", "terminal": "T3"}, "sources": [entry],
              "inventory": {"internal_networks": ["10.0.0.0/8"], "assets": []}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    cfg = load_config(str(path))
    assert cfg.sources[0].format == name


def test_formats_list_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["formats", "list"]) == 0
    out = capsys.readouterr().out
    for name, p in PARSERS.items():
        assert f"{name}  [{p.kind}]  {p.description}" in out
        assert f"      format: {name}" in out
    assert main(["formats", "list", "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert [i["name"] for i in items] == list(PARSERS)
    assert {i["name"]: i["kind"] for i in items}["zeek_s7comm"] == "ot"
