// The alert list: filters by host and level, pages of 100, a click shows an alert's details.

import { api } from "../api.js";
import { chips, clear, formatTime, h, route, severityBadge, table } from "../dom.js";
import { benignBox } from "./exceptions.js";
import { filterBar, hostOptions } from "./incidents.js";

const LEVELS = [["", "any level"], ["critical", "critical"], ["high", "high"], ["medium", "medium"], ["low", "low"], ["informational", "informational"]];
const PAGE = 100;

function detail(alert) {
  const list = (title, items, explore) =>
    items?.length
      ? [h("h3", {}, title), h("ul", { class: "mono" }, items.slice(0, 50).map((item) => h("li", {}, explore ? h("a", { href: explore(item) }, item) : item)))]
      : [];
  return h(
    "div",
    {},
    h("p", {}, alert.description || "No description."),
    h("p", { class: "muted" }, `rule ${alert.rule_id} · detector ${alert.detector ?? "sigma"} · ${alert.count ?? 1} event(s)`),
    h("div", {}, chips(alert.tactics, "tactic"), chips(alert.techniques)),
    list("Processes", alert.process_entity_ids, (id) => route("/explorer", { host: alert.host_id, node: id })),
    list("Files", alert.file_paths),
    list("Endpoints", alert.remote_endpoints),
    h("h3", {}, "Benign?"),
    benignBox("/alerts/benign", { host_id: alert.host_id, alert_id: alert.id }),
  );
}

export async function alertsPage(view, { params }) {
  const offset = Math.max(0, Number(params.get("offset")) || 0);
  const filter = { host: params.get("host") ?? "", level: params.get("level") ?? "" };
  const [hosts, rows] = await Promise.all([hostOptions(), api("/alerts", { params: { ...filter, limit: PAGE, offset } })]);
  const shown = h("div", { class: "panel", id: "alert-detail" }, h("p", { class: "muted" }, "Click an alert for its details."));
  let selected = null;
  const pick = (alert, row) => {
    selected?.classList.remove("selected");
    selected = row;
    row.classList.add("selected");
    clear(shown).append(h("h2", {}, alert.rule_title), detail(alert));
  };
  const list = table(
    [
      ["Time (UTC)", (alert) => formatTime(alert.first_timestamp), "nowrap"],
      ["Level", (alert) => severityBadge(alert.level), ""],
      ["Rule", (alert) => alert.rule_title, "wrap"],
      ["Host", (alert) => String(alert.host_id ?? "").slice(0, 12), "mono"],
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
          h("span", { class: "muted" }, `alerts ${rows.length ? offset + 1 : 0}–${offset + rows.length}, oldest first`),
          rows.length === PAGE ? h("a", { href: page(offset + PAGE) }, "next →") : null,
        ),
      ),
      shown,
    ),
  );
}
