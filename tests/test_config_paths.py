"""Source paths: only regular files inside the config's folder or an allowed root, never
/proc, /sys, /dev, FIFOs, sockets or devices, and the export secret never reaches an output."""
from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from detections.testing import TEST_TERMINAL
from pipelines.config import ConfigError, load_config, resolve_sources

ENV_SECRET = "env-secret-6b1f0c9a2d7e4f3a8c5b"  # what /proc/self/environ would show


def _config(folder: Path, paths: list[str], **extra: Any) -> Path:
    data = copy.deepcopy(TEST_TERMINAL)
    data["sources"] = [{"name": "cms", "format": "cms_events", "paths": paths}]
    data.update(extra)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _errors(path: Path, allow_roots: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(ConfigError) as err:
        resolve_sources(load_config(path, allow_roots))
    return [line.removeprefix(f"{path}: ") for line in err.value.errors]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CRANEWATCH_EXPORT_SECRET": ENV_SECRET}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_paths_outside_the_config_folder_need_an_allowed_root(tmp_path: Path) -> None:
    logs = tmp_path / "archive"
    logs.mkdir()
    (logs / "cms.jsonl").write_text("{}\n")
    conf = tmp_path / "site"
    for pattern in (str(logs / "*.jsonl"), "../archive/*.jsonl", "../archive"):
        path = _config(conf, [pattern])
        assert _errors(path) == [
            "sources[0].paths[0]: expected a path inside the config's folder or under allowed_roots "
            f"(config key allowed_roots: or --allow-root DIR), got {pattern!r}"]
        ok = resolve_sources(load_config(path, allow_roots=(str(logs),)))  # --allow-root
        assert [os.path.realpath(f) for f in ok[0].files] == [str(logs / "cms.jsonl")]
        in_config = resolve_sources(load_config(_config(conf, [pattern], allowed_roots=["../archive"])))
        assert [os.path.realpath(f) for f in in_config[0].files] == [str(logs / "cms.jsonl")]


def test_dotdot_after_a_glob_and_missing_roots_are_refused(tmp_path: Path) -> None:
    (tmp_path / "cms" / "a").mkdir(parents=True)
    path = _config(tmp_path, ["cms/*/../../../etc/passwd"], allowed_roots=["no-such-folder"])
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert [e.removeprefix(f"{path}: ") for e in err.value.errors] == [
        "allowed_roots[0]: expected an existing folder, got 'no-such-folder'"]
    assert _errors(_config(tmp_path, ["cms/*/../../../etc/passwd"])) == [
        "sources[0].paths[0]: expected a path without '..' after a glob character, got 'cms/*/../../../etc/passwd'"]


@pytest.mark.parametrize("pattern", ["/proc/self/environ", "/proc/self/env*", "/sys/kernel/*", "/dev/null",
                                     "../../../../../../../../proc/self/environ"])
def test_kernel_and_device_paths_are_refused_even_under_an_allowed_root(tmp_path: Path, pattern: str) -> None:
    path = _config(tmp_path, [pattern], allowed_roots=["/"])
    assert _errors(path, ("/",)) == [
        f"sources[0].paths[0]: expected log files, not a path under /proc, /sys or /dev, got {pattern!r}"]


def test_special_files_matched_by_a_glob_or_symlink_are_refused(tmp_path: Path) -> None:
    cms = tmp_path / "cms"
    cms.mkdir()
    (cms / "good.jsonl").write_text("{}\n")
    os.mkfifo(cms / "pipe.jsonl")
    (cms / "environ.jsonl").symlink_to("/proc/self/environ")
    (cms / "null.jsonl").symlink_to("/dev/null")
    (cms / "outside.jsonl").symlink_to("/etc/hostname")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(cms / "sock.jsonl"))
        errors = _errors(_config(tmp_path, ["cms/*.jsonl"]))
    finally:
        sock.close()
    got = {e.rsplit("/", 1)[-1].rstrip("'"): e.split(": ", 1)[1].rsplit(", got", 1)[0] for e in errors}
    assert got == {
        "environ.jsonl": "expected log files, not a file under /proc, /sys or /dev",
        "null.jsonl": "expected log files, not a file under /proc, /sys or /dev",
        "pipe.jsonl": "expected regular files, got a FIFO",
        "sock.jsonl": "expected regular files, got a socket",
        "outside.jsonl": "expected files inside the config's folder or under allowed_roots (a symlink may not lead out of them)",
    }
    assert all(e.startswith("sources[0].paths[0]: ") for e in errors)


def test_the_export_secret_file_is_never_read_as_a_log(tmp_path: Path) -> None:
    (tmp_path / "export.secret").write_text("s" * 40)
    (tmp_path / "cms.jsonl").write_text("{}\n")
    path = _config(tmp_path, ["."], export={"secret_file": "export.secret"})
    assert _errors(path) == [
        f"sources[0].paths[0]: expected log files, not the export secret file, got {str(tmp_path / 'export.secret')!r}"]


