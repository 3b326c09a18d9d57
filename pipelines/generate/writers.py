"""One writer per real log format, byte-deterministic for the same input.

The bulk formats (Zeek conn and Modbus logs) are formatted a column at a time with Arrow
string kernels and written as one buffer, never line by line in Python: that is what keeps
a million records to seconds. Gzip headers carry no mtime or file name, so the same seed
gives byte-identical archives.
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.generate.columns import Columns
from pipelines.generate.terminal import HOUR_US, US, Terminal

CONN_FIELDS = ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service",
               "duration", "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp",
               "missed_bytes", "history", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes",
               "tunnel_parents")
CONN_TYPES = ("time", "string", "addr", "port", "addr", "port", "enum", "string", "interval", "count",
              "count", "string", "bool", "bool", "count", "string", "count", "count", "count", "count",
              "set[string]")
MODBUS_FIELDS = ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "tid", "unit", "func",
                 "pdu_type", "exception")
MODBUS_TYPES = ("time", "string", "addr", "port", "addr", "port", "count", "count", "string", "string",
                "string")
DETAILED_FIELDS = ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "tid", "unit", "func",
                   "address", "quantity", "request_values", "response_values", "modbus_detailed_link_id",
                   "matched", "request_subfunction_code", "response_subfunction_code", "request_data",
                   "response_data", "exception_code", "mei_type")
DETAILED_TYPES = ("time", "string", "addr", "port", "addr", "port", "count", "count", "string", "count",
                  "count", "vector[count]", "vector[count]", "string", "bool", "string", "string", "string",
                  "string", "string", "string")

DNS_FIELDS = ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "trans_id", "rtt",
              "query", "qclass", "qclass_name", "qtype", "qtype_name", "rcode", "rcode_name", "AA", "TC",
              "RD", "RA", "Z", "answers", "TTLs", "rejected")
DNS_TYPES = ("time", "string", "addr", "port", "addr", "port", "enum", "count", "interval", "string", "count",
             "string", "count", "string", "count", "string", "bool", "bool", "bool", "bool", "count",
             "vector[string]", "vector[interval]", "bool")

_LOCAL = r"^(10\.|192\.168\.|172\.(1[6-9]|2[0-9]|3[01])\.)"  # Zeek Site::local_nets


# --- Arrow formatting helpers ------------------------------------------------------------------


def _time(us: np.ndarray) -> pa.Array:
    """Epoch microseconds → ``1794873600.123456`` (Zeek ``time``, 6 decimals, exact)."""
    secs = pa.array(us // US).cast(pa.string())
    frac = pc.utf8_lpad(pa.array(us % US).cast(pa.string()), 6, "0")
    return pc.binary_join_element_wise(secs, frac, ".")


def _interval(us: np.ndarray) -> pa.Array:
    """Durations in microseconds; negative means unset (``-``)."""
    return pc.if_else(pa.array(us < 0), "-", _time(np.maximum(us, 0)))


def _int(a: np.ndarray) -> pa.Array:
    return pa.array(a, pa.int64()).cast(pa.string())


def _str(a: np.ndarray) -> pa.Array:
    return pa.array(a, pa.string())


def _const(text: str, n: int) -> pa.Array:
    return pa.array(np.full(n, text), pa.string())


def _local(addr: pa.Array) -> pa.Array:
    return pc.if_else(pc.match_substring_regex(addr, _LOCAL), "T", "F")


def _lines(cols: list[pa.Array]) -> tuple[bytes, np.ndarray]:
    """Tab-joined, newline-terminated lines as one buffer, plus each line's end offset."""
    line = pc.binary_join_element_wise(*cols, "\t")
    line = pc.binary_join_element_wise(line, "", "\n")
    if isinstance(line, pa.ChunkedArray):
        line = line.combine_chunks()
    _, offsets_buf, data = line.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[line.offset: line.offset + len(line) + 1]
    base = int(offsets[0])
    body = data.slice(base, int(offsets[-1]) - base).to_pybytes()
    return body, (offsets - base).astype(np.int64)


