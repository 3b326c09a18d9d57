"""The producer identity and its place: contact and location from ``site:``, strictly checked,
and an identity that does not name itself as its creator."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import ConfigError, parse_config
from stix_export.bundle import incident_bundle
from stix_export.validate import validate_bundle_file
from stix_export.writer import write_bundle
from tests.test_stix_export import by_type, make_config, make_incident


def _config(**site: str):
    data = make_config().model_dump(mode="json", exclude_defaults=True)
    data["site"] = {**data["site"], **site}
    return parse_config(data, "test.yaml")


def test_identity_carries_contact_and_a_located_at_location(tmp_path: Path) -> None:
    cfg = _config(contact="OT SOC +31 10 000 0000, soc@port.example", country="nl", locode="NLRTM",
                  details_date="2026-11-30T00:00:00.000Z")
    b = incident_bundle(make_incident(), cfg)
    (identity,) = by_type(b, "identity")
    assert identity["contact_information"] == "OT SOC +31 10 000 0000, soc@port.example"
    assert "created_by_ref" not in identity
    assert identity["modified"] == "2026-11-30T00:00:00.000Z"
    (loc,) = by_type(b, "location")
    assert loc["country"] == "NL" and loc["created_by_ref"] == identity["id"]
    assert loc["external_references"] == [{"source_name": "UN/LOCODE", "external_id": "NLRTM"}]
    rels = [r for r in by_type(b, "relationship") if r["relationship_type"] == "located-at"]
    assert [(r["source_ref"], r["target_ref"]) for r in rels] == [(identity["id"], loc["id"])]
    assert validate_bundle_file(write_bundle(b, tmp_path)) == []


def test_without_site_details_there_is_no_location_and_no_self_creator() -> None:
    b = incident_bundle(make_incident(), make_config())
    assert by_type(b, "location") == []
    (identity,) = by_type(b, "identity")
    assert "created_by_ref" not in identity and "contact_information" not in identity


@pytest.mark.parametrize("key,value", [("locode", "Rotterdam"), ("country", "NLD"), ("details_date", "2026-11-30")])
def test_bad_site_details_are_a_config_error_naming_the_key(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        _config(**{key: value})
    assert f"site.{key}" in str(err.value)
