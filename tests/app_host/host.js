// The test host's page script (bundled by tests/app_host.mjs): renders an MCP App in a sandboxed iframe with the
// pinned ext-apps AppBridge, as a web host does. The view's requests go to the host's MCP client through
// `window.hostCallTool` / `window.hostReadResource`, which tests/app_host.mjs exposes from Node.

import { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";

let bridge = null;
let frame = null;
let context = null;

/** Mount `html` and hand it the tool call it belongs to (its arguments, then its result). */
async function mount({ html, toolInput, toolResult, theme, width }) {
  await teardown();
  frame = document.createElement("iframe");
  frame.title = "MCP App";
  frame.setAttribute("sandbox", "allow-scripts allow-forms");
  frame.style.width = `${width}px`;
  document.getElementById("frame").replaceChildren(frame);
  context = {
    theme,
    platform: "web",
    displayMode: "inline",
    containerDimensions: { width, maxHeight: 4000 },
    styles: { variables: { "--font-sans": "'DejaVu Sans', sans-serif" } },
  };
  document.documentElement.dataset.theme = theme;
  bridge = new AppBridge(
    null,
    { name: "acp-mcp test host", version: "1.0.0" },
    { serverTools: {}, serverResources: {}, logging: {} },
    { hostContext: context },
  );
  bridge.oncalltool = (params) => window.hostCallTool(params);
  bridge.onreadresource = (params) => window.hostReadResource(params);
  bridge.onsizechange = ({ height }) => {
    if (height) frame.style.height = `${height}px`;
  };
  const initialized = new Promise((resolve) => {
    bridge.oninitialized = resolve;
  });
  await bridge.connect(new PostMessageTransport(frame.contentWindow, frame.contentWindow));
  frame.srcdoc = html;
  await initialized;
  await bridge.sendToolInput({ arguments: toolInput });
  await bridge.sendToolResult(toolResult);
}

function setTheme(theme) {
  context = { ...context, theme };
  bridge.setHostContext(context);
  document.documentElement.dataset.theme = theme;
}

async function teardown() {
  if (bridge === null) return;
  await bridge.teardownResource({}).catch(() => {});
  await bridge.close();
  bridge = null;
}

/** Tell the app it is being closed, as a host does before removing it (the frame stays, to watch it stop). */
async function close() {
  await bridge.teardownResource({});
}

window.testHost = { mount, setTheme, close, teardown };
