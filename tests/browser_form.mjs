// Drives one web page in headless Chromium (Debian's /usr/bin/chromium) with the pinned playwright-core, for
// tests/_browser.py. Reads one JSON job on stdin, prints one JSON report on stdout.
//
// Job:    {"url": URL, "steps": [STEP, ...], "screenshot": PATH (optional), "timeout_ms": 45000 (optional, whole job),
//          "step_timeout_ms": 10000 (optional, each launch, navigation and step)}
// STEP:   {"fill": SELECTOR, "value": TEXT}
//         {"click": SELECTOR, "navigates": true|false (optional)} - a click on a submit button or a link waits for
//             the navigation it starts to load; "navigates" overrides that guess (false: the page handles it in script)
//         {"press": SELECTOR, "key": KEY, "navigates": true|false (optional, default false)} - e.g. "Enter"
//         {"wait_for": SELECTOR} - until the element is visible
// Report: {"ok": true, "url", "title", "text" (document.body.innerText), "status" (of the last main-frame navigation),
//          "navigations": [{"url", "method", "status"}], "console_errors": [...], "page_errors": [...],
//          "foreign_requests": [{"url", "method", "resource_type"}], "failed_requests": [{"url", "error"}],
//          "screenshot": PATH|null, "browser_version", "elapsed_ms"}
// Failure: exit 1 with {"ok": false, "error", "step": INDEX|null, ...the report so far}; a bad job exits 2; the
// overall timeout exits 3 (its report has the requests and errors so far, not the page).
//
// Requests to any origin other than the job URL's are reported and aborted (a self-contained page makes none), so
// a page under test never reaches the network. The profile is a fresh empty --user-data-dir under $TMPDIR, removed
// at the end.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch } from "./chromium.mjs";

const STEP_KINDS = ["fill", "click", "press", "wait_for"];

