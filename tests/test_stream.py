"""``cranewatch stream`` end to end on Prism, each run inside a private network namespace.

A generated terminal is cut into six event-time slices dropped one after another into spool
directories (gzip and zstd rotated files among them); one source's slices 2 and 3 arrive
swapped (late, within allowed lateness), and a last file holds records a day old (beyond
it). The stream's final files must equal ``cranewatch run`` over the same files.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from pipelines.batch import run_batch
from pipelines.config import load_config
from pipelines.generate import generate
from pipelines.summary import build_summary
from stream_helpers import (
    ROOT, child_pids, compare_bundles, drop_part, final_incidents, finished_files, jsonl, kill_hard, slice_sources,
    start_stream, stream_config, wait_for, write_part,
)

pytestmark = pytest.mark.slow
SLICES = 6
SWAPPED = "cms"  # its slices 2 and 3 arrive in the other order
LATE_RECORDS = 15


def _drop_plan(parts: dict[str, list[Any]]) -> list[list[tuple[str, int]]]:
    plan = []
    for i in range(SLICES):
        drop = []
        for source in parts:
            j = {2: 3, 3: 2}.get(i, i) if source == SWAPPED else i
            drop.append((source, j))
        plan.append(drop)
    return plan


def _late_lines(parts: dict[str, list[Any]]) -> list[str]:
    """Benign CMS records moved a day back: far beyond allowed lateness when they arrive."""
    import datetime as dt

    out = []
    for line in parts[SWAPPED][0][0][2][:LATE_RECORDS]:
        rec = json.loads(line)
        t = dt.datetime.fromisoformat(rec["time"].replace("Z", "+00:00")) - dt.timedelta(days=1)
        rec["time"] = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
        out.append(json.dumps(rec))
    return out


class Monitor(threading.Thread):
    """Notes when each bundle first appears and whether its incident was final then."""

    def __init__(self, out: Path):
        super().__init__(daemon=True)
        self.out = out
        self.seen: dict[str, tuple[float, bool]] = {}
        self.report: float | None = None  # when report.html first appeared
        self.drafts: dict[str, float] = {}  # incident id -> when its mandated drafts first appeared
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            index = {}
            for row in jsonl(self.out / "_stream" / "incidents.jsonl"):
                index[row["id"]] = row
            for p in (self.out / "stix").glob("*.json") if (self.out / "stix").is_dir() else []:
                iid = p.stem
                if iid not in self.seen and iid in index:
                    self.seen[iid] = (time.time(), bool(index[iid]["final"]))
            if self.report is None and (self.out / "report.html").exists():
                self.report = time.time()
            for d in (self.out / "reports" / "mandated").glob("*/*.json"):
                self.drafts.setdefault(d.parent.name, time.time())
            time.sleep(0.05)


def _listeners(pid: int) -> set[int]:
    """Ports listening in the network namespace of process ``pid`` (its /proc/PID/net view)."""
    ports = set()
    for name in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A":  # LISTEN
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def _running(pid: int) -> bool:
    """Alive and not a zombie (a container's init may leave exited children unreaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _host_addresses() -> list[str]:
    addrs = {"127.0.0.1"}
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout
        addrs.update(a for a in out.split() if ":" not in a)
    except OSError:
        pass
    return sorted(addrs)


def _run_drops(corpus: Path, spool: Path, out: Path, cfg: dict[str, Any], parts: dict[str, list[Any]],
               kill_after: int | None = None, sockets: dict[str, Any] | None = None,
               during: Callable[[], None] | None = None) -> dict[str, Any]:
    config = stream_config(corpus, cfg, spool, f"stream-{spool.name}.yaml", None)
    for source in parts:
        (spool / source).mkdir(parents=True, exist_ok=True)
    plan = _drop_plan(parts)
    proc = start_stream(config, out)
    monitor = Monitor(out)
    monitor.start()
    drop_times: list[float] = []
    expected = {source: 0 for source in parts}
    try:
        for n, drop in enumerate(plan):
            if kill_after is not None and n == kill_after:
                kill_hard(proc)
                proc = start_stream(config, out)  # restart: same spool, same output
            drop_times.append(time.time())
            for source, j in drop:
                expected[source] += drop_part(spool, source, j, parts[source][j])
            for source in parts:
                wait_for(lambda s=source: finished_files(out, s) >= expected[s], 60, proc, f"drop {n} of {source}")
            if n == 0 and sockets is not None:
                sockets["ns"] = os.readlink(f"/proc/{proc.pid}/ns/net")
                sockets["ports"] = _listeners(proc.pid)
            if n == 2 and during is not None:
                during()
            time.sleep(0.6)
        write_part(spool / SWAPPED / f"{SWAPPED}-late.log", [], _late_lines(parts))
        wait_for(lambda: finished_files(out, SWAPPED) >= expected[SWAPPED] + 1, 30, proc, "the late file")
        for source in parts:
            write_part(spool / source / "END", [], [])
        ending = time.time()  # every END is written: the stream is finishing from here on
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        monitor.stop.set()
        if proc.poll() is None:
            kill_hard(proc)
    assert proc.returncode == 0, stderr[-3000:]
    assert "stream done" in stdout, stdout + stderr[-2000:]
    return {"drop_times": drop_times, "seen": monitor.seen, "report": monitor.report, "drafts": monitor.drafts,
            "ending": ending, "stderr": stderr}


def _batch(corpus: Path, cfg: dict[str, Any], spool: Path, out: Path) -> dict[str, Any]:
    files = {s: sorted(p for p in (spool / s).iterdir() if p.name != "END" and "late" not in p.name
                       and not p.name.startswith(".")) for s in (x["name"] for x in cfg["sources"])}
    config = stream_config(corpus, cfg, spool, f"batch-{spool.name}.yaml", files)
    loaded = load_config(config)
    return build_summary(loaded, run_batch(loaded, str(out)))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, Any], dict[str, list[Any]]]:
    root = tmp_path_factory.mktemp("stream")
    generate(str(root / "corpus"), events=4000, seed=7)
    cfg, parts = slice_sources(root / "corpus", SLICES)
    return root / "corpus", cfg, parts


