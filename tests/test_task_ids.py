"""Task ids: signed, so a forged, tampered or unknown id is "task not found", any replica sharing the key reads
a task, and the tasks methods exist only for clients that declared the extension on the 2026 wire."""

from __future__ import annotations

import dataclasses
import re

import pytest
from mcp import MCPError
from pydantic import SecretStr

from acp_mcp.config import Settings
from acp_mcp.sandbox import RunningSandbox
from acp_mcp.task_ids import TaskIds, TaskRef
from acp_mcp.tasks import EXTENSION_ID

from ._tasks import forged_id, tasks_client
from .conftest import API_KEY, SERVER_ID

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "task_id",
    ["not-a-task", "", "a.b", "a.b.c", "W10.AAAA", "x" * 5000, "forged", "tampered"],
)
async def test_unknown_malformed_forged_or_tampered_ids_are_task_not_found(settings: Settings, task_id: str) -> None:
    async with tasks_client(settings) as tasks:
        created = await tasks.call("start_agent_run", {"serverId": SERVER_ID, "content": "/steps 1"})
        payload, mac = created["taskId"].split(".")
        changed = "A" if payload[-2] != "A" else "B"
        tampered = f"{payload[:-2]}{changed}{payload[-1]}.{mac}"  # one character of the signed payload changed
        task_id = {"forged": forged_id(), "tampered": tampered}.get(task_id, task_id)
        for send in (tasks.get, tasks.cancel, lambda task: tasks.update(task, {})):
            with pytest.raises(MCPError) as caught:
                await send(task_id)
            assert caught.value.error.code == -32602
            assert caught.value.error.message.startswith("Failed to retrieve task: Task not found.")


async def test_any_server_sharing_the_key_answers_a_task_and_no_other_does(
    settings: Settings, sandbox: RunningSandbox
) -> None:
    other_key = dataclasses.replace(settings, api_key=SecretStr("tb_other_key_9876543210"))
    async with tasks_client(settings) as first:
        created = await first.call("start_agent_run", {"serverId": SERVER_ID, "content": "/steps 1"})
    async with tasks_client(settings) as replica, tasks_client(other_key) as stranger:
        assert (await replica.settle(created["taskId"]))["status"] == "completed"
        with pytest.raises(MCPError) as caught:
            await stranger.get(created["taskId"])
    assert caught.value.error.code == -32602


async def test_a_run_gone_from_the_platform_is_task_not_found(settings: Settings) -> None:
    missing = TaskIds(API_KEY).mint(TaskRef(SERVER_ID, "run_gone", "accepted", 202, 20, 0))
    async with tasks_client(settings) as tasks:
        with pytest.raises(MCPError) as caught:
            await tasks.get(missing)
    assert caught.value.error.code == -32602


def test_a_task_id_round_trips_what_the_starting_call_knew() -> None:
    ids = TaskIds(API_KEY)
    ref = TaskRef("srv/ü", "run:1", "started", None, 0, 1_700_000_000_123)
    task_id = ids.mint(ref)
    assert ids.read(task_id) == ref and re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}", task_id)
    assert TaskIds(API_KEY).read(task_id) == ref  # a restart (or a replica) derives the same key
    assert API_KEY not in task_id


# -- clients that did not declare the extension ----------------------------------------------------


async def test_tasks_methods_need_the_declared_extension_on_the_2026_wire(settings: Settings) -> None:
    async with tasks_client(settings, declare=False) as tasks:
        with pytest.raises(MCPError) as caught:
            await tasks.get(forged_id())
    assert caught.value.error.code == -32021
    assert caught.value.error.data == {"requiredCapabilities": {"extensions": {EXTENSION_ID: {}}}}


async def test_tasks_methods_do_not_exist_on_the_2025_wire(settings: Settings) -> None:
    async with tasks_client(settings, declare=False, mode="legacy") as tasks:
        with pytest.raises(MCPError) as caught:
            await tasks.get(forged_id())
    assert caught.value.error.code == -32601


def other_spellings(task_id: str) -> list[str]:
    """The same bytes written otherwise: padding, the standard alphabet's + and /, or the unused low bits of the
    last character (a 22-character mac carries 4 of them)."""
    payload, mac = task_id.split(".")
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(mac[-1])
    low_bits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last ^ 1]
    spellings = [f"{payload}==.{mac}", f"{payload}.{mac}==", f"{payload}.{mac[:-1]}{low_bits}"]
    standard = task_id.replace("-", "+").replace("_", "/")
    return spellings + ([standard] if standard != task_id else [])


def test_a_task_id_has_one_spelling_and_every_other_is_not_found() -> None:
    ids = TaskIds(API_KEY)
    for n in range(40):  # enough ids that some carry - or _, which the standard alphabet spells + and /
        task_id = ids.mint(TaskRef(SERVER_ID, f"run_{n}", "started", 201, 20, 1_700_000_000_000 + n))
        assert ids.read(task_id) is not None
        assert [ids.read(spelling) for spelling in other_spellings(task_id)] == [None] * len(other_spellings(task_id))
