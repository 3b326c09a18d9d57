"""What ``cranewatch run`` tells the analyst: real runs of the installed command.

A run that read nothing usable exits 1; dead letters are counted per source and reason
code; a source reading the wrong format gets a hint; files read twice or by no source are
reported; incidents are listed most severe first; progress shows as plain lines when
stderr is not a terminal (and as a bar on a terminal); Beam stays quiet unless asked.
"""
from __future__ import annotations

import argparse
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.cli import _parser
from pipelines.generate import generate
from pipelines.summary import SEVERITY_RANK
from transforms.reasons import CODES, reason_code

pytestmark = pytest.mark.slow
EXE = shutil.which("cranewatch", path=os.path.dirname(sys.executable)) or "cranewatch"
QUICK_PROGRESS = {"CRANEWATCH_PROGRESS_DELAY": "0", "CRANEWATCH_PROGRESS_INTERVAL": "0.5"}


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def _config(corpus: Path, edit: Any, name: str) -> Path:
    cfg = yaml.safe_load((corpus / "config.yaml").read_text())
    edit(cfg)
    path = corpus / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "corpus"
    generate(str(root), events=3000, seed=5)
    with open(root / "cms" / "cms-events.jsonl", "ab") as fh:
        fh.write(b'{"time": "2026-11-17T01:00:00Z", "crane_id": "STS-01"\n')  # invalid JSON
        fh.write(b'{"time": "2026-11-17T01:00:00Z", "note": "\xff\xfe"}\n')  # not UTF-8
    (root / "misc").mkdir()
    shutil.copy(root / "cms" / "cms-events.jsonl", root / "misc" / "events.jsonl")
    (root / "zeek" / "x509.log").write_text("#separator \\x09\n")  # a Zeek log no source reads
    return root


