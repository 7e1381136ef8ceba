"""Process helpers shared by the benchmark suite and the load script: ports, readiness, memory, stopping."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], limit: float = 60) -> None:
    """Wait until `process` accepts connections on `port`; raise if it exits or `limit` passes."""
    deadline = time.monotonic() + limit
    while True:
        if process.poll() is not None:
            raise RuntimeError("a server exited during start-up")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("a server did not start listening") from None
            time.sleep(0.05)


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of `pid` in MiB (Linux)."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values


def close_and_wait(process: subprocess.Popen[bytes]) -> None:
    """Close `process`'s stdin (a stdio server's cue to exit), wait for it, kill it if it lingers."""
    with contextlib.suppress(OSError):
        assert process.stdin is not None
        process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
