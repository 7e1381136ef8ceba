// Drives acp-mcp as a tasks-aware client with the official @modelcontextprotocol/ext-tasks package
// (requester side, 2026-07-28 wire), for tests/test_tasks.py. Prints one JSON report on stdout.
//
// Usage: node tasks_client.mjs '{"targets": [TARGET, TARGET]}' where a TARGET is
// {"url": URL, "token": TOKEN} (streamable HTTP) or {"command": CMD, "args": [...], "env": {...}} (stdio).
// The first target starts the tasks and goes away; the second (another replica, or a new server process)
// collects the first task from its serialized reference.
//
// ext-tasks needs `rawDispatch` for 2026-07-28 tasks: the SDK's typed request path rejects the task wire
// shapes, so task requests go to the transport below the SDK here, each answered through `onmessage`.

import { Client, ProtocolError } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { createTaskSessionFromClient } from "@modelcontextprotocol/ext-tasks/client";

const PROTOCOL_VERSION = "2026-07-28";
const CLIENT_INFO = { name: "acp-mcp-tasks-test", version: "1.0.0" };
const ENDPOINT_ID = "acp-mcp-tasks-test"; // one logical endpoint, whichever replica answers
const RAW_ID_PREFIX = "ext-tasks-";

function transportFor(target) {
  if (target.url) {
    const headers = target.token ? { Authorization: `Bearer ${target.token}` } : {};
    return new StreamableHTTPClientTransport(new URL(target.url), { requestInit: { headers } });
  }
  return new StdioClientTransport({ command: target.command, args: target.args, env: target.env, stderr: "pipe" });
}

/** The raw request path: sends JSON-RPC requests on the transport, taking their responses before the SDK. */
function rawChannel(transport) {
  const pending = new Map();
  let counter = 0;
  const sdkOnMessage = transport.onmessage;
  transport.onmessage = (message, extra) => {
    const waiter = typeof message.id === "string" ? pending.get(message.id) : undefined;
    if (waiter === undefined) return sdkOnMessage?.(message, extra);
    pending.delete(message.id);
    waiter(message.error ? { kind: "error", error: message.error } : { kind: "result", result: message.result });
  };
  return (request, options = {}) =>
    new Promise((resolve, reject) => {
      const id = `${RAW_ID_PREFIX}${(counter += 1)}`;
      pending.set(id, resolve);
      const headers = options.context?.headers;
      transport.send({ jsonrpc: "2.0", id, ...request }, headers ? { headers } : undefined).catch((error) => {
        pending.delete(id);
        reject(error);
      });
    });
}

async function connect(target) {
  const client = new Client(CLIENT_INFO, {
    capabilities: {},
    versionNegotiation: { mode: { pin: PROTOCOL_VERSION } },
  });
  const transport = transportFor(target);
  await client.connect(transport);
  const session = createTaskSessionFromClient(client, {
    endpointId: ENDPOINT_ID,
    rawDispatch: rawChannel(transport),
    v2RequestFraming: { protocolVersion: PROTOCOL_VERSION, clientInfo: CLIENT_INFO, clientCapabilities: {} },
  });
  return { client, session };
}

/** The JSON-RPC error code behind an ext-tasks failure (it may wrap the response error). */
function errorCode(error) {
  for (let current = error; current; current = current.cause) {
    if (typeof current.code === "number") return current.code;
  }
  return null;
}

async function main() {
  const { targets } = JSON.parse(process.argv[2]);
  const report = {};

  // 1. Start: one run that settles, one that hangs; go away from the first without waiting.
  const first = await connect(targets[0]);
  report.era = first.client.getProtocolEra();
  report.extensions = first.client.getServerCapabilities()?.extensions ?? null;

  const steps = await first.session.callTool("start_agent_run", { content: "/steps 3" });
  report.stepsKind = steps.kind;
  const reference = steps.kind === "task" ? steps.serializeReference() : null;
  report.reference = reference;
  await steps.detach();

  const hanging = await first.session.callTool("start_agent_run", { content: "/hang" });
  report.hangKind = hanging.kind;
  await hanging.cancel();
  const cancelled = await hanging.settle();
  report.hangOutcome = cancelled.outcome.status;

  try {
    await first.session.task("not-a-task-this-server-issued").snapshot();
    report.unknownTaskError = null;
  } catch (error) {
    report.unknownTaskError = { code: errorCode(error), message: String(error.message ?? error) };
  }

  // A call through the plain SDK client declares no tasks extension: the ordinary, immediate result.
  const plain = await first.client.callTool({ name: "start_agent_run", arguments: { content: "plain", mode: "sync" } });
  report.plain = { taskId: plain.taskId ?? null, structuredContent: plain.structuredContent, isError: plain.isError };

  await first.session.close();
  await first.client.close();

  // 2. Come back, to another replica (or a restarted server), and collect the first task.
  const second = await connect(targets[targets.length - 1]);
  const resumed = await second.session.resumeTask(reference);
  const settled = await resumed.settle();
  report.resumedOutcome = settled.outcome.status;
  report.resumedResult = settled.outcome.status === "completed" ? settled.outcome.result : null;
  report.lastTask = settled.lastTask ? { status: settled.lastTask.status, raw: settled.lastTask.raw } : null;
  await second.session.close();
  await second.client.close();

  process.stdout.write(JSON.stringify(report));
}

main().catch((error) => {
  const code = error instanceof ProtocolError ? error.code : errorCode(error);
  process.stderr.write(`tasks_client failed (code ${code}): ${error?.stack ?? error}\n`);
  process.exit(1);
});
