"""The output folder of a run: all of a run or none of it, and one run at a time.

A run is built in a staging folder beside the output folder (same parent, so the same
filesystem) and swapped in when everything, ``summary.json`` included, has been written:

* ``<parent>/.<name>.lock``: an ``fcntl`` lock held for the whole run, holding the PID of
  the run that holds it. A second run into the same folder stops at once and names it.
* ``<parent>/.<name>.staging-<run id>``: where the run writes. Its last file is
  ``_complete.json`` (run id, times, the files written): the completion marker.
* The swap is one ``renameat2(RENAME_EXCHANGE)`` of the staging folder with the output
  folder (Linux 3.15+, ext4/xfs/btrfs/tmpfs): at every instant the output folder's path
  holds either the previous complete run or the new complete run, never a mix. The old
  run, now under the staging name, is then deleted.
* Where the exchange is not supported the swap is two renames (output folder aside to
  ``.<name>.old-<run id>``, staging folder into place). Between them the output folder is
  absent, never mixed; a run killed in that window leaves the new complete run staged, and
  the next run into the folder moves it into place before it starts.
* Staging and old folders left by a killed run are deleted by the next run into the folder.

The guarantee is against a run that dies (crash, SIGKILL, Ctrl-C); it is not a promise
across power loss (files are not fsynced). Readers of a run (``cranewatch share``, the
report) call :func:`require_complete`, which refuses a folder without the marker; ``share``
also takes a stream's output folder (:func:`require_shareable`, ``_streaming.json``).
The output folder belongs to cranewatch: each run replaces it whole, so a folder holding
anything other than an earlier run is refused rather than replaced.
"""
from __future__ import annotations

import ctypes
import datetime as dt
import errno
import fcntl
import glob
import json
import os
import shutil
import sys
import time
from typing import Any

MARKER = "_complete.json"
STREAM_MARKER = "_streaming.json"  # a stream's output: consistent per bundle file (write_stream_marker)
#: Files that identify a folder as a run output (the marker, or a run from before it).
_RUN_FILES = (MARKER, "summary.json", "_counts.json")
#: Test hooks, for the kill tests only: pause (sleep) at a named stage of the swap, and
#: swap by two renames even where the exchange is supported.
PAUSE_ENV = "CRANEWATCH_TEST_PAUSE"
NO_EXCHANGE_ENV = "CRANEWATCH_TEST_NO_EXCHANGE"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class OutputError(Exception):
    """The output folder cannot take a run (not a run output, a mount point, ...)."""


class OutputLocked(OutputError):
    """Another run holds the output folder's lock."""


class IncompleteRun(Exception):
    """A folder that does not hold one complete run."""


def _paths(out_dir: str) -> tuple[str, str, str]:
    """(parent, name, absolute output folder), symlinks resolved so the swap is of the target."""
    full = os.path.realpath(out_dir)
    return os.path.dirname(full), os.path.basename(full), full


def lock_path(out_dir: str) -> str:
    parent, name, _ = _paths(out_dir)
    return os.path.join(parent, f".{name}.lock")


def _pause(stage: str) -> None:
    if os.environ.get(PAUSE_ENV) == stage:
        print(f"cranewatch: paused at {stage} (pid {os.getpid()})", file=sys.stderr, flush=True)
        time.sleep(3600)


