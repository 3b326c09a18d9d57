"""Planted scenarios on the S7comm and CIP wire, password spraying, low-and-slow upload and a
reversed chain look-alike, with the ICSNPP S7comm / CIP logs they need.

* 5s  the cab HMI copies a crane PLC's RAM to ROM over S7comm (a program change made
      permanent, not from an engineering workstation)
* 6p  the cab HMI sets a CIP attribute (Set Attribute Single on the Parameter object)
      of a crane PLC
* 9s  one outside address fails logins on many accounts, then logs in to a vendor account
      outside its window (password spraying)
* 10s a crane CMS trickles data out in many small uploads to one external address
* 5r  the chain's stages in reverse on one crane, linked by it: an S7 copy RAM to ROM and
      S7 variable writes from the HMI, then the PLC reaches an internet address; one
      incident, not critical (``truth.json`` ``reversed: true``)

The S7 and CIP rows are written as ICSNPP does (``s7comm.log``: a Job-Request and its
ACK-Data per PDU reference; ``cip.log``: a request and a response row per service), so
the pipeline reads them with its real parsers.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from pipelines.generate.benign import vpn_record
from pipelines.generate.columns import Parts, flows
from pipelines.generate.terminal import MINUTE_US, US, Terminal, Vendor

KINDS = ("5s", "6p", "9s", "10s", "5r")
EXPECTED = {
    "5s": ["s7_program_or_stop"],
    "6p": ["cip_program_or_parameter_change"],
    "9s": ["vendor_session_outside_window", "vendor_login_unexpected_network", "vpn_password_spraying"],
    "10s": ["ot_unexpected_egress", "ot_exfiltration_low_and_slow"],
    "5r": ["s7_program_or_stop", "s7_write_non_engineering", "ot_unexpected_egress"],
}
#: SCENARIOS.md numbers (the look-alike's access stage is an out-of-band egress, #1).
NUMBER = {"5s": 5, "6p": 6, "9s": 9, "10s": 10, "5r": 1}
VENDOR_KINDS = {"9s"}
CRANE_KINDS = {"5s", "6p", "10s", "5r"}
#: Accounts a sprayer tries besides the vendor's (names no one at the port owns).
SPRAYED = ("jsmith", "mlee", "ops01", "svc-backup", "kwong", "tnguyen", "plant-eng", "rgarcia")

S7_FIELDS = ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "is_orig", "source_h", "source_p",
             "destination_h", "destination_p", "rosctr_code", "rosctr_name", "pdu_reference", "function_code",
             "function_name", "subfunction_code", "subfunction_name", "error_class", "error_code")
S7_TYPES = ("time", "string", "addr", "port", "addr", "port", "bool", "addr", "port", "addr", "port", "count",
            "string", "count", "string", "string", "string", "string", "string", "string")
CIP_FIELDS = ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "is_orig", "source_h", "source_p",
              "destination_h", "destination_p", "cip_sequence_count", "direction", "cip_service_code", "cip_service",
              "cip_status_code", "cip_status", "cip_extended_status_code", "cip_extended_status", "class_id",
              "class_name", "instance_id", "attribute_id")
CIP_TYPES = ("time", "string", "addr", "port", "addr", "port", "bool", "addr", "port", "addr", "port", "count",
             "string", "string", "string", "string", "string", "string", "string", "string", "string", "string",
             "string")


def _uid(rng: np.random.Generator) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "C" + "".join(letters[int(i)] for i in rng.integers(0, len(letters), 17))


def _s7_jobs(rng: np.random.Generator, t: int, client: str, plc: str,
             jobs: list[tuple[str, str, str, str]]) -> tuple[list[dict[str, Any]], int]:
    """S7comm rows: setup communication, then each job (code, name, PI service, its name)
    as a Job-Request and its ACK-Data, a second or two apart. Returns rows and end time."""
    uid, port = _uid(rng), int(rng.integers(49152, 65000))
    rows = []
    for ref, (code, name, sub, subname) in enumerate([("0xf0", "Setup Communication", "-", "-"), *jobs]):
        rows.append({"ts": t, "uid": uid, "orig": client, "orig_p": port, "resp": plc, "is_orig": "T", "rosctr": (1, "Job-Request"),
                     "ref": ref, "code": code, "name": name, "sub": sub, "subname": subname, "err": ("-", "-")})
        rows.append({"ts": t + int(rng.integers(2_000, 9_000)), "uid": uid, "orig": client, "orig_p": port, "resp": plc,
                     "is_orig": "F", "rosctr": (3, "ACK-Data"), "ref": ref, "code": code, "name": name, "sub": "-",
                     "subname": "-", "err": ("No error", "0x00")})
        t += int(rng.integers(1, 3)) * US
    return rows, t


def _conn(rng: np.random.Generator, t: int, client: str, plc: str, port: int, svc: str) -> Any:
    return flows(rng, np.array([t]), client, plc, port, "tcp", svc, "SF", out_median=900, in_median=1500,
                 dur_median=20.0)


def s7_copy_to_rom(rng: np.random.Generator, term: Terminal, t: int, crane_i: int, n: int,
                   truth_of: Any) -> tuple[Parts, dict[str, Any]]:
    """#5 on the wire: the cab HMI stops the PLC and copies RAM to ROM."""
    c = term.cranes[crane_i]
    rows, end = _s7_jobs(rng, t, c.hmi, c.plc, [("0x29", "PLC Stop", "-", "-"),
                                                ("0x28", "PLC Control", "_MODU", "PLC Copy Ram to Rom")])
    parts = Parts(conn=[_conn(rng, t - US, c.hmi, c.plc, 102, "cotp,s7comm")], s7=rows)
    return parts, truth_of("5s", n, f"{c.hmi_id} stops {c.plc_id} and copies RAM to ROM over S7comm",
                           c.plc_id, [], [c.hmi, c.plc], t - US, end)


