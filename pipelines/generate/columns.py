"""Column primitives of the generated corpus: every format's records as numpy columns.

Shared by the benign traffic (``benign.py``) and the planted scenarios (``scenarios.py``,
``depth.py``): ``Parts`` collects records of every format before sorting and writing;
``flows`` and ``modbus_sessions`` draw Zeek conn.log and ICSNPP Modbus rows in bulk; the
hour-of-day profiles and Modbus function codes shape what is drawn. Times are integer
microseconds since the epoch throughout.

The bulk columns stay compact so a 10M-record corpus fits in a few hundred MB: strings drawn
from small sets (addresses, protocols, states, function names, DNS names) are int32 codes into
one interned vocabulary (``code``, ``codes``, ``vocabulary``), uids are 18-byte ``S18``
values and Modbus value lists Arrow strings. Decoding happens only when a writer formats a
chunk of lines. Large random draws are taken in chunks, which with numpy's PCG64 yields the
same stream as one draw, so the corpus does not depend on the chunk size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.generate.terminal import MINUTE_US, US

Columns = dict[str, Any]  # column name -> numpy array (codes, numbers, S18 uids) or Arrow strings

#: Rows per chunk of a large random draw.
DRAW_CHUNK = 1 << 18

_WORDS: list[str] = []
_CODE: dict[str, int] = {}


def code(text: str) -> int:
    """The vocabulary code of ``text`` (interned on first use; codes never change)."""
    c = _CODE.get(text)
    if c is None:
        c = _CODE[text] = len(_WORDS)
        _WORDS.append(text)
    return c


def codes(values: Any) -> np.ndarray:
    """``values`` (a string, strings, or codes already) as int32 vocabulary codes."""
    if isinstance(values, str):
        return np.asarray(code(values), np.int32)
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int32, copy=False)
    if arr.ndim == 0:
        return np.asarray(code(str(arr)), np.int32)
    words, inverse = np.unique(arr, return_inverse=True)
    table = np.array([code(str(w)) for w in words], np.int32)
    return table[inverse].reshape(arr.shape)


def vocabulary() -> pa.Array:
    """Every interned string, indexed by code (what writers ``take`` from)."""
    return pa.array(_WORDS, pa.string())

#: Hour-of-day weights (UTC = terminal local time). Office work follows the day; crane
#: operations run around the clock with a dip at the 06/14/22 shift changes.
OFFICE_PROFILE = np.array([.05, .04, .04, .04, .05, .10, .30, .70, 1.0, 1.0, .95, .90,
                           .80, .90, 1.0, .95, .80, .50, .30, .20, .15, .10, .08, .06])
CRANE_PROFILE = np.array([.80, .80, .75, .75, .80, .85, .60, .90, 1.0, 1.0, 1.0, 1.0,
                          .95, 1.0, .60, .95, 1.0, 1.0, .95, .90, .90, .85, .60, .80])

READS = ("READ_HOLDING_REGISTERS", "READ_INPUT_REGISTERS", "READ_COILS", "READ_DISCRETE_INPUTS")
WRITES = ("WRITE_SINGLE_REGISTER", "WRITE_MULTIPLE_REGISTERS", "WRITE_SINGLE_COIL")
#: Device identification (43/14) and report server id (17): what engineering tools ask a
#: PLC when they connect, and what a scanner asks first (scenario 8's reconnaissance reads).
IDENTIFY = ("ENCAP_INTERFACE_TRANSPORT", "REPORT_SLAVE_ID")


@dataclass
class Parts:
    """Records of every format, collected before sorting and writing.

    ``conn`` and ``modbus`` are column dicts (bulk); ``cms`` and ``vpn`` are few enough
    to be dicts, each with a ``ts`` in microseconds."""

    conn: list[Columns] = field(default_factory=list)
    modbus: list[Columns] = field(default_factory=list)
    cms: list[dict[str, Any]] = field(default_factory=list)
    vpn: list[dict[str, Any]] = field(default_factory=list)
    dns: list[Columns] = field(default_factory=list)  # Zeek dns.log rows (bulk)
    s7: list[dict[str, Any]] = field(default_factory=list)  # ICSNPP s7comm.log rows (planted only)
    cip: list[dict[str, Any]] = field(default_factory=list)  # ICSNPP cip.log rows (planted only)

    def add(self, other: "Parts") -> None:
        self.conn += other.conn
        self.modbus += other.modbus
        self.cms += other.cms
        self.vpn += other.vpn
        self.dns += other.dns
        self.s7 += other.s7
        self.cip += other.cip

    def records(self) -> int:
        """Data lines this will write: one conn line per flow, three Modbus lines per
        transaction (REQ and RESP in modbus.log, one in modbus_detailed.log), one dns.log
        line per lookup."""
        conn = sum(len(c["ts"]) for c in self.conn)
        txns = sum(len(m["ts"]) for m in self.modbus)
        dns = sum(len(d["ts"]) for d in self.dns)
        return conn + 3 * txns + len(self.cms) + len(self.vpn) + dns + len(self.s7) + len(self.cip)


def concat_column(values: Sequence[Any]) -> Any:
    """One column of several parts: Arrow strings stay Arrow, strings become codes."""
    if any(isinstance(v, (pa.Array, pa.ChunkedArray)) for v in values):
        chunks = [v if isinstance(v, (pa.Array, pa.ChunkedArray)) else pa.array(v, pa.string()) for v in values]
        return pa.chunked_array(chunks, pa.string()).combine_chunks()
    if any(np.asarray(v).dtype.kind in "UO" for v in values):
        values = [v if np.asarray(v).dtype.kind == "S" else codes(v) for v in values]
    return np.concatenate(values)


def concat(parts: Sequence[Columns], release: bool = False) -> Columns:
    """The parts' columns end to end. ``release``: empty each part as its columns are
    copied, so a column is never held twice (what keeps the writers' peak memory down)."""
    if not parts:
        return {}
    out: Columns = {}
    for k in list(parts[0].keys()):
        out[k] = concat_column([p.pop(k) if release else p[k] for p in parts])
    return out


# --- primitives shared with the scenarios -----------------------------------------------------

_B62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)


