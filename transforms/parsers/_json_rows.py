"""JSON lines through ``pyarrow.json`` a block at a time, with only the bad rows left to
the per-line path.

The block's lines go to Arrow in one pass. When Arrow rejects the text (a line that is not
JSON, a field of another type than the schema's, a lone surrogate), its error names the
row: the rows before it are read again in one pass, that row is left to the per-line
parser (``json.loads``, the reference for every reason a dead letter gives), and the rest
is read on. Without a row number the rows are halved until the bad ones are found. A
bounded number of passes per block keeps a hostile block from costing more than reading
it line by line would.

Before Arrow sees a line, lines it could read differently from ``json.loads`` are left to
the per-line path: lines not starting with ``{`` and ending with ``}`` (a byte-order mark,
leading space, a bare value), lines with a raw carriage return (a row end for Arrow), and
lines with more brackets than ``MAX_JSON_DEPTH`` (which ``json_value`` judges).
"""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.parsers._buffers import block_text
from transforms.parsers._common import _np_mask
from transforms.parsers._json import MAX_JSON_DEPTH
from transforms.read import Block

_ROW = re.compile(r" in row (\d+)")
#: Arrow passes per block before the rest is left to the per-line path.
MAX_PASSES = 16
_SMALL = 4  # a part this small that still fails goes to the per-line path whole


def suspect_rows(lines: pa.Array) -> np.ndarray:
    """Lines (Arrow text) Arrow might read otherwise than ``json.loads``: see the module."""
    odd = pc.invert(pc.and_(pc.starts_with(lines, "{"), pc.ends_with(lines, "}")))
    odd = pc.or_(odd, pc.match_substring(lines, "\r"))
    brackets = pc.add(pc.count_substring(lines, "{"), pc.count_substring(lines, "["))
    return _np_mask(pc.or_(odd, pc.greater(brackets, MAX_JSON_DEPTH)))


def read_rows(block: Block, lines: pa.Array, idx: np.ndarray, schema: pa.Schema | None,
              unexpected: str = "ignore") -> tuple[list[tuple[np.ndarray, pa.Table]], np.ndarray]:
    """Read the lines ``idx`` (ascending block-relative indexes) with ``pyarrow.json``.

    ``schema`` is the explicit schema (``None``: infer every field) and ``unexpected``
    what Arrow does with other fields (``ignore`` or ``infer``). Returns the parts read,
    each ``(rows, table)`` with one table row per line, and the rows left to the per-line
    path (ascending). Parts read with inferred fields may differ in type."""
    import pyarrow.json as pj

    if schema is None:
        options = pj.ParseOptions()
    else:
        options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior=unexpected)
    done: list[tuple[np.ndarray, pa.Table]] = []
    slow: list[np.ndarray] = []
    todo = [idx]
    passes = 0
    while todo:
        part = todo.pop()
        if not len(part):
            continue
        if passes >= MAX_PASSES:
            slow.append(part)
            continue
        passes += 1
        data = block_text(block, lines, part)
        hint = None
        try:
            table = pj.read_json(pa.BufferReader(data), parse_options=options,
                                 read_options=pj.ReadOptions(use_threads=False, block_size=data.size + 1))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            table = None
            m = _ROW.search(str(e))
            hint = int(m.group(1)) if m else None
        if table is not None and table.num_rows == len(part):
            done.append((part, table))
        elif hint is not None and hint < len(part):
            slow.append(part[hint:hint + 1])
            todo += [part[hint + 1:], part[:hint]]
        elif len(part) <= _SMALL:
            slow.append(part)
        else:
            mid = len(part) // 2
            todo += [part[mid:], part[:mid]]
    done.sort(key=lambda d: int(d[0][0]))
    rest = np.sort(np.concatenate(slow)) if slow else np.zeros(0, np.int64)
    return done, rest
