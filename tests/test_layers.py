"""The house's layers, checked: every module of `acp_mcp` imports only from its own layer or those below.

From the bottom: the foundation (limits, clock, errors, models, config, argument rules, text and the run
URI), the ACP API client, the run domain (service, waiting, watching, results, messages), the MCP surface
(tools, tasks, subscriptions, completions, the error boundary, the server and the composition root), and
the transports and commands on top. MCP types appear only in the top two; the sandbox is a separate
package that leans on the foundation alone and that only the command line starts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "acp_mcp"
LAYERS: dict[str, tuple[str, ...]] = {
    "foundation": (
        "__init__",
        "limits",
        "clock",
        "text",
        "uris",
        "models",
        "errors",
        "redaction",
        "log_storms",
        "config",
        "arguments",
        "schemas",
        "telemetry",
        "logs",
    ),
    "api": ("client", "retries"),
    "runs": (
        "admission",
        "messages",
        "results",
        "waiting",
        "repeats",
        "listing",
        "watching",
        "service",
        "task_ids",
        "keystore",
        "links",
        "callers",
    ),
    "mcp": (
        "boundary",
        "process_state",
        "tools",
        "oauth",
        "tasks",
        "subscriptions",
        "completions",
        "instrumentation",
        "run_view",
        "server",
        "composition",
    ),
    "transports": (
        "signin",
        "connect",
        "gate",
        "host_check",
        "slow_clients",
        "stdio",
        "http_server",
        "shutdown",
        "otel_setup",
        "cli",
        "demo",
        "__main__",
    ),
}
LEVEL = {module: level for level, modules in enumerate(LAYERS.values()) for module in modules}
MCP_LAYERS = set(LAYERS["mcp"] + LAYERS["transports"])
SANDBOX_USERS = {"cli"}


def imports(path: Path) -> set[str]:
    """The modules `path` imports: ``acp_mcp`` ones by their name below the package (``sandbox`` for the
    sandbox's), others by their top-level name."""
    found: set[str] = set()
    inside_sandbox = path.parent.name == "sandbox"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            depth = node.level - (1 if inside_sandbox else 0)
            if node.level == 0:
                found.add((node.module or "").split(".")[0])
            elif inside_sandbox and depth == 0:
                continue  # within the sandbox package
            elif node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def test_every_module_has_a_layer() -> None:
    modules = {path.stem for path in PACKAGE.glob("*.py")}

    assert modules == set(LEVEL), "put each new module in LAYERS (or remove a gone one)"


@pytest.mark.parametrize("module", sorted(LEVEL))
def test_a_module_imports_only_from_its_layer_or_below(module: str) -> None:
    used = imports(PACKAGE / f"{module}.py")
    upward = sorted(name for name in used & set(LEVEL) if LEVEL[name] > LEVEL[module])

    assert upward == [], f"{module} ({list(LAYERS)[LEVEL[module]]}) imports from a layer above: {upward}"
    if module not in MCP_LAYERS:
        assert not {"mcp", "mcp_types", "starlette", "uvicorn"} & used, f"{module} is below the MCP layer"
    if module not in SANDBOX_USERS:
        assert "sandbox" not in used, f"{module} must not depend on the sandbox"


@pytest.mark.parametrize("path", sorted((PACKAGE / "sandbox").glob("*.py")), ids=lambda path: path.stem)
def test_the_sandbox_leans_on_the_foundation_alone(path: Path) -> None:
    used = imports(path) & set(LEVEL)

    assert all(LEVEL[name] == 0 for name in used), f"{path.stem} imports {sorted(used)}"