def drawn(n: int, draw: Any, convert: Any = None) -> np.ndarray:
    """``n`` values of ``draw(size)``, drawn ``DRAW_CHUNK`` at a time and each chunk passed
    through ``convert`` (e.g. to a smaller dtype): the same values as one ``draw(n)``
    without its full-size float temporaries."""
    out: Optional[np.ndarray] = None
    for lo in range(0, n, DRAW_CHUNK):
        hi = min(n, lo + DRAW_CHUNK)
        v = draw(hi - lo)
        v = convert(v) if convert else v
        if out is None:
            out = np.empty(n, v.dtype)
        out[lo:hi] = v
    if out is None:
        v = draw(0)
        out = convert(v) if convert else v
    return out


def make_uids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Zeek-style connection uids (``C`` + 17 base62 characters), as ``S18``."""
    buf = np.empty((n, 18), dtype=np.uint8)
    buf[:, 0] = ord("C")
    for lo in range(0, n, DRAW_CHUNK):
        hi = min(n, lo + DRAW_CHUNK)
        buf[lo:hi, 1:] = _B62[rng.integers(0, 62, size=(hi - lo, 17))]
    return buf.view("S18").ravel()


def diurnal_times(rng: np.random.Generator, n: int, start: int, end: int,
                  profile: np.ndarray) -> np.ndarray:
    """``n`` times of an inhomogeneous Poisson process whose rate follows ``profile``."""
    minutes = max(1, (end - start) // MINUTE_US)
    bins = start + np.arange(minutes, dtype=np.int64) * MINUTE_US
    hod = (bins // (3600 * US)) % 24
    w = profile[hod]
    counts = rng.multinomial(n, w / w.sum())
    return np.repeat(bins, counts) + rng.integers(0, MINUTE_US, n)


def periodic_times(rng: np.random.Generator, n: int, start: int, end: int,
                   jitter: float = 0.3) -> np.ndarray:
    """``n`` polls on a regular grid over ``[start, end)`` with some jitter."""
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    period = (end - start) / n
    pos = np.arange(n) + 0.5 + jitter * (rng.random(n) - 0.5)
    return (start + pos * period).astype(np.int64)


def _bcast(value: Any, n: int, dtype: Any = None) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    return np.broadcast_to(arr, (n,)).copy() if arr.ndim == 0 else arr


def _cat(value: Any, n: int) -> np.ndarray:
    """A string column of ``n`` rows as codes (a single string repeated)."""
    arr = codes(value)
    return np.full(n, arr, np.int32) if arr.ndim == 0 else arr


def flows(rng: np.random.Generator, ts: np.ndarray, orig_h: Any, resp_h: Any, resp_p: Any,
          proto: Any, service: Any, state: Any = "SF", *, out_median: float = 500,
          in_median: float = 2000, dur_median: float = 0.2, orig_p: Any = None) -> Columns:
    """conn.log rows with byte/packet/duration/history fields consistent with the state."""
    n = len(ts)
    proto = _cat(proto, n)
    state = _cat(state, n)
    tcp = proto == code("tcp")
    ob = drawn(n, lambda m: rng.lognormal(math.log(out_median), 0.9, m), lambda v: np.maximum(1, v).astype(np.int64))
    ib = drawn(n, lambda m: rng.lognormal(math.log(in_median), 1.1, m), lambda v: np.maximum(1, v).astype(np.int64))
    dur = drawn(n, lambda m: rng.lognormal(math.log(dur_median * US), 1.0, m),
                lambda v: np.maximum(50, v).astype(np.int64))
    opk = np.ceil(ob / 1200).astype(np.int64) + np.where(tcp, 3, 0)
    rpk = np.ceil(ib / 1400).astype(np.int64) + np.where(tcp, 2, 0)
    history = np.where(tcp, np.int32(code("ShADadFf")), np.int32(code("Dd")))
    dead = (state == code("S0")) | (state == code("REJ"))
    ob[dead] = 0
    ib[dead] = 0
    s0 = state == code("S0")
    dur[s0] = -1
    opk[s0] = 1
    rpk[s0] = 0
    history[s0] = np.where(tcp[s0], code("S"), code("D"))
    rej = state == code("REJ")
    dur[rej] = rng.integers(200, 3000, int(rej.sum()))
    opk[rej] = 1
    rpk[rej] = 1
    history[rej] = code("Sr")
    history[state == code("RSTO")] = code("ShADadR")
    overhead = np.where(tcp, 52, 28)
    svc = _cat(service, n).copy()
    svc[dead] = code("-")
    if orig_p is None:
        orig_p = drawn(n, lambda m: rng.integers(49152, 65536, m), lambda v: v.astype(np.int32))
    return {
        "ts": np.asarray(ts, dtype=np.int64),
        "uid": make_uids(rng, n),
        "orig_h": _cat(orig_h, n),
        "orig_p": _bcast(orig_p, n, np.int32),  # ports and packet counts fit 32 bits
        "resp_h": _cat(resp_h, n),
        "resp_p": _bcast(resp_p, n, np.int32),
        "proto": proto,
        "service": svc,
        "duration": dur,
        "orig_bytes": ob,
        "resp_bytes": ib,
        "conn_state": state,
        "history": history,
        "orig_pkts": opk.astype(np.int32),
        "orig_ip_bytes": ob + opk * overhead,
        "resp_pkts": rpk.astype(np.int32),
        "resp_ip_bytes": ib + rpk * overhead,
    }


def _join_lists(counts: np.ndarray, flat: np.ndarray) -> pa.Array:
    """Comma-joined value lists (Zeek ``vector[count]``), ``-`` where a row has none."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    lists = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.int64()).cast(pa.string()))
    joined = pc.binary_join(lists, ",")
    return pc.if_else(pa.array(np.asarray(counts) > 0), joined, "-")


