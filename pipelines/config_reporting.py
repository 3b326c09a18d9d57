"""The ``reporting:`` block: which mandated-report regimes apply to the site, who the
facility is, and which incidents are reportable (docs/mandated-reports.md). A draft aid,
not legal advice."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional

from pydantic import BeforeValidator, Field, field_validator

from pipelines.config_base import ASSET_KINDS, Strict

if TYPE_CHECKING:
    from pipelines.config import Config


class ReportableRule(Strict):
    """One reportability condition (``reporting.reportable``): every key given must hold for
    one finding of the incident (``min_severity`` for the incident so far); absent keys match
    anything. An incident is reportable when any rule holds. A draft aid, not legal advice."""

    min_severity: int = Field(default=0, ge=0, le=100)
    stages: list[Literal["recon", "access", "c2", "command", "impact", "exfiltration", "other"]] = Field(default_factory=list)
    asset_kinds: list[Literal[ASSET_KINDS]] = Field(default_factory=list)  # type: ignore[valid-type]
    detections: list[str] = Field(default_factory=list)


#: Default ``reporting.reportable``: a command, impact or exfiltration on a crane PLC or its
#: CMS, a vendor session outside its maintenance window, or any critical incident.
DEFAULT_REPORTABLE = (
    ReportableRule(stages=["command", "impact", "exfiltration"], asset_kinds=["crane_plc", "cms"]),
    ReportableRule(detections=["vendor_session_outside_window"]),
    ReportableRule(min_severity=90),
)


class RegimeSettings(Strict):
    # Sharing profile whose redaction the drafts get; "internal": an export profile of that
    # name if there is one, else the port's own unredacted view (authorities get it).
    profile: str = "internal"
    recipient: Optional[str] = None  # e.g. the NIS2 CSIRT or competent authority


def _regime_map(value: Any) -> Any:
    """``regimes: [uscg_mtsa, nis2]`` is short for ``{uscg_mtsa: {}, nis2: {}}``."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {v: {} for v in value}
    return value


class Facility(Strict):
    """Who reports: filled into every draft; a missing value is left for the analyst."""

    name: Optional[str] = None
    mtsa_facility_id: Optional[str] = None
    cotp_zone: Optional[str] = None  # Captain of the Port zone
    operator: Optional[str] = None
    cybersecurity_officer: Optional[str] = None
    contact: Optional[str] = None  # the officer's phone and e-mail
    timezone: str = "UTC"  # deadlines are shown in UTC and in this zone

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"expected an IANA timezone such as Europe/Amsterdam, got {v!r}") from None
        return v


class Reporting(Strict):
    """Mandated-report drafts (docs/mandated-reports.md): a draft aid, not legal advice."""

    regimes: Annotated[dict[str, RegimeSettings], BeforeValidator(_regime_map)] = Field(default_factory=dict)
    facility: Facility = Field(default_factory=Facility)
    reportable: list[ReportableRule] = Field(default_factory=lambda: list(DEFAULT_REPORTABLE))


def reporting_errors(cfg: "Config", path: str) -> list[str]:
    """Regimes must be known (built-in or plugin), profiles defined, detections known."""
    from detections.registry import load_registry
    from pipelines.mandated.registry import load_regimes

    errors = []
    regimes = load_regimes()
    profiles = {p.name for p in cfg.export.effective_profiles()} | {"internal"}
    for name, settings in cfg.reporting.regimes.items():
        if name not in regimes:
            errors.append(f"{path}: reporting.regimes.{name}: expected a known regime ({', '.join(sorted(regimes))}), got {name!r}")
        if settings.profile not in profiles:
            errors.append(f"{path}: reporting.regimes.{name}.profile: expected a sharing profile ({', '.join(sorted(profiles))}), got {settings.profile!r}")
    known = load_registry()
    for i, rule in enumerate(cfg.reporting.reportable):
        for d in rule.detections:
            if d not in known:
                errors.append(f"{path}: reporting.reportable[{i}].detections: expected a known detection id, got {d!r}")
    return errors
