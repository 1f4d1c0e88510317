// The dashboard: hosts and sensor health, incidents by status and severity, and alerts and
// incidents over time.

import { api, apiAll } from "../api.js";
import { drawTimeline } from "../chart.js";
import {
  badge,
  clear,
  formatAgo,
  formatTime,
  h,
  link,
  route,
  select,
  severityBadge,
  statusBadge,
  sum,
  table,
} from "../dom.js";

const SEVERITIES = ["critical", "high", "medium", "low"];
const BUCKETS = [
  ["minute", "per minute"],
  ["hour", "per hour"],
  ["day", "per day"],
];

function card(label, value, detail, hash) {
  const body = [h("div", { class: "value" }, String(value)), h("div", { class: "label" }, label)];
  if (detail) body.push(h("div", { class: "detail" }, detail));
  return h("div", { class: "panel card" }, hash ? link(hash, body) : body);
}

/** Health of a host: its agents' last reports (healthy flag, drop counters). */
export function hostHealth(host) {
  const statuses = (host.agents ?? []).map((agent) => agent.status).filter(Boolean);
  const drops = sum(statuses.flatMap((status) => Object.values(status.drops ?? {})));
  const healthy = statuses.length > 0 && statuses.every((status) => status.healthy !== false);
  return { reported: statuses.length > 0, healthy, drops, statuses };
}

export function healthBadge(health) {
  if (!health.reported) return badge("no report");
  return health.healthy ? badge("healthy", "ok") : badge("unhealthy", "bad");
}

function countBy(items, key) {
  const counts = {};
  for (const item of items) counts[item[key]] = (counts[item[key]] ?? 0) + 1;
  return counts;
}

function hostTable(hosts) {
  return table(
    [
      ["Host", (host) => link(`#/hosts/${encodeURIComponent(host.id)}`, host.name || host.id), ""],
      ["Health", (host) => healthBadge(hostHealth(host)), ""],
      ["Sensor", (host) => hostHealth(host).statuses.map((status) => status.sensor).join(", ") || "–", ""],
      ["Drops", (host) => String(hostHealth(host).drops), ""],
      ["Events", (host) => String(host.events), ""],
      ["Alerts", (host) => String(host.alerts), ""],
      ["Last seen", (host) => formatAgo(host.last_seen_ns), "nowrap"],
    ],
    hosts,
    { empty: "No host has enrolled yet." },
  );
}

async function timelinePanel(bucket) {
  const canvas = h("canvas", { class: "chart", id: "timeline-chart", role: "img", "aria-label": "Alerts and incidents over time" });
  const chooser = select(BUCKETS, bucket, { "aria-label": "Bucket" });
  chooser.addEventListener("change", () => {
    window.location.hash = route("/", { bucket: chooser.value });
  });
  const rows = await api("/stats/timeline", { params: { bucket } });
  const panel = h(
    "div",
    { class: "panel" },
    h(
      "div",
      { class: "toolbar" },
      h("h2", {}, "Alerts and incidents over time"),
      chooser,
      h(
        "span",
        { class: "legend" },
        h("span", {}, h("span", { class: "swatch alerts" }), `alerts (${sum(rows.map((row) => row.alerts))})`),
        h("span", {}, h("span", { class: "swatch incidents" }), `incidents (${sum(rows.map((row) => row.incidents))})`),
      ),
    ),
    canvas,
  );
  return { panel, draw: () => drawTimeline(canvas, rows) };
}

export async function dashboardPage(view, { params, onLeave }) {
  const bucket = params.get("bucket") || "hour";
  const [hosts, incidents, chart] = await Promise.all([
    api("/hosts"),
    apiAll("/incidents"),
    timelinePanel(bucket),
  ]);
  const byStatus = countBy(incidents, "status");
  const bySeverity = countBy(incidents, "severity");
  const healths = hosts.map(hostHealth);
  const unhealthy = healths.filter((health) => health.reported && !health.healthy).length;
  const recent = [...incidents].sort((a, b) => b.last_ts - a.last_ts).slice(0, 6);
  clear(view).append(
    h("h1", {}, "Dashboard"),
    h(
      "div",
      { class: "grid cards" },
      card("hosts", hosts.length, `${unhealthy} unhealthy · ${sum(healths.map((x) => x.drops))} events dropped`, "#/hosts"),
      card("new incidents", byStatus.new ?? 0, `${byStatus.acknowledged ?? 0} acknowledged · ${byStatus.resolved ?? 0} resolved`, route("/incidents", { status: "new" })),
      ...SEVERITIES.map((level) => card(`${level} incidents`, bySeverity[level] ?? 0, "", route("/incidents", { severity: level }))),
      card("alerts", sum(hosts.map((host) => host.alerts)), `${sum(hosts.map((host) => host.events))} events stored`, "#/alerts"),
    ),
    h("div", { class: "panel", id: "dashboard-chart" }),
    h(
      "div",
      { class: "grid two" },
      h("div", { class: "panel" }, h("h2", {}, "Sensor health"), hostTable(hosts)),
      h(
        "div",
        { class: "panel" },
        h("h2", {}, "Latest incidents"),
        table(
          [
            ["Severity", (row) => severityBadge(row.severity), ""],
            ["Incident", (row) => link(`#/incidents/${encodeURIComponent(row.id)}`, row.title), ""],
            ["Status", (row) => statusBadge(row.status), ""],
            ["Last activity", (row) => formatTime(row.last_ts), "nowrap"],
          ],
          recent,
          { empty: "No incidents." },
        ),
      ),
    ),
  );
  view.querySelector("#dashboard-chart").replaceWith(chart.panel);
  chart.draw();
  const redraw = () => chart.draw();
  window.addEventListener("resize", redraw);
  onLeave(() => window.removeEventListener("resize", redraw));
}
