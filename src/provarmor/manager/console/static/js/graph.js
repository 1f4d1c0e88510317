// Attack and provenance graphs drawn with Cytoscape.js (vendored), laid out left to right
// (causes on the left, effects on the right) with dagre. Processes are round, files are
// rectangles, remote endpoints are diamonds; the root cause has a thick red border and the
// caption "root cause"; terminals (processes a signal named) have an orange double border.

import { basename, shorten } from "./dom.js";
import { programKnown } from "./names.js";

const STYLE = [
  {
    selector: "node",
    style: {
      label: "data(caption)",
      "text-wrap": "wrap",
      "text-max-width": "120px",
      "font-size": 10,
      "text-valign": "bottom",
      "text-margin-y": 4,
      color: "#0f172a",
      "text-background-color": "#ffffff",
      "text-background-opacity": 0.85,
      "text-background-padding": "1px",
      "background-color": "#cbd5e1",
      "border-width": 1.5,
      "border-color": "#475569",
      width: 26,
      height: 26,
    },
  },
  {
    selector: 'node[kind = "process"]',
    style: { shape: "ellipse", "background-color": "#bfdbfe", "border-color": "#1d4ed8" },
  },
  {
    selector: 'node[kind = "file"]',
    style: {
      shape: "rectangle",
      "background-color": "#fef3c7",
      "border-color": "#b45309",
      width: 22,
      height: 28,
    },
  },
  {
    selector: 'node[kind = "socket"]',
    style: { shape: "diamond", "background-color": "#d1fae5", "border-color": "#047857", width: 30, height: 30 },
  },
  { selector: 'node[role = "impacted"]', style: { "background-color": "#fde68a" } },
  {
    selector: 'node[role = "terminal"]',
    style: { "border-width": 4, "border-style": "double", "border-color": "#ea580c" },
  },
  {
    selector: 'node[role = "root_cause"]',
    style: {
      "border-width": 6,
      "border-color": "#dc2626",
      width: 40,
      height: 40,
      "font-weight": "bold",
      color: "#991b1b",
    },
  },
  {
    selector: 'node[role = "start"]',
    style: { "border-width": 5, "border-color": "#2563eb", width: 36, height: 36, "font-weight": "bold" },
  },
  {
    selector: "node[?group]",
    style: { "border-width": 3, "border-style": "double", width: 34, height: 34, "font-weight": "bold" },
  },
  { selector: "node[?context]", style: { opacity: 0.8, "border-style": "dashed" } },
  {
    selector: "node:selected",
    style: { "overlay-color": "#2563eb", "overlay-opacity": 0.25, "overlay-padding": 6 },
  },
  {
    selector: "edge",
    style: {
      width: 1.4,
      "curve-style": "bezier",
      "line-color": "#94a3b8",
      "target-arrow-color": "#94a3b8",
      "target-arrow-shape": "triangle",
      "arrow-scale": 0.8,
      label: "data(caption)",
      "font-size": 8,
      color: "#334155",
      "text-rotation": "autorotate",
      "text-background-color": "#ffffff",
      "text-background-opacity": 0.9,
      "text-background-padding": "1px",
    },
  },
  { selector: "edge[?context]", style: { "line-style": "dashed" } },
  {
    selector: "edge.near, edge:selected",
    style: { "line-color": "#2563eb", "target-arrow-color": "#2563eb", width: 2.4 },
  },
];

const LAYOUT = {
  name: "dagre",
  rankDir: "LR",
  nodeSep: 16,
  rankSep: 70,
  edgeSep: 8,
  padding: 24,
  fit: true,
  animate: false,
  nodeDimensionsIncludeLabels: true,
};

function caption(node, role) {
  let text;
  if (node.group) {
    text = node.label;
  } else if (node.kind === "process") {
    text = programKnown(node)
      ? `${basename(node.executable || node.label)} [${node.pid ?? "?"}]`
      : `pid ${node.pid ?? "?"} (program unknown)`;
  } else if (node.kind === "file") {
    text = shorten(basename(node.path || node.label || node.id), 22);
  } else {
    text = shorten(node.label || node.id, 22);
  }
  if (role === "root_cause") return `root cause\n${text}`;
  if (role === "terminal") return `${text}\n(signal)`;
  return text;
}

/** A Cytoscape node from an incident node or a graph store node (`context`: from a trace). */
export function nodeElement(node, { context = false } = {}) {
  const role = node.role || (context ? "context" : "connector");
  return {
    group: "nodes",
    data: {
      id: node.id,
      kind: node.kind,
      role,
      context,
      group: Boolean(node.group),
      caption: caption(node, role),
      record: node,
    },
  };
}

export function edgeKey(edge) {
  return `${edge.src}\u0000${edge.dst}\u0000${edge.action}`;
}

