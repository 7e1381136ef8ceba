"""The test issuer (`tests/_issuer.py`) works as clients and verifiers use it: discovery, tokens, bad ones, rotation,
and the authorization code flow with PKCE and ID tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
import httpx2
import jwt
import pytest
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.shared.auth import OAuthMetadata

from acp_mcp.clock import VirtualClock

from ._issuer import (
    AUTHORIZE_PATH,
    JWKS_PATH,
    METADATA_PATH,
    OPENID_CONFIGURATION_PATH,
    TOKEN_PATH,
    MemoryStorage,
    RunningIssuer,
    SigningKey,
    s256,
    serve_issuer,
)

RESOURCE = "http://resource.test/mcp"
"""The canonical URL of the protected MCP server: what a token's aud must be."""
PRM_URL = "http://resource.test/.well-known/oauth-protected-resource/mcp"
CLIENT_ID, SECRET = "machine", "s3cr3t value+/="
"""The secret has characters form-encoding changes: httpx2 sends it as it is in Basic, the SDK form-encoded."""
WEB_ID, WEB_SECRET = "web-app", "web secret+/="
"""A confidential client of the authorization code flow (what acp-mcp is when it signs users in)."""
REDIRECT_URI = "http://127.0.0.1:8931/oauth/callback"
OTHER_REDIRECT_URI = "http://127.0.0.1:8931/other/callback?tenant=a"
"""Also registered for the web client: a redirect URI with a query of its own."""
OTHER_WEB_ID, OTHER_WEB_SECRET = "other-web-app", "other secret"
VERIFIER = "v" * 20 + "-._~" + "0123456789ABCDEFGHIJ"
"""A PKCE code_verifier of 44 characters, the unreserved punctuation among them."""
STATE, NONCE = "state-1", "nonce-1"
SCOPE = "openid runs:read"


@pytest.fixture(scope="module")
def shared_issuer() -> Iterator[RunningIssuer]:
    with serve_issuer() as running:
        running.register_client(CLIENT_ID, SECRET, sub="svc-machine", claims={"groups": ["research"]})
        running.register_client(WEB_ID, WEB_SECRET, redirect_uris=[REDIRECT_URI, OTHER_REDIRECT_URI])
        running.register_client(OTHER_WEB_ID, OTHER_WEB_SECRET, redirect_uris=[REDIRECT_URI])
        yield running


@pytest.fixture
def issuer(shared_issuer: RunningIssuer) -> RunningIssuer:
    """The module's issuer with an empty request log and nobody signed in (a test that rotates keys serves its own)."""
    shared_issuer.clear_requests()
    shared_issuer.signed_in = None
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


def authorize(issuer: RunningIssuer, **overrides: str | None) -> httpx2.Response:
    """GET the authorization endpoint with a good code request for the web client, `overrides` on top (None
    drops a parameter); redirects are not followed."""
    params = {
        "response_type": "code",
        "client_id": WEB_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": STATE,
        "code_challenge": s256(VERIFIER),
        "code_challenge_method": "S256",
        "nonce": NONCE,
    } | overrides
    with httpx2.Client(timeout=5, follow_redirects=False) as http:
        return http.get(issuer.authorization_endpoint, params={k: v for k, v in params.items() if v is not None})


def code_of(response: httpx2.Response, redirect_uri: str = REDIRECT_URI) -> str:
    """The code of an authorization redirect to `redirect_uri`, with the state sent."""
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(redirect_uri + "?")
    query = parse_qs(location.removeprefix(redirect_uri + "?"))
    assert set(query) == {"code", "state"}
    assert query["state"] == [STATE]
    (code,) = query["code"]
    return code


