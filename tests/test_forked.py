"""``transforms/forked.py``: the batch export's items shared with forked processes."""
from __future__ import annotations

import os

import pytest

from transforms.forked import map_forked


def _no_children_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_results_in_item_order_computed_by_several_processes() -> None:
    items = list(range(23))
    got = map_forked(lambda x: (x * x, os.getpid()), items, processes=3)
    assert [v for v, _ in got] == [x * x for x in items]
    pids = {pid for _, pid in got}
    assert os.getpid() in pids and len(pids) == 3  # the first item and a share ran here
    assert _no_children_left()


def test_a_failing_child_fails_the_call_with_its_traceback() -> None:
    def fn(x: int) -> int:
        if x == 4:  # with 2 processes, items 2, 4, 6 are the child's
            raise ValueError("bundle 4 cannot be built")
        return x

    with pytest.raises(RuntimeError, match="(?s)export worker process failed.*ValueError: bundle 4 cannot be built"):
        map_forked(fn, list(range(8)), processes=2)
    assert _no_children_left()


def test_a_child_killed_mid_work_fails_the_call() -> None:
    def fn(x: int) -> int:
        if x == 4 and os.getpid() != parent:
            os.kill(os.getpid(), 9)
        return x

    parent = os.getpid()
    with pytest.raises(RuntimeError, match="no result; exit status -9"):
        map_forked(fn, list(range(8)), processes=2)
    assert _no_children_left()


def test_few_items_or_one_process_run_here() -> None:
    assert {pid for pid in map_forked(lambda _: os.getpid(), [1, 2, 3], processes=4)} == {os.getpid()}
    assert {pid for pid in map_forked(lambda _: os.getpid(), list(range(10)), processes=1)} == {os.getpid()}
