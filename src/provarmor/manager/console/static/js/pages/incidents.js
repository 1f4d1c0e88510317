// The incident list: filters by status, severity and host; newest activity first.

import { api, apiAll } from "../api.js";
import { clear, formatTime, h, link, route, select, severityBadge, statusBadge, table } from "../dom.js";

const STATUSES = [["", "any status"], ["new", "new"], ["acknowledged", "acknowledged"], ["resolved", "resolved"], ["false_positive", "false positive"]];
const SEVERITIES = [["", "any severity"], ["critical", "critical"], ["high", "high"], ["medium", "medium"], ["low", "low"]];

/** A filter bar whose choices live in the hash route (so they survive reload and back). */
export function filterBar(path, params, filters) {
  const bar = h("form", { class: "toolbar", id: "filters" });
  for (const [name, label, options] of filters) {
    const chooser = select(options, params.get(name) ?? "", { name, "aria-label": label });
    chooser.addEventListener("change", () => {
      const values = Object.fromEntries(new FormData(bar).entries());
      window.location.hash = route(path, values);
    });
    bar.append(h("label", {}, label, chooser));
  }
  return bar;
}

export async function hostOptions(label = "any host") {
  const hosts = await api("/hosts");
  return [["", label], ...hosts.map((host) => [host.id, host.name ? `${host.name} (${host.id.slice(0, 8)})` : host.id])];
}

export async function incidentsPage(view, { params }) {
  const filter = { status: params.get("status") ?? "", severity: params.get("severity") ?? "", host: params.get("host") ?? "" };
  const [hosts, rows] = await Promise.all([hostOptions(), apiAll("/incidents", filter)]);
  rows.sort((a, b) => b.last_ts - a.last_ts || b.updated_ts - a.updated_ts);
  clear(view).append(
    h("h1", {}, "Incidents"),
    filterBar("/incidents", params, [
      ["status", "Status", STATUSES],
      ["severity", "Severity", SEVERITIES],
      ["host", "Host", hosts],
    ]),
    h(
      "div",
      { class: "panel" },
      h("p", { class: "muted" }, `${rows.length} incident${rows.length === 1 ? "" : "s"}, latest activity first.`),
      table(
        [
          ["Severity", (row) => severityBadge(row.severity), ""],
          ["Incident", (row) => link(`#/incidents/${encodeURIComponent(row.id)}`, row.title, { class: "incident-link" }), "wrap"],
          ["Host", (row) => link(`#/hosts/${encodeURIComponent(row.host_id)}`, row.host_id.slice(0, 12)), "mono"],
          ["Status", (row) => statusBadge(row.status), ""],
          ["Score", (row) => Number(row.score).toFixed(1), ""],
          ["First seen (UTC)", (row) => formatTime(row.first_ts), "nowrap"],
          ["Last activity (UTC)", (row) => formatTime(row.last_ts), "nowrap"],
        ],
        rows,
        { empty: "No incident matches.", props: { id: "incident-table" } },
      ),
    ),
  );
}
