"""Read-your-writes for keyed state cells on Prism.

On Prism (2.77, loopback worker) a bundle of a stateful stage can read a cell's value from
before the previous bundle of the same key committed its write: measured on the correlation
stage, a read returned the open findings minus the one just added, so an incident lost a
member. Each guarded cell stores ``(version, value)``; the worker process also keeps the
last value it wrote per (stage, key, cell), and a read that finds an older version in the
runner's state takes the kept one. On a runner with correct state the kept value is never
newer and the guard does nothing; a worker restarted elsewhere has nothing kept and reads
the runner's state as usual.
"""
from __future__ import annotations

import threading
import uuid
from typing import Any

_KEPT: dict[tuple[str, Any, str], tuple[int, Any]] = {}
_LOCK = threading.Lock()


def new_stage_id() -> str:
    """An id for one stateful DoFn of one pipeline (taken in ``__init__``, pickled with it)."""
    return uuid.uuid4().hex


class Guarded:
    """A ReadModifyWrite state cell with read-your-writes within this worker process."""

    def __init__(self, cell: Any, stage: str, key: Any, name: str):
        self.cell = cell
        self.slot = (stage, key, name)

    def _stored(self) -> tuple[int, Any]:
        stored = self.cell.read()
        return stored if isinstance(stored, tuple) and len(stored) == 2 else (0, None)

    def read(self) -> Any:
        version, value = self._stored()
        with _LOCK:
            kept = _KEPT.get(self.slot)
        if kept is not None and kept[0] > version:
            return kept[1]
        return value

    def write(self, value: Any) -> None:
        version, _ = self._stored()
        with _LOCK:
            kept = _KEPT.get(self.slot, (0, None))
            new = (max(version, kept[0]) + 1, value)
            _KEPT[self.slot] = new
        self.cell.write(new)

    def clear(self) -> None:
        self.write(None)