export function edgeElement(edge, { context = false } = {}) {
  const count = edge.count ?? 1;
  return {
    group: "edges",
    data: {
      id: edgeKey(edge),
      source: edge.src,
      target: edge.dst,
      action: edge.action,
      context,
      caption: count > 1 ? `${edge.action} ×${count}` : edge.action,
      record: edge,
    },
  };
}

const GROUP_OVER = 5;
const SIMILAR_OVER = 3;
const PLURAL = { file: "files", socket: "endpoints", process: "processes" };

function kept(node) {
  return node.role === "root_cause" || node.role === "terminal";
}

function nameOf(node) {
  return node.kind === "process" ? basename(node.executable || node.label) : basename(node.path || node.label);
}

/**
 * Fold what would crowd the graph into one group node that expands on click: the leaves one
 * node reaches by one action (a port scan's 60 endpoints, a directory's files) when there
 * are more than five, and the similar siblings a process started (twenty `sh` children with
 * nothing below them) when there are more than three, shown as "N × sh". The root cause
 * and signal nodes are never folded.
 */
export function foldLeaves(nodes, edges) {
  const degree = new Map();
  for (const edge of edges) {
    degree.set(edge.src, (degree.get(edge.src) ?? 0) + 1);
    degree.set(edge.dst, (degree.get(edge.dst) ?? 0) + 1);
  }
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const buckets = new Map();
  for (const edge of edges) {
    const leaf = byId.get(edge.dst);
    if (!leaf || degree.get(edge.dst) !== 1 || kept(leaf)) continue;
    const similar = leaf.kind === "process";
    const key = similar
      ? `group:${edge.src}:${edge.action}:process:${nameOf(leaf)}`
      : `group:${edge.src}:${edge.action}:${leaf.kind}`;
    if (!buckets.has(key)) {
      buckets.set(key, { src: edge.src, action: edge.action, kind: leaf.kind, similar, members: [], edges: [] });
    }
    buckets.get(key).members.push(leaf);
    buckets.get(key).edges.push(edge);
  }
  const folded = new Set();
  const groups = [];
  const groupEdges = [];
  for (const [id, bucket] of buckets) {
    if (bucket.members.length <= (bucket.similar ? SIMILAR_OVER : GROUP_OVER)) continue;
    for (const member of bucket.members) folded.add(member.id);
    const count = bucket.members.length;
    groups.push({
      id,
      kind: bucket.kind,
      role: "impacted",
      label: bucket.similar ? `${count} × ${nameOf(bucket.members[0])}` : `${count} ${PLURAL[bucket.kind] ?? "nodes"}`,
      group: { members: bucket.members, edges: bucket.edges },
    });
    groupEdges.push({
      src: bucket.src,
      dst: id,
      action: bucket.action,
      count: bucket.edges.reduce((total, edge) => total + (edge.count ?? 1), 0),
      first_ts: Math.min(...bucket.edges.map((edge) => edge.first_ts)),
      last_ts: Math.max(...bucket.edges.map((edge) => edge.last_ts)),
    });
  }
  return {
    nodes: [...nodes.filter((node) => !folded.has(node.id)), ...groups],
    edges: [...edges.filter((edge) => !folded.has(edge.dst)), ...groupEdges],
    folded,
  };
}

/** A graph in `container` over `nodes` and `edges` (edges to unknown nodes are left out). */
export function createGraph(container, { nodes, edges, context = false }) {
  const shown = foldLeaves(nodes, edges);
  const known = new Set(shown.nodes.map((node) => node.id));
  const elements = [
    ...shown.nodes.map((node) => nodeElement(node, { context })),
    ...shown.edges
      .filter((edge) => known.has(edge.src) && known.has(edge.dst))
      .map((edge) => edgeElement(edge, { context })),
  ];
  const cy = window.cytoscape({
    container,
    elements,
    style: STYLE,
    layout: { name: "preset" },
    minZoom: 0.1,
    maxZoom: 3,
    boxSelectionEnabled: false,
  });
  cy.scratch("folded", shown.folded);
  relayout(cy);
  cy.on("select", "node", (event) => {
    cy.edges().removeClass("near");
    event.target.connectedEdges().addClass("near");
  });
  cy.on("unselect", "node", () => cy.edges().removeClass("near"));
  return cy;
}

/** Replace a group node by its members. */
export function unfold(cy, group) {
  const { members, edges } = group.data("record").group;
  const folded = cy.scratch("folded");
  const context = group.data("context");
  cy.batch(() => {
    cy.remove(group);
    for (const member of members) {
      folded.delete(member.id);
      if (cy.getElementById(member.id).empty()) cy.add(nodeElement(member, { context }));
    }
    for (const edge of edges) {
      if (cy.getElementById(edgeKey(edge)).empty()) cy.add(edgeElement(edge, { context }));
    }
  });
  relayout(cy);
}

/**
 * Lay the graph out with causes before effects: left to right, or top down when that shows
 * the graph larger in its box (a process that started thirty children makes a tall column
 * left to right, a wide row top down). The ranks follow what processes did (started, wrote,
 * connected): an edge into a process from a file or endpoint it read counts only when
 * nothing a process did leads there, so reads do not pull effects before their causes.
 * `direction` is "auto", "LR" or "TB".
 */