def _stamp(us: int) -> str:
    return dt.datetime.fromtimestamp(us // US, dt.timezone.utc).strftime("%Y-%m-%d-%H-%M-%S")


def zeek_header(path: str, fields: Iterable[str], types: Iterable[str], opened: int) -> bytes:
    return (
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
        f"#path\t{path}\n#open\t{_stamp(opened)}\n"
        f"#fields\t{chr(9).join(fields)}\n#types\t{chr(9).join(types)}\n"
    ).encode()


def _close(closed: int) -> bytes:
    return f"#close\t{_stamp(closed)}\n".encode()


def _sorted(cols: Columns) -> Columns:
    order = np.argsort(cols["ts"], kind="stable")
    return {k: v[order] for k, v in cols.items()}


def _write(path: str, data: bytes, compress: bool) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(gzip.compress(data, compresslevel=1, mtime=0) if compress else data)


# --- Zeek -------------------------------------------------------------------------------------


def _conn_lines(c: Columns) -> bytes:
    n = len(c["ts"])
    orig, resp = _str(c["orig_h"]), _str(c["resp_h"])
    body, _ = _lines([
        _time(c["ts"]), _str(c["uid"]), orig, _int(c["orig_p"]), resp, _int(c["resp_p"]),
        _str(c["proto"]), _str(c["service"]), _interval(c["duration"]), _int(c["orig_bytes"]),
        _int(c["resp_bytes"]), _str(c["conn_state"]), _local(orig), _local(resp), _const("0", n),
        _str(c["history"]), _int(c["orig_pkts"]), _int(c["orig_ip_bytes"]), _int(c["resp_pkts"]),
        _int(c["resp_ip_bytes"]), _const("-", n),
    ])
    return body


def write_conn(out_dir: str, cols: Columns, start: int, end: int) -> dict[str, int]:
    """Hourly rotated ``conn.<YYYY-MM-DD-HH-00-00>.log.gz`` archives plus the current hour
    as plain ``conn.log``, which (like a live Zeek's current file) has no ``#close`` yet.

    Each hour is formatted and compressed on its own (two threads: Arrow kernels and zlib
    release the GIL), which also bounds memory to an hour of text at a time."""
    c = _sorted(cols)
    n = len(c["ts"])
    hours = (end - start + HOUR_US - 1) // HOUR_US
    bounds = np.searchsorted(c["ts"], start + np.arange(hours + 1) * HOUR_US)
    bounds[-1] = n
    counts: dict[str, int] = {}
    jobs: list[tuple[int, int, int]] = []
    for h in range(hours):
        lo, hi = int(bounds[h]), int(bounds[h + 1])
        if hi > lo:
            jobs.append((h, lo, hi))

    def one(job: tuple[int, int, int]) -> tuple[str, int]:
        h, lo, hi = job
        opened = start + h * HOUR_US
        current = h == hours - 1
        name = "conn.log" if current else f"conn.{_stamp(opened)}.log.gz"
        data = zeek_header("conn", CONN_FIELDS, CONN_TYPES, opened)
        data += _conn_lines({k: v[lo:hi] for k, v in c.items()})
        if not current:
            data += _close(opened + HOUR_US)
        _write(os.path.join(out_dir, "zeek", name), data, not current)
        return f"zeek/{name}", hi - lo

    with ThreadPoolExecutor(max_workers=2) as pool:
        for name, k in pool.map(one, jobs):
            counts[name] = k
    return counts


def write_dns(out_dir: str, cols: Columns, start: int, end: int) -> dict[str, int]:
    """``dns.log``: one row per lookup, the answer with a 300 s TTL (``-`` for NXDOMAIN)."""
    if not cols:
        return {}
    c = _sorted(cols)
    n = len(c["ts"])
    answered = pa.array(c["answers"] != "-")
    body, _ = _lines([
        _time(c["ts"]), _str(c["uid"]), _str(c["orig_h"]), _int(c["orig_p"]), _str(c["resp_h"]),
        _int(c["resp_p"]), _str(c["proto"]), _int(c["trans_id"]), _time(c["rtt"]), _str(c["query"]),
        _const("1", n), _const("C_INTERNET", n), _str(np.where(c["qtype"] == "A", "1", "28")), _str(c["qtype"]),
        _str(np.where(c["rcode"] == "NOERROR", "0", "3")), _str(c["rcode"]), _const("F", n), _const("F", n),
        _const("T", n), _const("T", n), _const("0", n), _str(c["answers"]),
        pc.if_else(answered, "300.000000", "-"), _const("F", n),
    ])
    _write(os.path.join(out_dir, "zeek", "dns.log"),
           zeek_header("dns", DNS_FIELDS, DNS_TYPES, start) + body + _close(end), False)
    return {"zeek/dns.log": n}


def write_modbus(out_dir: str, cols: Columns, start: int, end: int) -> dict[str, int]:
    """``modbus.log`` (a REQ and a RESP row per transaction) and ICSNPP
    ``modbus_detailed.log`` (one matched row per transaction)."""
    t = _sorted(cols)
    n = len(t["ts"])
    ids = [_str(t["uid"]), _str(t["orig_h"]), _int(t["orig_p"]), _str(t["resp_h"]), _int(t["resp_p"]),
           _int(t["tid"]), _int(t["unit"]), _str(t["func"])]
    detailed, _ = _lines([_time(t["ts"]), *ids, _int(t["address"]), _int(t["quantity"]),
                          _str(t["request_values"]), _str(t["response_values"]), _const("-", n),
                          _const("T", n), *[_const("-", n)] * 6])
    # modbus.log: requests at ts, responses one round trip later, merged in time order.
    ts2 = np.concatenate([t["ts"], t["ts"] + t["rtt"]])
    order = np.argsort(ts2, kind="stable")
    both = [pa.concat_arrays([a, a]).take(pa.array(order)) for a in ids]
    pdu = pa.concat_arrays([_const("REQ", n), _const("RESP", n)]).take(pa.array(order))
    basic, _ = _lines([_time(ts2[order]), *both, pdu, _const("-", 2 * n)])
    close = _close(end)
    _write(os.path.join(out_dir, "zeek", "modbus.log"),
           zeek_header("modbus", MODBUS_FIELDS, MODBUS_TYPES, start) + basic + close, False)
    _write(os.path.join(out_dir, "zeek", "modbus_detailed.log"),
           zeek_header("modbus_detailed", DETAILED_FIELDS, DETAILED_TYPES, start) + detailed + close, False)
    return {"zeek/modbus.log": 2 * n, "zeek/modbus_detailed.log": n}


# --- CMS JSON lines ---------------------------------------------------------------------------

_CMS_KEYS = ("crane_id", "controller", "event_type", "user", "source_ip", "parameter", "old_value",
             "new_value", "result", "message")


def _iso_ms(us: int) -> str:
    t = dt.datetime.fromtimestamp(us // US, dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{(us % US) // 1000:03d}Z"


def write_cms(out_dir: str, records: list[dict[str, Any]]) -> dict[str, int]:
    """``cms/cms-events.jsonl`` per docs/formats/cms-events.md, keys in the documented order
    (extras such as ``alarm_code`` last, which the parser keeps in ``attrs``)."""
    order = sorted(range(len(records)), key=lambda i: records[i]["ts"])
    lines = []
    for i in order:
        r = records[i]
        obj: dict[str, Any] = {"time": _iso_ms(r["ts"])}
        obj.update((k, r[k]) for k in _CMS_KEYS if k in r)
        obj.update((k, v) for k, v in r.items() if k not in obj and k != "ts")
        lines.append(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
    _write(os.path.join(out_dir, "cms", "cms-events.jsonl"), "".join(line + "\n" for line in lines).encode(), False)
    return {"cms/cms-events.jsonl": len(lines)}


# --- FortiGate --------------------------------------------------------------------------------

_VPN = {
    "tunnel-up": ("0101039424", "information", "SSL VPN tunnel up", "ssl-tunnel"),
    "tunnel-down": ("0101039425", "information", "SSL VPN tunnel down", "ssl-tunnel"),
    "ssl-login-fail": ("0101039426", "alert", "SSL VPN login fail", "ssl-web"),
}


def fortigate_line(r: dict[str, Any], term: Terminal) -> str:
    """One FortiOS 7 SSL-VPN event log line (syslog key=value, no syslog header)."""
    logid, level, desc, tunneltype = _VPN[r["action"]]
    t = dt.datetime.fromtimestamp(r["ts"] // US, dt.timezone.utc)
    head = (f'date={t:%Y-%m-%d} time={t:%H:%M:%S} devname="{term.fw_name}" devid="{term.fw_serial}" '
            f'eventtime={r["ts"] * 1000} tz="+0000" logid="{logid}" type="event" subtype="vpn" '
            f'level="{level}" vd="root" logdesc="{desc}" action="{r["action"]}" tunneltype="{tunneltype}" '
            f'tunnelid={r["tunnelid"]} remip={r["remip"]} ')
    if r["action"] == "ssl-login-fail":
        return head + (f'user="{r["user"]}" group="N/A" dst_host="N/A" reason="{r["reason"]}" '
                       'msg="SSL user failed to logged in"')
    body = f'tunnelip={r["tunnelip"]} user="{r["user"]}" group="{r["group"]}" dst_host="N/A" '
    if r["action"] == "tunnel-up":
        return head + body + 'reason="tunnel established" msg="SSL tunnel established"'
    return head + body + (f'reason="N/A" duration={r["duration"]} sentbyte={r["sentbyte"]} '
                          f'rcvdbyte={r["rcvdbyte"]} msg="SSL tunnel shutdown"')


def write_fortigate(out_dir: str, records: list[dict[str, Any]], term: Terminal) -> dict[str, int]:
    order = sorted(range(len(records)), key=lambda i: records[i]["ts"])
    lines = [fortigate_line(records[i], term) for i in order]
    _write(os.path.join(out_dir, "fortigate", "fortigate.log"), "".join(line + "\n" for line in lines).encode(), False)
    return {"fortigate/fortigate.log": len(lines)}
