"""Metrics: each MCP message and ACP request measured by low-cardinality labels, gauges for what is in flight, and
``GET /metrics`` in Prometheus text for a real Prometheus to scrape.

The in-process tests give `compose` a meter provider with an in-memory reader; the ``/metrics`` tests run the real
command with ``ACP_MCP_METRICS=true``, and the last one points Debian's ``prometheus`` at it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import Request, RequestParams
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from acp_mcp.clock import VirtualClock
from acp_mcp.composition import compose
from acp_mcp.config import Settings
from acp_mcp.sandbox import RunningSandbox
from acp_mcp.telemetry import Telemetry
from acp_mcp.uris import run_uri

from ._http import CALLER_TOKEN, get
from ._tasks import Wire
from ._tooling import free_port, heavy_lane, http_server, readme_block
from .conftest import API_KEY, FAST_POLLS, SERVER_ID, hanging_run, sandbox_env, text_of, until

pytestmark = pytest.mark.anyio

RUNS = "/v1/servers/{serverId}/runtime/agent/runs"


class ReadWithoutUri(Request[RequestParams, Literal["resources/read"]]):
    """``resources/read`` without its ``uri``: the SDK refuses its parameters."""

    method: Literal["resources/read"] = "resources/read"


def _points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    """Metric name -> (attributes, data point) of each point collected now."""
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data is not None else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = [(dict(point.attributes or {}), point) for point in metric.data.data_points]
    return found


def _gauge(reader: InMemoryMetricReader, name: str) -> float:
    ((_, point),) = _points(reader)[name]
    return float(point.value)


def _metered(reader: InMemoryMetricReader, clock: VirtualClock | None = None) -> Telemetry:
    return Telemetry(meter_provider=MeterProvider(metric_readers=[reader]), clock=clock)


async def test_each_mcp_message_and_api_request_is_measured_by_method_tool_error_and_template(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    clock = VirtualClock()
    sandbox.state.clock = clock
    reader = InMemoryMetricReader()
    application = compose(settings, policy=FAST_POLLS, clock=clock, telemetry=_metered(reader, clock))
    async with Client(application.server) as client:
        waited = await client.call_tool(
            "start_agent_run", {"serverId": SERVER_ID, "content": "/hang", "waitSeconds": 2}
        )
        missing = await client.call_tool(
            "get_agent_run", {"serverId": SERVER_ID, "resourceRunId": "run_missing", "waitSeconds": 0}
        )
        with pytest.raises(MCPError):
            await client.get_prompt("no_such_prompt")
        with pytest.raises(MCPError, match="Invalid request parameters"):
            await client.session.send_request(ReadWithoutUri(params=RequestParams()), Wire)

    assert not waited.is_error and missing.is_error, text_of(waited)
    operations = {
        json.dumps(labels, sort_keys=True): point for labels, point in _points(reader)["mcp.server.operation.duration"]
    }
    start = operations['{"gen_ai.tool.name": "start_agent_run", "mcp.method.name": "tools/call"}']
    assert (start.count, start.sum) == (1, pytest.approx(2.0))  # the wait, on the virtual clock
    assert (
        operations[
            '{"error.type": "tool_error", "gen_ai.tool.name": "get_agent_run", "mcp.method.name": "tools/call"}'
        ].count
        == 1
    )
    assert operations['{"error.type": "-32602", "mcp.method.name": "prompts/get"}'].count == 1
    assert operations['{"error.type": "-32602", "mcp.method.name": "resources/read"}'].count == 1

    port = urlsplit(sandbox.base_url).port
    where = {"server.address": "127.0.0.1", "server.port": port}
    requests = {
        (
            labels["http.request.method"],
            labels["url.template"],
            labels.get("http.response.status_code"),
            labels.get("error.type"),
        ): point.count
        for labels, point in _points(reader)["http.client.request.duration"]
        if {key: labels[key] for key in where} == where
    }
    polls = requests.pop(("GET", RUNS + "/{resourceRunId}/events", 200, None))
    assert polls >= 3  # at 0.02 s, growing to 0.2 s: a dozen polls in the 2 s wait
    assert requests == {("POST", RUNS, 202, None): 1, ("GET", RUNS + "/{resourceRunId}/events", 404, "404"): 1}
    labels = json.dumps([labels for points in _points(reader).values() for labels, _ in points])
    assert "run_" not in labels and SERVER_ID not in labels  # ids go on spans, never on metric labels


async def test_the_gauges_count_waits_in_flight_watched_runs_and_say_when_the_server_drains(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    reader = InMemoryMetricReader()
    application = compose(settings, policy=FAST_POLLS, telemetry=_metered(reader))
    async with Client(application.server) as client, anyio.create_task_group() as group:
        run_id = await hanging_run(client)
        assert (_gauge(reader, "acp_mcp.waits.active"), _gauge(reader, "acp_mcp.draining")) == (0, 0)
        wait = {"serverId": SERVER_ID, "resourceRunId": run_id, "waitSeconds": 60}
        group.start_soon(client.call_tool, "get_agent_run", wait)
        await until(lambda: _gauge(reader, "acp_mcp.waits.active") == 1)
        assert _gauge(reader, "acp_mcp.watched_runs") == 0
        async with client.listen(resource_subscriptions=[run_uri(SERVER_ID, run_id)]):
            assert _gauge(reader, "acp_mcp.watched_runs") == 1
        application.leaving.set()  # what a SIGTERM does, then the drain: the wait ends at its next poll
        application.stop_waits.set()
        await until(lambda: _gauge(reader, "acp_mcp.waits.active") == 0)
        assert _gauge(reader, "acp_mcp.draining") == 1


async def test_metrics_are_prometheus_text_at_get_metrics_beside_healthz_without_the_caller_token(
    sandbox: RunningSandbox,
) -> None:
    env = sandbox_env(sandbox, ACP_MCP_METRICS="true", ACP_MCP_HTTP_TOKEN=CALLER_TOKEN, ACP_SERVER_ID=SERVER_ID)
    with http_server(**env) as server:
        async with server.client(CALLER_TOKEN) as client:
            result = await client.call_tool("start_agent_run", {"content": "measured", "mode": "sync"})
        status, headers, body = get(server.url.replace("/mcp", "/metrics"))
        refused, _, _ = get(server.url)

    assert not result.is_error, text_of(result)
    assert (status, headers["content-type"], refused) == (200, "text/plain; version=0.0.4; charset=utf-8", 401)
    lines = body.decode().splitlines()
    port = urlsplit(sandbox.base_url).port
    tool = 'gen_ai_tool_name="start_agent_run",mcp_method_name="tools/call"'
    assert f"mcp_server_operation_duration_seconds_count{{{tool}}} 1.0" in lines
    assert (
        'http_client_request_duration_seconds_count{http_request_method="POST",http_response_status_code="201",'
        f'server_address="127.0.0.1",server_port="{port}",url_template="{RUNS}"}} 1.0'
    ) in lines
    for gauge in ("acp_mcp_waits_active", "acp_mcp_watched_runs", "acp_mcp_draining"):
        assert f"{gauge} 0.0" in lines


@contextmanager
def prometheus(config: str, directory: Path) -> Iterator[str]:
    """Debian's ``prometheus`` with `config` on a free loopback port: its base URL."""
    heavy_lane("Prometheus")
    binary = shutil.which("prometheus")
    assert binary is not None, "Prometheus is missing: apt-get install prometheus (.ci/run installs it)"
    (directory / "prometheus.yml").write_text(config)
    port = free_port()
    with (directory / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=20)


