// What the console calls things: hosts by their hostname (the id on hover), processes by
// their program and pid, and never a bare entity id where a name can be found.

import { api } from "./api.js";
import { basename, h, link } from "./dom.js";

/** The hosts the manager knows, as a Map from id to hostname (fetched once per page). */
export async function hostNames() {
  const hosts = await api("/hosts");
  return new Map(hosts.map((host) => [host.id, host.name || host.id]));
}

/** A link to a host page that reads as its hostname, with the host id on hover. */
export function hostLink(names, id) {
  const name = names.get(id) || id || "–";
  return link(`#/hosts/${encodeURIComponent(id)}`, name, { title: `host id ${id}`, class: "host-name" });
}

/** Whether the sensor saw this process's program (else the graph knows it only as "pid N"). */
export function programKnown(node) {
  return Boolean(node.executable) || !String(node.label ?? "").startsWith("pid ");
}

/** "curl (pid 22438)", or "pid 17702 (program unknown)" when the program was never seen. */
export function processName(node) {
  const pid = node.pid ?? "?";
  if (!programKnown(node)) return `pid ${pid} (program unknown)`;
  return `${basename(node.executable || node.label)} (pid ${pid})`;
}

/** A name for any incident or graph node. */
export function nodeName(node) {
  if (node.kind === "process") return processName(node);
  return node.path || node.label || "unnamed";
}

/** A text whose entity id shows on hover only. */
export function named(text, id) {
  return h("span", { title: id }, text);
}
