// Hosts: the list, and one host's anomaly-model learning state, agents (sensor, health,
// counters, drops), response actions, incidents and latest alerts.

import { actionsPanel } from "../actions.js";
import { api, apiAll } from "../api.js";
import { badge, clear, formatAgo, formatTime, h, link, route, severityBadge, statusBadge, table } from "../dom.js";
import { healthBadge, hostHealth } from "./dashboard.js";

export async function hostsPage(view) {
  const hosts = await api("/hosts");
  clear(view).append(
    h("h1", {}, "Hosts"),
    h(
      "div",
      { class: "panel" },
      table(
        [
          ["Host", (host) => link(`#/hosts/${encodeURIComponent(host.id)}`, host.name || host.id), ""],
          ["Id", (host) => host.id, "mono"],
          ["Health", (host) => healthBadge(hostHealth(host)), ""],
          ["Agents", (host) => String(host.agents?.length ?? 0), ""],
          ["Drops", (host) => String(hostHealth(host).drops), ""],
          ["Events", (host) => String(host.events), ""],
          ["Alerts", (host) => String(host.alerts), ""],
          ["Incidents", (host) => String(host.incidents), ""],
          ["Anomaly model", (host) => learningBadge(host.learning), ""],
          ["Last seen", (host) => formatAgo(host.last_seen_ns), "nowrap"],
        ],
        hosts,
        { empty: "No host has enrolled yet: create an enrolment token and start an agent." },
      ),
    ),
  );
}

// Seconds as "5 h 02 min", "3 min 10 s", "12 s".
export function formatDuration(seconds) {
  const whole = Math.max(Math.floor(seconds || 0), 0);
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = whole % 60;
  if (hours) return `${hours} h ${String(minutes).padStart(2, "0")} min`;
  if (minutes) return `${minutes} min ${String(rest).padStart(2, "0")} s`;
  return `${rest} s`;
}

function learningBadge(learning) {
  if (!learning) return h("span", { class: "muted" }, "operator's model, or off");
  if (learning.phase === "learning") {
    if (!learning.window_start_ns) return badge("learning from the first event", "st-acknowledged");
    return badge(`learning, ${formatDuration(learning.time_left_seconds)} left`, "st-acknowledged");
  }
  return badge(`enabled, v${learning.model_version}`, "ok");
}

function learningPanel(learning) {
  if (!learning) {
    return h(
      "div",
      { class: "panel", id: "learning" },
      h("h2", {}, "Anomaly model"),
      h("p", { class: "muted" }, "This manager runs an operator's model for every host (or learning mode is off)."),
    );
  }
  const learningNow = learning.phase === "learning";
  let window = `${formatDuration(learning.time_left_seconds)} left of ${formatDuration(learning.window_seconds)} (event time)`;
  if (!learning.window_start_ns) window = `${formatDuration(learning.window_seconds)} (event time), from the host's first event`;
  if (!learningNow && !learning.window_end_ns) window = "relearning is off";
  const rows = [
    ["Phase", learningBadge(learning)],
    [learningNow ? "Learning window" : "Next version", window],
    ["Seen in this window", `${learning.events} events, ${learning.processes} processes`],
  ];
  if (learning.waiting) rows.push(["Window extended", learning.waiting]);
  if (learning.model_version) {
    rows.push(
      ["Model version", `${learning.model_version} (kept: ${(learning.versions ?? []).join(", ") || "–"})`],
      ["Trained at", `${learning.trained_wall} (event time ${formatTime(learning.trained_at_ns)})`],
      ["Learned from", `${formatTime(learning.learned_window[0])} – ${formatTime(learning.learned_window[1])}`],
      ["Threshold", `${Number(learning.threshold).toFixed(3)}: ${learning.threshold_source}`],
    );
  }
  const dropped = Object.entries(learning.dropped ?? {});
  rows.push(["Dropped", dropped.length ? dropped.map(([key, value]) => `${key}: ${value}`).join(", ") : "nothing"]);
  return h(
    "div",
    { class: "panel", id: "learning" },
    h("h2", {}, "Anomaly model"),
    table(
      [
        ["", (row) => row[0], "nowrap"],
        ["", (row) => row[1], "wrap"],
      ],
      rows,
    ),
  );
}

function counters(values) {
  const entries = Object.entries(values ?? {});
  if (!entries.length) return h("span", { class: "muted" }, "none");
  return h("ul", { class: "mono" }, entries.map(([key, value]) => h("li", {}, `${key}: ${value}`)));
}

function agentPanel(agent) {
  const status = agent.status;
  return h(
    "div",
    { class: "panel" },
    h("h2", {}, `Agent ${agent.id}`),
    h(
      "p",
      { class: "muted" },
      `hostname ${agent.hostname || "–"} · enrolled ${formatTime(agent.enrolled_ns)} · last seen ${formatAgo(agent.last_seen_ns)} · acknowledged batch ${agent.acked_sequence}`,
    ),
    status
      ? h(
          "div",
          { class: "grid two" },
          h(
            "div",
            {},
            h("p", {}, healthBadge({ reported: true, healthy: status.healthy !== false }), ` sensor ${status.sensor || "–"}, reported ${formatAgo(agent.status_ns)}`),
            status.blind_reason ? h("p", { class: "notice" }, status.blind_reason) : null,
            h("h3", {}, "Drops"),
            counters(status.drops),
          ),
          h("div", {}, h("h3", {}, "Counters"), counters(status.counters)),
        )
      : h("p", { class: "muted" }, "This agent has not reported its status yet."),
  );
}

export async function hostPage(view, { args }) {
  const id = args[0];
  const [host, incidents, alerts] = await Promise.all([
    api(`/hosts/${encodeURIComponent(id)}`),
    apiAll("/incidents", { host: id }),
    api("/alerts", { params: { host: id, limit: 1000 } }),
  ]);
  incidents.sort((a, b) => b.last_ts - a.last_ts);
  const latest = alerts.slice(-20).reverse();
  clear(view).append(
    h("h1", {}, host.name || host.id),
    h(
      "p",
      { class: "muted" },
      `${host.id} · ${host.events} events · ${host.alerts} alerts · ${host.incidents} incidents · last seen ${formatAgo(host.last_seen_ns)} · `,
      link(route("/explorer", { host: host.id }), "explore events"),
    ),
    learningPanel(host.learning),
    ...(host.agents ?? []).map(agentPanel),
    actionsPanel({ query: { host_id: host.id }, hostId: host.id }),
    h(
      "div",
      { class: "grid two" },
      h(
        "div",
        { class: "panel" },
        h("h2", {}, "Incidents"),
        table(
          [
            ["Severity", (row) => severityBadge(row.severity), ""],
            ["Incident", (row) => link(`#/incidents/${encodeURIComponent(row.id)}`, row.title), "wrap"],
            ["Status", (row) => statusBadge(row.status), ""],
            ["Last activity", (row) => formatTime(row.last_ts), "nowrap"],
          ],
          incidents,
          { empty: "No incidents on this host." },
        ),
      ),
      h(
        "div",
        { class: "panel" },
        h("h2", {}, "Latest alerts"),
        table(
          [
            ["Time", (alert) => formatTime(alert.first_timestamp), "nowrap"],
            ["Level", (alert) => severityBadge(alert.level), ""],
            ["Rule", (alert) => alert.rule_title, "wrap"],
          ],
          latest,
          { empty: "No alerts on this host." },
        ),
        h("p", {}, link(route("/alerts", { host: host.id }), "All alerts of this host")),
      ),
    ),
  );
}