@pytest.fixture(scope="module")
def taxii() -> Iterator[Any]:
    from tests import taxii_server

    yield from taxii_server.serve()


def _share(out: Path, taxii: Any) -> Any:
    """``cranewatch share`` of the isac profile's bundles to the test's TAXII server."""
    from stix_export.share import share
    from tests import taxii_server

    os.environ.update({"CRANEWATCH_TAXII_USER": taxii_server.USER, "CRANEWATCH_TAXII_PASSWORD": taxii_server.PASSWORD})
    try:
        return share(str(out), taxii.url, taxii_server.COLLECTION_ID, "isac")
    finally:
        for k in ("CRANEWATCH_TAXII_USER", "CRANEWATCH_TAXII_PASSWORD"):
            os.environ.pop(k, None)


@pytest.fixture(scope="module")
def golden(corpus, taxii) -> dict[str, Any]:
    path, cfg, parts = corpus
    spool, out, batch_out = path / "spool-a", path / "out-a", path / "batch-a"
    sockets: dict[str, Any] = {}
    shared: list[Any] = []
    run = _run_drops(path, spool, out, cfg, parts, sockets=sockets, during=lambda: shared.append(_share(out, taxii)))
    return {"shared_live": shared, "out": out, "batch_out": batch_out, "batch": _batch(path, cfg, spool, batch_out), "sockets": sockets,
            "config": path / f"batch-{spool.name}.yaml", **run}


