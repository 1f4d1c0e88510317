// One incident: header with status, summary, the attack graph with a node panel, and tabs
// for the timeline of steps, ATT&CK techniques and tactics, notes and details; its response
// actions.

import { actionsPanel } from "../actions.js";
import { api } from "../api.js";
import { createGraph, fitReadable, focusNode, legend, relayout } from "../graph.js";
import { hostLink, hostNames, named, nodeName } from "../names.js";
import { showNode } from "../nodepanel.js";
import { benignBox } from "./exceptions.js";
import {
  chips,
  clear,
  formatClock,
  formatTime,
  h,
  link,
  route,
  select,
  severityBadge,
  statusBadge,
  table,
} from "../dom.js";

const STATUSES = [
  ["new", "new"],
  ["acknowledged", "acknowledged"],
  ["resolved", "resolved"],
  ["false_positive", "false positive"],
];

/** Names for the timeline: the incident's nodes, else what the graph learnt by expanding;
 * an entity known by neither reads as such (its id on hover), never as a bare id. */
function nodeNames(incident, cy) {
  const names = new Map();
  for (const node of incident.nodes ?? []) names.set(node.id, nodeName(node));
  return (id) => {
    if (!id) return "";
    const shown = cy.getElementById(id);
    const learnt = shown.nonempty() && shown.data("record") ? nodeName(shown.data("record")) : undefined;
    return named(names.get(id) ?? learnt ?? "an entity outside this story", id);
  };
}

function header(incident, hosts, onStatus) {
  const flash = h("span", { class: "flash", id: "status-saved", role: "status" });
  const chooser = select(STATUSES, incident.status, { id: "incident-status", "aria-label": "Status" });
  const current = h("span", { id: "incident-status-badge" }, statusBadge(incident.status));
  chooser.addEventListener("change", async () => {
    chooser.disabled = true;
    flash.textContent = "";
    try {
      const saved = await onStatus(chooser.value);
      clear(current).append(statusBadge(saved.status));
      flash.textContent = `saved: ${saved.status}`;
    } catch (error) {
      flash.textContent = `not saved: ${error.message}`;
      flash.className = "flash error";
    } finally {
      chooser.disabled = false;
    }
  });
  return h(
    "div",
    { class: "incident-head" },
    h(
      "div",
      {},
      h("h1", {}, incident.title),
      h(
        "div",
        { class: "meta" },
        severityBadge(incident.severity),
        current,
        h("span", {}, `score ${Number(incident.score ?? 0).toFixed(1)}`),
        h("span", {}, "host ", hostLink(hosts, incident.host_id)),
        h("span", {}, `${formatTime(incident.first_ts)} → ${formatTime(incident.last_ts)} UTC`),
        h("span", {}, `version ${incident.version ?? 1}`),
        h("span", { class: "mono" }, incident.id),
      ),
    ),
    h("div", { class: "actions" }, h("label", { for: "incident-status" }, "Status "), chooser, flash),
  );
}

function timeline(incident, name, onPick) {
  const rows = incident.steps ?? [];
  return h(
    "div",
    { class: "timeline-wrap" },
    table(
      [
        ["#", (step) => String(rows.indexOf(step) + 1), "nowrap muted"],
        ["Time (UTC)", (step) => formatClock(step.timestamp), "nowrap"],
        ["Subject", (step) => name(step.subject), "wrap"],
        ["Action", (step) => (step.count > 1 ? `${step.action} ×${step.count}` : step.action), "nowrap"],
        ["Object", (step) => name(step.object), "wrap"],
        ["Techniques", (step) => chips(step.techniques), ""],
        ["What happened", (step) => step.text, "wrap"],
      ],
      rows,
      {
        empty: "No steps.",
        props: { id: "timeline", class: "timeline" },
        rowProps: (step) => ({
          class: `clickable${step.alert_ids?.length || step.action.startsWith("pattern:") ? " signal" : ""}`,
          on: { click: () => onPick(step.subject) },
        }),
      },
    ),
  );
}

