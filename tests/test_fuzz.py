"""Mutation fuzzing of every input format: no record can crash a run or go missing.

Valid records of each format (``cranewatch formats list``) are mutated the ways hostile or
broken input arrives — truncation, garbage, invalid UTF-8, lone surrogate escapes, type
swaps, huge integers, NaN/inf, deep nesting, dropped and duplicated columns, lines of
Unicode spaces, CR/NUL/BOM, long lines — and each file is checked exactly: nothing raises,
``read`` is the number of record lines written (counted here by the format's own rule, not
by the parser), ``read = parsed + dead-lettered``, and every record line is cited by exactly
one event or dead letter. Hypothesis drives the mutations here at a size fit for
``make test``; ``bench/fuzz_bench.py`` runs the same checks at 100k records per format.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.config import SourceMapping
from transforms.parse import Counts, InputFile, parse_file
from transforms.parsers import PARSERS

ZEEK_HEAD = ("#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-")


def _zeek(path: str, fields: str, types: str) -> tuple[str, ...]:
    return ZEEK_HEAD + (f"#path\t{path}", "#fields\t" + fields.replace(" ", "\t"), "#types\t" + types.replace(" ", "\t"))


def _nfdump_row(sa: str, da: str, sp: int, dp: int) -> str:
    mac = "00:00:00:00:00:00"
    fields = ["2026-11-20 09:15:02", "2026-11-20 09:16:02", "60.500", sa, da, str(sp), str(dp), "TCP", "...AP.SF",
              "0", "0", "12", "1024", "10", "980", "3", "4", "0", "0", "24", "24", "0", "0", "0.0.0.0", "0.0.0.0",
              "0", "0", mac, mac, mac, mac] + ["0-0-0"] * 10
    return ",".join(fields + ["    0.000", "    0.000", "    0.000", "10.40.0.1", "0/0", "1", "2026-11-20 09:16:10.123"])


NFDUMP_HEADER = ("ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,smk,dmk,dtos,dir,nh,nhb,"
                 "svln,dvln,ismc,odmc,idmc,osmc,mpls1,mpls2,mpls3,mpls4,mpls5,mpls6,mpls7,mpls8,mpls9,mpls10,cl,sl,al,"
                 "ra,eng,exid,tr")


@dataclass(frozen=True)
class Sample:
    """Valid input of one format: ``head`` lines (headers: not records, never mutated),
    then record lines built from ``records``; ``style`` says how fields are mutated."""

    fmt: str
    records: tuple[str, ...]
    style: str  # json | tsv | csv | text
    head: tuple[str, ...] = ()
    sep: str = ","
    comment: bytes = b"###"
    mapping: dict | None = None
    timezone: str = "UTC"
    label: str = ""  # a second sample of the same format (Zeek JSON)

    @property
    def key(self) -> str:
        return f"{self.fmt}/{self.label}" if self.label else self.fmt


def _j(*objs: dict) -> tuple[str, ...]:
    return tuple(json.dumps(o, separators=(",", ":")) for o in objs)


SAMPLES: dict[str, Sample] = {s.key: s for s in [
    Sample("zeek_conn", (
        "1795162502.250000\tCx1\t10.30.5.20\t49152\t10.40.1.10\t502\ttcp\tmodbus\t1.500000\t120\t80\tSF\tT\tT\t0\t"
        "ShADadFf\t6\t440\t4\t280\t-",
        "1795162503.000000\tCx2\t10.30.5.21\t49153\t8.8.8.8\t53\tudp\tdns\t0.010000\t40\t90\tSF\tT\tF\t0\tDd\t1\t68\t1\t"
        "118\t(empty)"), "tsv",
        _zeek("conn", "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration orig_bytes resp_bytes "
              "conn_state local_orig local_resp missed_bytes history orig_pkts orig_ip_bytes resp_pkts resp_ip_bytes "
              "tunnel_parents", "time string addr port addr port enum string interval count count string bool bool "
              "count string count count count count set[string]"), "\t", b"#"),
    Sample("zeek_dns", (
        "1795162502.250000\tCMdzit1AMNsmfAIiQc\t10.30.1.20\t36844\t10.40.0.53\t53\tudp\t10185\t0.000527\t"
        "update.crane-vendor.example\t1\tC_INTERNET\t1\tA\t0\tNOERROR\tF\tF\tT\tT\t0\t"
        "cdn.crane-vendor.example,198.51.100.7\t300.000000,60.000000\tF",), "tsv",
        _zeek("dns", "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto trans_id rtt query qclass qclass_name qtype "
              "qtype_name rcode rcode_name AA TC RD RA Z answers TTLs rejected", "time string addr port addr port enum "
              "count interval string count string count string count string bool bool bool bool count vector[string] "
              "vector[interval] bool"), "\t", b"#"),
    Sample("zeek_modbus", ("1795162503.250000\tCHh2\t10.30.5.20\t47786\t10.40.1.10\t502\tREAD_COILS\t-",
                           "1795162504.250000\tCHh2\t10.30.5.20\t47786\t10.40.1.10\t502\tWRITE_SINGLE_REGISTER\t-"),
           "tsv", _zeek("modbus", "ts uid id.orig_h id.orig_p id.resp_h id.resp_p func exception",
                        "time string addr port addr port string string"), "\t", b"#"),
    Sample("zeek_modbus", _j(
        {"ts": 1795162502.25, "uid": "CHh1", "id.orig_h": "10.30.5.20", "id.orig_p": 47785, "id.resp_h": "10.40.1.10",
         "id.resp_p": 502, "func": "WRITE_SINGLE_REGISTER", "exception": None},
        {"ts": "2026-11-20T08:15:03.250000Z", "uid": "CHh1", "id.orig_h": "10.30.5.20", "id.orig_p": 47785,
         "id.resp_h": "10.40.1.10", "id.resp_p": 502, "func": "READ_COILS"}), "json", comment=b"#", label="json"),
    Sample("zeek_conn", _j(
        {"ts": 1795162502.25, "uid": "Cx1", "id.orig_h": "10.30.5.20", "id.orig_p": 49152, "id.resp_h": "10.40.1.10",
         "id.resp_p": 502, "proto": "tcp", "service": "modbus", "duration": 1.5, "orig_bytes": 120, "resp_bytes": 80,
         "conn_state": "SF", "local_orig": True, "history": "ShADadFf", "orig_pkts": 6, "resp_pkts": 4,
         "tunnel_parents": []},), "json", comment=b"#", label="json"),
    Sample("zeek_s7comm", (
        "1454969289.930413\tCHhAvVGS1DHFjwGM9\t134.217.61.131\t51212\t134.217.61.211\t102\tT\t134.217.61.131\t51212\t"
        "134.217.61.211\t102\t1\tJob-Request\t0\t0xf0\tSetup Communication\t-\t-\t-\t-",), "tsv",
        _zeek("s7comm", "ts uid id.orig_h id.orig_p id.resp_h id.resp_p is_orig source_h source_p destination_h "
              "destination_p rosctr_code rosctr_name pdu_reference function_code function_name subfunction_code "
              "subfunction_name error_class error_code", "time string addr port addr port bool addr port addr port "
              "count string count string string string string string string"), "\t", b"#"),
    Sample("zeek_dnp3", (
        "1763248801.000000\tCd1\t10.30.1.77\t50001\t10.30.1.10\t20000\tDIRECT_OPERATE\tRESPONSE\t0",
        "1763248802.000000\tCd1\t10.30.1.77\t50001\t10.30.1.10\t20000\tCOLD_RESTART\tRESPONSE\t0"), "tsv",
        _zeek("dnp3", "ts uid id.orig_h id.orig_p id.resp_h id.resp_p fc_request fc_reply iin",
              "time string addr port addr port string string count"), "\t", b"#"),
    Sample("zeek_cip", (
        "1795162502.000100\tCHhAvVGS1DHFjwGM9\t10.40.0.20\t3033\t10.30.2.10\t44818\tT\t1929\trequest\t0x0a\t"
        "Multiple Service Packet\t-\t-\t-\t-\t0x02\tMessage Router\t0x01\t-",), "tsv",
        _zeek("cip", "ts uid id.orig_h id.orig_p id.resp_h id.resp_p is_orig cip_sequence_count direction "
              "cip_service_code cip_service cip_status_code cip_status cip_extended_status_code cip_extended_status "
              "class_id class_name instance_id attribute_id", "time string addr port addr port bool count string "
              "string string string string string string string string string string"), "\t", b"#"),
    Sample("suricata_eve", _j(
        {"timestamp": "2026-11-20T09:16:02.500123+0100", "flow_id": 1204543001234567, "event_type": "flow",
         "src_ip": "10.40.0.20", "src_port": 50100, "dest_ip": "10.30.1.10", "dest_port": 502, "proto": "TCP",
         "app_proto": "modbus", "flow": {"pkts_toserver": 12, "pkts_toclient": 10, "bytes_toserver": 1024,
                                         "bytes_toclient": 980, "start": "2026-11-20T09:15:02.000100+0100",
                                         "end": "2026-11-20T09:16:02.500100+0100", "age": 60, "state": "closed"}},
        {"timestamp": "2026-11-20T08:20:00.000000+0000", "flow_id": 99, "event_type": "netflow", "src_ip": "10.40.0.5",
         "src_port": 53000, "dest_ip": "10.40.0.1", "dest_port": 53, "proto": "UDP",
         "netflow": {"pkts": 1, "bytes": 74, "start": "2026-11-20T08:20:00.000000+0000",
                     "end": "2026-11-20T08:20:00.000000+0000", "age": 0}}), "json"),
    Sample("nfdump_csv", (_nfdump_row("10.40.0.20", "10.30.1.10", 50100, 502),
                          _nfdump_row("2001:db8::5", "2001:db8::1", 53000, 53)), "csv", (NFDUMP_HEADER,),
           timezone="Europe/Amsterdam"),
    Sample("nfdump_json", _j(
        {"type": "FLOW", "export_sysid": 1, "first": "2026-11-20T09:15:02.250", "last": "2026-11-20T09:16:02.750",
         "received": "2026-11-20T09:16:10.000", "in_packets": 12, "in_bytes": 1024, "out_packets": 10,
         "out_bytes": 980, "proto": 6, "tcp_flags": "...AP.SF", "src_port": 50100, "dst_port": 502,
         "src4_addr": "10.40.0.20", "dst4_addr": "10.30.1.10", "ip4_router": "10.40.0.1"},), "json",
           timezone="Europe/Amsterdam"),
    Sample("cms_events", _j(
        {"time": "2026-11-20T08:15:02.123Z", "crane_id": "STS-03", "controller": "sts03-plc",
         "event_type": "parameter_change", "user": "eng.lopez", "source_ip": "10.30.5.20",
         "parameter": "hoist.max_speed", "old_value": 1.5, "new_value": "1.6", "result": "success"},
        {"time": 1795162502, "crane_id": "STS-01", "event_type": "login", "user": "op1"}), "json"),
    Sample("cms_csv", ("2026-11-20T08:15:02.123Z,STS-03,sts03-plc,parameter_change,eng.lopez,10.30.5.20,"
                       "hoist.max_speed,1.5,1.6,success,",
                       "1795162502,STS-01,,login,op1,,,,,,hello"), "csv",
           ("time,crane_id,controller,event_type,user,source_ip,parameter,old_value,new_value,result,message",)),
    Sample("fortigate_vpn", (
        'date=2026-11-20 time=08:15:02 devname="fw-port-01" devid="FG100FTK19000001" eventtime=1795162502123456789 '
        'tz="+0000" logid="0101039424" type="event" subtype="vpn" level="information" vd="root" '
        'logdesc="SSL VPN tunnel up" action="tunnel-up" tunneltype="ssl-tunnel" tunnelid=1204543001 '
        'remip=203.0.113.45 tunnelip=10.212.134.200 user="zpmc-svc1" group="vendor-maint" dst_host="N/A" '
        'reason="tunnel established" msg="SSL tunnel established"',
        'date=2026-11-20 time=08:45:02 devname="fw-port-01" eventtime=1795164302 tz="+0000" logid="0101039949" '
        'type="event" subtype="vpn" level="information" vd="root" action="tunnel-stats" tunneltype="ssl-tunnel" '
        'tunnelid=1204543001 remip=203.0.113.45 user="zpmc-svc1" sentbyte=1024 rcvdbyte=2048 duration=1800'), "text"),
    Sample("openvpn_status", (
        "CLIENT_LIST,a,203.0.113.45:1,10.8.0.2,,1,2,2026-11-20 09:15:02,1795162502,UNDEF,1,0,AES-256-GCM",
        "CLIENT_LIST,b,203.0.113.46:1,10.8.0.3,,1,2,2026-11-20 09:15:02,1795162502,UNDEF,2,1,AES-256-GCM"), "csv",
           ("TITLE,OpenVPN 2.6.3", "TIME,2026-11-20 09:30:00,1795163400",
            "HEADER,CLIENT_LIST,Common Name,Real Address,Virtual Address,Virtual IPv6 Address,Bytes Received,"
            "Bytes Sent,Connected Since,Connected Since (time_t),Username,Client ID,Peer ID,Data Channel Cipher"),
           timezone="Europe/Amsterdam"),
    Sample("openvpn_log", (
        "2026-11-20 09:15:02 203.0.113.45:51234 [zpmc-svc1] Peer Connection Initiated with [AF_INET]203.0.113.45:51234",
        "2026-11-20 10:42:10 zpmc-svc1/203.0.113.45:51234 SIGTERM[soft,remote-exit] received, client-instance exiting"),
           "text", timezone="Europe/Amsterdam"),
    Sample("globalprotect", (
        '<14>Nov 20 09:15:03 PA-3220-T3 1,2026/11/20 09:15:03,013201001234,GLOBALPROTECT,0,2561,2026/11/20 09:15:02,'
        'vsys1,gateway-connected,tunnel,,IPSec,zpmc-svc1,CN,VENDOR-LT07,203.0.113.45,::,10.212.134.200,::,'
        '8a7f0c1e-2b3d-4e5f-9a8b-7c6d5e4f3a2b,PF1X2Y3Z,6.1.4-16,Microsoft,"Microsoft Windows 10 Pro , 64-bit",1,,,'
        'Tunnel is up,success,,0,on-demand,0,gp-portal,7254329864322,0x8000000000000000,2026-11-20T09:15:02.345+01:00,'
        'preferred,25,1,gw-ams:25,gw-ams,0,0,0,0,,PA-3220-T3,1',), "csv", timezone="Europe/Amsterdam"),
    Sample("remote_access_jsonl", _j(
        {"time": "2026-11-20T08:15:02Z", "action": "session.start", "user": "zpmc-svc1", "vendor": "zpmc",
         "src_ip": "203.0.113.45", "src_port": 51234, "dst_ip": "10.30.1.20", "dst_port": 3389, "service": "rdp",
         "proto": "tcp", "target": "sts01-hmi", "session_id": "pam-7781", "result": "success",
         "attrs": {"ticket": "CHG-1042", "recorded": True}, "broker": "pam-01"},
        {"time": 1795167730123, "action": "session.end", "user": "zpmc-svc1", "session_id": "pam-7781",
         "bytes_in": 1000, "bytes_out": 2000, "duration": 12.5}), "json"),
    Sample("windows_security", _j(
        {"@timestamp": "2026-11-20T08:15:02.123Z", "event": {"code": "4624", "outcome": "success"},
         "host": {"name": "jump01"}, "winlog": {"channel": "Security", "computer_name": "JUMP01.port.local",
                                                "event_id": "4624", "record_id": 918273,
                                                "event_data": {"TargetUserName": "zpmc-svc1", "TargetDomainName": "PORT",
                                                               "TargetLogonId": "0x8a1f2c", "LogonType": "10",
                                                               "IpAddress": "10.212.134.200", "IpPort": "0"}}},
        {"EventID": 4779, "TimeCreated": "2026-11-20T09:30:00Z", "Computer": "JUMP01.port.local",
         "TargetUserName": "zpmc-svc1", "ClientAddress": "10.212.134.200", "SessionName": "RDP-Tcp#3"}), "json"),
    Sample("csv_mapped", ("20/11/2026 09:15:02,j.devries,STS-01 E-house,granted,10.40.9.11,\"night shift, crane 1\"",
                          "20/11/2026 09:16:00,unknown,STS-01 E-house,denied,10.40.9.11,"), "csv",
           ("when,badge_user,door,outcome,reader_ip,note",),
           mapping={"kind": "auth", "time_format": "%d/%m/%Y %H:%M:%S",
                    "fields": {"when": "time", "badge_user": "user", "door": "target", "outcome": "result",
                               "reader_ip": "dst_ip", "note": "attrs.note"}, "constants": {"action": "badge.access"}},
           timezone="Europe/Amsterdam"),
    Sample("jsonl_mapped", _j(
        {"ts": "2026-11-20T09:15:02+01:00", "event": "vpn.login", "account": {"name": "zpmc-svc1"},
         "client": {"ip": "203.0.113.45", "port": 51234}, "sid": 77, "extra": {"deep": [1, 2]}},
        {"ts": 1795167730, "event": "vpn.logout", "account": {"name": "zpmc-svc1"}, "client": {"ip": "203.0.113.45"},
         "sid": 77}), "json",
           mapping={"kind": "remote_access", "fields": {"ts": "time", "event": "action", "account.name": "user",
                                                        "client.ip": "src_ip", "client.port": "src_port",
                                                        "sid": "session_id"}}),
]}
PARQUET_MAPPING = {"kind": "flow", "fields": {"start": "time", "src": "src_ip", "dst": "dst_ip", "dport": "dst_port",
                                              "bytes": "bytes_out", "proto": "proto", "meta.site": "attrs.site"}}


def test_every_format_has_a_sample() -> None:
    assert {s.fmt for s in SAMPLES.values()} | {"parquet"} == set(PARSERS)


# --- mutations: each takes a valid record line and a Random, returns the line's bytes --------

SPACES = ["\u00a0", "\u3000", "\u2003", " \u00a0 ", "\u3000\u3000", "\u00a0\t"]
HUGE = ["1" + "0" * 30, "9" * 25, "-" + "9" * 22, "18446744073709551616", "9" * 5000]
ODD = ["NaN", "Infinity", "-Infinity", "nan", "inf", "-inf", "1e999", "", "-", "(empty)", "T", "x" * 40, "0x1f",
       "\\ud800", "\u00e9", "true", "[]", "{}", "null"]
JSON_VALUES: list[Callable[[random.Random], str]] = [
    lambda r: "[" * r.choice([10, 1100, 3000]) + "1",  # unclosed deep nesting
    lambda r: "[" * (n := r.choice([600, 1100, 5000])) + "]" * n,
    lambda r: '{"a":' * (n := r.choice([600, 1100, 5000])) + "1" + "}" * n,
    lambda r: r.choice(HUGE), lambda r: r.choice(["NaN", "Infinity", "-Infinity", "1e999", "-0"]),
    lambda r: '"x\\ud800y"', lambda r: '"\\udfff"', lambda r: '"\\ud83d\\ude00"',  # lone, lone, a valid pair
    lambda r: r.choice(['["login"]', '{"a":1}', "true", "false", "null", "0", "-1", "1.5", '""', '"x"']),
    lambda r: '"' + "a" * r.choice([1000, 100_000]) + '"',
]


def _insert(line: bytes, r: random.Random, what: bytes) -> bytes:
    at = r.randint(0, len(line))
    return line[:at] + what + line[at:]


def _fields(sample: Sample, line: str, r: random.Random) -> str:
    """Type swaps, huge numbers, NaN/inf, nesting, dropped and duplicated columns."""
    if sample.style == "json":
        try:
            obj = json.loads(line)
        except ValueError:
            return line
        keys = list(obj)
        key = r.choice(keys)
        op = r.randrange(4)
        if op == 0:  # drop a key
            del obj[key]
            return json.dumps(obj)
        text = json.dumps({k: v for k, v in obj.items() if k != key})
        value = r.choice(JSON_VALUES)(r)
        if op == 1:  # duplicate a key (the last one wins in JSON parsers)
            return text[:-1] + f', "{key}": {value}, "{key}": {json.dumps(obj[key])}}}' if len(obj) > 1 else text
        return (text[:-1] + ", " if len(obj) > 1 else "{") + f'"{key}": {value}}}'
    sep = sample.sep if sample.style != "text" else " "
    parts = line.split(sep)
    i = r.randrange(len(parts))
    op = r.randrange(4)
    if op == 0 and len(parts) > 1:
        del parts[i]
    elif op == 1:
        parts.insert(i, parts[i])
    else:
        parts[i] = r.choice(HUGE + ODD + ["[" * 2000, "{" * 2000])
    return sep.join(parts)


MUTATIONS: dict[str, Callable[[Sample, str, random.Random], bytes]] = {
    "truncate": lambda s, line, r: line.encode()[: r.randint(0, len(line.encode()))],
    "garbage": lambda s, line, r: _insert(line.encode(), r, bytes(r.randrange(256) for _ in range(r.randint(1, 12))
                                                                  ).replace(b"\n", b"\x01")),
    "invalid_utf8": lambda s, line, r: _insert(line.encode(), r, r.choice([b"\xff", b"\xc3(", b"\xed\xa0\x80", b"\x80\x80",
                                                                          b"\xf4\x90\x80\x80"])),
    "lone_surrogate": lambda s, line, r: (line.replace('":"', '":"\\ud800', 1) if s.style == "json" and '":"' in line
                                          else _insert(line.encode(), r, b"\\ud800").decode()).encode(),
    "fields": lambda s, line, r: _fields(s, line, r).encode(),
    "unicode_spaces": lambda s, line, r: (r.choice(SPACES) * r.randint(1, 3)).encode(),
    "cr_nul_bom": lambda s, line, r: _insert(line.encode(), r, r.choice([b"\r", b"\x00", b"\xef\xbb\xbf", b"\r\r",
                                                                        b"\x00" * 3])),
    "long_line": lambda s, line, r: (line[:-1] + ', "pad":"' + "p" * (n := r.choice([5000, 100_000])) + '"}'
                                     if s.style == "json" else line + "p" * r.choice([5000, 100_000])).encode(),
    "blank_or_comment": lambda s, line, r: r.choice([b"", b"   ", b"\t", s.comment + b" comment"]),
}


def mutated_file(sample: Sample, r: random.Random, records: int, rate: float) -> bytes:
    """The sample's head, then ``records`` record lines, each mutated with probability
    ``rate``; sometimes with a BOM, CRLF endings or no final newline."""
    lines = [h.encode() for h in sample.head]
    for _ in range(records):
        line = r.choice(sample.records)
        if r.random() < rate:
            kind = r.choice(list(MUTATIONS))
            line_b = MUTATIONS[kind](sample, line, r)
        else:
            line_b = line.encode()
        lines.append(line_b.replace(b"\n", b" "))
    eol = b"\r\n" if r.random() < 0.2 else b"\n"
    data = eol.join(lines) + (eol if r.random() < 0.8 else b"")
    if r.random() < 0.1:
        data = b"\xef\xbb\xbf" + data
    return data


def record_lines(sample: Sample, data: bytes) -> list[int]:
    """Line numbers of the records in ``data``, by the format's rule: lines after the
    head that are not blank (ASCII whitespace) and not comments, as the reader splits them."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for n, line in enumerate(lines, 1):
        if line.endswith(b"\r"):
            line = line[:-1]
        if n > len(sample.head) and line.strip() and not line.startswith(sample.comment):
            out.append(n)
    return out