def _query(prometheus_url: str, query: str) -> list[dict[str, Any]]:
    try:
        response = httpx2.get(f"{prometheus_url}/api/v1/query", params={"query": query}, timeout=5)
    except httpx2.TransportError:
        return []  # not listening yet
    return list(response.json()["data"]["result"]) if response.status_code == 200 else []


@pytest.mark.external
async def test_prometheus_scrapes_a_replica_with_the_readme_s_scrape_config(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = sandbox_env(sandbox, ACP_MCP_METRICS="true", ACP_MCP_STATELESS="true", ACP_SERVER_ID=SERVER_ID)
    with http_server(**env) as server:
        async with server.client() as client:
            result = await client.call_tool("start_agent_run", {"content": "scraped", "mode": "sync"})
        assert not result.is_error, text_of(result)
        target = urlsplit(server.url).netloc
        config = _readme_scrape_config().replace("acp-mcp:8000", target).replace("15s", "1s")
        with prometheus(config, tmp_path) as url:
            query = 'mcp_server_operation_duration_seconds_count{job="acp-mcp",gen_ai_tool_name="start_agent_run"}'
            deadline = time.monotonic() + 60
            while not (found := _query(url, query)):
                assert time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()[-3000:]
                await anyio.sleep(0.5)

    assert [sample["value"][1] for sample in found] == ["1"]
    assert found[0]["metric"]["instance"] == target


def _readme_scrape_config() -> str:
    """The Prometheus configuration the README's Operating section gives."""
    return readme_block("Operating", "yaml")


async def test_a_tool_name_the_server_does_not_know_is_labelled_other_never_as_sent(settings: Settings) -> None:
    reader = InMemoryMetricReader()
    async with Client(compose(settings, policy=FAST_POLLS, telemetry=_metered(reader)).server) as client:
        result = await client.call_tool("tb_" + API_KEY, {})  # a key pasted as a tool name

    tools = {labels.get("gen_ai.tool.name") for labels, _ in _points(reader)["mcp.server.operation.duration"]}
    assert result.is_error
    assert tools == {None, "_OTHER"}
    assert API_KEY not in json.dumps([labels for points in _points(reader).values() for labels, _ in points])
