"""The official tasks client, @modelcontextprotocol/ext-tasks (Node, pinned in package.json), drives the server
through tests/tasks_client.mjs: over streamable HTTP (two --stateless replicas) and over stdio (two server
processes), a task started on one is collected on the other."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp.server.apps import EXTENSION_ID as APPS_EXTENSION_ID

from acp_mcp.sandbox import RunningSandbox
from acp_mcp.tasks import EXTENSION_ID

from ._tasks import runs_posted
from ._tooling import ROOT, http_server, modern_node, node_env, node_package, python_env, run_json
from .conftest import SERVER_ID, sandbox_env

pytestmark = pytest.mark.external


def drive(targets: list[dict[str, Any]], home: Path) -> dict[str, Any]:
    """Run tests/tasks_client.mjs (ext-tasks) against `targets` and return its report."""
    node_package("@modelcontextprotocol/ext-tasks")
    node_package("@modelcontextprotocol/client")
    command = [modern_node(22), str(ROOT / "tests" / "tasks_client.mjs"), json.dumps({"targets": targets})]
    code, report, err = run_json(command, env=node_env(home), timeout=120)
    assert code == 0, err
    assert isinstance(report, dict), report
    return report


def assert_report(report: dict[str, Any], sandbox: RunningSandbox) -> None:
    assert (report["era"], report["extensions"]) == ("modern", {EXTENSION_ID: {}, APPS_EXTENSION_ID: {}})
    assert (report["stepsKind"], report["hangKind"], report["hangOutcome"]) == ("task", "task", "cancelled")
    assert report["unknownTaskError"]["code"] == -32602
    plain = report["plain"]  # a call without the extension: the ordinary result at once
    assert (plain["taskId"], plain["isError"]) == (None, False)
    assert plain["structuredContent"]["run"]["output"] == "Echo: plain"
    assert report["resumedOutcome"] == "completed"
    content = report["resumedResult"]["structuredContent"]
    assert (content["outcome"], content["run"]["status"], content["run"]["output"]) == (
        "accepted",
        "completed",
        "Completed 3 steps",
    )
    runs = {run.input: run.status for run in runs_posted(sandbox).values() if run.input != "plain"}
    assert runs == {"/steps 3": "completed", "/hang": "cancelled"}  # the hanging run was cancelled on the platform


def test_the_official_tasks_client_over_http_starts_on_one_replica_and_collects_on_another(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = sandbox_env(sandbox, ACP_SERVER_ID=SERVER_ID)
    with http_server("--stateless", **env) as first, http_server("--stateless", **env) as second:
        report = drive([{"url": first.url}, {"url": second.url}], tmp_path)
    assert_report(report, sandbox)


def test_the_official_tasks_client_over_stdio_collects_a_task_after_a_server_restart(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    env = python_env(**sandbox_env(sandbox, ACP_SERVER_ID=SERVER_ID))
    server = {"command": sys.executable, "args": ["-m", "acp_mcp"], "env": env}
    report = drive([server, server], tmp_path)  # the second connection starts a new server process
    assert_report(report, sandbox)
