"""Speed of the strict intel checks: indicators checked per second by ``check_indicator``
(import, and a run reading the config's bundle files) and store entries per second by
``check_entry`` (every run start), each as a ratio against a reference interleaved in the
same process: for indicators, ``stix2.parse`` of the whole object (its pattern parsed by
stix2 too) followed by ``parse_pattern``, i.e. the pattern parsed twice.

    .venv/bin/python -m bench.intel_check [--indicators N] [--rounds R]
"""
from __future__ import annotations

import argparse
import time
from typing import Any, Callable

from bench._corpus import header
from stix_export.intel import Policy, check_entry, check_indicator, parse_pattern
from stix_export.intel.store import IntelStore


def feed(n: int) -> list[dict[str, Any]]:
    """``n`` valid indicators as an ISAC publishes them: addresses, networks, ip:port pairs."""
    from stix_export.ids import deterministic_id

    patterns = ["[ipv4-addr:value = '198.51.{a}.{b}']", "[ipv4-addr:value ISSUBSET '203.{a}.{b}.0/24']",
                "[network-traffic:dst_ref.value = '192.0.{a}.{b}' AND network-traffic:dst_port = 8443]"]
    return [{"type": "indicator", "spec_version": "2.1", "id": deterministic_id("indicator", "bench", str(i)),
             "created": "2026-11-01T00:00:00Z", "modified": "2026-11-01T00:00:00Z", "name": f"bench {i}",
             "pattern": patterns[i % 3].format(a=(i >> 8) & 255, b=i & 255), "pattern_type": "stix",
             "valid_from": "2026-11-01T00:00:00Z", "indicator_types": ["malicious-activity"]} for i in range(n)]


def reference(obj: dict[str, Any]) -> None:
    import stix2

    stix2.parse(obj, allow_custom=True, version="2.1")
    parse_pattern(obj["pattern"])


def best(fn: Callable[[], None], timings: list[float]) -> None:
    t = time.perf_counter()
    fn()
    timings.append(time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--indicators", type=int, default=600)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    objs = feed(args.indicators)
    store = IntelStore()
    store.import_objects(objs, "bench")
    entries = dict(store.indicators)
    ref: list[float] = []
    new: list[float] = []
    entry: list[float] = []
    for _ in range(args.rounds):  # interleaved, so machine load hits both alike
        best(lambda: [reference(o) for o in objs], ref)
        best(lambda: [check_indicator(o, Policy()) for o in objs], new)
        best(lambda: [check_entry(k, e, Policy()) for k, e in entries.items()], entry)
    n = len(objs)
    print(header())
    print(f"load: {n} indicators (addresses, /24 networks, ip:port), best of {args.rounds} interleaved rounds")
    print(f"check_indicator: {n / min(new):,.0f}/s; reference (stix2 parses the pattern too): {n / min(ref):,.0f}/s; "
          f"ratio {min(ref) / min(new):.2f}x")
    print(f"check_entry (run start, per store entry): {n / min(entry):,.0f}/s; "
          f"{min(entry) / min(new):.3f}x the time of check_indicator")


if __name__ == "__main__":
    main()
