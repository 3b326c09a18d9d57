"""An independent Sigma engine for the differential tests: pySigma's SQLite backend.

Each rule is converted to SQL by ``pysigma-backend-sqlite`` straight from its Sigma field
names (no cranewatch pipeline), and run on a SQLite table per log source whose columns are
those Sigma names. The table is filled from the same events cranewatch evaluates, read
back through the taxonomy (``src_ip`` becomes ``id.orig_h``, ``modbus.write_single_register``
becomes ``write_single_register``), so a difference in matches is a difference in the
field mapping or in the evaluation, never in the data.
"""
from __future__ import annotations

import copy
import re
import sqlite3
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.compute as pc
from sigma.backends.sqlite import sqliteBackend
from sigma.rule import SigmaRule

from detections.sigma_engine.pipelines import Taxonomy
from transforms.model import EVENT_SCHEMA

ROW = "cw_row"
_NUMERIC = {"src_port", "dst_port", "bytes_out", "bytes_in", "packets_out", "packets_in"}


def routed(tax: Taxonomy, events: pa.Table) -> pa.Table:
    """The events a rule of this log source is evaluated on: its formats, its ``where``."""
    keep = pc.is_in(events["format"], value_set=pa.array(list(tax.formats), pa.string()))
    for f, v in tax.where.items():
        keep = pc.and_(keep, pc.fill_null(pc.equal(pc.utf8_lower(events[f]), v.lower()), False))
    return events.filter(keep)


def native(tax: Taxonomy, sigma_field: str, value: Any) -> Any:
    """An event value back in the log source's own form (the inverse of the pipeline)."""
    if value is None or not isinstance(value, str):
        return value
    for nat, ev in tax.values.get(sigma_field, {}).items():
        if value.lower() == ev.lower():
            return nat
    prefix = tax.prefixes.get(sigma_field)
    if prefix and value.lower().startswith(prefix.lower()):
        return value[len(prefix):]
    return value


def load(con: sqlite3.Connection, table: str, tax: Taxonomy, events: pa.Table, extra_fields: Iterable[str] = ()) -> None:
    """One table: a column per Sigma field of the taxonomy (and each of ``extra_fields``,
    read from ``attrs`` like the pipeline does), a row per event, ``cw_row`` its index."""
    fields = list(dict.fromkeys([*tax.fields, *extra_fields]))
    cols = []
    for f in fields:
        target = tax.event_field(f)
        affinity = "INTEGER" if target in _NUMERIC else "REAL" if target == "duration" else "TEXT COLLATE NOCASE"
        cols.append(f'"{f}" {affinity}')
    con.execute(f'CREATE TABLE "{table}" ({ROW} INTEGER PRIMARY KEY, {", ".join(cols)})')
    data = {name: events[name].to_pylist() for name in EVENT_SCHEMA.names if name != "raw"}
    attrs = [dict(a or []) for a in data["attrs"]]
    rows = []
    for i in range(events.num_rows):
        row: list[Any] = [i]
        for f in fields:
            target = tax.event_field(f)
            v = attrs[i].get(target[6:]) if target.startswith("attrs.") else data[target][i]
            if hasattr(v, "isoformat"):
                v = v.isoformat()
            row.append(native(tax, f, v))
        rows.append(row)
    con.executemany(f'INSERT INTO "{table}" VALUES ({", ".join("?" * (len(fields) + 1))})', rows)


def connect() -> sqlite3.Connection:
    con = sqlite3.connect(":memory:")
    con.create_function("REGEXP", 2, _regexp, deterministic=True)
    return con


def _regexp(pattern: str, value: Any) -> int | None:
    if value is None:
        return None
    return 1 if re.search(pattern, str(value)) else 0


def matches(con: sqlite3.Connection, table: str, rule: SigmaRule) -> set[int]:
    """Row numbers the rule matches, by the SQLite backend's own SQL."""
    backend = sqliteBackend(table=table)
    queries = backend.convert_rule(copy.deepcopy(rule))
    out: set[int] = set()
    for q in queries:
        sql = q.replace("SELECT *", f"SELECT {ROW}", 1)
        out.update(r[0] for r in con.execute(sql))
    return out
