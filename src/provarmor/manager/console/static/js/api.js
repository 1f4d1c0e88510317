// The manager's REST API (/api/v1) with the user's Bearer token, kept in sessionStorage only.

const TOKEN_KEY = "provarmor.token";
const MESSAGE_KEY = "provarmor.loginMessage";

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY) ?? "";
  },
  signIn(token) {
    sessionStorage.setItem(TOKEN_KEY, token.trim());
  },
  signOut(message = "") {
    sessionStorage.removeItem(TOKEN_KEY);
    if (message) sessionStorage.setItem(MESSAGE_KEY, message);
  },
  /** The message left for the login page (read once). */
  takeMessage() {
    const message = sessionStorage.getItem(MESSAGE_KEY) ?? "";
    sessionStorage.removeItem(MESSAGE_KEY);
    return message;
  },
};

export class ApiError extends Error {
  constructor(status, message, field = "") {
    super(message);
    this.status = status;
    this.field = field;
  }
}

/** Call the API; JSON in and out. A 401 signs out and raises (the router shows the login). */
export async function api(path, { method = "GET", params = {}, body } = {}) {
  const url = new URL(`/api/v1${path}`, window.location.origin);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
  }
  const headers = { Accept: "application/json", Authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch (error) {
    throw new ApiError(0, `the manager did not answer (${error.message})`);
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (response.status === 401) {
    session.signOut("The manager refused the token (401): it is wrong, revoked or expired. Sign in again.");
    throw new ApiError(401, "unauthorized", "Authorization");
  }
  if (!response.ok) {
    const message = data && typeof data.error === "string" ? data.error : response.statusText;
    throw new ApiError(response.status, message, data?.field ?? "");
  }
  return data;
}

/** Fetch several list pages (the API caps a page at 1000 rows). */
export async function apiAll(path, params = {}, { pageSize = 1000, maxRows = 5000 } = {}) {
  const rows = [];
  for (let offset = 0; offset < maxRows; offset += pageSize) {
    const page = await api(path, { params: { ...params, limit: pageSize, offset } });
    rows.push(...page);
    if (page.length < pageSize) break;
  }
  return rows;
}
