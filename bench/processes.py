"""Process helpers shared by the benchmark suite and the load script: ports, readiness, `/proc`, stopping."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import subprocess
import time
from dataclasses import dataclass, field
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


def raise_open_files_limit(wanted: int = 8_192) -> None:
    """Raise this process's soft limit on open files to `wanted` (or the hard limit), for it and the children
    it starts after: a server with a thousand callers holds a connection to the API for each."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of `pid` in MiB (Linux)."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU time `pid` has used so far (Linux)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (the first is the state)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


@dataclass
class Children:
    """Attributes this process's children to their sessions: a pid claimed here is never found again."""

    claimed: set[int] = field(default_factory=set)

    def claim(self, pid: int) -> int:
        """Mark `pid` as taken (a child whose pid its starter already knows) and return it."""
        self.claimed.add(pid)
        return pid

    def find(self, argv: list[str]) -> int:
        """The pid of an unclaimed child of this process whose command line contains `argv`, now claimed."""
        me, wanted = os.getpid(), "\0".join(argv).encode()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) not in self.claimed:
                with contextlib.suppress(OSError):
                    if int(_stat_fields(int(entry.name))[1]) == me and wanted in (entry / "cmdline").read_bytes():
                        return self.claim(int(entry.name))
        raise RuntimeError(f"no child process running {' '.join(argv)}")


def close_and_wait(process: subprocess.Popen[bytes]) -> None:
    """Close `process`'s stdin (a stdio server's cue to exit), wait for it, kill it if it lingers."""
    with contextlib.suppress(OSError):
        assert process.stdin is not None
        process.stdin.close()
    _wait_or_kill(process, 10)


def terminate_and_wait(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM `process` if it still runs, wait up to `timeout` seconds, kill it if it lingers."""
    if process.poll() is None:
        process.terminate()
    _wait_or_kill(process, timeout)


def _wait_or_kill(process: subprocess.Popen[bytes], timeout: float) -> None:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
