"""The sandbox serves several accounts, one per key: each sees only its own runs, over real loopback HTTP.

A run of another account answers exactly what an unknown run id answers, on every run route, so nothing
tells one account that another's run exists. The standalone ``acp-mcp sandbox`` takes the keys as
repeated ``--key`` flags.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import httpx2
import pytest

from acp_mcp.sandbox import SANDBOX_SERVER_ID, RunningSandbox, SandboxState, serve_in_thread

from ._tooling import free_port, python_env

KEY_A = "tb_account_a_0123456789abcdef"
KEY_B = "tb_account_b_0123456789abcdef"
KEY_NOBODY = "tb_no_account_0123456789abcd"
SERVER = "srv_accounts"
RUNS = f"/v1/servers/{SERVER}/runtime/agent/runs"
MADE_UP_RUN = "run_999999"
UNAUTHORIZED = {"error": "Unauthorized", "message": "Invalid or missing API key"}


def not_found(run_id: str) -> dict[str, Any]:
    """The body the sandbox answers for a run id it does not know."""
    return {"error": "Not Found", "message": f"Run {run_id} not found"}


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """A fresh sandbox with two accounts, A and B, whose turns play at once (pace 0)."""
    with serve_in_thread(SandboxState(api_keys=[KEY_A, KEY_B], pace=0)) as running:
        yield running


def client(sandbox: RunningSandbox, key: str) -> httpx2.Client:
    """An HTTP client of the sandbox that presents `key` as a Bearer token."""
    origin = sandbox.base_url.removesuffix("/v1")
    return httpx2.Client(base_url=origin, headers={"Authorization": f"Bearer {key}"}, timeout=5)


def start(http: httpx2.Client, content: str, runs: str = RUNS) -> str:
    """Start an async run and return its id."""
    answer = http.post(runs, json={"content": content, "mode": "async"})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["run"]["id"])


def listed(http: httpx2.Client, runs: str = RUNS) -> list[str]:
    """The ids in the caller's run list of a server, newest first."""
    answer = http.get(runs)
    assert answer.status_code == 200, answer.text
    return [run["id"] for run in answer.json()["data"]]


ROUTES: dict[str, tuple[str, str, dict[str, str] | None, str, str]] = {
    "get": ("GET", "", None, "/hang", "running"),
    "events": ("GET", "/events", None, "/hang", "running"),
    "input": ("POST", "/input", {"content": "take it over", "mode": "sync"}, "a finished run", "completed"),
    "cancel": ("POST", "/cancel", None, "/hang", "running"),
}
"""Per run route: method, path after the run id, body, the content of A's run and its status (one the route
would act on, were the run B's)."""


@pytest.mark.parametrize("route", list(ROUTES))
def test_another_account_gets_exactly_the_unknown_run_answer_for_a_run_it_did_not_start(
    sandbox: RunningSandbox, route: str
) -> None:
    method, tail, body, content, status = ROUTES[route]
    with client(sandbox, KEY_A) as a, client(sandbox, KEY_B) as b:
        run_id = start(a, content)
        before = a.get(f"{RUNS}/{run_id}/events")
        foreign = b.request(method, f"{RUNS}/{run_id}{tail}", json=body)
        unknown = b.request(method, f"{RUNS}/{MADE_UP_RUN}{tail}", json=body)
        after = a.get(f"{RUNS}/{run_id}/events")

    assert (foreign.status_code, foreign.json()) == (404, not_found(run_id))
    assert (unknown.status_code, unknown.json()) == (404, not_found(MADE_UP_RUN))
    assert foreign.headers["content-type"] == unknown.headers["content-type"] == "application/json"
    assert (before.status_code, before.json()["run"]["status"]) == (200, status)
    assert after.json() == before.json(), "the other account's call changed nothing"


def test_the_run_list_of_each_account_holds_only_its_own_runs(sandbox: RunningSandbox) -> None:
    with client(sandbox, KEY_A) as a, client(sandbox, KEY_B) as b:
        first_a, only_b, second_a = start(a, "one"), start(b, "two"), start(a, "three")
        lists = listed(a), listed(b)

    assert lists == ([second_a, first_a], [only_b])
    assert [run.id for run in sandbox.state.list_runs(SERVER, 10)] == [second_a, only_b, first_a]


def test_the_server_list_of_each_account_names_only_the_servers_of_its_own_runs(sandbox: RunningSandbox) -> None:
    with client(sandbox, KEY_A) as a, client(sandbox, KEY_B) as b:
        start(a, "on A's server", "/v1/servers/srv_of_a/runtime/agent/runs")
        start(b, "on B's server", "/v1/servers/srv_of_b/runtime/agent/runs")
        servers_a, servers_b = a.get("/v1/servers"), b.get("/v1/servers")

    assert [s["id"] for s in servers_a.json()["data"]] == ["srv_of_a", SANDBOX_SERVER_ID]
    assert [s["id"] for s in servers_b.json()["data"]] == ["srv_of_b", SANDBOX_SERVER_ID]


