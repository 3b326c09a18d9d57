"""OpenVPN server log lines (``--log`` file or syslog) → ``remote_access`` session events.

The lines that matter for "who was connected when, from where" are mapped: a client's
``Peer Connection Initiated`` (``vpn.login``), ``client-instance exiting`` /
``restarting`` after ``SIGTERM``/``SIGUSR1`` (``vpn.logout``), the pool address handed to
it (``vpn.address_assigned``) and failed certificate or password checks (``auth.failure``).
OpenVPN logs much else (TLS details, routes, start-up); those lines are records too and
are dead-lettered ``not an OpenVPN session event``, never dropped silently. VPN volumes are
small, so this is a per-line regex parser. See docs/formats/openvpn-log.md.
"""
from __future__ import annotations

import re

from transforms.parsers import _common as c
from transforms.parsers._common import Reject
from transforms.parsers.base import ParseContext, ParseResult
from transforms.read import Block

# Time prefixes: 2.5+ "2024-01-15 10:23:46", 2.4 ctime "Mon Jan 15 10:23:46 2024",
# syslog "Jan 15 10:23:46 host openvpn[123]:" or RFC 3339 "2024-01-15T10:23:46+01:00 host openvpn[123]:".
_ISO = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (.*)$")
_CTIME = re.compile(r"^([A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}) (.*)$")
_SYSLOG = re.compile(r"^(?:<\d{1,3}>)?([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) \S+ [\w.-]+(?:\[\d+\])?: (.*)$")
_SYSLOG_ISO = re.compile(r"^(?:<\d{1,3}>1? ?)?(\d{4}-\d\d-\d\dT\S+) \S+ [\w.-]+(?:\[\d+\])?: (.*)$")
# "<cn>/<addr>" (after authentication) or "<addr>" (before) and the message.
_CLIENT = re.compile(r"^(?:(?P<cn>[^\s/]+)/)?(?P<addr>(?:\[AF_INET6?\])?[0-9A-Fa-f.:\[\]]+) (?P<msg>.*)$")
_LOGIN = re.compile(r"^\[(?P<user>[^\]]*)\] Peer Connection Initiated with (?P<peer>\S+)")
_EXIT = re.compile(r"^(?P<sig>SIG\w+)\[(?P<how>\w+),(?P<reason>[\w-]+)\] received, client-instance (?P<what>exiting|restarting)")
_EXIT_PLAIN = re.compile(r"client-instance (exiting|restarting)")
_POOL = re.compile(r"^MULTI_sva: pool returned IPv4=(?P<v4>[^,\s]+), IPv6=(?P<v6>\S+)")
_AUTH_FAIL = re.compile(r"^(?:TLS Auth Error: (?P<auth>.*)|VERIFY ERROR: (?P<verify>.*))$")
_CN_IN = re.compile(r"CN=([^,\s]+)")


def _time(line: str, ctx: ParseContext, reference) -> tuple[int, str]:
    try:
        tz = c.tzinfo(ctx.timezone)
    except ValueError:
        raise Reject(f"no usable timestamp: unknown time zone {ctx.timezone!r}") from None
    for pattern, convert in (
        (_ISO, lambda t: c.text_time_to_us(t, tz)),
        (_CTIME, lambda t: c.ctime_to_us(t, tz)),
        (_SYSLOG_ISO, lambda t: c.text_time_to_us(t, tz)),
        (_SYSLOG, lambda t: c.syslog_year_to_us(t, tz, reference)),
    ):
        m = pattern.match(line)
        if m:
            us = convert(m.group(1))
            if us is None:
                raise Reject(f"no usable timestamp: invalid time {m.group(1)!r}")
            return us, m.group(2)
    raise Reject("no usable timestamp (no OpenVPN or syslog time prefix)")


def to_event(line: str, ctx: ParseContext, ref: str, reference) -> dict:
    time, rest = _time(line, ctx, reference)
    m = _CLIENT.match(rest)
    addr = c.split_host_port(m.group("addr")) if m else None
    if m is None or addr is None:
        raise Reject("not an OpenVPN session event")
    user, msg = m.group("cn"), m.group("msg")
    attrs: dict[str, str] = {}
    if (lm := _LOGIN.match(msg)) is not None:
        action, result, user = "vpn.login", "success", lm.group("user") or user
        attrs["peer"] = lm.group("peer")
    elif (em := _EXIT.match(msg)) is not None:
        action, result = "vpn.logout", "success"
        attrs.update(signal=em.group("sig"), reason=em.group("reason"), instance=em.group("what"))
    elif _EXIT_PLAIN.search(msg):
        action, result = "vpn.logout", "success"
    elif (pm := _POOL.match(msg)) is not None:
        action, result = "vpn.address_assigned", "success"
        attrs["tunnel_ip"] = pm.group("v4")
        if c.valid_ip(pm.group("v6")):
            attrs["tunnel_ip6"] = pm.group("v6")
    elif (fm := _AUTH_FAIL.match(msg)) is not None:
        action, result = "auth.failure", "failure"
        reason = fm.group("auth") if fm.group("auth") is not None else fm.group("verify")
        attrs["reason"] = reason or ""  # "TLS Auth Error: " with nothing after it
        if user is None and (cn := _CN_IN.search(attrs["reason"])):
            user = cn.group(1)
    else:
        raise Reject("not an OpenVPN session event")
    if user in ("", "UNDEF"):
        user = None
    if user is not None:
        attrs["common_name"] = user
    return {
        "time": time,
        "source": ctx.source,
        "format": "openvpn_log",
        "kind": "remote_access",
        "src_ip": addr[0],
        "src_port": addr[1],
        "action": action,
        "user": user,
        # The client's real address:port names one connection from login to logout.
        "session_id": m.group("addr").replace("[AF_INET6]", "").replace("[AF_INET]", ""),
        "result": result,
        "raw_ref": ref,
        "raw": line,
        "attrs": attrs,
    }


class OpenvpnLogParser:
    name = "openvpn_log"
    kind = "remote_access"
    description = "OpenVPN server log lines (file or syslog): client login, logout, pool address, auth failures"

    def new_file_state(self, path: str):
        return c.file_mtime(path)

    def parse_block(self, block: Block, state, ctx: ParseContext) -> ParseResult:
        return ParseResult(*c.parse_lines(block, ctx.source, lambda line, ref: to_event(line, ctx, ref, state)))


PARSER = OpenvpnLogParser()
