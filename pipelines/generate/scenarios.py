"""Planted attack scenarios (SCENARIOS.md #1-#10) and their truth.

Scenarios are planted in slots: slots start ≥ 2 h apart and a scenario lasts at most an
hour, so scenarios in different slots are separated by more than the correlation gap. One
slot holds several scenarios side by side ("lanes"), each on its own crane, with its own
vendor account, tunnel address and external address, so they share no entity the
correlation could link them by. The pipeline should turn each into exactly one incident;
``truth.json`` says which, with the detections expected, so tests score recall and precision.

Kinds (``truth.json`` ``scenario``; the chain is scenario 6 with ``chain: [2, 4, 6]``):

* 1  a crane PLC/CMS talks to carrier/internet space (out-of-band path)
* 2  an out-of-window vendor VPN session
* 3  an out-of-window vendor session from outside the vendor's networks
* 3b one vendor account in two overlapping out-of-window sessions from two addresses
* 4  an out-of-window session that writes PLC registers from its tunnel address
* 5  program download and mode changes on a crane controller from the cab HMI
* 6  a safety parameter set outside its engineering limits at the cab HMI
* 6c the full chain: out-of-window session → register writes → out-of-limit parameter
     change from the tunnel address (one critical incident)
* 7  an unknown host on a crane network polls the PLC (new Modbus master; also #1 unknown device)
* 8  an internet address probes OT service ports on a crane PLC, then identifies it over Modbus
* 9  repeated failed logins for a vendor account, then an out-of-window session
* 10 a crane CMS uploads bulk data to an external address
* 10b a crane PLC or CMS checks in with an external address every minute (beaconing)
* 11 an office desktop looks up the ISAC's C2 domain and calls back to an address inside the
     ISAC's C2 indicator network (``terminal.isac_bundle``); not an OT asset, so only the
     threat-intel match fires (on the lookup and on the connections)
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from pipelines.generate import depth
from pipelines.generate.benign import _cms, dns_lookups, tunnel_records, vendor_activity, vpn_record
from pipelines.generate.columns import Parts, flows, modbus_sessions
from pipelines.generate.terminal import MINUTE_US, PARAMETER_LIMITS, US, Terminal, Vendor, overlaps
from pipelines.generate.terminal import ISAC_C2_DOMAIN, ISAC_C2_NETWORK

SLOT_FIRST = 20 * MINUTE_US
SLOT_STEP = 125 * MINUTE_US  # with at most 5 min jitter: starts ≥ 2 h apart
SLOT_JITTER = 5 * MINUTE_US
MAX_LENGTH = 50 * MINUTE_US  # longest scenario (a vendor session)
WINDOW_MARGIN = 30 * MINUTE_US  # out-of-window sessions keep this far from any window
#: modbus_new_master's default learning period, plus a margin: a new master in a slot that
#: starts later than this after the corpus start is past the PLCs' learning period.
LEARNED_AFTER = 70 * MINUTE_US

KINDS = ("1", "2", "3", "3b", "4", "5", "6", "6c", "7", "8", "9", "10", "10b", "11", *depth.KINDS)
SCENARIO_NUMBER = {**{k: int(k.rstrip("bc")) for k in KINDS if k not in depth.KINDS}, **depth.NUMBER}
VENDOR_KINDS = {"2", "3", "3b", "4", "6c", "9", *depth.VENDOR_KINDS}
CRANE_KINDS = {"1", "4", "5", "6", "6c", "7", "8", "10", "10b", *depth.CRANE_KINDS}

EXPECTED = {
    "1": ["ot_unexpected_egress"],
    "2": ["vendor_session_outside_window"],
    "3": ["vendor_session_outside_window", "vendor_login_unexpected_network"],
    "3b": ["vendor_session_outside_window", "vpn_concurrent_sessions"],
    "4": ["vendor_session_outside_window", "modbus_write_non_engineering"],
    "5": ["cms_program_or_mode_change"],
    "6": ["cms_safety_parameter_change"],
    "6c": ["vendor_session_outside_window", "modbus_write_non_engineering", "cms_safety_parameter_change"],
    "7": ["modbus_new_master", "crane_unknown_device"],
    "8": ["ot_inbound_external", "ot_recon_reads"],
    "9": ["vendor_session_outside_window", "vpn_failed_logins_then_success"],
    "10": ["ot_unexpected_egress", "ot_exfiltration_volume"],
    "10b": ["ot_unexpected_egress", "ot_beaconing"],
    "11": ["threat_intel_match"],
    **depth.EXPECTED,  # S7/CIP on the wire, spraying, low-and-slow, the reversed look-alike
}
#: A session's tunnel address writing to a PLC, or a scanner speaking Modbus to it, after
#: the learning period is also a new master.
NEW_MASTER_KINDS = {"4", "6c", "8"}

@dataclass
class Planted:
    parts: Parts = field(default_factory=Parts)
    truth: list[dict[str, Any]] = field(default_factory=list)


def rfc3339(us: int) -> str:
    t = dt.datetime.fromtimestamp(us // US, dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{us % US:06d}Z"


def _us(text: str) -> int:
    """``rfc3339`` back to microseconds."""
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(t.timestamp()) * US + t.microsecond


def slots(start: int, end: int) -> list[int]:
    out = []
    t = start + SLOT_FIRST
    while t + SLOT_JITTER + MAX_LENGTH + 5 * MINUTE_US <= end:
        out.append(t)
        t += SLOT_STEP
    return out


def _truth(kind: str, n: int, title: str, asset: Optional[str], accounts: list[str],
           addresses: list[str], start: int, end: int, learned: bool = False) -> dict[str, Any]:
    expected = list(EXPECTED[kind])
    if learned and kind in NEW_MASTER_KINDS:
        expected.append("modbus_new_master")
    out = {"id": f"s{kind}-{n}", "scenario": SCENARIO_NUMBER[kind], "title": title, "asset": asset,
           "accounts": accounts, "addresses": addresses, "start": rfc3339(start), "end": rfc3339(end),
           "expected_detections": expected}
    if kind == "6c":
        out["chain"] = [2, 4, 6]
    return out


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
    truth = _truth("1", n, f"Out-of-band egress: {asset} ({c.id}) reaches {ext}:{port}/{proto}",
                   asset, [], [addr, ext], t, last)
    return Parts(conn=[f]), truth


def _writes(rng: np.random.Generator, up: int, tunnel: str, plc: str) -> tuple[dict, dict, int]:
    """#4's register writes from the tunnel address: 1-2 Modbus sessions a few minutes in."""
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
    conn, txn = modbus_sessions(rng, starts, tunnel, plc, np.array(n_txn), np.array(funcs),
                                gap_us=2_000_000)
    return conn, txn, int(txn["ts"].max())