def exchange(
    issuer: RunningIssuer,
    code: str,
    *,
    verifier: str = VERIFIER,
    redirect_uri: str = REDIRECT_URI,
    auth: tuple[str, str] = (WEB_ID, WEB_SECRET),
) -> httpx2.Response:
    """POST an authorization_code grant, the client authenticated by HTTP Basic."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    return post_token(issuer, form, auth)


def page_error(response: httpx2.Response) -> str:
    """The error code an HTML error page of the authorization endpoint names in its title."""
    assert response.headers["content-type"].startswith("text/html")
    match = re.search(r"<title>(.*)</title>", response.text)
    assert match is not None
    return match.group(1)


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
        "scopes_supported": ["openid", "runs:read", "runs:write"],
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
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
        ({"grant_type": "password"}, (CLIENT_ID, SECRET), 400, "unsupported_grant_type"),
        ({"grant_type": "authorization_code"}, (CLIENT_ID, SECRET), 400, "invalid_request"),
        (
            {"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT_URI},
            (WEB_ID, WEB_SECRET),
            400,
            "invalid_request",
        ),
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
        "a code grant without a code",
        "a code grant without a code_verifier",
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
    assert token_request.form == {  # no scopes in the resource's metadata: the SDK asks for the issuer's all
        "grant_type": ["client_credentials"],
        "resource": [RESOURCE],
        "scope": ["openid runs:read runs:write"],
    }
    claims = await anyio.to_thread.run_sync(verify, presented[0], issuer)
    assert (claims["sub"], claims["aud"], claims["scope"]) == ("svc-machine", RESOURCE, "openid runs:read runs:write")


def test_a_signed_in_user_is_redirected_with_a_code_that_exchanges_for_an_id_token_and_an_access_token(
    issuer: RunningIssuer,
) -> None:
    issuer.signed_in = "alice"

    redirect = authorize(issuer)
    code = code_of(redirect)
    response = exchange(issuer, code)
    authorize_request, token_request = issuer.requests

    assert redirect.headers["location"] == f"{REDIRECT_URI}?code={code}&state={STATE}"
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "id_token", "scope"}
    assert {key: body[key] for key in ("token_type", "expires_in", "scope")} == {
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": SCOPE,
    }
    id_claims = verify(body["id_token"], issuer, audience=WEB_ID)
    assert segments(body["id_token"])[0] == {"alg": "RS256", "typ": "JWT", "kid": issuer.kid}
    assert set(id_claims) == {"iss", "sub", "aud", "iat", "exp", "auth_time", "nonce"}
    assert {key: id_claims[key] for key in ("iss", "sub", "aud", "nonce")} == {
        "iss": issuer.issuer,
        "sub": "alice",
        "aud": WEB_ID,
        "nonce": NONCE,
    }
    assert id_claims["exp"] - id_claims["iat"] == 300
    assert id_claims["iat"] - 5 <= id_claims["auth_time"] <= id_claims["iat"]
    access_claims = verify(body["access_token"], issuer, audience=WEB_ID)
    assert segments(body["access_token"])[0] == {"alg": "RS256", "typ": "at+jwt", "kid": issuer.kid}
    assert {key: access_claims[key] for key in ("sub", "aud", "scope", "client_id")} == {
        "sub": "alice",
        "aud": WEB_ID,
        "scope": SCOPE,
        "client_id": WEB_ID,
    }
    assert (authorize_request.method, authorize_request.path) == ("GET", AUTHORIZE_PATH)
    assert authorize_request.query == {
        "response_type": ["code"],
        "client_id": [WEB_ID],
        "redirect_uri": [REDIRECT_URI],
        "scope": [SCOPE],
        "state": [STATE],
        "code_challenge": [s256(VERIFIER)],
        "code_challenge_method": ["S256"],
        "nonce": [NONCE],
    }
    assert (token_request.method, token_request.path, token_request.query) == ("POST", TOKEN_PATH, {})
    assert token_request.form == {
        "grant_type": ["authorization_code"],
        "code": [code],
        "redirect_uri": [REDIRECT_URI],
        "code_verifier": [VERIFIER],
    }


def test_the_s256_challenge_is_the_rfc_7636_appendix_b_example() -> None:
    assert s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_a_code_exchanges_once_and_the_second_exchange_is_invalid_grant(issuer: RunningIssuer) -> None:
    issuer.signed_in = "alice"
    code = code_of(authorize(issuer))

    first, second = exchange(issuer, code), exchange(issuer, code)

    assert first.status_code == 200
    assert (second.status_code, second.json()["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(
    ("wrong", "description"),
    [
        ({"verifier": "w" * 43}, "code_verifier does not match the code_challenge"),
        ({"verifier": "short"}, "code_verifier does not match the code_challenge"),
        ({"redirect_uri": OTHER_REDIRECT_URI}, "redirect_uri differs from the authorization request's"),
        ({"auth": (OTHER_WEB_ID, OTHER_WEB_SECRET)}, "the code was issued to another client"),
    ],
    ids=["another verifier", "a malformed verifier", "another registered redirect_uri", "another client"],
)
def test_an_exchange_with_a_wrong_verifier_redirect_uri_or_client_is_invalid_grant_and_spends_the_code(
    issuer: RunningIssuer, wrong: dict[str, Any], description: str
) -> None:
    issuer.signed_in = "alice"
    code = code_of(authorize(issuer))

    refused, retried = exchange(issuer, code, **wrong), exchange(issuer, code)

    assert (refused.status_code, refused.json()) == (
        400,
        {"error": "invalid_grant", "error_description": description},
    )
    assert (retried.status_code, retried.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "unknown or already used code"},
    )


def test_an_exchange_with_a_wrong_client_secret_is_invalid_client_and_leaves_the_code_usable(
    issuer: RunningIssuer,
) -> None:
    issuer.signed_in = "alice"
    code = code_of(authorize(issuer))

    refused = exchange(issuer, code, auth=(WEB_ID, "wrong"))
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": VERIFIER,
        "client_id": WEB_ID,
        "client_secret": WEB_SECRET,
    }
    by_form = post_token(issuer, form)

    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    assert by_form.status_code == 200
    assert verify(by_form.json()["id_token"], issuer, audience=WEB_ID)["sub"] == "alice"


def test_a_code_can_be_exchanged_until_60_seconds_after_it_was_issued_on_the_issuers_clock() -> None:
    clock = VirtualClock(wall_start=1_800_000_000.0)
    with serve_issuer(clock=clock) as issuer:
        issuer.register_client(WEB_ID, WEB_SECRET, redirect_uris=[REDIRECT_URI])
        issuer.signed_in = "bob"
        early, late = code_of(authorize(issuer)), code_of(authorize(issuer))

        clock.advance(59.999)
        accepted = exchange(issuer, early)
        clock.advance(0.001)
        expired = exchange(issuer, late)

    assert accepted.status_code == 200
    _, id_claims, _ = segments(accepted.json()["id_token"])
    assert {name: id_claims[name] for name in ("auth_time", "iat", "exp")} == {
        "auth_time": 1_800_000_000,
        "iat": 1_800_000_059,
        "exp": 1_800_000_359,
    }
    assert (expired.status_code, expired.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "the code expired"},
    )


def test_without_state_or_nonce_the_redirect_keeps_the_redirect_uri_query_and_the_id_token_has_no_nonce(
    issuer: RunningIssuer,
) -> None:
    issuer.signed_in = "carol"

    redirect = authorize(issuer, redirect_uri=OTHER_REDIRECT_URI, state=None, nonce=None)
    location = redirect.headers["location"]
    code = parse_qs(location.partition("?")[2])["code"][0]
    response = exchange(issuer, code, redirect_uri=OTHER_REDIRECT_URI)

    assert (redirect.status_code, location) == (302, f"{OTHER_REDIRECT_URI}&code={code}")
    claims = verify(response.json()["id_token"], issuer, audience=WEB_ID)
    assert (claims["sub"], "nonce" in claims) == ("carol", False)


def test_the_authorization_endpoint_takes_its_parameters_as_a_post_form_too(issuer: RunningIssuer) -> None:
    issuer.signed_in = "alice"
    form = {
        "response_type": "code",
        "client_id": WEB_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": STATE,
        "code_challenge": s256(VERIFIER),
        "code_challenge_method": "S256",
    }

    with httpx2.Client(timeout=5, follow_redirects=False) as http:
        redirect = http.post(issuer.authorization_endpoint, data=form)

    assert exchange(issuer, code_of(redirect)).status_code == 200
    assert issuer.requests[0].form == {name: [value] for name, value in form.items()}


@pytest.mark.parametrize(
    ("overrides", "error", "description"),
    [
        (
            {"redirect_uri": "http://127.0.0.1:8931/evil"},
            "invalid_request",
            "redirect_uri is not registered for this client: http://127.0.0.1:8931/evil",
        ),
        (
            {"redirect_uri": REDIRECT_URI + "/"},
            "invalid_request",
            f"redirect_uri is not registered for this client: {REDIRECT_URI}/",
        ),
        ({"redirect_uri": None}, "invalid_request", "redirect_uri is missing"),
        ({"client_id": "nobody"}, "invalid_request", "unknown client: nobody"),
        (
            {"client_id": CLIENT_ID},
            "invalid_request",
            f"redirect_uri is not registered for this client: {REDIRECT_URI}",
        ),
        ({"response_type": "token"}, "unsupported_response_type", "token is not supported; use code"),
        ({"scope": "runs:read"}, "invalid_scope", "scope must include openid"),
        (
            {"code_challenge": None, "code_challenge_method": None},
            "invalid_request",
            "PKCE is required: code_challenge is missing",
        ),
        (
            {"code_challenge": VERIFIER, "code_challenge_method": "plain"},
            "invalid_request",
            "code_challenge_method must be S256, not plain",
        ),
        ({"code_challenge_method": None}, "invalid_request", "code_challenge_method must be S256, not plain"),
        (
            {"code_challenge": "not a digest"},
            "invalid_request",
            "code_challenge is not a base64url SHA-256 digest",
        ),
    ],
    ids=[
        "an unregistered redirect_uri",
        "a redirect_uri that differs by a slash",
        "no redirect_uri",
        "an unknown client",
        "a client without redirect URIs",
        "another response_type",
        "a scope without openid",
        "no PKCE",
        "the plain method",
        "no method, so plain",
        "a malformed challenge",
    ],
)
def test_a_bad_authorization_request_is_a_400_page_and_never_a_redirect(
    issuer: RunningIssuer, overrides: dict[str, str | None], error: str, description: str
) -> None:
    issuer.signed_in = "alice"

    response = authorize(issuer, **overrides)

    assert (response.status_code, "location" in response.headers) == (400, False)
    assert page_error(response) == error
    assert f"<p>{description}</p>" in response.text


def test_with_nobody_signed_in_the_authorization_endpoint_answers_a_401_page_and_no_redirect(
    issuer: RunningIssuer,
) -> None:
    response = authorize(issuer)

    assert (response.status_code, "location" in response.headers) == (401, False)
    assert page_error(response) == "login_required"
    assert "<p>not signed in at the issuer</p>" in response.text
