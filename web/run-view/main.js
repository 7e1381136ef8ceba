// The run view (ui://acp-mcp/run.html): shows the run a tool returned, follows it while it goes on, and continues
// or cancels it. Every call goes through the host (App.callServerTool), so the host's approval rules apply; the view
// itself makes no network request.

import { App, applyDocumentTheme, applyHostFonts, applyHostStyleVariables } from "@modelcontextprotocol/ext-apps";
import { OUTPUT_CUT_NOTE, isTerminal, render } from "./render.js";

/** Each follow-up check waits this long on the server for the run to end (well under the tools' 600 s limit). */
const FOLLOW_WAIT_SECONDS = 5;
/** At least this long between two checks, even when the server answers at once. */
const MIN_CHECK_GAP_MS = 1000;
/** Events per "load earlier" page and per follow-up check (the tools' default window). */
const EVENTS_PAGE = 20;

const model = {
  result: null, // the structured content of the last run result
  events: new Map(), // index within all the run's events -> event
  error: null, // the text of the last failed call, as the model would read it
  following: false,
  busy: false, // a continue, cancel or page load in flight
  relays: true, // the host relays the view's tool calls (hostCapabilities.serverTools)
};
let closed = false;
let ticker = null;

const app = new App({ name: "acp-mcp run view", version: "1" }, {}, { autoResize: true });

function show() {
  render(model);
  const going = model.result?.run && !isTerminal(model.result.run);
  if (going && ticker === null) ticker = setInterval(show, 1000);
  if (!going && ticker !== null) {
    clearInterval(ticker);
    ticker = null;
  }
}

function textOf(result) {
  return (result?.content ?? [])
    .filter((block) => block.type === "text")
    .map((block) => block.text)
    .join("\n");
}

/** A tools/call through the host; a refused or failed request comes back as an error result with its message. */
async function call(name, args) {
  try {
    return await app.callServerTool({ name, arguments: args });
  } catch (error) {
    return { isError: true, content: [{ type: "text", text: String(error?.message ?? error) }] };
  }
}

/** Take in a tool result: its run, status and events; false (and the error shown) when it failed. */
function accept(result, { keepStatus = false } = {}) {
  const structured = result?.structuredContent;
  if (result?.isError || !structured?.run) {
    model.error = textOf(result) || "The tool returned no run.";
    return false;
  }
  model.error = null;
  const offset = structured.eventOffset ?? 0;
  const events = structured.events ?? [];
  const held = [...model.events.keys()];
  const touches = !held.length || (offset <= Math.max(...held) + 1 && offset + events.length >= Math.min(...held));
  // the window stays one unbroken stretch of events: another run's, or a page past a gap, starts it over
  if (structured.run.id !== model.result?.run?.id || !touches) model.events = new Map();
  events.forEach((event, i) => model.events.set(offset + i, event));
  if (!keepStatus) model.result = structured;
  else model.result = { ...model.result, eventsTotal: structured.eventsTotal ?? model.result.eventsTotal };
  return true;
}

function ids() {
  return { serverId: model.result.serverId, resourceRunId: model.result.run.id };
}