def _out_of_limits(rng: np.random.Generator) -> tuple[str, str, str]:
    """A safety parameter pushed past its engineering limit: (parameter, old, new)."""
    names = sorted(PARAMETER_LIMITS)
    p = names[int(rng.integers(0, len(names)))]
    lo, hi, step = PARAMETER_LIMITS[p]
    old = lo + int(rng.integers(0, int(round((hi - lo) / step)) + 1)) * step
    new = hi + int(rng.integers(3, 9)) * step
    return p, f"{old:g}", f"{new:g}"


def _vendor_session(rng: np.random.Generator, term: Terminal, t: int, vendor: Vendor, account: str,
                    tunnel: str, n: int, kind: str, crane_i: Optional[int], attacker: str,
                    learned: bool) -> tuple[Parts, dict[str, Any]]:
    """#2, #3 (from ``attacker``, outside the vendor's networks), #9 (failed logins first),
    #4 (register writes from the tunnel address to a crane PLC a few minutes after
    tunnel-up) and the #2→#4→#6 chain (the writes, then an out-of-limit parameter change
    through the CMS from the tunnel address)."""
    remip = attacker if kind == "3" else vendor.public_address(account)
    out = Parts()
    first = t
    up = t
    if kind == "9":
        n_fail = int(rng.integers(6, 12))
        fails = t + np.sort(rng.integers(0, 4 * MINUTE_US, n_fail))
        for ft in fails.tolist():
            out.vpn.append(vpn_record(int(ft), "ssl-login-fail", account, vendor, remip, None, 0,
                                      reason="sslvpn_login_permission_denied"))
        up = int(fails.max()) + int(rng.integers(20, 90)) * US
    down = up + int(rng.integers(20 if crane_i is None else 28, 50 if kind != "9" else 45)) * MINUTE_US
    tid = int(rng.integers(1_000_000_000, 2_000_000_000))
    out.add(vendor_activity(rng, term, tunnel, up, down, []))
    asset = None
    titles = {
        "2": f"{vendor.name} account {account} connects from {remip} outside maintenance",
        "3": f"{vendor.name} account {account} connects from foreign address {remip} outside maintenance",
        "9": f"Password guessing on {vendor.name} account {account}, then an out-of-window session",
    }
    title = titles.get(kind, "")
    if crane_i is not None:
        c = term.cranes[crane_i]
        asset = c.plc_id
        conn, txn, last_write = _writes(rng, up, tunnel, c.plc)
        out.conn.append(conn)
        out.modbus.append(txn)
        title = f"Out-of-window {vendor.name} session ({account}) writes registers on {c.id} PLC"
        if kind == "6c":
            title = (f"Critical chain on {c.id}: out-of-window {vendor.name} session ({account}), "
                     "register writes, out-of-limit safety parameter change")
            tc = last_write + int(rng.integers(60, 180)) * US
            for i in range(int(rng.integers(1, 3))):
                p, old, new = _out_of_limits(rng)
                out.cms.append(_cms(tc + i * int(rng.integers(20, 90)) * US, c.id, "parameter_change",
                                    controller=c.plc_id, user=account, source_ip=tunnel, parameter=p,
                                    old_value=old, new_value=new, result="success"))
    out.vpn += tunnel_records(up, down, account, vendor, remip, tunnel, tid, out.conn)
    truth = _truth(kind, n, title, asset, [account], [remip, tunnel], first, down, learned)
    return out, truth


