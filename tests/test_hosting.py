"""Hosting: `--stateless` replicas behind a real load balancer (HAProxy), one drained mid-load and replaced.

HAProxy is Debian's package (``.ci/run`` installs it); the test generates its configuration:
round robin over four replicas (the fourth starts mid-load as the replacement), health checks on
``/readyz`` every 100 ms (two in a row change a replica's state), and either retries of a refused
connection or a 503 on another replica (the README's configuration) or no retry at all (as a Kubernetes
Service or a plain balancer): the drain delay alone must then lose nothing. The last third of the calls
waits for the replacement to be up, so it serves some. Everything runs on loopback.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from acp_mcp.config import Settings
from acp_mcp.sandbox import RunningSandbox
from bench.balancer import DRAIN_SECONDS, haproxy_config, replica_command

from ._tooling import ROOT, free_port, python_env
from .compat.harness import python_client
from .conftest import SERVER_ID, sandbox_env

pytestmark = pytest.mark.external

CALLS = 240
CONCURRENCY = 20
REPLICAS = ("r1", "r2", "r3", "r4")
DRAIN_DELAY_SECONDS = 1.0
"""Ten of HAProxy's health checks here: time for it to see r1 not ready before r1 refuses anything."""


def start_replica(sandbox: RunningSandbox, port: int) -> subprocess.Popen[str]:
    env = python_env(**sandbox_env(sandbox, ACP_SERVER_ID=SERVER_ID))
    command = replica_command(port, "--wait-seconds", "10", "--drain-delay-seconds", str(DRAIN_DELAY_SECONDS))
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def ready(port: int) -> bool:
    try:
        return httpx2.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx2.HTTPError:
        return False