def modbus_fields(rng: np.random.Generator, funcs: np.ndarray) -> dict[str, np.ndarray]:
    """Address, quantity, request/response values and ADU sizes for each function."""
    funcs = codes(funcs)
    n = len(funcs)
    hr = funcs == code("READ_HOLDING_REGISTERS")
    ir = funcs == code("READ_INPUT_REGISTERS")
    bits = (funcs == code("READ_COILS")) | (funcs == code("READ_DISCRETE_INPUTS"))
    wsr = funcs == code("WRITE_SINGLE_REGISTER")
    wmr = funcs == code("WRITE_MULTIPLE_REGISTERS")
    wsc = funcs == code("WRITE_SINGLE_COIL")
    read = hr | ir | bits
    qty = np.ones(n, dtype=np.int64)
    qty[read] = rng.integers(1, 17, int(read.sum()))
    qty[wmr] = rng.integers(2, 7, int(wmr.sum()))
    addr = rng.integers(0, 400, n)
    addr[ir] = rng.integers(0, 200, int(ir.sum()))
    addr[bits] = rng.integers(0, 64, int(bits.sum()))
    addr[wsr | wmr] = rng.integers(100, 140, int((wsr | wmr).sum()))  # setpoint block
    addr[wsc] = rng.integers(0, 32, int(wsc.sum()))
    req_n = np.where(wsr | wsc, 1, np.where(wmr, qty, 0))
    resp_n = np.where(read, qty, np.where(wsr | wsc, 1, 0))
    req_flat = rng.integers(0, 3000, int(req_n.sum()))
    req_flat[np.repeat(wsc, req_n)] %= 2
    resp_flat = rng.integers(0, 4096, int(resp_n.sum()))
    resp_flat[np.repeat(bits, resp_n)] %= 2
    req = _join_lists(req_n, req_flat)
    resp = _join_lists(resp_n, resp_flat)
    echo = wsr | wsc  # single writes are echoed back
    resp = pc.if_else(pa.array(echo), req, resp)
    req_bytes = np.where(wmr, 13 + 2 * qty, 12)
    resp_bytes = np.where(hr | ir, 9 + 2 * qty, np.where(bits, 9 + (qty + 7) // 8, 12))
    return {"address": addr, "quantity": qty, "request_values": req, "response_values": resp,
            "req_bytes": req_bytes, "resp_bytes": resp_bytes}


def modbus_sessions(rng: np.random.Generator, ts: np.ndarray, orig_h: Any, resp_h: Any,
                    n_txn: np.ndarray, funcs: np.ndarray, gap_us: float = 20_000,
                    unit: int = 1) -> tuple[Columns, Columns]:
    """Modbus/TCP connections (one conn.log row each) and their transactions (same uid)."""
    s = len(ts)
    ts = np.asarray(ts, dtype=np.int64)
    n_txn = np.asarray(n_txn, dtype=np.int64)
    total = int(n_txn.sum())
    sess = np.repeat(np.arange(s), n_txn)
    first = np.zeros(s, dtype=np.int64)
    np.cumsum(n_txn[:-1], out=first[1:])
    gaps = (rng.exponential(gap_us, total) + 1000).astype(np.int64)
    gaps[first] = rng.integers(1000, 4000, s)  # after the handshake
    cum = np.cumsum(gaps)
    t = ts[sess] + cum - (cum[first] - gaps[first])[sess]
    rtt = rng.integers(1500, 15000, total)
    tid = (rng.integers(0, 60000, s)[sess] + np.arange(total) - first[sess]) % 65536
    uid = make_uids(rng, s)
    orig_h = _cat(orig_h, s)
    resp_h = _cat(resp_h, s)
    orig_p = rng.integers(49152, 65536, s)
    funcs = codes(funcs)
    f = modbus_fields(rng, funcs)
    last = first + n_txn - 1
    conn = {
        "ts": ts, "uid": uid, "orig_h": orig_h, "orig_p": orig_p, "resp_h": resp_h,
        "resp_p": np.full(s, 502, np.int64), "proto": np.full(s, code("tcp"), np.int32),
        "service": np.full(s, code("modbus"), np.int32),
        "duration": t[last] + rtt[last] + rng.integers(500, 3000, s) - ts,
        "orig_bytes": np.bincount(sess, f["req_bytes"], s).astype(np.int64),
        "resp_bytes": np.bincount(sess, f["resp_bytes"], s).astype(np.int64),
        "conn_state": np.full(s, code("SF"), np.int32), "history": np.full(s, code("ShADadFf"), np.int32),
        "orig_pkts": n_txn + 3, "resp_pkts": n_txn + 2,
    }
    conn["orig_ip_bytes"] = conn["orig_bytes"] + 52 * conn["orig_pkts"]
    conn["resp_ip_bytes"] = conn["resp_bytes"] + 52 * conn["resp_pkts"]
    for k in ("orig_p", "resp_p", "orig_pkts", "resp_pkts"):
        conn[k] = conn[k].astype(np.int32)
    txn = {
        "ts": t, "uid": uid[sess], "orig_h": orig_h[sess], "orig_p": orig_p[sess].astype(np.int32),
        "resp_h": resp_h[sess], "resp_p": np.full(total, 502, np.int32), "tid": tid.astype(np.int32),
        "unit": np.full(total, unit, np.int32), "func": funcs,
        "address": f["address"].astype(np.int32), "quantity": f["quantity"].astype(np.int32),
        "request_values": f["request_values"], "response_values": f["response_values"],
        "rtt": rtt.astype(np.int32),
    }
    return conn, txn


def split_counts(rng: np.random.Generator, total: int, sessions: int) -> np.ndarray:
    """``sessions`` positive counts summing to ``total``."""
    sessions = max(1, min(sessions, total))
    return 1 + rng.multinomial(total - sessions, np.full(sessions, 1 / sessions))
