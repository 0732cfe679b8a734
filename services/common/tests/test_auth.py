"""Token verification against the emulator's Cognito, over HTTP: real JWKS, real RS256 tokens."""

from __future__ import annotations

from contextlib import asynccontextmanager

import aiohttp
import pytest
from litestar import Litestar, get
from litestar.di import NamedDependency, Provide
from litestar.testing import AsyncTestClient

from bookrec_common.auth import Principal, TokenVerifier, require_admin, require_principal
from bookrec_common.errors import EXCEPTION_HANDLERS, Unauthorized
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
        for issuer, audience in ((identity["JWT_ISSUER"], "another-client"), ("https://elsewhere", identity["JWT_AUDIENCE"])):
            with pytest.raises(Unauthorized):
                await TokenVerifier(identity["JWT_JWKS_URL"], issuer, audience, http).verify(token)


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
        assert (await client.get("/me", headers={"Authorization": "Basic x"})).json()["code"] == "missing_token"
        ok = await client.get("/me", headers={"Authorization": f"Bearer {user['access_token']}"})
        assert ok.json() == {"sub": user["sub"]}
        forbidden = await client.get("/admin", headers={"Authorization": f"Bearer {user['access_token']}"})
        assert forbidden.status_code == 403 and forbidden.json()["code"] == "not_admin"
