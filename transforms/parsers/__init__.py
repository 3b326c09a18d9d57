"""The parser registry: config ``format:`` name → parser instance (one module per format)."""
from __future__ import annotations

from typing import Iterator

from transforms.parsers.base import ParseContext, Parser, ParseResult
from transforms.read import BLOCK_BYTES, iter_blocks


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


def iter_results(parser: Parser, path: str, ctx: ParseContext,
                 block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[ParseResult, int]]:
    """Each parse result of a file with the line reading has reached (for error messages).

    Line formats get the file in blocks (plus ``finish_file`` for records spanning blocks);
    a binary format with ``read_file`` (Parquet) reads the file itself.
    """
    state = parser.new_file_state(path)
    read_file = getattr(parser, "read_file", None)
    if read_file is not None:
        for result in read_file(state, ctx):
            yield result, 1
        return
    next_line = 1
    for block in iter_blocks(ctx.source, path, block_bytes):
        next_line = block.first_line + len(block.lines)
        yield parser.parse_block(block, state, ctx), next_line
    finish = getattr(parser, "finish_file", None)
    if finish is not None:
        yield finish(state, ctx), next_line


def parse_file(parser_name: str, source: str, path: str, timezone: str = "UTC",
               block_bytes: int = BLOCK_BYTES, mapping: str | None = None) -> Iterator[ParseResult]:
    """Parse a whole file with the named parser (tests, tools)."""
    ctx = ParseContext(source=source, timezone=timezone, mapping=mapping)
    for result, _ in iter_results(PARSERS[parser_name], path, ctx, block_bytes):
        yield result


__all__ = ["PARSERS", "ParseContext", "ParseResult", "Parser", "iter_results", "parse_file"]