/** The index after the last event held, so each check lists only what is new. */
function nextEventIndex() {
  const indices = [...model.events.keys()];
  return indices.length ? Math.max(...indices) + 1 : (model.result?.eventOffset ?? 0);
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** How many of the run's events came after the last one held (as of the last result). */
function eventsBehind() {
  return (model.result?.eventsTotal ?? 0) - nextEventIndex();
}

/** Check the run with get_agent_run until it has ended and every event is in, or the view closes. A check waits
 * up to FOLLOW_WAIT_SECONDS for the run to end, unless events are waiting; more than a page of them and the
 * window moves on to the latest page ("Load earlier events" pages back). */
async function follow() {
  if (model.following || closed || !model.relays) return;
  model.following = true;
  show();
  try {
    while (!closed && model.result?.run && (!isTerminal(model.result.run) || eventsBehind() > 0)) {
      const started = Date.now();
      const [behind, next] = [eventsBehind(), nextEventIndex()];
      const check = { ...ids(), waitSeconds: behind > 0 ? 0 : FOLLOW_WAIT_SECONDS, maxEvents: EVENTS_PAGE };
      if (behind <= EVENTS_PAGE) check.eventOffset = next;
      const result = await call("get_agent_run", check);
      if (closed || !accept(result)) break;
      show();
      if (isTerminal(model.result.run) && nextEventIndex() <= next) break; // no event came: nothing more to wait for
      const gap = MIN_CHECK_GAP_MS - (Date.now() - started);
      if (gap > 0) await pause(gap);
    }
  } finally {
    model.following = false;
    show();
  }
}

async function act(work) {
  model.busy = true;
  show();
  try {
    await work();
  } finally {
    model.busy = false;
    show();
  }
  follow();
}

function onContinue(event) {
  event?.preventDefault();
  const input = document.getElementById("follow-up");
  const content = input.value.trim();
  if (!content || !model.result?.run) return;
  act(async () => {
    // waitSeconds 0: the view follows the new turn itself, so its controls stay usable meanwhile
    if (accept(await call("continue_agent_run", { ...ids(), content, waitSeconds: 0 }))) input.value = "";
  });
}

function onCancel() {
  if (!model.result?.run) return;
  act(async () => {
    accept(await call("cancel_agent_run", ids()));
  });
}

function onEarlier() {
  const first = Math.min(...model.events.keys());
  const offset = Math.max(0, first - EVENTS_PAGE);
  act(async () => {
    accept(
      await call("get_agent_run", { ...ids(), waitSeconds: 0, maxEvents: first - offset, eventOffset: offset }),
      { keepStatus: true },
    );
  });
}

/** Read the whole output from the run's resource (the tools cut it), through the host. */
function onFullOutput() {
  const { resourceUri, run } = model.result ?? {};
  if (!resourceUri) return;
  act(async () => {
    try {
      const read = await app.readServerResource({ uri: resourceUri });
      const full = JSON.parse(read.contents?.[0]?.text ?? "{}").run;
      if (full?.id !== run.id || model.result.run !== run) return; // the run moved on meanwhile
      model.result = {
        ...model.result,
        run: { ...run, output: full.output ?? run.output },
        notes: model.result.notes.filter((note) => !OUTPUT_CUT_NOTE.test(note)),
      };
    } catch (error) {
      model.error = `The full output could not be read: ${error?.message ?? error}`;
    }
  });
}

function applyHostContext(context) {
  if (context?.theme) applyDocumentTheme(context.theme);
  if (context?.styles?.variables) applyHostStyleVariables(context.styles.variables);
  if (context?.styles?.css?.fonts) applyHostFonts(context.styles.css.fonts);
}

function stop() {
  closed = true;
  if (ticker !== null) clearInterval(ticker);
  ticker = null;
}

app.ontoolresult = (params) => {
  accept(params);
  show();
  follow();
};
app.ontoolcancelled = (params) => {
  model.error = `The tool call was cancelled${params?.reason ? `: ${params.reason}` : "."}`;
  show();
};
app.onhostcontextchanged = applyHostContext;
app.onteardown = async () => {
  stop();
  return {};
};
window.addEventListener("pagehide", stop);

document.getElementById("send").addEventListener("click", onContinue);
document.getElementById("follow-up").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) onContinue(event);
});
document.getElementById("cancel").addEventListener("click", onCancel);
document.getElementById("earlier").addEventListener("click", onEarlier);
document.getElementById("refresh").addEventListener("click", () => follow());
document.getElementById("full-output").addEventListener("click", onFullOutput);

show();
app.connect().then(
  () => {
    applyHostContext(app.getHostContext());
    if (!app.getHostCapabilities()?.serverTools) {
      model.relays = false;
      model.error = "This host does not pass the view's tool calls on: it shows the run as the tool returned it.";
      show();
    }
  },
  (error) => {
    model.error = `The view could not connect to the host: ${error?.message ?? error}`;
    show();
  },
);
