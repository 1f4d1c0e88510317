// The event and provenance explorer: search a host's events, pick a process, file or endpoint
// from them (or paste a node id), and trace it backward (its causes) or forward (its effects).

import { api } from "../api.js";
import { createGraph, legend } from "../graph.js";
import { showNode } from "../nodepanel.js";
import { basename, clear, formatTime, h, route, select, shorten, table } from "../dom.js";
import { hostOptions } from "./incidents.js";

const DIRECTIONS = [["backward", "backward (causes)"], ["forward", "forward (effects)"]];
const FIELDS = ["host", "q", "process", "since", "until", "node", "direction"];
const TRACE_NODES = 200;

/** The graph node id of an event's remote endpoint, as the graph builder makes it. */
function socketNode(host, remote) {
  const bracketed = /^\[(.+)\]:(\d+)$/.exec(remote);
  if (bracketed) return `sock:${bracketed[1]}:${bracketed[2]}`;
  if (/^[0-9.]+:\d+$/.test(remote)) return `sock:${remote}`;
  return `sock:${host}:${remote}`;
}

function searchForm(params, hosts) {
  const input = (name, label, size, placeholder = "") =>
    h("label", {}, label, h("input", { name, value: params.get(name) ?? "", size, placeholder }));
  const form = h(
    "form",
    { class: "toolbar", id: "event-search" },
    h("label", {}, "Host", select(hosts, params.get("host") ?? "", { name: "host" })),
    input("q", "Text (executable, command, path, endpoint)", 28),
    input("process", "Process entity id", 18),
    input("since", "Since", 20, "2026-01-01T00:00:00Z"),
    input("until", "Until", 20),
    h("button", { type: "submit", class: "primary" }, "Search events"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = Object.fromEntries(new FormData(form).entries());
    window.location.hash = route("/explorer", { ...values, node: params.get("node"), direction: params.get("direction") });
  });
  return form;
}

function traceForm(params) {
  const node = h("input", { name: "node", value: params.get("node") ?? "", size: 44, placeholder: "process entity id, file:<host>:<path>, sock:<ip>:<port>" });
  const direction = select(DIRECTIONS, params.get("direction") || "backward", { name: "direction" });
  const form = h(
    "form",
    { class: "toolbar", id: "trace-form" },
    h("label", {}, "Node", node),
    h("label", {}, "Direction", direction),
    h("button", { type: "submit", class: "primary" }, "Trace"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = Object.fromEntries(FIELDS.map((name) => [name, params.get(name)]));
    window.location.hash = route("/explorer", { ...values, node: node.value.trim(), direction: direction.value });
  });
  return form;
}

function pickLinks(event, params) {
  const to = (node) => route("/explorer", { ...Object.fromEntries(FIELDS.map((name) => [name, params.get(name)])), host: event.host, node });
  const links = [];
  if (event.process) links.push(h("a", { href: to(event.process), title: "trace this process" }, "process"));
  if (event.file_path) links.push(h("a", { href: to(`file:${event.host}:${event.file_path}`), title: "trace this file" }, "file"));
  if (event.remote) links.push(h("a", { href: to(socketNode(event.host, event.remote)), title: "trace this endpoint" }, "endpoint"));
  return links.flatMap((item, index) => (index ? [" · ", item] : [item]));
}

async function eventsPanel(params) {
  const query = Object.fromEntries(["host", "q", "process", "since", "until"].map((name) => [name, params.get(name) ?? ""]));
  if (!Object.values(query).some(Boolean)) {
    return h("div", { class: "panel" }, h("p", { class: "muted" }, "Search events by host, text or process, or trace a node below."));
  }
  const events = await api("/events", { params: { ...query, limit: 200 } });
  return h(
    "div",
    { class: "panel scroll", id: "event-results" },
    h("p", { class: "muted" }, `${events.length} event${events.length === 1 ? "" : "s"} (at most 200, oldest first).`),
    table(
      [
        ["Time (UTC)", (event) => formatTime(event.timestamp), "nowrap"],
        ["Action", (event) => event.action, "nowrap"],
        ["Process", (event) => basename(event.executable) || "–", "nowrap"],
        ["Command line", (event) => shorten(event.command_line, 60), "wrap mono"],
        ["Object", (event) => shorten(event.file_path || event.remote, 50), "wrap mono"],
        ["Trace", (event) => pickLinks(event, params), "nowrap"],
      ],
      events,
      { empty: "No event matches." },
    ),
  );
}

async function tracePanel(params, onLeave) {
  const node = params.get("node");
  const host = params.get("host");
  if (!node) return null;
  if (!host) return h("div", { class: "panel notice" }, "Pick the node's host to trace it.");
  const direction = params.get("direction") || "backward";
  const trace = await api("/graph/trace", { params: { host, node, direction, max_nodes: TRACE_NODES } });
  const canvas = h("div", { class: "graph", id: "explorer-graph" });
  const status = h("div", { class: "graph-status", role: "status" });
  const side = h("div", { class: "panel side" }, h("p", { class: "muted" }, "Click a node."));
  const panel = h(
    "div",
    { class: "graph-area" },
    h("div", { class: "panel graph-box" }, canvas, status, legend()),
    side,
  );
  const nodes = (trace.nodes ?? []).map((item) => (item.id === trace.start ? { ...item, role: "start" } : item));
  const draw = () => {
    const cy = createGraph(canvas, { nodes, edges: trace.edges ?? [] });
    window.provarmorExplorerGraph = cy;
    onLeave(() => cy.destroy());
    const report = (text) => {
      status.textContent = text;
    };
    const cut = trace.truncated ? `, cut at ${TRACE_NODES} nodes` : "";
    report(`${direction} trace: ${nodes.length} nodes, ${trace.edges?.length ?? 0} edges${cut}`);
    cy.on("tap", "node", (event) => showNode(side, { cy, node: event.target, host, report }));
  };
  return { panel, draw };
}

export async function explorerPage(view, { params, onLeave }) {
  const [hosts, events, traced] = await Promise.all([
    hostOptions("any host"),
    eventsPanel(params),
    tracePanel(params, onLeave),
  ]);
  // With a node picked, its trace comes first; the event search stays below it.
  const search = [searchForm(params, hosts), events];
  const trace = [h("h2", {}, "Provenance trace"), traceForm(params)];
  if (traced?.panel) trace.push(traced.panel);
  else if (traced) trace.push(traced);
  clear(view).append(h("h1", {}, "Explorer"), ...(traced ? [...trace, ...search] : [...search, ...trace]));
  traced?.draw?.();
}