def test_bindings_are_answered_for_the_servers_an_account_sees_and_404_for_others(sandbox: RunningSandbox) -> None:
    sandbox.state.add_resource("srv_site", "web_app", agent_runtime_bound=True)
    with client(sandbox, KEY_A) as a, client(sandbox, KEY_B) as b:
        start(a, "on A's server", "/v1/servers/srv_of_a/runtime/agent/runs")
        site, own, foreign = (
            a.get("/v1/servers/srv_site/bindings"),
            a.get("/v1/servers/srv_of_a/bindings"),
            b.get("/v1/servers/srv_of_a/bindings"),
        )

    assert (site.status_code, [x["targetType"] for x in site.json()["bindings"]]) == (200, ["agent_runtime"])
    assert (own.status_code, own.json()) == (200, {"serverId": "srv_of_a", "bindings": []})
    assert (foreign.status_code, foreign.json()) == (
        404,
        {"error": "Not Found", "message": "Server srv_of_a not found"},
    )


def test_the_account_that_started_a_run_reads_cancels_and_continues_it(sandbox: RunningSandbox) -> None:
    with client(sandbox, KEY_A) as a:
        run_id = start(a, "/hang")
        got = a.get(f"{RUNS}/{run_id}")
        events = a.get(f"{RUNS}/{run_id}/events")
        cancelled = a.post(f"{RUNS}/{run_id}/cancel")
        continued = a.post(f"{RUNS}/{run_id}/input", json={"content": "again", "mode": "sync"})

    assert (got.status_code, got.json()["run"]["status"]) == (200, "running")
    assert (events.status_code, [e["content"] for e in events.json()["events"]]) == (200, ["/hang", "Agent started"])
    assert (cancelled.status_code, cancelled.json()["run"]["status"]) == (200, "cancelled")
    assert (continued.status_code, continued.json()["run"]["output"]) == (200, "Echo: again")


def test_a_key_sent_as_x_api_key_acts_for_its_own_account(sandbox: RunningSandbox) -> None:
    with client(sandbox, KEY_A) as a:
        run_id = start(a, "A's")
    origin = sandbox.base_url.removesuffix("/v1")
    with httpx2.Client(base_url=origin, headers={"X-API-Key": KEY_B}, timeout=5) as b:
        own = start(b, "B's")
        foreign = b.get(f"{RUNS}/{run_id}")
        runs = listed(b)

    assert (foreign.status_code, foreign.json()) == (404, not_found(run_id))
    assert runs == [own]


def test_run_ids_stay_unique_across_accounts(sandbox: RunningSandbox) -> None:
    with client(sandbox, KEY_A) as a, client(sandbox, KEY_B) as b:
        ids = [start(http, "count") for http in (a, b, b, a)]

    assert ids == ["run_000001", "run_000002", "run_000003", "run_000004"]


def test_a_key_of_no_account_is_refused_with_401_and_starts_nothing(sandbox: RunningSandbox) -> None:
    with client(sandbox, KEY_A) as a, client(sandbox, KEY_NOBODY) as nobody:
        run_id = start(a, "A's")
        answers = [
            nobody.post(RUNS, json={"content": "mine?", "mode": "async"}),
            nobody.get(RUNS),
            nobody.get(f"{RUNS}/{run_id}"),
            nobody.get(f"{RUNS}/{MADE_UP_RUN}"),
        ]
        runs = listed(a)

    assert [(r.status_code, r.json()) for r in answers] == [(401, UNAUTHORIZED)] * 4
    assert runs == [run_id]
    assert [run.id for run in sandbox.state.list_runs(SERVER, 10)] == [run_id]


def test_a_sandbox_state_has_one_account_per_key_api_key_first() -> None:
    state = SandboxState("tb_first", pace=0, api_keys=["tb_second", "tb_third"])

    assert state.accounts == ("acct_1", "acct_2", "acct_3")
    assert state.api_key == "tb_first"
    assert [state.account_of(key) for key in ("tb_first", "tb_second", "tb_third", "tb_fourth")] == [
        "acct_1",
        "acct_2",
        "acct_3",
        None,
    ]


