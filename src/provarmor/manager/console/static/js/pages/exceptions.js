// Analyst feedback: proposing exceptions from an incident or an alert marked benign, reviewing
// and confirming them, and the list of exceptions with their hits, actions and audit trail.

import { api } from "../api.js";
import { clear, formatTime, h, table } from "../dom.js";

const FIELDS = [
  ["rules", "Rules"],
  ["executables", "Acting program"],
  ["lineage", "Lineage (nearest ancestor first)"],
  ["paths", "Object paths"],
  ["endpoints", "Remote endpoints"],
  ["users", "Users"],
];

const lines = (text) => text.split("\n").map((line) => line.trim()).filter(Boolean);

/** An editable card for one proposed exception; confirm saves the edits, then confirms. */
function proposalCard(exception, titles) {
  const inputs = {};
  const message = h("span", { class: "flash", role: "status" });
  const scope = h(
    "select",
    { "aria-label": "Scope", value: exception.scope },
    h("option", { value: "host" }, `this host (${String(exception.host_id || "").slice(0, 12)})`),
    h("option", { value: "fleet" }, "the whole fleet"),
  );
  const hostId = exception.host_id;
  const reason = h("input", { type: "text", class: "reason", value: exception.reason, "aria-label": "Why" });
  const rows = FIELDS.map(([key, title]) => {
    inputs[key] = h("textarea", { rows: Math.max(1, exception[key].length), "data-field": key }, exception[key].join("\n"));
    return h("label", { class: "field" }, h("span", {}, title), inputs[key]);
  });
  const edits = () => {
    const body = { reason: reason.value || exception.reason, scope: scope.value };
    body.host_id = scope.value === "host" ? hostId : "";
    for (const [key] of FIELDS) body[key] = lines(inputs[key].value);
    return body;
  };
  const act = async (confirm) => {
    message.className = "flash";
    message.textContent = "";
    try {
      const body = edits();
      const changed =
        body.scope !== exception.scope || FIELDS.some(([key]) => body[key].join("\n") !== exception[key].join("\n"));
      if (changed || !confirm) await api(`/exceptions/${exception.id}`, { method: "PATCH", body });
      if (confirm) await api(`/exceptions/${exception.id}/confirm`, { method: "POST", body: { reason: reason.value } });
      message.textContent = confirm ? "confirmed: applies to the next events" : "saved";
    } catch (error) {
      message.className = "flash error";
      message.textContent = `${error.field ? `${error.field}: ` : ""}${error.message}`;
    }
  };
  return h(
    "div",
    { class: "panel exception-card", dataset: { exception: exception.id } },
    h("h2", {}, `Exception ${exception.id} · ${exception.rules.map((key) => titles.get(key) ?? key).join(", ")}`),
    h("div", { class: "exception-form" }, h("label", { class: "field" }, h("span", {}, "Scope"), scope), rows, h("label", { class: "field" }, h("span", {}, "Why"), reason)),
    h(
      "div",
      { class: "pager" },
      h("button", { type: "button", class: "primary confirm", on: { click: () => act(true) } }, "Confirm"),
      h("button", { type: "button", on: { click: () => act(false) } }, "Save proposal"),
      message,
    ),
  );
}

/** The "mark benign" box: a reason and a scope, then the proposals to review. */
export function benignBox(path, extra = {}, onMarked) {
  const reason = h("input", { type: "text", id: "benign-reason", placeholder: "Why is this benign?", "aria-label": "Why is this benign" });
  const scope = h("select", { id: "benign-scope", "aria-label": "Scope" }, h("option", { value: "host" }, "this host"), h("option", { value: "fleet" }, "the whole fleet"));
  const message = h("span", { class: "flash", role: "status" });
  const proposals = h("div", { id: "proposals" });
  const mark = async () => {
    message.className = "flash";
    message.textContent = "";
    try {
      const answer = await api(path, { method: "POST", body: { ...extra, reason: reason.value, scope: scope.value } });
      const titles = new Map((await api("/rules")).map((rule) => [rule.key, rule.title]));
      message.textContent = `proposed ${answer.exceptions.length} exception(s): review and confirm`;
      clear(proposals).append(...answer.exceptions.map((exception) => proposalCard(exception, titles)));
      onMarked?.(answer);
    } catch (error) {
      message.className = "flash error";
      message.textContent = `${error.field ? `${error.field}: ` : ""}${error.message}`;
    }
  };
  return h(
    "div",
    { class: "benign" },
    h("div", { class: "toolbar" }, reason, scope, h("button", { type: "button", id: "mark-benign", on: { click: mark } }, "Mark benign"), message),
    proposals,
  );
}