def _concurrent_sessions(rng: np.random.Generator, term: Terminal, t: int, vendor: Vendor, account: str,
                         tunnels: tuple[str, str], n: int) -> tuple[Parts, dict[str, Any]]:
    """#3b: the account's usual address opens a session and, while it is open, a second
    address (inside the vendor's network, so only the overlap is odd) opens another."""
    import ipaddress

    first_ip = vendor.public_address(account)
    second_ip = str(ipaddress.ip_network(vendor.public_network)[28])
    out = Parts()
    up1 = t
    down1 = up1 + int(rng.integers(30, 50)) * MINUTE_US
    up2 = up1 + int(rng.integers(5, 20)) * MINUTE_US
    down2 = min(down1 + int(rng.integers(-10, 10)) * MINUTE_US, up1 + MAX_LENGTH)
    for (up, down, remip, tunnel) in ((up1, down1, first_ip, tunnels[0]), (up2, down2, second_ip, tunnels[1])):
        tid = int(rng.integers(1_000_000_000, 2_000_000_000))
        act = vendor_activity(rng, term, tunnel, up, down, [])
        out.add(act)
        out.vpn += tunnel_records(up, down, account, vendor, remip, tunnel, tid, act.conn)
    truth = _truth("3b", n, f"{vendor.name} account {account} in two sessions at once ({first_ip}, {second_ip})",
                   None, [account], [first_ip, tunnels[0], second_ip, tunnels[1]], up1, max(down1, down2))
    return out, truth


def _operator(rng: np.random.Generator, term: Terminal, avoid: frozenset[str]) -> str:
    """An operator account, not one already used by another lane of the same slot (a shared
    account would link the two scenarios into one incident)."""
    ops = [o for o in term.operators if o not in avoid] or list(term.operators)
    return ops[int(rng.integers(0, len(ops)))]