@dataclass
class Outcome:
    counts: Counts
    cited: list[int] = field(default_factory=list)  # line of every event and dead letter
    reasons: list[str] = field(default_factory=list)


def run_parse(sample_fmt: str, path: Path, mapping: dict | None, timezone: str = "UTC") -> Outcome:
    """The pipeline's per-file parse (what the Beam DoFn runs), collected."""
    m = SourceMapping.model_validate(mapping).model_dump_json() if mapping else None
    out = Outcome(Counts())
    for item in parse_file(InputFile("fuzz", sample_fmt, str(path), timezone, m)):
        if isinstance(item, pa.Table):
            out.cited += [int(ref.rsplit(":", 1)[1]) for ref in item.column("raw_ref").to_pylist()]
        elif item[0] == "dead":
            out.cited.append(int(item[1].location.rsplit(":", 1)[1]))
            out.reasons.append(item[1].reason)
        else:
            out.counts = item[1][1]
    return out


def check_file(sample: Sample, data: bytes, path: Path) -> Outcome:
    """The exact per-file property: every record line read, and cited exactly once."""
    path.write_bytes(data)
    expected = record_lines(sample, data)
    out = run_parse(sample.fmt, path, sample.mapping, sample.timezone)
    c = out.counts
    assert c.files == 1
    assert c.read == len(expected), (c, len(expected))
    assert c.parsed + c.dead_lettered == c.read
    assert sorted(out.cited) == expected
    return out


