"""The parser registry: config ``format:`` name → parser instance (one module per format)."""
from __future__ import annotations

from typing import Iterator

from transforms.parsers.base import ParseContext, Parser, ParseResult
from transforms.read import BLOCK_BYTES, iter_blocks


def _registry() -> dict[str, Parser]:
    from transforms.parsers import (
        cms_csv, cms_events, csv_mapped, fortigate_vpn, globalprotect, jsonl_mapped, nfdump_csv, nfdump_json,
        openvpn_log, openvpn_status, parquet, remote_access_jsonl, suricata_eve, windows_security, zeek_cip,
        zeek_conn, zeek_modbus, zeek_s7comm,
    )

    parsers = [
        # flow
        zeek_conn.PARSER, suricata_eve.PARSER, nfdump_csv.PARSER, nfdump_json.PARSER,
        # ot
        zeek_modbus.PARSER, zeek_s7comm.PARSER, zeek_cip.PARSER, cms_events.PARSER, cms_csv.PARSER,
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


def parse_file(parser_name: str, source: str, path: str, timezone: str = "UTC",
               block_bytes: int = BLOCK_BYTES, mapping: str | None = None) -> Iterator[ParseResult]:
    """Read ``path`` in blocks and parse each with the named parser (tests, batch runs)."""
    parser = PARSERS[parser_name]
    ctx = ParseContext(source=source, timezone=timezone, mapping=mapping)
    state = parser.new_file_state(path)
    for block in iter_blocks(source, path, block_bytes):
        yield parser.parse_block(block, state, ctx)
    finish = getattr(parser, "finish_file", None)  # formats whose records span blocks
    if finish is not None:
        yield finish(state, ctx)


__all__ = ["PARSERS", "ParseContext", "ParseResult", "Parser", "parse_file"]
