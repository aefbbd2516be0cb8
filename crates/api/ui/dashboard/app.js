// The operator dashboard: sign-in, the layout, and a hash router (`#/overview`, `#/apps/{app}/…`). The fragment
// never reaches the server; every page is an ordinary API client holding the admin token in sessionStorage.

import { Api, ApiError, savedToken, saveToken, forgetToken } from "../shared/api.js";
import { h, replace, field } from "../shared/dom.js";
import { pageHeader, messageOf, report } from "./ui.js";
import { overviewPage } from "./pages/overview.js";
import { appsPage, appPage } from "./pages/apps.js";
import { messagesPage, messagePage, attemptPage } from "./pages/messages.js";
import { endpointPage, endpointFormPage } from "./pages/endpoint.js";
import { transformationPage } from "./pages/transformation.js";
import { recoverPage } from "./pages/recover.js";
import { eventTypesPage, eventTypePage } from "./pages/event-types.js";
import { sourcesPage, sourcePage } from "./pages/sources.js";
import { tokensPage } from "./pages/tokens.js";

const root = document.getElementById("app");

// [pattern, page, nav section]
const ROUTES = [
  [/^overview$/, overviewPage, "overview"],
  [/^apps$/, appsPage, "apps"],
  [/^apps\/([^/]+)$/, appPage, "apps"],
  [/^apps\/([^/]+)\/messages$/, messagesPage, "apps"],
  [/^apps\/([^/]+)\/messages\/([^/]+)$/, messagePage, "apps"],
  [/^apps\/([^/]+)\/messages\/([^/]+)\/attempts\/([^/]+)$/, attemptPage, "apps"],
  [/^apps\/([^/]+)\/endpoints\/new$/, endpointFormPage, "apps"],
  [/^apps\/([^/]+)\/endpoints\/([^/]+)$/, endpointPage, "apps"],
  [/^apps\/([^/]+)\/endpoints\/([^/]+)\/edit$/, endpointFormPage, "apps"],
  [/^apps\/([^/]+)\/endpoints\/([^/]+)\/transformation$/, transformationPage, "apps"],
  [/^apps\/([^/]+)\/endpoints\/([^/]+)\/recover$/, recoverPage, "apps"],
  [/^event-types$/, eventTypesPage, "event-types"],
  [/^event-types\/([^/]+)$/, eventTypePage, "event-types"],
  [/^sources$/, sourcesPage, "sources"],
  [/^sources\/([^/]+)$/, sourcePage, "sources"],
  [/^tokens$/, tokensPage, "tokens"],
];

const NAV = [
  ["overview", "Overview"],
  ["apps", "Applications"],
  ["event-types", "Event types"],
  ["sources", "Sources"],
  ["tokens", "Admin tokens"],
];

// Every call the pages make goes through here: a 401 anywhere means the token is no longer good, so the
// dashboard forgets it and asks for another.
class DashboardApi extends Api {
  async request(...args) {
    try {
      return await super.request(...args);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401 && this === api) signOut(`Signed out: ${error.message}. Sign in again.`);
      throw error;
    }
  }
}

let api = null;
let generation = 0;
let layout = null;

function signOut(reason) {
  forgetToken();
  api = null;
  layout = null;
  generation++;
  showSignIn(reason);
}

function showSignIn(reason) {
  document.title = "Sign in · hookrelay";
  const input = h("input", { type: "password", name: "token", autocomplete: "off", required: true, spellcheck: "false" });
  const problem = h("p", { class: "error-text", role: "alert" }, reason && reason.startsWith("Signed out") ? reason : "");
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        const token = input.value.trim();
        if (!token) return;
        button.disabled = true;
        problem.textContent = "";
        try {
          const who = await new Api(token).whoami();
          if (who.scope !== "admin") {
            problem.textContent =
              "This is an application token: it opens that application's portal, not the dashboard. Use the portal link you were given.";
            return;
          }
          saveToken(token);
          start();
        } catch (error) {
          problem.textContent =
            error instanceof ApiError && error.status === 401 ? `This token is not accepted: ${error.message}` : messageOf(error);
        } finally {
          button.disabled = false;
        }
      },
    },
    field("Admin token", input, "The server's HOOKRELAY_ADMIN_TOKEN or a named admin token. It is kept in this browser tab only."),
    problem,
    button,
  );
  replace(
    root,
    h("main", { id: "main", class: "signin" }, h("div", { class: "panel" }, h("h1", { tabindex: "-1" }, "Sign in to hookrelay"), form)),
  );
  input.focus();
}