def _hmi_program_change(rng: np.random.Generator, term: Terminal, t: int, crane_i: int,
                        n: int, avoid: frozenset[str] = frozenset()) -> tuple[Parts, dict[str, Any]]:
    """#5: from the cab HMI, an operator account switches the PLC to maintenance mode,
    downloads a program and switches back."""
    c = term.cranes[crane_i]
    user = _operator(rng, term, avoid)
    t2 = t + int(rng.integers(60, 240)) * US
    t3 = t2 + int(rng.integers(120, 600)) * US
    recs = [
        _cms(t, c.id, "mode_change", controller=c.plc_id, user=user, source_ip=c.hmi,
             parameter="mode", old_value="auto", new_value="maintenance", result="success"),
        _cms(t2, c.id, "program_download", controller=c.plc_id, user=user, source_ip=c.hmi,
             result="success", message="block OB1 downloaded"),
        _cms(t3, c.id, "mode_change", controller=c.plc_id, user=user, source_ip=c.hmi,
             parameter="mode", old_value="maintenance", new_value="auto", result="success"),
    ]
    truth = _truth("5", n, f"Program download to {c.plc_id} from the {c.id} cab HMI ({user})",
                   c.plc_id, [user], [c.hmi], recs[0]["ts"], recs[-1]["ts"])
    return Parts(cms=recs), truth


def _hmi_parameter_change(rng: np.random.Generator, term: Terminal, t: int, crane_i: int,
                          n: int, avoid: frozenset[str] = frozenset()) -> tuple[Parts, dict[str, Any]]:
    """#6: at the cab HMI, a safety parameter is set past its engineering limit and,
    sometimes, the twistlock interlock is bypassed."""
    c = term.cranes[crane_i]
    user = _operator(rng, term, avoid)
    p, old, new = _out_of_limits(rng)
    recs = [_cms(t, c.id, "parameter_change", controller=c.plc_id, user=user, source_ip=c.hmi,
                 parameter=p, old_value=old, new_value=new, result="success")]
    if rng.random() < 0.5:
        recs.append(_cms(t + int(rng.integers(30, 300)) * US, c.id, "parameter_change",
                         controller=c.plc_id, user=user, source_ip=c.hmi, parameter="twistlock.interlock",
                         old_value="enabled", new_value="bypassed", result="success"))
    truth = _truth("6", n, f"{p} on {c.plc_id} set to {new} (limit exceeded) at the {c.id} cab HMI",
                   c.plc_id, [user], [c.hmi], recs[0]["ts"], recs[-1]["ts"])  # CMS times are ms
    return Parts(cms=recs), truth


def _rogue_master(rng: np.random.Generator, term: Terminal, t: int, crane_i: int,
                  n: int) -> tuple[Parts, dict[str, Any]]:
    """#7: an uninventoried host on the crane's network polls the PLC's registers."""
    c = term.cranes[crane_i]
    rogue = c.plc.rsplit(".", 1)[0] + f".{int(rng.integers(70, 90))}"
    k = int(rng.integers(2, 5))
    starts = np.sort(t + rng.integers(0, 12 * MINUTE_US, k))
    starts[0] = t
    n_txn = rng.integers(3, 9, k)
    funcs = rng.choice(np.array(["READ_HOLDING_REGISTERS", "READ_INPUT_REGISTERS", "READ_COILS"]),
                       int(n_txn.sum()))
    conn, txn = modbus_sessions(rng, starts, rogue, c.plc, n_txn, funcs, gap_us=1_000_000)
    truth = _truth("7", n, f"Unknown host {rogue} polls {c.plc_id} as a new Modbus master",
                   c.plc_id, [], [rogue], t, int(txn["ts"].max()))
    return Parts(conn=[conn], modbus=[txn]), truth


