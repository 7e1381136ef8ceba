"""A real PostgreSQL server for the tests: Debian's binaries, a throwaway cluster in a temp dir, loopback only.

`serve_postgres` runs ``initdb`` into a fresh temp dir, starts ``postgres`` on 127.0.0.1 at a free port (and a
unix socket in that dir) with durability off for speed, creates a database and yields a `PostgresServer` whose
`PostgresServer.url` a driver connects to; at exit the server is stopped (``pg_ctl stop -m immediate``) and the dir
removed. PostgreSQL refuses to run as root: under root (CI) the server's commands run as Debian's ``postgres``
system user, which owns the temp dir. The binaries come from ``apt-get install postgresql`` (`.ci/run` installs it);
a test that needs them fails, never skips, when they are missing, and fails unless it is in a heavy lane.

The temp dir is made here, not in pytest's ``tmp_path``: that one sits under a root-only ``/tmp/pytest-of-root``
the ``postgres`` user cannot enter, and is too deep for a unix socket path (at most 107 bytes).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from ._tooling import free_port, heavy_lane

DEBIAN_POSTGRESQL = Path("/usr/lib/postgresql")
INSTALL_HINT = "install Debian's PostgreSQL: `apt-get install postgresql` (.ci/run does)"
SERVER_USER = "postgres"
"""The system user the server runs as when the tests run as root (Debian's package creates it)."""
ROLE = "acp"
DATABASE = "acp_mcp"
SETTINGS = {
    # Nothing here has to survive a crash: no flushing to disk, no WAL beyond what crash recovery needs.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "ssl": "off",
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "logging_collector": "off",
}
START_SECONDS = 30
COMMAND_SECONDS = 60

Owner = tuple[int, int]
"""The uid and gid the server's commands run as."""


@dataclass(frozen=True)
class PostgresServer:
    """A running test server: the superuser role `user` logs in with `password` over TCP (scram-sha-256)."""

    host: str
    port: int
    user: str
    password: str
    dbname: str
    directory: Path
    """The temp dir: the cluster (``data``), the server log (``server.log``) and the unix socket."""
    bin_dir: Path

    @property
    def url(self) -> str:
        """``postgresql://USER:PASSWORD@127.0.0.1:PORT/DBNAME``, for `psycopg.AsyncConnection.connect`."""
        return self.database_url(self.dbname)

    dsn = url

    def database_url(self, dbname: str) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{dbname}"

    @property
    def log(self) -> str:
        """What the server has logged so far (for a failing test's message)."""
        with suppress(OSError):
            return (self.directory / "server.log").read_text(encoding="utf-8", errors="replace")
        return ""

    def create_database(self, dbname: str) -> str:
        """Create an empty database `dbname` (a plain identifier) on this server; return its URL."""
        _run([self.bin_dir / "createdb", *self._client_args(), dbname], what=f"createdb {dbname}", env=self._env())
        return self.database_url(dbname)

    def _client_args(self) -> list[str]:
        return ["--host", self.host, "--port", str(self.port), "--username", self.user, "--no-password"]

    def _env(self) -> dict[str, str]:
        return _clean_env(self.directory) | {"PGPASSWORD": self.password}


def postgres_bin() -> Path:
    """The ``bin`` dir of the highest PostgreSQL major Debian's packages installed; the test fails if there is none."""
    heavy_lane("PostgreSQL")
    majors = sorted(
        (int(folder.name), folder / "bin")
        for folder in (DEBIAN_POSTGRESQL.iterdir() if DEBIAN_POSTGRESQL.is_dir() else ())
        if folder.name.isdigit() and all((folder / "bin" / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres"))
    )
    if not majors:
        pytest.fail(f"no PostgreSQL server in {DEBIAN_POSTGRESQL}/<major>/bin: {INSTALL_HINT}", pytrace=False)
    return majors[-1][1]


@contextmanager
def serve_postgres() -> Iterator[PostgresServer]:
    """A fresh PostgreSQL server with an empty database `DATABASE`, stopped and deleted at exit (see the module)."""
    heavy_lane("PostgreSQL")
    bin_dir = postgres_bin()
    owner = _server_user()
    directory = Path(tempfile.mkdtemp(prefix="acp-pg-"))
    data = directory / "data"
    try:
        if owner is not None:
            os.chown(directory, *owner)
        password = secrets.token_hex(16)
        password_file = directory / "password"
        password_file.write_text(password + "\n", encoding="utf-8")
        if owner is not None:
            os.chown(password_file, *owner)
        _run(
            [
                bin_dir / "initdb",
                "--pgdata",
                data,
                "--username",
                ROLE,
                "--pwfile",
                password_file,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            what="initdb",
            env=_clean_env(directory),
            owner=owner,
        )
        password_file.unlink()
        server = _start(bin_dir, directory, data, password, owner)
        try:
            server.create_database(DATABASE)
            yield server
        finally:
            _stop(bin_dir, data, owner)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _start(bin_dir: Path, directory: Path, data: Path, password: str, owner: Owner | None) -> PostgresServer:
    """Start the server on a free port (on another one if a process took that port first); ``pg_ctl --wait`` returns
    once it accepts connections, `START_SECONDS` at most."""
    config = data / "postgresql.conf"
    initial = config.read_text(encoding="utf-8")
    attempts = 3
    for attempt in range(1, attempts + 1):
        port = free_port()
        settings = SETTINGS | {
            "listen_addresses": "'127.0.0.1'",
            "port": str(port),
            "unix_socket_directories": f"'{directory}'",
        }
        config.write_text(
            initial + "".join(f"{name} = {value}\n" for name, value in settings.items()), encoding="utf-8"
        )
        server = PostgresServer("127.0.0.1", port, ROLE, password, DATABASE, directory, bin_dir)
        command: list[str | Path] = [bin_dir / "pg_ctl", "start", "--wait", f"--timeout={START_SECONDS}"]
        command += ["--pgdata", data, "--log", directory / "server.log", "--silent"]
        started = _execute(command, env=_clean_env(directory), owner=owner, timeout=START_SECONDS + 10)
        if started.returncode == 0:
            return server
        _stop(bin_dir, data, owner)
        if attempt == attempts or "could not bind" not in server.log:
            pytest.fail(
                f"PostgreSQL ({bin_dir}) did not start: {started.stdout}{started.stderr}\n{server.log[-4000:]}",
                pytrace=False,
            )
    raise AssertionError("unreachable")


def _stop(bin_dir: Path, data: Path, owner: Owner | None) -> None:
    """Stop the server at once (its data is thrown away); kill the postmaster if ``pg_ctl`` could not."""
    pid_file = data / "postmaster.pid"
    if not pid_file.exists():
        return
    command: list[str | Path] = [bin_dir / "pg_ctl", "stop", "--pgdata", data, "--mode=immediate", "--wait", "--silent"]
    with suppress(subprocess.TimeoutExpired):
        if _execute(command, env=_clean_env(data.parent), owner=owner, timeout=COMMAND_SECONDS).returncode == 0:
            return
    with suppress(OSError, ValueError, IndexError):
        os.kill(int(pid_file.read_text(encoding="utf-8").split()[0]), signal.SIGKILL)


def _server_user() -> Owner | None:
    """Whom to run the server's commands as: nobody else (None) unless we are root, then Debian's `SERVER_USER`."""
    if os.geteuid() != 0:
        return None
    import pwd  # POSIX only: imported here so that collecting this module works everywhere

    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        pytest.fail(
            f"the tests run as root, which PostgreSQL refuses, and there is no {SERVER_USER!r} user to run it as: "
            + INSTALL_HINT,
            pytrace=False,
        )
    return entry.pw_uid, entry.pw_gid


def _clean_env(home: Path) -> dict[str, str]:
    """No ``PG*`` variables from outside (a ``PGHOST`` would point the client tools elsewhere), C messages."""
    return {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(home), "LC_ALL": "C", "TZ": "UTC"}


def _execute(
    command: list[str | Path], *, env: dict[str, str], owner: Owner | None, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run `command` from the temp dir as `owner` (None: as ourselves), capturing its output."""
    return subprocess.run(
        command,
        cwd=env["HOME"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        user=None if owner is None else owner[0],
        group=None if owner is None else owner[1],
        extra_groups=None if owner is None else [],
    )


def _run(command: list[str | Path], *, what: str, env: dict[str, str], owner: Owner | None = None) -> None:
    """`_execute`, failing the test with the command's output if it fails."""
    done = _execute(command, env=env, owner=owner, timeout=COMMAND_SECONDS)
    if done.returncode != 0:
        pytest.fail(f"{what} failed ({done.returncode}): {done.stdout}{done.stderr}", pytrace=False)
