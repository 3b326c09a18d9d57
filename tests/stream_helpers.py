"""Helpers for the streaming tests: a generated corpus cut into time slices and dropped into
spool directories, a stream run as a subprocess (it isolates itself in a private network
namespace), and the comparison of its final files with a batch run's."""
from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parents[1]


def record_time(fmt: str, line: str) -> float:
    if fmt.startswith("zeek"):
        return float(line.split("\t", 1)[0])
    if fmt == "cms_events":
        return dt.datetime.fromisoformat(json.loads(line)["time"].replace("Z", "+00:00")).timestamp()
    m = re.search(r"eventtime=(\d+)", line)
    assert m, f"no time in {line[:80]!r}"
    return int(m.group(1)) / 1e9


def _lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        return fh.read().splitlines()


def family(name: str) -> str:
    """A log's name without rotation time and extensions: conn.2026-11-17-00-00-00.log.gz → conn."""
    return re.split(r"[.]", name, maxsplit=1)[0]


def slice_sources(corpus: Path, slices: int) -> tuple[dict[str, Any], dict[str, list[list[tuple[str, list[str], list[str]]]]]]:
    """Each source's records in ``slices`` equal spans of event time, per log family (a
    source may read several kinds of file, each with its own header):
    {source: [[(family, header, data) per family] per slice]}."""
    cfg = yaml.safe_load((corpus / "config.yaml").read_text())
    logs: dict[str, dict[str, tuple[list[str], list[str]]]] = {}
    formats = {}
    for s in cfg["sources"]:
        formats[s["name"]] = s["format"]
        fams = logs.setdefault(s["name"], {})
        for pattern in s["paths"]:
            for f in sorted(corpus.glob(pattern)):
                header, data = fams.setdefault(family(f.name), ([], []))
                for line in _lines(f):
                    if line.startswith("#"):
                        if not data and line not in header and not line.startswith(("#close", "#open")):
                            header.append(line)
                    elif line.strip():
                        data.append(line)
    times = [record_time(formats[src], line) for src, fams in logs.items() for _, data in fams.values() for line in data]
    lo, hi = min(times), max(times) + 1e-6
    width = (hi - lo) / slices
    out: dict[str, list[list[tuple[str, list[str], list[str]]]]] = {}
    for src, fams in logs.items():
        parts: list[list[tuple[str, list[str], list[str]]]] = [[] for _ in range(slices)]
        for fam, (header, data) in sorted(fams.items()):
            cut: list[list[str]] = [[] for _ in range(slices)]
            for line in data:
                cut[min(int((record_time(formats[src], line) - lo) / width), slices - 1)].append(line)
            for i in range(slices):
                parts[i].append((fam, header, cut[i]))
        out[src] = parts
    return cfg, out


def drop_part(spool: Path, source: str, index: int, part: list[tuple[str, list[str], list[str]]]) -> int:
    """Write one slice of a source into its spool directory; the number of files written."""
    for fam, header, data in part:
        write_part(spool / source / part_name(fam, index), header, data)
    return len(part)


def write_part(path: Path, header: list[str], data: list[str]) -> None:
    """Write a spool file under a hidden name, then rename it in (as log shippers do)."""
    text = "".join(line + "\n" for line in [*header, *data]).encode()
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix == ".gz":
        text = gzip.compress(text)
    elif path.suffix == ".zst":
        import zstandard

        text = zstandard.ZstdCompressor().compress(text)
    tmp.write_bytes(text)
    os.replace(tmp, path)


def part_name(fam: str, index: int) -> str:
    # Rotated files arrive compressed like Zeek's: conn parts as .gz, dns parts as .zst.
    ext = {"conn": ".log.gz", "dns": ".log.zst"}.get(fam, ".log")
    return f"{fam}-{index:02d}{ext}"


