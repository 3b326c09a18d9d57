"""Read-your-writes for keyed state on Prism.

On Prism (2.77, loopback worker) a bundle of a stateful stage could read a cell's value from
before the previous bundle of the same key committed its write: measured on the correlation
stage, a read returned the open findings minus the one just added, so an incident lost a
member. A guarded DoFn keeps one small version cell per key, bumped by every write; the
worker process keeps the values it last wrote per (stage, key) with that version. A read
takes the kept value when the kept version is at least the stored one (a stale runner read,
or simply no need to decode the cell again), and the runner's cell otherwise (a fresh
worker, or a key another worker wrote since). On a runner with correct state the guard
changes nothing but saves decoding the cells the worker itself wrote.

A guard also holds a per-(stage, key) lock from its creation until ``release`` (the end of
the DoFn call): should the runner ever run two bundles of one key at once (two calls
reading the same committed state, the later commit losing the earlier one's additions),
the worker serializes them, and the second reads the first's kept values.
"""
from __future__ import annotations

import threading
import uuid
from typing import Any

_KEPT: dict[tuple[str, Any], tuple[int, dict[str, Any]]] = {}
_LOCK = threading.Lock()
_SLOTS: dict[tuple[str, Any], threading.Lock] = {}
_CONTENDED: list[bool] = []  # said once per worker process


def new_stage_id() -> str:
    """An id for one stateful DoFn of one pipeline (taken in ``__init__``, pickled with it)."""
    return uuid.uuid4().hex


class Guard:
    """The state of one key in one call of a guarded DoFn (``process`` or a timer)."""

    def __init__(self, version_cell: Any, stage: str, key: Any):
        self.vcell = version_cell
        self.slot = (stage, key)
        with _LOCK:
            self._lock = _SLOTS.setdefault(self.slot, threading.Lock())
        if not self._lock.acquire(blocking=False):
            if not _CONTENDED:
                _CONTENDED.append(True)
                import sys

                print("cranewatch: two bundles of one stateful key ran at once; serialized", file=sys.stderr)
            self._lock.acquire()
        self._held = True
        stored = version_cell.read() or 0
        with _LOCK:
            kept = _KEPT.get(self.slot)
        if kept is not None and kept[0] >= stored:
            self.version, self.values = kept[0], dict(kept[1])
        else:
            self.version, self.values = stored, {}

    def release(self) -> None:
        """The end of the call: the next call of this key may read."""
        if self._held:
            self._held = False
            self._lock.release()

    def __enter__(self) -> "Guard":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def bind(self, name: str, cell: Any) -> "Cell":
        return Cell(self, name, cell)

    def _write(self, name: str, cell: Any, value: Any) -> None:
        cell.write(value)
        self.values[name] = value
        self.version += 1
        self.vcell.write(self.version)
        with _LOCK:
            _KEPT[self.slot] = (self.version, dict(self.values))


class Cell:
    """A ReadModifyWrite state cell read and written through a ``Guard``."""

    def __init__(self, guard: Guard, name: str, cell: Any):
        self.guard, self.name, self.cell = guard, name, cell

    def read(self) -> Any:
        if self.name in self.guard.values:
            return self.guard.values[self.name]
        return self.cell.read()

    def write(self, value: Any) -> None:
        self.guard._write(self.name, self.cell, value)

    def clear(self) -> None:
        self.write(None)
