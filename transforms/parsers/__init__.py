"""The parser registry: config ``format:`` name → parser instance (one module per format)."""
from __future__ import annotations

from typing import Iterator

from transforms.parsers.base import ParseContext, Parser, ParseResult
from transforms.read import BLOCK_BYTES, iter_blocks


def _registry() -> dict[str, Parser]:
    from transforms.parsers import cms_events, fortigate_vpn, zeek_conn, zeek_modbus

    parsers = [zeek_conn.PARSER, zeek_modbus.PARSER, cms_events.PARSER, fortigate_vpn.PARSER]
    return {p.name: p for p in parsers}


PARSERS: dict[str, Parser] = _registry()


def parse_file(parser_name: str, source: str, path: str, timezone: str = "UTC",
               block_bytes: int = BLOCK_BYTES) -> Iterator[ParseResult]:
    """Read ``path`` in blocks and parse each with the named parser (tests, batch runs)."""
    parser = PARSERS[parser_name]
    ctx = ParseContext(source=source, timezone=timezone)
    state = parser.new_file_state(path)
    for block in iter_blocks(source, path, block_bytes):
        yield parser.parse_block(block, state, ctx)


__all__ = ["PARSERS", "ParseContext", "ParseResult", "Parser", "parse_file"]
