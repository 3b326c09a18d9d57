"""The streaming job's Kafka sources: config → ``KafkaSource``, their summary counts, and the
group offset commit once the job has finished (transforms/kafka_source.py reads them)."""
from __future__ import annotations

import json
import os
from typing import Any

from pipelines.config import Config
from transforms.kafka_source import KafkaSource, commit_read
from transforms.kafka_state import ReadLog, batches_path
from transforms.spool import STATE_DIR, watermark_path


def _secrets(cfg: Config, sec: Any) -> tuple[tuple[str, str, str], ...]:
    """(librdkafka key, "file" | "env", where): the values are read by the worker, never here."""
    out = []
    for key, file_, env in (("sasl.password", sec.sasl_password_file, sec.sasl_password_env),
                            ("ssl.key.password", sec.ssl_key_password_file, sec.ssl_key_password_env)):
        if file_ is not None:
            out.append((key, "file", file_ if os.path.isabs(file_) else os.path.join(cfg.base_dir, file_)))
        elif env is not None:
            out.append((key, "env", env))
    return tuple(out)


def _settings(cfg: Config, k: Any) -> tuple[tuple[str, str], ...]:
    sec = k.security
    out = {"security.protocol": sec.protocol}
    if sec.sasl_mechanism:
        out["sasl.mechanism"] = sec.sasl_mechanism
    if sec.sasl_username:
        out["sasl.username"] = sec.sasl_username
    for key, value in (("ssl.ca.location", sec.ssl_ca_location), ("ssl.certificate.location", sec.ssl_certificate_location),
                       ("ssl.key.location", sec.ssl_key_location)):
        if value is not None:
            out[key] = value if os.path.isabs(value) else os.path.join(cfg.base_dir, value)
    if sec.protocol.endswith("SSL"):
        out["ssl.endpoint.identification.algorithm"] = "https" if sec.ssl_endpoint_identification else "none"
    out.update(k.options)
    return tuple(sorted(out.items()))


def kafka_sources(cfg: Config, out_dir: str) -> list[KafkaSource]:
    """One ``KafkaSource`` per enabled source with a ``kafka:`` topic."""
    from pipelines.streaming import replay_horizon  # the spool sources' replay rule, shared

    state_dir = os.path.join(os.path.abspath(out_dir), STATE_DIR)
    horizon = replay_horizon(cfg)
    out = []
    for s in cfg.sources:
        if not s.enabled or s.kafka is None:
            continue
        k = s.kafka
        bound = s.out_of_orderness if s.out_of_orderness is not None else cfg.stream.out_of_orderness
        out.append(KafkaSource(
            source=s.name, format=s.format, bootstrap=k.bootstrap, topic=k.topic, group=k.group or f"cranewatch-{s.name}",
            state_dir=state_dir, timezone=s.timezone,
            mapping=s.mapping.model_dump_json() if s.mapping is not None else None,
            out_of_orderness=bound, allowed_lateness=cfg.correlation.allowed_lateness,
            horizon=horizon, idle_timeout=cfg.stream.idle_timeout,
            poll_interval=cfg.stream.poll_interval, start=k.start, max_message_bytes=k.max_message_bytes,
            batch_records=k.batch_records, partition_refresh=k.partition_refresh,
            settings=_settings(cfg, k), secrets=_secrets(cfg, k.security),
        ))
    return out


def kafka_summary(spec: KafkaSource) -> dict[str, Any]:
    """A Kafka source's counts so far (read = parsed + dead-lettered + skipped), from its
    recorded batches, and its watermark."""
    totals = ReadLog(batches_path(spec.state_dir, spec.source)).totals()
    try:
        with open(watermark_path(spec.state_dir, spec.source), encoding="utf-8") as fh:
            wm = json.load(fh)
    except (FileNotFoundError, ValueError):
        wm = {"watermark": None, "idle": False, "ended": False}
    return {
        "files": 0, "batches": totals["batches"], **{k: totals[k] for k in ("read", "parsed", "dead_lettered", "late", "skipped")},
        "watermark": wm.get("watermark"), "idle": wm.get("idle", False), "ended": wm.get("ended", False),
        "kafka": f"{spec.bootstrap}/{spec.topic}",
    }


def commit_finished(sources: list[KafkaSource]) -> None:
    """The job has finished and its sinks have written: commit what every source read."""
    for spec in sources:
        try:
            commit_read(spec)
        except Exception as exc:  # noqa: BLE001 - the broker gone: the next start resumes from its own record
            print(f"cranewatch stream: source {spec.source}: offsets not committed: {type(exc).__name__}: {exc}")
