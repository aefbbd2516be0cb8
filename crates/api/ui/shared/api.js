// The JSON API client both pages use: every call is an ordinary bearer-token request to this server, so the
// UI can do nothing the token could not do with curl. The token is kept in sessionStorage (this tab only,
// gone when it closes), never in a URL or a cookie.

// The portal and the dashboard keep their tokens apart, so opening a portal link in a tab signed in to the
// dashboard does not sign it out.
const TOKEN_KEY = location.pathname.startsWith("/app-portal") ? "hookrelay.portal-token" : "hookrelay.dashboard-token";

export class ApiError extends Error {
  constructor(status, body) {
    super(describe(status, body));
    this.status = status;
    this.body = body;
  }
}

// The message a person can act on: Svix-shaped bodies say `detail` as a string or as a list of
// `{loc, msg}` for validation errors.
function describe(status, body) {
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.detail)) {
    return body.detail.map((d) => `${(d.loc || []).filter((l) => l !== "body").join(".")}: ${d.msg}`).join("; ");
  }
  if (status === 0) return "the server cannot be reached";
  return `the server answered ${status}`;
}

export function savedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export class Api {
  constructor(token) {
    this.token = token;
  }

  async request(method, path, { query, body, headers } = {}) {
    const url = new URL(path, location.origin);
    for (const [key, value] of Object.entries(query || {})) {
      if (value === undefined || value === null || value === "") continue;
      if (Array.isArray(value)) value.forEach((v) => url.searchParams.append(key, v));
      else url.searchParams.set(key, value);
    }
    const init = { method, headers: { Authorization: `Bearer ${this.token}`, ...headers } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch {
      throw new ApiError(0, null);
    }
    const text = await response.text();
    let parsed = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = { detail: text };
      }
    }
    if (!response.ok) throw new ApiError(response.status, parsed);
    return parsed;
  }

  get(path, query) {
    return this.request("GET", path, { query });
  }
  post(path, body, query) {
    return this.request("POST", path, { body: body ?? {}, query });
  }
  put(path, body) {
    return this.request("PUT", path, { body });
  }
  patch(path, body) {
    return this.request("PATCH", path, { body });
  }
  delete(path) {
    return this.request("DELETE", path);
  }

  // Which token this is: {scope: "admin"|"app", appId, readOnly}.
  whoami() {
    return this.get("/api/v1/auth/whoami");
  }
}

// Path segments are ids or uids chosen by users: always encode them.
export function path(strings, ...values) {
  return strings.reduce((out, s, i) => out + s + (i < values.length ? encodeURIComponent(values[i]) : ""), "");
}
