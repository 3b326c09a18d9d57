"""A source's ``kafka:`` block: the broker, the topic and how to reach it securely.

Credentials never live in the config file (it is shared, versioned and printed in error
messages): a password is named by the file or the environment variable that holds it, and
any pass-through ``options`` key that looks like a secret is refused.
"""
from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, StrictInt, field_validator, model_validator

from pipelines.config_base import Strict
from pipelines.config_site import PositiveDuration

_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
NO_CREDENTIAL = "expected no credential in the config"  # its error never quotes the value
_SECRET_WORDS = ("password", "secret", "sasl.jaas", "oauthbearer.config", "key.pem", "certificate.pem")


class KafkaSecurity(Strict):
    """TLS and SASL for a real broker (librdkafka's settings of the same meaning)."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Optional[Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]] = None
    sasl_username: Optional[str] = None
    sasl_password_file: Optional[str] = None  # a file holding the password (relative to the config)
    sasl_password_env: Optional[str] = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    ssl_ca_location: Optional[str] = None  # CA bundle (PEM) the broker's certificate is checked against
    ssl_certificate_location: Optional[str] = None  # client certificate (PEM), for mutual TLS
    ssl_key_location: Optional[str] = None  # its private key (PEM)
    ssl_key_password_file: Optional[str] = None
    ssl_key_password_env: Optional[str] = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    ssl_endpoint_identification: bool = True  # check the broker's host name against its certificate

    @model_validator(mode="after")
    def _consistent(self) -> "KafkaSecurity":
        sasl = self.protocol.startswith("SASL")
        if sasl and (self.sasl_mechanism is None or self.sasl_username is None):
            raise ValueError(f"expected sasl_mechanism and sasl_username with protocol {self.protocol}")
        if sasl and (self.sasl_password_file is None) == (self.sasl_password_env is None):
            raise ValueError("expected exactly one of sasl_password_file or sasl_password_env "
                             "(the password itself never goes in the config)")
        if not sasl and (self.sasl_mechanism or self.sasl_username or self.sasl_password_file or self.sasl_password_env):
            raise ValueError(f"expected no sasl_* settings with protocol {self.protocol} (use SASL_SSL or SASL_PLAINTEXT)")
        if self.ssl_key_password_file is not None and self.ssl_key_password_env is not None:
            raise ValueError("expected at most one of ssl_key_password_file or ssl_key_password_env")
        return self


class KafkaSettings(Strict):
    """``sources[].kafka``: read one topic's partitions (transforms/kafka_source.py)."""

    bootstrap: str  # HOST:PORT[,HOST:PORT...]
    topic: str = Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")
    group: Optional[str] = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,200}$")  # default cranewatch-<source>
    start: Literal["earliest", "latest"] = "earliest"  # with no committed offset and nothing read before
    max_message_bytes: StrictInt = Field(default=1 << 20, ge=1, le=256 << 20)  # larger: a dead letter
    batch_records: StrictInt = Field(default=20000, ge=1, le=1_000_000)  # records read per poll at most
    partition_refresh: PositiveDuration = 10.0  # between looks for new partitions
    security: KafkaSecurity = Field(default_factory=KafkaSecurity)
    options: dict[str, str] = Field(default_factory=dict)  # further librdkafka consumer settings

    @field_validator("bootstrap")
    @classmethod
    def _servers(cls, v: str) -> str:
        parts = v.split(",")
        for part in parts:
            m = _HOST_PORT.match(part.strip())
            if not m or not 0 < int(m.group(2)) < 65536:
                raise ValueError("expected HOST:PORT[,HOST:PORT...] such as 127.0.0.1:9092")
        return ",".join(p.strip() for p in parts)

    @field_validator("options")
    @classmethod
    def _no_secrets(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if any(word in key.lower() for word in _SECRET_WORDS):
                raise ValueError(f"{NO_CREDENTIAL} (got option {key!r}): name the file or environment "
                                 "variable that holds it under security:")
            if key in ("bootstrap.servers", "group.id", "enable.auto.commit", "security.protocol"):
                raise ValueError(f"expected {key!r} to be set by its own key (bootstrap, group, security), not options")
        return v
