"""``cranewatch formats list``: every input format with its kind, what it reads, the doc
that lists its fields, and a config snippet to copy into ``sources:``."""
from __future__ import annotations

import argparse
import json

#: format → (example source name, example path glob, timezone line or None, doc file).
#: A timezone is shown where the format writes local times without an offset.
EXAMPLES: dict[str, tuple[str, str, str | None, str]] = {
    "zeek_conn": ("zeek-conn", "zeek/conn*.log*", None, "zeek-conn.md"),
    "zeek_dns": ("zeek-dns", "zeek/dns*.log*", None, "zeek-dns.md"),
    "suricata_eve": ("suricata", "suricata/eve*.json*", None, "suricata-eve.md"),
    "nfdump_csv": ("netflow", "netflow/*.csv*", "Europe/Amsterdam", "nfdump.md"),
    "nfdump_json": ("netflow-json", "netflow/*.json*", "Europe/Amsterdam", "nfdump.md"),
    "zeek_modbus": ("zeek-modbus", "zeek/modbus*.log*", None, "zeek-modbus.md"),
    "zeek_s7comm": ("zeek-s7comm", "zeek/s7comm*.log*", None, "zeek-s7comm.md"),
    "zeek_cip": ("zeek-cip", "zeek/cip*.log*", None, "zeek-cip.md"),
    "zeek_dnp3": ("zeek-dnp3", "zeek/dnp3*.log*", None, "zeek-dnp3.md"),
    "cms_events": ("cms", "cms/", None, "cms-events.md"),
    "cms_csv": ("cms-csv", "cms/*.csv*", None, "cms-events.md"),
    "fortigate_vpn": ("fortigate", "fortigate/*.log*", "UTC", "fortigate-vpn.md"),
    "openvpn_status": ("openvpn-status", "openvpn/status/*.log*", "Europe/Amsterdam", "openvpn-status.md"),
    "openvpn_log": ("openvpn-log", "openvpn/openvpn.log*", "Europe/Amsterdam", "openvpn-log.md"),
    "globalprotect": ("globalprotect", "paloalto/globalprotect*.log*", "Europe/Amsterdam", "globalprotect.md"),
    "remote_access_jsonl": ("pam", "pam/sessions*.jsonl*", "UTC", "remote-access-jsonl.md"),
    "windows_security": ("jump-host-security", "windows/security*.jsonl*", None, "windows-security.md"),
    "csv_mapped": ("badge-readers", "access/badges*.csv*", "Europe/Amsterdam", "mapped.md"),
    "jsonl_mapped": ("vendor-portal", "portal/*.jsonl*", None, "mapped.md"),
    "parquet": ("flow-archive", "archive/flows-*.parquet", None, "mapped.md"),
}
#: The mapping block each mapped format's example carries (YAML lines under the source).
MAPPINGS = {
    "csv_mapped": ["mapping:", "  kind: auth", "  fields: {when: time, badge_user: user, door: target, outcome: result}",
                   '  time_format: "%d/%m/%Y %H:%M:%S"', "  constants: {action: badge.access}"],
    "jsonl_mapped": ["mapping:", "  kind: remote_access",
                     "  fields: {ts: time, account.name: user, client.ip: src_ip, event: action, sid: session_id}"],
    "parquet": ["mapping:", "  kind: flow",
                "  fields: {start: time, src: src_ip, dst: dst_ip, dport: dst_port, bytes: bytes_out, proto: proto}"],
}


def snippet(name: str) -> str:
    """The ``sources:`` entry for one format, as YAML lines."""
    source, paths, tz, _ = EXAMPLES.get(name, (name.replace("_", "-"), f"{name}/*", None, ""))
    lines = [f"- name: {source}", f"  format: {name}", f'  paths: ["{paths}"]']
    if tz:
        lines.append(f"  timezone: {tz}")
    lines += ["  " + line for line in MAPPINGS.get(name, [])]
    return "\n".join(lines)


def rows() -> list[dict]:
    from transforms.parsers import PARSERS

    out = []
    for name, p in PARSERS.items():
        doc = EXAMPLES.get(name, ("", "", None, ""))[3]
        out.append({"name": name, "kind": p.kind, "description": p.description,
                    "doc": f"docs/formats/{doc}" if doc else None, "example": snippet(name)})
    return out


def add_parsers(sub: argparse._SubParsersAction) -> None:
    f = sub.add_parser("formats", help="list the input formats a source can use")
    fsub = f.add_subparsers(dest="action", required=True)
    fl = fsub.add_parser("list", help="every format: name, kind, description, example config")
    fl.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    items = rows()
    if args.json:
        print(json.dumps(items, indent=2))
        return 0
    for kind in ("flow", "ot", "remote_access", "auth", "mapped"):
        for it in (i for i in items if i["kind"] == kind):
            print(f"{it['name']}  [{it['kind']}]  {it['description']}")
            if it["doc"]:
                print(f"  fields: {it['doc']}")
            print("  sources:")
            print("\n".join("    " + line for line in it["example"].splitlines()))
            print()
    return 0
