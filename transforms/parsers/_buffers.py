"""A block's selected lines as Arrow data, without a Python object per line.

The read layer keeps a block as the bytes read plus each line's span (transforms/read.py).
A run of consecutive lines is handed to Arrow's CSV and JSON readers as a zero-copy slice
of those bytes; other selections (blank lines, comments or bad lines left out) are joined
in one Arrow pass. ``raw`` columns are slices of the block's line array where the rows are
consecutive, the usual case.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.read import Block


def consecutive(idx: np.ndarray) -> bool:
    """``idx`` (ascending) is one run of consecutive line indexes."""
    return len(idx) > 0 and int(idx[-1]) - int(idx[0]) + 1 == len(idx)


def take_rows(lines: pa.Array, rows: np.ndarray) -> pa.Array:
    """``lines.take(rows)`` for ascending ``rows``: a zero-copy slice when consecutive."""
    if consecutive(rows):
        return lines.slice(int(rows[0]), len(rows))
    return lines.take(pa.array(rows, pa.int64()))


def joined(sel: pa.Array) -> pa.Buffer:
    """The lines of ``sel`` each followed by a newline, as one buffer (one Arrow pass)."""
    if len(sel) == 0:
        return pa.py_buffer(b"")
    out = pc.binary_join_element_wise(sel, pa.scalar(b"", sel.type), pa.scalar(b"\n", sel.type))
    width = 8 if pa.types.is_large_binary(out.type) or pa.types.is_large_string(out.type) else 4
    offsets = np.frombuffer(out.buffers()[1], np.int32 if width == 4 else np.int64)
    start, end = int(offsets[out.offset]), int(offsets[out.offset + len(out)])
    return out.buffers()[2].slice(start, end - start)


def block_text(block: Block, lines: pa.Array, idx: np.ndarray, as_read: bool = True) -> pa.Buffer:
    """The selected lines as newline-separated text for Arrow's readers: the block's own
    bytes when they are consecutive and ``as_read`` (the lines were not rewritten, e.g.
    bad UTF-8 escaped), else ``lines`` (the block's line array) joined."""
    if as_read and block.verbatim and consecutive(idx):
        return block.span(int(idx[0]), int(idx[-1]))
    return joined(lines.take(pa.array(idx, pa.int64())))


def has_cr(data: pa.Buffer) -> bool:
    """A carriage return anywhere in ``data`` (Arrow's JSON reader ends a row at a raw CR)."""
    return len(data) > 0 and bool((np.frombuffer(data, np.uint8) == 13).any())