function attack(incident) {
  const steps = incident.steps ?? [];
  const used = (id) => steps.filter((step) => (step.techniques ?? []).some((ref) => ref.id === id)).length;
  return h(
    "div",
    { id: "attack" },
    h("h3", {}, "Tactics"),
    h(
      "div",
      { id: "tactics" },
      [...new Map((incident.tactics ?? []).map((ref) => [ref.id, ref])).values()].map((ref) =>
        h("span", { class: "chip tactic" }, `${ref.id} ${ref.name}`),
      ),
    ),
    h("h3", {}, "Techniques"),
    table(
      [
        ["Technique", (ref) => ref.id, "nowrap mono"],
        ["Name", (ref) => ref.name, ""],
        ["Steps", (ref) => String(used(ref.id)), "nowrap"],
      ],
      incident.techniques ?? [],
      { empty: "No techniques." },
    ),
  );
}

function notes(incident, onAdd) {
  const list = h(
    "ul",
    { class: "notes", id: "notes" },
    (incident.notes ?? []).map((note) =>
      h("li", {}, h("div", { class: "when" }, `${formatTime(note.ts_ns)} · ${note.author}`), h("div", {}, note.text)),
    ),
  );
  const text = h("textarea", { id: "note-text", maxlength: 10000, placeholder: "Add a note for the team…" });
  const message = h("span", { class: "flash", role: "status" });
  const form = h(
    "form",
    {},
    text,
    h("div", { class: "pager" }, h("button", { type: "submit", class: "primary" }, "Add note"), message),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!text.value.trim()) return;
    try {
      await onAdd(text.value);
    } catch (error) {
      message.textContent = error.message;
      message.className = "flash error";
    }
  });
  const history = (incident.status_changes ?? []).map((change) =>
    h("li", {}, `${formatTime(change.ts_ns)} · ${change.author}: ${change.old || "?"} → ${change.new}`),
  );
  return h(
    "div",
    {},
    (incident.notes ?? []).length ? list : h("p", { class: "muted" }, "No notes yet."),
    form,
    h("h3", {}, "Status history"),
    history.length ? h("ul", {}, history) : h("p", { class: "muted" }, "Never changed."),
  );
}

function details(incident) {
  const listOf = (title, items) => [
    h("h3", {}, `${title} (${items.length})`),
    items.length ? h("ul", { class: "mono" }, items.slice(0, 200).map((item) => h("li", {}, item))) : h("p", { class: "muted" }, "None."),
  ];
  return h(
    "div",
    { class: "grid two" },
    h(
      "div",
      {},
      listOf("Files written", incident.impacted_files ?? []),
      listOf("Endpoints contacted", incident.contacted_endpoints ?? []),
    ),
    h(
      "div",
      {},
      listOf("Signals (alert ids)", incident.alert_ids ?? []),
      listOf("Merged incidents", incident.merged_ids ?? []),
      listOf("Cut to keep it concise", incident.truncated ?? []),
      h("p", {}, link(route("/alerts", { host: incident.host_id }), "Alerts of this host")),
    ),
  );
}

function tabs(entries) {
  const bar = h("div", { class: "tabs", role: "tablist" });
  const body = h("div", {});
  const show = (index) => {
    [...bar.children].forEach((button, at) => button.classList.toggle("active", at === index));
    clear(body).append(entries[index][1]());
  };
  entries.forEach(([title], index) => {
    bar.append(h("button", { type: "button", role: "tab", dataset: { tab: String(index) }, on: { click: () => show(index) } }, title));
  });
  show(0);
  return h("div", { class: "panel" }, bar, body);
}

// Why lineage context kept or lowered each signal (one line per rule, effect and reason).
function contextNotes(incident) {
  const lines = incident.context ?? [];
  if (!lines.length) return h("div", { id: "context" });
  return h(
    "details",
    { class: "panel context", id: "context" },
    h("summary", {}, `Context of the signals (${lines.length})`),
    h("ul", {}, ...lines.map((line) => h("li", {}, line))),
  );
}

