"""A web host for MCP Apps in a real browser: ``tests/app_host.mjs`` (the pinned ext-apps AppBridge in Debian's
Chromium, an MCP client on acp-mcp's streamable HTTP endpoint), driven one command at a time.

Tests using it fail (never skip) when Chromium or the Node packages are missing, and fail unless marked
``external`` (`heavy_lane`).
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ._browser import chromium, stop_group
from ._tooling import ROOT, node_env, node_package, system_node

SCRIPT = ROOT / "tests" / "app_host.mjs"
COMMAND_TIMEOUT = 45.0
"""Seconds a command may take (the script's own waits give up after 20 s, a browser's cold start after 60 s)."""


class AppHost:
    """The running host: `send` one command, get its answer (a failed command fails the test)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._process = process
        self._answers: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._answers.put(line)
        self._answers.put(None)

    def send(self, command: str, *, timeout: float = COMMAND_TIMEOUT, **fields: Any) -> dict[str, Any]:
        """Run `command` with `fields` (see ``tests/app_host.mjs``) and return its answer."""
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"do": command, **fields}) + "\n")
        self._process.stdin.flush()
        try:
            line = self._answers.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"the app host did not answer {command} within {timeout} s", pytrace=False)
        if line is None:
            pytest.fail(f"the app host exited during {command}: {self._stderr()}", pytrace=False)
        answer: dict[str, Any] = json.loads(line)
        if not answer.pop("ok"):
            report = self.send("report") if command != "report" else {}
            pytest.fail(f"the app host failed at {command} {fields}: {answer['error']}\n{report}", pytrace=False)
        return answer

    def end(self) -> None:
        """Close stdin (the script then closes the browser and exits), wait for the exit, close the pipes."""
        process = self._process
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            stop_group(process)
        self._reader.join(timeout=10)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()

    def _stderr(self) -> str:
        self._process.wait(timeout=10)
        return self._process.stderr.read()[-2000:] if self._process.stderr else ""


@contextmanager
def app_host(scratch: Path) -> Iterator[AppHost]:
    """``tests/app_host.mjs`` running (HOME and TMPDIR in `scratch`); closed at the end."""
    chromium()
    for package in ("playwright-core", "esbuild", "@modelcontextprotocol/ext-apps", "@modelcontextprotocol/client"):
        node_package(package)
    process = subprocess.Popen(
        [system_node(), str(SCRIPT)],
        cwd=ROOT,
        env=node_env(scratch) | {"TMPDIR": str(scratch)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    host = AppHost(process)
    try:
        yield host
        host.send("close")
    finally:
        host.end()
