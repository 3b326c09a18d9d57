"""The benchmark's like-for-like reference: DuckDB reads every data file of a corpus into
tables and runs four of the detections as SQL, from the same config.

What counts as the same work: every source file the config names is read (Zeek TSV logs,
gzip-compressed or not, grouped by their ``#path`` and ``#fields`` header; CMS JSON lines;
FortiGate key=value lines, parsed into columns with SQL), then

* ``ot_unexpected_egress``: a flow from a watched OT asset kind to an address that is neither
  an inventoried asset nor inside that asset's ``allowed_egress``,
* ``ot_inbound_external``: a flow from outside the internal networks to a watched OT port of
  an inventoried asset,
* ``modbus_write_non_engineering``: a Modbus write (any row of it, in ``modbus.log`` or
  ``modbus_detailed.log``) to a crane PLC from an asset kind not allowed to write, counted
  per transaction (uid, function, transaction id),
* ``vendor_session_outside_window``: a vendor account's ``tunnel-up`` while none of that
  vendor's maintenance windows is open (windows expanded from the config over the corpus span).

Each detection's parameters come from its ``.yml`` defaults overridden by the config. The
hits come back per detection as (dedup key, time in µs, source, source port, destination,
destination port, operation), the shape ``run_bench.compare_hits`` checks the pipeline's
findings against. IPv4 only: an IPv6 address is never inside a network here.
"""
from __future__ import annotations

import datetime as dt
import glob
import gzip
import ipaddress
import json
import os
import time
import zoneinfo
from typing import Any

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DETECTIONS = ("ot_unexpected_egress", "ot_inbound_external", "modbus_write_non_engineering",
              "vendor_session_outside_window")
#: Zeek field types → DuckDB column types (everything else is read as text).
ZEEK_TYPES = {"time": "DOUBLE", "interval": "DOUBLE", "port": "BIGINT", "count": "BIGINT", "int": "BIGINT",
              "double": "DOUBLE"}
#: Zeek logs whose rows are flows to the pipeline (its parsers of kind ``flow``).
FLOW_LOGS = ("conn", "dns")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
IP4 = ("CASE WHEN regexp_full_match({0}, '[0-9]{{1,3}}[.][0-9]{{1,3}}[.][0-9]{{1,3}}[.][0-9]{{1,3}}') THEN "
       "split_part({0}, '.', 1)::BIGINT * 16777216 + split_part({0}, '.', 2)::BIGINT * 65536 + "
       "split_part({0}, '.', 3)::BIGINT * 256 + split_part({0}, '.', 4)::BIGINT END")


def _params(cfg: Any, detection: str) -> dict[str, Any]:
    """The detection's parameters: its ``.yml`` defaults, then the config's overrides."""
    with open(os.path.join(ROOT, "detections", "builtin", f"{detection}.yml"), encoding="utf-8") as fh:
        params = dict(yaml.safe_load(fh).get("params") or {})
    settings = cfg.detections.get(detection)
    if settings is not None:
        if settings.allowlist:
            raise ValueError(f"{detection}: the DuckDB reference has no allowlists")
        params.update(settings.params)
    return params


def _enabled(cfg: Any, detection: str) -> bool:
    settings = cfg.detections.get(detection)
    return settings is None or settings.enabled


def _zeek_header(path: str) -> tuple[str, list[str], list[str]]:
    """``#path``, field names and types of a Zeek TSV log (read from its first lines)."""
    opener = gzip.open if path.endswith(".gz") else open
    name, fields, types = "", [], []
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            key, _, value = line.rstrip("\n").partition("\t")
            if key == "#path":
                name = value
            elif key == "#fields":
                fields = value.split("\t")
            elif key == "#types":
                types = value.split("\t")
                break
    return name, fields, types