def _internet_scan(rng: np.random.Generator, term: Terminal, t: int, crane_i: int, n: int,
                   scanner: str, learned: bool) -> tuple[Parts, dict[str, Any]]:
    """#8: an internet address probes Modbus, S7comm, EtherNet/IP and DNP3 on a crane PLC;
    where Modbus answers, it asks for the device identification and reads some registers."""
    c = term.cranes[crane_i]
    ports = np.array([102, 44818, 20000])
    k = int(rng.integers(3, 9))
    dport = np.concatenate([ports, rng.choice(ports, k - 3)]) if k > 3 else ports
    ts = np.sort(t + rng.integers(0, 3 * MINUTE_US, len(dport)))
    state = np.where(rng.random(len(dport)) < 0.5, "S0", "REJ")
    f = flows(rng, ts, scanner, c.plc, dport, "tcp", "-", state, out_median=80, in_median=60,
              dur_median=0.05)
    n_sess = int(rng.integers(1, 3))
    starts = np.sort(t + rng.integers(0, 3 * MINUTE_US, n_sess))
    starts[0] = t
    n_txn = rng.integers(2, 6, n_sess)
    funcs = rng.choice(np.array(["READ_HOLDING_REGISTERS", "READ_COILS", "REPORT_SLAVE_ID"]), int(n_txn.sum()))
    funcs[np.concatenate([[0], np.cumsum(n_txn)[:-1]])] = "ENCAP_INTERFACE_TRANSPORT"
    conn, txn = modbus_sessions(rng, starts, scanner, c.plc, n_txn, funcs, gap_us=300_000)
    last = max(int((f["ts"] + np.maximum(f["duration"], 0)).max()), int(txn["ts"].max()))
    truth = _truth("8", n, f"Internet scan of OT ports on {c.plc_id} from {scanner}, with Modbus "
                   "device identification", c.plc_id, [], [scanner], t, last, learned)
    return Parts(conn=[f, conn], modbus=[txn]), truth


def _bulk_upload(rng: np.random.Generator, term: Terminal, t: int, crane_i: int, n: int,
                 ext: str) -> tuple[Parts, dict[str, Any]]:
    """#10: a crane CMS uploads tens of MB, several times, to an external address."""
    c = term.cranes[crane_i]
    k = int(rng.integers(2, 6))
    ts = np.sort(t + rng.integers(0, 20 * MINUTE_US, k))
    ts[0] = t
    f = flows(rng, ts, c.cms, ext, 443, "tcp", "ssl", "SF", out_median=70e6, in_median=40_000,
              dur_median=90.0)
    f["orig_bytes"] = np.maximum(f["orig_bytes"], 25_000_000)
    f["orig_pkts"] = np.ceil(f["orig_bytes"] / 1200).astype(np.int64) + 3
    f["orig_ip_bytes"] = f["orig_bytes"] + 52 * f["orig_pkts"]
    last = int((f["ts"] + np.maximum(f["duration"], 0)).max())
    truth = _truth("10", n, f"{c.cms_id} uploads {int(f['orig_bytes'].sum()) // 1_000_000} MB to {ext}",
                   c.cms_id, [], [c.cms, ext], t, last)
    return Parts(conn=[f]), truth


def _scenario_tunnel(v: Vendor, i: int) -> str:
    """The ``i``-th planted session's tunnel address: the vendor's scenario tunnels, then
    the top of its pool (.240-.254), never a benign session's address."""
    if i < len(v.scenario_tunnels):
        return v.scenario_tunnels[i]
    extra = 240 + i - len(v.scenario_tunnels)
    if extra > 254:
        raise ValueError(f"more planted {v.name} sessions than tunnel addresses")
    return v.scenario_tunnels[0].rsplit(".", 1)[0] + f".{extra}"


def _beacon(rng: np.random.Generator, term: Terminal, t: int, crane_i: int, n: int,
            ext: str) -> tuple[Parts, dict[str, Any]]:
    """#10b: a crane PLC or CMS connects to an external address every 30-120 s (±2 %)
    for 20-40 min, a few hundred bytes each time."""
    c = term.cranes[crane_i]
    addr, asset = (c.plc, c.plc_id) if rng.random() < 0.5 else (c.cms, c.cms_id)
    period = int(rng.integers(30, 121)) * US
    k = int(rng.integers(20, 41)) * MINUTE_US // period
    ts = t + np.arange(k, dtype=np.int64) * period + (rng.normal(0, 0.02, k) * period).astype(np.int64)
    ts[0] = t
    port = int(rng.choice([443, 8883, 8443]))
    f = flows(rng, np.sort(ts), addr, ext, port, "tcp", "ssl" if port == 443 else "-", "SF",
              out_median=350, in_median=200, dur_median=0.4)
    last = int((f["ts"] + np.maximum(f["duration"], 0)).max())
    truth = _truth("10b", n, f"{asset} ({c.id}) beacons to {ext}:{port} every {period // US} s", asset, [],
                   [addr, ext], t, last)
    return Parts(conn=[f]), truth


