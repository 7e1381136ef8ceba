"""A tiny OAuth issuer for the benchmark suite: an RSA key, its JWKS and RFC 8414 metadata on loopback, and tokens;
and the environment of an acp-mcp that accepts its tokens (`oauth_env`).

It serves only what a resource server reads (``/.well-known/oauth-authorization-server`` naming
``jwks_uri``, and the JWKS) from a `ThreadingHTTPServer` in a daemon thread, and mints RS256 access
tokens directly (no token endpoint). Kept apart from the tests' issuer: the bench never imports the tests.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from bench.harness import KEY

SCOPE = "runs:read runs:write"
KID = "bench-key"
METADATA_PATH = "/.well-known/oauth-authorization-server"
JWKS_PATH = "/jwks"
LIFETIME_SECONDS = 3_600
"""How long a minted token lives: longer than any section."""


@dataclass
class Issuer:
    """The issuer's URL and signing key: `mint` makes the access tokens it would issue."""

    url: str
    key: rsa.RSAPrivateKey = field(repr=False)

    def mint(self, sub: str, audience: str) -> str:
        """An RS256 access token for `sub` at `audience`, with both scopes, valid for `LIFETIME_SECONDS`."""
        now = int(time.time())
        claims = {
            "iss": self.url,
            "sub": sub,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + LIFETIME_SECONDS,
            "scope": SCOPE,
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KID, "typ": "at+jwt"})


def _documents(url: str, key: rsa.RSAPrivateKey) -> dict[str, bytes]:
    """The two JSON documents served, by path."""
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": KID, "alg": "RS256", "use": "sig"}
    metadata = {"issuer": url, "jwks_uri": url + JWKS_PATH, "scopes_supported": SCOPE.split()}
    return {METADATA_PATH: json.dumps(metadata).encode(), JWKS_PATH: json.dumps({"keys": [jwk]}).encode()}


@contextlib.contextmanager
def serve_issuer() -> Iterator[Issuer]:
    """An issuer on a free loopback port, serving until the block ends."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    documents: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = documents.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the suite prints only its table."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    documents.update(_documents(url, key))
    thread = threading.Thread(target=server.serve_forever, name="bench-issuer", daemon=True)
    thread.start()
    try:
        yield Issuer(url, key)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def write_keys(path: Path, subjects: list[str]) -> Path:
    """A keys file at `path` mapping each of `subjects` to the sandbox's key."""
    path.write_text(json.dumps({"subjects": dict.fromkeys(subjects, KEY), "claims": {}}))
    return path


def oauth_env(base: dict[str, str], issuer: Issuer, url: str, keys: Path) -> dict[str, str]:
    """`base` plus OAuth: access tokens of `issuer` for `url` (the server's own URL), keys from `keys`."""
    return base | {"ACP_MCP_OAUTH_ISSUER": issuer.url, "ACP_MCP_PUBLIC_URL": url, "ACP_MCP_KEYS_FILE": str(keys)}
