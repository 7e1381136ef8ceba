// A web host for MCP Apps, for tests/test_run_view_browser.py: an MCP client (the pinned @modelcontextprotocol/client,
// declaring io.modelcontextprotocol/ui) connected to acp-mcp over streamable HTTP, and a page in headless Chromium
// (tests/chromium.mjs) that renders the app a tool points at in a sandboxed iframe with the pinned ext-apps AppBridge
// (tests/app_host/host.js, bundled here with the pinned esbuild). The app's tools/call and resources/read requests
// reach acp-mcp through this client, as in a real host; each is recorded.
//
// Reads one JSON command per line on stdin and answers each with one JSON line on stdout: {"ok": true, ...} or
// {"ok": false, "error": TEXT}. Commands ("do"):
//   open {url, theme, width}          connect the client, start Chromium, load the host page
//   call {tool, arguments}            call a tool as the model would, then render its app with the result: {result}
//   wait_text {selector, text}        until an element in the app contains text: {text} (its textContent)
//   count {selector}                  how many elements in the app match: {count}
//   wait {selector, state}            until an element in the app is "visible", "hidden", "attached" or "detached"
//   text {selector}                   an element's textContent in the app: {text}
//   click / fill {value} / press {key} {selector}   act in the app
//   theme {theme}                     change the host context's theme
//   teardown                          tell the app it is closed (ui/resource-teardown); its frame stays
//   width {width}                     resize the app's frame: {scroll_width, client_width} of the app's page
//   style {selector, property}        a computed style of an element in the app: {value}
//   screenshot {path}                 the app's frame as a PNG
//   report                            {view_calls, view_reads, console_errors, page_errors, foreign_requests}
//   close                             tear the app down, close the browser and the client
// Every request of the page or the app to the network is reported and aborted: the app must make none.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { build } from "esbuild";
import { launch } from "./chromium.mjs";

const HOST_URL = "http://app-host.test/";
const UI_EXTENSION = "io.modelcontextprotocol/ui";
const APP_MIME_TYPE = "text/html;profile=mcp-app";
const TIMEOUT_MS = 20000;
const HERE = dirname(fileURLToPath(import.meta.url));

const host = {
  client: null,
  tools: new Map(),
  context: null,
  page: null,
  profile: null,
  theme: "light",
  width: 640,
  viewCalls: [],
  viewReads: [],
  consoleErrors: [],
  pageErrors: [],
  foreignRequests: [],
};

async function hostPage() {
  const bundle = await build({
    entryPoints: [join(HERE, "app_host", "host.js")],
    bundle: true,
    write: false,
    format: "iife",
    platform: "browser",
    target: "es2020",
    logLevel: "warning",
  });
  const script = bundle.outputFiles[0].text.replace(/<\/script/gi, "<\\/script");
  return `<!doctype html><html><head><meta charset="utf-8"><title>acp-mcp test host</title><style>
body { margin: 0; padding: 16px; background: #ffffff; }
[data-theme="dark"] body { background: #0f0f10; }
iframe { border: 0; display: block; }
</style></head><body><div id="frame"></div><script>${script}</script></body></html>`;
}

const app = () => host.page.frameLocator("#frame iframe");

async function open({ url, theme = "light", width = 640 }) {
  host.theme = theme;
  host.width = width;
  host.client = new Client(
    { name: "acp-mcp-test-host", version: "1.0.0" },
    { capabilities: { extensions: { [UI_EXTENSION]: { mimeTypes: [APP_MIME_TYPE] } } } },
  );
  await host.client.connect(new StreamableHTTPClientTransport(new URL(url)));
  host.tools = new Map((await host.client.listTools()).tools.map((tool) => [tool.name, tool]));

  const page = await hostPage();
  host.profile = await mkdtemp(join(tmpdir(), "app-host-profile-"));
  host.context = await launch(host.profile, TIMEOUT_MS * 3);
  host.context.setDefaultTimeout(TIMEOUT_MS);
  await host.context.route("**/*", (route) => {
    const request = route.request();
    if (request.url() === HOST_URL) return route.fulfill({ status: 200, contentType: "text/html", body: page });
    host.foreignRequests.push({ url: request.url(), method: request.method(), resource_type: request.resourceType() });
    return route.abort("blockedbyclient");
  });
  host.page = host.context.pages()[0] ?? (await host.context.newPage());
  host.page.on("console", (message) => {
    if (message.type() === "error") host.consoleErrors.push(message.text());
  });
  host.page.on("pageerror", (error) => host.pageErrors.push(String(error?.message ?? error)));
  await host.page.exposeFunction("hostCallTool", async (params) => {
    const result = await host.client.callTool(params);
    host.viewCalls.push({
      name: params.name,
      arguments: params.arguments ?? {},
      is_error: Boolean(result.isError),
      text: (result.content ?? []).map((block) => block.text ?? "").join("\n"),
    });
    return result;
  });
  await host.page.exposeFunction("hostReadResource", async (params) => {
    host.viewReads.push(params.uri);
    return host.client.readResource(params);
  });
  await host.page.setViewportSize({ width: width + 32, height: 900 });
  await host.page.goto(HOST_URL, { waitUntil: "load" });
  return { tools: [...host.tools.values()].map((tool) => ({ name: tool.name, _meta: tool._meta ?? null })) };
}

