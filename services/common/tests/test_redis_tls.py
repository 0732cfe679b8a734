"""The services' Redis path as on AWS: rediss:// (TLS, certificate verified) and an AUTH token, from the
typed settings, against a local redis-server started with TLS and requirepass (certificates made here)."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis import exceptions as errors

from bookrec_common.clients import redis_client, redis_client_for
from bookrec_common.ratelimit import RATE_LIMIT_UNCHECKED, RateLimiter, TooManyRequests
from bookrec_common.settings import ServiceSettings
from bookrec_local.procs import free_port, port_open, start, stop, wait_until
from bookrec_local.prometheus import current

TOKEN = "a-redis-auth-token-of-the-kind-secrets-manager-generates-0123456789"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate it signed for 127.0.0.1: (ca, cert, key) PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("bookrec test CA")).issuer_name(_name("bookrec test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory) -> tuple[int, Path]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (make deps installs it from Debian's packages)")
    ca, cert, key = make_certificates(tmp_path_factory.mktemp("redis-tls"))
    port = free_port()
    proc = start([binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                  "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
                  "--tls-auth-clients", "no", "--requirepass", TOKEN,
                  "--save", "", "--appendonly", "no"])
    try:
        wait_until(lambda: port_open(port), 15, "redis-server with TLS", proc)
    except Exception as exc:  # noqa: BLE001 - a redis-server built without TLS exits at once, however it fails
        stop(proc)
        pytest.skip(f"redis-server could not serve TLS: {exc}")
    yield port, ca
    stop(proc)


def settings(monkeypatch, **env: str) -> ServiceSettings:
    for variable in ("REDIS_URL", "REDIS_AUTH_TOKEN", "REDIS_TLS_CA_FILE"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    return ServiceSettings()


async def test_settings_connect_with_tls_and_the_auth_token(tls_redis, monkeypatch):
    port, ca = tls_redis
    config = settings(monkeypatch, REDIS_URL=f"rediss://127.0.0.1:{port}/0", REDIS_AUTH_TOKEN=TOKEN,
                      REDIS_TLS_CA_FILE=str(ca))
    assert TOKEN not in repr(config) and TOKEN not in str(config.model_dump())  # never in a log line
    async with redis_client_for(config, timeout=2) as redis:
        assert await redis.ping()
        await redis.set("tls-check", b"1", ex=60)
        assert await redis.get("tls-check") == b"1"
        info = await redis.info("server")
        assert info["tcp_port"] == port
        # The shared rate limits work over it as they do in plain text.
        limiter = RateLimiter(redis, "tls", limit=1, window_seconds=60)
        await limiter.hit("alice")
        with pytest.raises(TooManyRequests):
            await limiter.hit("alice")


async def test_a_wrong_or_missing_token_is_refused(tls_redis):
    port, ca = tls_redis
    for token in ("wrong-token", ""):
        async with redis_client(f"rediss://127.0.0.1:{port}/0", 2, auth_token=token, ca_file=str(ca)) as redis:
            with pytest.raises((errors.AuthenticationError, errors.ResponseError)):
                await redis.set("x", b"1")


async def test_the_server_certificate_is_verified(tls_redis):
    """Without the CA that signed it (the system trust store does not know it), the handshake fails."""
    port, _ = tls_redis
    async with redis_client(f"rediss://127.0.0.1:{port}/0", 2, auth_token=TOKEN) as redis:
        with pytest.raises(errors.ConnectionError, match=r"(?i)certificate"):
            await redis.ping()


async def test_plain_text_to_the_tls_port_never_works(tls_redis):
    port, _ = tls_redis
    async with redis_client(f"redis://127.0.0.1:{port}/0", 1, auth_token=TOKEN) as redis:
        with pytest.raises((errors.ConnectionError, errors.TimeoutError)):
            await redis.ping()


async def test_a_refused_token_opens_the_rate_limit_and_counts_it(tls_redis):
    port, ca = tls_redis
    async with redis_client(f"rediss://127.0.0.1:{port}/0", 2, auth_token="wrong", ca_file=str(ca)) as redis:
        limiter = RateLimiter(redis, "tls-refused", limit=1, window_seconds=60)
        before = current(RATE_LIMIT_UNCHECKED.labels("tls-refused"))
        await limiter.hit("bob")
        await limiter.hit("bob")
        assert current(RATE_LIMIT_UNCHECKED.labels("tls-refused")) == before + 2
