"""The resource server's token check, against a real issuer on loopback: what passes, what is refused, how
often the issuer's keys are fetched, and which scope each message needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from acp_mcp.clock import VirtualClock
from acp_mcp.oauth import READ, WRITE, JWTVerifier, needed_scope, well_known

from ._issuer import JWKS_PATH, METADATA_PATH, RunningIssuer, SigningKey, serve_issuer

pytestmark = pytest.mark.anyio

AUDIENCE = "https://acp.example/mcp"


@pytest.fixture(scope="module")
def shared_issuer() -> Iterator[RunningIssuer]:
    with serve_issuer() as running:
        yield running


@pytest.fixture
def issuer(shared_issuer: RunningIssuer) -> RunningIssuer:
    shared_issuer.clear_requests()
    return shared_issuer


def verifier(issuer: RunningIssuer, clock: VirtualClock | None = None) -> JWTVerifier:
    return JWTVerifier(issuer.issuer, AUDIENCE, clock=clock or VirtualClock(), timeout=5)


async def test_a_good_token_gives_its_subject_scopes_audience_and_claims(issuer: RunningIssuer) -> None:
    token = issuer.mint(aud=AUDIENCE, sub="alice", scope=f"{READ} {WRITE}", claims={"groups": ["research"]})
    check = verifier(issuer)

    access = await check.verify_token(token)
    await check.aclose()

    assert access is not None
    assert (access.subject, access.scopes, access.resource, access.client_id) == (
        "alice",
        [READ, WRITE],
        AUDIENCE,
        "alice",
    )
    assert access.claims is not None and access.claims["groups"] == ["research"]
    assert [(r.method, r.path) for r in issuer.requests] == [("GET", METADATA_PATH), ("GET", JWKS_PATH)]


@pytest.mark.parametrize(
    "bad",
    [
        {"alg": "none"},
        {"alg": "HS256"},
        {"iss": "https://other.example"},
        {"aud": "https://acp.example/other"},
        {"aud": None},
        {"expires_in": -120},
        {"not_before": 300},
        {"key": SigningKey.generate(), "kid": "KNOWN"},
        {"kid": "unknown"},
        {"omit": ["sub"]},
        {"omit": ["exp"]},
    ],
    ids=[
        "alg-none",
        "hs256-with-the-public-key",
        "other-issuer",
        "other-audience",
        "no-audience",
        "expired",
        "not-yet-valid",
        "foreign-key-known-kid",
        "unknown-kid",
        "no-subject",
        "no-expiry",
    ],
)
async def test_a_token_that_is_not_this_issuers_for_this_server_is_refused(
    issuer: RunningIssuer, bad: dict[str, Any]
) -> None:
    options = {"aud": AUDIENCE, **bad}
    if options.get("kid") == "KNOWN":
        options["kid"] = issuer.kid
    check = verifier(issuer)

    assert await check.verify_token(issuer.mint(**options)) is None
    assert await check.verify_token("not a jwt") is None
    await check.aclose()


async def test_an_audience_list_naming_this_server_and_a_trailing_slash_both_pass(issuer: RunningIssuer) -> None:
    check = verifier(issuer)

    for aud in ([AUDIENCE, "https://other.example"], AUDIENCE + "/"):
        access = await check.verify_token(issuer.mint(aud=aud))
        assert access is not None and access.resource == AUDIENCE
    await check.aclose()


async def test_the_keys_are_fetched_once_for_many_tokens_and_a_checked_token_is_not_checked_again(
    issuer: RunningIssuer,
) -> None:
    check = verifier(issuer)
    token = issuer.mint(aud=AUDIENCE)

    for _ in range(3):
        assert await check.verify_token(token) is not None
    for n in range(20):
        assert await check.verify_token(issuer.mint(aud=AUDIENCE, sub=f"user-{n}")) is not None
    await check.aclose()

    assert issuer.count(JWKS_PATH) == 1 and issuer.count(METADATA_PATH) == 1


async def test_a_rotated_key_is_fetched_once_and_random_kids_cannot_make_it_fetch_per_call() -> None:
    clock = VirtualClock()
    with serve_issuer() as issuer:
        check = verifier(issuer, clock)
        assert await check.verify_token(issuer.mint(aud=AUDIENCE)) is not None
        for n in range(5):
            assert await check.verify_token(issuer.mint(aud=AUDIENCE, kid=f"random-{n}")) is None
        fetched_while_fresh = issuer.count(JWKS_PATH)
        await clock.sleep(10)
        issuer.rotate(keep_old=False)

        assert await check.verify_token(issuer.mint(aud=AUDIENCE)) is not None
        assert await check.verify_token(issuer.mint(aud=AUDIENCE, sub="another")) is not None
        await check.aclose()
        assert (fetched_while_fresh, issuer.count(JWKS_PATH)) == (1, 2)


async def test_an_unreachable_issuer_refuses_every_token_without_an_error() -> None:
    with serve_issuer() as issuer:
        token = issuer.mint(aud=AUDIENCE)
        gone = issuer.issuer
    check = JWTVerifier(gone, AUDIENCE, clock=VirtualClock(), timeout=1)

    assert await check.verify_token(token) is None
    await check.aclose()


@pytest.mark.parametrize(
    ("method", "params", "scope"),
    [
        ("tools/call", {"name": "start_agent_run"}, WRITE),
        ("tools/call", {"name": "continue_agent_run"}, WRITE),
        ("tools/call", {"name": "cancel_agent_run"}, WRITE),
        ("tools/call", {"name": "get_agent_run"}, READ),
        ("tools/call", {"name": "list_agent_runs"}, READ),
        ("tools/call", {"name": "no_such_tool"}, READ),
        ("tools/call", {"name": ["start_agent_run"]}, READ),
        ("tasks/cancel", {"taskId": "x"}, WRITE),
        ("tasks/get", {"taskId": "x"}, READ),
        ("resources/read", {"uri": "acp://servers/s/runs/r"}, READ),
        ("resources/subscribe", {"uri": "acp://servers/s/runs/r"}, READ),
        ("subscriptions/listen", {}, READ),
        ("completion/complete", {}, READ),
        ("initialize", {}, None),
        ("tools/list", None, None),
        ("ping", None, None),
    ],
)
def test_each_message_needs_the_scope_of_what_it_does(method: str, params: dict[str, Any] | None, scope: str) -> None:
    assert needed_scope(method, params) == scope


def test_well_known_urls_go_before_the_path_as_rfc_8414_and_9728_say() -> None:
    assert well_known("https://acp.example/mcp", "oauth-protected-resource") == (
        "https://acp.example/.well-known/oauth-protected-resource/mcp"
    )
    assert well_known("https://id.example/realms/team/", "oauth-authorization-server") == (
        "https://id.example/.well-known/oauth-authorization-server/realms/team"
    )
