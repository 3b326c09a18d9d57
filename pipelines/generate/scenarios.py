"""Planted attack scenarios (SCENARIOS.md #1, #2 and the #2→#4 chain) and their truth.

Each planted scenario sits in its own slot: slots start ≥ 2 h apart and a scenario lasts at
most an hour, so scenarios are separated by more than the correlation gap. Each uses its
own crane and its own vendor account and tunnel address, so the pipeline should turn each
into exactly one incident; ``truth.json`` says which, so tests score recall and precision.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from pipelines.generate.benign import Parts, flows, modbus_sessions, vendor_activity, vpn_record
from pipelines.generate.terminal import MINUTE_US, US, Terminal, Vendor, overlaps

SLOT_FIRST = 20 * MINUTE_US
SLOT_STEP = 125 * MINUTE_US  # with at most 5 min jitter: starts ≥ 2 h apart
SLOT_JITTER = 5 * MINUTE_US
MAX_LENGTH = 50 * MINUTE_US  # longest scenario (a vendor session)
WINDOW_MARGIN = 30 * MINUTE_US  # out-of-window sessions keep this far from any window

EXPECTED = {
    1: ["ot_unexpected_egress"],
    2: ["vendor_session_outside_window"],
    4: ["vendor_session_outside_window", "modbus_write_non_engineering"],
}


@dataclass
class Planted:
    parts: Parts = field(default_factory=Parts)
    truth: list[dict[str, Any]] = field(default_factory=list)


def rfc3339(us: int) -> str:
    t = dt.datetime.fromtimestamp(us // US, dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{us % US:06d}Z"


def slots(start: int, end: int) -> list[int]:
    out = []
    t = start + SLOT_FIRST
    while t + SLOT_JITTER + MAX_LENGTH + 5 * MINUTE_US <= end:
        out.append(t)
        t += SLOT_STEP
    return out


def _assign(kinds: list[int], times: list[int], accounts: list[tuple[Vendor, str]],
            windows: dict[str, list[tuple[int, int]]]) -> Optional[list[Optional[tuple[Vendor, str]]]]:
    """Give each vendor scenario its own account whose vendor has no window near it."""
    result: list[Optional[tuple[Vendor, str]]] = [None] * len(kinds)
    used: set[str] = set()

    def ok(acct: tuple[Vendor, str], t: int) -> bool:
        v, a = acct
        return a not in used and not overlaps(windows[v.name], t - WINDOW_MARGIN,
                                              t + SLOT_JITTER + MAX_LENGTH + WINDOW_MARGIN)

    def solve(i: int) -> bool:
        if i == len(kinds):
            return True
        if kinds[i] == 1:
            return solve(i + 1)
        for acct in accounts:
            if ok(acct, times[i]):
                used.add(acct[1])
                result[i] = acct
                if solve(i + 1):
                    return True
                used.discard(acct[1])
                result[i] = None
        return False

    return result if solve(0) else None


def _out_of_band(rng: np.random.Generator, term: Terminal, t: int, crane_i: int, n: int) -> tuple[Parts, dict[str, Any]]:
    """#1: a crane PLC or CMS talks to carrier/internet space for a few minutes."""
    c = term.cranes[crane_i]
    use_plc = rng.random() < 0.6
    addr, asset = (c.plc, c.plc_id) if use_plc else (c.cms, c.cms_id)
    if rng.random() < 0.6:
        ext = f"100.71.{int(rng.integers(1, 255))}.{int(rng.integers(1, 255))}"
    else:
        ext = f"198.51.100.{int(rng.integers(129, 255))}"
    proto, port, svc = [("tcp", 443, "ssl"), ("tcp", 8883, "-"), ("udp", 1194, "-"),
                        ("tcp", 1883, "-")][int(rng.integers(0, 4))]
    k = int(rng.integers(5, 11))
    ts = np.sort(t + rng.integers(0, int(rng.integers(3, 9)) * MINUTE_US, k))
    ts[0] = t
    state = np.full(k, "SF", "U4")
    if proto == "tcp":
        state[: int(rng.integers(0, 3))] = "S0"
    f = flows(rng, ts, addr, ext, port, proto, svc, state, out_median=2500, in_median=700,
              dur_median=4.0)
    last = int((f["ts"] + np.maximum(f["duration"], 0)).max())
    truth = {"id": f"s1-{n}", "scenario": 1,
             "title": f"Out-of-band egress: {asset} ({c.id}) reaches {ext}:{port}/{proto}",
             "asset": asset, "accounts": [], "addresses": [addr, ext],
             "start": rfc3339(t), "end": rfc3339(last), "expected_detections": EXPECTED[1]}
    return Parts(conn=[f]), truth


