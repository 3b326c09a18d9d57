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
* ``evidence_paths``: ``keep``; ``drop`` -- the observed-data evidence keeps its SHA-256 but not
  the port-local ``file:line`` pointer.

External addresses always stay: they are what other members can act on.

Pseudonyms and hashes are HMAC-SHA256 with a per-deployment secret (``export.secret_file``
or the environment variable ``export.secret_env``), so they are stable across runs and
cannot be reversed by guessing (a plain hash of ``10.30.1.10`` could be). The secret is
never put in the config, a bundle or a log message.

Structured values (observables, the crane-asset extension) are redacted where the bundle
builder creates them; free texts (titles come from detections and may name a crane) are
rewritten afterwards with every known sensitive value; and a last scan refuses to return a
bundle in which any redacted value is still present (``RedactionError``).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
from typing import TYPE_CHECKING, Any, Iterable

from pipelines.config import ConfigError

if TYPE_CHECKING:
    from pipelines.config import Config, Redaction, SharingProfile
    from transforms.model import Incident

MIN_SECRET_BYTES = 16
_DOMAIN = b"cranewatch/redact/v1\x1f"
#: Objects shared by every bundle of a producer: their texts never hold incident data.
SHARED_TYPES = ("marking-definition", "extension-definition", "identity", "attack-pattern")
#: Keys whose values are ids, times or hashes: never rewritten as text.
_NON_TEXT_KEYS = ("id", "type", "spec_version", "created", "modified", "hashes", "pattern",
                  "valid_from", "first_seen", "last_seen", "first_observed", "last_observed")


class RedactionError(RuntimeError):
    """A redacted bundle still holds a value its profile redacts (the bundle is not written)."""


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


def _ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None


class Redactor:
    """Applies one profile's redaction rules to the values of one incident's bundle."""

    def __init__(self, profile: SharingProfile, cfg: Config, secret: bytes | None):
        self.profile = profile
        self.rules: Redaction = profile.redaction
        if self.rules.needs_secret and not secret:
            raise SecretError(f"export.profiles {profile.name!r}: a secret is required for its redaction rules")
        self._secret = secret or b""
        self.internal_networks = [ipaddress.ip_network(n) for n in cfg.inventory.internal_networks]
        self.asset_of_address = {addr: a for a in cfg.inventory.assets for addr in a.addresses}
        self.assets = {a.id: a for a in cfg.inventory.assets}
        self.cranes = {a.crane for a in cfg.inventory.assets if a.crane}
        self.inventory_accounts = {acc for v in cfg.vendors for acc in v.accounts}

    @property
    def active(self) -> bool:
        return self.rules.redacts

    def _mac(self, kind: str, value: str) -> bytes:
        return hmac.new(self._secret, _DOMAIN + kind.encode() + b"\x1f" + value.encode("utf-8"), hashlib.sha256).digest()

    # -- addresses ---------------------------------------------------------------------
    def is_internal(self, addr: str) -> bool:
        ip = _ip(addr)
        if ip is None:
            return False
        return str(ip) in self.asset_of_address or any(ip in net for net in self.internal_networks)

    def pseudonym(self, addr: str) -> str:
        """The stable pseudonym address for an internal address (same family)."""
        ip = ipaddress.ip_address(addr)
        digest = self._mac("ip", str(ip))
        if ip.version == 4:
            n = int.from_bytes(digest[:4], "big") & 0x0FFFFFFF
            n = min(n, 0x0FFFFFFE)  # never 255.255.255.255
            return str(ipaddress.IPv4Address((240 << 24) | n))
        n = int.from_bytes(digest[:15], "big")
        return str(ipaddress.IPv6Address((0xFD << 120) | n))

    def zone_label(self, addr: str) -> str:
        asset = self.asset_of_address.get(str(ipaddress.ip_address(addr)))
        return f"[zone {asset.zone}]" if asset else "[internal]"

    def address(self, addr: str) -> str | None:
        """What an address observable becomes: itself, its pseudonym, or None (dropped)."""
        if self.rules.internal_addresses == "keep" or not self.is_internal(addr):
            return addr
        if self.rules.internal_addresses == "pseudonym":
            return self.pseudonym(addr)
        return None

    def address_text(self, addr: str) -> str:
        out = self.address(addr)
        return out if out is not None else self.zone_label(addr)

    # -- accounts and assets ---------------------------------------------------------------
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

    def evidence_path(self, raw_ref: str) -> str | None:
        return raw_ref if self.rules.evidence_paths == "keep" else None

    # -- what must not appear, and the text rewrite --------------------------------------
    def sensitive_values(self, incident: Incident) -> dict[str, str]:
        """Every value this profile redacts for ``incident`` -> what texts say instead."""
        out: dict[str, str] = {}
        if self.rules.internal_addresses != "keep":
            addrs: set[str] = set(self.asset_of_address)
            for value in _incident_values(incident):
                ip = _ip(value)
                if ip is not None:
                    addrs.add(str(ip))
            for addr in addrs:
                if self.is_internal(addr):
                    out[addr] = self.address_text(addr)
        if self.rules.accounts != "keep":
            accounts = set(self.inventory_accounts) | set(incident.accounts)
            for f in incident.findings:
                accounts.update(f.accounts)
                accounts.update(str(ev.fields["user"]) for ev in f.evidence if ev.fields.get("user"))
            for acc in accounts:
                if acc:
                    out[acc] = self.account(acc)
        if self.rules.assets != "keep":
            asset_ids = set(self.assets) | set(incident.assets)
            asset_ids.update(x for x in (incident.primary_asset, *(f.asset_id for f in incident.findings)) if x)
            for aid in asset_ids:
                out[aid] = f"[{self.asset_kind(aid)}]"
            for crane in self.cranes:
                out[crane] = "[crane]"
        return out

    def rewriter(self, incident: Incident) -> "TextRewriter":
        return TextRewriter(self.sensitive_values(incident))


