"""Config strictness: every error at once, each naming file, key and expectation; exit 2."""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from detections.testing import TEST_TERMINAL
from pipelines.config import ConfigError, load_config


def _write(tmp_path: Path, data: object) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return p


def test_valid_config_loads_and_resolves_defaults(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, TEST_TERMINAL))
    assert cfg.correlation.gap == 1800.0
    assert cfg.inventory.assets[0].kind == "crane_plc"
    assert cfg.maintenance_windows[0].from_ == "08:00"
    assert cfg.base_dir == str(tmp_path)


def test_all_errors_reported_at_once_with_file_and_key(tmp_path: Path) -> None:
    data = copy.deepcopy(TEST_TERMINAL)
    data["sources"][0]["formt"] = "zeek_conn"  # typo'd key
    data["inventory"]["assets"][0]["kind"] = "crane"  # not an asset kind
    data["inventory"]["assets"][1]["addresses"] = ["10.30.1.300"]  # bad address
    data["correlation"] = {"gap": "soon"}  # not a duration
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    lines = err.value.errors
    assert len(lines) == 4, lines
    assert all(line.startswith(f"{path}: ") for line in lines)
    joined = "\n".join(lines)
    assert "sources[0].formt: unknown key; expected one of:" in joined and "format" in joined
    assert "inventory.assets[0].kind: expected 'crane_plc'" in joined
    assert "inventory.assets[1].addresses[0]: expected an IP address" in joined and "10.30.1.300" in joined
    assert "correlation.gap: expected a duration" in joined


def test_cross_references_are_checked(tmp_path: Path) -> None:
    data = copy.deepcopy(TEST_TERMINAL)
    data["sources"][0]["format"] = "syslog_magic"
    data["maintenance_windows"].append({"vendor": "nobody", "start": "2026-11-20T08:00:00Z", "end": "2026-11-20T10:00:00Z"})
    data["detections"] = {"no_such_detection": {}, "ot_unexpected_egress": {"params": {"bogus": 1}}}
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    joined = "\n".join(err.value.errors)
    assert "sources[0].format: expected one of:" in joined and "'syslog_magic'" in joined
    assert "maintenance_windows[1].vendor: expected one of the vendors (zpmc), got 'nobody'" in joined
    assert "detections.no_such_detection: expected a known detection id" in joined
    assert "detections.ot_unexpected_egress.params.bogus: unknown parameter; expected one of: asset_kinds" in joined


def test_window_needs_one_form(tmp_path: Path) -> None:
    data = copy.deepcopy(TEST_TERMINAL)
    data["maintenance_windows"] = [{"vendor": "zpmc", "days": ["tue"], "from": "08:00", "to": "09:00",
                                    "start": "2026-11-20T08:00:00Z", "end": "2026-11-20T10:00:00Z"}]
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, data))
    assert "maintenance_windows[0]: expected either start+end (one-off) or days+from+to" in err.value.errors[0]


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "site:\n  name: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.errors[0].startswith(f"{path}: line ")


def test_cli_exits_2_with_one_line_per_error(tmp_path: Path) -> None:
    data = copy.deepcopy(TEST_TERMINAL)
    data["export"] = {"tlp": "purple"}
    data["extra_section"] = 1
    path = _write(tmp_path, data)
    (tmp_path / "unused").write_text("")  # the source's one path matches a file
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "validate", "--config", str(path)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    err_lines = proc.stderr.strip().splitlines()
    assert len(err_lines) == 2, proc.stderr
    assert any("export.tlp: expected 'clear', 'green', 'amber', 'amber+strict' or 'red', got 'purple'" in l for l in err_lines)
    assert any("extra_section: unknown key" in l for l in err_lines)
    assert "Traceback" not in proc.stderr


def test_run_warns_when_a_source_matches_no_files(tmp_path: Path) -> None:
    data = copy.deepcopy(TEST_TERMINAL)
    data["sources"][0]["paths"] = ["nothing-here/*.jsonl"]
    path = _write(tmp_path, data)
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--config", str(path), "--output", str(tmp_path / "out"), "--quiet"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 1, proc.stderr  # the only source read nothing: never an all-clear
    assert f"{path}: sources.test: warning: paths matched no files" in proc.stderr
    assert "no source matched any file" in proc.stderr
    assert (tmp_path / "out" / "summary.json").exists()


def test_geo_data_is_checked_with_file_key_and_line(tmp_path: Path) -> None:
    data = copy.deepcopy(TEST_TERMINAL)
    data["vendors"][0]["allowed_countries"] = ["CHN"]  # alpha-3, not alpha-2
    (tmp_path / "geo.csv").write_text("first,last,country\n1.0.0.0,1.0.0.255,AU\n1.0.1.0,1.0.1.255,Australia\n")
    data["geo"] = {"networks": [{"network": "203.0.113.0/24", "country": "NL"}],
                   "files": ["geo.csv", "missing.csv"]}
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    lines = err.value.errors
    assert lines[0] == (f"{path}: vendors[0].allowed_countries[0]: expected an ISO 3166-1 alpha-2 "
                        "country code such as NL, got 'CHN'")
    data["vendors"][0]["allowed_countries"] = ["cn"]
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, data))
    assert err.value.errors == [
        f"{path}: geo.files[0]: {tmp_path / 'geo.csv'}: line 3: expected an ISO 3166-1 alpha-2 country "
        "code such as NL, got 'Australia'",
        f"{path}: geo.files[1]: expected a readable CSV file, got 'missing.csv' (No such file or directory)",
    ]
    data["geo"]["files"] = ["geo.csv"]
    (tmp_path / "geo.csv").write_text("1.0.0.0,1.0.0.255,AU\n")
    cfg = load_config(_write(tmp_path, data))
    assert cfg.vendors[0].allowed_countries == ["CN"]
