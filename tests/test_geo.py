"""Country look-ups for vendor logins: inline networks, CIDR and DB-IP range CSVs."""
from __future__ import annotations

from pathlib import Path

import pytest

from transforms.geo import CountryTable, GeoFileError, read_csv


def test_ranges_cidrs_precedence_and_unknown(tmp_path: Path) -> None:
    ranges = tmp_path / "dbip.csv"
    ranges.write_text("1.0.0.0,1.0.0.255,AU\n1.0.1.0,1.0.3.255,CN\n2a00:1450::,2a00:1450:ffff:ffff:ffff:ffff:ffff:ffff,IE\n"
                      "5.0.0.0,5.0.0.255,ZZ\n")
    cidrs = tmp_path / "nets.csv"
    cidrs.write_text("network,country\n203.0.113.0/24,nl\n")
    table = CountryTable([("1.0.2.0/24", "JP")], [str(ranges), str(cidrs)])
    assert table.country("1.0.0.7") == "AU"
    assert table.country("1.0.1.255") == "CN" and table.country("1.0.3.0") == "CN"
    assert table.country("1.0.2.9") == "JP"  # the inline correction wins over the file
    assert table.country("1.0.4.0") is None  # between ranges
    assert table.country("2a00:1450:4001::5") == "IE"
    assert table.country("5.0.0.1") is None  # ZZ: the export does not know
    assert table.country("203.0.113.200") == "NL"
    assert table.country("not an address") is None and table.country(None) is None
    assert bool(table) and not CountryTable()


@pytest.mark.parametrize("text,message", [
    ("1.0.0.0/33,AU\n", "line 1: expected network,country or first,last,country, got '1.0.0.0/33,AU'"),
    ("1.0.0.0,1.0.0.255,AU\n1.0.0.9,1.0.0.1,AU\n", "line 2: expected first <= last of one IP version"),
    ("1.0.0.0,1.0.0.255,AU\n1.0.1.0\n", "line 2: expected network,country or first,last,country"),
])
def test_bad_rows_name_their_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "geo.csv"
    path.write_text(text)
    with pytest.raises(GeoFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_csv(str(path))
