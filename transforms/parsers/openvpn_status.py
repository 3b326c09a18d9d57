"""OpenVPN server status files (``--status FILE [n] --status-version 1|2|3``) → ``remote_access``.

A status file is a snapshot of who is connected: one ``vpn.session`` event per client-list
row, timed at "Connected Since" (the server's local time, read in the source's
``timezone``; versions 2 and 3 also carry ``time_t``, used when present). The tunnel
address comes from the client row (versions 2, 3) or, in version 1, from the routing table
that follows the client list; so a version 1 file's routing table is read first, when the
file is opened (status files are small). Several snapshots appended to one file are read
one after another. Client rows are the records; headers, routing-table rows and global
stats are structure; any other line is dead-lettered. See docs/formats/openvpn-status.md.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from transforms.model import DeadLetter
from transforms.parsers import _common as c
from transforms.parsers._common import Reject
from transforms.parsers.base import ParseContext, ParseResult
from transforms.read import Block, iter_blocks

V1_CLIENT_COLUMNS = ("Common Name", "Real Address", "Bytes Received", "Bytes Sent", "Connected Since")
V1_ROUTE_COLUMNS = ("Virtual Address", "Common Name", "Real Address", "Last Ref")
V2_STRUCTURE = ("TITLE", "TIME", "HEADER", "GLOBAL_STATS", "END")
_UNDEF = ("", "UNDEF")
_MAX_PRESCAN = 64 * 1024 * 1024


@dataclass
class StatusState:
    path: str
    #: (snapshot, common name, real address) → virtual addresses, from v1 routing tables
    routes: dict[tuple[int, str, str], list[str]] = field(default_factory=dict)
    snapshot: int = -1
    section: str | None = None  # v1: "clients" | "routes" | "stats" | "end"
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # v2/v3 HEADER rows
    v1_columns: tuple[str, ...] = V1_CLIENT_COLUMNS
    updated: int | None = None  # snapshot time, µs
    version: int | None = None


def _separator(line: str) -> str:
    return "\t" if line.startswith(("TITLE\t", "TIME\t", "HEADER\t", "CLIENT_LIST\t", "ROUTING_TABLE\t",
                                    "GLOBAL_STATS\t", "END")) and "\t" in line else ","


def _prescan_routes(path: str) -> dict[tuple[int, str, str], list[str]]:
    """Version 1 routing tables of the whole file (empty if unreadable: the main read
    reports that)."""
    routes: dict[tuple[int, str, str], list[str]] = {}
    snapshot, in_routes, size = -1, False, 0
    try:
        for block in iter_blocks("prescan", path):
            for raw in block.lines:
                size += len(raw) + 1
                line = raw.decode("utf-8", "replace").lstrip("\ufeff")
                if line.startswith("OpenVPN CLIENT LIST"):
                    snapshot, in_routes = snapshot + 1, False
                elif line == "ROUTING TABLE":
                    in_routes = True
                elif line in ("GLOBAL STATS", "END"):
                    in_routes = False
                elif in_routes and not line.startswith("Virtual Address,"):
                    parts = line.split(",")
                    if len(parts) == 4:
                        routes.setdefault((snapshot, parts[1], parts[2]), []).append(parts[0])
            if size > _MAX_PRESCAN:
                break
    except (OSError, EOFError, ValueError):
        pass
    return routes


def _tz(ctx: ParseContext) -> dt.tzinfo:
    try:
        return c.tzinfo(ctx.timezone)
    except ValueError:
        raise Reject(f"no usable timestamp: unknown time zone {ctx.timezone!r}") from None


def _count(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    if not (value.isascii() and value.isdecimal()) or len(value) > 18:
        raise Reject(f"invalid count {value[:40]!r} in {name}")
    return int(value)


def _rfc3339(us: int) -> str:
    t = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=us)
    return t.isoformat().replace("+00:00", "Z")


def client_event(row: dict[str, str], virtual: list[str], state: StatusState, ctx: ParseContext,
                 ref: str, raw: str) -> dict:
    """One client-list row (column name → value) → a ``vpn.session`` event row."""
    real = row.get("Real Address", "")
    addr = c.split_host_port(real)
    if addr is None:
        raise Reject(f"invalid address {real!r} in Real Address")
    since_t = row.get("Connected Since (time_t)", "")
    time = c.epoch_digits_to_us(since_t) if since_t else None
    if time is None:
        since = row.get("Connected Since", "")
        time = c.text_time_to_us(since, _tz(ctx)) if since else None
        if time is None:
            raise Reject(f"no usable timestamp: invalid Connected Since {since!r}")
    tunnel = [v for v in virtual if c.valid_ip(v)]
    tunnel4 = next((v for v in tunnel if ":" not in v), None)
    tunnel6 = row.get("Virtual IPv6 Address") or next((v for v in tunnel if ":" in v), None)
    routes = [v for v in virtual if v not in (tunnel4, tunnel6)]
    cn, username = row.get("Common Name", ""), row.get("Username", "")
    user = cn if cn not in _UNDEF else (username if username not in _UNDEF else None)
    if user is None:
        raise Reject("client row without Common Name or Username")
    duration = (state.updated - time) / 1e6 if state.updated is not None and state.updated >= time else None
    attrs = {
        "tunnel_ip": tunnel4, "tunnel_ip6": tunnel6, "routes": ",".join(routes) or None,
        "real_address": real, "updated": _rfc3339(state.updated) if state.updated is not None else None,
        "username": username if username not in _UNDEF else None, "peer_id": row.get("Peer ID") or None,
        "cipher": row.get("Data Channel Cipher") or None, "status_version": str(state.version),
    }
    return {
        "time": time,
        "source": ctx.source,
        "format": "openvpn_status",
        "kind": "remote_access",
        "src_ip": addr[0],
        "src_port": addr[1],
        "proto": None,
        # Bytes Received is what the server got from the client, i.e. what the client sent.
        "bytes_out": _count(row.get("Bytes Received"), "Bytes Received"),
        "bytes_in": _count(row.get("Bytes Sent"), "Bytes Sent"),
        "duration": duration,
        "action": "vpn.session",
        "user": user,
        "session_id": row.get("Client ID") or None,
        "raw_ref": ref,
        "raw": raw,
        "attrs": {k: v for k, v in attrs.items() if v is not None},
    }


def _status_time(text: str, ctx: ParseContext) -> int | None:
    try:
        return c.text_time_to_us(text, c.tzinfo(ctx.timezone))
    except ValueError:
        return None


class OpenvpnStatusParser:
    name = "openvpn_status"
    kind = "remote_access"
    description = "OpenVPN server status file, versions 1-3: one vpn.session event per connected client"

    def new_file_state(self, path: str) -> StatusState:
        return StatusState(path=path, routes=_prescan_routes(path))

    def parse_block(self, block: Block, state: StatusState, ctx: ParseContext) -> ParseResult:
        dead: list[DeadLetter] = []
        rows: list[dict] = []
        records = structure = 0
        for line_no, line in c.iter_records(block, ctx.source, dead):
            line = line.lstrip("\ufeff")
            ref = f"{block.path}:{line_no}"
            try:
                row = self._line(line, state, ctx, ref)
            except Reject as e:
                dead.append(DeadLetter(ctx.source, ref, str(e), line))
                records += 1
                continue
            if row is not None:
                rows.append(row)
                records += 1
            else:
                structure += 1
        records += sum(1 for d in dead if d.reason == "not valid UTF-8")
        table = c.rows_to_table(rows, dead)
        dead.sort(key=lambda d: int(d.location.rsplit(":", 1)[1]))
        return ParseResult(table, dead, records, structure)

    def _line(self, line: str, state: StatusState, ctx: ParseContext, ref: str) -> dict | None:
        """An event row for a client line, None for structure; raises ``Reject``."""
        # --- version 1 ---
        if line.startswith("OpenVPN CLIENT LIST"):
            state.snapshot += 1
            state.version, state.section, state.updated = 1, "clients", None
            state.v1_columns = V1_CLIENT_COLUMNS
            return None
        if state.version == 1 and state.section in ("clients", "routes", "stats"):
            parts = line.split(",")
            if line in ("ROUTING TABLE", "GLOBAL STATS", "END"):
                state.section = {"ROUTING TABLE": "routes", "GLOBAL STATS": "stats", "END": "end"}[line]
                return None
            if state.section == "clients":
                if parts[0] == "Updated" and len(parts) == 2:
                    state.updated = _status_time(parts[1], ctx)
                    return None
                if parts[0] == "Common Name":
                    state.v1_columns = tuple(parts)
                    return None
                if len(parts) != len(state.v1_columns):
                    raise Reject(f"expected {len(state.v1_columns)} comma-separated fields in a "
                                 f"CLIENT LIST row, got {len(parts)}")
                row = dict(zip(state.v1_columns, parts))
                virtual = state.routes.get((state.snapshot, row["Common Name"], row["Real Address"]), [])
                return client_event(row, virtual, state, ctx, ref, line)
            if state.section == "routes":
                if parts[0] == "Virtual Address":
                    return None
                if len(parts) != len(V1_ROUTE_COLUMNS):
                    raise Reject(f"expected 4 comma-separated fields in a ROUTING TABLE row, got {len(parts)}")
                return None  # read by the pre-scan into its client's event
            if len(parts) == 2:  # GLOBAL STATS name,value
                return None
            raise Reject("not an OpenVPN status line (in GLOBAL STATS)")
        # --- versions 2 (comma) and 3 (tab) ---
        sep = _separator(line)
        parts = line.split(sep)
        kind = parts[0]
        if kind in V2_STRUCTURE or kind in ("CLIENT_LIST", "ROUTING_TABLE"):
            version = 3 if sep == "\t" else 2
            if kind == "TITLE":
                state.snapshot += 1
                state.version, state.section, state.updated, state.columns = version, None, None, {}
                return None
            state.version = state.version or version
            if kind == "TIME":
                t = c.epoch_digits_to_us(parts[2]) if len(parts) > 2 else None
                state.updated = t if t is not None else (_status_time(parts[1], ctx) if len(parts) > 1 else None)
                return None
            if kind == "HEADER":
                if len(parts) > 2:
                    state.columns[parts[1]] = tuple(parts[2:])
                return None
            if kind in ("GLOBAL_STATS", "END", "ROUTING_TABLE"):
                return None  # v2/v3 client rows carry their virtual address themselves
            columns = state.columns.get("CLIENT_LIST")
            if columns is None:
                raise Reject("CLIENT_LIST row before its HEADER,CLIENT_LIST line")
            if len(parts) - 1 != len(columns):
                raise Reject(f"expected {len(columns)} fields after CLIENT_LIST, got {len(parts) - 1}")
            row = dict(zip(columns, parts[1:]))
            virtual = [v for v in (row.get("Virtual Address", ""),) if v]
            return client_event(row, virtual, state, ctx, ref, line)
        raise Reject("not an OpenVPN status line")


PARSER = OpenvpnStatusParser()
