"""Token verification against the emulator's Cognito and the repository's token issuer, over HTTP: real
JWKS, real RS256 tokens."""

from __future__ import annotations

import asyncio
import socket
import time
from contextlib import asynccontextmanager

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import Litestar, get
from litestar.di import NamedDependency, Provide
from litestar.testing import AsyncTestClient

from bookrec_common.auth import Principal, TokenVerifier, require_admin, require_principal
from bookrec_common.errors import EXCEPTION_HANDLERS, DependencyUnavailable, Unauthorized
from bookrec_local.identity import create_identity, issue_token


@pytest.fixture(scope="module")
def identity(moto_endpoint):
    return create_identity(moto_endpoint, "authtest")


@pytest.fixture
async def verifier(identity):
    async with aiohttp.ClientSession() as http:
        yield TokenVerifier(identity["JWT_JWKS_URL"], identity["JWT_ISSUER"], identity["JWT_AUDIENCE"], http)


def token_for(moto_endpoint, identity, user, admin=False):
    return issue_token(moto_endpoint, identity["COGNITO_USER_POOL_ID"], identity["JWT_AUDIENCE"], user, admin)


async def test_a_pool_token_verifies_and_names_its_subject(moto_endpoint, identity, verifier):
    issued = token_for(moto_endpoint, identity, "carol")
    principal = await verifier.verify(issued["access_token"])
    assert principal.subject == issued["sub"] and principal.username == "carol" and not principal.is_admin


async def test_admin_group_membership_is_read_from_the_token(moto_endpoint, identity, verifier):
    principal = await verifier.verify(token_for(moto_endpoint, identity, "root", admin=True)["access_token"])
    assert principal.is_admin