FAST = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_clean_samples_parse_without_dead_letters(fmt: str, tmp_path: Path) -> None:
    sample = SAMPLES[fmt]
    out = check_file(sample, mutated_file(sample, random.Random(1), 20, 0.0), tmp_path / "clean.log")
    assert out.counts.dead_lettered == 0, out.reasons[:3]


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
@FAST
@given(r=st.randoms(use_true_random=False), records=st.integers(1, 30), rate=st.sampled_from([0.3, 1.0]))
def test_mutated_records_are_each_parsed_or_dead_lettered_once(fmt: str, tmp_path: Path, r: random.Random,
                                                               records: int, rate: float) -> None:
    sample = SAMPLES[fmt]
    check_file(sample, mutated_file(sample, r, records, rate), tmp_path / "mutated.log")


@pytest.mark.parametrize("kind", sorted(MUTATIONS))
def test_each_mutation_on_every_format(kind: str, tmp_path: Path) -> None:
    """Every mutation reaches every format at least once, whatever Hypothesis draws."""
    r = random.Random(kind)
    for fmt, sample in SAMPLES.items():
        lines = [h.encode() for h in sample.head] + [MUTATIONS[kind](sample, rec, r) for rec in sample.records * 3]
        check_file(sample, b"\n".join(lines) + b"\n", tmp_path / f"{fmt.replace('/', '-')}.log")


