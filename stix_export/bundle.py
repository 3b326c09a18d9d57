"""Map one correlated Incident to a STIX 2.1 bundle for the Maritime Transportation System ISAC.

The bundle is a plain, JSON-ready dict built without wall-clock time or randomness: ids come
from ``ids.deterministic_id`` (SDOs/SROs) or ``observables`` (UUIDv5, the id ``stix2`` gives),
and times from the incident, so a re-run gives a byte-identical file (see ``writer.write_bundle``).

Timestamps follow two rules, both about STIX versioning (an object is one version per
id + ``modified``, and ``created`` never changes between versions):

* objects that belong to this incident (observables aside: they have no times) carry
  ``created`` = incident first_seen and ``modified`` = incident.modified or last_seen;
* objects shared by every bundle of the producer -- the producer identity, the crane-asset
  extension definition, the ATT&CK attack-patterns -- carry fixed dates tied to their
  content (``PRODUCER_DATE``, ``extension.EXTENSION_DATE``, the ATT&CK data date), so each
  bundle repeats the same version instead of minting a new one per incident.

What goes in and why is explained for receiving analysts in docs/stix.md.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from stix_export import attack, extension, tlp
from stix_export.ids import deterministic_id
from stix_export.producer import PRODUCER_DATE, producer_identity, producer_location  # noqa: F401
from stix_export.indicators import IndicatorSection
from stix_export.mitigations import mitigation_objects
from stix_export.observables import built_sco
from stix_export.techniques import shared_stage, shared_techniques
from stix_export.redact import Redactor, holds_redacted, redact_objects
from stix_export.stix_values import (  # noqa: F401  (PORT_SERVICES & co. are part of this module's API)
    _KIND_INFRASTRUCTURE_TYPES, _KIND_LABELS, _TLP_RANK, MAX_COUNT, PORT_SERVICES, SERVICE_NAMES, TRANSPORTS,
    _count, _instant, _ip, _known_marking, _mac, _port, sigma_references, stix_time,
)
from transforms.locations import relative_ref
from transforms.model import Finding, Incident

if TYPE_CHECKING:
    from pipelines.config import Asset, Config, SharingProfile

META_TYPES = ("marking-definition", "extension-definition", "language-content")


class _Builder(IndicatorSection):
    """Collects the objects of one bundle, in a fixed order, each id once."""

    def __init__(self, incident: Incident, cfg: Config, profile: SharingProfile | None = None, secret: bytes | None = None):
        self.incident = incident
        self.cfg = cfg
        profiles = cfg.export.effective_profiles()
        self.profile = profile or profiles[0]
        # The first profile keeps the plain ids; any other one mixes its name into every
        # incident-scoped id, so two profiles never publish different content under one id.
        self.scope: tuple[str, ...] = () if self.profile.name == profiles[0].name else (f"profile:{self.profile.name}",)
        self.redactor = Redactor(self.profile, cfg, secret)
        # what the incident is "on", in words when the profile hides the value itself
        self.title = self.redactor.incident_title(incident)
        self.incident_ref = self.redactor.incident_ref(incident.incident_id)
        self.marking = tlp.tlp_marking(self.profile.tlp)
        self.markings = [self.marking["id"]]
        self.producer_id = deterministic_id("identity", cfg.site.name)
        self.ext_id = extension.crane_asset_extension_id(self.producer_id)
        self.created = stix_time(incident.first_seen)
        self.modified = max(self.created, stix_time(incident.modified or incident.last_seen), key=_instant)
        latest = max((_instant(stix_time(f.last_seen)) for f in incident.findings), default=None)
        self._revised_by_older_evidence = latest is not None and _instant(self.modified) > latest
        self.assets: dict[str, Asset] = {a.id: a for a in cfg.inventory.assets}
        # sections, emitted in this order
        self.meta: list[dict[str, Any]] = []
        self.patterns: dict[str, dict[str, Any]] = {}
        self.infrastructure: list[dict[str, Any]] = []
        self.observables: dict[str, dict[str, Any]] = {}
        self.observations: list[dict[str, Any]] = []
        self.sightings: list[dict[str, Any]] = []
        self.indicators: list[dict[str, Any]] = []
        self.notes: list[dict[str, Any]] = []
        self.incidents: list[dict[str, Any]] = []
        self.relationships: dict[str, dict[str, Any]] = {}
        # objects received from the ISAC (matched indicators, their creator identity and
        # markings): shared as received, never rewritten, never re-created by the producer
        self.received: dict[str, dict[str, Any]] = {}
        self.received_meta: dict[str, dict[str, Any]] = {}
        # per-finding results
        self.finding_scos: dict[str, list[str]] = {}
        self.finding_addresses: dict[str, list[str]] = {}
        self.finding_observed: dict[str, str] = {}
        self.finding_patterns: dict[str, list[str]] = {}
        self.finding_other: dict[str, list[str]] = {}  # entities that are neither IP nor MAC
        self.address_sco: dict[str, str] = {}

    # -- common properties -------------------------------------------------------------
    def _sdo(self, stix_type: str, key: Iterable[str], version: str | None = None, **props: Any) -> dict[str, Any]:
        """An incident-scoped SDO/SRO with the common properties every one of them carries.

        ``version`` is the ``modified`` of an object whose content depends on less than the
        whole incident (one finding, or nothing but its ids): only objects whose content
        changed get a new version when the incident is revised."""
        obj = {
            "type": stix_type,
            "spec_version": "2.1",
            "id": deterministic_id(stix_type, *self.scope, *self.redactor.id_parts((self.incident.incident_id, *key))),
            "created_by_ref": self.producer_id,
            "created": self.created,
            "modified": max(self.created, version, key=_instant) if version else self.modified,
        }
        obj.update({k: v for k, v in props.items() if v is not None})
        obj["object_marking_refs"] = list(self.markings)
        return obj

    def _relate(self, rel_type: str, source: str, target: str) -> None:
        rel = self._sdo(  # its content is its ends: one version for good
            "relationship", (rel_type, source, target), self.created,
            relationship_type=rel_type, source_ref=source, target_ref=target,
        )
        self.relationships.setdefault(rel["id"], rel)

    def _sco(self, kind: str, **props: Any) -> str:
        """Keep an observable, under the UUIDv5 id stix2 gives it (``observables.built_sco``)."""
        sco_id, obj = built_sco(kind, tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in props.items()))
        if sco_id not in self.observables:  # a copy: the cached one is every bundle's
            self.observables[sco_id] = {k: list(v) if isinstance(v, list) else v for k, v in obj.items()}
        return sco_id

    # -- sections ------------------------------------------------------------------------
    def add_meta(self) -> None:
        identity = producer_identity(self.cfg, self.markings)
        ext_def = extension.crane_asset_extension_definition(self.producer_id, self.markings)
        self.meta = [self.marking, identity, ext_def]
        self.place = producer_location(self.cfg, self.markings)

    def attack_pattern(self, technique_id: str) -> str:
        """The producer's own reference object for one ATT&CK for ICS technique.

        Never MITRE's id: an object under MITRE's id with another creator, ``modified`` or
        marking becomes a new version of MITRE's object in a platform that holds MITRE's
        data. MITRE's own objects cannot travel unchanged either (ATT&CK's STIX carries
        ``x_mitre_*`` properties that strict STIX 2.1 validation refuses), so the technique
        is named the way every platform matches it: ``external_references`` with
        ``source_name: mitre-attack``, the technique id and MITRE's page, and MITRE's
        ``kill_chain_phases``. Its id lives in the producer's id space."""
        tech = attack.resolve(technique_id)
        data = attack.load_attack_data()
        stix_id = deterministic_id("attack-pattern", self.producer_id, "mitre-attack", tech.id)
        if stix_id not in self.patterns:
            self.patterns[stix_id] = {
                "type": "attack-pattern",
                "spec_version": "2.1",
                "id": stix_id,
                "created_by_ref": self.producer_id,
                "created": data.data_date,
                "modified": data.data_date,
                "name": tech.name,
                "description": (
                    f"{self.cfg.site.name}'s reference to MITRE ATT&CK for ICS technique {tech.id}, "
                    f"{tech.name} ({data.release}), as cited by its detections; the technique itself "
                    f"is MITRE's: {tech.url}"
                ),
                # MITRE's page is in the description, not a "url" here: the strict validator
                # wants hashes beside a URL (check 302); platforms match source_name + external_id.
                "external_references": [{"source_name": "mitre-attack", "external_id": tech.id}],
                "kill_chain_phases": tech.kill_chain_phases,
                "object_marking_refs": list(self.markings),
            }
        return stix_id

    def _ip_sco(self, value: str) -> str | None:
        """The address observable for ``value`` (its pseudonym under a redacting profile), or
        None when the value is not an address or the profile drops internal addresses."""
        ip = _ip(value)
        if ip is None:
            return None
        addr = str(ip)
        if addr not in self.address_sco:
            shown = self.redactor.address(addr)
            kind = "IPv4Address" if ip.version == 4 else "IPv6Address"
            self.address_sco[addr] = (
                self._sco(kind, value=shown, object_marking_refs=self.markings) if shown is not None else None
            )
        return self.address_sco[addr]

    def _flow_sco(self, fields: dict[str, Any], time: str) -> str | None:
        """network-traffic for an evidence record with both endpoints and both ports.

        Without ``start`` and both ports, distinct flows would share one UUIDv5 id and the
        validator warns on a missing port, so such records contribute addresses only.
        """
        src, dst = _ip(fields.get("src_ip")), _ip(fields.get("dst_ip"))
        sport, dport = _port(fields.get("src_port")), _port(fields.get("dst_port"))
        if src is None or dst is None or sport is None or dport is None:
            return None
        src_ref, dst_ref = self._ip_sco(str(src)), self._ip_sco(str(dst))
        if src_ref is None and dst_ref is None:  # both ends dropped by the sharing profile
            return None
        proto = str(fields.get("proto") or "").lower()
        # The service a parser identified from the payload beats a guess from the port.
        service = SERVICE_NAMES.get(str(fields.get("service") or "").lower()) or PORT_SERVICES.get(dport)
        protocols = [p for p in (proto if proto in TRANSPORTS else None, service) if p]
        ends = {k: v for k, v in (("src_ref", src_ref), ("dst_ref", dst_ref)) if v is not None}
        return self._sco(
            "NetworkTraffic",
            start=stix_time(time),
            **ends,
            src_port=sport,
            dst_port=dport,
            protocols=protocols or [f"ipv{src.version}"],
            object_marking_refs=self.markings,
        )

    def _domain_sco(self, fields: dict[str, Any]) -> str | None:
        """domain-name for a DNS query whose name matched threat intel (the name came from
        the ISAC, so sharing it back leaks nothing); other queried names stay out, since an
        internal host name would tell outsiders about the port's network."""
        name = fields.get("target")
        if fields.get("action") != "dns.query" or not name or name not in (fields.get("intel_matched") or ()):
            return None
        return self._sco("DomainName", value=name, object_marking_refs=self.markings)

    def add_finding_observables(self, f: Finding) -> None:
        self.finding_other[f.finding_id] = []
        refs: list[str] = []
        addresses: list[str] = []

        def keep(ref: str | None) -> None:
            if ref and ref not in refs:
                refs.append(ref)

        for value in f.addresses:
            ip, mac = _ip(value), _mac(value)
            if ip is not None:
                keep(self._ip_sco(str(ip)))
                addresses.append(str(ip))
            elif mac is not None:
                keep(self._sco("MACAddress", value=mac, object_marking_refs=self.markings))
            else:  # not an observable STIX can type; kept in the sighting's description
                self.finding_other[f.finding_id].append(str(value))
        for ev in f.evidence:
            for side in ("src_ip", "dst_ip"):
                ip = _ip(ev.fields.get(side))
                if ip is not None:
                    keep(self._ip_sco(str(ip)))
                    addresses.append(str(ip))
            keep(self._flow_sco(ev.fields, ev.time))
            keep(self._domain_sco(ev.fields))
        for account in f.accounts:
            login = self.redactor.account(account)
            keep(self._sco("UserAccount", account_login=login, object_marking_refs=self.markings))
        self.finding_scos[f.finding_id] = refs
        self.finding_addresses[f.finding_id] = list(dict.fromkeys(addresses))
        self.finding_patterns[f.finding_id] = list(dict.fromkeys(self.attack_pattern(t) for t in shared_techniques(f)))

    def _finding_version(self, f: Finding) -> str | None:
        """``modified`` of the objects made from one finding alone: the event time of its
        latest evidence (its texts name the incident by id only, never by its changing title).

        An incident revised by evidence older than all it had (streaming: a late hit, the
        incident one microsecond past its previous version) cannot tell which finding changed:
        then every object takes the incident's version (None)."""
        return None if self._revised_by_older_evidence else stix_time(f.last_seen)

    def add_observed_data(self, f: Finding) -> None:
        refs = self.finding_scos[f.finding_id]
        if not refs:  # observed-data needs at least one observable (e.g. a CMS event without addresses)
            return
        first, last = stix_time(f.first_seen), stix_time(f.last_seen)
        evidence = [
            {
                "source_name": "cranewatch-evidence",
                # STIX wants a description, url or external_id beside source_name. The path is
                # relative to the source roots: the same content whatever folder was read.
                "description": self.redactor.evidence_path(relative_ref(ev.raw_ref, self.cfg))
                or "log record (location withheld)",
                # the plain SHA-256 internally; a keyed digest (or none) in redacting profiles
                **self.redactor.evidence_digest(ev.sha256),
            }
            for ev in f.evidence
            if ev.raw_ref and len(ev.sha256) == 64
        ]
        obs = self._sdo(
            "observed-data",
            ("finding", f.finding_id),
            self._finding_version(f),
            first_observed=first,
            last_observed=max(first, last, key=_instant),
            number_observed=_count(f.count),
            object_refs=refs,
            confidence=int(f.confidence),
            external_references=(evidence + sigma_references(f)) or None,
        )
        self.observations.append(obs)
        self.finding_observed[f.finding_id] = obs["id"]

    def add_sighting(self, f: Finding) -> None:
        """One sighting per technique of the finding (same observed-data, times and count), so
        a recipient counting sightings per technique counts every one, not only the first."""
        patterns = self.finding_patterns[f.finding_id]
        if not patterns:  # a sighting must be "of" something; a technique-less finding stays observed-data
            return
        first, last = stix_time(f.first_seen), stix_time(f.last_seen)
        observed = self.finding_observed.get(f.finding_id)
        text = self._finding_text(f)
        for n, pattern_id in enumerate(patterns):
            key = ("finding", f.finding_id) if n == 0 else ("finding", f.finding_id, "technique", pattern_id)
            self.sightings.append(
                self._sdo(
                    "sighting",
                    key,
                    self._finding_version(f),
                    description=text,
                    first_seen=first,
                    last_seen=max(first, last, key=_instant),
                    count=_count(f.count),
                    sighting_of_ref=pattern_id,
                    observed_data_refs=[observed] if observed else None,
                    where_sighted_refs=[self.producer_id],
                    confidence=int(f.confidence),
                )
            )

    def add_intel_sightings(self, f: Finding) -> None:
        """A threat-intel match: one sighting of each matched ISAC indicator, so the ISAC can
        count who saw it. The indicator (and the identity and markings it references, when
        they came with it) is included as received; see docs/stix.md "Sightings of ISAC
        indicators"."""
        ids = sorted({i for ev in f.evidence for i in (ev.fields.get("indicators") or ()) if isinstance(i, str)})
        if not ids:
            return
        from stix_export.intel import load_for_config

        store = load_for_config(self.cfg)
        first, last = stix_time(f.first_seen), stix_time(f.last_seen)
        observed = self.finding_observed.get(f.finding_id)
        for ind_id in ids:
            found = store.indicator_object(ind_id)
            if found is None:  # not in the store as received: nothing the sighting could point at
                continue
            obj, related = found
            copy = self._received_copy(obj, {r["id"]: r for r in related})
            if copy is None:  # marked more restrictively than this profile shares
                continue
            name = obj.get("name") or ind_id
            self.sightings.append(
                self._sdo(
                    "sighting",
                    ("finding", f.finding_id, "intel", ind_id),
                    self._finding_version(f),
                    description=f"Match of threat-intel indicator '{name}' ({ind_id}). {self._finding_text(f)}",
                    first_seen=first,
                    last_seen=max(first, last, key=_instant),
                    count=_count(f.count),
                    sighting_of_ref=ind_id,
                    observed_data_refs=[observed] if observed else None,
                    where_sighted_refs=[self.producer_id],
                    confidence=int(f.confidence),
                )
            )

    def _received_copy(self, obj: dict[str, Any], related: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        """Add a received object (and what it references) to the bundle; None if one of its
        TLP markings is more restrictive than this profile's, or if its text names a value
        this profile redacts (it cannot be rewritten: it is another producer's version). References that cannot be
        resolved inside the bundle (a creator identity or marking that did not come with the
        indicator) are left out of the copy."""
        if obj["id"] in self.received:
            return self.received[obj["id"]]
        if holds_redacted(self.redactor, self.incident, obj):  # feed text naming a redacted value
            return None
        limit = _TLP_RANK.get(tlp.tlp_marking_id(self.profile.tlp), 4)
        refs = [r for r in obj.get("object_marking_refs", []) if isinstance(r, str)]
        if any(_TLP_RANK.get(ref, -1) > limit for ref in refs):
            return None
        copy = {k: v for k, v in obj.items() if k not in ("created_by_ref", "object_marking_refs")}
        markings: list[str] = []
        for ref in refs:
            marking = _known_marking(ref) or related.get(ref)
            if marking is not None and marking.get("type") == "marking-definition":
                self.received_meta.setdefault(ref, marking)
                markings.append(ref)
        if markings:
            copy["object_marking_refs"] = markings
        creator = related.get(obj.get("created_by_ref") or "")
        if creator is not None and creator.get("type") == "identity":
            # an identity usually names itself as creator; otherwise it is added first (and
            # left out, with the reference, if its own marking is too restrictive)
            others = {k: v for k, v in related.items() if k != obj["id"]}  # no creator cycles
            if creator["id"] == obj["id"] or self._received_copy(creator, others) is not None:
                copy["created_by_ref"] = creator["id"]
        self.received[obj["id"]] = copy
        return copy

    def add_infrastructure(self) -> None:
        inc = self.incident
        asset_ids = list(dict.fromkeys([*([inc.primary_asset] if inc.primary_asset else []), *inc.assets]))
        for asset_id in asset_ids:
            asset = self.assets.get(asset_id)
            kind = asset.kind if asset else None
            zone = self.redactor.zone(asset.zone if asset else (inc.zone if asset_id == inc.primary_asset else None))
            crane = self.redactor.crane(asset.crane if asset else None)
            label = _KIND_LABELS.get(kind or "other", "asset")
            shown_id = self.redactor.asset_id(asset_id)
            name = f"Crane {crane} {label} ({shown_id})" if crane else f"{label[0].upper()}{label[1:]} {shown_id}"
            where = ", ".join(
                p for p in (f"terminal {self.cfg.site.terminal}", f"zone {zone}" if zone else "") if p
            )
            infra = self._sdo(
                "infrastructure",
                ("asset", asset_id),
                self.created,  # from the inventory: changes with the config, not the incident
                name=name,
                description=f"{name} at {self.cfg.site.name}, {where}.",
                infrastructure_types=_KIND_INFRASTRUCTURE_TYPES.get(kind or "", ["unknown"]),
                extensions={
                    self.ext_id: extension.crane_asset_properties(
                        shown_id, kind, crane, self.cfg.site.terminal, zone
                    )
                },
            )
            self.infrastructure.append(infra)
            for addr in asset.addresses if asset else []:
                if self.address_sco.get(addr):
                    self._relate("consists-of", infra["id"], self.address_sco[addr])

    def add_incident(self) -> None:
        inc = self.incident
        for t in self._incident_techniques():
            self.attack_pattern(t)
        methods = list(dict.fromkeys(f"cranewatch:{f.detection_id}" for f in inc.findings))
        obj = self._sdo(
            "incident",
            ("incident",),
            name=self.title,
            description=self._incident_text(),
            confidence=max((int(f.confidence) for f in inc.findings), default=None),
            external_references=[{"source_name": "cranewatch", "external_id": self.incident_ref}],
            extensions={
                extension.INCIDENT_CORE_EXTENSION_ID: extension.incident_core(
                    "suspected", inc.status or "new", criticality=inc.severity, detection_methods=methods
                )
            },
        )
        self.incidents.append(obj)
        for infra in self.infrastructure:
            self._relate("related-to", obj["id"], infra["id"])
        for pattern_id in self.patterns:
            self._relate("related-to", obj["id"], pattern_id)

    def mitigations(self) -> list[dict[str, Any]]:
        """MITRE's recommended mitigations of the techniques seen, as the producer's own
        ``course-of-action`` references, each ``mitigates`` the technique's attack-pattern."""
        data = attack.load_attack_data()
        out: dict[str, dict[str, Any]] = {}  # a mitigation of several techniques: once
        for pattern_id, p in self.patterns.items():
            for o in mitigation_objects(p["external_references"][0]["external_id"], pattern_id, self.producer_id,
                                        self.cfg.site.name, data.data_date, self.markings):
                out.setdefault(o["id"], o)
        return [*(o for o in out.values() if o["type"] == "course-of-action"),
                *(o for o in out.values() if o["type"] != "course-of-action")]

    # -- texts (MISP drops incident and infrastructure: their essentials are repeated here) --
    def _asset_text(self, asset_id: str | None, zone: str | None) -> str:
        asset = self.assets.get(asset_id or "")
        parts = [asset_id or "no single asset"]
        if asset and asset.crane:
            parts.append(f"crane {asset.crane}")
        if asset:
            parts.append(_KIND_LABELS.get(asset.kind, asset.kind))
        parts.append(f"terminal {self.cfg.site.terminal}")
        zone = self.redactor.zone(asset.zone if asset else zone)
        if zone:
            parts.append(f"zone {zone}")
        return ", ".join(parts)

    def _incident_asset_text(self) -> str:
        return self._asset_text(self.incident.primary_asset, self.incident.zone)

    def _technique_text(self, technique_ids: Iterable[str]) -> str:
        out = []
        for tid in dict.fromkeys(technique_ids):
            tech = attack.resolve(tid)
            note = f" (reported as {tid.upper()}, revoked by MITRE)" if tech.id != tid.upper() else ""
            out.append(f"{tech.id} {tech.name}{note}")
        return "; ".join(dict.fromkeys(out)) or "none"

    def _finding_text(self, f: Finding) -> str:
        parts = [
            f"{f.title}.",
            f"Detection {f.detection_id}, stage {shared_stage(f)}, severity {f.severity}/100,",
            f"seen {f.count} time(s) from {stix_time(f.first_seen)} to {stix_time(f.last_seen)}",
            f"on {self._asset_text(f.asset_id, f.zone)}.",
            f"Techniques: {self._technique_text(shared_techniques(f))}.",
        ]
        if self.finding_other[f.finding_id]:
            parts.append(f"Other entities: {', '.join(self.finding_other[f.finding_id])}.")
        sigma = f.context.get("sigma") if isinstance(f.context, dict) else None
        if isinstance(sigma, dict) and sigma.get("falsepositives"):
            parts.append(f"Sigma rule's known false positives: {'; '.join(map(str, sigma['falsepositives']))}.")
        parts.append(f"Part of cranewatch incident {self.incident_ref}.")
        return " ".join(parts)

    def _incident_techniques(self) -> list[str]:
        """The techniques of the findings as shared (``techniques.shared_techniques``); the
        incident's own list only when it has no findings."""
        inc = self.incident
        if not inc.findings:
            return list(dict.fromkeys(inc.techniques))
        return list(dict.fromkeys(t for f in inc.findings for t in shared_techniques(f)))

    def _incident_text(self) -> str:
        inc = self.incident
        all_techniques = self._incident_techniques()
        return (
            f"{self.title}. Asset: {self._incident_asset_text()}. Stages: {' -> '.join(inc.stages) or 'none'}. "
            f"First seen {self.created}, last seen {stix_time(inc.last_seen)}. "
            f"Severity {inc.severity}/100 ({inc.severity_label}), {len(inc.findings)} finding(s). "
            f"Techniques: {self._technique_text(all_techniques)}. "
            f"Producer: {self.cfg.site.name}; cranewatch incident {self.incident_ref}."
        )

    # -- assembly ------------------------------------------------------------------------
    def build(self) -> dict[str, Any]:
        self.add_meta()
        for f in self.incident.findings:
            self.add_finding_observables(f)
        for f in self.incident.findings:
            self.add_observed_data(f)
            self.add_sighting(f)
            self.add_intel_sightings(f)
        self.add_infrastructure()
        self.add_indicators()
        self.add_incident()
        mitigations = self.mitigations()
        meta_ids = {o["id"] for o in self.meta}
        objects = [
            *self.meta,
            *(m for m in self.received_meta.values() if m["id"] not in meta_ids),
            *self.place,
            *self.patterns.values(),
            *mitigations,
            *self.infrastructure,
            *self.observables.values(),
            *self.observations,
            *self.sightings,
            *self.indicators,
            *self.notes,
            *(o for o in self.received.values() if o["id"] != self.producer_id),
            *self.incidents,
            *self.relationships.values(),
        ]
        grouping = self._sdo(
            "grouping",
            ("grouping",),
            name=self.title,
            description=self._incident_text(),
            context="suspicious-activity",
            # stix2 accepts only SDO/SRO/SCO ids here: the marking and extension definitions
            # are meta objects, referenced by every object instead.
            object_refs=[o["id"] for o in objects if o["type"] not in META_TYPES],
            confidence=self.incidents[0].get("confidence"),
            external_references=[{"source_name": "cranewatch", "external_id": self.incident_ref}],
        )
        objects = [*objects, grouping]
        if self.redactor.active:
            objects = redact_objects(self.redactor, self.incident, objects, set(self.received))
        return {
            "type": "bundle",
            "id": deterministic_id("bundle", *self.scope, *self.redactor.id_parts((self.incident.incident_id, self.modified))),
            "objects": objects,
        }


def incident_bundle(
    incident: Incident, cfg: Config, profile: SharingProfile | None = None, secret: bytes | None = None
) -> dict[str, Any]:
    """The STIX 2.1 bundle (a JSON-ready dict) sharing one incident under one sharing profile.

    ``profile`` defaults to the first of ``cfg.export.effective_profiles()`` (without
    ``export.profiles``: an ``internal`` profile at ``export.tlp`` that keeps everything).
    ``secret`` is the per-deployment key a redacting profile needs (``redact.load_secret``).

    Raises ``attack.UnknownTechniqueError`` if a finding cites a technique the ATT&CK data
    file does not list (a bundle with a made-up technique would mislead every receiver), and
    ``redact.RedactionError`` if a value the profile redacts would remain in the bundle.
    """
    return _Builder(incident, cfg, profile, secret).build()