def _intel_callback(rng: np.random.Generator, term: Terminal, t: int, n: int,
                    ext: str) -> tuple[Parts, dict[str, Any]]:
    """#11: an office desktop (not inventoried, so no OT egress detection applies) looks up
    the ISAC's C2 domain, which resolves to ``ext`` inside the ISAC's C2 indicator network,
    and makes a few HTTPS connections to it."""
    host = term.office_hosts[int(rng.integers(0, len(term.office_hosts)))]
    resolver = term.it_servers[1].address
    k = int(rng.integers(3, 9))
    ts = np.sort(t + rng.integers(0, int(rng.integers(5, 15)) * MINUTE_US, k))
    ts[0] = t
    lookup = flows(rng, np.array([t - int(rng.integers(20_000, 200_000))]), host, resolver, 53, "udp", "dns", "SF",
                   out_median=60, in_median=120, dur_median=0.02)
    dns = dns_lookups(rng, lookup, np.array([ISAC_C2_DOMAIN]), np.array([ext]), np.array([False]))
    dns["qtype"], dns["answers"] = np.array(["A"]), np.array([ext])
    f = flows(rng, ts, host, ext, 443, "tcp", "ssl", "SF", out_median=1800, in_median=6000, dur_median=2.0)
    last = int((f["ts"] + np.maximum(f["duration"], 0)).max())
    truth = _truth("11", n, f"Office host {host} resolves {ISAC_C2_DOMAIN} and connects to {ext}, listed by "
                   f"the ISAC as C2 ({ISAC_C2_NETWORK})", None, [], [host, ext], int(lookup["ts"][0]), last)
    return Parts(conn=[lookup, f], dns=[dns]), truth


def _lay_out(rng: np.random.Generator, free: list[int], kinds: list[str], start: int,
             accounts: list[tuple[Vendor, str]], windows: dict[str, list[tuple[int, int]]],
             n_cranes: int) -> Optional[list[tuple[str, int, Optional[tuple[Vendor, str]]]]]:
    """Put each scenario in a slot: at most one of a kind per slot, distinct cranes and
    accounts within a slot, vendor accounts only where their vendor has no window near,
    new masters only after the learning period. (kind, slot index, account) or None."""
    cranes = [0] * len(free)
    used: list[set[str]] = [set() for _ in free]
    kinds_in: list[set[str]] = [set() for _ in free]
    out: list[tuple[str, int, Optional[tuple[Vendor, str]]]] = []
    # Most constrained first: new masters (late slots), then vendor sessions.
    order = sorted(kinds, key=lambda k: (k != "7", k not in VENDOR_KINDS))
    for kind in order:
        placed = False
        for si in [int(i) for i in rng.permutation(len(free))]:
            t = free[si]
            if kind in kinds_in[si] or (kind in CRANE_KINDS and cranes[si] >= n_cranes):
                continue
            if kind == "7" and t - start < LEARNED_AFTER:
                continue
            acct = None
            if kind in VENDOR_KINDS:
                ok = [a for a in accounts if a[1] not in used[si] and not overlaps(
                    windows[a[0].name], t - WINDOW_MARGIN, t + SLOT_JITTER + MAX_LENGTH + WINDOW_MARGIN)]
                if not ok:
                    continue
                acct = ok[int(rng.integers(0, len(ok)))]
                used[si].add(acct[1])
            kinds_in[si].add(kind)
            cranes[si] += kind in CRANE_KINDS
            out.append((kind, si, acct))
            placed = True
            break
        if not placed:
            return None
    return out