def _incident_values(incident: Incident) -> Iterable[str]:
    yield from incident.addresses
    for f in incident.findings:
        yield from f.addresses
        for ev in f.evidence:
            for side in ("src_ip", "dst_ip", "tunnel_ip"):
                if ev.fields.get(side):
                    yield str(ev.fields[side])


def value_pattern(value: str) -> str:
    """Regex for one sensitive value in text: addresses on address boundaries (10.30.1.10 is
    not inside 10.30.1.100), names anywhere and case-insensitively (over-redacting is safe)."""
    ip = _ip(value)
    if ip is None:
        return "(?i:" + re.escape(value) + ")"
    if ip.version == 4:
        return r"(?<![0-9.])" + re.escape(value) + r"(?![0-9]|\.[0-9])"
    return r"(?<![0-9A-Fa-f:])(?i:" + re.escape(value) + r")(?![0-9A-Fa-f:])"


class TextRewriter:
    """Replaces every sensitive value in a text (longest first) and finds any that remain."""

    def __init__(self, mapping: dict[str, str]):
        self.mapping = {k.lower() if _ip(k) is None else k: v for k, v in mapping.items()}
        keys = sorted(mapping, key=lambda k: (-len(k), k))
        self._re = re.compile("|".join(value_pattern(k) for k in keys)) if keys else None
        # Plain substring test first: the boundary-aware regex costs ~50 µs per string,
        # and almost no string of a bundle holds any sensitive value at all.
        self._needles = tuple({k.lower() for k in keys})

    def _may_hold(self, value: str) -> bool:
        low = value.lower()
        return any(n in low for n in self._needles)

    def __bool__(self) -> bool:
        return self._re is not None

    def text(self, value: str) -> str:
        if self._re is None or not self._may_hold(value):
            return value
        return self._re.sub(lambda m: self.mapping.get(m.group(0), self.mapping.get(m.group(0).lower(), "[redacted]")), value)

    def found(self, value: str) -> list[str]:
        if self._re is None or not self._may_hold(value):
            return []
        return [m.group(0) for m in self._re.finditer(value)]

    def rewrite_object(self, obj: Any, key: str = "") -> Any:
        """Rewrite every text in a JSON value, leaving ids, references, times and hashes."""
        if isinstance(obj, dict):
            return {k: (v if k in _NON_TEXT_KEYS or k.endswith("_ref") or k.endswith("_refs")
                        else self.rewrite_object(v, k)) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.rewrite_object(v, key) for v in obj]
        if isinstance(obj, str):
            return self.text(obj)
        return obj


def strings(value: Any, keys: bool = True) -> Iterable[str]:
    """Every string in a JSON value, keys included unless ``keys=False``."""
    if isinstance(value, dict):
        for k, v in value.items():
            if keys:
                yield k
            yield from strings(v, keys)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v, keys)
    elif isinstance(value, str):
        yield value