def _files(cfg: Any) -> dict[str, list[str]]:
    """format → the data files the config's sources name."""
    out: dict[str, list[str]] = {}
    for source in cfg.sources:
        for pattern in source.paths:
            out.setdefault(source.format, []).extend(sorted(glob.glob(os.path.join(cfg.base_dir, pattern))))
    return out


def load(con: Any, cfg: Any) -> dict[str, int]:
    """Every data file into a table; returns table → rows."""
    tables: dict[str, int] = {}
    zeek: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[str]] = {}
    for fmt, paths in _files(cfg).items():
        if fmt.startswith("zeek_"):
            for p in paths:
                name, fields, types = _zeek_header(p)
                zeek.setdefault((name, tuple(fields), tuple(types)), []).append(p)
        elif fmt == "cms_events":
            con.execute("CREATE TABLE cms AS SELECT * FROM read_json(?, format='newline_delimited')", [paths])
            tables["cms"] = con.execute("SELECT count(*) FROM cms").fetchone()[0]
        elif fmt == "fortigate_vpn":
            field = lambda k: f"regexp_extract(line, '(?:^| ){k}=\"?([^\" ]*)', 1)"  # noqa: E731
            et = field("eventtime")
            con.execute(f"""
                CREATE TABLE fortigate AS
                SELECT CASE length(et) WHEN 19 THEN et::BIGINT // 1000 WHEN 16 THEN et::BIGINT
                                       WHEN 13 THEN et::BIGINT * 1000 WHEN 10 THEN et::BIGINT * 1000000 END AS time_us,
                       action, nullif(usr, '') AS "user", nullif(remip, '') AS remip,
                       nullif(tunnelip, '') AS tunnelip, nullif(nullif(tunnelid, ''), '0') AS tunnelid
                FROM (SELECT {et} AS et, {field('action')} AS action, {field('user')} AS usr,
                             {field('remip')} AS remip, {field('tunnelip')} AS tunnelip,
                             {field('tunnelid')} AS tunnelid
                      FROM read_csv(?, columns={{'line': 'VARCHAR'}}, delim='\x01', header=false, quote='',
                                    escape='', auto_detect=false))""", [paths])
            tables["fortigate"] = con.execute("SELECT count(*) FROM fortigate").fetchone()[0]
        else:
            raise ValueError(f"the DuckDB reference has no reader for format {fmt}")
    for (name, fields, types), paths in sorted(zeek.items()):
        table = f"zeek_{name}"
        if table in tables:
            raise ValueError(f"Zeek {name} logs with different #fields: not supported by the reference")
        columns = ", ".join(f"'{f.replace('.', '_')}': '{ZEEK_TYPES.get(t, 'VARCHAR')}'" for f, t in zip(fields, types))
        con.execute(f"""CREATE TABLE {table} AS SELECT * FROM read_csv(?, delim='\t', header=false, comment='#',
                        quote='', escape='', nullstr='-', columns={{{columns}}}, auto_detect=false)""", [paths])
        tables[table] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return tables


def _network_rows(networks: list[str]) -> list[tuple[int, int]]:
    out = []
    for n in networks:
        net = ipaddress.ip_network(n, strict=False)
        if net.version == 4:
            out.append((int(net.network_address), int(net.broadcast_address)))
    return out


def windows(cfg: Any, start: dt.datetime, end: dt.datetime) -> list[tuple[str, int, int]]:
    """Every maintenance window open in [start - 1 day, end + 1 day] as (vendor, from µs, to µs)."""
    us = lambda t: int(t.timestamp()) * 1_000_000 + t.microsecond  # noqa: E731
    out = []
    for w in cfg.maintenance_windows:
        if w.start is not None and w.end is not None:
            out.append((w.vendor, us(w.start), us(w.end)))
            continue
        tz = zoneinfo.ZoneInfo(w.timezone or "UTC")
        fh, fm = map(int, w.from_.split(":"))
        th, tm = map(int, w.to.split(":"))
        day = (start - dt.timedelta(days=2)).astimezone(tz).date()
        while day <= (end + dt.timedelta(days=1)).astimezone(tz).date():
            if WEEKDAYS[day.weekday()] in w.days:
                opens = dt.datetime(day.year, day.month, day.day, fh, fm, tzinfo=tz)
                closes = dt.datetime(day.year, day.month, day.day, th, tm, tzinfo=tz)
                if closes <= opens:  # runs past midnight
                    closes += dt.timedelta(days=1)
                out.append((w.vendor, us(opens), us(closes)))
            day += dt.timedelta(days=1)
    return out