def plant(rng: np.random.Generator, term: Terminal, start: int, end: int,
          windows: dict[str, list[tuple[int, int]]], events: int) -> Planted:
    """At least one of each scenario; two or three of each for larger corpora."""
    free = slots(start, end)
    per_kind = min(1 if events < 500_000 else 2 if events < 850_000 else 3, len(free))
    if per_kind < 1:
        raise ValueError("corpus span too short to plant one of each scenario")
    accounts = [(v, a) for v in term.vendors for a in v.accounts]
    kinds = [k for k in KINDS for _ in range(per_kind)]
    for _ in range(200):
        layout = _lay_out(rng, free, kinds, start, accounts, windows, len(term.cranes))
        if layout is not None:
            break
    else:
        raise ValueError("no slot layout fits every scenario (corpus span too short?)")
    # Within a slot: distinct cranes and external addresses per lane; every planted session
    # gets a tunnel address of its own (a reused one would already be a known Modbus master).
    crane_pool = {si: [int(i) for i in rng.permutation(len(term.cranes))] for si in range(len(free))}
    tunnels_used: dict[str, int] = {}
    planted = Planted()
    counters = {k: 0 for k in KINDS}
    accounts_in: dict[int, set[str]] = {}  # slot -> accounts its lanes use
    layout.sort(key=lambda x: (x[1], KINDS.index(x[0])))
    for kind, si, acct in layout:
        counters[kind] += 1
        n = counters[kind]
        t = free[si] + int(rng.integers(0, SLOT_JITTER))
        learned = t - start >= LEARNED_AFTER
        crane_i = crane_pool[si].pop() if kind in CRANE_KINDS else None
        if kind == "1":
            parts, truth = _out_of_band(rng, term, t, crane_i, n)
        elif kind == "5":
            parts, truth = _hmi_program_change(rng, term, t, crane_i, n, frozenset(accounts_in.get(si, ())))
        elif kind == "6":
            parts, truth = _hmi_parameter_change(rng, term, t, crane_i, n, frozenset(accounts_in.get(si, ())))
        elif kind == "7":
            parts, truth = _rogue_master(rng, term, t, crane_i, n)
        elif kind == "8":
            parts, truth = _internet_scan(rng, term, t, crane_i, n, f"80.82.77.{10 * si + n}", learned)
        elif kind == "10b":
            parts, truth = _beacon(rng, term, t, crane_i, n, f"100.72.{10 * si + n}.{int(rng.integers(1, 255))}")
        elif kind == "11":
            net = ipaddress.ip_network(ISAC_C2_NETWORK)
            parts, truth = _intel_callback(rng, term, t, n, str(net[256 + 10 * si + n]))
        elif kind == "10":
            parts, truth = _bulk_upload(rng, term, t, crane_i, n, f"198.51.100.{10 * si + n}")
        elif kind == "5s":
            parts, truth = depth.s7_copy_to_rom(rng, term, t, crane_i, n, _truth)
        elif kind == "6p":
            parts, truth = depth.cip_parameter_write(rng, term, t, crane_i, n, _truth)
        elif kind == "10s":
            parts, truth = depth.low_and_slow(rng, term, t, crane_i, n, f"198.51.100.{128 + 10 * si + n}", _truth)
        elif kind == "5r":
            parts, truth = depth.reversed_chain(rng, term, t, crane_i, n, f"100.73.{10 * si + n}.9", _truth)
        else:
            assert acct is not None
            v, account = acct
            i = tunnels_used.get(v.name, 0)
            tunnels_used[v.name] = i + (2 if kind == "3b" else 1)
            if kind == "3b":
                parts, truth = _concurrent_sessions(rng, term, t, v, account,
                                                    (_scenario_tunnel(v, i), _scenario_tunnel(v, i + 1)), n)
                planted.parts.add(parts)
                planted.truth.append(truth)
                continue
            attacker = f"185.220.101.{10 * si + n}"
            if kind == "9s":  # spraying, then the vendor account's login from the sprayer
                spray, up, tried = depth.spray_failures(rng, t, v, account, f"185.220.102.{10 * si + n}")
                parts, sess = _vendor_session(rng, term, up + int(rng.integers(20, 90)) * US, v, account,
                                              _scenario_tunnel(v, i), n, "3", None, f"185.220.102.{10 * si + n}",
                                              learned)
                parts.add(spray)
                truth = _truth("9s", n, f"Password spraying from {sess['addresses'][0]}, then {v.name} account "
                                        f"{account} logs in outside maintenance", None,
                               [account, *(a for a in tried if a != account)],
                               sess["addresses"], t, int(_us(sess["end"])))
            else:
                parts, truth = _vendor_session(rng, term, t, v, account, _scenario_tunnel(v, i), n, kind,
                                               crane_i, attacker, learned)
        planted.parts.add(parts)
        planted.truth.append(truth)
        accounts_in.setdefault(si, set()).update(truth["accounts"])
    return planted
