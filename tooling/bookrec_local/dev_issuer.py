"""A development token issuer: RS256 tokens shaped like Cognito access tokens, and their JWKS over HTTP.

The stack uses the emulator's Cognito; this one serves the services' own
tests and benchmarks, where any `sub` and group is wanted without signing
users in. The services verify its tokens exactly as Cognito's.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


class TokenIssuer:
    """RS256 tokens shaped like Cognito access tokens, and the JWKS that verifies them, served over HTTP."""

    issuer = "https://issuer.test/pool"
    audience = "bookrec-test-client"
    key_id = "test-key-1"

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        jwks = json.dumps({"keys": [{**public, "kid": self.key_id, "alg": "RS256", "use": "sig"}]}).encode()
        self.jwks_requests = 0  # how often the key set was fetched: verifiers must not fetch per request
        served = threading.Lock()
        issuer = self

        class JWKS(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with served:
                    issuer.jwks_requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(jwks)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), JWKS)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.jwks_url = f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"

    def settings(self) -> dict[str, str]:
        return {"jwt_jwks_url": self.jwks_url, "jwt_issuer": self.issuer, "jwt_audience": self.audience}

    def token(self, sub: str, admin: bool = False, expires_in: int = 3600, **claims: object) -> str:
        now = int(time.time())
        body = {"sub": sub, "iss": self.issuer, "client_id": self.audience, "token_use": "access",
                "username": sub, "iat": now, "exp": now + expires_in,
                **({"cognito:groups": ["admin"]} if admin else {}), **claims}
        return jwt.encode(body, self._key, algorithm="RS256", headers={"kid": self.key_id})

    def headers(self, sub: str, admin: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub, admin)}"}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
