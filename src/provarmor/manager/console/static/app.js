// The ProvArmor console: a single-page app over the manager's /api/v1, with hash routes.
// Sign-in keeps the pasted API token in sessionStorage; every API call sends it as a Bearer
// token, and a 401 brings the user back here to sign in again.

import { ApiError, api, session } from "./js/api.js";
import { clear, h } from "./js/dom.js";
import { alertsPage } from "./js/pages/alerts.js";
import { dashboardPage } from "./js/pages/dashboard.js";
import { exceptionsPage } from "./js/pages/exceptions.js";
import { explorerPage } from "./js/pages/explorer.js";
import { incidentPage } from "./js/pages/incident.js";
import { incidentsPage } from "./js/pages/incidents.js";
import { hostPage, hostsPage } from "./js/pages/hosts.js";

const ROUTES = [
  [/^\/$/, "dashboard", dashboardPage],
  [/^\/incidents$/, "incidents", incidentsPage],
  [/^\/incidents\/([^/]+)$/, "incidents", incidentPage],
  [/^\/alerts$/, "alerts", alertsPage],
  [/^\/hosts$/, "hosts", hostsPage],
  [/^\/hosts\/([^/]+)$/, "hosts", hostPage],
  [/^\/explorer$/, "explorer", explorerPage],
  [/^\/exceptions$/, "exceptions", exceptionsPage],
];

const view = document.getElementById("view");
const topbar = document.getElementById("topbar");
let generation = 0;
let leaving = [];

function currentRoute() {
  const raw = window.location.hash.replace(/^#/, "") || "/";
  const cut = raw.indexOf("?");
  const path = cut < 0 ? raw : raw.slice(0, cut);
  return { path, params: new URLSearchParams(cut < 0 ? "" : raw.slice(cut + 1)) };
}

function leave() {
  for (const cleanup of leaving) {
    try {
      cleanup();
    } catch {
      // a page that is already gone has nothing left to clean
    }
  }
  leaving = [];
}

function loginPage(next) {
  topbar.hidden = true;
  const message = session.takeMessage();
  const token = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "pa.0123456789abcdef.…",
    required: true,
  });
  const problem = h("p", { class: "notice", id: "login-message", role: "alert", hidden: !message }, message);
  const form = h(
    "form",
    {},
    h("label", { for: "token" }, "API token"),
    token,
    h("button", { type: "submit", class: "primary", id: "signin" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.hidden = true;
    session.signIn(token.value);
    try {
      await api("/hosts");
    } catch (error) {
      session.signOut();
      session.takeMessage();
      problem.textContent =
        error.status === 401 ? "The manager refused this token." : `Sign-in failed: ${error.message}`;
      problem.hidden = false;
      return;
    }
    window.location.hash = next && next !== "/login" ? `#${next}` : "#/";
  });
  clear(view).append(
    h(
      "div",
      { class: "panel login" },
      h("h1", {}, "ProvArmor console"),
      h(
        "p",
        { class: "muted" },
        "Paste an API token. The manager prints an admin token on its first start; ",
        h("code", {}, "provarmor server token create --role analyst"),
        " makes an analyst token.",
      ),
      problem,
      form,
    ),
  );
  token.focus();
}

function showError(error) {
  clear(view).append(
    h(
      "div",
      { class: "panel" },
      h("h1", {}, error.status === 404 ? "Not found" : "Something went wrong"),
      h("p", { class: "error" }, error.message || String(error)),
      h("p", {}, h("a", { href: "#/" }, "Back to the dashboard")),
    ),
  );
}

async function render() {
  leave();
  const current = ++generation;
  const { path, params } = currentRoute();
  if (path === "/login" || !session.token) {
    loginPage(path === "/login" ? params.get("next") : `${path}${params.size ? `?${params}` : ""}`);
    return;
  }
  topbar.hidden = false;
  const found = ROUTES.find(([pattern]) => pattern.test(path));
  for (const item of topbar.querySelectorAll("[data-section]")) {
    item.classList.toggle("active", Boolean(found) && item.dataset.section === found[1]);
  }
  if (!found) {
    showError(new ApiError(404, `There is no page at ${path}.`));
    return;
  }
  const [pattern, , page] = found;
  const args = pattern.exec(path).slice(1).map(decodeURIComponent);
  // Each page draws into its own box in the document (graphs need a sized, attached
  // container); a page still loading when the user moves on draws into a detached box.
  const target = h("div", { class: "page" }, h("p", { class: "muted" }, "Loading…"));
  clear(view).append(target);
  view.dataset.page = found[1];
  const onLeave = (cleanup) => {
    if (current === generation) leaving.push(cleanup);
    else cleanup();
  };
  try {
    await page(target, { params, args, onLeave });
  } catch (error) {
    if (current !== generation) return;
    if (error instanceof ApiError && error.status === 401) {
      window.location.hash = `#/login?next=${encodeURIComponent(path)}`;
      return;
    }
    showError(error);
  }
}

document.getElementById("signout").addEventListener("click", () => {
  session.signOut("Signed out.");
  window.location.hash = "#/login";
});
window.addEventListener("hashchange", render);
render();
