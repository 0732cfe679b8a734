"""Bearer JWT verification against a JWKS (RS256), and the internal-call token.

On AWS the issuer is a Cognito user pool; locally it is the emulator's
Cognito, which serves the same JWKS and token shapes. The caller is the
token's `sub`; admins are members of the `admin` group.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
from litestar.connection import ASGIConnection

from bookrec_common.errors import Forbidden, Unauthorized
from bookrec_common.settings import AuthSettings

ADMIN_GROUP = "admin"
INTERNAL_TOKEN_HEADER = "X-Internal-Token"
_BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


@dataclass(frozen=True)
class Principal:
    subject: str
    username: str | None
    groups: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.groups


class TokenVerifier:
    """Verifies RS256 tokens; the key set is fetched once and again when an unknown key id appears."""

    def __init__(self, jwks_url: str, issuer: str, audience: str, http: aiohttp.ClientSession,
                 min_refetch_seconds: float = 10.0) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self._http = http
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._min_refetch = min_refetch_seconds
        self._lock = asyncio.Lock()

    async def _fetch_keys(self) -> None:
        async with self._http.get(self.jwks_url, timeout=aiohttp.ClientTimeout(total=2)) as response:
            response.raise_for_status()
            jwks = jwt.PyJWKSet.from_dict(await response.json(content_type=None))
        self._keys = {key.key_id: key for key in jwks.keys}
        self._fetched_at = time.monotonic()

    async def _key(self, key_id: str | None) -> Any:
        if key_id not in self._keys and time.monotonic() - self._fetched_at > self._min_refetch:
            async with self._lock:
                if key_id not in self._keys:
                    await self._fetch_keys()
        try:
            return self._keys[key_id].key
        except KeyError:
            raise Unauthorized("the token was signed by an unknown key", code="invalid_token",
                               headers=_BEARER_CHALLENGE) from None

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("malformed bearer token", code="invalid_token", headers=_BEARER_CHALLENGE) from None
        if header.get("alg") != "RS256":
            raise Unauthorized("tokens must be signed with RS256", code="invalid_token", headers=_BEARER_CHALLENGE)
        key = await self._key(header.get("kid"))
        try:
            claims = jwt.decode(token, key, algorithms=["RS256"], issuer=self.issuer,
                                options={"require": ["exp", "iat", "iss", "sub"], "verify_aud": False},
                                leeway=30)
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired", code="token_expired", headers=_BEARER_CHALLENGE) from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}", code="invalid_token", headers=_BEARER_CHALLENGE) from None
        # Cognito puts the app client in `aud` on id tokens and in `client_id` on access tokens.
        audiences = claims.get("aud") or claims.get("client_id") or []
        if self.audience not in ([audiences] if isinstance(audiences, str) else audiences):
            raise Unauthorized("the token is not meant for this audience", code="invalid_token",
                               headers=_BEARER_CHALLENGE)
        return Principal(subject=str(claims["sub"]),
                         username=claims.get("username") or claims.get("cognito:username"),
                         groups=frozenset(claims.get("cognito:groups") or ()))


def token_verifier(settings: AuthSettings, http: aiohttp.ClientSession) -> TokenVerifier:
    return TokenVerifier(settings.jwt_jwks_url, settings.jwt_issuer, settings.jwt_audience, http)


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    scheme, _, token = connection.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("this operation needs a bearer token (Authorization: Bearer <jwt>)",
                           code="missing_token", headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


async def require_principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """Litestar dependency (and guard helper): the verified caller, or 401. Verified once per request."""
    state: dict[str, Any] = request.scope.setdefault("state", {})  # type: ignore[assignment]
    principal: Principal | None = state.get("principal")
    if principal is None:
        verifier: TokenVerifier = request.app.state.token_verifier
        principal = await verifier.verify(bearer_token(request))
        state["principal"] = principal
    return principal


async def require_admin(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    principal = await require_principal(request)
    if not principal.is_admin:
        raise Forbidden(f"this operation needs membership of the {ADMIN_GROUP!r} group", code="not_admin")
    return principal


async def admin_only(connection: ASGIConnection[Any, Any, Any, Any], _: Any) -> None:
    """Route guard: admins only (401 without a valid token, 403 without the group)."""
    await require_admin(connection)


def check_internal_token(request: ASGIConnection[Any, Any, Any, Any], expected: str) -> None:
    """Internal endpoints: a shared secret from settings (Secrets Manager on AWS)."""
    given = request.headers.get(INTERNAL_TOKEN_HEADER, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("internal endpoint: a valid internal token is required", code="internal_only")
