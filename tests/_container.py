"""Podman for the container tests: a private configuration, a stand-in base image, the image built from the checkout.

Rootful Debian ``podman`` with ``runc`` (``.ci/run`` installs both, and ``debootstrap``), configured in a directory
of the test's own, never the machine's: ``runc`` as the runtime and no default ulimits (``crun``, and podman's
default ulimits, are refused by some sandboxed kernels), cgroupfs, events in a file, locks, networks and overlay
storage in that directory and thrown away at the end, and no registries (nothing is pulled). Builds and containers
use the host's network.

The base image is a stand-in for ``python:3.12-slim`` made from Debian's packages: a minimal bookworm with
``python3`` and ``python3-venv``, kept as a tarball in the user's cache directory under a key of its recipe
(`DebianBase`), so only the first run pays for ``debootstrap`` (about a minute).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from ._tooling import ROOT, heavy_lane


@dataclass(frozen=True)
class DebianBase:
    """How the stand-in base is made: ``debootstrap --variant=minbase --include=PACKAGES SUITE``, minus `trimmed`
    (apt's caches)."""

    suite: str = "bookworm"
    packages: tuple[str, ...] = ("python3", "python3-venv", "ca-certificates")
    trimmed: tuple[str, ...] = ("var/cache/apt/archives", "var/lib/apt/lists")

    @property
    def key(self) -> str:
        """A digest of the recipe, naming the cached tarball: a change to it makes a new one."""
        return hashlib.sha256(json.dumps(dataclasses.astuple(self)).encode()).hexdigest()[:16]


DEBIAN_BASE = DebianBase()

CONTAINERS_CONF = """\
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
tmp_dir = "{home}/tmp"
static_dir = "{home}/storage/libpod"
volume_path = "{home}/storage/volumes"

[network]
network_config_dir = "{home}/networks"
"""
"""Podman's engine settings; every state of its own in HOME (file locks, not the machine's shared memory ones)."""

PIP_CERT = "/run/secrets/pip-cert"
"""Where the Dockerfile's optional ``pip-cert`` build secret appears in the build."""


def tool(name: str) -> str:
    """The path of a Debian tool the container tests need; the test fails, naming the package, if it is missing."""
    heavy_lane(name)
    path = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if path is None:
        pytest.fail(f"{name} is missing: install Debian's podman, runc and debootstrap (.ci/run does)", pytrace=False)
    return path


def pip_ca_bundle() -> Path | None:
    """The CA bundle pip on this machine verifies TLS with, for pip in the build (behind a proxy that re-signs TLS
    pip there needs it): the one pip is configured with (``PIP_CERT``, a pip configuration file's ``cert``), else
    the one requests reads from ``REQUESTS_CA_BUNDLE``, else OpenSSL's default (``SSL_CERT_FILE`` or the system's);
    None when there is none, and the base image's own CAs serve."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True)
    settings = dict(line.split("=", 1) for line in listed.stdout.splitlines() if "=" in line)
    configured = [
        ast.literal_eval(settings[key]) for key in (":env:.cert", "install.cert", "global.cert") if key in settings
    ]
    candidates = [*configured, os.environ.get("REQUESTS_CA_BUNDLE"), ssl.get_default_verify_paths().cafile]
    return next((Path(path) for path in candidates if path and Path(path).is_file()), None)


def cache_dir() -> Path:
    """The tests' directory in the user's cache (``$XDG_CACHE_HOME``, else ``~/.cache``), outside the checkout."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "acp-mcp-tests"


def debian_base_tarball(scratch: Path) -> Path:
    """The stand-in base's root filesystem as a tarball, made with ``debootstrap`` (as root) unless cached."""
    cached = cache_dir() / f"debian-{DEBIAN_BASE.suite}-{DEBIAN_BASE.key}.tar"
    if cached.exists():
        return cached
    if os.geteuid() != 0:
        pytest.fail("the container tests run debootstrap and podman as root: run them as root", pytrace=False)
    rootfs = scratch / "rootfs"
    include = f"--include={','.join(DEBIAN_BASE.packages)}"
    command = [tool("debootstrap"), "--variant=minbase", include, DEBIAN_BASE.suite, str(rootfs)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for trimmed in DEBIAN_BASE.trimmed:
        shutil.rmtree(rootfs / trimmed)
        (rootfs / trimmed).mkdir()
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f"{cached.name}.{uuid.uuid4().hex}.part")
    subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], check=True, timeout=300)
    partial.replace(cached)  # whole or not at all, also when two runs race
    shutil.rmtree(rootfs)
    return cached