def stream_config(corpus: Path, cfg: dict[str, Any], spool: Path, name: str, batch_files: dict[str, list[Path]] | None,
                  **stream: Any) -> Path:
    """A config beside the corpus (its relative references keep working): sources read the
    ``spool/<source>`` directories (stream) or exactly ``batch_files`` (batch)."""
    cfg = json.loads(json.dumps(cfg))
    for s in cfg["sources"]:
        s.pop("paths")
        if batch_files is None:
            s["spool"] = str(spool / s["name"])
        else:
            s["paths"] = [str(p) for p in batch_files[s["name"]]]
    cfg["stream"] = {"settle": 0.1, "poll_interval": 0.2, "idle_timeout": 0, "summary_interval": 0.5, **stream}
    cfg.setdefault("correlation", {})["allowed_lateness"] = "2h"
    path = corpus / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def start_stream(config: Path, out: Path, *beam_args: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "pipelines.cli", "stream", "--config", str(config), "--output", str(out)]
    if beam_args:
        args += ["--", *beam_args]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished_files(out: Path, source: str) -> int:
    path = out / "_stream" / "spool" / f"{source}.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_for(check: Callable[[], bool], timeout: float, proc: subprocess.Popen | None = None, what: str = "") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"stream exited early ({proc.returncode}) waiting for {what}: {proc.stderr.read()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def child_pids(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                out.append(int(entry))
    return out


def kill_hard(proc: subprocess.Popen) -> None:
    """SIGKILL the stream, then stop the Prism it had started (orphaned by the kill), by PID."""
    children = child_pids(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def final_incidents(out: Path) -> dict[str, dict[str, Any]]:
    """The last version of each incident in a stream's incidents.jsonl, withdrawn ones gone."""
    latest: dict[str, dict[str, Any]] = {}
    for row in jsonl(out / "incidents.jsonl"):
        if row["version"] == "withdrawn":
            latest.pop(row["incident_id"], None)
        else:
            latest[row["incident_id"]] = row
    return latest


def _normalized(text: str, batch: dict[str, Any]) -> str:
    """A stream bundle with its bundle id dropped (derived from the incident's ``modified``)
    and each object whose ``modified`` differs from batch's put back to batch's version; each
    such object must be later than batch's and no later than the stream's incident (STIX
    versioning: its content changed after a version under batch's time was written, in this
    version or in an earlier one whose version of it this one keeps)."""
    bundle = json.loads(text)
    stream_modified = next(o["modified"] for o in bundle["objects"] if o["type"] == "incident")
    versions = {o["id"]: o.get("modified") for o in batch["objects"]}
    bundle["id"] = None
    for o in bundle["objects"]:
        if versions.get(o["id"]) not in (None, o.get("modified")) and "modified" in o:
            assert _instant(versions[o["id"]]) < _instant(o["modified"]) <= _instant(stream_modified), o["id"]
            o["modified"] = versions[o["id"]]
    return json.dumps(bundle, sort_keys=True)


def _instant(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def compare_bundles(batch_dir: Path, stream_dir: Path) -> dict[str, int]:
    """Assert the stream's final bundles equal batch's: same files, byte for byte, except a
    later ``modified`` (and so bundle id) where STIX versioning forced one. Returns counts."""
    batch = sorted(p.name for p in batch_dir.glob("*.json"))
    stream = sorted(p.name for p in stream_dir.glob("*.json"))
    assert stream == batch, f"bundle files differ: only batch {set(batch) - set(stream)}, only stream {set(stream) - set(batch)}"
    counts = {"identical": 0, "later_modified": 0, "reversioned_objects": 0}
    for name in batch:
        b, s = (batch_dir / name).read_text(), (stream_dir / name).read_text()
        if b == s:
            counts["identical"] += 1
            continue
        bundle_b = json.loads(b)
        bm = next(o["modified"] for o in bundle_b["objects"] if o["type"] == "incident")
        sm = next(o["modified"] for o in json.loads(s)["objects"] if o["type"] == "incident")
        assert _instant(sm) > _instant(bm), name
        normalized = _normalized(s, bundle_b)
        bundle_b["id"] = None
        assert normalized == json.dumps(bundle_b, sort_keys=True), f"{name} differs beyond modified"
        counts["later_modified"] += 1
        counts["reversioned_objects"] += sum(
            1 for x, y in zip(json.loads(s)["objects"], bundle_b["objects"]) if x.get("modified") != y.get("modified"))
    return counts
