"""pySigma processing pipelines per log source: Sigma field names → the cranewatch event model.

A Sigma rule names fields as its log source writes them (Zeek's ``id.orig_h``, FortiOS's
``remip``, Windows' ``TargetUserName``); cranewatch evaluates rules on normalized events
(``src_ip``, ``user``, ``attrs.<name>``). Each ``Taxonomy`` below says, for one Sigma log
source, which input formats it covers, how each Sigma field maps to an event field, which
values the parser rewrote (Zeek's ``WRITE_SINGLE_REGISTER`` is kept as the action
``modbus.write_single_register``), and any condition every event of the log source meets
(Zeek's ``service: rdp`` is a conn.log row whose service is ``rdp``). ``pipeline_for`` turns
the taxonomy into a pySigma ``ProcessingPipeline`` so the rule is rewritten by pySigma
itself, never by string surgery here. A Sigma field the taxonomy does not list is looked
up as ``attrs.<field>`` (where CMS and mapped sources keep keys of their own) and is
named by ``cranewatch sigma check``; a field the taxonomy does not list whose name is also
an event field (a firewall rule's ``action``) is read from ``attrs.<field>``, never from the
event field of the same name, which means something else. The tables are documented in docs/detections.md.

A site maps field names of its own with pySigma pipeline files in config
``sigma.pipelines``; the engine applies them after the pipeline here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.conditions import IncludeFieldCondition
from sigma.processing.transformations import AddConditionTransformation, FieldFunctionTransformation
from sigma.processing.transformations.base import StringValueTransformation
from sigma.types import SigmaExpansion, SigmaString, SigmaType

from transforms.model import EVENT_FIELDS

LOGSOURCE_KEYS = ("category", "product", "service")

_ZEEK_ID = {"id.orig_h": "src_ip", "id.orig_p": "src_port", "id.resp_h": "dst_ip", "id.resp_p": "dst_port",
            "uid": "attrs.uid"}
_FLOW_FORMATS = ("zeek_conn", "suricata_eve", "nfdump_csv", "nfdump_json")
_REMOTE_FORMATS = ("fortigate_vpn", "openvpn_status", "openvpn_log", "globalprotect", "remote_access_jsonl")
_MAPPED = ("csv_mapped", "jsonl_mapped", "parquet")
#: Event kind → the formats whose events have it (mapped formats: any kind, set per source).
KIND_FORMATS = {
    "flow": ("zeek_conn", "zeek_dns", *_FLOW_FORMATS[1:], *_MAPPED),
    "ot": ("zeek_modbus", "zeek_s7comm", "zeek_cip", "zeek_dnp3", "cms_events", "cms_csv", *_MAPPED),
    "remote_access": (*_REMOTE_FORMATS, *_MAPPED),
    "auth": ("windows_security", *_MAPPED),
}


@dataclass(frozen=True)
class Taxonomy:
    """One Sigma log source as cranewatch reads it.

    ``fields``: Sigma field → event field (``src_ip``) or ``attrs.<name>``. ``prefixes``:
    Sigma field → text the parser put before the native value (the rule's value gets it
    too). ``values``: Sigma field → {native value: event value} where the parser renamed
    whole values. ``where``: event field → value every event of this log source has (added
    to each rule as a condition). ``formats``: the input formats (``format:`` of a source)
    whose events the rules of this log source see.
    """

    name: str
    logsource: Mapping[str, str]
    formats: tuple[str, ...]
    fields: Mapping[str, str]
    prefixes: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    where: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    def matches(self, logsource: Mapping[str, Optional[str]]) -> bool:
        """Every key this taxonomy sets is the rule's (case-insensitive); a rule key the
        taxonomy leaves open (a FortiGate rule's ``service: event``) does not matter."""
        return all(str(logsource.get(k) or "").lower() == v.lower() for k, v in self.logsource.items())

    def event_field(self, sigma_field: str) -> str:
        return self.fields.get(sigma_field, f"attrs.{sigma_field}")

    def maps(self, sigma_field: str) -> bool:
        return sigma_field in self.fields


def _cms_fields() -> dict[str, str]:
    return {"crane_id": "attrs.crane_id", "controller": "attrs.controller", "event_type": "action",
            "user": "user", "source_ip": "src_ip", "parameter": "target", "old_value": "value_old",
            "new_value": "value_new", "result": "result", "message": "attrs.message", "asset_id": "asset_id",
            "zone": "zone"}


#: The shipped taxonomies, most specific first within a product.
TAXONOMIES: tuple[Taxonomy, ...] = (
    Taxonomy("zeek/conn", {"product": "zeek", "service": "conn"}, ("zeek_conn",), {
        **_ZEEK_ID, "proto": "proto", "service": "service", "duration": "duration", "orig_bytes": "bytes_out",
        "resp_bytes": "bytes_in", "orig_pkts": "packets_out", "resp_pkts": "packets_in", "conn_state": "conn_state",
    }, description="Zeek conn.log"),
    Taxonomy("zeek/rdp", {"product": "zeek", "service": "rdp"}, ("zeek_conn",), {
        **_ZEEK_ID, "proto": "proto", "service": "service", "duration": "duration",
    }, where={"service": "rdp"}, description="Zeek conn.log rows of RDP connections (service rdp)"),
    Taxonomy("zeek/dns", {"product": "zeek", "service": "dns"}, ("zeek_dns",), {
        **_ZEEK_ID, "proto": "proto", "query": "target", "rcode_name": "result", "qtype_name": "attrs.qtype_name",
        "answers": "attrs.answers", "trans_id": "attrs.trans_id", "rejected": "attrs.rejected",
    }, description="Zeek dns.log (query lower-cased, trailing dot removed)"),
    Taxonomy("zeek/modbus", {"product": "zeek", "service": "modbus"}, ("zeek_modbus",), {
        **_ZEEK_ID, "func": "action", "unit": "attrs.unit", "tid": "attrs.tid", "pdu_type": "attrs.pdu_type",
        "quantity": "attrs.quantity",
    }, prefixes={"func": "modbus."}, description="Zeek and ICSNPP Modbus logs"),
    Taxonomy("zeek/s7comm", {"product": "zeek", "service": "s7comm"}, ("zeek_s7comm",), {
        **_ZEEK_ID, "is_orig": "attrs.is_orig", "rosctr_name": "attrs.rosctr", "rosctr": "attrs.rosctr",
        "pdu_reference": "attrs.pdu_reference", "function_code": "attrs.function_code",
        "function_name": "attrs.function_name", "subfunction_code": "attrs.subfunction_code",
        "subfunction_name": "attrs.subfunction_name", "error_code": "attrs.error_code",
        "function_status": "attrs.function_status", "filename": "attrs.filename", "block_type": "attrs.block_type",
        "block_number": "attrs.block_number", "szl_id_name": "attrs.szl_id_name", "return_code": "attrs.return_code",
    }, description="ICSNPP S7comm logs (s7comm, upload_download, read_szl)"),
    Taxonomy("zeek/cip", {"product": "zeek", "service": "cip"}, ("zeek_cip",), {
        **_ZEEK_ID, "is_orig": "attrs.is_orig", "direction": "attrs.direction", "cip_sequence_count": "attrs.sequence",
        "cip_service_code": "attrs.service_code", "cip_service": "attrs.service_name",
        "cip_status_code": "attrs.status_code", "cip_extended_status": "attrs.extended_status",
        "class_name": "attrs.class_name",
    }, description="ICSNPP EtherNet/IP CIP cip.log"),
    Taxonomy("fortigate", {"product": "fortigate"}, ("fortigate_vpn",), {
        "remip": "src_ip", "user": "user", "action": "action", "status": "result", "tunnelid": "session_id",
        "duration": "duration", "sentbyte": "bytes_in", "rcvdbyte": "bytes_out", "tunnelip": "attrs.tunnel_ip",
        "tunneltype": "attrs.tunneltype", "group": "attrs.group", "reason": "attrs.reason", "msg": "attrs.msg",
        "logid": "attrs.logid", "devname": "attrs.devname", "vd": "attrs.vd",
    }, values={"action": {"tunnel-up": "vpn.login", "tunnel-down": "vpn.logout", "ssl-login-fail": "auth.failure"}},
        prefixes={"action": "vpn."}, description="FortiGate FortiOS VPN event log (type=event subtype=vpn)"),
    Taxonomy("firewall", {"category": "firewall"}, _FLOW_FORMATS, {
        "src_ip": "src_ip", "src_port": "src_port", "dst_ip": "dst_ip", "dst_port": "dst_port",
    }, description="flow records (Zeek conn, Suricata, NetFlow): addresses and ports; no firewall verdict"),
    Taxonomy("windows/security", {"product": "windows", "service": "security"}, ("windows_security",), {
        "EventID": "attrs.event_id", "TargetUserName": "user", "IpAddress": "src_ip", "IpPort": "src_port",
        "LogonType": "attrs.logon_type", "TargetDomainName": "attrs.domain", "WorkstationName": "attrs.workstation",
        "Computer": "attrs.host", "TargetLogonId": "session_id", "LogonProcessName": "attrs.logon_process",
        "AuthenticationPackageName": "attrs.auth_package", "Status": "attrs.status", "SubStatus": "attrs.sub_status",
        "FailureReason": "attrs.failure_reason", "EventRecordID": "attrs.record_id",
        "SessionName": "attrs.session_name",
    }, description="Windows Security logon events 4624/4625/4634/4778/4779"),
    Taxonomy("suricata", {"product": "suricata"}, ("suricata_eve",), {
        "src_ip": "src_ip", "src_port": "src_port", "dest_ip": "dst_ip", "dest_port": "dst_port", "proto": "proto",
        "app_proto": "attrs.app_proto", "event_type": "attrs.event_type", "flow_id": "attrs.flow_id",
        "community_id": "attrs.community_id", "in_iface": "attrs.in_iface",
        "alert.signature": "target", "alert.signature_id": "attrs.signature_id", "alert.category": "attrs.category",
        "alert.severity": "attrs.severity", "alert.action": "result",
        "flow.bytes_toserver": "bytes_out", "flow.bytes_toclient": "bytes_in", "flow.pkts_toserver": "packets_out",
        "flow.pkts_toclient": "packets_in", "flow.state": "attrs.flow_state", "flow.reason": "attrs.flow_reason",
        "tcp.tcp_flags": "attrs.tcp_flags", "tcp.state": "attrs.tcp_state",
    }, description="Suricata EVE flow, netflow and alert events"),
    Taxonomy("cranewatch/cms", {"product": "cranewatch", "service": "cms"}, ("cms_events", "cms_csv"),
             _cms_fields(), prefixes={"event_type": "cms."},
             description="crane management system events, by their own keys (docs/formats/cms-events.md)"),
    *(Taxonomy(f"cranewatch/{kind}", {"product": "cranewatch", "category": kind}, formats,
               {f: f for f in EVENT_FIELDS if f not in ("raw", "attrs")}, where={"kind": kind},
               description=f"any {kind} event, by the event model's own field names")
      for kind, formats in KIND_FORMATS.items()),
)


def taxonomy_for(logsource: Any, taxonomies: Optional[Iterable[Taxonomy]] = None) -> Optional[Taxonomy]:
    """The most specific taxonomy matching a rule's log source (a pySigma ``SigmaLogSource``
    or a mapping), or None when cranewatch does not read that log source."""
    ls = _as_mapping(logsource)
    found = [t for t in (TAXONOMIES if taxonomies is None else taxonomies) if t.matches(ls)]
    if not found:
        return None
    return max(found, key=lambda t: len(t.logsource))  # max keeps the first of equals: config ones first


def _as_mapping(logsource: Any) -> dict[str, Optional[str]]:
    if isinstance(logsource, Mapping):
        return {k: logsource.get(k) for k in LOGSOURCE_KEYS}
    return {k: getattr(logsource, k, None) for k in LOGSOURCE_KEYS}


@dataclass
class _NativeValues(StringValueTransformation):
    """A native value → the event's form of it: whole values renamed by the parser
    (``tunnel-up`` → ``vpn.login``), else the parser's prefix put in front (wildcards kept:
    ``WRITE_*`` → ``modbus.WRITE_*``). A value already in the event's form is kept."""

    prefix: str = ""
    renamed: Mapping[str, str] = field(default_factory=dict)

    def apply_value(self, field: Optional[str], val: SigmaType) -> Optional[SigmaType]:
        if isinstance(val, SigmaExpansion):  # windash/base64offset alternatives: each rewritten
            return SigmaExpansion([self.apply_value(field, v) or v for v in val.values])
        return super().apply_value(field, val)

    def apply_string_value(self, field: Optional[str], val: SigmaString) -> Optional[SigmaType]:
        if not val.contains_special():
            plain = val.to_plain().lower()
            for native, event in self.renamed.items():
                if plain == native.lower():
                    return SigmaString(event)
        head = val.s[0] if val.s else ""
        if not self.prefix or (isinstance(head, str) and head.lower().startswith(self.prefix.lower())):
            return None  # already in the event's form (``cms.login``): no native value starts so
        return SigmaString(self.prefix) + val


def pipeline_for(logsource: Any, taxonomies: Optional[Iterable[Taxonomy]] = None) -> Optional[ProcessingPipeline]:
    """The pySigma pipeline that rewrites a rule of this log source to event fields, or
    None when no taxonomy matches (the rule then applies to no source)."""
    tax = taxonomy_for(logsource, taxonomies)
    return None if tax is None else taxonomy_pipeline(tax)


def taxonomy_pipeline(tax: Taxonomy) -> ProcessingPipeline:
    items: list[ProcessingItem] = []
    for sigma_field in sorted(set(tax.prefixes) | set(tax.values)):
        items.append(ProcessingItem(
            _NativeValues(prefix=tax.prefixes.get(sigma_field, ""), renamed=dict(tax.values.get(sigma_field, {}))),
            identifier=f"cranewatch-{tax.name}-values-{sigma_field}",
            field_name_conditions=[IncludeFieldCondition(fields=[sigma_field])]))
    items.append(ProcessingItem(
        FieldFunctionTransformation(mapping=dict(tax.fields), transform_func=_attrs_field),
        identifier=f"cranewatch-{tax.name}-fields"))
    if tax.where:
        items.append(ProcessingItem(
            AddConditionTransformation(conditions=dict(tax.where), name="cranewatch_logsource"),
            identifier=f"cranewatch-{tax.name}-where"))
    return ProcessingPipeline(name=f"cranewatch {tax.name}", priority=20, items=items)


def _attrs_field(sigma_field: Optional[str]) -> Optional[str]:
    """An unlisted field: ``attrs.<name>`` when the name is an event field's (whose values
    mean something else); other names stay as they are, for a site pipeline to map, and
    the engine reads them from ``attrs``."""
    if sigma_field is None or sigma_field not in EVENT_FIELDS:
        return sigma_field
    return f"attrs.{sigma_field}"


def source_kinds(logsource: Any, taxonomies: Optional[Iterable[Taxonomy]] = None) -> frozenset[str]:
    """The input formats (a source's ``format:``) whose events a rule of this log source is
    evaluated on; empty when the log source is not mapped."""
    tax = taxonomy_for(logsource, taxonomies)
    return frozenset() if tax is None else frozenset(tax.formats)


def sources_for(logsource: Any, sources: Iterable[Any], taxonomies: Optional[Iterable[Taxonomy]] = None
                ) -> list[str]:
    """Names of the configured sources (objects with ``name``, ``format`` and, for mapped
    formats, ``mapping.kind``) a rule of this log source applies to."""
    tax = taxonomy_for(logsource, taxonomies)
    if tax is None:
        return []
    kind = tax.where.get("kind")
    out = []
    for s in sources:
        if s.format not in tax.formats:
            continue
        mapping = getattr(s, "mapping", None)
        if kind is not None and s.format in _MAPPED and getattr(mapping, "kind", kind) != kind:
            continue
        out.append(s.name)
    return out


def rule_fields(rule: Any) -> list[str]:
    """The Sigma field names a (not yet processed) rule's detections name, in order."""
    seen: dict[str, None] = {}

    def walk(det: Any) -> None:
        for item in getattr(det, "detection_items", []):
            if hasattr(item, "detection_items"):
                walk(item)
            elif getattr(item, "field", None):
                seen.setdefault(item.field, None)
                ref = [v for v in item.value if type(v).__name__ == "SigmaFieldReference"]
                for v in ref:
                    seen.setdefault(v.field, None)

    for det in rule.detection.detections.values():
        walk(det)
    return list(seen)


def regex_on_rewritten(rule: Any, taxonomies: Optional[Iterable[Taxonomy]] = None) -> list[str]:
    """Fields whose values the parser rewrote (``func`` → ``modbus.<function>``) that the
    rule matches with ``re``: the pipeline cannot rewrite a regex, so it must match the
    event's form."""
    tax = taxonomy_for(rule.logsource, taxonomies)
    if tax is None:
        return []
    rewritten = set(tax.prefixes) | set(tax.values)
    out: dict[str, None] = {}

    def walk(det: Any) -> None:
        for item in getattr(det, "detection_items", []):
            if hasattr(item, "detection_items"):
                walk(item)
            elif item.field in rewritten and any(type(v).__name__ == "SigmaRegularExpression" for v in item.value):
                out.setdefault(item.field, None)

    for det in rule.detection.detections.values():
        walk(det)
    return list(out)


def unmapped_fields(rule: Any, taxonomies: Optional[Iterable[Taxonomy]] = None) -> list[str]:
    """Fields of a rule its log source's taxonomy does not list (looked up as ``attrs.<name>``,
    which only CMS records with such a key and mapped sources fill)."""
    tax = taxonomy_for(rule.logsource, taxonomies)
    if tax is None:
        return rule_fields(rule)
    return [f for f in rule_fields(rule) if not tax.maps(f)]


__all__ = ["KIND_FORMATS", "TAXONOMIES", "Taxonomy", "pipeline_for", "regex_on_rewritten", "rule_fields",
           "source_kinds", "sources_for", "taxonomy_for", "taxonomy_pipeline", "unmapped_fields"]