def confined(env: dict[str, str]) -> list[str]:
    """``podman run`` options: the host's network, a read-only root and no writable mount (as Kubernetes'
    ``readOnlyRootFilesystem: true``, not even podman's default tmpfs on /tmp), `env` the environment."""
    variables = [f"--env={key}={value}" for key, value in env.items()]
    return ["--network=host", "--read-only", "--read-only-tmpfs=false", *variables]


@dataclass(frozen=True)
class Podman:
    """Podman on a configuration and a storage of its own (see the module docstring)."""

    env: dict[str, str]

    @classmethod
    def private(cls, home: Path) -> Podman:
        """Podman configured in `home`, its images and containers stored there."""
        tool("runc")
        (home / "containers.conf").write_text(CONTAINERS_CONF.format(home=home))
        storage = f'[storage]\ndriver = "overlay"\ngraphroot = "{home / "storage"}"\nrunroot = "{home / "run"}"\n'
        (home / "storage.conf").write_text(storage)
        (home / "registries.conf").write_text("unqualified-search-registries = []\n")
        return cls(
            os.environ
            | {
                "CONTAINERS_CONF": str(home / "containers.conf"),
                "CONTAINERS_STORAGE_CONF": str(home / "storage.conf"),
                "CONTAINERS_REGISTRIES_CONF": str(home / "registries.conf"),
            }
        )

    def __call__(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``podman ARGS``; with `check`, assert it succeeded."""
        done = subprocess.run([tool("podman"), *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        assert not check or done.returncode == 0, f"podman {' '.join(args)}: {done.stdout}{done.stderr}"
        return done

    def inspect(self, kind: str, name: str) -> dict[str, Any]:
        """``podman KIND inspect NAME`` (KIND: image or container), parsed."""
        (found,) = json.loads(self(kind, "inspect", name).stdout)
        return dict(found)

    def reset(self) -> None:
        """Remove every container, image and state of this podman and unmount its storage (all in its directory)."""
        self("system", "reset", "--force", timeout=120)

    def debian_base(self, scratch: Path) -> str:
        """The stand-in base image, imported from its tarball (`debian_base_tarball`)."""
        tarball = debian_base_tarball(scratch)
        name = f"localhost/acp-mcp-test-base:{tarball.stem.rpartition('-')[2]}"
        self("import", str(tarball), name, timeout=300)
        return name

    def build(self, base: str, tag: str) -> str:
        """Build the checkout's Dockerfile on `base` as `tag`, handing pip this machine's CA bundle if it has one."""
        ca = pip_ca_bundle()
        trust = ["--secret", f"id=pip-cert,src={ca}", "--build-arg", f"PIP_CERT={PIP_CERT}"] if ca else []
        self(
            "build",
            "--format=docker",  # the OCI format has no HEALTHCHECK
            "--network=host",
            "--pull=never",
            f"--build-arg=BASE_IMAGE={base}",
            *trust,
            f"--tag={tag}",
            str(ROOT),
            timeout=900,
        )
        return tag

    def run(self, image: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        """Run a container of `image` to its end, attached, as `container` runs it but without a health check."""
        return self("run", "--rm", "--no-healthcheck", *confined(env), image, *args, check=False)

    @contextmanager
    def container(self, image: str, env: dict[str, str], *args: str) -> Iterator[str]:
        """A container of `image` run detached (see `confined`); its name, removed at the end."""
        name = f"acp-mcp-test-{uuid.uuid4().hex[:8]}"
        # The health check runs only when asked (`podman healthcheck run`): its timer would need systemd.
        self("run", "--detach", f"--name={name}", "--health-interval=disable", *confined(env), image, *args)
        try:
            yield name
        finally:
            self("rm", "--force", "--time=0", name, check=False)

    def wait_ready(self, name: str, port: int, timeout: float = 30) -> None:
        """Wait until the container's server answers ``/readyz`` with 200 on `port`; fail with its logs if it ends."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return
            except httpx2.HTTPError:
                pass
            state = self.inspect("container", name)["State"]
            assert state["Running"], self("logs", name).stderr
            assert time.monotonic() < deadline, "the container's server did not become ready"
            time.sleep(0.1)
