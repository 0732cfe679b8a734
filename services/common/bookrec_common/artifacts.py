"""Versioned artifacts in S3: derived state built once per fleet, loaded by every replica.

Layout under the service's prefix (one prefix per kind of artifact, e.g. `search-index/`):

    <prefix>/<version>.bin     the payload, written once (If-None-Match: *), never changed
    <prefix>/latest.json       the manifest: version, key, SHA-256, size, watermark, build figures

`version` is the builder's fencing token (see `bookrec_common.lease`): it only grows. The manifest is
replaced by compare-and-swap (If-Match on the ETag read), and only by a higher version, so a builder
whose lease expired mid-build can never publish over a newer artifact: S3 itself is the fence.

A replica reads the manifest (one small GET), then the payload, and checks size and SHA-256 (of the
whole payload, however it travelled) before handing the bytes on: a truncated or corrupt payload is
refused (`CorruptArtifact`) and counted.

Large payloads travel in parts. One PUT holds at most 5 GB, which the search index passes near 10.5M
books (~546 B a book), and one GET stream of gigabytes is the slowest step of a replica's cold start.
A payload above `PART_SIZE` (64 MiB; S3's minimum part is 5 MiB) is written by a multipart upload,
`PARTS_IN_FLIGHT` (4) parts at a time, and completed with If-None-Match: * so the payload key is still
written once (moto 5.2.5 enforces the condition as S3 does: 412). Its parts are copies (botocore takes
no memoryview), so a publish holds the payload plus at most 4 × 64 MiB = 256 MiB. S3 allows 10,000
parts: 625 GiB at 64 MiB parts (a bigger payload gets bigger parts). Any failure (a part, the
completion, a cancellation) aborts the upload before re-raising, so no orphaned parts are billed;
an abort that itself fails is what the bucket's AbortIncompleteMultipartUpload lifecycle rule (one day,
`infrastructure/modules/artifacts`) is for. A replica reads such a payload with ranged GETs of one part
size, 4 in flight, straight into one preallocated `bytearray` (no chunks to join), checks it and hands
that very buffer on: the decoders keep read-only views into it (search's) or copy what they keep
(recommendation's), so the payload is held once, never as a `bytes` copy beside it. Each part is one
request ($0.005 per 1,000 PUTs, $0.0004 per 1,000 GETs): a 5 GB payload is ~75 parts, under $0.0004 a
publish and $0.00003 a replica start.

A payload may be published from a file (`publish(Path)`; search's builder dumps its snapshot to one) rather
than from bytes: its SHA-256 is streamed over the file, and each part is read from it as it is sent, so
publishing holds the parts in flight (at most 4 × 64 MiB), never the payload.

A replica follows the store with `bookrec_common.follower.ArtifactFollower`.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from prometheus_client import Counter, Gauge

log = logging.getLogger("bookrec.artifacts")

ARTIFACT_VERSION = Gauge("artifact_version", "Version of the artifact in use (the builder's fencing token)",
                         ["kind"])
ARTIFACT_BUILT = Gauge("artifact_built_timestamp_seconds", "When the artifact in use was built", ["kind"])
ARTIFACT_BUILD_READS = Gauge("artifact_build_items_read", "DynamoDB items read to build the artifact in use",
                             ["kind"])
ARTIFACT_REFUSED = Counter("artifact_refused_total", "Artifacts refused: checksum or size mismatch, "
                           "unreadable manifest, missing payload, a payload that cannot be decoded (format)",
                           ["kind", "reason"])
ARTIFACT_FETCH_FAILURES = Counter("artifact_fetch_failures_total", "Failed reads of the artifact store",
                                  ["kind"])
ARTIFACT_PUBLISHED = Counter("artifact_published_total", "Artifacts published by this process", ["kind"])

MANIFEST = "latest.json"
FORMAT = 1
PART_SIZE = 64 * 1024 * 1024  # payloads above it travel in parts of this size
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's minimum (every part but the last)
MAX_PARTS = 10_000  # S3's maximum per multipart upload
PARTS_IN_FLIGHT = 4


class CorruptArtifact(Exception):
    """The payload does not match its manifest (truncated, altered), or the manifest is unreadable."""


class UnreadableArtifact(CorruptArtifact, ValueError):
    """The payload checks out but cannot be decoded: another format (a newer builder mid-deploy), or a bug."""


class Superseded(Exception):
    """A newer artifact was published meanwhile (or our lease was lost): ours must not replace it."""


class _Refused(CorruptArtifact):
    """A payload that does not match its manifest; `reason` labels `artifact_refused_total`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Manifest:
    kind: str
    version: int
    key: str
    sha256: str
    size: int
    watermark: str  # the change feed's position the artifact is complete up to (catalog.utc_now() form)
    built_at: float  # epoch seconds
    items: int  # what the artifact holds (books, ratings)
    build_reads: int  # DynamoDB items the build read
    format: int = FORMAT

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            fields = json.loads(raw)
            manifest = cls(**fields)
        except (ValueError, TypeError) as exc:
            raise CorruptArtifact(f"unreadable manifest: {exc}") from exc
        if not isinstance(manifest.version, int) or not isinstance(manifest.size, int):
            raise CorruptArtifact("unreadable manifest: version and size must be integers")
        return manifest


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}