def wait_until(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def replica_stats(stats: Path) -> dict[str, dict[str, str]]:
    """HAProxy's `show stat` row of each replica (``status``: UP/DOWN, ``stot``: requests it answered)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(stats))
        sock.sendall(b"show stat\n")
        data = b"".join(iter(lambda: sock.recv(65536), b""))
    rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
    return {row["svname"]: row for row in rows if row["svname"] in REPLICAS}


@contextmanager
def stopped_at_exit(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        if process.stderr is None or not process.stderr.closed:
            process.communicate()


@dataclass
class Rollout:
    """The load through the balancer and the replacement of a replica under it.

    `CONCURRENCY` workers share `CALLS` sync starts; once a third have a result, r1 is sent SIGTERM (it
    drains) and r4 starts in its place; the last third of the calls waits until HAProxy sees r4 up.
    """

    sandbox: RunningSandbox
    stack: ExitStack
    replicas: dict[str, subprocess.Popen[str]]
    ports: dict[str, int]
    stats: Path
    results: list[dict[str, Any]] = field(default_factory=list)
    drain_seconds: float | None = None
    """How long r1 took from SIGTERM to its exit."""

    async def run(self, url: str) -> None:
        calls = iter(range(CALLS))
        replaced = anyio.Event()
        with anyio.fail_after(180):
            async with anyio.create_task_group() as group:
                group.start_soon(self.drain_one_and_replace_it, replaced)
                for _ in range(CONCURRENCY):
                    group.start_soon(self.worker, url, calls, replaced)

    async def worker(self, url: str, calls: Iterator[int], replaced: anyio.Event) -> None:
        async with (
            httpx2.AsyncClient(timeout=60) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            for n in calls:
                if n >= 2 * CALLS // 3:
                    await replaced.wait()
                result = await client.call_tool("start_agent_run", {"content": f"call {n}", "mode": "sync"})
                assert not result.is_error, result.content
                self.results.append(result.structured_content)

    async def drain_one_and_replace_it(self, replaced: anyio.Event) -> None:
        while len(self.results) < CALLS // 3:  # noqa: ASYNC110  (the workers fill it)
            await anyio.sleep(0.01)
        began = time.monotonic()
        self.replicas["r1"].send_signal(signal.SIGTERM)
        replacement = await anyio.to_thread.run_sync(start_replica, self.sandbox, self.ports["r4"])
        self.replicas["r4"] = self.stack.enter_context(stopped_at_exit(replacement))
        await anyio.to_thread.run_sync(self.replicas["r1"].wait, DRAIN_DELAY_SECONDS + DRAIN_SECONDS + 5)
        self.drain_seconds = time.monotonic() - began
        while replica_stats(self.stats)["r4"]["status"] != "UP":  # noqa: ASYNC110  (HAProxy's own health checks)
            await anyio.sleep(0.05)
        replaced.set()


@pytest.mark.parametrize("retries", [True, False], ids=["with-retries", "without-retries"])
def test_a_replica_drained_mid_load_behind_haproxy_loses_and_duplicates_nothing(
    sandbox: RunningSandbox, tmp_path: Path, retries: bool
) -> None:
    haproxy = shutil.which("haproxy") or pytest.fail("haproxy is missing: install Debian's haproxy (.ci/run does)")
    ports = {name: free_port() for name in REPLICAS}
    front, stats = free_port(), tmp_path / "stats.sock"
    (tmp_path / "haproxy.cfg").write_text(haproxy_config(front, stats, ports, retries=retries))

    with ExitStack() as stack:
        replicas = {
            name: stack.enter_context(stopped_at_exit(start_replica(sandbox, ports[name]))) for name in REPLICAS[:3]
        }
        stack.enter_context(
            stopped_at_exit(subprocess.Popen([haproxy, "-f", str(tmp_path / "haproxy.cfg"), "-db"], text=True))
        )
        for name in REPLICAS[:3]:
            wait_until(functools.partial(ready, ports[name]))
        rollout = Rollout(sandbox, stack, replicas, ports, stats)
        anyio.run(rollout.run, f"http://127.0.0.1:{front}/mcp")
        served = {name: int(row["stot"]) for name, row in replica_stats(stats).items()}
        r1_code, r1_stderr = replicas["r1"].returncode, replicas["r1"].communicate()[1]

    results = rollout.results
    starts = [r for r in sandbox.state.requests if r.method == "POST" and r.path.endswith("/runtime/agent/runs")]
    assert len(results) == CALLS, "every call got a result"
    assert all(r["run"]["status"] == "completed" or r["waitExpired"] for r in results)
    assert len({r["run"]["id"] for r in results}) == CALLS == len(starts), "one run per call, none duplicated"
    assert r1_code == 0 and "Traceback" not in r1_stderr, r1_stderr
    assert rollout.drain_seconds is not None and rollout.drain_seconds < DRAIN_DELAY_SECONDS + DRAIN_SECONDS + 2
    assert all(served.get(name, 0) > 0 for name in REPLICAS), served


def test_the_dockerfile_passes_hadolint_and_runs_the_stateless_http_server_as_a_non_root_user() -> None:
    python = python_client("deploy-lint")
    dockerfile = (ROOT / "Dockerfile").read_text()
    done = subprocess.run([python.parent / "hadolint", ROOT / "Dockerfile"], capture_output=True, text=True)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "ARG BASE_IMAGE=python:3.12-slim\nFROM ${BASE_IMAGE}\n" in dockerfile and "USER 10001" in dockerfile
    assert 'CMD ["--transport", "streamable-http", "--stateless", "--host", "0.0.0.0"]' in dockerfile
    assert "ACP_MCP_PORT=8000" in dockerfile
    assert "'http://127.0.0.1:%s/healthz' % os.environ['ACP_MCP_PORT']" in dockerfile.split("HEALTHCHECK", 1)[1]


def validated_manifest(name: str) -> list[dict[str, Any]]:
    """The documents of ``deploy/NAME``, once `kubernetes-validate --strict` (pinned) has passed it."""
    python = python_client("deploy-lint")
    manifest = ROOT / "deploy" / name
    done = subprocess.run([python.parent / "kubernetes-validate", "--strict", manifest], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    documents = subprocess.run(
        [python, "-c", "import json, sys, yaml; [print(json.dumps(d)) for d in yaml.safe_load_all(sys.stdin)]"],
        input=manifest.read_text(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [json.loads(line) for line in documents]


def test_the_kubernetes_example_validates_and_gives_the_drain_time_to_finish() -> None:
    deployment, service = validated_manifest("kubernetes.yaml")

    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item.get("value") or item["valueFrom"]["secretKeyRef"]["key"] for item in container["env"]}
    assert deployment["spec"]["replicas"] == 3 and "--stateless" in container["args"]
    drain = float(env["ACP_MCP_DRAIN_DELAY_SECONDS"]) + float(env["ACP_MCP_DRAIN_SECONDS"])
    assert pod["terminationGracePeriodSeconds"] >= drain + 1, "the process exits within the delay and drain plus 1 s"
    assert (env["COMPUTER_AGENTS_API_KEY"], env["ACP_MCP_HTTP_TOKEN"]) == ("api-key", "http-token")
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_the_team_example_validates_mounts_the_keys_file_and_takes_every_secret_from_a_secret() -> None:
    deployment, _ = validated_manifest("kubernetes-team.yaml")

    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    values = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    secrets = {item["name"] for item in container["env"] if "valueFrom" in item}
    assert secrets == {"ACP_MCP_KEY_ENCRYPTION_KEY", "ACP_MCP_KEY_STORE", "ACP_MCP_CONNECT_CLIENT_SECRET"}
    (mount,) = container["volumeMounts"]
    assert values["ACP_MCP_KEYS_FILE"].startswith(mount["mountPath"] + "/") and mount["readOnly"] is True
    secret_values = {
        "ACP_MCP_KEY_ENCRYPTION_KEY": "a2V5",
        "ACP_MCP_KEY_STORE": "pg",
        "ACP_MCP_CONNECT_CLIENT_SECRET": "s",
    }
    settings = Settings.from_env({**values, **secret_values})
    assert settings.connect and settings.per_caller_keys and not settings.shared_key_allowed
    assert urlsplit(settings.public_url or "").hostname in settings.allowed_hosts