def _exchange(a: str, b: str) -> None:
    """Swap two paths atomically (``renameat2`` with ``RENAME_EXCHANGE``); OSError if unsupported."""
    if os.environ.get(NO_EXCHANGE_ENV):
        raise OSError(errno.EINVAL, "exchange disabled")
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        raise OSError(errno.ENOSYS, "renameat2 not available")
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def read_marker(out_dir: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(out_dir, MARKER), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def require_complete(out_dir: str) -> dict[str, Any]:
    """The completion marker of the run in ``out_dir``; IncompleteRun (with why) otherwise."""
    if not os.path.isdir(out_dir):
        raise IncompleteRun(f"{out_dir}: expected a cranewatch run output folder, got no such folder")
    marker = read_marker(out_dir)
    if marker is None:
        raise IncompleteRun(
            f"{out_dir}: not a complete run (no {MARKER}): the run that wrote it did not finish, "
            "or it was written by an older cranewatch; run `cranewatch run` again")
    missing = [f for f in marker.get("files", {}) if not os.path.exists(os.path.join(out_dir, f))]
    if missing:
        raise IncompleteRun(f"{out_dir}: incomplete run {marker.get('run_id')}: {missing[0]} "
                            f"(and {len(missing) - 1} more) missing since the run finished")
    return marker


def write_stream_marker(out_dir: str, state: str, started: float) -> None:
    """``_streaming.json``: this folder is a stream's output (``cranewatch stream``), ``state``
    running | done | cancelled | failed. A stream never completes the way a run does; what it
    promises is per file: each bundle file is one whole version of its incident (temporary
    name, then rename), an open incident's file its early version. A stale run marker is
    removed, since the folder no longer holds that run alone."""
    os.makedirs(out_dir, exist_ok=True)
    if os.path.exists(os.path.join(out_dir, MARKER)):
        os.remove(os.path.join(out_dir, MARKER))
    marker = {
        "mode": "stream", "state": state, "consistency": "per bundle file",
        "started": dt.datetime.fromtimestamp(started, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "updated": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    tmp = os.path.join(out_dir, f".{STREAM_MARKER}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(marker, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, os.path.join(out_dir, STREAM_MARKER))


def require_shareable(out_dir: str) -> dict[str, Any]:
    """The marker that lets ``cranewatch share`` read ``out_dir``: a complete run's, or a
    stream's (running or stopped: its bundle files are whole versions, and sharing again
    later sends the revisions); IncompleteRun otherwise."""
    try:
        return require_complete(out_dir)
    except IncompleteRun:
        try:
            with open(os.path.join(out_dir, STREAM_MARKER), encoding="utf-8") as fh:
                marker = json.load(fh)
        except (OSError, ValueError):
            marker = None
        if isinstance(marker, dict) and marker.get("mode") == "stream":
            return marker
        raise


def _manifest(root: str) -> dict[str, int]:
    files = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            full = os.path.join(dirpath, n)
            files[os.path.relpath(full, root)] = os.path.getsize(full)
    return dict(sorted(files.items()))


class OutputRun:
    """``with OutputRun(out) as run:`` write into ``run.path``, then ``run.commit()``.

    ``keep`` names entries of the output folder that are not part of a run (the demo keeps
    its generated data in ``data/``): they are moved into the new folder just before the
    swap, and are not in the completion marker.

    Leaving the block without ``commit()`` (an exception) deletes the staging folder and
    leaves the previous run untouched.
    """

    def __init__(self, out_dir: str, keep: tuple[str, ...] = ()):
        self.out_dir = out_dir
        self.keep = keep  # entries of the output folder that are not the run's (the demo's data/)
        self.parent, self.name, self.full = _paths(out_dir)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.run_id = f"{stamp}-{os.getpid()}"
        self.started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self.path = os.path.join(self.parent, f".{self.name}.staging-{self.run_id}")
        self._lock_fd: int | None = None
        self.committed = False

    def __enter__(self) -> "OutputRun":
        try:
            os.makedirs(self.parent, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"--output {self.out_dir}: cannot create {self.parent}: {exc.strerror}") from None
        self._lock()
        try:
            self._check_target()
            self._recover()
            os.mkdir(self.path)
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if not self.committed:
                shutil.rmtree(self.path, ignore_errors=True)
        finally:
            self._unlock()

    def _check_target(self) -> None:
        if os.path.lexists(self.full) and not os.path.isdir(self.full):
            raise OutputError(f"--output {self.out_dir}: expected a folder, got a file")
        if os.path.isdir(self.full):
            if os.path.ismount(self.full):
                raise OutputError(f"--output {self.out_dir}: expected a folder inside a mount point, got the "
                                  "mount point itself (a run's outputs are swapped in by renaming the folder)")
            entries = [e for e in os.listdir(self.full) if e not in self.keep]
            if entries and not any(f in entries for f in _RUN_FILES):
                raise OutputError(
                    f"--output {self.out_dir}: expected an empty folder or an earlier cranewatch run output, "
                    f"got a folder holding other files (e.g. {sorted(entries)[0]}); each run replaces the whole folder")

    def _lock(self) -> None:
        path = lock_path(self.out_dir)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"--output {self.out_dir}: expected a writable folder above it ({self.parent}): a run "
                              f"is staged beside its output folder and swapped in, got {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise OutputLocked(
                f"--output {self.out_dir}: another cranewatch run (PID {holder}) is writing this output folder "
                f"(lock {path}); wait for it to finish or choose another --output") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def _leftovers(self) -> list[str]:
        pattern = os.path.join(glob.escape(self.parent), glob.escape(f".{self.name}."))
        return sorted(glob.glob(pattern + "staging-*") + glob.glob(pattern + "old-*"))

    def _recover(self) -> None:
        """Under the lock: finish a swap a killed run left half done, delete its leftovers."""
        left = self._leftovers()
        if not os.path.exists(self.full):
            staged = [d for d in left if ".staging-" in d and read_marker(d) is not None]
            if staged:  # killed between the two renames: the new complete run is staged
                os.rename(staged[-1], self.full)
                left.remove(staged[-1])
        for d in left:
            shutil.rmtree(d, ignore_errors=True)

    def commit(self) -> None:
        """Write the completion marker last, then swap the staging folder in."""
        _pause("staged")
        marker = {
            "run_id": self.run_id,
            "pid": os.getpid(),
            "started": self.started,
            "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "files": _manifest(self.path),
        }
        tmp = os.path.join(self.path, f".{MARKER}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(marker, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, os.path.join(self.path, MARKER))
        _pause("marked")
        for name in self.keep:  # carried into the new run's folder (not in its marker)
            if os.path.lexists(os.path.join(self.full, name)):
                os.rename(os.path.join(self.full, name), os.path.join(self.path, name))
        if not os.path.exists(self.full):
            os.rename(self.path, self.full)
            self.committed = True
            return
        try:
            _exchange(self.path, self.full)
            old = self.path  # the previous run, now under the staging name
        except OSError:
            old = os.path.join(self.parent, f".{self.name}.old-{self.run_id}")
            os.rename(self.full, old)
            _pause("renamed-aside")
            os.rename(self.path, self.full)
        self.committed = True
        _pause("swapped")
        shutil.rmtree(old, ignore_errors=True)
