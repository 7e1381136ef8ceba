"""Drive a web page in a real browser: Debian's Chromium (``/usr/bin/chromium``) automated by the pinned
``playwright-core`` (``package.json``, installed by ``npm ci``) through ``tests/browser_form.mjs``.

`drive_form` opens a URL, fills and clicks in order, and returns what the browser ended on (`BrowserReport`): the
final URL, title, visible text, HTTP status, console errors and the requests the page tried to make to other origins
(reported and aborted: a self-contained page makes none). Tests using it fail (never skip) when Chromium or the Node
package is missing, and fail unless marked ``external`` (`heavy_lane`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NotRequired, TypedDict, cast

import pytest

from ._tooling import ROOT, heavy_lane, node_env, node_package, system_node

CHROMIUM = Path("/usr/bin/chromium")
SCRIPT = ROOT / "tests" / "browser_form.mjs"
STEP_TIMEOUT = 10.0
"""Seconds each launch, navigation and step may take in the browser (the job as a whole: `drive_form`'s timeout)."""


class Navigation(TypedDict):
    url: str
    method: str
    status: int


class ForeignRequest(TypedDict):
    url: str
    method: str
    resource_type: str


class FailedRequest(TypedDict):
    url: str
    error: str


class BrowserReport(TypedDict):
    """What ``tests/browser_form.mjs`` prints: the page the browser ended on, and what happened on the way."""

    ok: bool
    url: str | None
    title: str | None
    text: str | None
    """``document.body.innerText`` of the final page."""
    status: int | None
    """HTTP status of the last main-frame navigation (the one that loaded the final page)."""
    navigations: list[Navigation]
    console_errors: list[str]
    page_errors: list[str]
    """Uncaught exceptions in the page's scripts."""
    foreign_requests: list[ForeignRequest]
    """Requests to any origin other than the starting URL's: reported and aborted."""
    failed_requests: list[FailedRequest]
    """Same-origin requests that failed (refused connection, aborted navigation)."""
    screenshot: str | None
    browser_version: str | None
    elapsed_ms: int
    error: NotRequired[str]
    """Only when ``ok`` is false: what failed."""
    step: NotRequired[int | None]
    """Only when ``ok`` is false: the index of the step that failed (none: the launch or the first load)."""


def chromium() -> Path:
    """Debian's Chromium; the test fails when it is not installed (or is not marked for a heavy lane)."""
    heavy_lane("Chromium")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium with "
            "`apt-get update && apt-get install -y --no-install-recommends chromium` (as .ci/run does)",
            pytrace=False,
        )
    return CHROMIUM


def run_browser_job(job: Mapping[str, object], *, timeout: float = 60) -> tuple[int, BrowserReport, str]:
    """Run one job (see ``tests/browser_form.mjs``) and return its exit code, its report and its stderr.

    The script stops itself before `timeout` (``timeout_ms`` in the job, unless given); if it does not, it is sent
    SIGTERM (Playwright then closes the browser) and SIGKILL, and the test fails.
    """
    chromium()
    node_package("playwright-core")
    node = system_node()
    job = {"timeout_ms": int(max(timeout / 2, timeout - 10) * 1000)} | dict(job)
    with tempfile.TemporaryDirectory(prefix="browser-form-", ignore_cleanup_errors=True) as scratch:
        # HOME and TMPDIR in a scratch folder: the fresh Chromium profile and its temporary files go there too.
        env = node_env(Path(scratch)) | {"TMPDIR": scratch}
        process = subprocess.Popen(
            [node, str(SCRIPT)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(json.dumps(job), timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_group(process)
            pytest.fail(f"the browser job did not finish within {timeout} s: {job.get('url')}", pytrace=False)
    try:
        report = cast(BrowserReport, json.loads(stdout))
    except ValueError:
        pytest.fail(
            f"tests/browser_form.mjs exited {process.returncode} without a JSON report:\n{stdout[-2000:]}"
            f"\n{stderr[-2000:]}",
            pytrace=False,
        )
    return process.returncode, report, stderr


def drive_form(
    url: str,
    steps: Sequence[Mapping[str, object]],
    *,
    timeout: float = 60,
    step_timeout: float = STEP_TIMEOUT,
    screenshot: Path | None = None,
    allowed_origins: Sequence[str] = (),
) -> BrowserReport:
    """Open `url` in headless Chromium, perform `steps` in order and return the report on the final page.

    A step is ``{"fill": SELECTOR, "value": TEXT}``, ``{"click": SELECTOR}`` (a click on a submit button or a link
    waits for the page it navigates to; ``"navigates": false`` when the page handles it in script, ``true`` to wait
    anyway), ``{"press": SELECTOR, "key": "Enter", "navigates": BOOL}`` or ``{"wait_for": SELECTOR}``. A failed step,
    launch or load fails the test, with the page it was on. `screenshot` is a PNG path for the final page.
    """
    job: dict[str, object] = {
        "url": url,
        "steps": list(steps),
        "step_timeout_ms": int(step_timeout * 1000),
        "allowed_origins": list(allowed_origins),  # besides the page's own: e.g. the issuer it signs in at
    }
    if screenshot is not None:
        job["screenshot"] = str(screenshot)
    code, report, stderr = run_browser_job(job, timeout=timeout)
    if code != 0 or not report["ok"]:
        where = "before the first step" if report.get("step") is None else f"at step {report.get('step')}"
        pytest.fail(
            f"the browser job failed {where} (exit {code}): {report.get('error')}\n"
            f"page: {report['url']} (status {report['status']}, title {report['title']!r})\n"
            f"text: {(report['text'] or '')[:1000]}\nconsole errors: {report['console_errors']}\n{stderr[-2000:]}",
            pytrace=False,
        )
    return report


def stop_group(process: subprocess.Popen[str]) -> None:
    """SIGTERM to the script's process group (Playwright closes Chromium on it), SIGKILL after 10 s."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            break
        try:
            process.communicate(timeout=10)
            break
        except subprocess.TimeoutExpired:
            continue
