"""Callers as tables: the keys file (JSON and TOML, reread when it changes), the order keys are found in, what
each caller owns, and the rate buckets, on virtual time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest
from pydantic import SecretStr

from acp_mcp.callers import PROCESS, Caller, Callers, KeysFile, KeysFileWatch
from acp_mcp.clock import VirtualClock
from acp_mcp.config import ConfigError, Settings
from acp_mcp.gate import RateBuckets
from acp_mcp.limits import MAX_CALLERS
from acp_mcp.redaction import Redactor
from acp_mcp.task_ids import TaskRef
from acp_mcp.waiting import PollPolicy

SHARED = "tb_shared_key_0123456789"
ALICE = "tb_alice_key_0123456789"
TEAM = "tb_team_key_0123456789"
SUBJECTS = {"alice": ALICE}
CLAIMS = {"groups": {"research": TEAM}, "org": {"acme": SHARED}}
FILE = {"subjects": SUBJECTS, "claims": CLAIMS}


@pytest.mark.parametrize(
    ("subject", "claims", "key"),
    [
        ("alice", {"groups": ["research"]}, ALICE),
        ("bob", {"groups": ["ops", "research"]}, TEAM),
        ("bob", {"groups": "research"}, TEAM),
        ("bob", {"org": "acme"}, SHARED),
        ("bob", {"groups": ["ops"], "org": ["other"]}, None),
        (None, {}, None),
    ],
    ids=["subject-wins", "group-in-a-list", "group-as-text", "another-claim", "no-match", "nobody"],
)
def test_the_keys_file_gives_a_subjects_key_before_a_claims(
    subject: str | None, claims: dict[str, object], key: str | None
) -> None:
    assert KeysFile(SUBJECTS, CLAIMS).key_for(subject, claims) == key


def test_json_and_toml_keys_files_read_the_same(tmp_path: Path) -> None:
    (tmp_path / "keys.json").write_text(json.dumps(FILE))
    (tmp_path / "keys.toml").write_text(
        f'[subjects]\nalice = "{ALICE}"\n[claims.groups]\nresearch = "{TEAM}"\n[claims.org]\nacme = "{SHARED}"\n'
    )

    assert KeysFile.read(tmp_path / "keys.json") == KeysFile.read(tmp_path / "keys.toml")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("keys.json", "{not json"),
        ("keys.json", '{"subjects": {"alice": 1}}'),
        ("keys.json", '{"claims": {"groups": "research"}}'),
        ("keys.json", "[]"),
        ("keys.toml", "subjects = 3"),
        ("missing.json", None),
    ],
    ids=["not-json", "key-not-text", "claim-not-a-table", "not-an-object", "toml-wrong-shape", "missing"],
)
def test_a_malformed_keys_file_is_one_config_error_naming_the_file(tmp_path: Path, name: str, text: str | None) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)

    with pytest.raises(ConfigError) as caught:
        KeysFile.read(path)

    assert str(caught.value).startswith(f"ACP_MCP_KEYS_FILE {path}: ")
    assert "\n" not in str(caught.value)


@pytest.mark.anyio
async def test_the_keys_file_is_reread_when_it_changes_and_a_broken_one_keeps_the_last_good_map(
    tmp_path: Path,
) -> None:
    path, clock, redact = tmp_path / "keys.json", VirtualClock(), Redactor()
    path.write_text(json.dumps({"subjects": {"alice": ALICE}}))
    watch = KeysFileWatch(path, clock, redact)
    path.write_text(json.dumps({"subjects": {"alice": TEAM}}))
    os.utime(path, ns=(1, 1))  # a new stamp even within the file system's time resolution

    unchanged_before_the_check = watch.get().subjects["alice"]
    await clock.sleep(1)
    reread = watch.get().subjects["alice"]
    path.write_text("{broken")
    await clock.sleep(1)
    kept = watch.get().subjects["alice"]

    assert (unchanged_before_the_check, reread, kept) == (ALICE, TEAM, TEAM)
    assert redact(f"{ALICE} {TEAM}") == "[REDACTED] [REDACTED]", "every key the file held is masked"


def callers(settings: Settings, keys: KeysFile | None = None, tmp_path: Path | None = None) -> Callers:
    watch = None
    if keys is not None and tmp_path is not None:
        path = tmp_path / "keys.json"
        path.write_text(json.dumps({"subjects": dict(keys.subjects), "claims": {}}))
        watch = KeysFileWatch(path, VirtualClock(), Redactor())
    return Callers(
        settings,
        clock=VirtualClock(),
        redact=Redactor(),
        policy=PollPolicy(),
        stop_waits=anyio.Event(),
        keys_file=watch,
    )


@pytest.mark.parametrize(
    ("settings", "sent", "key"),
    [
        (Settings(api_key=SecretStr(SHARED)), None, SHARED),
        (Settings(api_key=SecretStr(SHARED), caller_keys=True), "tb_sent", "tb_sent"),
        (Settings(api_key=SecretStr(SHARED), caller_keys=True), None, None),
        (Settings(api_key=SecretStr(SHARED), caller_keys=True, shared_key_fallback=True), None, SHARED),
        (Settings(api_key=SecretStr(SHARED)), "tb_sent", SHARED),
    ],
    ids=["single-user", "header", "header-mode-no-header", "fallback-allowed", "header-not-accepted"],
)
@pytest.mark.anyio
async def test_a_callers_key_comes_from_its_header_only_when_allowed_and_the_shared_key_only_when_allowed(
    settings: Settings, sent: str | None, key: str | None
) -> None:
    found = await callers(settings).key_for("key x", None, {}, sent)

    assert (found.get_secret_value() if found else None) == key


@pytest.mark.anyio
async def test_the_keys_file_wins_over_the_header(tmp_path: Path) -> None:
    settings = Settings(caller_keys=True, keys_file=str(tmp_path / "keys.json"))
    found = await callers(settings, KeysFile({"alice": ALICE}), tmp_path).key_for("oauth i alice", "alice", {}, "s")

    assert found is not None and found.get_secret_value() == ALICE


def test_each_caller_owns_its_client_service_and_task_ids_and_the_least_recent_is_retired() -> None:
    registry = callers(Settings(api_key=SecretStr(SHARED), caller_keys=True))
    alice = Caller("oauth issuer alice", SecretStr(ALICE))
    first = registry.of(alice)

    assert registry.of(alice) is first
    assert registry.of(Caller("oauth issuer bob", SecretStr(ALICE))).client is not first.client
    assert registry.current().caller.principal == PROCESS
    assert registry.redact(f"key {ALICE}") == f"key {ALICE}", "a caller's key is masked by its own client alone"
    for n in range(MAX_CALLERS):
        registry.of(Caller(f"key {n}", SecretStr(f"tb_sent_{n:06d}")))
    assert registry.of(alice) is not first, "alice was the least recent, so she was retired and made anew"


@pytest.mark.anyio
async def test_a_bucket_lets_a_burst_through_then_one_request_per_interval_and_each_caller_has_its_own() -> None:
    clock = VirtualClock()
    buckets = RateBuckets(rate=2.0, burst=3, clock=clock)

    burst = [buckets.take("alice") for _ in range(4)]
    other = buckets.take("bob")
    await clock.sleep(0.5)
    refilled = [buckets.take("alice"), buckets.take("alice")]

    assert burst == [0.0, 0.0, 0.0, 0.5]
    assert other == 0.0
    assert refilled == [0.0, 0.5]
    assert RateBuckets(rate=0, burst=1, clock=clock).take("anyone") == 0.0


def test_a_task_id_reads_back_only_for_the_caller_and_key_it_was_minted_for() -> None:
    registry = callers(Settings(api_key=SecretStr(SHARED), caller_keys=True))
    alice = registry.of(Caller("oauth issuer alice", SecretStr(ALICE)))
    ref = TaskRef("srv_1", "run_1", "started", 201, 20, 1_700_000_000_000)
    task_id = alice.task_ids.mint(ref)

    assert alice.task_ids.read(task_id) == ref
    assert registry.of(Caller("oauth issuer alice", SecretStr(ALICE))).task_ids.read(task_id) == ref
    assert registry.of(Caller("oauth issuer bob", SecretStr(ALICE))).task_ids.read(task_id) is None, "same key"
    assert registry.of(Caller("oauth issuer alice", SecretStr(TEAM))).task_ids.read(task_id) is None, "other key"
    assert registry.current().task_ids.read(task_id) is None