@pytest.mark.parametrize("mutate, code", [
    (lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"), "invalid_token"),  # signature
    (lambda t: "not-a-jwt", "invalid_token"),
    (lambda t: t.split(".")[0] + ".e30." + t.split(".")[2], "invalid_token"),  # claims swapped
])
async def test_tampered_tokens_are_refused(moto_endpoint, identity, verifier, mutate, code):
    token = token_for(moto_endpoint, identity, "dave")["access_token"]
    with pytest.raises(Unauthorized) as err:
        await verifier.verify(mutate(token))
    assert err.value.code == code


async def test_wrong_audience_and_wrong_issuer_are_refused(moto_endpoint, identity):
    token = token_for(moto_endpoint, identity, "erin")["access_token"]
    async with aiohttp.ClientSession() as http:
        for issuer, audience in ((identity["JWT_ISSUER"], "another-client"),
                                 ("https://elsewhere", identity["JWT_AUDIENCE"])):
            with pytest.raises(Unauthorized):
                await TokenVerifier(identity["JWT_JWKS_URL"], issuer, audience, http).verify(token)


async def test_an_id_token_of_the_pool_is_refused(moto_endpoint, identity, verifier):
    issued = token_for(moto_endpoint, identity, "grace")
    assert jwt.decode(issued["id_token"], options={"verify_signature": False})["token_use"] == "id"
    with pytest.raises(Unauthorized) as err:
        await verifier.verify(issued["id_token"])
    assert "access tokens" in err.value.detail
    assert (await verifier.verify(issued["access_token"])).subject == issued["sub"]


@pytest.fixture
async def issuer_verifier(issuer):
    async with aiohttp.ClientSession() as http:
        yield TokenVerifier(issuer.jwks_url, issuer.issuer, issuer.audience, http)


@pytest.mark.parametrize("claims, detail", [
    ({"token_use": "id", "client_id": None, "aud": "bookrec-test-client"}, "access tokens"),  # an ID token
    ({"token_use": None}, "access tokens"),
    ({"client_id": "another-client"}, "another app client"),
    ({"client_id": None, "aud": "bookrec-test-client"}, "another app client"),  # the client only in `aud`
])
async def test_only_access_tokens_of_the_configured_client_are_accepted(issuer, issuer_verifier, claims,
                                                                         detail):
    assert (await issuer_verifier.verify(issuer.token("hana"))).subject == "hana"
    token = issuer.token("hana", **claims)
    with pytest.raises(Unauthorized) as err:
        await issuer_verifier.verify(token)
    assert detail in err.value.detail and err.value.headers["WWW-Authenticate"].startswith("Bearer")


def foreign_token(issuer, key, key_id: str) -> str:
    """A well-formed access token for the issuer's pool, signed by a key the pool does not publish."""
    now = int(time.time())
    claims = {"sub": "mallory", "iss": issuer.issuer, "client_id": issuer.audience, "token_use": "access",
              "iat": now, "exp": now + 600}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": key_id})


@pytest.fixture(scope="module")
def foreign_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


async def test_concurrent_unknown_key_ids_share_one_key_set_fetch(issuer, foreign_key):
    async with aiohttp.ClientSession() as http:
        verifier = TokenVerifier(issuer.jwks_url, issuer.issuer, issuer.audience, http, min_refetch_seconds=0)
        before = issuer.jwks_requests
        tokens = [foreign_token(issuer, foreign_key, f"rotated-{i}") for i in range(20)]
        outcomes = await asyncio.gather(*(verifier.verify(t) for t in tokens), return_exceptions=True)
        assert all(isinstance(o, Unauthorized) and "unknown key" in o.detail for o in outcomes)
        assert issuer.jwks_requests - before == 1
        # The key set fetched, the pool's own tokens verify without another fetch.
        assert (await verifier.verify(issuer.token("ivan"))).subject == "ivan"
        assert issuer.jwks_requests - before == 1


async def test_an_unknown_key_id_is_remembered_briefly(issuer, foreign_key):
    async with aiohttp.ClientSession() as http:
        remembering = TokenVerifier(issuer.jwks_url, issuer.issuer, issuer.audience, http,
                                    min_refetch_seconds=0)
        before = issuer.jwks_requests
        for _ in range(5):
            with pytest.raises(Unauthorized):
                await remembering.verify(foreign_token(issuer, foreign_key, "forged"))
        assert issuer.jwks_requests - before == 1
        with pytest.raises(Unauthorized):  # another unknown id is looked for (no refetch interval here)
            await remembering.verify(foreign_token(issuer, foreign_key, "forged-2"))
        assert issuer.jwks_requests - before == 2
        forgetting = TokenVerifier(issuer.jwks_url, issuer.issuer, issuer.audience, http,
                                   min_refetch_seconds=0, unknown_key_seconds=0)
        before = issuer.jwks_requests
        for _ in range(3):
            with pytest.raises(Unauthorized):
                await forgetting.verify(foreign_token(issuer, foreign_key, "forged"))
        assert issuer.jwks_requests - before == 3


async def test_an_unreachable_key_set_is_503_for_every_waiter_after_one_attempt(issuer):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with aiohttp.ClientSession() as http:
        verifier = TokenVerifier(f"http://127.0.0.1:{port}/jwks.json", issuer.issuer, issuer.audience, http)
        outcomes = await asyncio.gather(*(verifier.verify(issuer.token(f"u{i}")) for i in range(10)),
                                        return_exceptions=True)
        assert all(isinstance(o, DependencyUnavailable) and o.code == "jwks_unavailable" for o in outcomes)
        assert verifier.fetches == 1
        with pytest.raises(DependencyUnavailable):  # within the refetch interval: no new attempt
            await verifier.verify(issuer.token("u0"))
        assert verifier.fetches == 1


async def test_routes_guarded_by_the_dependencies(moto_endpoint, identity):
    @get("/me", dependencies={"principal": Provide(require_principal)})
    async def me(principal: NamedDependency[Principal]) -> dict:
        return {"sub": principal.subject}

    @get("/admin", dependencies={"principal": Provide(require_admin)})
    async def admin(principal: NamedDependency[Principal]) -> dict:
        return {"ok": True}

    @asynccontextmanager
    async def lifespan(app: Litestar):
        async with aiohttp.ClientSession() as http:
            app.state.token_verifier = TokenVerifier(identity["JWT_JWKS_URL"], identity["JWT_ISSUER"],
                                                     identity["JWT_AUDIENCE"], http)
            yield

    app = Litestar([me, admin], exception_handlers=EXCEPTION_HANDLERS, lifespan=[lifespan])
    user = token_for(moto_endpoint, identity, "frank")
    async with AsyncTestClient(app) as client:
        assert (await client.get("/me")).status_code == 401
        basic = await client.get("/me", headers={"Authorization": "Basic x"})
        assert basic.json()["code"] == "missing_token"
        ok = await client.get("/me", headers={"Authorization": f"Bearer {user['access_token']}"})
        assert ok.json() == {"sub": user["sub"]}
        forbidden = await client.get("/admin", headers={"Authorization": f"Bearer {user['access_token']}"})
        assert forbidden.status_code == 403 and forbidden.json()["code"] == "not_admin"
