// Building the page safely and formatting values. Data never goes through innerHTML: text is
// always added as text nodes, attributes with setAttribute, handlers with addEventListener.

/** An element: h("a", {href: "#/x", class: "c", on: {click: f}}, "text", child, [more]). */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  let value;
  for (const [key, given] of Object.entries(props ?? {})) {
    if (given === undefined || given === null || given === false) continue;
    if (key === "class") element.className = given;
    else if (key === "on") {
      for (const [name, handler] of Object.entries(given)) element.addEventListener(name, handler);
    } else if (key === "value") value = given;
    else if (key === "dataset") Object.assign(element.dataset, given);
    else element.setAttribute(key, given === true ? "" : String(given));
  }
  append(element, children);
  if (value !== undefined) element.value = String(value);
  return element;
}

export function append(element, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

/** A <select> with (value, label) options, the current one chosen. */
export function select(options, current, props = {}) {
  return h(
    "select",
    { ...props, value: current ?? "" },
    options.map(([value, label]) => h("option", { value }, label)),
  );
}

/** A table: columns are [title, cell(row) -> node|string, className?]. */
export function table(columns, rows, { rowProps, empty = "Nothing to show.", props = {} } = {}) {
  const head = h("thead", {}, h("tr", {}, columns.map(([title, , cls]) => h("th", { class: cls }, title))));
  const body = h("tbody");
  for (const row of rows) {
    const extra = rowProps ? rowProps(row) : {};
    body.append(
      h("tr", extra, columns.map(([, cell, cls]) => h("td", { class: cls }, cell(row)))),
    );
  }
  if (rows.length === 0) {
    body.append(h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, empty)));
  }
  return h("table", props, head, body);
}

export function badge(text, cls = "") {
  return h("span", { class: `badge ${cls}` }, text);
}

export function severityBadge(level) {
  return badge(level || "unknown", `sev-${level || "none"}`);
}

export function statusBadge(status) {
  return badge(status, `st-${status}`);
}

export function chips(refs, cls = "") {
  return (refs ?? []).map((ref) => h("span", { class: `chip ${cls}`, title: ref.name }, ref.id));
}

// Times are nanoseconds since the epoch; shown in UTC. Millisecond precision is all a float
// keeps of a nanosecond count, and all an analyst needs here.
export function toDate(ns) {
  return new Date(Number(ns) / 1e6);
}

export function formatTime(ns) {
  if (!ns) return "–";
  const text = toDate(ns).toISOString();
  return `${text.slice(0, 10)} ${text.slice(11, 23)}`;
}

export function formatClock(ns) {
  if (!ns) return "–";
  return toDate(ns).toISOString().slice(11, 23);
}

export function formatAgo(ns) {
  if (!ns) return "never";
  const seconds = Math.round((Date.now() - Number(ns) / 1e6) / 1000);
  if (seconds < 0) return "just now";
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 129600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/** Keep the end of a long text (paths, command lines) within `limit` characters. */
export function shorten(text, limit = 60) {
  const value = String(text ?? "");
  return value.length <= limit ? value : `…${value.slice(value.length - limit + 1)}`;
}

export function basename(path) {
  const value = String(path ?? "");
  const cut = value.lastIndexOf("/");
  return cut >= 0 && cut < value.length - 1 ? value.slice(cut + 1) : value;
}

export function link(hash, text, props = {}) {
  return h("a", { ...props, href: hash }, text);
}

/** A hash route with query parameters, empty ones left out. */
export function route(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, String(value));
  }
  const text = query.toString();
  return `#${path}${text ? `?${text}` : ""}`;
}

export function sum(values) {
  return values.reduce((total, value) => total + (Number(value) || 0), 0);
}