def test_proc_environ_as_a_source_is_refused_by_validate_and_run(tmp_path: Path) -> None:
    path = _config(tmp_path, ["/proc/self/environ"], allowed_roots=["/"])
    for args in (("validate", "--config", str(path), "--allow-root", "/"),
                 ("run", "--config", str(path), "--output", str(tmp_path / "out"), "--allow-root", "/")):
        proc = _cli(*args)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert [line for line in proc.stderr.splitlines() if line.startswith(str(path))] == [
            f"{path}: sources[0].paths[0]: expected log files, not a path under /proc, /sys or /dev, "
            "got '/proc/self/environ'"]
        assert ENV_SECRET not in proc.stderr + proc.stdout
    assert not (tmp_path / "out").exists()


def _secret_leaks(out: Path, secrets: list[str], *texts: str) -> list[str]:
    found = [f"stdout/stderr holds {s[:6]}..." for s in secrets for t in texts if s in t]
    for f in out.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            found += [f"{f.relative_to(out)} holds {s[:6]}..." for s in secrets if s.encode() in data]
    return found


def test_no_output_of_a_run_holds_the_export_secret(tmp_path: Path) -> None:
    corpus, out = tmp_path / "corpus", tmp_path / "out"
    assert _cli("generate", "--out", str(corpus), "--events", "3000").returncode == 0
    file_secret = (corpus / "export.secret").read_text().strip()
    assert len(file_secret) >= 16
    # A hostile variant first: a "log" in the CMS folder that is the process environment.
    (corpus / "cms" / "env.jsonl").symlink_to("/proc/self/environ")
    proc = _cli("run", "--config", str(corpus / "config.yaml"), "--output", str(out))
    assert proc.returncode == 2 and "env.jsonl" in proc.stderr and not out.exists()
    (corpus / "cms" / "env.jsonl").unlink()
    # The real run: redacted profiles use the secret; nothing written or printed holds it.
    proc = _cli("run", "--config", str(corpus / "config.yaml"), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "stix-isac").is_dir() and (out / "deadletter").is_dir() and (out / "summary.json").is_file()
    assert _secret_leaks(out, [file_secret, ENV_SECRET], proc.stdout, proc.stderr) == []


def test_validate_reports_every_problem_in_one_pass_as_run_does(tmp_path: Path) -> None:
    (tmp_path / "cms").mkdir()
    (tmp_path / "cms" / "a.jsonl").write_text("{}\n")
    path = _config(tmp_path, ["cms/*.jsonl"],
                   correlation={"gap": "soon"},  # a schema error does not hide the rest
                   export={"profiles": [{"name": "isac", "tlp": "amber",
                                         "redaction": {"internal_addresses": "pseudonym"}}],
                           "secret_file": "missing.secret"},
                   detections={"threat_intel_match": {"params": {"bundles": ["isac/missing.json"]}}})
    data = yaml.safe_load(path.read_text())
    data["sources"] += [{"name": "nothing", "format": "zeek_conn", "paths": ["zeek/conn*.log"]},
                        {"name": "typo", "format": "zeek_connn", "paths": ["cms/*.jsonl"]}]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    expected = [
        f"{path}: correlation.gap: expected a duration such as 30m, 2h or a number of seconds, got 'soon'",
        f"{path}: sources[2].format: expected one of: ",
        f"{path}: sources.nothing.paths: expected paths that match files (relative to {tmp_path}), got none",
        f"{path}: export.secret_file: expected a readable secret file, got {str(tmp_path / 'missing.secret')!r} "
        "(No such file or directory)",
        f"{path}: detections.threat_intel_match.params.bundles[0]: expected a readable STIX bundle file, got "
        "'isac/missing.json' (no such file)",
    ]
    validate = _cli("validate", "--config", str(path))
    run = _cli("run", "--config", str(path), "--output", str(tmp_path / "out"))
    for proc in (validate, run):
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [line for line in validate.stderr.splitlines() if line.startswith(str(tmp_path))]
    assert len(lines) == len(expected) and all(line.startswith(e) for line, e in zip(lines, expected)), lines
    # the run's own checks are the same, but a source that matches nothing is only a warning there
    assert [line for line in run.stderr.splitlines() if line.startswith(str(tmp_path))] == [
        line for line in lines if "sources.nothing" not in line]
    # Fixed, validate still refuses a source that reads nothing; a run warns and goes on.
    data["correlation"] = {"gap": "30m"}
    data["sources"].pop()
    data["export"].pop("secret_file")
    data["detections"] = {}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    validate = _cli("validate", "--config", str(path))
    assert validate.returncode == 2
    assert validate.stderr.strip().splitlines()[-1] == (
        f"{path}: sources.nothing.paths: expected paths that match files (relative to {tmp_path}), got none")
    (tmp_path / "zeek").mkdir()
    (tmp_path / "zeek" / "conn.log").write_text("")
    validate = _cli("validate", "--config", str(path))
    assert validate.returncode == 0 and validate.stdout.startswith(f"{path}: OK"), validate.stderr
