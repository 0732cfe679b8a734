"""Readers of the single sources of truth in infrastructure/definitions/.

Terraform reads the same files with jsondecode(file(...)); nothing else
restates tables, routes or services.
"""

from __future__ import annotations

import contextlib
import json
import time
from functools import cache
from pathlib import Path
from typing import Any

# The repository: this package is installed in place (pip install -e tooling), next to the definitions.
ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "infrastructure" / "definitions"


@cache
def load(name: str) -> dict[str, Any]:
    return json.loads((DEFINITIONS / f"{name}.json").read_text())


def tables() -> dict[str, Any]:
    return load("tables")


def routes() -> dict[str, Any]:
    return load("routes")


def services() -> dict[str, Any]:
    return load("services")


# Replica i (0 is the first) of a service listens on its services.json port + REPLICA_PORT_STEP * i: 8004,
# 8014, ... Clear of the other services' ports (8001-8004), of the ALB (8080), and of every stack's
# port offset (multiples of 100: the tests use 200, 400, 500, 700) for up to 9 replicas.
REPLICA_PORT_STEP = 10


def replicas(service: str) -> int:
    """How many tasks of `service` run behind the ALB (services.json "replicas", default 1)."""
    return int(services()[service].get("replicas", 1))


def replica_ports(service: str) -> list[int]:
    """Each replica's port, the first at the service's own port."""
    port = services()[service]["port"]
    return [port + REPLICA_PORT_STEP * i for i in range(replicas(service))]


def replica_names(service: str) -> list[str]:
    """Each replica's process (and compose service) name: the first is the service's own name, as the one
    other services call; then <service>-2, <service>-3, ..."""
    return [service, *(f"{service}-{i}" for i in range(2, replicas(service) + 1))]


def builders() -> dict[str, dict[str, Any]]:
    """service -> its "builder" spec, for the services whose derived state a builder makes."""
    return {name: spec["builder"] for name, spec in services().items() if spec.get("builder")}


def artifact_bucket_name(prefix: str) -> str:
    """The artifact bucket of a stack without Terraform's platform module (the local stack, compose):
    stable per prefix, so a restarted stack and every process of it agree on it."""
    return f"{prefix}-artifacts"


def create_artifact_bucket(client: Any, name: str) -> str:
    """Create the versioned artifact bucket (idempotently) with boto3's S3 client, as modules/artifacts
    does."""
    existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
    if name not in existing:
        client.create_bucket(Bucket=name)
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def table_names(prefix: str) -> dict[str, str]:
    return {logical: f"{prefix}-{logical}" for logical in tables()}


def table_env(prefix: str) -> dict[str, str]:
    """BOOKS_TABLE=..., RATINGS_TABLE=...: how every process learns the table names."""
    return {f"{logical.upper()}_TABLE": name for logical, name in table_names(prefix).items()}


def create_table_request(logical: str, name: str) -> dict[str, Any]:
    spec = tables()[logical]
    keys = [{"AttributeName": spec["hash_key"], "KeyType": "HASH"}]
    if spec.get("range_key"):
        keys.append({"AttributeName": spec["range_key"], "KeyType": "RANGE"})
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": keys,
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": t} for a, t in spec["attributes"].items()],
        "BillingMode": "PAY_PER_REQUEST",
    }
    indexes = []
    for gsi in spec.get("global_secondary_indexes", []):
        gsi_keys = [{"AttributeName": gsi["hash_key"], "KeyType": "HASH"}]
        if gsi.get("range_key"):
            gsi_keys.append({"AttributeName": gsi["range_key"], "KeyType": "RANGE"})
        indexes.append({"IndexName": gsi["name"], "KeySchema": gsi_keys,
                        "Projection": {"ProjectionType": gsi.get("projection", "ALL")}})
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    return request


def create_tables(client: Any, prefix: str) -> dict[str, str]:
    """Create every table (idempotently) with boto3's DynamoDB client; returns logical -> name."""
    names = table_names(prefix)
    existing = set(client.list_tables().get("TableNames", []))
    for logical, name in names.items():
        if name not in existing:
            client.create_table(**create_table_request(logical, name))
    for name in names.values():
        for _ in range(100):
            if client.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE":
                break
            time.sleep(0.1)
    return names


def delete_tables(client: Any, prefix: str) -> None:
    for name in table_names(prefix).values():
        with contextlib.suppress(client.exceptions.ResourceNotFoundException):
            client.delete_table(TableName=name)
