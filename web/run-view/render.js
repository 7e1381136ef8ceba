// Rendering of the run view: text only (textContent, or Markdown built from text nodes), never HTML from the API.

import { markdown } from "./markdown.js";

const TERMINAL = new Set(["completed", "failed", "cancelled"]);
/** The result's note that the events listed are a window: the view pages through them itself. */
const WINDOW_NOTE = /listed; page with eventOffset$/;
/** The result's note that run.output was cut (the full run resource holds all of it). */
export const OUTPUT_CUT_NOTE = /^run\.output cut/;
const $ = (id) => document.getElementById(id);

/** "1m 05s" for a number of seconds (negative counts as 0). */
export function duration(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m ${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

/** Seconds the run has taken: to its completion, or (still going) to now. */
export function elapsed(run, now = Date.now()) {
  const start = Date.parse(run?.createdAt ?? "");
  if (Number.isNaN(start)) return null;
  const end = Date.parse(run?.completedAt ?? "");
  return ((Number.isNaN(end) ? now : end) - start) / 1000;
}

export function isTerminal(run) {
  return TERMINAL.has(run?.status ?? "");
}

/** The status line in two parts: the state, announced when it changes ("Running"), and the time, which is not
 * (" · 12s · following", " in 1m 05s"). */
export function statusParts(run, following) {
  if (!run) return ["Waiting for the run…", ""];
  const status = run.status ?? "unknown";
  const label = status.charAt(0).toUpperCase() + status.slice(1);
  const seconds = elapsed(run);
  if (isTerminal(run)) return [label, seconds === null ? "" : ` in ${duration(seconds)}`];
  return [label, `${seconds === null ? "" : ` · ${duration(seconds)}`}${following ? " · following" : ""}`];
}

function setText(id, text) {
  const element = $(id);
  if (element.textContent !== text) element.textContent = text;
}

/** The run's output as Markdown, then its error; rebuilt only when either changes. */
function showOutput(run) {
  const box = $("output");
  const key = JSON.stringify([run?.output ?? null, run?.error ?? null, isTerminal(run)]);
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  const parts = [];
  if (run?.output) parts.push(markdown(run.output));
  if (run?.error) {
    const error = document.createElement("p");
    error.className = "run-error";
    error.textContent = `Error: ${run.error}`;
    parts.push(error);
  }
  if (!parts.length) {
    const none = document.createElement("p");
    none.className = "none";
    none.textContent = isTerminal(run) ? "No output." : "No output yet.";
    parts.push(none);
  }
  box.replaceChildren(...parts);
}

function eventItem(index, event) {
  const item = document.createElement("li");
  item.className = `event level-${(event.logLevel ?? "info").replace(/[^a-z]/gi, "")}`;
  item.dataset.index = String(index);
  const head = document.createElement("div");
  head.className = "event-head";
  const role = document.createElement("span");
  role.className = "role";
  role.textContent = event.role ?? "event";
  head.append(role);
  if (event.logType) {
    const type = document.createElement("span");
    type.className = "type";
    type.textContent = event.logType;
    head.append(type);
  }
  const when = Date.parse(event.createdAt ?? "");
  if (!Number.isNaN(when)) {
    const time = document.createElement("time");
    time.dateTime = event.createdAt;
    time.textContent = new Date(when).toISOString().slice(11, 19);
    head.append(time);
  }
  const content = document.createElement("p");
  content.className = "content";
  content.textContent = event.content ?? "";
  item.append(head, content);
  return item;
}

/** Show `model` (see main.js): the run, its events, notes, error and which actions apply. */
export function render(model) {
  const { result, events, error, following, busy, relays } = model;
  const run = result?.run;
  $("view").setAttribute("aria-busy", result ? "false" : "true");
  $("view").dataset.status = run?.status ?? "";
  $("view").dataset.following = String(following);
  setText("title", run?.title || (run?.id ? `Run ${run.id}` : "Agent run"));
  const [state, time] = statusParts(run, following);
  setText("state", state);
  setText("elapsed", time);
  $("status").className = `status status-${(run?.status ?? "none").replace(/[^a-z]/gi, "")}`;
  const meta = [];
  if (result?.serverId) meta.push(`Server ${result.serverId}`);
  if (run?.id) meta.push(`Run ${run.id}`);
  setText("meta", meta.join(" · "));

  showOutput(run);

  const notes = $("notes");
  notes.replaceChildren(
    ...(result?.notes ?? [])
      .filter((note) => !WINDOW_NOTE.test(note))
      .map((note) => {
        const item = document.createElement("li");
        item.textContent = note;
        return item;
      }),
  );
  const full = $("full-output");
  full.hidden = !(result?.resourceUri && (result?.notes ?? []).some((note) => OUTPUT_CUT_NOTE.test(note)));

  const errorBox = $("error");
  errorBox.hidden = !error;
  setText("error", error ?? "");

  const indices = [...events.keys()].sort((a, b) => a - b);
  const list = $("events");
  const sameRun = list.dataset.run === (run?.id ?? "");
  const shown = new Map(sameRun ? [...list.children].map((item) => [Number(item.dataset.index), item]) : []);
  list.dataset.run = run?.id ?? "";
  list.replaceChildren(...indices.map((index) => shown.get(index) ?? eventItem(index, events.get(index))));
  const total = result?.eventsTotal ?? indices.length;
  setText("events-count", total ? `(${indices.length} of ${total})` : "");
  const earlier = $("earlier");
  earlier.hidden = !(indices.length && indices[0] > 0);

  const terminal = isTerminal(run);
  const idle = !busy && relays && Boolean(run);
  $("send").disabled = !idle || !terminal;
  $("follow-up").disabled = !idle || !terminal;
  $("cancel").disabled = !idle || terminal;
  $("refresh").hidden = !relays || !run || terminal || following;
  earlier.disabled = !idle;
  $("full-output").disabled = !idle;
}
