"""The test issuer (`tests/_issuer.py`) works as clients and verifiers use it: discovery, tokens, bad ones, rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import anyio.to_thread
import httpx2
import jwt
import pytest
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.shared.auth import OAuthMetadata

from acp_mcp.clock import VirtualClock

from ._issuer import (
    JWKS_PATH,
    METADATA_PATH,
    OPENID_CONFIGURATION_PATH,
    TOKEN_PATH,
    MemoryStorage,
    RunningIssuer,
    SigningKey,
    serve_issuer,
)

RESOURCE = "http://resource.test/mcp"
"""The canonical URL of the protected MCP server: what a token's aud must be."""
PRM_URL = "http://resource.test/.well-known/oauth-protected-resource/mcp"
CLIENT_ID, SECRET = "machine", "s3cr3t value+/="
"""The secret has characters form-encoding changes: httpx2 sends it as it is in Basic, the SDK form-encoded."""


@pytest.fixture(scope="module")
def shared_issuer() -> Iterator[RunningIssuer]:
    with serve_issuer() as running:
        running.register_client(CLIENT_ID, SECRET, sub="svc-machine", claims={"groups": ["research"]})
        yield running


@pytest.fixture
def issuer(shared_issuer: RunningIssuer) -> RunningIssuer:
    """The module's issuer with an empty request log (a test that rotates keys serves its own)."""
    shared_issuer.clear_requests()
    return shared_issuer


def verify(token: str, issuer: RunningIssuer, audience: str = RESOURCE) -> dict[str, Any]:
    """What a resource server does: the key by kid from the JWKS, then RS256, iss, aud, exp and nbf."""
    key = jwt.PyJWKClient(issuer.jwks_uri).get_signing_key_from_jwt(token)
    return jwt.decode(token, key, algorithms=["RS256"], audience=audience, issuer=issuer.issuer)


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """A compact JWT's header, payload and signature bytes."""
    header, payload, signature = token.split(".")
    return json.loads(_unb64(header)), json.loads(_unb64(payload)), _unb64(signature)


def _unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def post_token(issuer: RunningIssuer, form: dict[str, str], auth: tuple[str, str] | None = None) -> httpx2.Response:
    """POST `form` to the token endpoint, with HTTP Basic `auth` (id and secret as they are) if given."""
    with httpx2.Client(timeout=5) as http:
        if auth is None:
            return http.post(issuer.token_endpoint, data=form)
        return http.post(issuer.token_endpoint, data=form, auth=auth)


def test_the_metadata_names_the_endpoints_at_both_discovery_paths(issuer: RunningIssuer) -> None:
    with httpx2.Client(timeout=5) as http:
        oauth = http.get(issuer.issuer + METADATA_PATH).json()
        openid = http.get(issuer.issuer + OPENID_CONFIGURATION_PATH).json()

    assert oauth == openid
    assert oauth == {
        "issuer": issuer.issuer,
        "authorization_endpoint": issuer.issuer + "/authorize",
        "token_endpoint": issuer.issuer + TOKEN_PATH,
        "jwks_uri": issuer.issuer + JWKS_PATH,
        "scopes_supported": ["runs:read", "runs:write"],
        "response_types_supported": ["code"],
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }
    assert str(OAuthMetadata.model_validate(oauth).issuer) == issuer.issuer  # the SDK's exact issuer comparison
    assert [(request.method, request.path) for request in issuer.requests] == [
        ("GET", METADATA_PATH),
        ("GET", OPENID_CONFIGURATION_PATH),
    ]


def test_a_client_credentials_token_verifies_with_the_requested_scope_the_resource_as_aud_and_the_client_claims(
    issuer: RunningIssuer,
) -> None:
    response = post_token(
        issuer, {"grant_type": "client_credentials", "scope": "runs:read", "resource": RESOURCE}, (CLIENT_ID, SECRET)
    )

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert {key: body[key] for key in ("token_type", "expires_in", "scope")} == {
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "runs:read",
    }
    claims = verify(body["access_token"], issuer)
    assert {key: claims[key] for key in ("iss", "sub", "aud", "scope", "client_id", "groups")} == {
        "iss": issuer.issuer,
        "sub": "svc-machine",
        "aud": RESOURCE,
        "scope": "runs:read",
        "client_id": CLIENT_ID,
        "groups": ["research"],
    }
    assert claims["exp"] - claims["iat"] == 300
    assert segments(body["access_token"])[0] == {"alg": "RS256", "typ": "at+jwt", "kid": issuer.kid}