@pytest.fixture(scope="module")
def messy_run(corpus: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["sources"] += [
            {"name": "misc", "format": "zeek_modbus", "paths": ["misc/*.jsonl"]},  # wrong format
            {"name": "modbus-again", "format": "zeek_modbus", "paths": ["zeek/modbus.log"]},  # read twice
        ]
    out = corpus.parent / "out"
    proc = _cli("run", "--config", str(_config(corpus, edit, "messy.yaml")), "--output", str(out), env=QUICK_PROGRESS)
    return proc, out


def test_dead_letters_are_counted_per_source_and_reason_code(messy_run) -> None:
    proc, out = messy_run
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    dead = [json.loads(line) for line in (out / "deadletter" / "deadletter.jsonl").read_text().splitlines()]
    assert all(d["reason_code"] == reason_code(d["reason"]) and d["reason_code"] in CODES for d in dead)
    assert summary["dead_letters"]["cms"] == {"invalid_json": 1, "not_utf8": 1}
    misc = summary["sources"]["misc"]
    assert summary["dead_letters"]["misc"] == {"wrong_format": misc["read"] - 2, "invalid_json": 1, "not_utf8": 1}
    for source, codes in summary["dead_letters"].items():
        assert sum(codes.values()) == summary["sources"][source]["dead_lettered"], source
    table = proc.stdout[proc.stdout.index("Dead letters per source and reason"):]
    assert re.search(r"cms\s+│\s+invalid_json\s+│\s+1\b", table)
    assert re.search(rf"misc\s+│\s+wrong_format\s+│\s+{misc['read'] - 2:,}\b", table)


def test_problems_with_the_inputs_are_reported(messy_run, corpus: Path) -> None:
    proc, out = messy_run
    problems = {p["kind"]: p for p in json.loads((out / "summary.json").read_text())["problems"]}
    assert problems["mostly_dead_lettered"]["source"] == "misc"
    hint = "misc: 100% not a Zeek Modbus log: wrong format for these files?"
    assert problems["mostly_dead_lettered"]["message"] == hint
    twice = problems["file_read_twice"]
    assert twice["file"] == str((corpus / "zeek" / "modbus.log").resolve())
    assert twice["sources"] == ["zeek-modbus", "modbus-again"]
    assert problems["unread_files"]["files"] == ["zeek/x509.log"]  # not misc.yaml, not out/
    for p in problems.values():
        assert f"warning: {p['message']}" in " ".join(proc.stdout.split())


def test_incidents_are_listed_most_severe_first_and_written_in_time_order(messy_run) -> None:
    proc, out = messy_run
    incidents = [json.loads(line) for line in (out / "incidents.jsonl").read_text().splitlines()]
    assert len(incidents) > 3
    assert [i["first_seen"] for i in incidents] == sorted(i["first_seen"] for i in incidents)
    table = proc.stdout[proc.stdout.index("Incidents (most severe first)"):]
    rows = re.findall(r"│ (critical|high|medium|low|info) (\d+)\s+│ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", table)
    assert len(rows) == len(incidents)
    keys = [(SEVERITY_RANK[label], first) for label, _, first in rows]
    assert keys == sorted(keys)
    assert len({label for label, *_ in rows}) > 1


def test_progress_is_plain_lines_off_a_terminal_and_beam_stays_quiet(messy_run) -> None:
    proc, out = messy_run
    lines = [line for line in proc.stderr.splitlines() if line.startswith("progress: ")]
    assert lines, proc.stderr
    assert re.fullmatch(r"progress: \d+/\d+ files, [\d.,]+/[\d.,]+ MB \(\d+%\), [\d,]+ records/s, "
                        r"elapsed \d+:\d\d, ETA (\d+:\d\d|\?)", lines[-1]), lines[-1]
    others = [line for line in proc.stderr.splitlines() if not line.startswith("progress: ")]
    assert others == [], others  # no Beam lines, no warning banners
    assert f"outputs in {out}/" in proc.stdout


def test_progress_bar_on_a_terminal(corpus: Path, tmp_path: Path) -> None:
    """stderr is a pseudo-terminal: the rich bar draws there, and is gone when the run ends."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([EXE, "run", "--config", str(corpus / "config.yaml"), "--output", str(tmp_path / "o")],
                            stdout=subprocess.PIPE, stderr=slave, text=True,
                            env={**os.environ, **QUICK_PROGRESS, "COLUMNS": "160"})
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    stdout = proc.communicate(timeout=60)[0]
    os.close(master)
    assert proc.returncode == 0
    text = seen.decode("utf-8", "replace")
    assert "reading" in text and "━" in text and "records/s" in text and "ETA" in text
    assert "progress: " not in stdout and "Records per source" in stdout


def test_a_run_that_reads_nothing_usable_exits_1(corpus: Path) -> None:
    def wrong_format(cfg: dict[str, Any]) -> None:
        cfg["sources"] = [{"name": "misc", "format": "zeek_modbus", "paths": ["misc/*.jsonl"]}]

    def no_files(cfg: dict[str, Any]) -> None:
        for s in cfg["sources"]:
            s["paths"] = ["nowhere/*.log"]

    records = sum(1 for line in (corpus / "misc" / "events.jsonl").read_bytes().splitlines() if line.strip())
    cases = ((wrong_format, "all_dead_lettered", f"every one of the {records} records read was dead-lettered", []),
             (no_files, "no_input", "no source matched any file", ["--verbose"]))
    for edit, status, message, verbose in cases:
        out = corpus.parent / f"out-{status}"
        proc = _cli("run", "--config", str(_config(corpus, edit, f"{status}.yaml")), "--output", str(out), "--quiet",
                    *verbose, env=QUICK_PROGRESS)
        assert proc.returncode == 1, proc.stderr
        assert f"cranewatch run: nothing to analyse: {message}" in proc.stderr
        summary = json.loads((out / "summary.json").read_text())
        assert summary["status"] == status  # the run itself is complete, and says why it found nothing
        # --quiet: no tables, no progress, still where the outputs went; Beam's lines only with --verbose
        assert proc.stdout == f"outputs in {out}/ (summary: {out}/summary.json, report: {out}/report.html)\n"
        assert "progress: " not in proc.stderr
        assert ("INFO apache_beam" in proc.stderr) == bool(verbose)


def _options(parser: argparse.ArgumentParser, path: str = "cranewatch"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{path} {name}")
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            yield path, action, parser


def test_every_option_has_help_with_its_default() -> None:
    options = list(_options(_parser()))
    assert len(options) > 20
    for path, action, parser in options:
        assert action.help, f"{path} {action.option_strings[0]}: no help text"
        if action.default not in (None, False, argparse.SUPPRESS):
            shown = parser.formatter_class(prog=path)._get_help_string(action) % {"default": action.default}
            assert "default" in shown and str(action.default) in shown, (path, action.option_strings[0], shown)


def test_version_and_no_banner_on_a_clean_install() -> None:
    proc = _cli("--version")
    assert proc.returncode == 0
    assert re.fullmatch(r"cranewatch \d+\.\d+\.\d+ \(apache-beam 2\.\d+\.\d+, Python 3\.\d+\.\d+\)\n", proc.stdout)
    assert proc.stderr == ""
    proc = _cli("formats", "list")
    assert proc.returncode == 0 and proc.stderr == ""


@pytest.mark.parametrize("reason, code", [
    ("not valid UTF-8", "not_utf8"),
    ("invalid JSON: Expecting ',' delimiter at column 52", "invalid_json"),
    ("not a JSON object (list)", "invalid_json"),
    ("no usable timestamp: invalid ts 'x'", "bad_time"),
    ("not a Zeek Modbus log (no func field)", "wrong_format"),
    ("expected 21 tab-separated fields, got 7", "field_count"),
    ("invalid address 'not-an-ip' in remip", "bad_value"),
    ("missing required key 'time'", "missing_field"),
    ("unreadable file, stopped at line 3: EOFError: Compressed file ended before the end-of-stream marker", "truncated"),
    ("late finding beyond allowed lateness (correlation.allowed_lateness)", "late"),
    ("line longer than 1048576 bytes", "too_long"),
    ("something no rule knows", "other"),
])
def test_reason_codes_are_derived_from_the_wording(reason: str, code: str) -> None:
    assert reason_code(reason) == code


def test_progress_counts_files_and_bytes_this_process_reads(tmp_path: Path) -> None:
    import io

    from pipelines.progress import RunProgress, note_records

    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(b"x" * 1000)
    b.write_bytes(b"y" * 500)
    progress = RunProgress(stream=io.StringIO(), delay=3600, terminal=False)
    progress.start([a, b])
    with open(a, "rb", buffering=0) as fh:
        fh.read(300)
        snap = progress.snapshot()
        assert (snap["files"], snap["bytes"], snap["total_files"], snap["total_bytes"]) == (0, 300, 2, 1500)
    note_records(10, str(a))
    snap = progress.snapshot()
    assert (snap["files"], snap["bytes"], snap["records"]) == (1, 1000, 10)
    assert re.match(r"progress: 1/2 files, 0\.0/0\.0 MB \(67%\), [\d,]+ records/s, elapsed 0:00, ETA 0:00", progress.line(snap))
    progress.stop()