def _config_tables(con: Any, cfg: Any, span: tuple[dt.datetime, dt.datetime]) -> None:
    con.execute("CREATE TABLE assets (ip VARCHAR, asset_id VARCHAR, kind VARCHAR)")
    con.executemany("INSERT INTO assets VALUES (?, ?, ?)",
                    [(ip, a.id, a.kind) for a in cfg.inventory.assets for ip in a.addresses])
    con.execute("CREATE TABLE egress (asset_id VARCHAR, lo BIGINT, hi BIGINT)")
    rows = [(a.id, lo, hi) for a in cfg.inventory.assets for lo, hi in _network_rows(list(a.allowed_egress))]
    if rows:
        con.executemany("INSERT INTO egress VALUES (?, ?, ?)", rows)
    con.execute("CREATE TABLE internal (lo BIGINT, hi BIGINT)")
    rows = _network_rows(list(cfg.inventory.internal_networks))
    if rows:
        con.executemany("INSERT INTO internal VALUES (?, ?)", rows)
    con.execute("CREATE TABLE vendor_accounts (account VARCHAR, vendor VARCHAR)")
    rows = [(acct, v.name) for v in cfg.vendors for acct in v.accounts]
    if rows:
        con.executemany("INSERT INTO vendor_accounts VALUES (?, ?)", rows)
    con.execute("CREATE TABLE windows (vendor VARCHAR, start_us BIGINT, end_us BIGINT)")
    rows = windows(cfg, *span)
    if rows:
        con.executemany("INSERT INTO windows VALUES (?, ?, ?)", rows)


def _in_list(values: list[Any]) -> str:
    if not values:
        return "(NULL)"
    return "(" + ", ".join(str(int(v)) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'"
                           for v in values) + ")"


