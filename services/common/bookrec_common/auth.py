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
from cachetools import TTLCache
from litestar.connection import ASGIConnection

from bookrec_common.errors import DependencyUnavailable, Forbidden, Unauthorized
from bookrec_common.settings import AuthSettings

ADMIN_GROUP = "admin"
INTERNAL_TOKEN_HEADER = "X-Internal-Token"
_BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def _keys_unavailable() -> DependencyUnavailable:
    return DependencyUnavailable("the token signing keys could not be fetched; retry shortly",
                                 code="jwks_unavailable", headers={"Retry-After": "5"})


@dataclass(frozen=True)
class Principal:
    subject: str
    username: str | None
    groups: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.groups


class TokenVerifier:
    """Verifies Cognito access tokens (RS256) against the pool's key set.

    Only access tokens are accepted: `token_use` "access" and the app client in `client_id`. An ID
    token (`token_use` "id", the client in `aud`) proves who signed in, not that the API may be called
    on their behalf, so it is refused.

    The key set is fetched once, and again when a token names a key id it lacks, at most once per
    `min_refetch_seconds`. Requests that find their key missing while a fetch is under way wait for that
    fetch and share it: N concurrent tokens with N unknown key ids cost one fetch, not N in a row. A key
    id still unknown after a fetch is remembered for `unknown_key_seconds` (at most `MAX_UNKNOWN_KEYS` of
    them), so a stream of forged tokens is answered 401 without touching the key set's server.
    """

    MAX_UNKNOWN_KEYS = 1024

    def __init__(self, jwks_url: str, issuer: str, audience: str, http: aiohttp.ClientSession,
                 min_refetch_seconds: float = 10.0, unknown_key_seconds: float = 60.0) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self._http = http
        self._keys: dict[str, Any] = {}
        self._min_refetch = min_refetch_seconds
        self._attempted_at: float | None = None
        self._attempts = 0  # fetches over: a request waiting on the lock is answered by any ending after it
        self._failed = False  # whether the last fetch failed (its waiters get 503, not "unknown key")
        self._unknown: TTLCache[str, bool] = TTLCache(self.MAX_UNKNOWN_KEYS, unknown_key_seconds)
        self._lock = asyncio.Lock()

    @property
    def fetches(self) -> int:
        """Key set fetches tried so far (successful or not)."""
        return self._attempts

    async def _fetch_keys(self) -> None:
        self._attempted_at = time.monotonic()
        self._failed = True
        try:
            async with self._http.get(self.jwks_url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                response.raise_for_status()
                jwks = jwt.PyJWKSet.from_dict(await response.json(content_type=None))
            self._keys = {key.key_id: key for key in jwks.keys if key.key_id is not None}  # no kid: unusable
            self._failed = False
        except (aiohttp.ClientError, TimeoutError, jwt.PyJWTError, ValueError) as exc:
            raise _keys_unavailable() from exc
        finally:
            self._attempts += 1  # once it is over: requests that came during the fetch are answered by it

    async def _refetch_for(self, key_id: str) -> bool:
        """Fetch the key set for a key id it lacks, unless a fetch was tried while this request waited;
        whether a fetch answered it (False: none within `min_refetch_seconds`, the key set may be stale)."""
        seen = self._attempts
        async with self._lock:
            if self._attempts == seen and (self._attempted_at is None
                                           or time.monotonic() - self._attempted_at >= self._min_refetch):
                await self._fetch_keys()
            elif self._failed and key_id not in self._keys:
                raise _keys_unavailable()
            return self._attempts != seen

    async def _key(self, key_id: str | None) -> Any:
        key = self._keys.get(key_id) if key_id is not None else None
        if key is None and key_id is not None and key_id not in self._unknown:
            fetched = await self._refetch_for(key_id)
            key = self._keys.get(key_id)
            if key is None and fetched:  # a key set fetched after the token came does not have it
                self._unknown[key_id] = True
        if key is None:
            raise Unauthorized("the token was signed by an unknown key", code="invalid_token",
                               headers=_BEARER_CHALLENGE)
        return key.key

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("malformed bearer token", code="invalid_token",
                               headers=_BEARER_CHALLENGE) from None
        if header.get("alg") != "RS256":
            raise Unauthorized("tokens must be signed with RS256", code="invalid_token",
                               headers=_BEARER_CHALLENGE)
        kid = header.get("kid")
        key = await self._key(kid if isinstance(kid, str) else None)
        try:
            claims = jwt.decode(token, key, algorithms=["RS256"], issuer=self.issuer,
                                options={"require": ["exp", "iat", "iss", "sub"], "verify_aud": False},
                                leeway=30)
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired", code="token_expired",
                               headers=_BEARER_CHALLENGE) from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}", code="invalid_token",
                               headers=_BEARER_CHALLENGE) from None
        if claims.get("token_use") != "access":
            raise Unauthorized("only access tokens are accepted (token_use must be \"access\")",
                               code="invalid_token", headers=_BEARER_CHALLENGE)
        if claims.get("client_id") != self.audience:
            raise Unauthorized("the token was issued to another app client", code="invalid_token",
                               headers=_BEARER_CHALLENGE)
        return Principal(subject=str(claims["sub"]), username=claims.get("username"),
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
    state: dict[str, Any] = request.scope.setdefault("state", {})
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
