"""Observables built directly carry the id and content stix2 gives them (stix_export/observables.py)."""
from __future__ import annotations

import json
from typing import Any

import pytest
import stix2

from stix_export.observables import _direct, built_sco

MARK = ("marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",)
V4 = "ipv4-addr--09172e0c-27f0-54ab-90eb-ee4a66b65549"
V6 = "ipv6-addr--b3c9e220-b492-5b51-8d2d-4b1c5e3ab27e"

CASES = [
    ("IPv4Address", (("value", "10.20.1.15"), ("object_marking_refs", MARK))),
    ("IPv6Address", (("value", "2001:db8::7"), ("object_marking_refs", MARK))),
    ("MACAddress", (("value", "00:1b:1b:aa:bb:cc"), ("object_marking_refs", MARK))),
    ("DomainName", (("value", "exfil.example.net"), ("object_marking_refs", MARK))),
    ("UserAccount", (("account_login", "zpmc-svc2"), ("object_marking_refs", MARK))),
    ("UserAccount", (("account_login", "acct-ü \"quoted\" \\ \u2028"), ("object_marking_refs", MARK))),
    *[("NetworkTraffic", (("start", start), ("src_ref", V4), ("dst_ref", V6), ("src_port", 0),
                          ("dst_port", 65535), ("protocols", ("tcp", "mbap")), ("object_marking_refs", MARK)))
      for start in ("2026-11-17T00:25:39.681576Z", "2026-11-17T00:25:39.680000Z", "2026-11-17T00:25:39.000Z",
                    "2026-11-17T00:25:39Z", "2026-11-17T00:25:39.1Z")],
    ("NetworkTraffic", (("start", "2026-11-17T00:25:39.500Z"), ("dst_ref", V4), ("src_port", 53841),
                        ("dst_port", 502), ("protocols", ("ipv4",)), ("object_marking_refs", MARK))),
]


def _by_stix2(kind: str, props: tuple[tuple[str, Any], ...]) -> tuple[str, dict[str, Any]]:
    obj = getattr(stix2, kind)(**{k: list(v) if isinstance(v, tuple) else v for k, v in props})
    return obj.id, json.loads(obj.serialize())


@pytest.mark.parametrize("kind, props", CASES)
def test_direct_observable_equals_stix2s(kind: str, props: tuple[tuple[str, Any], ...]) -> None:
    direct = _direct(kind, props)
    assert direct is not None, "expected the direct path for this observable"
    expected = _by_stix2(kind, props)
    assert direct == expected and list(direct[1]) == list(expected[1])  # same id, content and key order


@pytest.mark.parametrize("kind, props", [
    ("NetworkTraffic", (("start", "2026-11-17T00:25:39.5Z"), ("src_port", 1), ("dst_port", 2),
                        ("protocols", ("tcp",)))),  # neither end: stix2 refuses it
    ("NetworkTraffic", (("start", "yesterday"), ("src_ref", V4), ("protocols", ("tcp",)))),
    ("NetworkTraffic", (("src_ref", V4), ("src_port", 70000), ("protocols", ("tcp",)))),
    ("NetworkTraffic", (("src_ref", "identity--09172e0c-27f0-44ab-90eb-ee4a66b65549"), ("protocols", ("tcp",)))),
    ("IPv4Address", (("value", "10.0.0.1"), ("object_marking_refs", ("not-a-marking",)))),
    ("NetworkTraffic", (("src_ref", "ipv4-addr--not-a-uuid"), ("protocols", ("tcp",)))),
])
def test_what_stix2_refuses_is_still_refused(kind: str, props: tuple[tuple[str, Any], ...]) -> None:
    assert _direct(kind, props) is None  # left to stix2, which raises
    with pytest.raises(stix2.exceptions.STIXError):
        built_sco(kind, props)


def test_other_observables_are_built_by_stix2() -> None:
    props = (("name", "evil.exe"), ("object_marking_refs", MARK))
    assert _direct("File", props) is None
    assert built_sco("File", props) == _by_stix2("File", props)
