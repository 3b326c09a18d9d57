"""Crane management system events in cranewatch's CMS schema as CSV → ``ot`` events.

The same schema as ``cms_events`` (docs/formats/cms-events.md), written as CSV: a header
line naming the schema's keys (any order, unknown columns kept in ``attrs``), then one
event per line, standard double-quote quoting. Empty cells are absent values; ``time`` is
RFC 3339 with an offset or epoch seconds. Each row goes through ``cms_events.to_event``,
so both encodings give the same events and the same dead-letter reasons.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from decimal import Decimal

from transforms.model import DeadLetter
from transforms.parsers import _common as c
from transforms.parsers._common import Reject
from transforms.parsers.base import ParseContext, ParseResult
from transforms.parsers.cms_events import to_event
from transforms.read import Block

_EPOCH = re.compile(r"^\d{1,12}(\.\d{1,9})?$")


@dataclass
class CmsCsvState:
    header: list[str] | None = None


class CmsCsvParser:
    name = "cms_csv"
    kind = "ot"
    description = "Crane management system events, cranewatch CMS schema as CSV with a header line"

    def new_file_state(self, path: str) -> CmsCsvState:
        return CmsCsvState()

    def parse_block(self, block: Block, state: CmsCsvState, ctx: ParseContext) -> ParseResult:
        dead: list[DeadLetter] = []
        rows: list[dict] = []
        records = structure = 0
        for line_no, line in c.iter_records(block, ctx.source, dead):
            line = line.lstrip("\ufeff")
            if state.header is None:
                state.header = [h.strip() for h in next(csv.reader([line]))]
                structure += 1
                continue
            records += 1
            ref = f"{block.path}:{line_no}"
            try:
                try:
                    values = next(csv.reader([line], strict=True))
                except csv.Error as e:
                    raise Reject(f"unreadable CSV: {e}") from None
                if len(values) != len(state.header):
                    raise Reject(f"expected {len(state.header)} comma-separated fields, got {len(values)}")
                obj: dict = {k: (v if v != "" else None) for k, v in zip(state.header, values)}
                t = obj.get("time")
                if isinstance(t, str) and _EPOCH.match(t.strip()):
                    obj["time"] = Decimal(t.strip())
                row = to_event(obj, ctx.source, ref, line)
                row["format"] = self.name
                rows.append(row)
            except Reject as e:
                dead.append(DeadLetter(ctx.source, ref, str(e), line))
        records += sum(1 for d in dead if d.reason == "not valid UTF-8")
        table = c.rows_to_table(rows, dead)
        dead.sort(key=lambda d: int(d.location.rsplit(":", 1)[1]))
        return ParseResult(table, dead, records, structure)


PARSER = CmsCsvParser()
