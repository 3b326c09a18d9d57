"""Threat intel in: STIX 2.1 indicator bundles (what an ISAC publishes) -> a JSON store.

``cranewatch intel import FILE...`` or ``--taxii API_ROOT --collection ID`` loads indicators
into the store named by the config's ``intel.store`` (a JSON file, relative to the config).
The threat-intel detection reads it through this package's small API::

    from stix_export.intel import load_store
    store = load_store(path)                    # an empty store if the file does not exist
    for hit in store.match_event(event):        # an event dict; its "time" unless when= is given
        hit.indicator_id, hit.name, hit.source  # e.g. for a sighting_of_ref
        hit.kind, hit.value, hit.matched        # "and", "dst_ref.value = 198.51.100.7/32 AND dst_port = 8443", "198.51.100.7:8443"
    store.match_ip("198.51.100.7", when)        # when: aware datetime or RFC 3339 text
    store.match_domain("c2.example.net", when)

What is kept, and when it matches:

* Only ``indicator`` objects with ``pattern_type: stix`` whose pattern is in the supported
  subset, comparisons of
  - ``ipv4-addr:value``/``ipv6-addr:value`` (``=``, ``IN (...)``, ``ISSUBSET`` a CIDR; ``=`` to
    a CIDR value also matches the network): the address on either side of an event;
  - ``domain-name:value`` (``=``, ``IN``; exact, case-insensitive, trailing dot ignored): the
    event's domain (the query of a ``dns.query`` event, ``attrs.server_name``/``attrs.host``);
  - ``network-traffic:src_port``/``dst_port`` (``=``, ``IN`` of integers): that side's port;
  - ``network-traffic:src_ref.value``/``dst_ref.value`` (``=``, ``IN``, ``ISSUBSET``): an
    address or network on that side only (a domain name on ``dst_ref``: the event's domain);
  - ``network-traffic:src_ref.type``/``dst_ref.type`` ``=`` ipv4-addr/ipv6-addr/domain-name:
    only beside other comparisons joined by AND, as a consistency check (a value on that side
    must be of that type; without one, ipv4-addr/ipv6-addr require an address of that version).

  joined either by ``OR`` (within and between observation expressions: any one matches), or
  by ``AND`` when the whole pattern is one observation expression of AND-ed
  ``network-traffic`` comparisons (``[network-traffic:dst_ref.value = '198.51.100.7' AND
  network-traffic:dst_port = 8443]``, the usual C2 ip:port form): one conjunctive term whose
  parts must all hold on the same event (``IN`` lists in it expand to one term per
  combination, at most ``MAX_TERMS``). AND mixed with OR, AND between observation expressions,
  ``FOLLOWEDBY``, qualifiers (``WITHIN``, ``REPEATS``, ``START``/``STOP``), negation, other
  operators (``!=``, ``<``, ``LIKE``, ``MATCHES``, ...), and other object paths are refused at
  import with the reason and not stored.
* Every object is checked strictly first (``validation``): ``stix2.parse`` (custom properties
  allowed), ``spec_version`` 2.1, timestamps in STIX form (``valid_from: "never"`` is refused),
  ``modified`` not before ``created``, ``valid_until`` after ``valid_from``, text that is valid
  Unicode (no lone surrogates), no NaN, nesting at most ``MAX_DEPTH``; and no address range
  broader than ``intel.min_prefix_ipv4`` (default /16) or ``intel.min_prefix_ipv6`` (default
  /32), so a catch-all such as ``[ipv4-addr:value ISSUBSET '0.0.0.0/0']`` is refused. Each
  refused object is listed with its id and reason; the rest of the feed is kept. A file that
  is not a bundle at all (empty, binary, truncated, a top-level list) is one error line.
* A run re-checks every store entry the same way (a hand-edited store, an older import, a
  tightened prefix policy) and skips, with the reason, any it cannot use: a store entry can
  never stop a run.
* An indicator matches at time ``when`` if it is not revoked, ``valid_from <= when`` and
  (no ``valid_until`` or ``when < valid_until``).
* Versions: for each indicator id the store keeps the version with the latest ``modified``;
  a revoked version (``revoked: true``) marks the indicator revoked, so it never matches.

Store file: JSON with sorted keys (the same imports give the same bytes), version 1:
``{"version": 1, "indicators": {id: {"id", "name", "pattern", "match": [term, ...],
"valid_from", "valid_until", "modified", "revoked", "source", "object", "related"}}}``.
A term (any one of an indicator's terms matching is a match) is one of:

* ``{"type": "ip", "value": "198.51.100.0/24"}`` an address or network on either side
  (the only address shape stores written before ports and sides existed hold);
* ``{"type": "ip", "side": "src"|"dst", "value": ...}`` the same on that side only;
* ``{"type": "domain", "value": "c2.example.net"}`` (also with ``"side": "dst"``, from
  ``dst_ref.value``; the same match) a domain name, normalized;
* ``{"type": "port", "side": "src"|"dst", "value": 4444}`` that side's port;
* ``{"type": "and", "terms": [atom, ...]}`` every atom (one of the shapes above) holds on the
  same event.

A term of a type this version does not know never matches.

The package, by concern: ``patterns`` (the supported pattern subset -> match terms),
``validation`` (strict checks of feed files, objects and store entries; the minimum prefix
lengths), ``matching`` (the index and ``match_*``), ``store`` (import, the file, what a
config's run matches).
"""
from stix_export.intel.matching import IntelHit, IntelIndex, event_domains, term_text
from stix_export.intel.patterns import MAX_TERMS, UnsupportedPattern, normalize_domain, parse_pattern
from stix_export.intel.store import (
    DETECTION_ID,
    STORE_VERSION,
    ImportReport,
    IntelStore,
    Skipped,
    check_config,
    import_files,
    import_taxii,
    intel_enabled,
    intel_summary,
    load_for_config,
    load_store,
)
from stix_export.intel.validation import (
    DEFAULT_MIN_PREFIX_IPV4,
    DEFAULT_MIN_PREFIX_IPV6,
    FeedError,
    Policy,
    check_entry,
    check_indicator,
    read_feed,
    stix_time,
)

__all__ = [
    "DEFAULT_MIN_PREFIX_IPV4", "DEFAULT_MIN_PREFIX_IPV6", "DETECTION_ID", "MAX_TERMS", "STORE_VERSION",
    "FeedError", "ImportReport", "IntelHit", "IntelIndex", "IntelStore", "Policy", "Skipped", "UnsupportedPattern",
    "check_config", "check_entry", "check_indicator", "event_domains", "import_files", "import_taxii",
    "intel_enabled", "intel_summary", "load_for_config", "load_store", "normalize_domain", "parse_pattern",
    "read_feed", "stix_time", "term_text",
]
