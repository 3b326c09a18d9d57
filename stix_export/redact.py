"""Sharing profiles: what leaves the port, and how it is rewritten on the way out.

A profile (``export.profiles`` in the config) names a TLP level and redaction rules:

* ``internal_addresses``: ``keep``; ``pseudonym`` -- every internal address (inside
  ``inventory.internal_networks`` or on an inventoried asset) becomes a stable keyed
  pseudonym address: IPv4 in 240.0.0.0/4 (reserved, never assigned, so a pseudonym can
  neither be mistaken for nor collide with a real host), IPv6 in fd00::/8; ``zone`` -- internal
  address observables are dropped and texts name the asset's zone instead (``[zone crane-ot]``,
  ``[internal]`` for an address outside the inventory).
* ``accounts``: ``keep``; ``hash`` -- ``acct-`` + 16 hex digits of a keyed hash.
* ``assets``: ``keep``; ``asset_kind`` -- asset ids and crane ids are generalized to the asset
  kind (``crane_plc``; ``[crane]`` for a crane id in a text).
* ``evidence_paths``: ``keep``; ``drop`` -- the observed-data evidence keeps its digest but not
  the port-local ``file:line`` pointer.

In every redacting profile the evidence digest is keyed (``hmac-sha256:`` in the reference's
``external_id``, never a ``SHA-256`` hash): a plain hash of a log line whose other fields the
sighting text gives away would confirm guesses of the redacted ones. With ``assets:
asset_kind`` zone names that name a crane or an asset (``crane-sts05``) are generalized too
(``export.profiles[].redaction.zone_labels``, else ``crane-zone``/``ot-zone``).

External addresses always stay: they are what other members can act on.

Pseudonyms and hashes are HMAC-SHA256 with a per-deployment secret (``export.secret_file``
or the environment variable ``export.secret_env``), so they are stable across runs and
cannot be reversed by guessing (a plain hash of ``10.30.1.10`` could be). The secret is
never put in the config, a bundle or a log message.

Structured values (observables, the crane-asset extension) are redacted where the bundle
builder creates them; free texts (titles come from detections and may name a crane, CMS values
may hold any address) are rewritten afterwards: every address inside ``internal_networks`` or
the inventory, in any notation (``textscan``), and every known name; and a last scan over
every string of the bundle refuses to return one in which a redacted value is still present
(``RedactionError``).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
from typing import TYPE_CHECKING, Any, Iterable

from pipelines.config import ConfigError
from stix_export.addresses import IPAddress, Span, parse
from stix_export.textscan import NON_TEXT_KEYS, TextRewriter, spelling_pattern, string_list, strings, value_pattern

__all__ = ["RedactionError", "Redactor", "SecretError", "TextRewriter", "load_secret", "needs_secret",
           "strings", "value_pattern", "NON_TEXT_KEYS"]

if TYPE_CHECKING:
    from pipelines.config import Config, Redaction, SharingProfile
    from transforms.model import Incident

MIN_SECRET_BYTES = 16
_DOMAIN = b"cranewatch/redact/v1\x1f"
#: Objects shared by every bundle of a producer: their texts never hold incident data.
SHARED_TYPES = ("marking-definition", "extension-definition", "identity", "attack-pattern", "course-of-action")


def is_shared(obj: dict[str, Any]) -> bool:
    """An object every bundle of the producer repeats (its texts are fixed: ATT&CK's names and
    MITRE's mitigation guidance, the site name), never rewritten, scanned for addresses only."""
    return obj.get("type") in SHARED_TYPES or obj.get("relationship_type") == "mitigates"
#: Zone names shown instead of one that names a crane or an asset (no ``zone_labels`` entry).
CRANE_ZONE, OT_ZONE = "crane-zone", "ot-zone"


class RedactionError(RuntimeError):
    """A redacted bundle still holds a value its profile redacts: the bundle is not written.

    ``profile`` and ``incident_id`` say which bundle; ``kinds`` counts what remained by kind
    (``internal address``, ``account``, ``asset id``, ``crane id``, ``zone``) and ``where`` names the
    object types holding it. The message gives those, never the values themselves (it ends
    up in logs and run reports that may travel further than the internal bundle).
    """

    def __init__(self, profile: str, incident_id: str, kinds: dict[str, int], where: list[str], output: str = "bundle"):
        self.profile, self.incident_id, self.kinds, self.where = profile, incident_id, dict(kinds), list(where)
        self.output = output  # what is not written: a bundle, or a profile's HTML report
        what = ", ".join(f"{n} {k}(s)" for k, n in sorted(kinds.items()))
        about = f"incident {incident_id}: " if incident_id else ""
        super().__init__(
            f"profile {profile!r}: {about}{output} not written, {what} would remain "
            f"in {', '.join(where)} after redaction"
        )


class SecretError(ConfigError):
    """The per-deployment secret a profile needs is missing or too short (message names where)."""

    def __init__(self, message: str):
        super().__init__([message])


def needs_secret(cfg: Config) -> bool:
    return any(p.redaction.needs_secret for p in cfg.export.effective_profiles())


def load_secret(cfg: Config) -> bytes | None:
    """The export secret as bytes, or None when no profile needs one.

    Read from ``export.secret_file`` (relative to the config file) when set, else from the
    environment variable ``export.secret_env``. Errors name the file or variable, never the value.
    """
    if not needs_secret(cfg):
        return None
    exp = cfg.export
    if exp.secret_file:
        path = exp.secret_file if os.path.isabs(exp.secret_file) else os.path.join(cfg.base_dir, exp.secret_file)
        try:
            with open(path, "rb") as fh:
                secret = fh.read().strip()
        except OSError as exc:
            raise SecretError(f"export.secret_file: expected a readable secret file, got {path!r} ({exc.strerror})") from None
        where = f"export.secret_file {path!r}"
    else:
        secret = os.environ.get(exp.secret_env, "").strip().encode("utf-8")
        where = f"environment variable {exp.secret_env}"
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretError(
            f"{where}: expected a secret of at least {MIN_SECRET_BYTES} bytes for the sharing profiles "
            f"that pseudonymize addresses or hash accounts, got {len(secret)} bytes"
        )
    return secret


class _Inventory:
    """What every redactor of one config derives from its inventory and vendors (built once
    per config: a bundle, a report and each mandated draft make a redactor of their own)."""

    def __init__(self, cfg: Config):
        self.internal_networks = [ipaddress.ip_network(n) for n in cfg.inventory.internal_networks]
        self.asset_of_address = {str(parse(addr) or addr): a for a in cfg.inventory.assets for addr in a.addresses}
        self.assets = {a.id: a for a in cfg.inventory.assets}
        self.cranes = {a.crane for a in cfg.inventory.assets if a.crane}
        self.inventory_accounts = frozenset(acc for v in cfg.vendors for acc in v.accounts)
        self.vendor_of_account = {acc: v.name for v in cfg.vendors for acc in v.accounts}
        self.zones = frozenset(a.zone for a in cfg.inventory.assets if a.zone)
        self.crane_zones = frozenset(a.zone for a in cfg.inventory.assets if a.zone and a.crane)
        self.identifier_res = [re.compile(spelling_pattern(c)) for c in sorted(self.cranes)] + [
            re.compile(value_pattern(a)) for a in sorted(self.assets)
        ]
        # The address-only scan of shared objects (``leaks``) depends on the inventory alone:
        # one memo for every bundle, whose shared objects (MITRE's texts) repeat the same strings.
        self.address_scan = TextRewriter({}, {}, self._internal_span)

    def _internal_span(self, span: Span) -> str | None:
        ip = span.address
        internal = ip is not None and (str(ip) in self.asset_of_address or any(ip in net for net in self.internal_networks))
        return "" if internal else None


_INVENTORIES: dict[int, tuple[Any, Any, _Inventory]] = {}


def _inventory(cfg: Config) -> _Inventory:
    """The ``_Inventory`` of ``cfg`` (config models are frozen: one per config object)."""
    key = id(cfg)
    hit = _INVENTORIES.get(key)
    if hit is None or hit[0] is not cfg.inventory or hit[1] is not cfg.vendors:
        if len(_INVENTORIES) >= 8:
            _INVENTORIES.clear()
        hit = _INVENTORIES[key] = (cfg.inventory, cfg.vendors, _Inventory(cfg))
    return hit[2]


class Redactor:
    """Applies one profile's redaction rules to the values of one incident's bundle."""

    def __init__(self, profile: SharingProfile, cfg: Config, secret: bytes | None):
        self.profile = profile
        self.rules: Redaction = profile.redaction
        if self.rules.needs_secret and not secret:
            raise SecretError(f"export.profiles {profile.name!r}: a secret is required for its redaction rules")
        self._secret = secret or b""
        inv = _inventory(cfg)  # read-only, shared by every redactor of this config
        self.internal_networks = inv.internal_networks
        self.asset_of_address = inv.asset_of_address
        self.assets = inv.assets
        self.cranes = inv.cranes
        self.inventory_accounts = inv.inventory_accounts
        self.vendor_of_account = inv.vendor_of_account
        self._all_accounts = set(self.inventory_accounts)
        self.zone_labels: dict[str, str] = dict(getattr(self.rules, "zone_labels", None) or {})
        self.zones = inv.zones | set(self.zone_labels)
        self._crane_zones = inv.crane_zones
        self._identifier_res = inv.identifier_res
        self._address_scan = inv.address_scan
        self._rewriter: tuple[Incident, TextRewriter] | None = None

    @property
    def active(self) -> bool:
        return self.rules.redacts

    def _mac(self, kind: str, value: str) -> bytes:
        return hmac.new(self._secret, _DOMAIN + kind.encode() + b"\x1f" + value.encode("utf-8"), hashlib.sha256).digest()

    # -- addresses ---------------------------------------------------------------------
    def _internal_host(self, ip: IPAddress | None) -> bool:
        return ip is not None and (str(ip) in self.asset_of_address or any(ip in net for net in self.internal_networks))

    def is_internal(self, addr: str) -> bool:
        """Inside ``internal_networks`` or on an inventoried asset, in any notation (an
        IPv4-mapped IPv6 address names the IPv4 host)."""
        return self._internal_host(parse(str(addr)))

    def pseudonym(self, addr: str) -> str:
        """The stable pseudonym of an internal address, keyed on the host it names: IPv4 in
        240.0.0.0/4; an IPv6 spelling of an IPv4 host becomes ``::ffff:`` + that pseudonym
        (same family as the input, same host as the dotted form); IPv6 in fd00::/8."""
        host = parse(str(addr))
        if host is None:
            raise ValueError(f"not an address: {addr!r}")
        digest = self._mac("ip", str(host))
        if host.version == 4:
            n = int.from_bytes(digest[:4], "big") & 0x0FFFFFFF
            n = min(n, 0x0FFFFFFE)  # never 255.255.255.255
            v4 = ipaddress.IPv4Address((240 << 24) | n)
            return f"::ffff:{v4}" if ":" in str(addr) else str(v4)
        n = int.from_bytes(digest[:15], "big")
        return str(ipaddress.IPv6Address((0xFD << 120) | n))

    def zone_label(self, addr: str) -> str:
        asset = self.asset_of_address.get(str(parse(str(addr))))
        return f"[zone {self.zone(asset.zone)}]" if asset and asset.zone else "[internal]"

    def address(self, addr: str) -> str | None:
        """What an address observable becomes: itself, its pseudonym, or None (dropped)."""
        if self.rules.internal_addresses == "keep" or not self.is_internal(addr):
            return addr
        if self.rules.internal_addresses == "pseudonym":
            return str(ipaddress.ip_address(self.pseudonym(addr)))
        return None

    def address_text(self, addr: str) -> str:
        if self.rules.internal_addresses == "pseudonym" and self.is_internal(addr):
            return self.pseudonym(addr)
        out = self.address(addr)
        return out if out is not None else self.zone_label(addr)

    def _address_span(self, span: Span) -> str | None:
        """Replacement of an address written in a text, or None when it is not redacted."""
        if not self._internal_host(span.address):
            return None
        return self.address_text(span.text)

    # -- accounts, assets and zones -------------------------------------------------------
    def account(self, login: str) -> str:
        if self.rules.accounts == "keep":
            return login
        return "acct-" + self._mac("account", login).hex()[:16]

    def asset_kind(self, asset_id: str | None) -> str:
        asset = self.assets.get(asset_id or "")
        return asset.kind if asset else "asset"

    def asset_id(self, asset_id: str) -> str:
        return asset_id if self.rules.assets == "keep" else self.asset_kind(asset_id)

    def crane(self, crane: str | None) -> str | None:
        return crane if self.rules.assets == "keep" else None

    def zone(self, zone: str | None) -> str | None:
        """A zone as a redacting profile shows it. With ``assets: asset_kind`` a zone listed in
        ``zone_labels`` shows its label; one whose name names a crane or an asset
        (``crane-sts05``) becomes ``crane-zone`` (it holds crane assets) or ``ot-zone``; a zone
        that names nothing (``ot-core``) stays."""
        if zone is None or self.rules.assets == "keep":
            return zone
        if zone in self.zone_labels:
            return self.zone_labels[zone]
        if any(r.search(zone) for r in self._identifier_res):
            return CRANE_ZONE if zone in self._crane_zones else OT_ZONE
        return zone

    # -- ids -----------------------------------------------------------------------------
    def incident_ref(self, incident_id: str) -> str:
        """How a bundle names the port's incident: its id internally; in a redacting profile
        a keyed reference (``cwi-`` + 32 hex digits of an HMAC), because the id is a plain hash
        of what the detection keyed on (an account, a tunnel address, a log location) and the
        time, all guessable. The port finds its incident again with this function."""
        if not self.active:
            return incident_id
        return "cwi-" + self._mac("incident", incident_id).hex()[:32]

    def finding_ref(self, incident_id: str, finding_id: str) -> str:
        """How a redacting profile names one finding of an incident outside its bundle (the
        profile's HTML report): a keyed reference (``cwf-`` + 32 hex digits of an HMAC), for the
        reason ``incident_ref`` gives; the finding id itself internally."""
        if not self.active:
            return finding_id
        return "cwf-" + self._mac("finding", incident_id + "\x1f" + finding_id).hex()[:32]

    def id_parts(self, parts: tuple[str, ...]) -> tuple[str, ...]:
        """What an incident-scoped STIX id is derived from: the parts themselves (incident and
        finding ids, addresses, ...) internally; one keyed digest of them in a redacting
        profile, so that no id confirms a guess of the parts."""
        if not self.active:
            return parts
        return (self._mac("stix-id", "\x1f".join(parts)).hex(),)

    def evidence_path(self, raw_ref: str) -> str | None:
        return raw_ref if self.rules.evidence_paths == "keep" else None

    def evidence_digest(self, sha256: str) -> dict[str, str]:
        """What an evidence reference says about its record besides the location: the plain
        SHA-256 in a profile that redacts nothing; else a keyed digest (HMAC-SHA256 of the
        record's SHA-256 under the export secret, ``external_id: hmac-sha256:<hex>``, so nobody
        takes it for a file hash and nobody without the secret can test a guess against it),
        or nothing when the profile has no secret."""
        if not self.active:
            return {"hashes": {"SHA-256": sha256}}  # type: ignore[dict-item]
        if not self._secret:
            return {}
        return {"external_id": "hmac-sha256:" + self._mac("evidence", sha256.lower()).hex()}

    # -- readable subjects ------------------------------------------------------------------
    def subject_text(self, subject: str) -> str:
        """What an incident is "on", in words a recipient can read once the value itself is
        hidden: ``a crane PLC in zone crane-ot`` rather than an asset kind in brackets,
        ``a server in zone it`` rather than a pseudonym address, ``a zpmc vendor account``
        rather than ``acct-...``. Values the profile keeps are shown as they are."""
        from stix_export.stix_values import _KIND_LABELS

        def label_of(asset: Any) -> str:
            label = _KIND_LABELS.get(asset.kind, asset.kind)
            return f"crane {label}" if asset.crane and asset.kind in ("crane_plc", "hmi") else label

        def asset_words(asset: Any) -> str:
            label, zone = label_of(asset), self.zone(asset.zone)
            return f"{'an' if label[0] in 'aeiouAEIOU' else 'a'} {label}" + (f" in zone {zone}" if zone else "")

        if subject in self.assets and self.rules.assets != "keep":
            return asset_words(self.assets[subject])
        host = parse(subject) if any(c in subject for c in ".:") else None
        if host is not None:
            if self.rules.internal_addresses == "keep" or not self._internal_host(host):
                return subject
            asset = self.asset_of_address.get(str(host))
            if asset is None:
                return "an internal host"
            return asset_words(asset) if self.rules.assets != "keep" else f"{asset.id} ({label_of(asset)})"
        if self.rules.accounts != "keep" and (subject in self._all_accounts):
            vendor = self.vendor_of_account.get(subject)
            return f"a {vendor} vendor account" if vendor else "an account"
        return subject

    def incident_title(self, incident: Incident) -> str:
        """The incident's title as this profile shares it: the subject it is "on" (an asset,
        an account or an address) in words (``subject_text``) when the profile hides it."""
        if not self.active:
            return incident.title
        self._all_accounts = set(incident.accounts) | self.inventory_accounts
        head, sep, subject = incident.title.rpartition(" on ")
        known = {incident.primary_asset, *incident.accounts, *incident.addresses}
        if sep and subject and (subject in known or parse(subject) is not None):
            return f"{head} on {self.subject_text(subject)}"
        return incident.title

    # -- what must not appear, and the text rewrite --------------------------------------
    def sensitive_values(self, incident: Incident) -> dict[str, str]:
        """Every value this profile redacts for ``incident`` -> what texts say instead.

        Addresses listed here are the known ones (inventory and incident); texts are also
        scanned for any other internal address (``rewriter``).
        """
        out: dict[str, str] = {}
        if self.rules.internal_addresses != "keep":
            addrs: set[str] = set(self.asset_of_address)
            for value in _incident_values(incident):
                ip = parse(str(value))
                if ip is not None:
                    addrs.add(str(ip))
            for addr in addrs:
                if self.is_internal(addr):
                    out[addr] = self.address_text(addr)
        out.update(self.sensitive_names(incident))
        return out

    def sensitive_names(self, incident: Incident | None) -> dict[str, str]:
        """Accounts, asset ids and zone names this profile redacts -> their replacement (for
        ``None``: the inventory's alone)."""
        out: dict[str, str] = {}
        findings = incident.findings if incident is not None else ()
        if self.rules.accounts != "keep":
            accounts = set(self.inventory_accounts) | set(incident.accounts if incident is not None else ())
            for f in findings:
                accounts.update(f.accounts)
                accounts.update(str(ev.fields["user"]) for ev in f.evidence if ev.fields.get("user"))
            for acc in accounts:
                if acc:
                    out[acc] = self.account(acc)
        if self.rules.assets != "keep":
            asset_ids = set(self.assets) | set(incident.assets if incident is not None else ())
            primary = incident.primary_asset if incident is not None else None
            asset_ids.update(x for x in (primary, *(f.asset_id for f in findings)) if x)
            for aid in asset_ids:
                out[aid] = f"[{self.asset_kind(aid)}]"
            zone = incident.zone if incident is not None else None
            zones = self.zones | {z for z in (zone, *(f.zone for f in findings)) if z}
            for z in zones:
                if self.zone(z) != z:
                    out[z] = str(self.zone(z))
        return out

    def crane_spellings(self) -> dict[str, str]:
        return {c: "[crane]" for c in self.cranes} if self.rules.assets != "keep" else {}

    def rewriter(self, incident: Incident) -> TextRewriter:
        if self._rewriter is None or self._rewriter[0] is not incident:
            self._rewriter = (incident, self._text_rewriter(self.sensitive_names(incident)))
        return self._rewriter[1]

    def rewriter_for(self, incidents: Iterable[Incident]) -> TextRewriter:
        """One rewriter for texts that belong to no single incident (a profile report's
        summary): the inventory's values and every value any of ``incidents`` redacts
        (over-redacting is safe)."""
        names = self.sensitive_names(None)
        for incident in incidents:
            names.update(self.sensitive_names(incident))
        return self._text_rewriter(names)

    def _text_rewriter(self, names: dict[str, str]) -> TextRewriter:
        return TextRewriter(names, self.crane_spellings(),
                            self._address_span if self.rules.internal_addresses != "keep" else None)


def _incident_values(incident: Incident) -> Iterable[str]:
    yield from incident.addresses
    for f in incident.findings:
        yield from f.addresses
        for ev in f.evidence:
            for side in ("src_ip", "dst_ip", "tunnel_ip"):
                if ev.fields.get(side):
                    yield str(ev.fields[side])


def leak_kind(hit: str, redactor: Redactor, names: dict[str, str]) -> str:
    """What kind of redacted value a leak-scan hit is (for the error, which never shows it)."""
    if parse(hit) is not None and redactor.is_internal(hit):
        return "internal address"
    low = hit.lower()
    if low in {a.lower() for a in redactor.assets}:
        return "asset id"
    if low in {z.lower() for z in redactor.zones}:
        return "zone"
    if any(k.lower() == low for k in names):
        return "account"
    return "crane id"


def leak_kinds(redactor: Redactor, names: dict[str, str], found: dict[str, list[str]]) -> dict[str, int]:
    """How many distinct values of each kind a scan (``leaks``) found: what ``RedactionError``
    says instead of the values."""
    kinds: dict[str, int] = {}
    for hit in {h for hits in found.values() for h in hits}:
        kind = leak_kind(hit, redactor, names)
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def leaks(redactor: Redactor, rewriter: TextRewriter, objects: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """Every redacted value still present, by the type of the object holding it.

    Every string is scanned, keys included. Objects shared by all bundles of the producer
    (identity, attack-patterns, mitigations, definitions; ``is_shared``) are scanned for
    addresses only: their texts are fixed (ATT&CK names, MITRE's guidance, the site name) and
    a short asset id inside a technique name must not stop the export.
    """
    addresses_only = redactor._address_scan if rewriter.address is not None else TextRewriter({}, {}, None)
    found: dict[str, list[str]] = {}
    for o in objects:
        scan = addresses_only if is_shared(o) else rewriter
        found_in = scan.found
        hits = [h for text in string_list(o) for h in found_in(text)]
        if hits:
            found.setdefault(str(o.get("type")), []).extend(hits)
    return found


def redact_objects(
    redactor: Redactor, incident: Incident, objects: list[dict[str, Any]], received: set[str] | frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """Rewrite the texts of one incident's objects under a redacting profile, then scan every
    string of every object once more and refuse the bundle if anything redacted remains.

    Observables were built with redacted values (their ids depend on them), shared objects
    hold no incident data and received objects (``received``: ids of objects another producer
    made, already checked by ``holds_redacted``) must stay as received, so only this
    incident's SDOs/SROs are rewritten; the scan covers them all.
    """
    rewriter = redactor.rewriter(incident)
    out = [
        o if is_shared(o) or "created" not in o or o["id"] in received else rewriter.rewrite_object(o)
        for o in objects
    ]
    found = leaks(redactor, rewriter, out)
    if found:
        kinds = leak_kinds(redactor, redactor.sensitive_names(incident), found)
        raise RedactionError(redactor.profile.name, incident.incident_id, kinds, sorted(found))
    return out


def holds_redacted(redactor: Redactor, incident: Incident, obj: dict[str, Any]) -> bool:
    """Whether an object received from a feed names a value this profile redacts (it is then
    not re-shared: rewriting it would publish other content under its creator's id)."""
    return redactor.active and bool(leaks(redactor, redactor.rewriter(incident), [obj]))
