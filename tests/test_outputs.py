"""A run's outputs appear all at once, one run at a time, and only a complete run is shared.

Real ``cranewatch run`` processes are killed with SIGKILL at several points (after a
delay, and paused at each stage of the swap by the ``CRANEWATCH_TEST_PAUSE`` hook); after
each kill the output folder must hold one complete run, the old or the new, never a mix.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pipelines.cli import main
from pipelines.config import load_config
from pipelines.generate import generate
from pipelines.outputs import (
    MARKER,
    NO_EXCHANGE_ENV,
    PAUSE_ENV,
    IncompleteRun,
    OutputError,
    OutputLocked,
    OutputRun,
    lock_path,
    require_complete,
)

pytestmark = pytest.mark.slow
EXE = shutil.which("cranewatch", path=os.path.dirname(sys.executable)) or "cranewatch"


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("outputs")
    out = {}
    for name, events, seed in (("old", 1500, 3), ("new", 2500, 4)):
        generate(str(root / name), events=events, seed=seed)
        out[name] = root / name
    return out


def _start(corpus: Path, out: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([EXE, "run", "--config", str(corpus / "config.yaml"), "--output", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})


def _wait_for_pause(proc: subprocess.Popen[str], stage: str) -> None:
    assert proc.stderr is not None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if f"paused at {stage}" in line:
            return
        if not line and proc.poll() is not None:
            break
    pytest.fail(f"run did not pause at {stage} (exit {proc.poll()})")


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _events(corpus: Path) -> int:
    return json.loads((corpus / "truth.json").read_text())["events"]


def _which_run(out: Path, corpora: dict[str, Path]) -> str:
    """'old' or 'new': the one complete run ``out`` holds; fails on anything else."""
    marker = require_complete(str(out))
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {MARKER}
    assert on_disk == set(marker["files"]), "files differ from the run's own list"
    for rel, size in marker["files"].items():
        assert (out / rel).stat().st_size == size, rel
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run_id"] == marker["run_id"]
    counts = {s: json.loads((out / "_counts.json").read_text())[s]["read"] for s in summary["sources"]}
    assert sum(counts.values()) == summary["totals"]["read"]
    incidents = [json.loads(line) for line in (out / "incidents.jsonl").read_text().splitlines()]
    assert len(incidents) == summary["incidents"]["total"]
    assert len(list((out / "stix").glob("*.json"))) == summary["bundles"]
    (name,) = [n for n, c in corpora.items() if _events(c) == summary["totals"]["read"]]
    return name


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.glob(f".{out.name}.*") if p.is_dir())


def test_a_killed_run_leaves_the_old_or_the_new_complete_output(corpora, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _start(corpora["old"], out)
    assert first.wait(timeout=300) == 0, first.stderr.read() if first.stderr else ""
    assert _which_run(out, corpora) == "old"

    # Killed while Beam runs (after a delay): the old run stays, the staging folder is left over.
    proc = _start(corpora["new"], out)
    time.sleep(2.5)
    _kill(proc)
    assert _which_run(out, corpora) == "old"

    # Killed with every output written, before and after the completion marker: still the old.
    for stage in ("staged", "marked"):
        proc = _start(corpora["new"], out, **{PAUSE_ENV: stage})
        _wait_for_pause(proc, stage)
        if stage == "staged":  # the paused run holds the lock: a second run is refused, naming it
            other = subprocess.run([EXE, "run", "--config", str(corpora["old"] / "config.yaml"),
                                    "--output", str(out)], capture_output=True, text=True, timeout=300)
            assert other.returncode == 1
            assert f"another cranewatch run (PID {proc.pid})" in other.stderr
        _kill(proc)
        assert _which_run(out, corpora) == "old"
        assert any(".staging-" in d for d in _leftovers(out))

    # Killed after the swap, before the old run is deleted: the new run is in place.
    proc = _start(corpora["new"], out, **{PAUSE_ENV: "swapped"})
    _wait_for_pause(proc, "swapped")
    _kill(proc)
    assert _which_run(out, corpora) == "new"

    # Without the atomic exchange (two renames), killed between them: the folder is absent
    # (never mixed), and the next run first puts the staged complete run in place.
    proc = _start(corpora["old"], out, **{PAUSE_ENV: "renamed-aside", NO_EXCHANGE_ENV: "1"})
    _wait_for_pause(proc, "renamed-aside")
    _kill(proc)
    assert not out.exists()
    with OutputRun(str(out)) as staging:  # what every run does first, under the lock
        assert _which_run(out, corpora) == "old"
        assert _leftovers(out) == [os.path.basename(staging.path)]

    # A finished run cleans up every staging and old folder killed runs left behind.
    last = _start(corpora["new"], out)
    assert last.wait(timeout=300) == 0
    assert _which_run(out, corpora) == "new"
    assert _leftovers(out) == []


def test_a_second_run_into_the_same_folder_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with OutputRun(str(out)):
        assert Path(lock_path(str(out))).read_text().strip() == str(os.getpid())
        with pytest.raises(OutputLocked, match=rf"another cranewatch run \(PID {os.getpid()}\)"):
            with OutputRun(str(out)):
                pass
    with OutputRun(str(out)) as again:  # released when the first run ends
        again.commit()
    require_complete(str(out))


def test_a_failed_run_leaves_the_previous_output_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with OutputRun(str(out)) as run:
        Path(run.path, "summary.json").write_text('{"run": 1}\n')
        run.commit()
    with pytest.raises(RuntimeError):
        with OutputRun(str(out)) as run:
            Path(run.path, "summary.json").write_text('{"run": 2}\n')
            raise RuntimeError("pipeline failed")
    assert json.loads((out / "summary.json").read_text()) == {"run": 1}
    assert _leftovers(out) == []


def test_the_two_rename_swap_gives_the_same_result(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(NO_EXCHANGE_ENV, "1")
    out = tmp_path / "out"
    for n in (1, 2):
        with OutputRun(str(out)) as run:
            Path(run.path, "summary.json").write_text(f'{{"run": {n}}}\n')
            run.commit()
    assert json.loads((out / "summary.json").read_text()) == {"run": 2}
    assert require_complete(str(out))["files"] == {"summary.json": 11}
    assert _leftovers(out) == []


def test_a_folder_that_is_not_a_run_output_is_never_replaced(tmp_path: Path, corpora) -> None:
    home = tmp_path / "documents"
    home.mkdir()
    (home / "thesis.tex").write_text("precious")
    with pytest.raises(OutputError, match="thesis.tex"):
        with OutputRun(str(home)):
            pass
    rc = main(["run", "--config", str(corpora["old"] / "config.yaml"), "--output", str(home), "--quiet"])
    assert rc == 2
    assert (home / "thesis.tex").read_text() == "precious"


def _share(output: Path, capsys) -> tuple[int, str]:
    rc = main(["share", "--taxii", "http://127.0.0.1:9/api/", "--collection", "c1", "--output", str(output),
               "--profile", "isac"])
    return rc, capsys.readouterr().err


def test_share_refuses_an_incomplete_run(tmp_path: Path, corpora, capsys) -> None:
    out = tmp_path / "out"
    cfg = load_config(corpora["old"] / "config.yaml")
    from pipelines.batch import run_batch

    run_batch(cfg, str(out))
    partial = tmp_path / "partial"
    shutil.copytree(out, partial)
    (partial / MARKER).unlink()  # what a run killed mid-way (or an older version) leaves
    rc, err = _share(partial, capsys)
    assert rc == 2
    assert "refusing to share" in err and "not a complete run" in err
    missing = tmp_path / "missing-bundle"
    shutil.copytree(out, missing)
    victim = sorted((missing / "stix").glob("*.json"))[0]
    victim.unlink()
    rc, err = _share(missing, capsys)
    assert rc == 2 and "incomplete run" in err and victim.name in err
    with pytest.raises(IncompleteRun, match="no such folder"):
        require_complete(str(tmp_path / "nowhere"))
    # The complete run passes the check and fails only at the (closed) TAXII port.
    rc, err = _share(out, capsys)
    assert rc == 1 and "refusing" not in err


def test_kept_entries_move_into_each_new_run(tmp_path: Path) -> None:
    """``cranewatch demo`` keeps its generated data in ``<out>/data``: it survives every swap."""
    out = tmp_path / "demo-out"
    (out / "data").mkdir(parents=True)
    (out / "data" / "config.yaml").write_text("site: {}\n")
    for n in (1, 2):
        with OutputRun(str(out), keep=("data",)) as run:
            Path(run.path, "summary.json").write_text(f'{{"run": {n}}}\n')
            run.commit()
        assert (out / "data" / "config.yaml").read_text() == "site: {}\n"
        assert "data/config.yaml" not in require_complete(str(out))["files"]
    shutil.rmtree(out / "stix", ignore_errors=True)
    for f in out.iterdir():
        if f.is_file():
            f.unlink()
    with pytest.raises(OutputError, match="data"):  # without keep, data/ alone is not a run output
        with OutputRun(str(out)):
            pass