def cip_parameter_write(rng: np.random.Generator, term: Terminal, t: int, crane_i: int, n: int,
                        truth_of: Any) -> tuple[Parts, dict[str, Any]]:
    """#6 on the wire: the cab HMI sets Parameter-object attributes of the PLC over CIP."""
    c = term.cranes[crane_i]
    uid, port = _uid(rng), int(rng.integers(49152, 65000))
    rows = []
    for i in range(int(rng.integers(1, 4))):
        seq = int(rng.integers(1, 60000))
        ts = t + i * int(rng.integers(2, 6)) * US
        inst = f"0x{int(rng.integers(1, 40)):02x}"
        rows.append({"ts": ts, "uid": uid, "orig": c.hmi, "orig_p": port, "resp": c.plc, "is_orig": "T", "seq": seq,
                     "direction": "request", "status": ("-", "-"), "cls": ("0x0f", "Parameter"), "inst": inst})
        rows.append({"ts": ts + int(rng.integers(2_000, 9_000)), "uid": uid, "orig": c.hmi, "orig_p": port,
                     "resp": c.plc, "is_orig": "F", "seq": seq, "direction": "response", "status": ("0x00", "Success"),
                     "cls": ("-", "-"), "inst": "-"})
    parts = Parts(conn=[_conn(rng, t - US, c.hmi, c.plc, 44818, "enip")], cip=rows)
    return parts, truth_of("6p", n, f"{c.hmi_id} sets CIP parameter attributes of {c.plc_id}",
                           c.plc_id, [], [c.hmi, c.plc], t - US, int(rows[-1]["ts"]))


def spray_failures(rng: np.random.Generator, t: int, vendor: Vendor, account: str,
                   attacker: str) -> tuple[Parts, int, list[str]]:
    """#9 by spraying: one or two failed logins on each of several accounts from one foreign
    address, the vendor's account last; its login follows (``plant``). Returns the
    failures, when they end and the accounts tried."""
    tried = [str(a) for a in rng.permutation(SPRAYED)[: int(rng.integers(5, 8))]] + [account]
    out = Parts()
    ft = t
    for user in tried:
        for _ in range(int(rng.integers(1, 3)) if user != account else 1):
            out.vpn.append(vpn_record(ft, "ssl-login-fail", user, vendor, attacker, None, 0,
                                      reason="sslvpn_login_unknown_user" if user != account
                                      else "sslvpn_login_permission_denied"))
            ft += int(rng.integers(10, 25)) * US
    return out, ft, tried


def low_and_slow(rng: np.random.Generator, term: Terminal, t: int, crane_i: int, n: int, ext: str,
                 truth_of: Any) -> tuple[Parts, dict[str, Any]]:
    """#10 slowly: a crane CMS sends 25-40 uploads of 150-400 kB to one external address
    over about 40 minutes, at irregular intervals (no beacon)."""
    c = term.cranes[crane_i]
    k = int(rng.integers(25, 41))
    ts = np.sort(t + rng.integers(0, 40 * MINUTE_US, k))
    ts[0] = t
    f = flows(rng, ts, c.cms, ext, 443, "tcp", "ssl", "SF", out_median=250_000, in_median=6_000, dur_median=3.0)
    f["orig_bytes"] = np.clip(f["orig_bytes"], 150_000, 400_000)
    f["orig_pkts"] = np.ceil(f["orig_bytes"] / 1200).astype(np.int64) + 3
    f["orig_ip_bytes"] = f["orig_bytes"] + 52 * f["orig_pkts"]
    last = int((f["ts"] + np.maximum(f["duration"], 0)).max())
    return Parts(conn=[f]), truth_of("10s", n, f"{c.cms_id} trickles {int(f['orig_bytes'].sum()) // 1000} kB to {ext} "
                                               f"in {k} uploads", c.cms_id, [], [c.cms, ext], t, last)