def _vendor_session(rng: np.random.Generator, term: Terminal, t: int, vendor: Vendor, account: str,
                    tunnel: str, n: int, crane_i: Optional[int]) -> tuple[Parts, dict[str, Any]]:
    """#2 (``crane_i`` None) or #2→#4: an out-of-window VPN session, for #4 with register
    writes from the tunnel address to a crane PLC a few minutes after tunnel-up."""
    remip = vendor.public_address(account)
    up = t
    down = up + int(rng.integers(20 if crane_i is None else 25, 50)) * MINUTE_US
    tid = int(rng.integers(1_000_000_000, 2_000_000_000))
    out = vendor_activity(rng, term, tunnel, up, down, [])
    kind = 2 if crane_i is None else 4
    asset = None
    title = f"{vendor.name} account {account} connects from {remip} outside maintenance"
    if crane_i is not None:
        c = term.cranes[crane_i]
        asset = c.plc_id
        title = f"Out-of-window {vendor.name} session ({account}) writes registers on {c.id} PLC"
        n_sess = int(rng.integers(1, 3))
        starts = up + np.array([int(rng.integers(2, 8)) * MINUTE_US + int(rng.integers(0, 60 * US))
                                + i * int(rng.integers(4, 10)) * MINUTE_US for i in range(n_sess)])
        funcs: list[str] = []
        n_txn = []
        for _ in range(n_sess):
            reads = ["READ_HOLDING_REGISTERS"] * int(rng.integers(2, 5))
            writes = list(np.array(["WRITE_SINGLE_REGISTER", "WRITE_MULTIPLE_REGISTERS"])[
                rng.integers(0, 2, int(rng.integers(2, 6)))])
            tail = ["READ_HOLDING_REGISTERS"] * int(rng.integers(0, 3))
            seq = reads + writes + tail
            funcs += seq
            n_txn.append(len(seq))
        conn, txn = modbus_sessions(rng, starts, tunnel, c.plc, np.array(n_txn), np.array(funcs),
                                    gap_us=2_000_000)
        out.conn.append(conn)
        out.modbus.append(txn)
    sent = sum(int(x["orig_bytes"].sum()) for x in out.conn)
    rcvd = sum(int(x["resp_bytes"].sum()) for x in out.conn)
    out.vpn.append(vpn_record(up, "tunnel-up", account, vendor, remip, tunnel, tid))
    out.vpn.append(vpn_record(down, "tunnel-down", account, vendor, remip, tunnel, tid,
                              duration=(down - up) // US, sentbyte=rcvd + 4096, rcvdbyte=sent + 2048))
    truth = {"id": f"s{kind}-{n}", "scenario": kind, "title": title, "asset": asset,
             "accounts": [account], "addresses": [remip, tunnel], "start": rfc3339(up),
             "end": rfc3339(down), "expected_detections": EXPECTED[kind]}
    return out, truth


def plant(rng: np.random.Generator, term: Terminal, start: int, end: int,
          windows: dict[str, list[tuple[int, int]]], events: int) -> Planted:
    """At least one of each scenario; two or three of each for larger corpora."""
    free = slots(start, end)
    per_kind = min(1 if events < 500_000 else 2 if events < 850_000 else 3, len(free) // 3)
    if per_kind < 1:
        raise ValueError("corpus span too short to plant one of each scenario")
    accounts = [(v, a) for v in term.vendors for a in v.accounts]
    for _ in range(200):
        picked = sorted(int(i) for i in rng.choice(len(free), 3 * per_kind, replace=False))
        kinds = [1] * per_kind + [2] * per_kind + [4] * per_kind
        rng.shuffle(kinds)
        times = [free[i] + int(rng.integers(0, SLOT_JITTER)) for i in picked]
        assigned = _assign(kinds, times, accounts, windows)
        if assigned is not None:
            break
    else:
        raise ValueError("no out-of-window slot for every vendor scenario")
    cranes = [int(i) for i in rng.permutation(len(term.cranes))]
    planted = Planted()
    counters = {1: 0, 2: 0, 4: 0}
    tunnels: dict[str, int] = {}
    for kind, t, acct in zip(kinds, times, assigned):
        counters[kind] += 1
        if kind == 1:
            parts, truth = _out_of_band(rng, term, t, cranes.pop(), counters[kind])
        else:
            assert acct is not None
            v, account = acct
            tunnel = v.scenario_tunnels[tunnels.get(v.name, 0)]
            tunnels[v.name] = tunnels.get(v.name, 0) + 1
            crane_i = cranes.pop() if kind == 4 else None
            parts, truth = _vendor_session(rng, term, t, v, account, tunnel, counters[kind], crane_i)
        planted.parts.add(parts)
        planted.truth.append(truth)
    return planted
