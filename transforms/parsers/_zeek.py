"""Reading Zeek logs a block at a time: TSV with ``#`` directives (several header sections
per file, or none for zeek-cut output) or JSON lines, into typed Arrow columns.

Shared by the Zeek parser modules; each maps the columns it needs to events itself.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.model import DeadLetter, empty_events
from transforms.parsers import _common as c
from transforms.parsers._buffers import block_text
from transforms.parsers._common import _np_mask, dead, decode
from transforms.parsers.base import ParseContext, ParseResult
from transforms.read import Block

_CSV_COLUMN = re.compile(r"In CSV column #(\d+): CSV conversion error")


@dataclass
class ZeekState:
    """Per-file Zeek header state; a concatenated file may change it mid-way."""

    path: str
    default_fields: tuple[str, ...]  # for headerless (zeek-cut) TSV
    mode: str | None = None  # "tsv" | "json", fixed by the file's first record
    separator: str = "\t"
    empty_field: str = "(empty)"
    unset_field: str = "-"
    fields: tuple[str, ...] | None = None
    log_path: str | None = None  # from #path
    text_columns: set[str] = field(default_factory=set)  # failed typed conversion once
    #: A parser's own per-file memory (name → entries), written only by ``commit``.
    memo: dict[str, dict] = field(default_factory=dict)
    noticed: set[str] = field(default_factory=set)  # sibling logs already announced as skipped

    def checkpoint(self) -> "ZeekState":
        """The state to retry a block from if it raises (``parse_block_safely``): the
        header fields and the small sets copied, ``memo`` shared, since a block writes
        it only once the whole block has parsed. Cheap however large ``memo`` grows."""
        return dataclasses.replace(self, text_columns=set(self.text_columns), noticed=set(self.noticed))

    def commit(self, memo: "BlockMemo") -> None:
        """A parsed block's writes into the file's memory."""
        for name, entries in memo.new.items():
            if entries:
                self.memo.setdefault(name, {}).update(entries)


@dataclass
class BlockMemo:
    """A parser's per-file memory as one block sees it: what earlier blocks left
    (``known``, only read) and this block's own writes (``new``, read first). The writes
    reach the file's state once the block has parsed, so a block that raises part-way
    leaves nothing behind."""

    known: dict[str, dict]
    new: dict[str, dict] = field(default_factory=dict)

    def table(self, name: str) -> tuple[dict, dict]:
        """``(known, new)`` entries of one named table (e.g. operation ordinals)."""
        return self.known.get(name, {}), self.new.setdefault(name, {})


@dataclass
class ZeekBatch:
    """Rows of one header section of a block, as columns (text for TSV, typed for JSON)."""

    cols: dict[str, pa.Array]
    rows: np.ndarray  # block-relative line index of each row
    fields: tuple[str, ...]
    log_path: str | None
    empty_field: str | None
    memo: BlockMemo | None = None  # the file's memory as this block sees it (set by the parser)


def _directive(state: ZeekState, text: str) -> None:
    if text.startswith("#separator "):
        value = text[len("#separator "):]
        try:  # written escaped: "\x09"
            state.separator = value.encode().decode("unicode_escape")
        except UnicodeDecodeError:  # unusable: its section's records say so
            state.separator = value
        return
    sep = state.separator or "\t"
    key, _, value = text.partition(sep)
    if key == "#fields":
        state.fields = tuple(value.split(sep))
    elif key == "#path":
        state.log_path = value
    elif key == "#empty_field":
        state.empty_field = value
    elif key == "#unset_field":
        state.unset_field = value


@dataclass
class _Reading:
    """One block being read: its lines as Arrow text plus what the readers report back."""

    block: Block
    source: str
    wanted: dict[str, pa.DataType]
    lines: pa.Array
    as_read: bool  # ``lines`` are the block's bytes unchanged (no bad UTF-8 escaped)
    dl: list[DeadLetter] = field(default_factory=list)
    blank: int = 0  # whitespace-only lines found by a reader: not records

    def dead(self, i: int, reason: str) -> None:
        self.dl.append(dead(self.source, self.block.path, self.block.first_line + i, reason,
                            self.lines[i].as_py()))

    def data(self, idx: np.ndarray) -> pa.Buffer:
        """The selected lines as newline-separated text: the block's own bytes when they
        are consecutive (a clean header section), else joined in one Arrow pass."""
        return block_text(self.block, self.lines, idx, self.as_read)


def read_zeek_block(block: Block, state: ZeekState, source: str, wanted: dict[str, pa.DataType]
                    ) -> tuple[list[ZeekBatch], list[DeadLetter], int, pa.Array]:
    """Split a Zeek block into header sections and read each with Arrow.

    ``wanted`` maps the fields to read to the type TSV columns are first tried as (string
    for text); if a section does not convert, it is read again all as text and the
    parser's column checks find the bad rows.

    Returns the batches, the dead letters found while reading (bad UTF-8, wrong field
    count, bad JSON), the number of records, and the block's lines as a string array
    (for ``raw``). ``#`` lines and blank lines are not records.
    """
    n = block.count
    bad = np.zeros(n, dtype=bool)
    lines = block.binary.view(pa.string())
    if not block.buffer.isascii():
        try:
            lines.validate(full=True)  # UTF-8 checked in C++
        except pa.ArrowInvalid:
            fixed = list(block.lines)
            for i, line in enumerate(block.lines):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    bad[i], fixed[i] = True, decode(line).encode()
            lines = pa.array(fixed, pa.binary()).view(pa.string())
    r = _Reading(block, source, wanted, lines, not bad.any())
    hashes = _np_mask(pc.starts_with(lines, "#"))
    skip = hashes | c.is_blank(lines)
    for i in np.flatnonzero(bad & ~skip):
        r.dl.append(dead(source, block.path, block.first_line + int(i), "not valid UTF-8", block.lines[i]))
    if b"\r" in block.buffer:  # Zeek escapes CR; a raw one would end an Arrow row early
        stray = _np_mask(pc.match_substring(lines, "\r")) & ~skip & ~bad
        for i in np.flatnonzero(stray):
            r.dead(int(i), "carriage return inside the record")
        bad |= stray
    exclude = skip | bad
    batches: list[ZeekBatch] = []
    start = 0
    for cut in [int(i) for i in np.flatnonzero(hashes)] + [n]:
        idx = np.arange(start, cut)[~exclude[start:cut]]
        if len(idx):
            if state.mode is None:
                state.mode = "json" if lines[int(idx[0])].as_py().lstrip().startswith("{") else "tsv"
            batch = (_read_json if state.mode == "json" else _read_tsv)(r, state, idx)
            if batch is not None:
                batches.append(batch)
        if cut < n:
            _directive(state, lines[cut].as_py())
        start = cut + 1
    return batches, r.dl, int(n - skip.sum()) - r.blank, lines


def _read_tsv(r: _Reading, state: ZeekState, idx: np.ndarray) -> ZeekBatch | None:
    """``pyarrow.csv`` on the section; rows with the wrong field count reach the handler."""
    import pyarrow.csv as pcsv

    fields = state.fields or state.default_fields
    sep = state.separator
    if len(sep) != 1:
        for i in idx:
            r.dead(int(i), f"unsupported Zeek separator {sep!r}")
        return None
    what = "tab" if sep == "\t" else repr(sep)
    rejected: list[tuple[int, int, str]] = []

    def handler(row: pcsv.InvalidRow) -> str:
        rejected.append((row.number, row.actual_columns, row.text))
        return "skip"

    data = r.data(idx)
    include = [f for f in r.wanted if f in fields] or [fields[0]]
    table, error = None, None
    while table is None:
        types = {f: pa.string() if f in state.text_columns else r.wanted.get(f, pa.string()) for f in include}
        rejected.clear()
        try:
            table = pcsv.read_csv(
                pa.BufferReader(data),
                read_options=pcsv.ReadOptions(column_names=list(fields), use_threads=False,
                                              block_size=data.size + 1),
                parse_options=pcsv.ParseOptions(delimiter=sep, quote_char=False, escape_char=False,
                                                ignore_empty_lines=False, invalid_row_handler=handler),
                convert_options=pcsv.ConvertOptions(
                    column_types=types, include_columns=include, null_values=[state.unset_field],
                    strings_can_be_null=True, check_utf8=False),
            )
        except (pa.ArrowInvalid, ValueError) as e:
            # A value did not convert: read that column as text from now on (for the rest
            # of the file too) and let the parser's checks find the bad rows.
            error = e
            m = _CSV_COLUMN.match(str(e))
            col = fields[int(m.group(1))] if m and int(m.group(1)) < len(fields) else None
            if col in include and types[col] != pa.string():
                state.text_columns.add(col)
            elif all(t == pa.string() for t in types.values()):
                break
            else:
                state.text_columns.update(include)
    drop = [number - 1 for number, _, _ in rejected]
    if table is None or table.num_rows != len(idx) - len(drop):  # not expected: stay accounted
        for i in idx:
            r.dead(int(i), f"unreadable Zeek TSV section: {error if table is None else 'row count'}")
        return None
    for (number, actual, text) in rejected:
        r.dead(int(idx[number - 1]), f"expected {len(fields)} {what}-separated fields, got {actual}")
    cols = {f: table.column(f).combine_chunks() for f in include if f in r.wanted}
    return ZeekBatch(cols, np.delete(idx, drop), tuple(fields), state.log_path, state.empty_field)


def _json_text(v: object) -> str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "T" if v else "F"
    if isinstance(v, list):
        return ",".join(str(_json_text(x)) for x in v)
    return json.dumps(v, separators=(",", ":"))


def _read_json(r: _Reading, state: ZeekState, idx: np.ndarray) -> ZeekBatch | None:
    """Whole section through ``pyarrow.json``; per-line ``json.loads`` only when that fails."""
    import pyarrow.json as pj

    data = r.data(idx)
    try:
        table = pj.read_json(pa.BufferReader(data),
                             read_options=pj.ReadOptions(use_threads=False, block_size=data.size + 1))
        if table.num_rows != len(idx):
            raise pa.ArrowInvalid("row count mismatch")
        cols = {f: table.column(f).combine_chunks() for f in r.wanted if f in table.column_names}
        return ZeekBatch(cols, idx, tuple(table.column_names), state.log_path, None)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    good: list[int] = []
    objs: list[dict] = []
    for i in idx:
        text = r.lines[int(i)].as_py()
        try:
            obj = c.json_value(text, _DECODER.decode)
        except c.Reject as e:
            r.dead(int(i), str(e))
            continue
        if isinstance(obj, dict):
            good.append(int(i))
            objs.append(obj)
        else:
            r.dead(int(i), f"not a JSON object ({type(obj).__name__})")
    if not good:
        return None
    keys = tuple(dict.fromkeys(k for o in objs for k in o))
    cols = {f: pa.array([_json_text(o.get(f)) for o in objs], pa.string()) for f in r.wanted if f in keys}
    return ZeekBatch(cols, np.array(good, dtype=np.int64), keys, state.log_path, None)


#: Numbers kept as their text, as Zeek TSV has them.
_DECODER = json.JSONDecoder(parse_float=str, parse_int=str)


class ZeekLogParser:
    """A Zeek log parser: header handling and record accounting here; each log's module
    subclasses it and maps the typed columns of one header section to events in ``_events``."""

    comment_prefix = b"#"  # Zeek's directives: not records

    name: str
    kind: str
    description: str
    log_name: str  # for dead-letter reasons: "not a Zeek <log_name> log"
    default_fields: tuple[str, ...]  # headerless (zeek-cut) TSV
    wanted: dict[str, pa.DataType]  # fields read, with the type first tried
    required_field: str | None = None  # a section without it is some other log
    #: Headerless (zeek-cut) sibling logs by field count: (log name, fields). A sensor
    #: folder's glob (``cip*.log*``) sweeps them in with the log this parser reads.
    layouts: dict[int, tuple[str, tuple[str, ...]]] = {}
    #: Sibling logs (``#path`` or a recognised layout) carrying no detection value → why:
    #: their records are skipped with one notice per file, not dead-lettered one by one.
    skip_logs: dict[str, str] = {}

    def new_file_state(self, path: str) -> ZeekState:
        return ZeekState(path=path, default_fields=self.default_fields)

    def _sniff_layout(self, block: Block, state: ZeekState) -> None:
        """A headerless file: pick the sibling layout its first record's field count names."""
        if state.mode is not None or state.fields is not None or not self.layouts:
            return
        first = next((ln for ln in map(block.line, range(block.count)) if ln.strip()), None)
        if first is None or first.startswith(b"#") or first.lstrip().startswith(b"{"):
            return
        layout = self.layouts.get(first.count(b"\t") + 1)
        if layout is not None:
            state.log_path, state.default_fields = layout[0], layout[1]

    #: A field that names a skipped sibling log in a headerless (zeek-cut) file: field → log.
    skip_fields: dict[str, str] = {}

    def skip_reason(self, b: ZeekBatch) -> str | None:
        if b.log_path is None:
            for f, log in self.skip_fields.items():
                if f in b.fields:
                    return self.skip_logs[log]
        return self.skip_logs.get(b.log_path or "")

    def parse_block(self, block: Block, state: ZeekState, ctx: ParseContext, *,
                    require_time: bool = True) -> ParseResult:
        """``require_time=False`` keeps rows without a usable ``ts`` (time null): only for
        inspecting masked test baselines, never in the pipeline."""
        self._sniff_layout(block, state)
        batches, dead_letters, records, lines = read_zeek_block(block, state, ctx.source, self.wanted)
        tables = []
        skipped = 0
        memo = BlockMemo(state.memo)
        for b in batches:
            b.memo = memo
            why = self.skip_reason(b)
            if why is not None:
                skipped += len(b.rows)  # not records this format reads: announced and counted, not dead-lettered
                if b.log_path not in state.noticed:
                    state.noticed.add(b.log_path or "")
                    logging.getLogger("cranewatch.parse").warning(
                        "%s: skipping Zeek %s log records (%s)", block.path, b.log_path, why)
                continue
            if self.required_field is not None and self.required_field not in b.fields:
                what = f"#path {b.log_path}" if b.log_path else f"no {self.required_field} field"
                dead_letters.extend(
                    dead(ctx.source, block.path, block.first_line + int(i),
                         f"not a Zeek {self.log_name} log ({what})", lines[int(i)].as_py())
                    for i in b.rows
                )
                continue
            table, more = self._events(b, block, lines, ctx, require_time)
            tables.append(table)
            dead_letters.extend(more)
        dead_letters.sort(key=lambda d: int(d.location.rsplit(":", 1)[1]))
        events = pa.concat_tables(tables) if tables else empty_events()
        state.commit(memo)  # last: nothing after it raises
        return ParseResult(events, dead_letters, records, skipped=skipped)

    def _events(self, b: ZeekBatch, block: Block, lines: pa.Array, ctx: ParseContext,
                require_time: bool) -> tuple[pa.Table, list[DeadLetter]]:
        raise NotImplementedError

    def _common_columns(self, b: ZeekBatch, ctx: ParseContext, checks: c.Checks,
                        require_time: bool) -> dict[str, pa.Array]:
        """What every Zeek log has: ``ts``, the connection's ``id.*`` endpoints, and the
        source/format/kind constants (``checks`` collects bad times and ports)."""
        n = len(b.rows)
        col = b.cols.get
        return {
            "time": c.to_time(col("ts"), "ts", checks, required=require_time),
            "source": c.const(ctx.source, n),
            "format": c.const(self.name, n),
            "kind": c.const(self.kind, n),
            "src_ip": c.to_text(col("id.orig_h"), n, None),
            "src_port": c.to_int(col("id.orig_p"), "id.orig_p", checks, "port", 65535, pa.int32()),
            "dst_ip": c.to_text(col("id.resp_h"), n, None),
            "dst_port": c.to_int(col("id.resp_p"), "id.resp_p", checks, "port", 65535, pa.int32()),
        }
