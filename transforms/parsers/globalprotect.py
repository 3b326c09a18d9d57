"""Palo Alto Networks GlobalProtect logs (PAN-OS syslog, CSV ``GLOBALPROTECT`` entries) →
``remote_access`` events.

Where vendors reach the cranes through a Palo Alto firewall, its GlobalProtect log (PAN-OS
9.1+) records portal and gateway authentication, tunnel connection and logout with the
user, the public address they came from and the tunnel (private) address they got. Each
syslog line carries one comma-separated entry in the order PAN-OS documents ("GlobalProtect
Log Fields"); other log types (TRAFFIC, THREAT, SYSTEM, ...) are records too and are
dead-lettered. Volumes are small, so this is a per-line parser. See docs/formats/globalprotect.md.
"""
from __future__ import annotations

import csv
import re

from transforms.parsers import _common as c
from transforms.parsers._common import Reject
from transforms.parsers.base import ParseContext, ParseResult
from transforms.read import Block

#: PAN-OS 10.1+ "GlobalProtect Log Fields", in order (older releases stop earlier).
FIELDS = (
    "future_use1", "receive_time", "serial", "type", "subtype", "future_use2", "time_generated", "vsys",
    "eventid", "stage", "auth_method", "tunnel_type", "srcuser", "srcregion", "machinename", "public_ip",
    "public_ipv6", "private_ip", "private_ipv6", "hostid", "serialnumber", "client_ver", "client_os",
    "client_os_ver", "repeatcnt", "reason", "error", "opaque", "status", "location", "login_duration",
    "connect_method", "error_code", "portal", "seqno", "actionflags", "high_res_timestamp", "selection_type",
    "response_time", "priority", "attempted_gateways", "gateway", "dg_hier_level_1", "dg_hier_level_2",
    "dg_hier_level_3", "dg_hier_level_4", "vsys_name", "device_name", "vsys_id",
)
_MIN_FIELDS = FIELDS.index("status") + 1
#: Where the CSV entry starts: after any syslog header, at "<future_use>,<YYYY/MM/DD hh:mm:ss>,".
_START = re.compile(r"(?:^|\s)(\d*,\d{4}/\d\d/\d\d \d\d:\d\d:\d\d,)")
ACTIONS = {"gateway-connected": "vpn.login", "gateway-logout": "vpn.logout"}
AUTH = ("portal-auth", "gateway-auth")
ATTRS = {  # PAN-OS field → attrs key
    "private_ip": "tunnel_ip", "private_ipv6": "tunnel_ip6", "srcregion": "region", "machinename": "machine",
    "stage": "stage", "auth_method": "auth_method", "tunnel_type": "tunnel_type", "eventid": "eventid",
    "client_ver": "client_version", "client_os": "client_os", "client_os_ver": "client_os_version",
    "reason": "reason", "error": "error", "error_code": "error_code", "opaque": "description",
    "portal": "portal", "gateway": "gateway", "location": "location", "connect_method": "connect_method",
    "hostid": "host_id", "serial": "serial", "device_name": "device_name", "vsys": "vsys", "seqno": "seqno",
}
_UNSET = ("", "0.0.0.0", "::", "N/A")


def to_event(line: str, ctx: ParseContext, ref: str) -> dict:
    m = _START.search(line)
    if m is None:
        raise Reject("not a PAN-OS log entry (no receive time field)")
    try:
        values = next(csv.reader([line[m.start(1):]], skipinitialspace=False))
    except csv.Error as e:
        raise Reject(f"unreadable PAN-OS CSV: {e}") from None
    f = dict(zip(FIELDS, values))
    if f.get("type") != "GLOBALPROTECT":
        raise Reject(f"not a GlobalProtect log entry (type={f.get('type') or 'missing'})")
    if len(values) < _MIN_FIELDS:
        raise Reject(f"expected at least {_MIN_FIELDS} comma-separated GlobalProtect fields, got {len(values)}")
    time = None
    if f.get("high_res_timestamp"):
        time = c.text_time_to_us(f["high_res_timestamp"], c.tzinfo("UTC"))
    if time is None:
        try:
            tz = c.tzinfo(ctx.timezone)
        except ValueError:
            raise Reject(f"no usable timestamp: unknown time zone {ctx.timezone!r}") from None
        time = c.text_time_to_us(f.get("time_generated", ""), tz)
        if time is None:
            raise Reject(f"no usable timestamp: invalid time_generated {f.get('time_generated')!r}")
    public = f.get("public_ip") if f.get("public_ip") not in _UNSET else f.get("public_ipv6")
    if public in _UNSET:
        public = None
    for key in ("public_ip", "public_ipv6", "private_ip", "private_ipv6"):
        v = f.get(key, "")
        if v not in _UNSET and not c.valid_ip(v):
            raise Reject(f"invalid address {v!r} in {key}")
    duration = f.get("login_duration", "")
    if duration and not duration.isdecimal():
        raise Reject(f"invalid count {duration!r} in login_duration")
    eid = f["eventid"]
    status = f.get("status") or None
    if eid in AUTH:
        action = "auth.success" if status == "success" else "auth.failure"
    else:
        action = ACTIONS.get(eid, "vpn." + re.sub(r"[^a-z0-9]+", "_", eid.lower()).strip("_"))
    return {
        "time": time,
        "source": ctx.source,
        "format": "globalprotect",
        "kind": "remote_access",
        "src_ip": public,
        "action": action,
        "user": f.get("srcuser") or None,
        "duration": float(duration) if duration and duration != "0" else None,
        "result": status,
        "raw_ref": ref,
        "raw": line,
        "attrs": {name: f[key] for key, name in ATTRS.items() if f.get(key) not in (None, *_UNSET)},
    }


class GlobalProtectParser:
    name = "globalprotect"
    kind = "remote_access"
    description = "Palo Alto GlobalProtect log (PAN-OS syslog CSV): portal/gateway auth, connect, logout"

    def new_file_state(self, path: str) -> None:
        return None

    def parse_block(self, block: Block, state: None, ctx: ParseContext) -> ParseResult:
        return ParseResult(*c.parse_lines(block, ctx.source, lambda line, ref: to_event(line, ctx, ref)))


PARSER = GlobalProtectParser()
