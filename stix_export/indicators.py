"""Indicators and notes of an incident bundle: what another ISAC member may look for.

An indicator is an instruction to the recipient ("alert on or block this"), so only an
external address the port has no reason to trust becomes one. An address the config marks
as legitimate -- a vendor's ``allowed_networks``/``tunnel_networks``, a detection allowlist,
an inventoried asset -- is never an indicator: every port with the same crane vendor would
alert on that vendor's normal maintenance. Such a finding is shared as a ``note`` on the
address and the observed-data ("known vendor infrastructure, used outside the window").

Indicators carry ``valid_until`` (``export.indicator_lifetime`` after ``valid_from``: an
address is reassigned, and a TIP should stop alerting on it), the ``kill_chain_phases`` of
the findings' ATT&CK for ICS techniques, ``labels`` (stages and detections) and an honest
``indicator_types``: ``anomalous-activity`` for what a behavioural detection saw,
``malicious-activity`` only when a threat-intel indicator named the address malicious.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from typing import TYPE_CHECKING, Any

from stix_export import attack
from stix_export.stix_values import _instant, _ip, stix_time
from stix_export.techniques import shared_stage, shared_techniques

if TYPE_CHECKING:
    from transforms.model import Finding


def _in_any(addr: str, networks: Any) -> bool:
    ip = _ip(addr)
    for net in networks or ():
        try:
            if ip is not None and ip in ipaddress.ip_network(str(net), strict=False):
                return True
        except (ValueError, TypeError):
            continue
    return False


class IndicatorSection:
    """The indicator/note part of ``bundle._Builder`` (mixed in; uses its state and helpers)."""

    def _is_external(self, addr: str) -> bool:
        ip = ipaddress.ip_address(addr)
        if self.redactor.is_internal(addr):  # inventory or internal_networks, any notation
            return False
        return not (ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved)

    def _legitimate(self, addr: str) -> str | None:
        """Why the config trusts ``addr`` (a vendor's network, an allowlist), else None."""
        for vendor in self.cfg.vendors:
            if _in_any(addr, vendor.allowed_networks) or _in_any(addr, vendor.tunnel_networks):
                return f"known vendor infrastructure ({vendor.name})"
        for det_id, settings in sorted(self.cfg.detections.items()):
            listed = settings.allowlist.get("addresses", [])
            if addr in listed or _in_any(addr, [a for a in listed if "/" in a]):
                return f"allowlisted address (detections.{det_id})"
        return None

    def _lifetime_end(self, valid_from: str) -> str:
        seconds = float(self.cfg.export.indicator_lifetime)
        return stix_time((_instant(valid_from) + dt.timedelta(seconds=seconds)).isoformat())

    def _kill_chain(self, findings: list[Finding]) -> list[dict[str, str]] | None:
        phases: dict[tuple[str, str], dict[str, str]] = {}
        for f in findings:
            for tid in shared_techniques(f):
                for phase in attack.resolve(tid).kill_chain_phases:
                    phases.setdefault((phase["kill_chain_name"], phase["phase_name"]), phase)
        return [phases[k] for k in sorted(phases)] or None

    def add_indicators(self) -> None:
        inc = self.incident
        seen: dict[str, list[Finding]] = {}
        for f in inc.findings:
            for addr in self.finding_addresses[f.finding_id]:
                seen.setdefault(addr, []).append(f)
        for value in inc.addresses:
            ip = _ip(value)
            if ip is not None:
                seen.setdefault(str(ip), [])
        for addr, findings in seen.items():
            if not self._is_external(addr):
                continue
            trusted = self._legitimate(addr)
            if trusted is not None:
                self._add_trusted_note(addr, trusted, findings)
                continue
            echo, derived_from = self._intel_naming(addr, findings)
            if echo:  # only the ISAC's own indicator named it: its sighting says so, no re-mint
                continue
            valid_from = min((stix_time(f.first_seen) for f in findings), default=self.created, key=_instant)
            titles = "; ".join(dict.fromkeys(f.title for f in findings)) or self.title
            # Its content comes from each finding's first hit (title, first seen, asset) and
            # names the incident by id only: a new version when a finding joins, not per hit.
            where = "; ".join(dict.fromkeys(self._asset_text(f.asset_id, f.zone) for f in findings))
            labels = sorted({shared_stage(f) for f in findings if f.stage} | {f.detection_id for f in findings})
            ind = self._sdo(
                "indicator",
                ("address", addr),
                max((stix_time(f.first_seen) for f in findings), key=_instant)
                if findings and not self._revised_by_older_evidence else None,
                name=f"External address {addr} in crane incident at {self.cfg.site.name}",
                description=(
                    f"{addr} took part in: {titles}. Seen from {valid_from} on "
                    f"{where or self._incident_asset_text()}; cranewatch incident {self.incident_ref}."
                ),
                indicator_types=["malicious-activity"] if derived_from else ["anomalous-activity"],
                pattern=f"[ipv{ipaddress.ip_address(addr).version}-addr:value = '{addr}']",
                pattern_type="stix",
                valid_from=valid_from,
                valid_until=self._lifetime_end(valid_from),
                kill_chain_phases=self._kill_chain(findings),
                labels=labels or None,
                confidence=max((int(f.confidence) for f in findings), default=None),
            )
            self.indicators.append(ind)
            for f in findings:
                for pattern_id in self.finding_patterns[f.finding_id]:
                    self._relate("indicates", ind["id"], pattern_id)
                if f.finding_id in self.finding_observed:
                    self._relate("based-on", ind["id"], self.finding_observed[f.finding_id])
            for received_id in derived_from:
                self._relate("derived-from", ind["id"], received_id)

    def _add_trusted_note(self, addr: str, why: str, findings: list[Finding]) -> None:
        """A note, not an indicator, on an address the config trusts (see module docstring)."""
        sco = self.address_sco.get(addr)
        refs = [r for r in [sco, *(self.finding_observed.get(f.finding_id) for f in findings)] if r]
        if not refs:
            return
        titles = "; ".join(dict.fromkeys(f.title for f in findings)) or self.title
        vendor_side = why.startswith("known vendor infrastructure")
        abstract = (
            "Known vendor infrastructure, used outside the window" if vendor_side
            else "Allowlisted address, not an indicator"
        )
        self.notes.append(
            self._sdo(
                "note",
                ("trusted", addr),
                max((stix_time(f.first_seen) for f in findings), key=_instant)
                if findings and not self._revised_by_older_evidence else None,
                abstract=abstract,
                content=(
                    f"{addr} is {why} in {self.cfg.site.name}'s configuration; it took part in: {titles}. "
                    "It is shared as a sighting, not as an indicator: alerting on or blocking it would hit "
                    f"the vendor's normal work. cranewatch incident {self.incident_ref}."
                ),
                object_refs=refs,
            )
        )

    def _intel_naming(self, addr: str, findings: list[Finding]) -> tuple[bool, list[str]]:
        """Whether every finding on ``addr`` is a threat-intel match on ``addr`` itself (an
        echo of the ISAC's indicator), and the received indicators in this bundle that
        matched it (an indicator minted for other findings is ``derived-from`` them)."""
        from stix_export.intel import DETECTION_ID

        with_port = (f"[{addr}]:",) if ":" in addr else (f"{addr}:",)  # IPv6 with a port is bracketed

        def names(matched: Any) -> bool:  # "91.92.241.1", "198.51.100.7:8443", "[2001:db8::1]:443", "a → b"
            return any(part == addr or part.startswith(with_port) for part in str(matched).split(" → "))

        ids, echoes = set(), 0
        for f in findings:
            if f.detection_id != DETECTION_ID:
                continue
            fields = [ev.fields for ev in f.evidence]
            if any(names(m) for fl in fields for m in (fl.get("intel_matched") or ())):
                echoes += 1
                ids.update(i for fl in fields for i in (fl.get("indicators") or ()) if isinstance(i, str))
        return bool(findings) and echoes == len(findings), sorted(i for i in ids if i in self.received)