async function call({ tool, arguments: args = {} }) {
  const uri = host.tools.get(tool)?._meta?.ui?.resourceUri;
  if (typeof uri !== "string") throw new Error(`${tool} is bound to no app (no _meta.ui.resourceUri)`);
  const result = await host.client.callTool({ name: tool, arguments: args });
  const [content] = (await host.client.readResource({ uri })).contents;
  if (content?.mimeType !== APP_MIME_TYPE) throw new Error(`${uri} is ${content?.mimeType}, not ${APP_MIME_TYPE}`);
  await host.page.evaluate((mount) => window.testHost.mount(mount), {
    html: content.text,
    toolInput: args,
    toolResult: result,
    theme: host.theme,
    width: host.width,
  });
  return { result };
}

async function waitText({ selector, text }) {
  const element = app().locator(selector).filter({ hasText: text }).first();
  await element.waitFor({ state: "visible" });
  return { text: await element.textContent() };
}

async function width({ width: value }) {
  host.width = value;
  await host.page.setViewportSize({ width: value + 32, height: 900 });
  await host.page.evaluate((w) => {
    document.querySelector("#frame iframe").style.width = `${w}px`;
  }, value);
  const body = app().locator("html");
  return body.evaluate((html) => ({ scroll_width: html.scrollWidth, client_width: html.clientWidth }));
}

async function close() {
  await host.page?.evaluate(() => window.testHost?.teardown()).catch(() => {});
  await host.context?.close().catch(() => {});
  await host.client?.close().catch(() => {});
  if (host.profile) await rm(host.profile, { recursive: true, force: true }).catch(() => {});
  host.context = host.page = host.client = null;
  return {};
}

const COMMANDS = {
  open,
  call,
  wait_text: waitText,
  count: async ({ selector }) => ({ count: await app().locator(selector).count() }),
  wait: async ({ selector, state }) => (await app().locator(selector).first().waitFor({ state }), {}),
  text: async ({ selector }) => ({ text: await app().locator(selector).first().textContent() }),
  click: async ({ selector }) => (await app().locator(selector).click(), {}),
  fill: async ({ selector, value }) => (await app().locator(selector).fill(value), {}),
  press: async ({ selector, key }) => (await app().locator(selector).press(key), {}),
  theme: async ({ theme }) => {
    host.theme = theme;
    await host.page.evaluate((t) => window.testHost.setTheme(t), theme);
    return {};
  },
  width,
  teardown: async () => (await host.page.evaluate(() => window.testHost.close()), {}),
  style: async ({ selector, property }) => ({
    value: await app()
      .locator(selector)
      .first()
      .evaluate((element, name) => getComputedStyle(element).getPropertyValue(name), property),
  }),
  screenshot: async ({ path }) => (await host.page.locator("#frame").screenshot({ path }), { path }),
  report: async () => ({
    view_calls: host.viewCalls,
    view_reads: host.viewReads,
    console_errors: host.consoleErrors,
    page_errors: host.pageErrors,
    foreign_requests: host.foreignRequests,
  }),
  close,
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    const command = JSON.parse(line);
    const run = COMMANDS[command.do];
    if (!run) throw new Error(`unknown command ${JSON.stringify(command.do)}`);
    answer = { ok: true, ...(await run(command)) };
  } catch (error) {
    answer = { ok: false, error: String(error?.message ?? error).replace(/\u001b\[[0-9;]*m/g, "") };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
await close();
