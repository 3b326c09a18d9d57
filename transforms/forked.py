"""Run a CPU-bound step's items on forked processes: the batch export's bundles.

Building a STIX bundle is pure Python (stix2 objects, redaction, leak scans), so threads
would share one core; a batch run's bundles are built once the whole input is parsed,
when the machine's other cores are idle. ``os.fork`` gives a copy of the process with
every module, config and cache already loaded, so a child starts in milliseconds and the
work splits evenly. The first item runs here before forking, so the caches it fills (the
redaction inventory, the ATT&CK data, shared objects' scans) are the children's too.

Results come back in item order, so callers stay deterministic. A child that fails (an
exception, or killed) fails the call here with its traceback: nothing is half-done
silently. Where ``fork`` is missing, or for a handful of items, everything runs here.
"""
from __future__ import annotations

import os
import pickle
import traceback
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Fewer items than this run in this process: a fork costs more than it saves.
MIN_ITEMS = 4


def default_processes() -> int:
    """The cores this process may run on (at most 4: export is a short tail of the run)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def map_forked(fn: Callable[[T], R], items: Sequence[T], processes: int | None = None) -> list[R]:
    """``[fn(x) for x in items]``, shared with ``processes - 1`` forked children."""
    processes = default_processes() if processes is None else processes
    if processes < 2 or len(items) < MIN_ITEMS or not hasattr(os, "fork"):
        return [fn(x) for x in items]
    results: dict[int, R] = {0: fn(items[0])}  # fills the caches the children inherit
    rest = list(range(1, len(items)))
    shares = [rest[k::processes] for k in range(processes)]
    children = [(_fork(fn, items, share), share) for share in shares[1:] if share]
    try:
        for i in shares[0]:
            results[i] = fn(items[i])
    finally:
        outcomes = [(_collect(pid, fd), share) for (pid, fd), share in children]
    for (ok, value), share in outcomes:
        if not ok:
            raise RuntimeError(f"export worker process failed:\n{value}")
        results.update(zip(share, value))
    return [results[i] for i in range(len(items))]


def _fork(fn: Callable[[T], R], items: Sequence[T], share: list[int]) -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, send, and leave without running the parent's exit handlers
        status = 0
        try:
            os.close(read_fd)
            try:
                payload = (True, [fn(items[i]) for i in share])
            except BaseException:  # noqa: BLE001 - sent to the parent, raised there
                payload, status = (False, traceback.format_exc()), 1
            with os.fdopen(write_fd, "wb") as out:
                pickle.dump(payload, out, protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            os._exit(status)
    os.close(write_fd)
    return pid, read_fd


def _collect(pid: int, fd: int) -> tuple[bool, object]:
    """The child's payload (read before waiting, so a large one cannot block it)."""
    with os.fdopen(fd, "rb") as src:
        data = src.read()
    _, status = os.waitpid(pid, 0)
    if data:
        try:
            return pickle.loads(data)
        except Exception as exc:  # noqa: BLE001
            return False, f"unreadable result ({exc}); exit status {os.waitstatus_to_exitcode(status)}"
    return False, f"no result; exit status {os.waitstatus_to_exitcode(status)}"
