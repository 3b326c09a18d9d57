"""One writer per real log format, byte-deterministic for the same input.

The bulk formats (Zeek conn, Modbus and DNS logs) are formatted a column at a time with
Arrow string kernels, never line by line in Python: that is what keeps a million records to
seconds. Each file is streamed out a chunk of rows at a time (``CHUNK``), in time order, so
memory holds the compact columns plus one chunk of text, whatever the corpus size; the
bytes do not depend on the chunk size (deflate output does not depend on how its input is
split). Gzip headers carry no mtime or file name, so the same seed gives byte-identical
archives.
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.generate.columns import Columns, vocabulary
from pipelines.generate.terminal import HOUR_US, US, Terminal

#: Rows a writer formats at a time (two writer threads each hold one chunk of text).
CHUNK = 1 << 16

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


def _str(a: Any) -> pa.Array:
    """A string column of a chunk: vocabulary codes, ``S`` bytes, strings or Arrow strings."""
    if isinstance(a, pa.Array):
        return a
    a = np.asarray(a)
    if a.dtype.kind in "iu":
        return vocabulary().take(pa.array(a))
    if a.dtype.kind == "S":
        return pa.array(a).cast(pa.string())
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


def _take(cols: Columns, rows: np.ndarray) -> Columns:
    """The given rows of every column (numpy or Arrow)."""
    idx = pa.array(rows)
    return {k: v.take(idx) if isinstance(v, pa.Array) else v[rows] for k, v in cols.items()}


def _time_order(cols: Columns) -> np.ndarray:
    return np.argsort(cols["ts"], kind="stable")


def _write(path: str, data: bytes, compress: bool) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(gzip.compress(data, compresslevel=1, mtime=0) if compress else data)


class _Sink:
    """A file written a chunk at a time; ``compress``: gzip, the same bytes
    ``gzip.compress(data, compresslevel=1, mtime=0)`` gives for the whole text."""

    def __init__(self, path: str, compress: bool) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._fh = open(path, "wb")
        self._z = zlib.compressobj(1, zlib.DEFLATED, 31) if compress else None

    def write(self, data: bytes) -> None:
        self._fh.write(self._z.compress(data) if self._z else data)

    def __enter__(self) -> "_Sink":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._z:
            self._fh.write(self._z.flush())
        self._fh.close()


def _stream(sink: _Sink, cols: Columns, rows: np.ndarray, fmt: Callable[[Columns], list[pa.Array]]) -> None:
    """Format ``rows`` of ``cols`` (in that order) ``CHUNK`` rows at a time into ``sink``."""
    for lo in range(0, len(rows), CHUNK):
        sink.write(_lines(fmt(_take(cols, rows[lo: lo + CHUNK])))[0])


# --- Zeek -------------------------------------------------------------------------------------


def _conn_cols(c: Columns) -> list[pa.Array]:
    n = len(c["ts"])
    orig, resp = _str(c["orig_h"]), _str(c["resp_h"])
    return [
        _time(c["ts"]), _str(c["uid"]), orig, _int(c["orig_p"]), resp, _int(c["resp_p"]),
        _str(c["proto"]), _str(c["service"]), _interval(c["duration"]), _int(c["orig_bytes"]),
        _int(c["resp_bytes"]), _str(c["conn_state"]), _local(orig), _local(resp), _const("0", n),
        _str(c["history"]), _int(c["orig_pkts"]), _int(c["orig_ip_bytes"]), _int(c["resp_pkts"]),
        _int(c["resp_ip_bytes"]), _const("-", n),
    ]


def write_conn(out_dir: str, cols: Columns, start: int, end: int) -> dict[str, int]:
    """Hourly rotated ``conn.<YYYY-MM-DD-HH-00-00>.log.gz`` archives plus the current hour
    as plain ``conn.log``, which (like a live Zeek's current file) has no ``#close`` yet.

    Each hour is formatted and compressed on its own, a chunk at a time (two threads: Arrow
    kernels and zlib release the GIL)."""
    order = _time_order(cols)
    n = len(order)
    hours = (end - start + HOUR_US - 1) // HOUR_US
    # bounds[h]: rows before hour h starts (counted a chunk at a time, not from a sorted copy)
    edges = start + np.arange(hours + 1) * HOUR_US
    per_bin = np.zeros(hours + 2, np.int64)
    for lo in range(0, n, CHUNK):
        per_bin += np.bincount(np.searchsorted(edges, cols["ts"][lo: lo + CHUNK], side="right"), minlength=hours + 2)
    bounds = np.cumsum(per_bin)[: hours + 1]
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
        with _Sink(os.path.join(out_dir, "zeek", name), not current) as sink:
            sink.write(zeek_header("conn", CONN_FIELDS, CONN_TYPES, opened))
            _stream(sink, cols, order[lo:hi], _conn_cols)
            if not current:
                sink.write(_close(opened + HOUR_US))
        return f"zeek/{name}", hi - lo

    with ThreadPoolExecutor(max_workers=2) as pool:
        for name, k in pool.map(one, jobs):
            counts[name] = k
    return counts


def _dns_cols(c: Columns) -> list[pa.Array]:
    n = len(c["ts"])
    qtype, rcode, answers = _str(c["qtype"]), _str(c["rcode"]), _str(c["answers"])
    return [
        _time(c["ts"]), _str(c["uid"]), _str(c["orig_h"]), _int(c["orig_p"]), _str(c["resp_h"]),
        _int(c["resp_p"]), _str(c["proto"]), _int(c["trans_id"]), _time(c["rtt"]), _str(c["query"]),
        _const("1", n), _const("C_INTERNET", n), pc.if_else(pc.equal(qtype, "A"), "1", "28"), qtype,
        pc.if_else(pc.equal(rcode, "NOERROR"), "0", "3"), rcode, _const("F", n), _const("F", n),
        _const("T", n), _const("T", n), _const("0", n), answers,
        pc.if_else(pc.not_equal(answers, "-"), "300.000000", "-"), _const("F", n),
    ]


def write_dns(out_dir: str, cols: Columns, start: int, end: int) -> dict[str, int]:
    """``dns.log``: one row per lookup, the answer with a 300 s TTL (``-`` for NXDOMAIN)."""
    if not cols:
        return {}
    order = _time_order(cols)
    with _Sink(os.path.join(out_dir, "zeek", "dns.log"), False) as sink:
        sink.write(zeek_header("dns", DNS_FIELDS, DNS_TYPES, start))
        _stream(sink, cols, order, _dns_cols)
        sink.write(_close(end))
    return {"zeek/dns.log": len(order)}


def _ids(t: Columns) -> list[pa.Array]:
    return [_str(t["uid"]), _str(t["orig_h"]), _int(t["orig_p"]), _str(t["resp_h"]), _int(t["resp_p"]),
            _int(t["tid"]), _int(t["unit"]), _str(t["func"])]


def _detailed_cols(t: Columns) -> list[pa.Array]:
    n = len(t["ts"])
    return [_time(t["ts"]), *_ids(t), _int(t["address"]), _int(t["quantity"]), _str(t["request_values"]),
            _str(t["response_values"]), _const("-", n), _const("T", n), *[_const("-", n)] * 6]


def _basic_cols(t: Columns) -> list[pa.Array]:
    n = len(t["ts"])
    pdu = pc.if_else(pa.array(t["response"]), "RESP", "REQ")
    return [_time(t["ts"] + np.where(t["response"], t["rtt"], 0)), *_ids(t), pdu, _const("-", n)]


def write_modbus(out_dir: str, cols: Columns, start: int, end: int) -> dict[str, int]:
    """``modbus.log`` (a REQ and a RESP row per transaction) and ICSNPP
    ``modbus_detailed.log`` (one matched row per transaction)."""
    order = _time_order(cols)
    n = len(order)
    close = _close(end)
    with _Sink(os.path.join(out_dir, "zeek", "modbus_detailed.log"), False) as sink:
        sink.write(zeek_header("modbus_detailed", DETAILED_FIELDS, DETAILED_TYPES, start))
        _stream(sink, cols, order, _detailed_cols)
        sink.write(close)
    # modbus.log: requests at ts, responses one round trip later, merged in time order
    # (ties: requests of earlier transactions first, as a stable sort of both halves).
    ts = cols["ts"][order]
    merged = np.argsort(np.concatenate([ts, ts + cols["rtt"][order]]), kind="stable")
    del ts
    with _Sink(os.path.join(out_dir, "zeek", "modbus.log"), False) as sink:
        sink.write(zeek_header("modbus", MODBUS_FIELDS, MODBUS_TYPES, start))
        for lo in range(0, 2 * n, CHUNK):
            sel = merged[lo: lo + CHUNK]
            response = sel >= n
            rows = _take(cols, order[np.where(response, sel - n, sel)])
            rows["response"] = response
            sink.write(_lines(_basic_cols(rows))[0])
        sink.write(close)
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
    with _Sink(os.path.join(out_dir, "cms", "cms-events.jsonl"), False) as sink:
        for lo in range(0, len(order), CHUNK):
            lines = []
            for i in order[lo: lo + CHUNK]:
                r = records[i]
                obj: dict[str, Any] = {"time": _iso_ms(r["ts"])}
                obj.update((k, r[k]) for k in _CMS_KEYS if k in r)
                obj.update((k, v) for k, v in r.items() if k not in obj and k != "ts")
                lines.append(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
            sink.write("".join(lines).encode())
    return {"cms/cms-events.jsonl": len(order)}


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