export async function incidentPage(view, { args, onLeave }) {
  const [asked, hosts] = await Promise.all([api(`/incidents/${encodeURIComponent(args[0])}`), hostNames()]);
  let incident = asked;
  const id = incident.id;
  if (incident.merged_from) {
    // the incident asked for was merged into this one: show this one under its own id
    window.history.replaceState(null, "", `#/incidents/${encodeURIComponent(id)}`);
  }
  const host = incident.host_id;
  const status = h("div", { class: "graph-status", id: "graph-status", role: "status" });
  const canvas = h("div", { class: "graph", id: "graph" });
  const side = h("div", { class: "panel side", id: "node-panel" }, h("p", { class: "muted" }, "Click a node."));
  const tools = h("div", { class: "graph-tools" });
  const box = h("div", { class: "panel graph-box" }, canvas, tools, status, legend());
  const tabBox = h("div", {});
  clear(view).append(
    header(incident, hosts, (value) =>
      api(`/incidents/${encodeURIComponent(id)}`, { method: "PATCH", body: { status: value } }),
    ),
    ...(incident.merged_from
      ? [h("p", { class: "notice", id: "merged-notice" }, `Incident ${incident.merged_from} was merged into this one.`)]
      : []),
    h("p", { class: "summary", id: "summary" }, incident.summary),
    contextNotes(incident),
    h("div", { class: "graph-area" }, box, side),
    tabBox,
    actionsPanel({ query: { incident_id: id }, hostId: host, story: incident }),
  );
  const cy = createGraph(canvas, { nodes: incident.nodes ?? [], edges: incident.edges ?? [] });
  window.provarmorGraph = cy;
  const name = nodeNames(incident, cy);
  onLeave(() => {
    cy.destroy();
    if (window.provarmorGraph === cy) delete window.provarmorGraph;
  });
  const report = (text) => {
    status.textContent = text;
  };
  cy.on("tap", "node", (event) => showNode(side, { cy, node: event.target, host, report }));
  const pick = (nodeId) => {
    if (focusNode(cy, nodeId)) showNode(side, { cy, node: cy.getElementById(nodeId), host, report });
  };
  tools.append(
    h("button", { type: "button", id: "graph-fit", on: { click: () => fitReadable(cy) } }, "Fit"),
    select(
      [["auto", "auto layout"], ["LR", "left to right"], ["TB", "top down"]],
      "auto",
      { "aria-label": "Layout", on: { change: (event) => relayout(cy, event.target.value) } },
    ),
    h("button", { type: "button", on: { click: () => pick(incident.root_cause) } }, "Root cause"),
  );
  const counts = `${incident.nodes?.length ?? 0} nodes, ${incident.edges?.length ?? 0} edges`;
  report(counts);
  const drawTabs = () =>
    clear(tabBox).append(
      tabs([
        [`Timeline (${incident.steps?.length ?? 0})`, () => timeline(incident, name, pick)],
        [`ATT&CK (${incident.techniques?.length ?? 0})`, () => attack(incident)],
        [`Notes (${incident.notes?.length ?? 0})`, () => notes(incident, addNote)],
        ["Mark benign", () => benignBox(`/incidents/${encodeURIComponent(id)}/benign`, {}, marked)],
        ["Details", () => details(incident)],
      ]),
    );
  const marked = (answer) => {
    incident.status = answer.status;
    clear(view.querySelector("#incident-status-badge")).append(statusBadge(answer.status));
    view.querySelector("#incident-status").value = answer.status;
  };
  const addNote = async (text) => {
    await api(`/incidents/${encodeURIComponent(id)}/notes`, { method: "POST", body: { text } });
    incident = await api(`/incidents/${encodeURIComponent(id)}`);
    drawTabs();
    tabBox.querySelector('[data-tab="2"]').click();
  };
  drawTabs();
  if (incident.root_cause && cy.getElementById(incident.root_cause).nonempty()) {
    cy.getElementById(incident.root_cause).select();
    showNode(side, { cy, node: cy.getElementById(incident.root_cause), host, report });
  }
}
