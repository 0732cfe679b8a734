"""Typed settings, read from the environment once at start.

Each service subclasses `ServiceSettings` with its own fields; a missing or
malformed variable fails at boot with pydantic's message naming it.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True)

    service_name: str = "bookrec"
    # The port is services.json's: the local stack, ECS and the image (a build argument) set PORT from it, and
    # the server (granian --port) binds it. No service has a default of its own; read here so that a malformed
    # PORT fails at boot naming it, with one common default where none is set (an in-process app, a builder).
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    access_log: bool = True
    aws_region: str = Field(default="us-east-1", validation_alias="AWS_REGION")
    # Bounded so that a dead dependency answers 503 quickly instead of hanging.
    dynamodb_connect_timeout: float = 1.0
    dynamodb_read_timeout: float = 3.0
    dynamodb_max_attempts: int = 2
    # Whole-table scans (model builds, index loads) run off the request path with a patient client.
    dynamodb_scan_read_timeout: float = 120.0
    ready_timeout: float = 2.0
    # Redis: the recommender's cache, and the per-client rate limits every replica shares. Empty: none.
    # rediss:// speaks TLS (ElastiCache in transit encryption; the server certificate is always verified,
    # against REDIS_TLS_CA_FILE when set, else the system's trust store); REDIS_AUTH_TOKEN is the AUTH
    # password (a Secrets Manager secret injected by ECS), never logged nor shown in a repr.
    redis_url: str = ""
    redis_auth_token: SecretStr = SecretStr("")
    redis_tls_ca_file: str = ""
    # Requests per client per window on the limited routes; 0 turns the limit off.
    rate_limit: int = Field(default=0, ge=0)
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=3600)
    # Each replica counts locally and syncs with Redis at most this long after a hit, or at once when a client
    # has this many hits Redis has not seen (0: 2 % of the limit, at most 100). Admitted per window, at worst:
    # rate_limit + replicas x the allowance (see bookrec_common.ratelimit). An allowance of 1 syncs every hit.
    rate_limit_sync_seconds: float = Field(default=0.1, gt=0, le=5)
    rate_limit_local_allowance: int = Field(default=0, ge=0)


class ArtifactSettings(ServiceSettings):
    """Services whose derived state (an index, a model) is built once per fleet and shipped through S3."""

    # The artifact bucket; empty: no artifacts, the process builds its own state from the tables (a single
    # process, tests). Replicas then never scan a table: they load the newest artifact and follow the feed.
    artifact_bucket: str = ""
    # The key prefix of this service's artifacts (services.json's "artifacts", which IAM scopes access to);
    # empty: the service's own name for them.
    artifact_prefix: str = ""
    # How often a replica looks for a newer artifact (one small GET of the manifest).
    artifact_poll_seconds: float = Field(default=60.0, gt=0)
    # A builder's lease: renewed every third of this; a dead builder's lease expires after it.
    build_lease_seconds: float = Field(default=30.0, ge=1)
    s3_read_timeout: float = 60.0


class AuthSettings(ServiceSettings):
    """Services with authenticated routes: where tokens are verified (a Cognito user pool on AWS)."""

    jwt_jwks_url: str
    jwt_issuer: str
    jwt_audience: str