def _assert_same_as_batch(out: Path, batch_out: Path) -> dict[str, int]:
    batch = {r["incident_id"]: r for r in jsonl(batch_out / "incidents.jsonl")}
    stream = final_incidents(out)
    assert batch, "the corpus produced no incident"
    assert sorted(stream) == sorted(batch)
    for iid, b in batch.items():
        s = stream[iid]
        assert [f["finding_id"] for f in s["findings"]] == [f["finding_id"] for f in b["findings"]], iid
        assert (s["severity"], s["techniques"], s["stages"]) == (b["severity"], b["techniques"], b["stages"]), iid
    counts = compare_bundles(batch_out / "stix", out / "stix")
    compare_bundles(batch_out / "stix-isac", out / "stix-isac")
    return counts


def test_stream_final_files_equal_the_batch_run(golden) -> None:
    counts = _assert_same_as_batch(golden["out"], golden["batch_out"])
    assert counts["identical"] > 0


def test_too_late_records_are_late_dead_letters_and_every_record_is_counted(golden) -> None:
    summary = json.loads((golden["out"] / "summary.json").read_text())
    batch = golden["batch"]
    for name, s in summary["sources"].items():
        assert s["read"] == s["parsed"] + s["dead_lettered"], name
        extra = LATE_RECORDS if name == SWAPPED else 0
        assert s["read"] == batch["sources"][name]["read"] + extra, name
        assert s["parsed"] == batch["sources"][name]["parsed"], name
        assert s["late"] == extra, name
        assert s["watermark"] == "+inf" and s["ended"], name
    late = [d for d in jsonl(golden["out"] / "deadletter" / "deadletter.jsonl") if d["late"]]
    assert len(late) == LATE_RECORDS
    assert all(d["source"] == SWAPPED and d["reason"].startswith("late:") and "late.log" in d["location"] for d in late)
    assert summary["totals"]["read"] == batch["totals"]["read"] + LATE_RECORDS


def test_early_alert_is_written_while_open_and_revised_to_the_final_bundle(golden) -> None:
    opened = {iid: t for iid, (t, final) in golden["seen"].items() if not final}
    assert opened, f"no bundle was seen before its incident closed: {golden['seen']}"
    # The drop that held its first finding was at most a few seconds before the file appeared.
    delays = [t - max(d for d in golden["drop_times"] if d <= t) for t in opened.values()]
    assert min(delays) < 5.0, delays
    finals = {r["incident_id"] for r in jsonl(golden["out"] / "incidents.jsonl") if r["version"] == "final"}
    assert set(opened) & finals, "no early-alerted incident was written final"
    versions = [r for r in jsonl(golden["out"] / "incidents.jsonl") if r.get("incident_id") in opened]
    assert any(r["version"] == "early" for r in versions) and any(r["version"] == "final" for r in versions)


def test_running_stream_writes_report_html_and_drafts_with_the_first_bundle(golden) -> None:
    """report.html is refreshed while the stream runs; a reportable incident's drafts appear
    with its first bundle and end equal to the drafts batch writes for the same incidents."""
    from pipelines.mandated import write_mandated
    from pipelines.stream_reports import latest_incidents

    assert golden["report"] is not None and golden["report"] < golden["ending"], "no report.html while running"
    assert "report not refreshed" not in golden["stderr"], golden["stderr"][-2000:]
    html = (golden["out"] / "report.html").read_text()
    finals = final_incidents(golden["out"])
    assert all(iid in html for iid in finals), "report.html misses an incident"
    early = {iid: t for iid, t in golden["drafts"].items() if t < golden["ending"] and iid in finals}
    assert early, f"no mandated draft appeared while the stream ran: {golden['drafts']}"
    # Written with a bundle version: never before the incident's first bundle, and with the
    # first one when that version is already reportable (a later version may make it so).
    assert all(iid in golden["seen"] and t > golden["seen"][iid][0] - 1.0 for iid, t in early.items()), early
    assert any(t - golden["seen"][iid][0] < 2.0 for iid, t in early.items()), (early, golden["seen"])
    batch_drafts = golden["batch_out"] / "drafts"
    write_mandated(load_config(golden["config"]), latest_incidents(str(golden["batch_out"])), str(batch_drafts))
    stream_root, batch_root = golden["out"] / "reports" / "mandated", batch_drafts / "reports" / "mandated"
    batch_modified = {r["incident_id"]: r["modified"] for r in jsonl(golden["batch_out"] / "incidents.jsonl")}
    names = sorted(str(p.relative_to(batch_root)) for p in batch_root.rglob("*.*"))
    assert names and sorted(str(p.relative_to(stream_root)) for p in stream_root.rglob("*.*")) == names
    differ = []
    for n in names:
        text, expected = (stream_root / n).read_text(), (batch_root / n).read_text()
        iid = n.split("/", 1)[0]
        version, batch_version = finals[iid]["modified"], batch_modified[iid]
        if version != batch_version:  # a later version forced by STIX versioning (see the bundles)
            assert version > batch_version, n
            text = text.replace(version, batch_version)
        if text != expected:
            differ.append(n)
    assert not differ, differ


