// Response actions of a host or an incident: the list (state, who, result) with the next
// step each allows (approve, execute, undo), and a form to propose one.

import { api } from "./api.js";
import { badge, clear, formatTime, h, select, table } from "./dom.js";

const KINDS = [
  ["kill", "kill a process tree"],
  ["suspend", "suspend a process tree"],
  ["quarantine", "quarantine a file"],
  ["block", "block a remote address"],
  ["isolate", "isolate the host"],
  ["lock_user", "lock a user"],
  ["revert_file", "revert a persistence file"],
];
const HINTS = {
  kill: "PID ENTITY_ID (pick a process of the story)",
  suspend: "PID ENTITY_ID (pick a process of the story)",
  quarantine: "/path/of/the/file",
  block: "IP or IP:PORT",
  isolate: "(the host itself)",
  lock_user: "account name or uid",
  revert_file: "/home/USER/.bashrc (back to the agent's baseline)",
};
const STATE_CLASS = {
  done: "ok",
  undone: "ok",
  failed: "error",
  refused: "error",
  timed_out: "error",
  expired: "muted",
};

function describe(target) {
  switch (target.type) {
    case "process":
      return `pid ${target.pid} ${target.executable || target.entity_id}`;
    case "file":
    case "persistence_file":
      return target.path;
    case "network":
      return target.port ? `${target.ip}:${target.port}` : target.ip;
    case "user":
      return `user ${target.name}`;
    default:
      return "the host";
  }
}

/** The typed target of ``text`` for ``kind``; throws with a message on bad input. */
export function parseTarget(kind, text) {
  const value = text.trim();
  if (kind === "isolate") return { type: "host" };
  if (!value) throw new Error("name a target");
  if (kind === "kill" || kind === "suspend") {
    const [pid, entity, ...rest] = value.split(/\s+/);
    if (!/^\d+$/.test(pid) || !entity) throw new Error("a process is PID ENTITY_ID");
    return { type: "process", pid: Number(pid), entity_id: entity, executable: rest.join(" ") };
  }
  if (kind === "quarantine") return { type: "file", path: value };
  if (kind === "lock_user") return { type: "user", name: value };
  if (kind === "revert_file") return { type: "persistence_file", path: value };
  const bracketed = /^\[(.+)\](?::(\d+))?$/.exec(value);
  if (bracketed) return { type: "network", ip: bracketed[1], port: Number(bracketed[2] ?? 0) };
  const parts = value.split(":");
  if (parts.length === 2) return { type: "network", ip: parts[0], port: Number(parts[1]) };
  return { type: "network", ip: value, port: 0 };
}

function suggestions(kind, story) {
  if (!story) return [];
  if (kind === "kill" || kind === "suspend") {
    return (story.nodes ?? [])
      .filter((node) => node.kind === "process" && node.pid)
      .map((node) => `${node.pid} ${node.id} ${node.executable || node.label || ""}`.trim());
  }
  if (kind === "quarantine" || kind === "revert_file") return story.impacted_files ?? [];
  if (kind === "block") return story.contacted_endpoints ?? [];
  return [];
}

/** The panel: ``query`` is {host_id} or {incident_id}; ``story`` (an incident) offers its
 * processes, files and endpoints as targets. */
export function actionsPanel({ query, hostId, story }) {
  const panel = h("div", { class: "panel", id: "actions" }, h("h2", {}, "Response actions"));
  const body = h("div", {});
  const message = h("span", { class: "flash", role: "status", id: "action-message" });
  const flash = (text, error = false) => {
    message.textContent = text;
    message.className = error ? "flash error" : "flash";
  };
  const step = (action, name) =>
    h(
      "button",
      {
        type: "button",
        dataset: { step: name, action: action.id },
        on: {
          click: async () => {
            try {
              await api(`/actions/${encodeURIComponent(action.id)}/${name}`, { method: "POST", body: {} });
              flash(`${action.kind}: ${name} sent`);
            } catch (error) {
              flash(error.message, true);
            }
            await draw();
          },
        },
      },
      name,
    );
  const steps = (action) => {
    const next = [];
    if (action.state === "proposed" && action.needs_approval) next.push(step(action, "approve"));
    if ((action.state === "proposed" && !action.needs_approval) || action.state === "approved") {
      next.push(step(action, "execute"));
    }
    if (action.state === "done" && action.undoable) next.push(step(action, "undo"));
    return next;
  };
  const draw = async () => {
    const { actions } = await api("/actions", { params: { ...query, limit: 1000 } });
    clear(body).append(
      table(
        [
          ["Proposed", (a) => formatTime(a.created_ns), "nowrap"],
          ["Action", (a) => a.kind, ""],
          ["Target", (a) => describe(a.target), "mono wrap"],
          ["State", (a) => badge(a.state + (a.needs_approval && a.state === "proposed" ? " (needs an admin)" : ""), STATE_CLASS[a.state] ?? ""), ""],
          ["By", (a) => [a.proposed_by, a.approved_by ? ` · approved ${a.approved_by}` : ""].join(""), "mono"],
          ["Result", (a) => a.result?.message ?? "", "wrap"],
          ["", steps, "nowrap"],
        ],
        actions,
        { empty: "No response action yet.", rowProps: (a) => ({ dataset: { action: a.id, state: a.state } }) },
      ),
    );
  };
  const kind = select(KINDS, "kill", { id: "action-kind", "aria-label": "Action" });
  const choices = h("datalist", { id: "action-targets" });
  const target = h("input", { id: "action-target", list: "action-targets", size: 48 });
  const reason = h("input", { id: "action-reason", placeholder: "why", size: 24, maxlength: 2000 });
  const refresh = () => {
    target.placeholder = HINTS[kind.value];
    target.disabled = kind.value === "isolate";
    clear(choices).append(...suggestions(kind.value, story).map((value) => h("option", { value })));
  };
  kind.addEventListener("change", refresh);
  refresh();
  const form = h(
    "form",
    { class: "pager", id: "action-form" },
    kind,
    target,
    choices,
    reason,
    h("button", { type: "submit", class: "primary" }, "Propose"),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const proposal = {
        kind: kind.value,
        target: parseTarget(kind.value, target.value),
        host_id: hostId,
        incident_id: query.incident_id ?? "",
        reason: reason.value,
      };
      const made = await api("/actions", { method: "POST", body: proposal });
      flash(`proposed ${made.kind} (${made.id})`);
      target.value = "";
    } catch (error) {
      flash(error.message, true);
    }
    await draw();
  });
  panel.append(body, form);
  draw().catch((error) => flash(error.message, true));
  return panel;
}