def test_a_client_authenticating_by_form_fields_without_scope_or_resource_gets_all_its_scopes_and_no_aud(
    issuer: RunningIssuer,
) -> None:
    response = post_token(issuer, {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET})

    assert response.status_code == 200
    assert response.json()["scope"] == "runs:read runs:write"
    _, payload, _ = segments(response.json()["access_token"])
    assert "aud" not in payload
    assert payload["scope"] == "runs:read runs:write"


@pytest.mark.parametrize(
    ("form", "auth", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, (CLIENT_ID, "wrong"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, ("nobody", SECRET), 401, "invalid_client"),
        (
            {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "wrong"},
            None,
            401,
            "invalid_client",
        ),
        ({"grant_type": "client_credentials"}, None, 401, "invalid_client"),
        (
            {"grant_type": "client_credentials", "scope": "runs:read runs:admin"},
            (CLIENT_ID, SECRET),
            400,
            "invalid_scope",
        ),
        ({"grant_type": "authorization_code"}, (CLIENT_ID, SECRET), 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials", "resource": RESOURCE + "#x"}, (CLIENT_ID, SECRET), 400, "invalid_target"),
        ({"grant_type": "client_credentials", "client_secret": SECRET}, (CLIENT_ID, SECRET), 400, "invalid_request"),
    ],
    ids=[
        "wrong secret",
        "unknown client",
        "wrong form secret",
        "no client authentication",
        "scope beyond the client's",
        "another grant",
        "resource with a fragment",
        "two authentication methods",
    ],
)
def test_the_token_endpoint_refuses_a_bad_request_with_the_rfc_6749_error(
    issuer: RunningIssuer, form: dict[str, str], auth: tuple[str, str] | None, status: int, error: str
) -> None:
    response = post_token(issuer, form, auth)

    assert (response.status_code, response.json()["error"]) == (status, error)
    assert ("www-authenticate" in response.headers) == (status == 401)


def test_a_minted_token_is_good_by_default_and_the_bad_ones_are_refused_for_their_reason(issuer: RunningIssuer) -> None:
    assert verify(issuer.mint(aud=RESOURCE, claims={"groups": ["a"]}), issuer)["groups"] == ["a"]

    with pytest.raises(jwt.ExpiredSignatureError):
        verify(issuer.mint(aud=RESOURCE, expires_in=-10), issuer)
    with pytest.raises(jwt.ImmatureSignatureError):
        verify(issuer.mint(aud=RESOURCE, not_before=300), issuer)
    with pytest.raises(jwt.InvalidIssuerError):
        verify(issuer.mint(aud=RESOURCE, iss="http://127.0.0.1:1/elsewhere"), issuer)
    with pytest.raises(jwt.InvalidAudienceError):
        verify(issuer.mint(aud="http://resource.test/other"), issuer)
    with pytest.raises(jwt.MissingRequiredClaimError):
        verify(issuer.mint(aud=None), issuer)
    with pytest.raises(jwt.InvalidSignatureError):
        verify(issuer.mint(aud=RESOURCE, key=SigningKey.generate(), kid=issuer.kid), issuer)
    with pytest.raises(jwt.PyJWKClientError, match="Unable to find a signing key"):
        verify(issuer.mint(aud=RESOURCE, kid="no-such-kid"), issuer)
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify(issuer.mint(aud=RESOURCE, alg="RS512"), issuer)


def test_a_minted_token_can_lack_any_claim_or_header(issuer: RunningIssuer) -> None:
    token = issuer.mint(aud=RESOURCE, omit={"exp", "jti"}, headers={"kid": None, "typ": "JWT"})

    header, payload, _ = segments(token)
    assert header == {"alg": "RS256", "typ": "JWT"}
    assert set(payload) == {"iss", "sub", "aud", "scope", "iat", "nbf"}
    key = jwt.PyJWK(issuer.signing_key.jwk())
    with pytest.raises(jwt.MissingRequiredClaimError, match="exp"):
        jwt.decode(token, key, algorithms=["RS256"], audience=RESOURCE, options={"require": ["exp"]})


def test_the_alg_none_token_is_unsigned(issuer: RunningIssuer) -> None:
    token = issuer.mint(aud=RESOURCE, alg="none")

    header, payload, signature = segments(token)
    assert token.endswith(".")
    assert (header["alg"], signature, payload["aud"]) == ("none", b"", RESOURCE)
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify(token, issuer)


def test_the_hs256_token_is_an_hmac_keyed_with_the_public_key_pem(issuer: RunningIssuer) -> None:
    token = issuer.mint(aud=RESOURCE, alg="HS256")

    signing_input, _, signature = token.rpartition(".")
    expected = hmac.new(issuer.signing_key.public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert issuer.signing_key.public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert (segments(token)[0]["alg"], _unb64(signature)) == ("HS256", expected)
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify(token, issuer)


@pytest.mark.parametrize("keep_old", [True, False])
def test_after_rotation_the_jwks_carries_the_new_kid_and_the_old_one_only_if_kept(keep_old: bool) -> None:
    with serve_issuer() as issuer:
        old = issuer.signing_key
        old_token = issuer.mint(aud=RESOURCE)

        new = issuer.rotate(keep_old=keep_old)

        with httpx2.Client(timeout=5) as http:
            kids = [key["kid"] for key in http.get(issuer.jwks_uri).json()["keys"]]
        assert kids == ([new.kid, old.kid] if keep_old else [new.kid])
        assert new.kid != old.kid
        assert segments(issuer.mint(aud=RESOURCE))[0]["kid"] == new.kid
        assert verify(issuer.mint(aud=RESOURCE), issuer)["sub"] == "user-1"
        if keep_old:
            assert verify(old_token, issuer)["sub"] == "user-1"
        else:
            with pytest.raises(jwt.PyJWKClientError, match="Unable to find a signing key"):
                verify(old_token, issuer)
        assert issuer.count(JWKS_PATH) == 3


def test_the_jwks_serves_rsa_signature_keys_for_rs256(issuer: RunningIssuer) -> None:
    with httpx2.Client(timeout=5) as http:
        (key,) = http.get(issuer.jwks_uri).json()["keys"]

    assert {name: key[name] for name in ("kty", "kid", "alg", "use", "e")} == {
        "kty": "RSA",
        "kid": issuer.kid,
        "alg": "RS256",
        "use": "sig",
        "e": "AQAB",
    }
    assert "d" not in key


def test_token_times_are_read_from_the_clock_given() -> None:
    clock = VirtualClock(wall_start=1_800_000_000.0)
    with serve_issuer(clock=clock, token_lifetime=60) as issuer:
        clock.advance(5)
        _, payload, _ = segments(issuer.mint(aud=RESOURCE, not_before=-1))

    assert {name: payload[name] for name in ("iat", "nbf", "exp")} == {
        "iat": 1_800_000_005,
        "nbf": 1_800_000_004,
        "exp": 1_800_000_065,
    }


@pytest.mark.anyio
async def test_the_sdk_client_credentials_provider_gets_a_token_the_protected_resource_verifies(
    issuer: RunningIssuer,
) -> None:
    presented: list[str] = []

    def protected_resource(request: httpx2.Request) -> httpx2.Response:
        """A resource on another host: its RFC 9728 metadata names the issuer; without a bearer token, 401."""
        if str(request.url) == PRM_URL:
            return httpx2.Response(200, json={"resource": RESOURCE, "authorization_servers": [issuer.issuer]})
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return httpx2.Response(401, headers={"WWW-Authenticate": f'Bearer resource_metadata="{PRM_URL}"'})
        presented.append(authorization.removeprefix("Bearer "))
        return httpx2.Response(200, json={"ok": True})

    provider = ClientCredentialsOAuthProvider(
        server_url=RESOURCE, storage=MemoryStorage(), client_id=CLIENT_ID, client_secret=SECRET, issuer=issuer.issuer
    )
    async with httpx2.AsyncClient(mounts={"http://resource.test": httpx2.MockTransport(protected_resource)}) as http:
        response = await http.get(RESOURCE, auth=provider)

    assert response.status_code == 200
    metadata_request, token_request = issuer.requests
    assert (metadata_request.method, metadata_request.path) == ("GET", METADATA_PATH)
    assert (token_request.method, token_request.path) == ("POST", TOKEN_PATH)
    assert token_request.headers["authorization"].startswith("Basic ")
    assert token_request.form == {
        "grant_type": ["client_credentials"],
        "resource": [RESOURCE],
        "scope": ["runs:read runs:write"],
    }
    claims = await anyio.to_thread.run_sync(verify, presented[0], issuer)
    assert (claims["sub"], claims["aud"], claims["scope"]) == ("svc-machine", RESOURCE, "runs:read runs:write")
