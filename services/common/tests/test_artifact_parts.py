"""Artifacts above the part size: multipart uploads and parallel ranged reads, on the emulator over HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from prometheus_client import REGISTRY

from bookrec_catalog.catalog import utc_now
from bookrec_common.artifacts import MIN_PART_SIZE, ArtifactStore, CorruptArtifact, Superseded
from bookrec_common.clients import s3_client
from bookrec_common.settings import ServiceSettings
from bookrec_local.procs import local_s3

PART = MIN_PART_SIZE  # S3's smallest part (all but the last), so that a payload of a few parts stays small
PAYLOAD = os.urandom(3 * PART + 123_457)  # three full parts and a short last one


def refused(kind: str, reason: str) -> float:
    return REGISTRY.get_sample_value("artifact_refused_total", {"kind": kind, "reason": reason}) or 0.0


class CountingS3:
    """The store's S3 client, counting the requests made through it; `fail_part` makes that part's upload
    raise once S3 has stored it (the builder dying mid-upload); `hang_part` makes it hang there instead,
    setting `hanging` (a builder task cancelled mid-upload)."""

    def __init__(self, s3, fail_part: int | None = None) -> None:
        self._s3 = s3
        self.fail_part = fail_part
        self.hang_part: int | None = None
        self.hanging = asyncio.Event()
        self.calls: list[tuple[str, dict]] = []

    def __getattr__(self, name):
        method = getattr(self._s3, name)

        async def call(**request):
            self.calls.append((name, request))
            response = await method(**request)
            if name == "upload_part" and request["PartNumber"] == self.fail_part:
                raise ConnectionResetError("connection lost after the part was stored")
            if name == "upload_part" and request["PartNumber"] == self.hang_part:
                self.hanging.set()
                await asyncio.Event().wait()  # until cancelled
            return response

        return call

    def named(self, name: str) -> list[dict]:
        return [request for called, request in self.calls if called == name]


@pytest.fixture
async def client(artifact_bucket):
    async with s3_client(ServiceSettings()) as s3:
        yield CountingS3(s3)


@pytest.fixture
def store(client, artifact_bucket) -> ArtifactStore:
    return ArtifactStore(client, artifact_bucket, f"kind-{uuid.uuid4().hex[:6]}", part_size=PART)


def publish(store: ArtifactStore, payload: bytes | Path = PAYLOAD, version: int = 1):
    return store.publish(payload, version=version, watermark=utc_now(), items=4, build_reads=9)


async def test_a_payload_of_several_parts_round_trips_checked_by_its_whole_sha256(store, client, moto_endpoint):
    manifest = await publish(store)
    assert manifest.size == len(PAYLOAD) and manifest.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    parts = client.named("upload_part")
    assert sorted(p["PartNumber"] for p in parts) == [1, 2, 3, 4]
    assert [p["Key"] for p in client.named("put_object")] == [f"{store.kind}/latest.json"]  # the manifest only
    assert [len(p["Body"]) for p in sorted(parts, key=lambda p: p["PartNumber"])] == [PART] * 3 + [123_457]
    head = local_s3(moto_endpoint).head_object(Bucket=store.bucket, Key=manifest.key)
    assert head["ETag"].endswith('-4"') and head["ContentLength"] == len(PAYLOAD)  # stored as 4 parts

    fetched = await store.fetch(await store.latest())
    assert fetched == PAYLOAD and isinstance(fetched, bytearray)  # the buffer the ranges filled, not a copy
    ranges = sorted(r["Range"] for r in client.named("get_object") if "Range" in r)
    assert ranges == sorted(f"bytes={start}-{min(start + PART, len(PAYLOAD)) - 1}"
                            for start in range(0, len(PAYLOAD), PART))


async def test_a_payload_within_one_part_keeps_the_single_put_and_get(store, client):
    small = os.urandom(PART)
    manifest = await publish(store, small)
    assert not client.named("create_multipart_upload") and len(client.named("put_object")) == 2  # payload, manifest
    assert await store.fetch(manifest) == small
    assert not [r for r in client.named("get_object") if "Range" in r]


async def test_a_payload_file_of_several_parts_is_sent_a_part_at_a_time(store, client, tmp_path, moto_endpoint):
    path = tmp_path / "payload.bin"
    path.write_bytes(PAYLOAD)
    manifest = await publish(store, path)
    assert manifest.size == len(PAYLOAD) and manifest.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    parts = sorted(client.named("upload_part"), key=lambda p: p["PartNumber"])
    assert [len(p["Body"]) for p in parts] == [PART] * 3 + [123_457]
    assert b"".join(p["Body"] for p in parts) == PAYLOAD
    assert [p["Key"] for p in client.named("put_object")] == [f"{store.kind}/latest.json"]
    head = local_s3(moto_endpoint).head_object(Bucket=store.bucket, Key=manifest.key)
    assert head["ETag"].endswith('-4"') and head["ContentLength"] == len(PAYLOAD)
    assert await store.fetch(await store.latest()) == PAYLOAD
    assert path.read_bytes() == PAYLOAD  # the store reads the file; whoever wrote it deletes it


async def test_a_payload_file_within_one_part_is_one_put(store, client, tmp_path):
    small = os.urandom(PART)
    path = tmp_path / "payload.bin"
    path.write_bytes(small)
    manifest = await publish(store, path)
    assert manifest.size == PART and manifest.sha256 == hashlib.sha256(small).hexdigest()
    assert not client.named("create_multipart_upload")
    payload_put, manifest_put = client.named("put_object")
    assert payload_put["Key"] == manifest.key and payload_put["Body"] == small
    assert manifest_put["Key"] == f"{store.kind}/latest.json"
    assert await store.fetch(manifest) == small


async def test_a_missing_payload_file_publishes_nothing(store, client, tmp_path):
    with pytest.raises(FileNotFoundError):
        await publish(store, tmp_path / "never-written.bin")
    assert not client.named("put_object") and not client.named("create_multipart_upload")
    assert await store.latest() is None


async def test_a_payload_file_upload_failing_midway_is_aborted(store, client, tmp_path, moto_endpoint):
    path = tmp_path / "payload.bin"
    path.write_bytes(PAYLOAD)
    client.fail_part = 2
    with pytest.raises(ConnectionResetError):
        await publish(store, path)
    s3 = local_s3(moto_endpoint)
    assert len(client.named("abort_multipart_upload")) == 1
    assert s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=store.bucket, Prefix=f"{store.kind}/")["KeyCount"] == 0


async def test_an_upload_failing_midway_is_aborted_and_writes_nothing(store, client, moto_endpoint):
    client.fail_part = 3
    with pytest.raises(ConnectionResetError):
        await publish(store)
    s3 = local_s3(moto_endpoint)
    assert s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
    assert len(client.named("abort_multipart_upload")) == 1 and not client.named("complete_multipart_upload")
    assert s3.list_objects_v2(Bucket=store.bucket, Prefix=f"{store.kind}/")["KeyCount"] == 0  # no payload, no manifest
    assert await store.latest() is None
    client.fail_part = None  # the next run publishes the same version normally
    assert await store.fetch(await publish(store)) == PAYLOAD


async def test_a_publish_cancelled_mid_upload_is_aborted(store, client, moto_endpoint):
    client.hang_part = 2
    task = asyncio.create_task(publish(store))
    await client.hanging.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    s3 = local_s3(moto_endpoint)
    assert len(client.named("abort_multipart_upload")) == 1
    assert s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=store.bucket, Prefix=f"{store.kind}/")["KeyCount"] == 0


async def test_a_payload_key_already_written_is_never_overwritten(store, client, moto_endpoint):
    """A builder that died between its payload and its manifest: the same version cannot write it again."""
    s3 = local_s3(moto_endpoint)
    key = f"{store.kind}/{1:020d}.bin"
    s3.put_object(Bucket=store.bucket, Key=key, Body=b"first writer's payload")
    with pytest.raises(Superseded):
        await publish(store, version=1)
    assert len(client.named("upload_part")) == 4  # refused at completion (If-None-Match: *), then aborted
    assert s3.get_object(Bucket=store.bucket, Key=key)["Body"].read() == b"first writer's payload"
    assert s3.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
    assert await store.latest() is None


async def test_a_second_publish_of_a_version_is_refused_and_changes_nothing(store, moto_endpoint):
    first = await publish(store, version=2)
    with pytest.raises(Superseded):
        await publish(store, os.urandom(len(PAYLOAD)), version=2)
    assert await store.latest() == first and await store.fetch(first) == PAYLOAD
    assert local_s3(moto_endpoint).list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []


async def test_a_ranged_read_of_a_truncated_altered_or_missing_payload_is_refused(store, moto_endpoint):
    manifest = await publish(store)
    s3 = local_s3(moto_endpoint)
    before = {reason: refused(store.kind, reason) for reason in ("size", "checksum", "missing")}
    s3.put_object(Bucket=store.bucket, Key=manifest.key, Body=PAYLOAD[:PART + 10])  # truncated: 2 of 4 ranges
    with pytest.raises(CorruptArtifact, match="bytes, the manifest says"):
        await store.fetch(manifest)
    s3.put_object(Bucket=store.bucket, Key=manifest.key, Body=PAYLOAD + b"x")  # one byte too many
    with pytest.raises(CorruptArtifact, match=f"{len(PAYLOAD) + 1} bytes"):
        await store.fetch(manifest)
    altered = bytearray(PAYLOAD)
    altered[2 * PART + 5] ^= 0xFF
    s3.put_object(Bucket=store.bucket, Key=manifest.key, Body=bytes(altered))  # same size, one bit flipped
    with pytest.raises(CorruptArtifact, match="SHA-256"):
        await store.fetch(manifest)
    s3.delete_object(Bucket=store.bucket, Key=manifest.key)
    with pytest.raises(CorruptArtifact, match="missing"):
        await store.fetch(manifest)
    assert {reason: refused(store.kind, reason) - before[reason] for reason in before} == {
        "size": 2, "checksum": 1, "missing": 1}


async def test_a_failing_ranged_read_is_counted_and_raised(store, client):
    manifest = await publish(store)
    failures = REGISTRY.get_sample_value("artifact_fetch_failures_total", {"kind": store.kind}) or 0.0
    s3_get = client._s3.get_object  # noqa: SLF001 - one range of the read fails on the wire

    async def failing_get(**request):
        if request.get("Range", "").startswith(f"bytes={PART}-"):
            raise ClientError({"Error": {"Code": "InternalError", "Message": "we encountered an internal error"}},
                              "GetObject")
        return await s3_get(**request)

    client._s3.get_object = failing_get  # noqa: SLF001 - one range of the read fails on the wire
    with pytest.raises(ClientError, match="InternalError"):
        await store.fetch(manifest)
    assert REGISTRY.get_sample_value("artifact_fetch_failures_total", {"kind": store.kind}) == failures + 1


def test_parts_smaller_than_s3_allows_are_refused():
    with pytest.raises(ValueError, match="at least"):
        ArtifactStore(object(), "artifacts", "kind", part_size=MIN_PART_SIZE - 1)
