"""Windows Security log logon events as JSON lines → ``auth`` events.

Vendors and engineers reach crane HMIs and engineering workstations by RDP through jump
hosts; the hosts' Security log says who logged on, from where, and how (logon type 10 is
RDP). The events used: 4624 (logon), 4625 (failed logon), 4634 (logoff), 4778 (session
reconnected) and 4779 (session disconnected), as exported to JSON lines by

* Winlogbeat / Elastic Agent: ``winlog.event_id``, ``winlog.event_data.*``, ``@timestamp``,
  nested or flattened to dotted keys (``"winlog.event_data.TargetUserName"``);
* python-evtx / evtx_dump (XML record as JSON): ``Event.System.EventID``,
  ``Event.System.TimeCreated`` (``@SystemTime`` or ``#attributes.SystemTime``) and
  ``Event.EventData`` as a map or as ``Data`` items ``{"@Name": ..., "#text": ...}``;
* plain exports with the fields at the top level (``EventID``, ``TimeCreated``, ...).

Other event ids are records too and are dead-lettered. See docs/formats/windows-security.md.
"""
from __future__ import annotations

from transforms.parsers import _common as c
from transforms.parsers._common import Reject
from transforms.parsers.base import ParseContext, ParseResult
from transforms.read import Block

ACTIONS = {4624: "auth.success", 4625: "auth.failure", 4634: "auth.logoff",
           4778: "rdp.reconnect", 4779: "rdp.disconnect"}
RESULTS = {4624: "success", 4625: "failure", 4634: "success", 4778: "success", 4779: "success"}
LOGON_TYPES = {"2": "interactive", "3": "network", "4": "batch", "5": "service", "7": "unlock",
               "8": "network_cleartext", "9": "new_credentials", "10": "remote_interactive",
               "11": "cached_interactive", "12": "cached_remote_interactive", "13": "cached_unlock"}
_UNSET = ("", "-", None)


def _flatten(obj: dict, prefix: str = "", out: dict | None = None) -> dict:
    out = {} if out is None else out
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            _flatten(v, key + ".", out)
        else:
            out[key] = v
    return out


def _text(v: object) -> str | None:
    if isinstance(v, dict):  # xmltodict: {"#text": "4624", "@Qualifiers": ""}
        v = v.get("#text")
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return v if isinstance(v, str) else str(v)


def _first(flat: dict, *keys: str) -> str | None:
    for k in keys:
        v = _text(flat.get(k))
        if v not in _UNSET:
            return v
    return None


def _event_data(obj: dict, flat: dict) -> dict[str, str]:
    """EventData fields by name, from any of the supported layouts."""
    data: dict[str, str] = {}
    evtx = obj.get("Event", {}).get("EventData") if isinstance(obj.get("Event"), dict) else None
    if isinstance(evtx, dict) and isinstance(evtx.get("Data"), list):
        for item in evtx["Data"]:
            if isinstance(item, dict) and "@Name" in item:
                data[item["@Name"]] = _text(item.get("#text"))
    for prefix in ("winlog.event_data.", "Event.EventData.", "event_data.", "EventData."):
        for k, v in flat.items():
            if k.startswith(prefix) and "." not in k[len(prefix):]:
                data.setdefault(k[len(prefix):], _text(v))
    return data


def to_event(line: str, ctx: ParseContext, ref: str) -> dict:
    obj = c.json_object(line)
    flat = _flatten(obj)
    eid_text = _first(flat, "winlog.event_id", "Event.System.EventID", "EventID", "event_id", "event.code",
                      "Event.System.EventID.#text")
    if eid_text is None or not eid_text.strip().isdecimal() or len(eid_text.strip()) > 9:
        raise Reject(f"not a Windows Security event (EventID={(eid_text or 'missing')[:40]})")
    eid = int(eid_text)
    if eid not in ACTIONS:
        raise Reject(f"not a Windows logon event (EventID={eid})")
    d = _event_data(obj, flat)
    for k in ("TargetUserName", "TargetDomainName", "LogonType", "IpAddress", "IpPort", "WorkstationName",
              "AccountName", "AccountDomain", "ClientAddress", "ClientName", "TargetLogonId", "LogonID",
              "Status", "SubStatus", "FailureReason", "LogonProcessName", "AuthenticationPackageName", "SessionName"):
        if d.get(k) in _UNSET and _first(flat, k) is not None:
            d[k] = _first(flat, k)
    get = lambda *ks: next((d[k] for k in ks if d.get(k) not in _UNSET), None)  # noqa: E731
    stamp = _first(flat, "@timestamp", "Event.System.TimeCreated.@SystemTime",
                   "Event.System.TimeCreated.#attributes.SystemTime", "TimeCreated.SystemTime",
                   "TimeCreated", "timestamp", "winlog.time_created")
    if stamp is None:
        raise Reject("no usable timestamp (no @timestamp or TimeCreated)")
    # Windows records UTC: a SystemTime without an offset is UTC, not local.
    us = c.text_time_to_us(stamp, c.tzinfo("UTC"))
    if us is None:
        raise Reject(f"no usable timestamp: invalid time {stamp!r}")
    ip = get("IpAddress", "ClientAddress")
    if ip is not None:
        ip = ip.removeprefix("::ffff:")
        if not c.valid_ip(ip):
            raise Reject(f"invalid address {ip!r} in IpAddress")
    port_text = get("IpPort")
    port = None
    if port_text is not None and port_text != "0":
        if not port_text.isdecimal() or len(port_text) > 5 or int(port_text) > 65535:
            raise Reject(f"invalid port {port_text[:40]!r} in IpPort")
        port = int(port_text)
    logon_type = get("LogonType")
    attrs = {
        "event_id": str(eid), "logon_type": logon_type, "logon_type_name": LOGON_TYPES.get(logon_type or ""),
        "domain": get("TargetDomainName", "AccountDomain"), "workstation": get("WorkstationName", "ClientName"),
        "host": _first(flat, "winlog.computer_name", "Event.System.Computer", "Computer", "host.name"),
        "record_id": _first(flat, "winlog.record_id", "Event.System.EventRecordID", "EventRecordID"),
        "logon_process": get("LogonProcessName"), "auth_package": get("AuthenticationPackageName"),
        "status": get("Status"), "sub_status": get("SubStatus"), "failure_reason": get("FailureReason"),
        "session_name": get("SessionName"),
    }
    return {
        "time": us,
        "source": ctx.source,
        "format": "windows_security",
        "kind": "auth",
        "src_ip": ip,
        "src_port": port,
        "action": ACTIONS[eid],
        "user": get("TargetUserName", "AccountName"),
        "session_id": get("TargetLogonId", "LogonID"),
        "result": RESULTS[eid],
        "raw_ref": ref,
        "raw": line,
        "attrs": {k: v for k, v in attrs.items() if v is not None},
    }


class WindowsSecurityParser:
    name = "windows_security"
    kind = "auth"
    description = ("Windows Security logon events 4624/4625/4634/4778/4779 as JSON lines "
                   "(Winlogbeat or python-evtx layout)")

    def new_file_state(self, path: str) -> None:
        return None

    def parse_block(self, block: Block, state: None, ctx: ParseContext) -> ParseResult:
        return ParseResult(*c.parse_lines(block, ctx.source, lambda line, ref: to_event(line, ctx, ref)))


PARSER = WindowsSecurityParser()
