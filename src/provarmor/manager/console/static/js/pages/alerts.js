// The alert list: filters by host and level, latest first in pages of 100; a click shows an
// alert's details, with the processes it names by program and pid.

import { api } from "../api.js";
import { chips, clear, formatTime, h, route, severityBadge, table } from "../dom.js";
import { hostLink, hostNames, nodeName } from "../names.js";
import { benignBox } from "./exceptions.js";
import { filterBar, hostOptions } from "./incidents.js";

const LEVELS = [["", "any level"], ["critical", "critical"], ["high", "high"], ["medium", "medium"], ["low", "low"], ["informational", "informational"]];
const PAGE = 100;

/** A link to the process in the explorer, named once its node is read from the graph. */
function processItem(alert, id) {
  const item = h("a", { href: route("/explorer", { host: alert.host_id, node: id }), title: id }, "process …");
  api(`/graph/nodes/${encodeURIComponent(id)}`, { params: { host: alert.host_id } })
    .then((found) => {
      item.textContent = nodeName(found.node);
    })
    .catch(() => {
      item.textContent = "a process no longer in the graph";
    });
  return item;
}

function detail(alert, hosts) {
  const list = (title, items, show = (item) => item) =>
    items?.length ? [h("h3", {}, title), h("ul", { class: "mono" }, items.slice(0, 50).map((item) => h("li", {}, show(item))))] : [];
  return h(
    "div",
    {},
    h("p", {}, alert.description || "No description."),
    h(
      "p",
      { class: "muted" },
      "rule ",
      h("span", { title: alert.rule_id, class: "rule-name" }, alert.rule_title || "untitled rule"),
      ` · detector ${alert.detector ?? "sigma"} · ${alert.count ?? 1} event(s) · host `,
      hostLink(hosts, alert.host_id),
    ),
    h("div", {}, chips(alert.tactics, "tactic"), chips(alert.techniques)),
    list("Processes", alert.process_entity_ids, (id) => processItem(alert, id)),
    list("Files", alert.file_paths),
    list("Endpoints", alert.remote_endpoints),
    h("h3", {}, "Benign?"),
    benignBox("/alerts/benign", { host_id: alert.host_id, alert_id: alert.id }),
  );
}

export async function alertsPage(view, { params }) {
  const offset = Math.max(0, Number(params.get("offset")) || 0);
  const filter = { host: params.get("host") ?? "", level: params.get("level") ?? "" };
  const [hosts, names, rows] = await Promise.all([
    hostOptions(),
    hostNames(),
    api("/alerts", { params: { ...filter, order: "newest", limit: PAGE, offset } }),
  ]);
  const shown = h("div", { class: "panel", id: "alert-detail" }, h("p", { class: "muted" }, "Click an alert for its details."));
  let selected = null;
  const pick = (alert, row) => {
    selected?.classList.remove("selected");
    selected = row;
    row.classList.add("selected");
    clear(shown).append(h("h2", {}, alert.rule_title), detail(alert, names));
  };
  const list = table(
    [
      ["Time (UTC)", (alert) => formatTime(alert.first_timestamp), "nowrap"],
      ["Level", (alert) => severityBadge(alert.level), ""],
      ["Rule", (alert) => alert.rule_title, "wrap"],
      ["Host", (alert) => hostLink(names, alert.host_id), ""],
      ["Techniques", (alert) => chips(alert.techniques), ""],
      ["Events", (alert) => String(alert.count ?? 1), ""],
    ],
    rows,
    { empty: "No alert matches.", props: { id: "alert-table" }, rowProps: () => ({ class: "clickable" }) },
  );
  [...list.tBodies[0].rows].forEach((row, index) => {
    if (rows[index]) row.addEventListener("click", () => pick(rows[index], row));
  });
  const page = (at) => route("/alerts", { ...filter, offset: at });
  clear(view).append(
    h("h1", {}, "Alerts"),
    filterBar("/alerts", params, [["host", "Host", hosts], ["level", "Level", LEVELS]]),
    h(
      "div",
      { class: "grid", id: "alerts-layout" },
      h(
        "div",
        { class: "panel scroll" },
        list,
        h(
          "div",
          { class: "pager" },
          offset > 0 ? h("a", { href: page(Math.max(0, offset - PAGE)) }, "← previous") : null,
          h("span", { class: "muted" }, `alerts ${rows.length ? offset + 1 : 0}–${offset + rows.length}, latest first`),
          rows.length === PAGE ? h("a", { href: page(offset + PAGE) }, "next →") : null,
        ),
      ),
      shown,
    ),
  );
}
