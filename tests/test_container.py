"""The container: the checkout's Dockerfile built with podman on a stand-in base, and run against the sandbox.

The image is built once for the module (`tests/_container.py`: the base is Debian's ``python3`` from
``debootstrap``, cached; pip in the build gets this machine's CA bundle). Every container runs on the host's
network with a read-only root and no writable mount, as the Kubernetes example runs it; the sandbox and the MCP
client are on the host.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import anyio
import pytest
from mcp.types import CallToolResult

from acp_mcp.config import ConfigError, Settings
from acp_mcp.http_server import check_exposure
from acp_mcp.sandbox import RunningSandbox

from ._container import Podman
from ._http import CALLER_TOKEN
from ._tooling import free_port, http_client, readme_section
from .conftest import SERVER_ID, api_requests, connect, hanging_run, runs_path, sandbox_env, text_of, unmarked, until

pytestmark = [pytest.mark.external, pytest.mark.anyio]

IMAGE = "localhost/acp-mcp:test"
DRAIN_SECONDS = 8


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    podman = Podman.private(tmp_path_factory.mktemp("podman"))
    try:
        yield podman
    finally:
        podman.reset()


@pytest.fixture(scope="module")
def base(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> str:
    return podman.debian_base(tmp_path_factory.mktemp("debian"))


@pytest.fixture(scope="module")
def image(podman: Podman, base: str) -> str:
    return podman.build(base, IMAGE)


def served_env(sandbox: RunningSandbox, port: int, **extra: str) -> dict[str, str]:
    """A container's environment: the sandbox, the test server id, the caller token, `port`, then `extra`."""
    return sandbox_env(
        sandbox, ACP_SERVER_ID=SERVER_ID, ACP_MCP_HTTP_TOKEN=CALLER_TOKEN, ACP_MCP_PORT=str(port), **extra
    )


def test_without_a_caller_token_the_image_refuses_to_start_with_one_line(
    podman: Podman, image: str, sandbox: RunningSandbox
) -> None:
    with pytest.raises(ConfigError) as refusal:
        check_exposure(Settings(host="0.0.0.0"))

    done = podman.run(image, sandbox_env(sandbox, ACP_MCP_PORT=str(free_port())))

    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"acp-mcp: {refusal.value}\n")
    assert api_requests(sandbox) == []


async def test_the_image_serves_the_tools_and_a_run_to_a_client_on_the_host_as_uid_10001_on_a_read_only_root(
    podman: Podman, image: str, sandbox: RunningSandbox
) -> None:
    port = free_port()
    env = served_env(sandbox, port)
    with podman.container(image, env) as name:
        podman.wait_ready(name, port)
        async with http_client(f"http://127.0.0.1:{port}/mcp", CALLER_TOKEN) as client:
            served = (await client.list_tools()).tools
            started = await client.call_tool("start_agent_run", {"content": "from the container", "mode": "sync"})
            requests_of_the_start = list(api_requests(sandbox))
            sandbox.state.clear_requests()
            run_id = started.structured_content["run"]["id"]
            fetched = await client.call_tool("get_agent_run", {"resourceRunId": run_id})
        health = podman("healthcheck", "run", name, check=False)
        container = podman.inspect("container", name)
        status = await anyio.Path(f"/proc/{container['State']['Pid']}/status").read_text()
        write = podman("exec", name, "python", "-c", "open('/tmp/probe', 'w')", check=False)

    async with connect(Settings.from_env(env)) as in_process:
        expected = (await in_process.list_tools()).tools
    assert [tool.model_dump() for tool in served] == [tool.model_dump() for tool in expected]
    assert not started.is_error and not fetched.is_error, text_of(started) + text_of(fetched)
    ((post,), (get,)) = requests_of_the_start, api_requests(sandbox)
    body = {"content": "from the container", "mode": "sync"}
    assert (post.method, post.path, post.query, unmarked(post.body)) == ("POST", runs_path(), {}, body)
    assert (get.method, get.path, get.query, get.body) == ("GET", f"{runs_path()}/{run_id}/events", {}, None)
    assert (started.structured_content["run"]["status"], started.structured_content["run"]["output"]) == (
        "completed",
        "Echo: from the container",
    )
    assert fetched.structured_content["run"] == started.structured_content["run"]
    assert health.returncode == 0, health.stdout + health.stderr
    assert container["State"]["Health"]["Status"] == "healthy"
    assert re.search(r"^Uid:\s+10001\s+10001\s+10001\s+10001$", status, flags=re.M), status
    assert (container["HostConfig"]["ReadonlyRootfs"], container["Mounts"]) == (True, [])
    assert write.returncode == 1 and "[Errno 30] Read-only file system: '/tmp/probe'" in write.stderr, write.stderr


async def test_sigterm_ends_the_container_within_its_drain_time_handing_the_waiting_call_back(
    podman: Podman, image: str, sandbox: RunningSandbox
) -> None:
    port = free_port()
    with podman.container(image, served_env(sandbox, port, ACP_MCP_DRAIN_SECONDS=str(DRAIN_SECONDS))) as name:
        podman.wait_ready(name, port)
        results: list[CallToolResult] = []
        async with http_client(f"http://127.0.0.1:{port}/mcp", CALLER_TOKEN) as client:
            run_id = await hanging_run(client)

            async def wait_for_the_run() -> None:
                results.append(await client.call_tool("get_agent_run", {"resourceRunId": run_id, "waitSeconds": 60}))

            with anyio.fail_after(60):
                async with anyio.create_task_group() as group:
                    group.start_soon(wait_for_the_run)
                    await until(lambda: bool(api_requests(sandbox, method="GET")))  # the call is waiting on the run
                    began = time.monotonic()
                    await anyio.to_thread.run_sync(lambda: podman("stop", "--time=60", name))  # the image's STOPSIGNAL
                    stopped_after = time.monotonic() - began
        state = podman.inspect("container", name)["State"]
        logs = podman("logs", name).stderr

    (result,) = results
    assert not result.is_error, text_of(result)
    assert (result.structured_content["waitExpired"], result.structured_content["run"]["status"]) == (True, "running")
    assert (
        result.structured_content["next"] == f'get_agent_run {{"serverId": "{SERVER_ID}", "resourceRunId": "{run_id}"}}'
    )
    assert stopped_after < DRAIN_SECONDS, "nothing but the wait was in flight: the drain ended when it was handed back"
    assert (state["Status"], state["ExitCode"]) == ("exited", 0), logs
    assert "draining: " in logs and "Traceback" not in logs, logs


def test_the_readme_states_the_size_of_the_image_the_tests_build(podman: Podman, base: str, image: str) -> None:
    built, under = podman.inspect("image", image)["Size"], podman.inspect("image", base)["Size"]
    hosting = readme_section("Serve over HTTP for other agents").split("### Hosting\n", 1)[1].split("\n### ", 1)[0]
    stated = re.search(r"measures (\d+) MB, of which (\d+) MB", hosting)

    assert stated, "the README's Hosting section states the image's size"
    total, added = int(stated[1]) * 1e6, int(stated[2]) * 1e6
    assert abs(built - total) <= 0.15 * total, f"the image measures {built / 1e6:.0f} MB"
    assert abs(built - under - added) <= 0.15 * added, f"the image adds {(built - under) / 1e6:.0f} MB to its base"
