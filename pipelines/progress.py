"""Progress of a batch run: files and bytes read of the total, records/s, elapsed, ETA.

Beam's local runner reports nothing while a pipeline runs, so progress is observed from the
outside: a thread looks at which input files this process (and any worker it started) has
open and how far into each it has read (``/proc/<pid>/fdinfo``), and the parse step adds
the records it has read, and from which file, to a process-wide tally (:func:`note_records`):
a file that has been read from and is no longer open is done. On a terminal
the display is a rich progress bar on stderr that vanishes when the run ends; otherwise
(a log file, CI) it is a plain line every few seconds. Nothing shows for runs shorter than
``delay`` seconds.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Iterable, TextIO

#: Seconds before anything shows, and between plain lines (environment overrides).
DELAY_ENV, INTERVAL_ENV = "CRANEWATCH_PROGRESS_DELAY", "CRANEWATCH_PROGRESS_INTERVAL"
_records_lock = threading.Lock()
_records_total = 0
_touched: set[str] = set()  # input files the parse step has read records from


def note_records(n: int, path: str | None = None) -> None:
    """Add ``n`` records read from ``path`` (called by the parse step; cheap, thread-safe)."""
    global _records_total
    with _records_lock:
        _records_total += n
        if path is not None:
            _touched.add(path)


def touched_files() -> set[str]:
    with _records_lock:
        return {os.path.realpath(p) for p in _touched}


def records_read() -> int:
    return _records_total


def _pids() -> list[str]:
    pids = ["self"]
    try:
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children", encoding="ascii") as fh:
                pids += fh.read().split()
    except OSError:
        pass
    return pids


def open_positions(paths: set[str]) -> dict[str, int]:
    """``path → bytes read`` for the files among ``paths`` open in this process or its children."""
    found: dict[str, int] = {}
    for pid in _pids():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target not in paths:
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as fh:
                    pos = int(fh.readline().split()[1])
            except (OSError, ValueError, IndexError):
                continue
            found[target] = max(found.get(target, 0), pos)
    return found


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class RunProgress:
    """``start(files)`` before the pipeline runs, ``stop()`` after; see the module doc."""

    def __init__(self, stream: TextIO | None = None, delay: float | None = None, interval: float | None = None,
                 terminal: bool | None = None):
        self.stream = stream or sys.stderr
        self.delay = float(os.environ.get(DELAY_ENV, 2.0)) if delay is None else delay
        self.interval = float(os.environ.get(INTERVAL_ENV, 5.0)) if interval is None else interval
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lines = 0  # plain lines written

    def start(self, files: Iterable[Any]) -> None:
        self.sizes: dict[str, int] = {}
        for f in files:
            path = os.path.realpath(getattr(f, "path", f))
            try:
                self.sizes[path] = os.path.getsize(path)
            except OSError:
                self.sizes[path] = 0
        self.total = sum(self.sizes.values())
        self.records0 = records_read()
        self.started = time.monotonic()
        self._seen: set[str] = set()
        self._bytes = 0
        self._thread = threading.Thread(target=self._loop, name="cranewatch-progress", daemon=True)
        self._thread.start()

    def snapshot(self) -> dict[str, Any]:
        """Files done and bytes read so far (never going back), records, rates and ETA."""
        now = open_positions(set(self.sizes))
        self._seen |= set(now) | (touched_files() & set(self.sizes))
        done = self._seen - set(now)
        nbytes = sum(self.sizes[p] for p in done) + sum(min(pos, self.sizes[p]) for p, pos in now.items())
        self._bytes = max(self._bytes, nbytes)
        elapsed = time.monotonic() - self.started
        records = records_read() - self.records0
        rate = self._bytes / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self._bytes) / rate if rate > 0 else None
        return {"files": len(done), "total_files": len(self.sizes), "bytes": self._bytes, "total_bytes": self.total,
                "records": records, "records_per_s": records / elapsed if elapsed > 0 else 0.0,
                "elapsed": elapsed, "eta": eta}

    def line(self, snap: dict[str, Any]) -> str:
        pct = 100 * snap["bytes"] / snap["total_bytes"] if snap["total_bytes"] else 100.0
        eta = _duration(snap["eta"]) if snap["eta"] is not None else "?"
        return (f"progress: {snap['files']}/{snap['total_files']} files, {snap['bytes'] / 1e6:,.1f}/"
                f"{snap['total_bytes'] / 1e6:,.1f} MB ({pct:.0f}%), {snap['records_per_s']:,.0f} records/s, "
                f"elapsed {_duration(snap['elapsed'])}, ETA {eta}")

    def _loop(self) -> None:
        if self._stop.wait(self.delay):
            return
        if self.terminal:
            self._rich_loop()
            return
        while True:
            print(self.line(self.snapshot()), file=self.stream, flush=True)
            self.lines += 1
            if self._stop.wait(self.interval):
                return

    def _rich_loop(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        console = Console(file=self.stream, force_terminal=True)
        with Progress(TextColumn("reading"), BarColumn(), TextColumn("{task.fields[text]}"),
                      console=console, transient=True) as bar:
            task = bar.add_task("read", total=self.total or 1, text="")
            while True:
                snap = self.snapshot()
                bar.update(task, completed=snap["bytes"], text=self.line(snap).removeprefix("progress: "))
                if self._stop.wait(0.5):
                    return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