const ANSI = /\u001b\[[0-9;]*m/g; // Playwright colours its call logs

class JobError extends Error {}

const started = Date.now();
const report = {
  ok: false,
  url: null,
  title: null,
  text: null,
  status: null,
  navigations: [],
  console_errors: [],
  page_errors: [],
  foreign_requests: [],
  failed_requests: [],
  screenshot: null,
  browser_version: null,
  elapsed_ms: 0,
};
let finished = false;

function finish(code, extra = {}) {
  if (finished) return;
  if (typeof extra.error === "string") extra.error = extra.error.replace(ANSI, "").trim();
  finished = true;
  report.elapsed_ms = Date.now() - started;
  process.stdout.write(`${JSON.stringify({ ...report, ...extra })}\n`);
  process.exitCode = code;
}

async function readJob() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  let job;
  try {
    job = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch (error) {
    throw new JobError(`the job on stdin is not JSON: ${error.message}`);
  }
  if (job === null || typeof job !== "object" || typeof job.url !== "string") {
    throw new JobError('the job needs a "url" string');
  }
  if (!/^https?:\/\//.test(job.url)) throw new JobError(`the job URL must be http(s): ${job.url}`);
  job.steps ??= [];
  if (!Array.isArray(job.steps)) throw new JobError('"steps" must be a list');
  job.steps.forEach((step, index) => {
    const kinds = STEP_KINDS.filter((kind) => typeof step?.[kind] === "string");
    if (kinds.length !== 1) throw new JobError(`step ${index} needs exactly one of ${STEP_KINDS.join(", ")}`);
    if (kinds[0] === "fill" && typeof step.value !== "string") throw new JobError(`step ${index}: fill needs "value"`);
    if (kinds[0] === "press" && typeof step.key !== "string") throw new JobError(`step ${index}: press needs "key"`);
  });
  return job;
}

function isForeign(url, origins) {
  if (/^(data|about|blob|chrome|chrome-error):/.test(url)) return false;
  try {
    return !origins.has(new URL(url).origin);
  } catch {
    return true;
  }
}

/** Whether clicking the element starts a navigation by default: a form's submit control or a link with an href. */
async function clickNavigates(locator, timeout) {
  return locator.evaluate(
    (element) => {
      if (element.closest("a[href]")) {
        const href = element.closest("a[href]").getAttribute("href");
        return !href.startsWith("#") && !href.startsWith("javascript:");
      }
      const control = element.closest("button, input");
      if (!control || !control.form) return false;
      const type = (control.getAttribute("type") || (control.tagName === "BUTTON" ? "submit" : "text")).toLowerCase();
      return type === "submit" || type === "image";
    },
    undefined,
    { timeout },
  );
}

/** Run `action`, then (if `navigates`) wait for the main frame's navigation to commit and the new page to load. */
async function withNavigation(page, navigates, timeout, action) {
  const committed = navigates
    ? page.waitForEvent("framenavigated", { predicate: (frame) => frame === page.mainFrame(), timeout })
    : null;
  committed?.catch(() => {}); // awaited below; a failing action must not leave it unhandled
  await action();
  if (committed) {
    try {
      await committed;
    } catch (error) {
      throw new Error(`no navigation followed within ${timeout} ms (pass "navigates": false if the page stays): ${error.message}`);
    }
    await page.waitForLoadState("load", { timeout });
  }
}

async function runStep(page, step, timeout) {
  if (typeof step.fill === "string") {
    await page.locator(step.fill).fill(step.value, { timeout });
  } else if (typeof step.click === "string") {
    const target = page.locator(step.click);
    const navigates = typeof step.navigates === "boolean" ? step.navigates : await clickNavigates(target, timeout);
    await withNavigation(page, navigates, timeout, () => target.click({ timeout }));
  } else if (typeof step.press === "string") {
    const target = page.locator(step.press);
    await withNavigation(page, step.navigates === true, timeout, () => target.press(step.key, { timeout }));
  } else {
    await page.locator(step.wait_for).waitFor({ state: "visible", timeout });
  }
}

async function snapshot(page) {
  report.url = page.url();
  report.title = await page.title();
  report.text = await page.evaluate(() => (document.body ? document.body.innerText : ""));
}

async function main() {
  let job;
  try {
    job = await readJob();
  } catch (error) {
    finish(2, { error: error.message, step: null });
    return;
  }
  const timeoutMs = Number.isFinite(job.timeout_ms) ? job.timeout_ms : 45000;
  const stepTimeout = Number.isFinite(job.step_timeout_ms) ? job.step_timeout_ms : 10000;
  // the page's own origin, and any the job allows (e.g. an identity provider the page signs in at)
  const origin = new Set([new URL(job.url).origin, ...(Array.isArray(job.allowed_origins) ? job.allowed_origins : [])]);

  const profile = await mkdtemp(join(tmpdir(), "browser-form-profile-"));
  let context = null;
  let current = null; // the step being run
  const close = async () => {
    await context?.close().catch(() => {});
    await rm(profile, { recursive: true, force: true }).catch(() => {});
  };
  const overall = setTimeout(() => {
    finish(3, { error: `the job did not finish within ${timeoutMs} ms`, step: current });
    const forced = setTimeout(() => process.exit(3), 5000);
    forced.unref();
    close().finally(() => process.exit(3));
  }, timeoutMs);

  try {
    context = await launch(profile, stepTimeout * 3); // a cold first start of Chromium
    report.browser_version = context.browser()?.version() ?? null;
    context.setDefaultTimeout(stepTimeout);
    await context.route(
      (url) => isForeign(url.href, origin),
      (route) => route.abort("blockedbyclient"),
    );
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (message) => {
      if (message.type() === "error") report.console_errors.push(message.text());
    });
    page.on("pageerror", (error) => report.page_errors.push(String(error?.message ?? error)));
    page.on("request", (request) => {
      if (isForeign(request.url(), origin)) {
        report.foreign_requests.push({
          url: request.url(),
          method: request.method(),
          resource_type: request.resourceType(),
        });
      }
    });
    page.on("requestfailed", (request) => {
      if (!isForeign(request.url(), origin)) {
        report.failed_requests.push({ url: request.url(), error: request.failure()?.errorText ?? "failed" });
      }
    });
    page.on("response", (response) => {
      const request = response.request();
      if (request.isNavigationRequest() && request.frame() === page.mainFrame()) {
        report.navigations.push({ url: response.url(), method: request.method(), status: response.status() });
        report.status = response.status();
      }
    });

    const response = await page.goto(job.url, { waitUntil: "load", timeout: stepTimeout });
    if (response) report.status = response.status();
    for (const [index, step] of job.steps.entries()) {
      current = index;
      await runStep(page, step, stepTimeout);
    }
    current = null;
    await snapshot(page);
    if (typeof job.screenshot === "string") {
      await page.screenshot({ path: job.screenshot, fullPage: true, timeout: stepTimeout });
      report.screenshot = job.screenshot;
    }
    report.ok = true;
    finish(0);
  } catch (error) {
    const page = context?.pages()[0];
    if (page && !page.isClosed()) await snapshot(page).catch(() => {});
    finish(1, { error: String(error?.message ?? error), step: current });
  } finally {
    clearTimeout(overall);
    await close();
  }
}

await main();
