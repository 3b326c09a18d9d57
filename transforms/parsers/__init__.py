"""The parser registry: config ``format:`` name → parser instance (one module per format)."""
from __future__ import annotations

import copy
import logging
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from transforms.model import DeadLetter, empty_events
from transforms.parsers.base import ParseContext, Parser, ParseResult
from transforms.read import BLOCK_BYTES, DEFAULT_LIMITS, Block, BlockReader, Limits

log = logging.getLogger(__name__)


def _registry() -> dict[str, Parser]:
    from transforms.parsers import (
        cms_csv, cms_events, csv_mapped, fortigate_vpn, globalprotect, jsonl_mapped, nfdump_csv, nfdump_json,
        openvpn_log, openvpn_status, parquet, remote_access_jsonl, suricata_eve, windows_security, zeek_cip,
        zeek_conn, zeek_dnp3, zeek_dns, zeek_modbus, zeek_s7comm,
    )

    parsers = [
        # flow
        zeek_conn.PARSER, zeek_dns.PARSER, suricata_eve.PARSER, nfdump_csv.PARSER, nfdump_json.PARSER,
        # ot
        zeek_modbus.PARSER, zeek_s7comm.PARSER, zeek_cip.PARSER, zeek_dnp3.PARSER, cms_events.PARSER, cms_csv.PARSER,
        # remote_access
        fortigate_vpn.PARSER, openvpn_status.PARSER, openvpn_log.PARSER, globalprotect.PARSER,
        remote_access_jsonl.PARSER,
        # auth
        windows_security.PARSER,
        # any kind, set by the source's mapping: block
        csv_mapped.PARSER, jsonl_mapped.PARSER, parquet.PARSER,
    ]
    return {p.name: p for p in parsers}


PARSERS: dict[str, Parser] = _registry()


def iter_results(parser: Parser, path: str, ctx: ParseContext, block_bytes: int = BLOCK_BYTES,
                 limits: Limits = DEFAULT_LIMITS) -> Iterator[tuple[ParseResult, int]]:
    """Each parse result of a file with the line reading has reached (for error messages).

    Line formats get the file in blocks (plus ``finish_file`` for records spanning blocks);
    a binary format with ``read_file`` (Parquet) reads the file itself. Each result's
    ``records`` is counted here, from the lines read, not taken from the parser; reading
    that stops early (a bound, a truncated archive) ends in one dead letter for the rest.
    Nothing a parser raises escapes: see ``parse_block_safely``.
    """
    try:
        state = parser.new_file_state(path)
    except Exception as exc:  # noqa: BLE001 - a file-level failure is one dead letter
        yield _failed(ctx, f"{path}:1", f"unreadable file: {_exc(exc)}"), 1
        return
    read_file = getattr(parser, "read_file", None)
    if read_file is not None:
        try:
            for result in read_file(state, ctx):
                yield result, 1
        except Exception as exc:  # noqa: BLE001
            yield _failed(ctx, f"{path}:1", f"unreadable file, stopped: {_exc(exc)}"), 1
        return
    prefix = getattr(parser, "comment_prefix", b"###")
    reader = BlockReader(ctx.source, path, block_bytes, limits)
    next_line = 1
    for block in reader:
        next_line = block.first_line + block.count
        result, state = parse_block_safely(parser, block, state, ctx, prefix)
        yield result, next_line
    finish = getattr(parser, "finish_file", None)
    if finish is not None:
        try:
            result = finish(state, ctx)
            # What the state still held was read as structure: each is a record now.
            result.records = len(result.dead_letters) + result.events.num_rows
        except Exception as exc:  # noqa: BLE001
            result = ParseResult(empty_events(), [DeadLetter(ctx.source, f"{path}:{next_line}",
                                                             f"parser error at end of file: {_exc(exc)}", "")], 1)
        yield result, next_line
    if reader.stop is not None:
        stop = reader.stop
        yield _failed(ctx, f"{path}:{stop.line}", stop.reason, stop.raw.decode("utf-8", "backslashreplace")), stop.line


