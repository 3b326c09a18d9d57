"""FortiGate (FortiOS 6.2–7.x) VPN event log, syslog ``key=value`` lines → ``remote_access``.

Vendor remote access to the cranes comes in through the terminal's FortiGate, so its SSL
and IPsec VPN events (tunnel up/down, failed logins) anchor the "who was connected when"
side of correlation. VPN volumes are small, so this is a tidy per-line regex parser. Lines
of other log types (traffic, UTM, system events) are records too: they are dead-lettered
with the reason, never dropped silently. See docs/formats/fortigate-vpn.md.
"""
from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo

from transforms.parsers import _common as c
from transforms.parsers._common import Reject
from transforms.parsers.base import ParseContext, ParseResult
from transforms.read import Block

# key=value or key="quoted value" (FortiOS escapes a quote inside as \"); values may be empty.
_KV = re.compile(r'(?:^|(?<=\s))([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|\S*)')
_PRI = re.compile(r"^<\d{1,3}>(?:1 )?")  # syslog PRI (and RFC 5424 version)
_TZ = re.compile(r"^([+-])(\d\d):?(\d\d)$")
_UNSET = ("", "N/A", "n/a")
ACTIONS = {"tunnel-up": "vpn.login", "tunnel-down": "vpn.logout", "ssl-login-fail": "auth.failure"}
RESULTS = {"tunnel-up": "success", "tunnel-down": "success", "ssl-login-fail": "failure"}
ATTRS = {  # FortiOS field → attrs key
    "tunnelip": "tunnel_ip", "tunneltype": "tunneltype", "group": "group", "reason": "reason",
    "msg": "msg", "logid": "logid", "devname": "devname", "vd": "vd",
}



def parse_kv(line: str) -> dict[str, str]:
    """FortiOS ``key=value`` pairs of one line (after any syslog header), quotes removed."""
    fields: dict[str, str] = {}
    for m in _KV.finditer(_PRI.sub("", line, count=1)):
        value = m.group(2)
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        fields.setdefault(m.group(1), value)
    return fields


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> dt.tzinfo:
    match = _TZ.match(name)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        return dt.timezone(sign * dt.timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    return zoneinfo.ZoneInfo(name)


def event_time(f: dict[str, str], default_tz: str) -> int:
    """``eventtime`` (epoch s/ms/µs/ns by digit count) else ``date``+``time`` in ``tz``."""
    et = f.get("eventtime", "")
    if et.isdecimal() and len(et) in (10, 13, 16, 19):
        return int(et) * 1_000_000 // 10 ** (len(et) - 10)
    if "date" not in f or "time" not in f:
        raise Reject("no usable timestamp (no eventtime, date or time)")
    tz_name = f.get("tz") or default_tz
    try:
        tz = _zone(tz_name.strip())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise Reject(f"no usable timestamp: unknown time zone {tz_name!r}") from None
    us = c.iso_to_us(f"{f['date']}T{f['time']}", tz)
    if us is None:
        raise Reject(f"no usable timestamp: unparseable date={f['date']!r} time={f['time']!r}")
    return us


def _count(f: dict[str, str], key: str) -> int | None:
    value = f.get(key)
    if value in (None, *_UNSET):
        return None
    if not value.isdecimal() or len(value) > 18:  # past int64: not a count
        raise Reject(f"invalid count {value[:40]!r} in {key}")
    return int(value)


def to_event(f: dict[str, str], ctx: ParseContext, ref: str, raw: str) -> dict:
    """FortiOS fields of one line → event row (``time`` in µs); raises ``Reject``."""
    if not f:
        raise Reject("not a FortiGate key=value log line")
    if f.get("type") != "event" or f.get("subtype") != "vpn":
        kind = f"type={f.get('type', '-')}, subtype={f.get('subtype', '-')}"
        raise Reject(f"not a FortiGate VPN event ({kind})")
    action = f.get("action")
    if not action:
        raise Reject("FortiGate VPN event without action")
    remip = f.get("remip", "")
    if remip in _UNSET:
        remip = None
    elif not c.valid_ip(remip):
        raise Reject(f"invalid address {remip!r} in remip")
    duration = _count(f, "duration")
    get = lambda k: None if f.get(k) in (None, *_UNSET) else f[k]  # noqa: E731
    return {
        "time": event_time(f, ctx.timezone),
        "source": ctx.source,
        "format": "fortigate_vpn",
        "kind": "remote_access",
        "src_ip": remip,
        # The gateway's sentbyte went to the client, rcvdbyte came from it; like Zeek's
        # orig_bytes, bytes_out is what the event's source (the client) sent.
        "bytes_out": _count(f, "rcvdbyte"),
        "bytes_in": _count(f, "sentbyte"),
        "duration": float(duration) if duration is not None else None,
        "action": ACTIONS.get(action, f"vpn.{action}"),
        "user": get("user"),
        "session_id": None if f.get("tunnelid") == "0" else get("tunnelid"),  # 0: no tunnel
        "result": get("status") or RESULTS.get(action),
        "raw_ref": ref,
        "raw": raw,
        "attrs": {name: f[key] for key, name in ATTRS.items() if f.get(key) not in (None, *_UNSET)},
    }


class FortigateVpnParser:
    name = "fortigate_vpn"
    kind = "remote_access"
    description = "FortiGate FortiOS VPN event log (syslog key=value): tunnel up/down, SSL VPN login failures"

    def new_file_state(self, path: str) -> None:
        return None

    def parse_block(self, block: Block, state: None, ctx: ParseContext) -> ParseResult:
        return ParseResult(*c.parse_lines(block, ctx.source, lambda line, ref: to_event(parse_kv(line), ctx, ref, line)))


PARSER = FortigateVpnParser()