def test_share_sends_a_live_stream_then_its_revisions(golden, taxii) -> None:
    """A stream's output has no run marker; its own marker says every bundle file is one whole
    version, so ``share`` takes it while running (the versions so far) and again after (the
    revisions only); the collection ends holding every object version of the final bundles."""
    from taxii2client.v21 import as_pages

    from pipelines.outputs import MARKER, STREAM_MARKER
    from stix_export.share import open_collection, received_ids
    from tests import taxii_server

    out = golden["out"]
    assert not (out / MARKER).exists()
    assert json.loads((out / STREAM_MARKER).read_text())["state"] == "done"
    [live] = golden["shared_live"]
    assert live.sent > 0 and not live.failed, live
    after = _share(out, taxii)
    assert not after.failed and after.sent > 0 and after.already > 0, after
    assert _share(out, taxii).noop
    def instant(v: str | None) -> Any:
        return None if v is None else dt.datetime.fromisoformat(v.replace("Z", "+00:00"))

    held = set()
    collection = open_collection(taxii.url, taxii_server.COLLECTION_ID, taxii_server.USER, taxii_server.PASSWORD)
    for page in as_pages(collection.get_manifest, per_request=100, version="all"):
        held.update((r["id"], instant(r.get("version"))) for r in page.get("objects", []))
    final = set()
    for p in (out / "stix-isac").glob("*.json"):
        objects = json.loads(p.read_text())["objects"]
        others = received_ids(objects)  # the ISAC's own objects are not pushed back
        final.update((o["id"], instant(o.get("modified") or o.get("created"))) for o in objects if o["id"] not in others)
    held_ids = {i for i, _ in held}
    missing = {k for k in final if k not in held and not (k[1] is None and k[0] in held_ids)}
    assert final and not missing, sorted(missing, key=str)[:5]


def test_no_listener_of_the_run_is_reachable_from_outside_its_namespace(golden) -> None:
    sockets = golden["sockets"]
    assert sockets["ns"] != os.readlink("/proc/self/ns/net"), "the stream ran in the test's own network namespace"
    assert sockets["ports"], "expected the job and worker ports to be listening inside the namespace"
    for addr in _host_addresses():
        for port in sockets["ports"]:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                assert s.connect_ex((addr, port)) != 0, f"{addr}:{port} answered from outside the namespace"