function buildLayout() {
  const nav = h(
    "nav",
    { "aria-label": "Main" },
    NAV.map(([key, text]) => h("a", { href: `#/${key}`, dataset: { section: key } }, text)),
  );
  const main = h("main", { id: "main" });
  const header = h(
    "header",
    { class: "top" },
    h("a", { class: "brand", href: "#/overview" }, "hookrelay"),
    nav,
    h("button", { type: "button", class: "secondary small", onclick: () => signOut() }, "Sign out"),
  );
  replace(root, header, main);
  return { nav, main };
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [pathPart, queryPart = ""] = raw.split("?");
  return { route: pathPart || "overview", query: new URLSearchParams(queryPart) };
}

async function render() {
  if (!api) return;
  if (!layout) layout = buildLayout();
  const { main, nav } = layout;
  const token = ++generation;
  const { route, query } = parseHash();
  let found = null;
  for (const [pattern, page, navKey] of ROUTES) {
    const match = pattern.exec(route);
    if (match) {
      found = { page, navKey, params: match.slice(1).map((p) => decodeURIComponent(p)) };
      break;
    }
  }
  for (const a of nav.querySelectorAll("a")) {
    if (found && a.dataset.section === found.navKey) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const ctx = {
    api,
    params: found ? found.params : [],
    query,
    alive: () => token === generation && api !== null,
    go: (target) => {
      location.hash = target;
    },
    // Changes the page's query in place (filters, time range) without a new history entry or a re-render.
    setQuery(values) {
      const params = new URLSearchParams();
      for (const [key, value] of Object.entries(values)) if (value !== undefined && value !== null && value !== "") params.set(key, value);
      const text = params.toString();
      history.replaceState(null, "", `#/${route}${text ? "?" + text : ""}`);
    },
    refresh: () => render(),
  };
  replace(main, h("p", { class: "muted", role: "status" }, "Loading…"));
  let content;
  try {
    if (!found) {
      content = [pageHeader("Page not found"), h("p", {}, "There is no page at this address. ", h("a", { href: "#/overview" }, "Go to the overview"), ".")];
    } else {
      content = await found.page(ctx);
    }
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    report(error);
    content = [
      pageHeader(error instanceof ApiError && error.status === 404 ? "Not found" : "Something went wrong"),
      h("p", { class: "error-text", role: "alert" }, messageOf(error)),
      h("p", {}, h("a", { href: "#/overview" }, "Go to the overview")),
    ];
  }
  if (!ctx.alive()) return;
  replace(main, content);
  labelSections(main);
  const heading = main.querySelector("h1");
  document.title = `${heading ? heading.textContent : "hookrelay"} · hookrelay`;
  if (heading) heading.focus();
}

// Each <section> is named by its heading, so it is a landmark region ("Attempts", "Signing secret", …).
let sectionIds = 0;
function labelSections(container) {
  for (const el of container.querySelectorAll("section:not([aria-labelledby]):not([aria-label])")) {
    const heading = el.querySelector("h2, h3");
    if (!heading) continue;
    if (!heading.id) heading.id = `section-${++sectionIds}`;
    el.setAttribute("aria-labelledby", heading.id);
  }
}

function start() {
  const token = savedToken();
  if (!token) {
    showSignIn();
    return;
  }
  api = new DashboardApi(token);
  layout = null;
  if (!location.hash.startsWith("#/") || location.hash === "#/") history.replaceState(null, "", "#/overview");
  render();
}

// Only `#/…` fragments are routes: the skip link's `#main` (and any other in-page anchor) is not.
window.addEventListener("hashchange", () => {
  if (api && isRoute()) render();
});

function isRoute() {
  return !location.hash || location.hash.startsWith("#/");
}

document.addEventListener("click", (event) => {
  const skip = event.target.closest && event.target.closest("a.skip");
  if (!skip) return;
  event.preventDefault();
  const target = document.querySelector("main h1") || document.querySelector("main");
  if (target) {
    if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
    target.focus();
  }
});

start();
