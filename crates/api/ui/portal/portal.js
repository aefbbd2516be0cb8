// The consumer app portal (`/app-portal#key=<app token>`): the customer of a service that sends webhooks through
// hookrelay manages the endpoints of their one application, reads its signing secret, looks at deliveries and
// attempts, resends, and learns how to verify signatures.
//
// The token arrives in the URL's fragment, which browsers never send to a server; it is moved to session storage
// at once and the fragment replaced, so it is not left in the address bar, the history or a bookmark. Every call is
// an ordinary API call with that token, so the portal can do nothing the token could not do with curl: another
// application's ids answer 404, a read-only token's writes 403. The page works inside an iframe (hash routing only,
// no top-level navigation).

import { Api, ApiError, forgetToken, path, saveToken, savedToken } from "../shared/api.js";
import { h, notify, replace } from "../shared/dom.js";
import { crumbs, heading, mainElement, markNavigated, mount, newView, state } from "./common.js";
import { endpointForm, endpointList, endpointPage } from "./endpoints.js";
import { attemptPage, messagePage } from "./deliveries.js";
import { verifyPage } from "./verify.js";

const root = document.getElementById("app");
let theme = { title: "Webhooks", logo: null };

// The branding the operator configured (HOOKRELAY_UI_TITLE, HOOKRELAY_UI_LOGO); the page works without it.
async function loadTheme() {
  try {
    const response = await fetch("/ui/theme.json");
    if (response.ok) theme = { ...theme, ...(await response.json()) };
  } catch {
    // The default look.
  }
}

function brand() {
  return h(
    "a",
    { class: "brand", href: "#/endpoints" },
    theme.logo ? h("img", { src: theme.logo, alt: `${theme.title} logo`, class: "portal-logo" }) : null,
    h("span", {}, theme.title),
  );
}

// Takes a token handed over in the fragment (`#key=…`), keeps it in session storage and removes it from the URL.
function takeTokenFromFragment() {
  const fragment = location.hash.replace(/^#/, "");
  if (!fragment.startsWith("key=") && !fragment.includes("&key=")) return false;
  const key = new URLSearchParams(fragment).get("key");
  history.replaceState(null, "", `${location.pathname}${location.search}#/endpoints`);
  if (key) saveToken(key);
  return Boolean(key);
}

// The page for a missing, expired or revoked link: the only remedy is a new link from the service.
function showExpired() {
  forgetToken();
  state.api = null;
  document.title = `Link expired · ${theme.title}`;
  replace(
    root,
    h("header", { class: "top" }, brand()),
    h(
      "main",
      { id: "main", class: "portal-expired" },
      h(
        "div",
        { class: "panel" },
        heading("This link has expired"),
        h("p", {}, "The link you used to open this page is no longer valid: links to this page work for a limited time."),
        h("p", {}, "Ask the service that sent it to you for a new one, for example by opening the webhooks page in its settings again."),
      ),
    ),
  );
}

function showFatal(err) {
  replace(
    root,
    h("header", { class: "top" }, brand()),
    h(
      "main",
      { id: "main" },
      heading("The portal could not load"),
      h("p", { class: "error-text", role: "alert" }, err?.message || String(err)),
      h("p", {}, h("button", { type: "button", onclick: () => start() }, "Try again")),
    ),
  );
  notify(err?.message || String(err), "error");
}

function navLink(label, href, current) {
  return h("a", { href, "aria-current": current ? "page" : undefined }, label);
}

function renderShell() {
  const nav = h("nav", { "aria-label": "Portal" });
  const who = h(
    "div",
    { class: "portal-app" },
    h("span", { class: "muted" }, "Application: "),
    h("strong", { class: "portal-app-name" }, state.app.name || state.app.uid || state.app.id),
    state.readOnly ? h("span", { class: "badge badge-disabled portal-readonly-badge" }, "read-only") : null,
  );
  replace(
    root,
    h("header", { class: "top" }, brand(), nav, who),
    state.readOnly
      ? h(
          "p",
          { class: "portal-readonly-note", role: "note" },
          "You have read-only access: you can see endpoints, their signing secrets and deliveries, but not change anything.",
        )
      : null,
    h("main", { id: "main", tabindex: "-1" }),
  );
  return nav;
}

let nav;

function updateNav(section) {
  replace(
    nav,
    navLink("Endpoints", "#/endpoints", section === "endpoints"),
    navLink("Verifying signatures", "#/verify", section === "verify"),
  );
}

// `#/endpoints`, `#/endpoints/new`, `#/endpoints/{ep}`, `#/endpoints/{ep}/edit`, `#/endpoints/{ep}/msg/{msg}`,
// `#/endpoints/{ep}/msg/{msg}/attempt/{attempt}`, `#/verify`.
function render() {
  if (!state.api) return;
  const raw = location.hash.replace(/^#\/?/, "");
  let parts;
  try {
    parts = raw.split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    parts = ["?"];
  }
  const view = newView();
  const [section, id, sub, msgId, sub2, attemptId, ...rest] = parts;
  document.title = `Webhooks · ${theme.title}`;
  if (section === undefined || (section === "endpoints" && id === undefined)) {
    updateNav("endpoints");
    return endpointList(view);
  }
  if (section === "endpoints") {
    updateNav("endpoints");
    if (id === "new" && sub === undefined && state.readOnly === false) return endpointForm(view, null);
    if (id !== "new" && sub === undefined) return endpointPage(view, id);
    if (id !== "new" && sub === "edit" && msgId === undefined && state.readOnly === false) return endpointForm(view, id);
    if (id !== "new" && sub === "msg" && msgId && sub2 === undefined) return messagePage(view, id, msgId);
    if (id !== "new" && sub === "msg" && msgId && sub2 === "attempt" && attemptId && rest.length === 0) {
      return attemptPage(view, id, msgId, attemptId);
    }
  }
  if (section === "verify" && id === undefined) {
    updateNav("verify");
    return verifyPage(view);
  }
  updateNav(null);
  mount(
    view,
    crumbs(["Endpoints", "#/endpoints"]),
    heading("Page not found"),
    h("p", { class: "not-found" }, "There is no such page in this portal."),
    h("p", {}, h("a", { href: "#/endpoints" }, "Back to endpoints")),
  );
}

async function start() {
  takeTokenFromFragment();
  await loadTheme();
  const token = savedToken();
  if (!token) return showExpired();
  const api = new Api(token);
  let who;
  try {
    who = await api.whoami();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return showExpired();
    return showFatal(err);
  }
  // The portal is for application tokens; an admin token (say, the dashboard's, in the same tab) is not one.
  if (who.scope !== "app" || !who.appId) return showExpired();
  state.api = api;
  state.appId = who.appId;
  state.readOnly = Boolean(who.readOnly);
  try {
    state.app = await api.get(path`/api/v1/app/${who.appId}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return showExpired();
    return showFatal(err);
  }
  nav = renderShell();
  render();
}

// "Skip to content" moves focus without touching the fragment, which is the portal's route.
document.getElementById("skip-link")?.addEventListener("click", (event) => {
  event.preventDefault();
  const main = mainElement();
  if (main) (main.querySelector("h1") || main).focus();
});

state.onExpired = showExpired;
state.rerender = () => {
  markNavigated();
  render();
};

window.addEventListener("hashchange", () => {
  markNavigated();
  // A new link pasted into this tab replaces the session's token.
  if (takeTokenFromFragment()) {
    start();
    return;
  }
  render();
});

start();
