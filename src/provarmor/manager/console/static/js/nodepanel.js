// The side panel of a graph: the clicked node's fields, its edges in the graph, its events,
// and buttons that expand the graph backward (causes) or forward (effects) from it.

import { api } from "./api.js";
import { addTrace, unfold } from "./graph.js";
import { clear, formatClock, formatTime, h, route, shorten, table } from "./dom.js";
import { nodeName } from "./names.js";

const TRACE_NODES = 60;

function fields(record) {
  const rows = [
    ["kind", record.kind],
    ["role", record.role],
    ["label", record.label],
    ["pid", record.pid],
    ["executable", record.executable],
    ["command", record.command_line],
    ["user", record.user],
    ["path", record.path],
    ["ip", record.ip],
    ["port", record.port],
    ["first seen", record.first_ts ? formatTime(record.first_ts) : ""],
    ["last seen", record.last_ts ? formatTime(record.last_ts) : ""],
    ["signals", record.alert_ids?.length ? String(record.alert_ids.length) : ""],
    ["anomaly", record.anomaly_score ? record.anomaly_score.toFixed(2) : ""],
    ["id", record.id],
  ];
  return h(
    "dl",
    {},
    rows.filter(([, value]) => value !== undefined && value !== "" && value !== 0).map(([name, value]) => [
      h("dt", {}, name),
      h("dd", { class: name === "command" || name === "id" ? "mono" : "" }, String(value)),
    ]),
  );
}

function neighbours(cy, node) {
  const name = (id) => cy.getElementById(id).data("caption")?.replace("\n", " ") ?? id;
  const lines = [];
  for (const edge of node.incomers("edge")) {
    lines.push(h("li", {}, `← ${edge.data("action")} from ${name(edge.data("source"))}`));
  }
  for (const edge of node.outgoers("edge")) {
    lines.push(h("li", {}, `→ ${edge.data("action")} to ${name(edge.data("target"))}`));
  }
  return lines.length ? h("ul", {}, lines.slice(0, 40)) : h("p", { class: "muted" }, "No edges shown.");
}

/** Events about the node: a process's own events, or events naming the file or endpoint. */
async function eventsOf(record, host) {
  const params = { host, limit: 50 };
  if (record.kind === "process") params.process = record.id;
  else params.q = record.kind === "file" ? record.path || record.label : record.label;
  if (!params.process && !params.q) return [];
  return api("/events", { params });
}

function eventTable(events) {
  return table(
    [
      ["Time", (event) => formatClock(event.timestamp), "nowrap"],
      ["Action", (event) => event.action, "nowrap"],
      [
        "Object",
        (event) => shorten(event.file_path || event.remote || event.command_line || event.executable, 90),
        "wrap",
      ],
    ],
    events,
    { empty: "No stored events.", props: { class: "events" } },
  );
}

/**
 * Show `node` (a Cytoscape node) in `panel`. `host` is the graph's host; `report(text)` tells
 * the user what an expansion added.
 */
export function showNode(panel, { cy, node, host, report }) {
  if (node.data("group")) {
    showGroup(panel, { cy, node, host, report });
    return;
  }
  const record = { ...node.data("record"), role: node.data("role") };
  const eventsBox = h("div", {}, h("p", { class: "muted" }, "Loading events…"));
  const edgesBox = h("div", {}, neighbours(cy, node));
  const expand = async (direction, button) => {
    button.disabled = true;
    try {
      const trace = await api("/graph/trace", {
        params: { host, node: record.id, direction, max_nodes: TRACE_NODES },
      });
      const added = addTrace(cy, trace);
      clear(edgesBox).append(neighbours(cy, node));
      const cut = trace.truncated ? " (trace cut at the node limit)" : "";
      report(`${direction}: ${added.nodes} nodes and ${added.edges} edges added${cut}`);
    } catch (error) {
      report(`${direction} trace failed: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  };
  const backward = h("button", { type: "button", id: "expand-backward" }, "Expand backward");
  const forward = h("button", { type: "button", id: "expand-forward" }, "Expand forward");
  backward.addEventListener("click", () => expand("backward", backward));
  forward.addEventListener("click", () => expand("forward", forward));
  clear(panel).append(
    h("h2", {}, node.data("caption").replace("\n", " · ")),
    fields(record),
    h(
      "div",
      { class: "buttons" },
      backward,
      forward,
      h("a", { href: route("/explorer", { host, node: record.id }) }, "Open in explorer"),
    ),
    h("h3", {}, "Edges in this graph"),
    edgesBox,
    h("h3", {}, "Events"),
    eventsBox,
  );
  eventsOf(record, host)
    .then((events) => clear(eventsBox).append(eventTable(events)))
    .catch((error) => clear(eventsBox).append(h("p", { class: "error" }, error.message)));
}

/** A folded group (leaves, or similar siblings): a click shows its members in the graph and
 * lists them here. */
function showGroup(panel, { cy, node, report }) {
  const { members, edges } = node.data("record").group;
  const action = edges[0]?.action ?? "";
  const source = cy.getElementById(edges[0]?.src ?? "");
  const caption = node.data("caption");
  const from = source.data("caption")?.replace("\n", " ") ?? "a process";
  unfold(cy, node);
  report(`${members.length} nodes shown`);
  clear(panel).append(
    h("h2", {}, `${caption}: shown in the graph`),
    h("p", {}, `${from} did “${action}” to each of these.`),
    h("ul", { class: "mono", id: "group-members" }, members.map((member) => h("li", { title: member.id }, nodeName(member)))),
  );
}
