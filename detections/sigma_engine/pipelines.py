"""Sigma log sources → cranewatch events: one pySigma processing pipeline per log source.

The engine asks two things of this module, for the log source of each rule:

- ``pipeline_for(logsource)``: the pySigma ``ProcessingPipeline`` that renames the rule's
  Sigma field names to event fields (a top-level event field such as ``src_ip``, or
  ``attrs.<name>`` for a value a parser keeps in ``attrs``); None: the log source is not
  mapped, so the rule applies to no source.
- ``source_kinds(logsource)``: which events the rule looks at, as event ``kind`` values
  (``flow``, ``ot``, ``remote_access``, ``auth``) and/or parser ``format`` names
  (``zeek_conn``, ``cms_events``, ...); an event is a candidate when its kind or its
  format is in the set.

This version maps two log sources (Zeek conn, cranewatch CMS events).
"""
from __future__ import annotations

from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import FieldMappingTransformation
from sigma.rule import SigmaLogSource

_ZEEK_CONN = {
    "id.orig_h": "src_ip", "id.orig_p": "src_port", "id.resp_h": "dst_ip", "id.resp_p": "dst_port",
    "proto": "proto", "service": "service", "duration": "duration", "orig_bytes": "bytes_out",
    "resp_bytes": "bytes_in", "orig_pkts": "packets_out", "resp_pkts": "packets_in",
    "conn_state": "conn_state", "uid": "attrs.uid",
}
_CMS = {
    "event_type": "action", "crane_id": "attrs.crane_id", "controller": "attrs.controller",
    "source_ip": "src_ip", "user": "user", "parameter": "target", "old_value": "value_old",
    "new_value": "value_new", "result": "result", "message": "attrs.message", "asset": "asset_id",
}
#: (product, service) → (field mapping, formats)
_SOURCES = {
    ("zeek", "conn"): (_ZEEK_CONN, {"zeek_conn"}),
    ("cranewatch", "cms"): (_CMS, {"cms_events", "cms_csv"}),
}


def _entry(logsource: SigmaLogSource) -> tuple[dict[str, str], set[str]] | None:
    return _SOURCES.get((logsource.product or "", logsource.service or ""))


def pipeline_for(logsource: SigmaLogSource) -> ProcessingPipeline | None:
    entry = _entry(logsource)
    if entry is None:
        return None
    product, service = logsource.product, logsource.service
    return ProcessingPipeline(
        name=f"cranewatch {product} {service}",
        priority=20,
        items=[ProcessingItem(
            identifier=f"cranewatch_{product}_{service}_fields",
            transformation=FieldMappingTransformation(dict(entry[0])),
            rule_conditions=[LogsourceCondition(product=product, service=service)],
        )],
    )


def source_kinds(logsource: SigmaLogSource) -> set[str]:
    entry = _entry(logsource)
    return set(entry[1]) if entry else set()