def detect(con: Any, cfg: Any, tables: dict[str, int], span: tuple[dt.datetime, dt.datetime]) -> dict[str, list[tuple]]:
    """The four detections as SQL: detection → hit rows (dedup, time µs, src, sport, dst, dport, op)."""
    _config_tables(con, cfg, span)
    flows = [f"SELECT ts, id_orig_h AS src_ip, id_orig_p AS src_port, id_resp_h AS dst_ip, id_resp_p AS dst_port "
             f"FROM zeek_{name}" for name in FLOW_LOGS if f"zeek_{name}" in tables]
    modbus = [f"SELECT ts, uid, id_orig_h, id_orig_p, id_resp_h, id_resp_p, tid, func FROM {t}"
              for t in sorted(tables) if t.startswith("zeek_modbus")]
    time_us = "round(ts * 1000000)::BIGINT"
    queries: dict[str, str] = {}
    if flows and _enabled(cfg, "ot_unexpected_egress"):
        kinds = _params(cfg, "ot_unexpected_egress")["asset_kinds"]
        queries["ot_unexpected_egress"] = f"""
            SELECT s.asset_id || '|' || f.dst_ip, {time_us}, f.src_ip, f.src_port, f.dst_ip, f.dst_port, NULL
            FROM ({' UNION ALL '.join(flows)}) f JOIN assets s ON f.src_ip = s.ip
            WHERE s.kind IN {_in_list(kinds)} AND f.dst_ip NOT IN (SELECT ip FROM assets)
              AND {IP4.format('f.dst_ip')} IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM egress e WHERE e.asset_id = s.asset_id
                              AND {IP4.format('f.dst_ip')} BETWEEN e.lo AND e.hi)"""
    if flows and _enabled(cfg, "ot_inbound_external"):
        ports = _params(cfg, "ot_inbound_external")["ports"]
        queries["ot_inbound_external"] = f"""
            SELECT f.src_ip || '|' || d.asset_id, {time_us}, f.src_ip, f.src_port, f.dst_ip, f.dst_port, NULL
            FROM ({' UNION ALL '.join(flows)}) f JOIN assets d ON f.dst_ip = d.ip
            WHERE f.dst_port IN {_in_list(ports)} AND f.src_ip NOT IN (SELECT ip FROM assets)
              AND NOT coalesce(EXISTS (SELECT 1 FROM internal i WHERE {IP4.format('f.src_ip')} BETWEEN i.lo AND i.hi),
                               false)"""
    if modbus and _enabled(cfg, "modbus_write_non_engineering"):
        writers = _params(cfg, "modbus_write_non_engineering")["writer_kinds"]
        queries["modbus_write_non_engineering"] = f"""
            SELECT m.id_orig_h || '|' || d.asset_id, {time_us}, m.id_orig_h, m.id_orig_p, m.id_resp_h, m.id_resp_p,
                   m.uid || '/' || m.verb || '/' || coalesce(m.tid::VARCHAR, '')
            FROM (SELECT *, lower(regexp_replace(func, '_EXCEPTION$', '')) AS verb
                  FROM ({' UNION ALL '.join(modbus)})) m
            JOIN assets d ON m.id_resp_h = d.ip AND d.kind = 'crane_plc'
            LEFT JOIN assets s ON m.id_orig_h = s.ip
            WHERE (starts_with(m.verb, 'write_') OR starts_with(m.verb, 'mask_write')
                   OR starts_with(m.verb, 'read_write'))
              AND coalesce(s.kind, '') NOT IN {_in_list(writers)}"""
    if "fortigate" in tables and _enabled(cfg, "vendor_session_outside_window"):
        unknown = bool(_params(cfg, "vendor_session_outside_window")["unknown_accounts"])
        queries["vendor_session_outside_window"] = f"""
            SELECT coalesce(v.tunnelid, v."user" || '|' || coalesce(v.tunnelip, 'None')), v.time_us, v.remip,
                   NULL, NULL, NULL, NULL
            FROM fortigate v LEFT JOIN vendor_accounts a ON v."user" = a.account
            WHERE v.action = 'tunnel-up'
              AND (CASE WHEN a.vendor IS NULL THEN {str(unknown).lower()} AND v."user" IS NOT NULL
                        ELSE NOT EXISTS (SELECT 1 FROM windows w WHERE w.vendor = a.vendor
                                         AND v.time_us >= w.start_us AND v.time_us < w.end_us) END)"""
    return {det: con.execute(sql).fetchall() for det, sql in queries.items()}


def run(config_path: str, span: tuple[dt.datetime, dt.datetime], started: float) -> dict[str, Any]:
    """Load every file, run the detections: seconds since ``started``, rows, hits."""
    import duckdb

    from pipelines.config import load_config

    cfg = load_config(config_path)
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.execute("SET enable_progress_bar = false")
    tables = load(con, cfg)
    loaded = time.perf_counter()
    hits = detect(con, cfg, tables, span)
    done = time.perf_counter()
    return {"seconds": done - started, "load_seconds": loaded - started, "detect_seconds": done - loaded,
            "rows": sum(tables.values()), "tables": tables, "hits": hits}


def child(config_path: str, span: tuple[str, str], out_json: str, started: float) -> None:
    """Entry point of the benchmark's DuckDB process: results to ``out_json``."""
    parse = lambda s: dt.datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    result = run(config_path, (parse(span[0]), parse(span[1])), started)
    with open(out_json, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