export function relayout(cy, direction = cy.scratch("direction") ?? "auto") {
  cy.scratch("direction", direction);
  if (typeof window.cytoscapeDagre === "undefined") {
    cy.layout({ name: "breadthfirst", directed: true, padding: 24 }).run();
    return;
  }
  const fromProcess = (edge) => edge.source().data("kind") === "process";
  const reached = new Set(cy.edges().filter(fromProcess).map((edge) => edge.target().id()));
  let ranked = cy.edges().filter((edge) => fromProcess(edge) || !reached.has(edge.target().id()));
  // The root cause comes first: nothing leading into it is ranked, and layout-only edges from
  // it to every other starting node (its parent, a file it read) put it alone in the first
  // rank. They are removed again once the nodes are placed.
  const root = cy.nodes('[role = "root_cause"]');
  let anchors = cy.collection();
  if (root.nonempty()) {
    ranked = ranked.filter((edge) => !edge.target().same(root));
    const starts = cy.nodes().filter((node) => !node.same(root) && node.incomers().edges().intersection(ranked).empty());
    anchors = cy.add(
      starts.map((node) => ({ group: "edges", classes: "layout-only", data: { id: `layout:${node.id()}`, source: root.id(), target: node.id() } })),
    );
  }
  const run = (rankDir) => {
    cy.nodes().union(ranked).union(anchors).layout({ ...LAYOUT, rankDir, fit: false }).run();
    const box = cy.nodes().boundingBox();
    return Math.min(cy.width() / Math.max(box.w, 1), cy.height() / Math.max(box.h, 1));
  };
  let used = direction;
  if (direction === "auto") {
    const across = run("LR");
    used = run("TB") < across ? "LR" : "TB";
    if (used === "LR") run("LR");
  } else {
    run(direction);
  }
  cy.scratch("rankDir", used);
  cy.remove(anchors);
  fitReadable(cy);
}

const READABLE_ZOOM = 0.8;
// Below this zoom the 10 px labels read smaller than 8 px.

/**
 * Fit the graph in its box, but never smaller than labels can be read: a graph too big for
 * that is shown at the smallest readable zoom from its root cause (causes first), and the
 * rest is a pan away.
 */
export function fitReadable(cy) {
  cy.fit(undefined, LAYOUT.padding);
  if (cy.zoom() > 1.2) {
    cy.zoom(1.2);
    cy.center();
  } else if (cy.zoom() < READABLE_ZOOM) {
    const root = cy.nodes('[role = "root_cause"]');
    const start = root.nonempty() ? root : cy.nodes().first();
    cy.zoom(READABLE_ZOOM);
    const at = start.renderedPosition();
    const margin = LAYOUT.padding + 40;
    const across = cy.scratch("rankDir") !== "TB";
    cy.panBy({
      x: (across ? margin : cy.width() / 2) - at.x,
      y: (across ? cy.height() / 2 : margin) - at.y,
    });
  }
}

/** Add a trace's nodes and edges (from /graph/trace) that the graph does not show yet. */
export function addTrace(cy, trace) {
  let nodes = 0;
  let edges = 0;
  cy.batch(() => {
    const folded = cy.scratch("folded") ?? new Set();
    for (const node of trace.nodes ?? []) {
      if (cy.getElementById(node.id).nonempty() || folded.has(node.id)) continue;
      cy.add(nodeElement(node, { context: true }));
      nodes += 1;
    }
    for (const edge of trace.edges ?? []) {
      if (cy.getElementById(edgeKey(edge)).nonempty()) continue;
      if (cy.getElementById(edge.src).empty() || cy.getElementById(edge.dst).empty()) continue;
      cy.add(edgeElement(edge, { context: true }));
      edges += 1;
    }
  });
  if (nodes || edges) relayout(cy);
  return { nodes, edges };
}

/** Select and centre on a node; false when the graph does not hold it. */
export function focusNode(cy, id) {
  const node = cy.getElementById(id);
  if (node.empty()) return false;
  cy.elements().unselect();
  node.select();
  cy.animate({ center: { eles: node }, zoom: Math.max(cy.zoom(), 1) }, { duration: 200 });
  return true;
}

export function legend() {
  const item = (label, cls) => {
    const span = document.createElement("span");
    span.className = `legend-item ${cls}`;
    span.textContent = label;
    return span;
  };
  const box = document.createElement("div");
  box.className = "graph-legend";
  box.append(
    item("● process", "kind-process"),
    item("■ file", "kind-file"),
    item("◆ endpoint", "kind-socket"),
    item("red border: root cause", "role-root"),
    item("orange: signal", "role-terminal"),
    item("blue: trace start", "role-start"),
    item("dashed: added by a trace", "role-context"),
  );
  return box;
}