function actions(exception, redraw) {
  const run = async (action) => {
    const reason = window.prompt(`Why ${action} ${exception.id}?`) ?? "";
    if (action === "delete") await api(`/exceptions/${exception.id}`, { method: "DELETE", params: { reason } });
    else await api(`/exceptions/${exception.id}/${action}`, { method: "POST", body: { reason } });
    await redraw();
  };
  const button = (action) => h("button", { type: "button", dataset: { action }, on: { click: () => run(action).catch((error) => window.alert(error.message)) } }, action);
  const moves = { proposed: ["confirm"], active: ["disable"], disabled: ["enable"] }[exception.state] ?? [];
  return h("span", { class: "buttons" }, moves.map(button), button("delete"));
}

const joined = (values) => (values?.length ? values.join("\n") : "–");

export async function exceptionsPage(view) {
  const draw = async () => {
    const [rows, audit, rules] = await Promise.all([api("/exceptions"), api("/exceptions/audit"), api("/rules")]);
    const titles = new Map(rules.map((rule) => [rule.key, rule.title]));
    const ruleNames = (row) => row.rules.map((key) => h("div", { title: key }, titles.get(key) ?? key));
    clear(view).append(
      h("h1", {}, "Exceptions"),
      h("p", { class: "muted" }, "Confirmed exceptions filter the alerts of every host's next events. ", h("code", {}, "GET /api/v1/exceptions/export"), " gives them as YAML for ", h("code", {}, "provarmor detect --suppressions"), "."),
      h(
        "div",
        { class: "panel scroll" },
        table(
          [
            ["Id", (row) => row.id, "mono nowrap"],
            ["State", (row) => h("span", { class: `badge ex-${row.state}` }, row.state), ""],
            ["Scope", (row) => (row.scope === "host" ? `host ${row.host_id.slice(0, 12)}` : "fleet"), "nowrap"],
            ["Rule", ruleNames, "wrap"],
            ["Program", (row) => joined(row.executables), "mono wrap pre"],
            ["Lineage", (row) => joined(row.lineage), "mono wrap pre"],
            ["Object", (row) => joined([...row.paths, ...row.endpoints]), "mono wrap pre"],
            ["Hits", (row) => String(row.hits), "hits"],
            ["Last hit", (row) => formatTime(row.last_hit_ns), "nowrap"],
            ["Why", (row) => row.reason, "wrap"],
            ["", (row) => actions(row, draw), "nowrap"],
          ],
          rows,
          { empty: "No exceptions yet: mark an incident or an alert benign.", props: { id: "exception-table" } },
        ),
      ),
      h("h2", {}, "Audit trail"),
      h(
        "div",
        { class: "panel scroll audit" },
        table(
          [
            ["Time (UTC)", (entry) => formatTime(entry.ts_ns), "nowrap"],
            ["Exception", (entry) => entry.exception_id, "mono nowrap"],
            ["Action", (entry) => entry.action, ""],
            ["By", (entry) => entry.author, "mono"],
            ["Why", (entry) => entry.reason, "wrap"],
          ],
          [...audit].reverse(),
          { empty: "Nothing yet.", props: { id: "audit-table" } },
        ),
      ),
    );
  };
  await draw();
}
