"""Standard proxy and CA settings reach the server's HTTP client (httpx2, ``trust_env``).

A loopback proxy stands in for a corporate one: for ``CONNECT api.computer-agents.com:443`` it
terminates TLS with a certificate from a throwaway CA (the TLS inspection such proxies do) and
pipes the plain requests to the test sandbox. So the real base URL, the real https path, and only
the standard variables: ``HTTPS_PROXY`` routes the call, ``SSL_CERT_FILE`` makes the proxy's CA
trusted, ``NO_PROXY`` exempts a host. Plain-HTTP requests (``HTTP_PROXY``) are recorded and
answered 502. Needs the ``openssl`` command to make the certificates.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from acp_mcp.sandbox import RunningSandbox

from ._tooling import ROOT, python_env
from .conftest import API_KEY, SERVER_ID, api_requests, error_text, text_of

pytestmark = pytest.mark.anyio

API_HOST = "api.computer-agents.com"


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a leaf certificate for API_HOST signed by it: (ca.pem, leaf.pem, leaf.key)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command is needed to make the test CA", pytrace=False)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True, timeout=60)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=acp-mcp test proxy CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    run("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", f"/CN={API_HOST}")
    (directory / "leaf.ext").write_text(
        f"subjectAltName=DNS:{API_HOST}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "leaf.pem",
        "-days", "2", "-extfile", "leaf.ext")  # fmt: skip
    return directory / "ca.pem", directory / "leaf.pem", directory / "leaf.key"


class InspectingProxy:
    """An HTTP proxy on loopback that records each request line; CONNECT tunnels end at the sandbox."""

    def __init__(self, tls: ssl.SSLContext, upstream: tuple[str, int]) -> None:
        self.tls, self.upstream = tls, upstream
        self.requests: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> InspectingProxy:
        self._thread.start()
        assert self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                await self._handle(reader, writer)
            except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
                pass  # the client gave up (e.g. it does not trust the proxy's certificate)
            finally:
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()
                tasks.discard(task)

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        await self._stop.wait()
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line = head.split(b"\r\n", 1)[0].decode()
        self.requests.append(request_line)
        method, _target, _ = request_line.split(" ", 2)
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await writer.start_tls(self.tls)
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            up_writer.close()
            with contextlib.suppress(OSError):
                await up_writer.wait_closed()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def proxy(certificates: tuple[Path, Path, Path], sandbox: RunningSandbox) -> Iterator[InspectingProxy]:
    _, leaf, key = certificates
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(leaf, key)
    with InspectingProxy(tls, ("127.0.0.1", sandbox.port)) as running:
        yield running


def _server(**env: str) -> StdioServerParameters:
    settings = {"COMPUTER_AGENTS_API_KEY": API_KEY, "ACP_SERVER_ID": SERVER_ID, "ACP_MCP_REQUEST_TIMEOUT": "5"}
    return StdioServerParameters(
        command=sys.executable, args=["-m", "acp_mcp"], env=python_env(**settings, **env), cwd=str(ROOT)
    )


async def test_https_proxy_and_ssl_cert_file_carry_a_call_to_the_real_base_url(
    proxy: InspectingProxy, certificates: tuple[Path, Path, Path], sandbox: RunningSandbox
) -> None:
    ca, _, _ = certificates
    params = _server(HTTPS_PROXY=proxy.url, SSL_CERT_FILE=str(ca), NO_PROXY="")
    async with Client(params) as client:
        result = await client.call_tool("start_agent_run", {"content": "through the proxy", "mode": "sync"})

    assert not result.is_error, text_of(result)
    assert result.structured_content["run"]["output"] == "Echo: through the proxy"
    assert proxy.requests == [f"CONNECT {API_HOST}:443 HTTP/1.1"]
    (post,) = api_requests(sandbox, method="POST")
    assert post.path == f"/v1/servers/{SERVER_ID}/runtime/agent/runs"
    assert post.headers["host"] == API_HOST


async def test_without_ssl_cert_file_the_proxys_certificate_is_refused(
    proxy: InspectingProxy, sandbox: RunningSandbox
) -> None:
    async with Client(_server(HTTPS_PROXY=proxy.url)) as client:
        result = await client.call_tool("start_agent_run", {"content": "untrusted", "mode": "sync", "waitSeconds": 2})

    assert error_text(result, "start_agent_run") == (  # it also checks the key is nowhere in the result
        f"Could not connect to the ACP API at https://{API_HOST}/v1. Check the network and COMPUTER_AGENTS_BASE_URL, "
        "then retry."
    )
    assert proxy.requests and set(proxy.requests) == {f"CONNECT {API_HOST}:443 HTTP/1.1"}
    assert api_requests(sandbox) == [], "nothing reached the API over an untrusted connection"


async def test_http_proxy_is_used_even_for_loopback_and_no_proxy_exempts_a_host(
    proxy: InspectingProxy, sandbox: RunningSandbox
) -> None:
    base = sandbox.base_url
    async with Client(_server(COMPUTER_AGENTS_BASE_URL=base, HTTP_PROXY=proxy.url, NO_PROXY="")) as client:
        proxied = await client.call_tool("start_agent_run", {"content": "proxied", "mode": "sync"})
    async with Client(_server(COMPUTER_AGENTS_BASE_URL=base, HTTP_PROXY=proxy.url, NO_PROXY="127.0.0.1")) as client:
        direct = await client.call_tool("start_agent_run", {"content": "direct", "mode": "sync"})

    assert proxied.is_error, "the proxy answered 502"
    assert proxy.requests == [f"POST {base}/servers/{SERVER_ID}/runtime/agent/runs HTTP/1.1"]
    assert not direct.is_error, text_of(direct)
    assert direct.structured_content["run"]["output"] == "Echo: direct"