# --- Parquet: rows, not lines ----------------------------------------------------------------

PARQUET_COLUMNS: dict[str, Callable[[int], pa.Array]] = {
    "start": lambda n: pa.array([1795162502_000 + i for i in range(n)], pa.timestamp("ms")),
    "src": lambda n: pa.array(["10.40.0.20"] * n),
    "dst": lambda n: pa.array(["10.30.1.10"] * n),
    "dport": lambda n: pa.array([502] * n, pa.int64()),
    "bytes": lambda n: pa.array([1024] * n, pa.int64()),
    "proto": lambda n: pa.array(["tcp"] * n),
    "meta": lambda n: pa.array([{"site": "T3"}] * n),
}
PARQUET_SWAPS: list[Callable[[int, random.Random], pa.Array]] = [
    lambda n, r: pa.array([{"a": {"b": i}} for i in range(n)]),  # a struct where a value is expected
    lambda n, r: pa.array([[1, 2]] * n),  # a list
    lambda n, r: pa.array([2**64 - 1 - i for i in range(n)], pa.uint64()),  # past int64
    lambda n, r: pa.array([r.choice([float("nan"), float("inf"), -float("inf"), 1e300]) for _ in range(n)]),
    lambda n, r: pa.array([r.choice([None, "x", "\u00a0", "\u3000", "9" * 40, "\x00"]) for _ in range(n)]),
    lambda n, r: pa.array([b"\xff\xfe" * (i % 3) for i in range(n)], pa.binary()),
    lambda n, r: pa.nulls(n),
    lambda n, r: pa.array([r.choice([True, False]) for _ in range(n)]),
    lambda n, r: pa.array([-(2**63)] * n, pa.int64()),
    lambda n, r: pa.array([{"site": {"deep": [1]}}] * n),
]


def parquet_file(path: Path, r: random.Random, rows: int) -> None:
    cols = {name: make(rows) for name, make in PARQUET_COLUMNS.items()}
    for name in r.sample(sorted(cols), r.randint(0, 3)):
        if r.random() < 0.2:
            del cols[name]
        else:
            cols[name] = r.choice(PARQUET_SWAPS)(rows, r)
    pq.write_table(pa.table(cols), path, row_group_size=max(1, rows // r.randint(1, 4)))


def check_parquet(path: Path, rows: int) -> Outcome:
    out = run_parse("parquet", path, PARQUET_MAPPING)
    assert out.counts.read == rows
    assert out.counts.parsed + out.counts.dead_lettered == rows
    assert sorted(out.cited) == list(range(1, rows + 1))
    return out


@FAST
@given(r=st.randoms(use_true_random=False), rows=st.integers(1, 40))
def test_parquet_type_swaps_are_dead_lettered_by_row(tmp_path: Path, r: random.Random, rows: int) -> None:
    path = tmp_path / "fuzz.parquet"
    parquet_file(path, r, rows)
    check_parquet(path, rows)
