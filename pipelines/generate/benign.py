"""Benign terminal traffic, drawn as numpy columns (no per-event Python objects on the bulk path).

The traffic is shaped so detections are really exercised, not just fed noise: office hosts
browse the internet in bursts that follow the working day (internet flows that are normal
because the hosts are not OT), CMS/HMI/historian poll the crane PLCs over Modbus, the
engineering workstations read *and write* PLC registers, every OT asset talks to NTP, and
vendors connect over the VPN only inside their maintenance windows, reading (never writing)
PLC registers from their tunnel address, sometimes after one or two failed logins, and
engineers change parameters (within limits), modes and programs from their workstations
inside maintenance windows. Things that never happen in benign data:

* a vendor ``tunnel-up`` outside that vendor's maintenance windows or from outside its
  public network, or after more than two failed logins,
* a crane PLC/CMS/HMI originating a flow outside its ``allowed_egress``,
* a Modbus write to a crane PLC from anything but an engineering workstation, or a new
  Modbus master (other than an engineering workstation or an in-window vendor tunnel)
  after the first hour,
* a safety parameter outside its limits, or a parameter, mode or program change outside a
  maintenance window or from anything but an engineering workstation,
* an external address reaching an OT service port.

Times are integer microseconds since the epoch throughout.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from pipelines.generate.columns import (
    CRANE_PROFILE, IDENTIFY, OFFICE_PROFILE, READS, WRITES, Columns, Parts, code, codes, concat, diurnal_times, drawn,
    flows, modbus_sessions, periodic_times, split_counts,
)
from pipelines.generate.terminal import (
    MINUTE_US, PARAMETER_LIMITS, US, Terminal, Vendor,
)

# --- benign generators ----------------------------------------------------------------------


def _polling(rng: np.random.Generator, pairs: list[tuple[str, str]], txns: int, per_session: float,
             funcs: Sequence[str], probs: Sequence[float], start: int, end: int,
             gap_us: float) -> tuple[Columns, Columns]:
    """Periodic Modbus read sessions for each (poller, PLC) pair."""
    n_sess = max(len(pairs), round(txns / per_session))
    per_pair = split_counts(rng, n_sess, len(pairs)) if n_sess >= len(pairs) else np.ones(len(pairs), np.int64)
    ts, orig, resp = [], [], []
    for (o, r), k in zip(pairs, per_pair):
        times = periodic_times(rng, int(k), start, end)
        # A poller runs from the start: its first poll falls in the first minutes, so
        # (however sparse the corpus) it is a known master before the learning period ends.
        times[:1] = np.minimum(times[:1], start + int(rng.integers(0, 15 * MINUTE_US)))
        ts.append(times)
        orig.append(np.full(int(k), code(o), np.int32))
        resp.append(np.full(int(k), code(r), np.int32))
    ts_all = np.concatenate(ts)
    n_txn = split_counts(rng, max(txns, len(ts_all)), len(ts_all))
    f = rng.choice(codes(funcs), int(n_txn.sum()), p=np.array(probs))
    return modbus_sessions(rng, ts_all, np.concatenate(orig), np.concatenate(resp), n_txn, f, gap_us)


def modbus_traffic(rng: np.random.Generator, term: Terminal, start: int, end: int,
                   txns: int) -> Parts:
    """CMS, HMI and historian polling plus engineering-workstation reads and writes."""
    end_s = end - 5 * MINUTE_US
    out = Parts()
    cranes = term.cranes
    hist = term.historian.address
    plans = [
        ([(c.cms, c.plc) for c in cranes], 0.45, 6, READS, (.5, .3, .1, .1), 15_000),
        ([(c.hmi, c.plc) for c in cranes], 0.20, 4, READS[:3], (.6, .2, .2), 10_000),
        ([(hist, c.plc) for c in cranes], 0.20, 8, READS[:2], (.6, .4), 8_000),
    ]
    for pairs, share, per, funcs, probs, gap in plans:
        conn, txn = _polling(rng, pairs, max(1, round(txns * share)), per, funcs, probs, start, end_s, gap)
        out.conn.append(conn)
        out.modbus.append(txn)
    # Engineers: clustered work sessions from the engineering workstations, reads and writes.
    ews_txns = max(6, round(txns * 0.15))
    n_sess = max(2, round(ews_txns / 6))
    centers = diurnal_times(rng, max(1, n_sess // 3), start, end_s - 40 * MINUTE_US, CRANE_PROFILE)
    ts = np.sort(rng.choice(centers, n_sess) + rng.integers(0, 30 * MINUTE_US, n_sess))
    ews = codes([h.address for h in term.engineering])[rng.integers(0, len(term.engineering), n_sess)]
    plcs = codes([c.plc for c in cranes])[rng.integers(0, len(cranes), n_sess)]
    n_txn = split_counts(rng, max(ews_txns, n_sess), n_sess)
    total = int(n_txn.sum())
    write = rng.random(total) < 0.3
    write[rng.integers(0, total)] = True  # at least one write in every corpus
    # Reads, and now and then the identification an engineering tool sends on connecting
    # (the benign look-alike of a scanner's reconnaissance reads).
    funcs = np.where(write, rng.choice(codes(WRITES), total, p=[.5, .35, .15]),
                     rng.choice(codes(READS[:3] + IDENTIFY), total, p=[.55, .25, .12, .05, .03]))
    conn, txn = modbus_sessions(rng, ts, ews, plcs, n_txn, funcs, gap_us=900_000)
    out.conn.append(conn)
    out.modbus.append(txn)
    return out


def ot_flows(rng: np.random.Generator, term: Terminal, start: int, end: int, ntp_n: int,
             misc_n: int) -> Parts:
    """NTP from every OT host (allowed egress), CMS → historian, HMI → CMS, engineer RDP."""
    clients = [a for c in term.cranes for a in (c.plc, c.cms, c.hmi)]
    clients += [h.address for h in (*term.engineering, term.jump_host, term.historian)]
    per = split_counts(rng, max(ntp_n, len(clients)), len(clients))
    ts = np.concatenate([periodic_times(rng, int(k), start, end, 0.1) for k in per])
    src = np.repeat(codes(clients), per)
    parts = [flows(rng, ts, src, term.ntp.address, 123, "udp", "ntp", out_median=48,
                   in_median=48, dur_median=0.004, orig_p=123)]
    parts[0]["orig_bytes"][:] = 48
    parts[0]["resp_bytes"][:] = 48
    parts[0]["orig_pkts"][:] = 1
    parts[0]["resp_pkts"][:] = 1
    parts[0]["orig_ip_bytes"][:] = 76
    parts[0]["resp_ip_bytes"][:] = 76
    # CMS pushes crane data to the historian; the cab HMI pulls screens from the CMS.
    k = max(len(term.cranes), round(misc_n * 0.45))
    per = split_counts(rng, k, len(term.cranes))
    ts = np.concatenate([periodic_times(rng, int(n), start, end) for n in per])
    parts.append(flows(rng, ts, np.repeat(codes([c.cms for c in term.cranes]), per), term.historian.address,
                       4840, "tcp", "-", out_median=6000, in_median=400, dur_median=0.8))
    k = max(len(term.cranes), round(misc_n * 0.40))
    per = split_counts(rng, k, len(term.cranes))
    ts = np.concatenate([periodic_times(rng, int(n), start, end) for n in per])
    idx = np.repeat(np.arange(len(term.cranes)), per)
    parts.append(flows(rng, ts, codes([c.hmi for c in term.cranes])[idx],
                       codes([c.cms for c in term.cranes])[idx], 4840, "tcp", "-",
                       out_median=300, in_median=5000, dur_median=0.3))
    # Engineers reach the OT through the jump host (IT desk → jump host → workstation).
    k = max(2, misc_n - sum(len(p["ts"]) for p in parts[1:]))
    ts = diurnal_times(rng, k, start, end, OFFICE_PROFILE)
    hop = rng.random(k) < 0.5
    office = codes(term.office_hosts[:6])[rng.integers(0, 6, k)]
    ews = codes([h.address for h in term.engineering])[rng.integers(0, len(term.engineering), k)]
    jump = code(term.jump_host.address)
    parts.append(flows(rng, ts, np.where(hop, jump, office), np.where(hop, ews, jump), 3389, "tcp", "rdp",
                       out_median=80_000, in_median=900_000, dur_median=600))
    return Parts(conn=parts)


#: Names office desktops look up (Zipf-weighted); answers come from the browsing pool.
DOMAINS = ("portal.port.example", "mail.port.example", "teams.microsoft.com", "login.microsoftonline.com",
           "www.google.com", "outlook.office365.com", "update.windows.com", "www.marinetraffic.com",
           "tos.terminal.example", "www.uscg.mil", "ctldl.windowsupdate.com", "www.msc.com",
           "clients4.google.com", "edge.microsoft.com", "ocsp.digicert.com", "weather.gov")


def dns_lookups(rng: np.random.Generator, conn: Columns, queries: np.ndarray, answers: np.ndarray,
                nxdomain: np.ndarray) -> Columns:
    """Zeek dns.log rows for DNS flows (same uid, endpoints and start as their conn rows)."""
    n = len(conn["ts"])
    aaaa = rng.random(n) < 0.2  # an AAAA question: answered empty (no IPv6 for these names)
    return {"ts": conn["ts"], "uid": conn["uid"], "orig_h": conn["orig_h"], "orig_p": conn["orig_p"],
            "resp_h": conn["resp_h"], "resp_p": conn["resp_p"], "proto": conn["proto"],
            "trans_id": rng.integers(0, 65536, n).astype(np.int32), "rtt": rng.integers(300, 40_000, n).astype(np.int32),
            "query": codes(queries), "qtype": np.where(aaaa, code("AAAA"), code("A")).astype(np.int32),
            "rcode": np.where(nxdomain, code("NXDOMAIN"), code("NOERROR")).astype(np.int32),
            "answers": np.where(nxdomain | aaaa, code("-"), codes(answers)).astype(np.int32)}


def office_flows(rng: np.random.Generator, term: Terminal, start: int, end: int,
                 internal_n: int, internet_n: int) -> Parts:
    """Office IT: DNS/Kerberos/LDAP/SMB inside (each DNS flow also a dns.log lookup, so a
    lookup is two records), and bursty web traffic to the internet."""
    dc, dns, fs = (h.address for h in term.it_servers)
    hosts = codes(term.office_hosts)
    host_w = 1 / np.arange(1, len(hosts) + 1) ** 0.6
    host_w /= host_w.sum()
    parts: list[Columns] = []
    lookups: list[Columns] = []
    if internal_n > 0:
        kind = rng.choice(4, internal_n, p=[.55, .12, .10, .23])
        # a DNS flow brings its dns.log row: keep ``internal_n`` records in all
        kind = kind[: max(1, int(np.searchsorted(np.cumsum(1 + (kind == 0)), internal_n, side="right")))]
        n = len(kind)
        ts = diurnal_times(rng, n, start, end, OFFICE_PROFILE)
        dst = codes([dns, dc, dc, fs])[kind]
        port = np.array([53, 88, 389, 445])[kind]
        proto = codes(["udp", "tcp", "tcp", "tcp"])[kind]
        svc = codes(["dns", "krb_tcp", "ldap", "smb"])[kind]
        state = np.where(rng.random(n) < 0.01, code("S0"), code("SF"))
        f = flows(rng, ts, rng.choice(hosts, n, p=host_w), dst, port, proto, svc, state,
                  out_median=300, in_median=900, dur_median=0.05)
        parts.append(f)
        is_dns = kind == 0
        if is_dns.any():
            k = int(is_dns.sum())
            dom_w = 1 / np.arange(1, len(DOMAINS) + 1) ** 1.1
            q = rng.choice(codes(DOMAINS), k, p=dom_w / dom_w.sum())
            pool = codes(term.internet)
            lookups.append(dns_lookups(rng, {c: v[is_dns] for c, v in f.items()}, q,
                                       rng.choice(pool, k), rng.random(k) < 0.02))
    if internet_n > 0:
        # Bursts (a page load, a sync) start as a diurnal Poisson process; each burst is
        # one host talking to one site plus some CDN hosts within a few seconds.
        sizes = rng.geometric(1 / 6, int(internet_n / 6 * 1.5) + 10)
        cut = int(np.searchsorted(np.cumsum(sizes), internet_n))
        sizes = sizes[: cut + 1]
        sizes[-1] -= int(sizes.sum()) - internet_n
        sizes = sizes[sizes > 0]
        nb = len(sizes)
        t0 = diurnal_times(rng, nb, start, end - 2 * MINUTE_US, OFFICE_PROFILE)
        # (the bulk of a large corpus: drawn in chunks, into compact dtypes; same values)
        burst = np.repeat(np.arange(nb, dtype=np.int32), sizes)
        cum = np.cumsum(drawn(internet_n, lambda m: rng.exponential(0.4 * US, m), lambda v: v.astype(np.int64)))
        firsts = np.zeros(nb, dtype=np.int64)
        np.cumsum(sizes[:-1], out=firsts[1:])
        ts = t0[burst]
        ts += cum
        ts -= (cum[firsts])[burst]
        del cum
        np.minimum(ts, end - 1, out=ts)
        pool = codes(term.internet)
        site_w = 1 / np.arange(1, len(pool) + 1) ** 1.1
        site = rng.choice(len(pool), nb, p=site_w / site_w.sum())
        near = drawn(internet_n, rng.random, lambda v: v < 0.7)
        dst = np.where(near, pool[site][burst], drawn(internet_n, lambda m: rng.choice(pool, m)))
        del near
        src = rng.choice(hosts, nb, p=host_w)[burst]
        del burst
        kind = drawn(internet_n, lambda m: rng.choice(4, m, p=[.78, .08, .10, .04]), lambda v: v.astype(np.int8))
        port = np.array([443, 80, 443, 8443], np.int32)[kind]
        proto = codes(["tcp", "tcp", "udp", "tcp"])[kind]
        svc = codes(["ssl", "http", "quic", "-"])[kind]
        del kind
        s0, sf = np.int32(code("S0")), np.int32(code("SF"))
        rsto, rej = np.int32(code("RSTO")), np.int32(code("REJ"))
        state = drawn(internet_n, rng.random, lambda r: np.where(r < 0.03, s0, np.where(r < 0.05, rsto, np.where(
            r < 0.06, rej, sf))))
        udp = proto == code("udp")
        state[udp] = np.where(state[udp] == s0, s0, sf)
        parts.append(flows(rng, ts, src, dst, port, proto, svc, state,
                           out_median=900, in_median=12_000, dur_median=1.5))
    return Parts(conn=parts, dns=lookups)


def _cms(ts: int, crane: str, event_type: str, **fields: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"ts": ts - ts % 1000, "crane_id": crane, "event_type": event_type}
    rec.update({k: v for k, v in fields.items() if v is not None})
    return rec


ALARMS = (
    ("A1203", "wind speed {:.1f} m/s above warning level", (12.0, 17.0)),
    ("A2110", "spreader twistlock not confirmed locked on landing", None),
    ("A3305", "hoist overload prewarning {:.1f} t", (55.0, 59.0)),
    ("A4102", "trolley approaching travel end limit", None),
    ("A5001", "gantry anti-collision sensor warning", None),
    ("A6120", "boom hoist brake wear {:.0f}%", (60.0, 85.0)),
    ("A7002", "spreader sway above threshold", None),
    ("A8003", "container weight differs from manifest by {:.1f} t", (2.0, 6.0)),
)


def cms_events(rng: np.random.Generator, term: Terminal, start: int, end: int, n: int,
               windows: dict[str, list[tuple[int, int]]]) -> Parts:
    """Routine CMS records: shift logins, alarms, and engineers' in-limit parameter changes,
    mode changes and program backups/downloads from their workstations during maintenance
    windows (the benign look-alikes of scenarios 5 and 6)."""
    out: list[dict[str, Any]] = []
    cranes = term.cranes
    ops = list(term.operators)
    # Shift changes at 06, 14 and 22 UTC: the outgoing operator logs out, the next logs in.
    first_hour = start // (3600 * US)
    for h in range(first_hour, end // (3600 * US) + 1):
        if h % 24 not in (6, 14, 22) or not start <= h * 3600 * US < end - 15 * MINUTE_US:
            continue
        for i, c in enumerate(cranes):
            t = h * 3600 * US + int(rng.integers(-8, 8)) * MINUTE_US + int(rng.integers(0, 60 * US))
            t = max(start, t)
            shift = (h // 8 + i) % len(ops)
            out.append(_cms(t, c.id, "logout", controller=c.cms_id, user=ops[shift - 1],
                            source_ip=c.hmi, result="success"))
            out.append(_cms(t + int(rng.integers(30, 300)) * US, c.id, "login", controller=c.cms_id,
                            user=ops[shift], source_ip=c.hmi, result="success"))
    # Maintenance windows: engineers tune speeds and limits within engineering limits.
    for vendor, spans in windows.items():
        for ws, we in spans:
            a, b = max(ws, start), min(we, end - MINUTE_US)
            if b - a < 30 * MINUTE_US:
                continue
            c = cranes[int(rng.integers(0, len(cranes)))]
            eng, ews = term.engineers[int(rng.integers(0, len(term.engineers)))]
            out.append(_cms(a + 10 * MINUTE_US, c.id, "mode_change", controller=c.plc_id, user=eng,
                            source_ip=ews, parameter="mode", old_value="auto",
                            new_value="maintenance", result="success"))
            out.append(_cms(b - 10 * MINUTE_US, c.id, "mode_change", controller=c.plc_id, user=eng,
                            source_ip=ews, parameter="mode", old_value="maintenance",
                            new_value="auto", result="success"))
            if rng.random() < 0.6:
                # A program change: back up the running program, download the new one.
                t = int(rng.integers(a + 12 * MINUTE_US, b - 14 * MINUTE_US))
                out.append(_cms(t, c.id, "program_upload", controller=c.plc_id, user=eng,
                                source_ip=ews, result="success", message="backup before change"))
                out.append(_cms(t + int(rng.integers(60, 120)) * US, c.id, "program_download",
                                controller=c.plc_id, user=eng, source_ip=ews, result="success",
                                message="block FB12 downloaded"))
            names = sorted(PARAMETER_LIMITS)
            for _ in range(int(rng.integers(2, 6))):
                p = names[int(rng.integers(0, len(names)))]
                lo, hi, step = PARAMETER_LIMITS[p]
                steps = int(round((hi - lo) / step))
                k = int(rng.integers(0, steps))
                old, new = (k, k + 1) if rng.random() < 0.5 else (k + 1, k)
                t = int(rng.integers(a + 12 * MINUTE_US, b - 12 * MINUTE_US))
                out.append(_cms(t, c.id, "parameter_change", controller=c.plc_id, user=eng,
                                source_ip=ews, parameter=p, old_value=f"{lo + old * step:g}",
                                new_value=f"{lo + new * step:g}", result="success"))
    # The rest: alarms (most), short operator breaks (logout/login), mistyped logins.
    rest = max(0, n - len(out))
    n_alarm = int(rest * 0.8)
    ts = np.sort(diurnal_times(rng, n_alarm, start, end, CRANE_PROFILE))
    which = rng.integers(0, len(ALARMS), n_alarm)
    crane_i = rng.integers(0, len(cranes), n_alarm)
    vals = rng.random(n_alarm)
    for t, w, ci, v in zip(ts.tolist(), which.tolist(), crane_i.tolist(), vals.tolist()):
        code, text, rng_v = ALARMS[w]
        msg = text.format(rng_v[0] + v * (rng_v[1] - rng_v[0])) if rng_v else text
        c = cranes[ci]
        out.append(_cms(t, c.id, "alarm", controller=c.plc_id, result="success", message=msg,
                        alarm_code=code))
    k = (rest - n_alarm) // 2
    ts = diurnal_times(rng, k, start, end - 30 * MINUTE_US, CRANE_PROFILE)
    for t, ci, oi, fail in zip(ts.tolist(), rng.integers(0, len(cranes), k).tolist(),
                               rng.integers(0, len(ops), k).tolist(), (rng.random(k) < 0.08).tolist()):
        c, user = cranes[ci], ops[oi]
        if fail:
            out.append(_cms(t, c.id, "login", controller=c.cms_id, user=user, source_ip=c.hmi,
                            result="failure", message="invalid password"))
            t += int(rng.integers(10, 60)) * US
        else:
            out.append(_cms(t, c.id, "logout", controller=c.cms_id, user=user, source_ip=c.hmi,
                            result="success"))
            t += int(rng.integers(5, 25)) * MINUTE_US
        out.append(_cms(t, c.id, "login", controller=c.cms_id, user=user, source_ip=c.hmi,
                        result="success"))
    return Parts(cms=out)


def vpn_record(ts: int, action: str, user: str, vendor: Vendor, remip: str, tunnelip: str | None,
               tunnelid: int, **extra: Any) -> dict[str, Any]:
    return {"ts": ts, "action": action, "user": user, "group": vendor.group, "remip": remip,
            "tunnelip": tunnelip, "tunnelid": tunnelid, **extra}


def tunnel_records(up: int, down: int, user: str, vendor: Vendor, remip: str, tunnelip: str,
                   tunnelid: int, conns: Sequence[Columns]) -> list[dict[str, Any]]:
    """A session's ``tunnel-up`` and ``tunnel-down``; the gateway's byte counters cover the
    session's flows (``conns``) plus tunnel overhead, seen from the client's side."""
    sent = sum(int(c["orig_bytes"].sum()) for c in conns)
    rcvd = sum(int(c["resp_bytes"].sum()) for c in conns)
    return [vpn_record(up, "tunnel-up", user, vendor, remip, tunnelip, tunnelid),
            vpn_record(down, "tunnel-down", user, vendor, remip, tunnelip, tunnelid,
                       duration=(down - up) // US, sentbyte=rcvd + 4096, rcvdbyte=sent + 2048)]


def vendor_activity(rng: np.random.Generator, term: Terminal, tunnel: str, up: int, down: int,
                    plcs: Sequence[str]) -> Parts:
    """What a vendor does inside one VPN session: RDP to the jump host, and Modbus *reads*
    (sometimes starting with device identification) from the tunnel address to the given
    PLCs (writes are what scenario 4 plants)."""
    out = Parts()
    out.conn.append(flows(rng, np.array([up + int(rng.integers(30, 90)) * US]), tunnel,
                          term.jump_host.address, 3389, "tcp", "rdp", out_median=200_000,
                          in_median=3_000_000, dur_median=max(60.0, (down - up) / US * 0.6)))
    span = down - up
    for plc in plcs:
        n_sess = int(rng.integers(1, 4))
        ts = np.sort(up + (span * (0.15 + 0.6 * rng.random(n_sess))).astype(np.int64))
        n_txn = rng.integers(3, 11, n_sess)
        funcs = rng.choice(np.array(READS[:3]), int(n_txn.sum()), p=[.7, .2, .1])
        # the vendor's tool identifies the PLC first, in some sessions (in-window: benign)
        first = np.concatenate([[0], np.cumsum(n_txn)[:-1]])
        funcs[first[rng.random(n_sess) < 0.4]] = IDENTIFY[0]
        conn, txn = modbus_sessions(rng, ts, tunnel, plc, n_txn, funcs, gap_us=1_500_000)
        out.conn.append(conn)
        out.modbus.append(txn)
    return out


def vendor_sessions(rng: np.random.Generator, term: Terminal, start: int, end: int,
                    windows: dict[str, list[tuple[int, int]]], per_window: int) -> Parts:
    """In-window vendor VPN sessions: optional failed logins, tunnel-up, reads, tunnel-down."""
    out = Parts()
    for v in term.vendors:
        n_tunnel = 0
        for ws, we in windows[v.name]:
            a, b = max(ws, start), min(we, end)
            m = min(per_window, len(v.accounts))
            slot = (b - a) // max(1, m)
            if slot < 30 * MINUTE_US:
                m, slot = (1, b - a) if b - a >= 30 * MINUTE_US else (0, 0)
            first = int(rng.integers(0, len(v.accounts)))
            for i in range(m):
                s0 = a + i * slot
                up = s0 + int(rng.integers(3 * 60, 8 * 60)) * US
                down = up + int(rng.integers(12 * 60, max(13 * 60, (slot - 11 * MINUTE_US) // US))) * US
                down = min(down, s0 + slot - MINUTE_US)
                account = v.accounts[(first + i) % len(v.accounts)]
                remip = v.public_address(account)
                tunnel = v.benign_tunnels[n_tunnel % len(v.benign_tunnels)]
                n_tunnel += 1
                tid = int(rng.integers(1_000_000_000, 2_000_000_000))
                if rng.random() < 0.35:
                    unknown = rng.random() < 0.4
                    user = account.replace("-", "_") if unknown else account
                    reason = "sslvpn_login_unknown_user" if unknown else "sslvpn_login_permission_denied"
                    for j in range(int(rng.integers(1, 3))):
                        out.vpn.append(vpn_record(up - (40 + 50 * j) * US - int(rng.integers(0, 10 * US)),
                                                  "ssl-login-fail", user, v, remip, None, 0, reason=reason))
                picked = rng.permutation(len(term.cranes))[: int(rng.integers(1, 3))]
                plcs = [term.cranes[int(j)].plc for j in picked]
                act = vendor_activity(rng, term, tunnel, up, down, plcs)
                out.add(act)
                out.vpn += tunnel_records(up, down, account, v, remip, tunnel, tid, act.conn)
                if rng.random() < 0.5:
                    c = next(c for c in term.cranes if c.plc == plcs[0])
                    out.cms.append(_cms(up + 4 * MINUTE_US, c.id, "login", controller=c.cms_id,
                                        user=account, source_ip=tunnel, result="success"))
                    out.cms.append(_cms(down - 2 * MINUTE_US, c.id, "logout", controller=c.cms_id,
                                        user=account, source_ip=tunnel, result="success"))
    return out


def generate_benign(rng: np.random.Generator, term: Terminal, start: int, end: int,
                    budget: int, windows: dict[str, list[tuple[int, int]]]) -> Parts:
    """Benign records totalling exactly ``budget`` (office web traffic takes the remainder)
    whenever ``budget`` is large enough for the fixed parts (vendor sessions, shifts)."""
    out = vendor_sessions(rng, term, start, end, windows, per_window=min(4, 2 + budget // 400_000))
    out.add(cms_events(rng, term, start, end, round(budget * 0.03), windows))
    out.add(modbus_traffic(rng, term, start, end, round(budget * 0.09)))
    out.add(ot_flows(rng, term, start, end, round(budget * 0.02), round(budget * 0.04)))
    out.add(office_flows(rng, term, start, end, round(budget * 0.18), 0))
    out.add(office_flows(rng, term, start, end, 0, max(0, budget - out.records())))
    return out


__all__ = ["Parts", "Columns", "concat", "dns_lookups", "flows", "modbus_sessions", "tunnel_records",
           "vendor_activity", "vpn_record", "generate_benign"]