def record_lines(block: Block, comment_prefix: bytes = b"###") -> int:
    """Lines that are neither blank (ASCII whitespace only) nor comments, counted in Arrow
    on the block's shared binary array (no per-line Python)."""
    lines = block.binary
    blank = pc.or_(pc.equal(pc.binary_length(lines), 0), pc.ascii_is_space(lines.view(pa.string())))
    other = pc.or_(blank, pc.starts_with(lines, pattern=comment_prefix.decode("ascii")))
    return len(lines) - pc.sum(other.cast(pa.int64())).as_py() if len(lines) else 0


def parse_block_safely(parser: Parser, block: Block, state: Any, ctx: ParseContext,
                       comment_prefix: bytes = b"###") -> tuple[ParseResult, Any]:
    """``parser.parse_block`` with ``records`` counted from the block's lines; if the
    parser raises, the block is parsed again line by line from the state it started with,
    so each line that still raises is its own dead letter naming the exception."""
    before = checkpoint(state)
    try:
        result = parser.parse_block(block, state, ctx)
    except Exception as exc:  # noqa: BLE001 - the safety net: no block is lost
        return _line_by_line(parser, block, before, ctx, comment_prefix, exc)
    result.records = record_lines(block, comment_prefix) - result.structure
    return result, state


def checkpoint(state: Any) -> Any:
    """The state to start a block again from, should it raise: the state's own
    ``checkpoint()`` where it has one (a copy of only what a block changes before it has
    parsed, so its cost does not grow with the file), else a deep copy (small states)."""
    own = getattr(state, "checkpoint", None)
    return own() if callable(own) else copy.deepcopy(state)


def _line_by_line(parser: Parser, block: Block, state: Any, ctx: ParseContext, prefix: bytes,
                  block_exc: Exception) -> tuple[ParseResult, Any]:
    log.warning("%s: parser %s raised on the block at line %d (%s); parsing it line by line",
                block.path, parser.name, block.first_line, _exc(block_exc))
    tables, dead, records, structure, skipped = [], [], 0, 0, 0
    for i, line in enumerate(block.lines):
        one = Block(block.source, block.path, block.first_line + i, [line])
        before = checkpoint(state)
        try:
            r = parser.parse_block(one, state, ctx)
        except Exception as exc:  # noqa: BLE001
            state = before
            records += 1
            dead.append(DeadLetter(ctx.source, f"{block.path}:{one.first_line}", f"parser error: {_exc(exc)}",
                                   line.decode("utf-8", "backslashreplace")))
            continue
        records += record_lines(one, prefix) - r.structure
        structure += r.structure
        skipped += r.skipped
        if r.events.num_rows:
            tables.append(r.events)
        dead.extend(r.dead_letters)
    events = pa.concat_tables(tables) if tables else empty_events()
    return ParseResult(events, dead, records, structure, skipped), state


def _failed(ctx: ParseContext, location: str, reason: str, raw: str = "") -> ParseResult:
    return ParseResult(empty_events(), [DeadLetter(ctx.source, location, reason, raw)], 1)


def _exc(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def parse_file(parser_name: str, source: str, path: str, timezone: str = "UTC",
               block_bytes: int = BLOCK_BYTES, mapping: str | None = None,
               limits: Limits = DEFAULT_LIMITS) -> Iterator[ParseResult]:
    """Parse a whole file with the named parser (tests, tools)."""
    ctx = ParseContext(source=source, timezone=timezone, mapping=mapping)
    for result, _ in iter_results(PARSERS[parser_name], path, ctx, block_bytes, limits):
        yield result


__all__ = ["PARSERS", "ParseContext", "ParseResult", "Parser", "iter_results", "parse_block_safely", "parse_file",
           "record_lines"]