@pytest.mark.parametrize(
    "keys",
    [
        {},
        {"api_keys": []},
        {"api_key": ""},
        {"api_keys": ["tb_a", ""]},
        {"api_key": "tb_a", "api_keys": ["tb_a"]},
        {"api_keys": ["tb_a", "tb_b", "tb_a"]},
    ],
    ids=["no key", "empty list", "empty key", "empty key in list", "api_key repeated", "key repeated"],
)
def test_a_sandbox_state_refuses_no_keys_an_empty_key_and_a_repeated_key(keys: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as refused:
        SandboxState(**keys)
    assert str(refused.value) == "the sandbox needs at least one API key, each non-empty and distinct"


def test_a_sandbox_state_refuses_one_string_as_its_list_of_keys() -> None:
    with pytest.raises(TypeError) as refused:
        SandboxState(api_keys="tb_a")
    assert str(refused.value) == "api_keys must be a sequence of keys, not one key"


def read_lines(stream: IO[str], into: queue.Queue[str]) -> None:
    """Put each line of `stream` into `into`, until its end."""
    for line in stream:
        into.put(line)


@dataclass
class Standalone:
    """A standalone sandbox process: the origin it serves, its first line and the others it printed, its stderr
    and exit code (once it has ended)."""

    origin: str
    lines: queue.Queue[str]
    first: str = ""
    stderr: str = ""
    returncode: int | None = None


@contextmanager
def standalone_sandbox(*flags: str, **env: str) -> Iterator[Standalone]:
    """``acp-mcp sandbox`` with `flags` and `env`, listening once this yields (SIGTERM ends it after)."""
    port = free_port()
    command = [sys.executable, "-m", "acp_mcp", "sandbox", "--port", str(port), "--pace", "0", *flags]
    served = Standalone(f"http://127.0.0.1:{port}", queue.Queue())
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=python_env(**env), text=True
    ) as process:
        assert process.stdout and process.stderr
        reader = threading.Thread(target=read_lines, args=(process.stdout, served.lines), daemon=True)
        reader.start()
        try:
            served.first = served.lines.get(timeout=20)  # printed once the sandbox listens
            yield served
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
        reader.join(timeout=10)
        served.stderr, served.returncode = process.stderr.read(), process.returncode


def test_the_standalone_sandbox_with_two_keys_prints_both_and_serves_each_account_its_own_runs() -> None:
    with (
        standalone_sandbox("--key", "tb_a", "--key", "tb_b") as served,
        httpx2.Client(base_url=served.origin, headers={"Authorization": "Bearer tb_a"}, timeout=5) as a,
        httpx2.Client(base_url=served.origin, headers={"Authorization": "Bearer tb_b"}, timeout=5) as b,
    ):
        started = a.post(RUNS, json={"content": "standalone", "mode": "sync"})
        run_id = started.json()["run"]["id"]
        own, foreign = a.get(f"{RUNS}/{run_id}"), b.get(f"{RUNS}/{run_id}")
        runs_a, runs_b = listed(a), listed(b)

    assert [served.first, *served.lines.queue] == [
        f"COMPUTER_AGENTS_BASE_URL={served.origin}/v1\n",
        "COMPUTER_AGENTS_API_KEY=tb_a\n",
        "COMPUTER_AGENTS_API_KEY=tb_b\n",
    ]
    assert (started.status_code, started.json()["run"]["output"]) == (201, "Echo: standalone")
    assert (own.status_code, own.json()["run"]["status"]) == (200, "completed")
    assert (foreign.status_code, foreign.json()) == (404, not_found(run_id))
    assert (runs_a, runs_b) == ([run_id], [])
    assert served.returncode == 0
    assert "Traceback" not in served.stderr


@pytest.mark.parametrize(
    ("flags", "env"),
    [
        (["--variant", "flat-bodies", "--variant", "no-event-ids"], {"ACP_SANDBOX_VARIANTS": "oldest-first"}),
        ([], {"ACP_SANDBOX_VARIANTS": "flat-bodies,no-event-ids"}),
    ],
    ids=["flags-win-over-the-environment", "environment"],
)
def test_the_standalone_sandbox_plays_the_variants_named_by_its_flags_or_its_environment(
    flags: list[str], env: dict[str, str]
) -> None:
    with (
        standalone_sandbox("--key", "tb_a", *flags, **env) as served,
        httpx2.Client(base_url=served.origin, headers={"Authorization": "Bearer tb_a"}, timeout=5) as a,
    ):
        first = a.post(RUNS, json={"content": "one", "mode": "sync"}).json()
        second = a.post(RUNS, json={"content": "two", "mode": "sync"}).json()
        runs = listed(a)

    assert "run" not in first and (first["status"], first["output"]) == ("completed", "Echo: one")  # flat
    assert all("id" not in event for event in first["events"]) and first["events"]  # no event ids
    assert runs == [second["id"], first["id"]]  # newest first: oldest-first is not played
    assert served.returncode == 0


@pytest.mark.parametrize("keys", [["tb_a", "tb_a"], ["tb_a", ""]], ids=["repeated", "empty"])
def test_the_standalone_sandbox_refuses_a_repeated_or_empty_key_before_serving(keys: list[str]) -> None:
    flags = [flag for key in keys for flag in ("--key", key)]
    result = subprocess.run(
        [sys.executable, "-m", "acp_mcp", "sandbox", "--port", str(free_port()), *flags],
        capture_output=True,
        text=True,
        timeout=20,
        env=python_env(),
    )

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "acp-mcp: each sandbox --key must be non-empty and given once\n"


def test_the_standalone_sandbox_refuses_an_unknown_variant_before_serving() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "acp_mcp", "sandbox", "--port", str(free_port()), "--variant", "flat-bodies,newest"],
        capture_output=True,
        text=True,
        timeout=20,
        env=python_env(),
    )

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "acp-mcp: unknown sandbox variant newest; known: flat-bodies, oldest-first, no-event-ids, limit-max-50, "
        "busy-input-queues\n"
    )
