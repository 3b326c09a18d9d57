"""A source's ``kafka:`` block is checked like every other key: one line naming file, key and
expected value, exit 2; credentials are never taken from the file nor repeated."""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from detections.testing import TEST_TERMINAL
from pipelines.config import ConfigError, load_config


def _with(tmp_path: Path, kafka: dict, **extra) -> Path:
    data = copy.deepcopy(TEST_TERMINAL)
    data["sources"] = [{"name": "cms", "format": "cms_events", "kafka": kafka, **extra}]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _errors(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return [line.removeprefix(f"{path}: ") for line in err.value.errors]


def test_kafka_source_loads_with_tls_and_sasl_from_the_environment(tmp_path: Path) -> None:
    from pipelines.stream_kafka import kafka_sources

    cfg = load_config(_with(tmp_path, {"bootstrap": "k1:9093,k2:9093", "topic": "cms", "partition_refresh": "5s",
                                       "security": {"protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                                                    "sasl_username": "cw", "sasl_password_env": "KAFKA_PW",
                                                    "ssl_ca_location": "ca.pem"}}))
    [spec] = kafka_sources(cfg, str(tmp_path / "out"))
    settings = dict(spec.settings)
    assert (spec.topic, spec.group, spec.partition_refresh) == ("cms", "cranewatch-cms", 5.0)
    assert settings["security.protocol"] == "SASL_SSL" and settings["ssl.ca.location"] == str(tmp_path / "ca.pem")
    assert spec.secrets == (("sasl.password", "env", "KAFKA_PW"),)
    assert not any("password" in k for k in settings)


def test_kafka_config_errors_are_one_line_and_never_quote_a_secret(tmp_path: Path) -> None:
    assert _errors(_with(tmp_path, {"bootstrap": "nohost", "topic": "t"})) == [
        "sources[0].kafka.bootstrap: expected HOST:PORT[,HOST:PORT...] such as 127.0.0.1:9092, got 'nohost'"]
    [line] = _errors(_with(tmp_path, {"bootstrap": "h:1", "topic": "t", "options": {"sasl.password": "hunter2"}}))
    assert line.startswith("sources[0].kafka.options: expected no credential in the config") and "hunter2" not in line
    [line] = _errors(_with(tmp_path, {"bootstrap": "h:1", "topic": "t", "security": {"sasl_password": "hunter2"}}))
    assert line.startswith("sources[0].kafka.security.sasl_password: unknown key") and "hunter2" not in line
    [line] = _errors(_with(tmp_path, {"bootstrap": "h:1", "topic": "t"}, spool="x"))
    assert "expected spool or kafka, not both" in line


def test_bad_kafka_config_exits_2_from_the_cli(tmp_path: Path) -> None:
    path = _with(tmp_path, {"bootstrap": "h:1", "topic": "bad topic"})
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "validate", "--config", str(path)],
                          capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.startswith(str(path))]
    assert proc.returncode == 2 and len(lines) == 1 and "sources[0].kafka.topic" in lines[0], proc.stderr