def reversed_chain(rng: np.random.Generator, term: Terminal, t: int, crane_i: int, n: int, ext: str,
                   truth_of: Any) -> tuple[Parts, dict[str, Any]]:
    """The chain's stages in reverse on one crane: impact (copy RAM to ROM from the HMI),
    then commands (S7 variable writes from the HMI), then access (the PLC reaches ``ext``)."""
    c = term.cranes[crane_i]
    rows, t1 = _s7_jobs(rng, t, c.hmi, c.plc, [("0x28", "PLC Control", "_MODU", "PLC Copy Ram to Rom")])
    writes, t2 = _s7_jobs(rng, t1 + 8 * MINUTE_US, c.hmi, c.plc,
                          [("0x05", "Write Variable", "-", "-")] * int(rng.integers(2, 5)))
    egress_at = t2 + 8 * MINUTE_US
    egress = flows(rng, np.array([egress_at, egress_at + 40 * US]), c.plc, ext, 443, "tcp", "ssl", "SF",
                   out_median=2500, in_median=700, dur_median=4.0)
    conns = [_conn(rng, t - US, c.hmi, c.plc, 102, "cotp,s7comm"),
             _conn(rng, t1 + 8 * MINUTE_US - US, c.hmi, c.plc, 102, "cotp,s7comm"), egress]
    last = int((egress["ts"] + np.maximum(egress["duration"], 0)).max())
    truth = truth_of("5r", n, f"Reversed look-alike on {c.plc_id}: copy RAM to ROM and writes from {c.hmi_id}, "
                              f"then egress to {ext}", c.plc_id, [], [c.hmi, c.plc, ext], t - US, last)
    truth["reversed"] = True
    return Parts(conn=conns, s7=rows + writes), truth


def _tsv(values: list[str]) -> bytes:
    return ("\t".join(values) + "\n").encode()


def _ts(us: int) -> str:
    return f"{us // US}.{us % US:06d}"


def write_s7comm(out_dir: str, rows: list[dict[str, Any]], start: int, end: int) -> dict[str, int]:
    """``zeek/s7comm.log`` in ICSNPP-S7comm's layout (header only when nothing was planted)."""
    from pipelines.generate.writers import _close, _write, zeek_header

    body = b"".join(_tsv([
        _ts(r["ts"]), r["uid"], r["orig"], str(r["orig_p"]), r["resp"], "102", r["is_orig"],
        *((r["orig"], str(r["orig_p"]), r["resp"], "102") if r["is_orig"] == "T" else (r["resp"], "102", r["orig"], str(r["orig_p"]))),
        str(r["rosctr"][0]), r["rosctr"][1], str(r["ref"]), r["code"], r["name"], r["sub"], r["subname"], *r["err"],
    ]) for r in sorted(rows, key=lambda r: r["ts"]))
    os.makedirs(os.path.join(out_dir, "zeek"), exist_ok=True)
    _write(os.path.join(out_dir, "zeek", "s7comm.log"), zeek_header("s7comm", S7_FIELDS, S7_TYPES, start) + body + _close(end), False)
    return {"zeek/s7comm.log": len(rows)}


def write_cip(out_dir: str, rows: list[dict[str, Any]], start: int, end: int) -> dict[str, int]:
    """``zeek/cip.log`` in ICSNPP-ENIP's layout (header only when nothing was planted)."""
    from pipelines.generate.writers import _close, _write, zeek_header

    body = b"".join(_tsv([
        _ts(r["ts"]), r["uid"], r["orig"], str(r["orig_p"]), r["resp"], "44818", r["is_orig"],
        *((r["orig"], str(r["orig_p"]), r["resp"], "44818") if r["is_orig"] == "T" else (r["resp"], "44818", r["orig"], str(r["orig_p"]))),
        str(r["seq"]), r["direction"], "0x10", "Set Attributes Single", *r["status"], "-", "-", *r["cls"], r["inst"], "-",
    ]) for r in sorted(rows, key=lambda r: r["ts"]))
    os.makedirs(os.path.join(out_dir, "zeek"), exist_ok=True)
    _write(os.path.join(out_dir, "zeek", "cip.log"), zeek_header("cip", CIP_FIELDS, CIP_TYPES, start) + body + _close(end), False)
    return {"zeek/cip.log": len(rows)}