def test_restart_after_sigkill_ends_with_the_same_final_files(corpus) -> None:
    """Killed with SIGKILL after three drops and restarted on the same spool and output: the
    replay rebuilds the detections' state and the open incidents, and the final files equal
    batch's, with no incident lost or duplicated and every file read once."""
    path, cfg, parts = corpus
    spool, out, batch_out = path / "spool-b", path / "out-b", path / "batch-b"
    run = _run_drops(path, spool, out, cfg, parts, kill_after=3)
    assert "Traceback" not in run["stderr"], run["stderr"][-3000:]
    _batch(path, cfg, spool, batch_out)
    _assert_same_as_batch(out, batch_out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["totals"]["read"] == summary["totals"]["parsed"] + summary["totals"]["dead_lettered"]
    assert summary["totals"]["files"] == sum(len(p[0]) for p in parts.values()) * SLICES + 1  # each once


def test_job_endpoint_runs_the_same_pipeline_on_a_standalone_prism(corpus, tmp_path) -> None:
    """``-- --runner=PortableRunner --job_endpoint=localhost:P`` against a Prism job server the
    helper starts (and stops by PID) inside one private network namespace; the spool holds
    every slice (and END) before the job starts."""
    from pipelines.streaming import prism_location, unshare_command

    path, cfg, parts = corpus
    cmd = unshare_command()
    assert cmd is not None, "no private network namespace can be made on this machine"
    spool = path / "spool-c"
    for source in parts:
        (spool / source).mkdir(parents=True)
        for j in range(SLICES):
            drop_part(spool, source, j, parts[source][j])
        write_part(spool / source / "END", [], [])
    config = stream_config(path, cfg, spool, "stream-spool-c.yaml", None)
    out = tmp_path / "out"
    proc = subprocess.run(
        [*cmd, sys.executable, str(ROOT / "tests" / "stream_jobserver.py"), prism_location(), str(config), str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "stream done" in proc.stdout
    _batch(path, cfg, spool, tmp_path / "batch")
    _assert_same_as_batch(out, tmp_path / "batch")


def test_a_spool_source_that_has_read_nothing_holds_every_incident_open(corpus, tmp_path) -> None:
    """The job's watermark is the minimum over the spool sources: Prism takes a splittable
    DoFn stage's watermark from the bundle it finished last, so each source reports that
    minimum. With one source's spool still empty (idleness off), the other sources' whole day
    read gives early versions only; its END then lets every incident close."""
    path, cfg, parts = corpus
    held = "fortigate"
    spool, out = tmp_path / "spool", tmp_path / "out"
    config = stream_config(path, cfg, spool, "stream-held.yaml", None)
    for source in parts:
        (spool / source).mkdir(parents=True)
    proc = start_stream(config, out)
    try:
        for source in parts:
            if source != held:
                n = sum(drop_part(spool, source, j, parts[source][j]) for j in range(SLICES))
                wait_for(lambda s=source, n=n: finished_files(out, s) >= n, 60, proc, f"the files of {source}")
        wait_for(lambda: any(r["version"] == "early" for r in jsonl(out / "incidents.jsonl")), 60, proc, "an early version")
        time.sleep(3)  # polls of every source after its last file: their watermarks are reported
        versions = [r["version"] for r in jsonl(out / "incidents.jsonl")]
        assert "final" not in versions, "an incident closed while a source had read nothing"
        for source in parts:
            write_part(spool / source / "END", [], [])
        _, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            kill_hard(proc)
    assert proc.returncode == 0, stderr[-3000:]
    assert any(r["version"] == "final" for r in jsonl(out / "incidents.jsonl"))


def test_sigterm_stops_the_stream_cleanly(corpus, tmp_path) -> None:
    path, cfg, parts = corpus
    spool = tmp_path / "spool"
    config = stream_config(path, cfg, spool, "stream-sigterm.yaml", None)
    for source in parts:
        (spool / source).mkdir(parents=True)
        drop_part(spool, source, 0, parts[source][0])
    out = tmp_path / "out"
    proc = start_stream(config, out)
    try:
        wait_for(lambda: all(finished_files(out, s) >= len(parts[s][0]) for s in parts), 60, proc, "the first drop")
        children = child_pids(proc.pid)
        assert children, "expected the Prism job server as a child"
        started = time.time()
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            kill_hard(proc)
    assert proc.returncode == 0, stderr[-2000:]
    assert "stream cancelled" in stdout
    assert time.time() - started < 15
    time.sleep(0.5)
    assert not [p for p in children if _running(p)], "Prism outlived the stream"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["totals"]["files"] == sum(len(p[0]) for p in parts.values())