def _precondition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in {"PreconditionFailed", "412", "ConditionalRequestConflict"}


def _sha256(data: bytes | bytearray) -> str:
    return hashlib.sha256(data).hexdigest()


class _InMemory:
    """A payload held as bytes: its parts are copies (botocore takes no memoryview)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.size = len(data)

    def sha256(self) -> str:
        return _sha256(self._data)

    def read(self, offset: int, length: int) -> bytes:
        return self._data if (offset, length) == (0, self.size) else self._data[offset:offset + length]


class _InFile:
    """A payload in a file, never held whole: its SHA-256 streams over it, each part is read when sent
    (`os.pread`: parts in flight read at once, each at its own offset)."""

    def __init__(self, file: io.BufferedReader) -> None:
        self._file = file
        self.size = os.fstat(file.fileno()).st_size

    def sha256(self) -> str:
        self._file.seek(0)
        return hashlib.file_digest(self._file, "sha256").hexdigest()

    def read(self, offset: int, length: int) -> bytes:
        data = os.pread(self._file.fileno(), length, offset)
        if len(data) != length:
            raise OSError(f"{self._file.name}: {len(data)} bytes at {offset}, not {length}: changed while published")
        return data


Payload = bytes | bytearray  # what `fetch` gives: a bytearray when read in ranges (not to be changed after)


async def _each(count: int, work: Callable[[int], Awaitable[None]], limit: int) -> None:
    """work(0) ... work(count - 1), at most `limit` at a time. The first failure cancels the rest and is
    raised itself (not an ExceptionGroup) once none of them runs any more."""
    numbers = iter(range(count))

    async def worker() -> None:
        for number in numbers:  # one iterator shared by the workers: each number is taken once
            await work(number)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(limit, count)):
                group.create_task(worker())
    except BaseExceptionGroup as failures:
        raise failures.exceptions[0] from None


class ArtifactStore:
    """One kind of artifact in one bucket. The only code that talks to S3."""

    def __init__(self, s3: Any, bucket: str, kind: str, *, part_size: int = PART_SIZE,
                 parts_in_flight: int = PARTS_IN_FLIGHT) -> None:
        if part_size < MIN_PART_SIZE or parts_in_flight < 1:
            raise ValueError(f"parts of at least {MIN_PART_SIZE} bytes, at least one in flight")
        self._s3 = s3
        self.bucket = bucket
        self.kind = kind
        self.part_size = part_size
        self.parts_in_flight = parts_in_flight

    def _key(self, name: str) -> str:
        return f"{self.kind}/{name}"

    async def _manifest_and_etag(self) -> tuple[Manifest | None, str | None]:
        try:
            response = await self._s3.get_object(Bucket=self.bucket, Key=self._key(MANIFEST))
            async with response["Body"] as body:
                raw = await body.read()
        except ClientError as exc:
            if _missing(exc):
                return None, None
            ARTIFACT_FETCH_FAILURES.labels(self.kind).inc()
            raise
        except Exception:
            ARTIFACT_FETCH_FAILURES.labels(self.kind).inc()
            raise
        try:
            return Manifest.from_json(raw), response.get("ETag")
        except CorruptArtifact:
            ARTIFACT_REFUSED.labels(self.kind, "manifest").inc()
            raise

    async def latest(self) -> Manifest | None:
        """The newest published manifest, None when nothing was ever published."""
        return (await self._manifest_and_etag())[0]

    async def fetch(self, manifest: Manifest) -> Payload:
        """The payload of `manifest`, checked against its size and SHA-256: bytes from a single GET, the
        `bytearray` the ranged GETs filled otherwise (not copied: decoders keep views, and never change it)."""
        try:
            payload: Payload
            if manifest.size > self.part_size:
                payload = await self._get_in_ranges(manifest)
            else:
                response = await self._s3.get_object(Bucket=self.bucket, Key=manifest.key)
                async with response["Body"] as body:
                    payload = await body.read()
            if len(payload) != manifest.size:
                raise _Refused("size", f"{manifest.key}: {len(payload)} bytes, the manifest says {manifest.size}")
            if await asyncio.to_thread(_sha256, payload) != manifest.sha256:  # 0.24 s at 408 MiB: off the loop
                raise _Refused("checksum", f"{manifest.key}: SHA-256 differs from the manifest's")
        except _Refused as exc:
            ARTIFACT_REFUSED.labels(self.kind, exc.reason).inc()
            raise
        except ClientError as exc:
            ARTIFACT_FETCH_FAILURES.labels(self.kind).inc()
            if _missing(exc):
                ARTIFACT_REFUSED.labels(self.kind, "missing").inc()
                raise CorruptArtifact(f"{manifest.key} is named by the manifest but missing") from exc
            raise
        except Exception:
            ARTIFACT_FETCH_FAILURES.labels(self.kind).inc()
            raise
        return payload

    async def _get_in_ranges(self, manifest: Manifest) -> bytearray:
        """The payload read by ranged GETs of one part size each, in parallel, into one buffer."""
        buffer = bytearray(manifest.size)
        view = memoryview(buffer)

        async def get_range(index: int) -> None:
            start = index * self.part_size
            end = min(start + self.part_size, manifest.size)
            try:
                response = await self._s3.get_object(Bucket=self.bucket, Key=manifest.key,
                                                     Range=f"bytes={start}-{end - 1}")
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "InvalidRange":
                    raise
                actual = exc.response["Error"].get("ActualObjectSize", "fewer")  # a range past the end
                raise _Refused("size", f"{manifest.key}: {actual} bytes, the manifest says {manifest.size}") from exc
            total = int(response["ContentRange"].rpartition("/")[2])  # "bytes START-END/TOTAL"
            if total != manifest.size:
                raise _Refused("size", f"{manifest.key}: {total} bytes, the manifest says {manifest.size}")
            stream, position = response["Body"], start
            async with stream:
                while position < end and (count := await stream.readinto(view[position:end])):
                    position += count
            if position != end:
                raise _Refused("size", f"{manifest.key}: range {start}-{end - 1} ended at byte {position}")

        await _each(math.ceil(manifest.size / self.part_size), get_range, self.parts_in_flight)
        return buffer

    async def publish(self, payload: bytes | Path, *, version: int, watermark: str, items: int,
                      build_reads: int) -> Manifest:
        """Write the payload (bytes, or the file at a path, read a part at a time), then point the manifest
        at it unless a version >= ours is already there."""
        if isinstance(payload, bytes):
            return await self._publish(_InMemory(payload), version, watermark, items, build_reads)
        with payload.open("rb") as file:
            return await self._publish(_InFile(file), version, watermark, items, build_reads)

    async def _publish(self, payload: _InMemory | _InFile, version: int, watermark: str, items: int,
                       build_reads: int) -> Manifest:
        current, etag = await self._manifest_and_etag()
        if current is not None and current.version >= version:
            raise Superseded(f"{self.kind} version {current.version} is already published (ours: {version})")
        manifest = Manifest(kind=self.kind, version=version, key=self._key(f"{version:020d}.bin"),
                            sha256=await asyncio.to_thread(payload.sha256), size=payload.size,
                            watermark=watermark, built_at=time.time(), items=items, build_reads=build_reads)
        try:
            if payload.size > self.part_size:
                await self._put_in_parts(manifest.key, payload)
            else:  # one PUT: small enough to hold whole
                body = await asyncio.to_thread(payload.read, 0, payload.size)
                await self._s3.put_object(Bucket=self.bucket, Key=manifest.key, Body=body,
                                          ContentType="application/octet-stream", IfNoneMatch="*")
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            await self._s3.put_object(Bucket=self.bucket, Key=self._key(MANIFEST), Body=manifest.to_json(),
                                      ContentType="application/json", **condition)
        except ClientError as exc:
            if _precondition_failed(exc):
                raise Superseded(f"{self.kind}: another builder published meanwhile") from exc
            raise
        ARTIFACT_PUBLISHED.labels(self.kind).inc()
        if current is not None:
            await self._mark_superseded(current)
        log.info("published %s version %d (%d bytes, %d items, %d items read)", self.kind, version,
                 manifest.size, items, build_reads)
        return manifest

    async def _put_in_parts(self, key: str, payload: _InMemory | _InFile) -> None:
        """A multipart upload of `payload` to `key`, completed only if `key` does not exist yet; on any
        failure the upload is aborted (its stored parts deleted) before the failure is raised."""
        part_size = max(self.part_size, math.ceil(payload.size / MAX_PARTS))
        count = math.ceil(payload.size / part_size)
        etags = [""] * count
        upload = await self._s3.create_multipart_upload(Bucket=self.bucket, Key=key,
                                                        ContentType="application/octet-stream")
        upload_id = upload["UploadId"]

        async def put_part(index: int) -> None:
            start = index * part_size
            body = await asyncio.to_thread(payload.read, start, min(part_size, payload.size - start))
            response = await self._s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                  PartNumber=index + 1, Body=body)
            etags[index] = response["ETag"]

        try:
            await _each(count, put_part, self.parts_in_flight)
            await self._s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, IfNoneMatch="*",
                MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": n} for n, etag in enumerate(etags, 1)]})
        except BaseException:  # cancellation included: the parts stored so far must not stay billed
            await self._abort(key, upload_id)
            raise

    async def _abort(self, key: str, upload_id: str) -> None:
        try:
            await self._s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except Exception as exc:  # noqa: BLE001 - the failure being raised matters more; the lifecycle rule
            # removes what is left after a day (a 409 on completion has already removed the upload)
            log.warning("could not abort the multipart upload of %s: %s", key, exc)

    async def _mark_superseded(self, manifest: Manifest) -> None:
        """Tag the payload just replaced: the bucket's lifecycle deletes it a day or two later (a replica
        that read the old manifest has long fetched it by then); the current payload never expires."""
        try:
            await self._s3.put_object_tagging(Bucket=self.bucket, Key=manifest.key,
                                              Tagging={"TagSet": [{"Key": "superseded", "Value": "true"}]})
        except Exception as exc:  # noqa: BLE001 - only storage is at stake; the next publish tags its own
            log.warning("could not tag %s as superseded: %s", manifest.key, exc)
