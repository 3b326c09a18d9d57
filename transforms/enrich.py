"""Enrichment: which inventoried asset and zone each event concerns.

Vectorized over a whole Arrow batch (one hash look-up per column, no per-row Python),
because it runs on every raw event.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.config import Config


class Enricher:
    """Resolves ``src_asset``/``dst_asset``/zones from addresses and ``asset_id``/``zone``."""

    def __init__(self, cfg: Config):
        ips, ids, zones = [], [], []
        self.zone_of_asset: dict[str, str] = {}
        for a in cfg.inventory.assets:
            self.zone_of_asset[a.id] = a.zone
            for ip in a.addresses:
                ips.append(ip)
                ids.append(a.id)
                zones.append(a.zone)
        self._ips = pa.array(ips, pa.string())
        self._ids = pa.array(ids, pa.string())
        self._zones = pa.array(zones, pa.string())
        self._asset_ids = pa.array(list(self.zone_of_asset), pa.string())
        self._asset_zones = pa.array(list(self.zone_of_asset.values()), pa.string())

    def __call__(self, table: pa.Table) -> pa.Table:
        if table.num_rows == 0:
            return table
        src_idx = pc.index_in(table.column("src_ip"), value_set=self._ips)
        dst_idx = pc.index_in(table.column("dst_ip"), value_set=self._ips)
        src_asset = pc.take(self._ids, src_idx)
        dst_asset = pc.take(self._ids, dst_idx)
        # The event concerns the asset the parser named (a CMS event's controller), else the
        # destination when it is inventoried (a command to a PLC), else the source (egress).
        named = table.column("asset_id")
        asset_id = pc.coalesce(named, dst_asset, src_asset)
        zone = pc.take(self._asset_zones, pc.index_in(asset_id, value_set=self._asset_ids))
        table = _set(table, "src_asset", src_asset)
        table = _set(table, "src_zone", pc.take(self._zones, src_idx))
        table = _set(table, "dst_asset", dst_asset)
        table = _set(table, "dst_zone", pc.take(self._zones, dst_idx))
        table = _set(table, "asset_id", asset_id)
        return _set(table, "zone", pc.coalesce(zone, table.column("zone")))


def _set(table: pa.Table, name: str, values: pa.Array | pa.ChunkedArray) -> pa.Table:
    i = table.schema.get_field_index(name)
    return table.set_column(i, table.schema.field(i), values)
