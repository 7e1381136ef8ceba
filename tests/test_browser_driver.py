"""The browser driver (tests/_browser.py, tests/browser_form.mjs) against a throwaway page server: headless
Chromium fills and submits a real form, and reports the page it lands on and any request to another origin."""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from ._browser import drive_form, run_browser_job
from ._tooling import loopback_http

pytestmark = pytest.mark.external

KEY = "tb_browser_0123456789abcdef"
FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Connect a key</title></head>
<body><h1>Connect</h1>
<form method="post" action="/connect">
  <label>API key <input name="key" type="password" autocomplete="off"></label>
  <button type="submit">Connect</button>
</form></body></html>"""
ANSWER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Key received</title></head>
<body><p>Received key: {key}</p></body></html>"""
# Another origin for the browser: the same server under another host name.
LEAKY = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Leaky</title></head>
<body><p>Leaky page</p><img src="http://localhost:{port}/pixel.png" alt="">
<script>console.error("leaky page loaded")</script></body></html>"""


@dataclass
class Site:
    """A throwaway HTTP server on loopback and the requests it received (method, path, body)."""

    url: str
    port: int
    received: list[tuple[str, str, str]] = field(default_factory=list)


@pytest.fixture
def site() -> Iterator[Site]:
    site = Site(url="", port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.received.append(("GET", self.path, ""))
            if self.path == "/":
                self._send(200, FORM)
            elif self.path == "/leaky":
                self._send(200, LEAKY.format(port=site.port))
            else:
                self._send(404, "<!doctype html><title>Not found</title><p>Not found</p>")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            site.received.append(("POST", self.path, body))
            key = parse_qs(body).get("key", [""])[0]
            self._send(200, ANSWER.format(key=html.escape(key)))

        def _send(self, status: int, page: str) -> None:
            data = page.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    with loopback_http(Handler) as port:
        site.port = port
        site.url = f"http://127.0.0.1:{port}"
        yield site


def test_a_key_typed_into_the_form_is_posted_and_the_browser_lands_on_the_servers_answer(
    site: Site, tmp_path: Path
) -> None:
    shot = tmp_path / "answer.png"

    report = drive_form(
        f"{site.url}/",
        [{"fill": "input[name=key]", "value": KEY}, {"click": "button[type=submit]"}],
        screenshot=shot,
    )

    assert report["ok"] is True
    assert report["url"] == f"{site.url}/connect"
    assert report["status"] == 200
    assert report["title"] == "Key received"
    assert report["text"] == f"Received key: {KEY}"
    assert [(n["method"], n["url"]) for n in report["navigations"]] == [
        ("GET", f"{site.url}/"),
        ("POST", f"{site.url}/connect"),
    ]
    assert report["foreign_requests"] == []
    assert report["console_errors"] == [] and report["page_errors"] == [] and report["failed_requests"] == []
    assert ("POST", "/connect", f"key={KEY}") in site.received
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert report["browser_version"], "the version of the Chromium that ran"


def test_a_request_to_another_origin_is_reported_and_never_reaches_it(site: Site) -> None:
    report = drive_form(f"{site.url}/leaky", [])

    assert report["text"] == "Leaky page"
    assert report["foreign_requests"] == [
        {"url": f"http://localhost:{site.port}/pixel.png", "method": "GET", "resource_type": "image"}
    ]
    assert not [path for _, path, _ in site.received if path == "/pixel.png"], "aborted in the browser"
    assert "leaky page loaded" in report["console_errors"]


def test_a_step_the_page_does_not_allow_fails_with_a_json_error_naming_the_step(site: Site) -> None:
    job = {"url": f"{site.url}/", "steps": [{"fill": "input[name=missing]", "value": "x"}], "step_timeout_ms": 1000}

    code, report, _ = run_browser_job(job)

    assert code == 1
    assert report["ok"] is False
    assert report.get("step") == 0
    assert "input[name=missing]" in report.get("error", "")
    assert report["title"] == "Connect a key", "the report shows the page the step failed on"


def test_a_failed_step_fails_the_test_with_the_page_it_was_on(site: Site) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"(?s)at step 1 \(exit 1\).*title .Connect a key."):
        drive_form(
            f"{site.url}/",
            [{"fill": "input[name=key]", "value": KEY}, {"click": "a#nowhere"}],
            step_timeout=1,
        )
