// What the portal's pages share: who is signed in (the application token's scope), the page being shown, error
// handling, a confirmation dialog and a cursor pager. Nothing here parses data as HTML: every string goes through
// `h()` and becomes text.

import { ApiError } from "../shared/api.js";
import { h, notify, replace } from "../shared/dom.js";

// Filled in by portal.js once the token is known: `api` (the client), `appId`, `readOnly`, `app` (the
// application as the API returns it), `onExpired` (shows the "link expired" page) and `rerender` (shows the
// current route again).
export const state = { api: null, appId: null, readOnly: true, app: null, onExpired: () => {}, rerender: () => {}, followResend: null };

// Whether the token may change things: read-only portals show no buttons that would write.
export function canWrite() {
  return !state.readOnly;
}

// Each navigation is a new view; answers that arrive after the reader moved on are dropped.
let currentView = 0;
export function newView() {
  currentView += 1;
  return currentView;
}
export function isCurrent(view) {
  return view === currentView;
}

export function mainElement() {
  return document.getElementById("main");
}

// The page's heading, which receives focus after each navigation (so screen readers announce the new page).
export function heading(...text) {
  return h("h1", { tabindex: "-1" }, ...text);
}

// Whether the reader has navigated within the portal yet: the first page does not take focus, so an embedded
// portal does not pull focus (or scroll) away from the page around it when it loads.
let navigated = false;
export function markNavigated() {
  navigated = true;
}

// Shows a page, unless the reader has navigated elsewhere since it started loading; after a navigation its
// heading takes focus.
export function mount(view, ...children) {
  if (!isCurrent(view)) return false;
  const main = mainElement();
  replace(main, ...children);
  const title = main.querySelector("h1");
  if (title && navigated) title.focus();
  return true;
}

// Breadcrumbs: [label, href] pairs, the last one being the current page (no link).
export function crumbs(...items) {
  return h(
    "nav",
    { class: "crumbs", "aria-label": "Breadcrumb" },
    items.map(([label, href], i) => [i > 0 ? " › " : "", href ? h("a", { href }, label) : h("span", {}, label)]),
  );
}

// The hash route of a page, ids encoded.
export function route(...segments) {
  return `#/${segments.map((s) => encodeURIComponent(s)).join("/")}`;
}

export function go(...segments) {
  location.hash = route(...segments);
}

// Reports an API error to the reader with the server's own message; an expired token ends the session.
export function fail(err) {
  if (err instanceof ApiError && err.status === 401) {
    state.onExpired();
    return;
  }
  notify(err?.message || String(err), "error");
}

// A button's click handler that runs `fn` once at a time (the button is disabled meanwhile) and reports errors.
export function action(fn) {
  return async (event) => {
    const button = event?.currentTarget;
    if (button) button.disabled = true;
    try {
      await fn(event);
    } catch (err) {
      fail(err);
    } finally {
      if (button) button.disabled = false;
    }
  };
}

// What a page shows when it could not load: "not found" for a 404 (an id of another application is a 404 too,
// and nothing of it is shown), the server's message otherwise.
export function pageError(view, err, what, back = ["Endpoints", "#/endpoints"]) {
  if (err instanceof ApiError && err.status === 401) {
    state.onExpired();
    return;
  }
  if (err instanceof ApiError && err.status === 404) {
    mount(
      view,
      crumbs(back),
      heading("Not found"),
      h("p", { class: "not-found" }, `This ${what} was not found in this application. It may have been deleted.`),
      h("p", {}, h("a", { href: back[1] }, `Back to ${back[0].toLowerCase()}`)),
    );
    return;
  }
  notify(err?.message || String(err), "error");
  mount(
    view,
    crumbs(back),
    heading("Something went wrong"),
    h("p", { class: "error-text", role: "alert" }, err?.message || String(err)),
    h("p", {}, h("button", { type: "button", onclick: () => state.rerender() }, "Try again")),
  );
}

// A modal confirmation (a <dialog>, so focus stays inside it and Escape cancels). Resolves true when confirmed.
export function confirmDialog({ title, text, confirm = "Confirm", danger = false }) {
  return new Promise((resolve) => {
    const titleId = `dlg-${Math.random().toString(36).slice(2, 10)}`;
    const ok = h("button", { type: "button", class: danger ? "danger" : undefined, onclick: () => dialog.close("ok") }, confirm);
    const cancel = h("button", { type: "button", class: "secondary", onclick: () => dialog.close("cancel") }, "Cancel");
    const dialog = h(
      "dialog",
      { class: "portal-dialog", "aria-labelledby": titleId },
      h("h2", { id: titleId }, title),
      h("p", {}, text),
      h("div", { class: "row" }, ok, cancel),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

// A list read page by page with the API's cursors: `load(iterator)` answers a page ({data, iterator, done}),
// `render(items)` shows it. Returns {el, refresh(), reset()}; refresh() reloads the page being shown (keeping
// focus where it is) and resolves with its items.
export function pager({ load, render, empty, label }) {
  const body = h("div", { class: "pager-body", "aria-live": "polite", "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  const previous = h("button", { type: "button", class: "secondary small", disabled: true }, "‹ Previous page");
  const next = h("button", { type: "button", class: "secondary small", disabled: true }, "Next page ›");
  const nav = h("div", { class: "row pager", role: "group", "aria-label": `${label} pages` }, previous, next);
  const el = h("div", { class: "paged" }, body, nav);
  const stack = [];
  let cursor = undefined;
  let generation = 0;

  async function show() {
    const mine = ++generation;
    body.setAttribute("aria-busy", "true");
    try {
      const page = await load(cursor);
      if (mine !== generation) return null;
      replace(body, page.data.length ? render(page.data) : h("p", { class: "muted empty" }, empty));
      previous.disabled = stack.length === 0;
      next.disabled = page.done || !page.iterator || page.data.length === 0;
      next.onclick = () => {
        stack.push(cursor);
        cursor = page.iterator;
        show();
      };
      return page.data;
    } catch (err) {
      if (mine !== generation) return null;
      fail(err);
      replace(body, h("p", { class: "error-text", role: "alert" }, err?.message || String(err)));
      return null;
    } finally {
      if (mine === generation) body.setAttribute("aria-busy", "false");
    }
  }
  previous.onclick = () => {
    cursor = stack.pop();
    show();
  };
  return {
    el,
    refresh: show,
    reset() {
      stack.length = 0;
      cursor = undefined;
      return show();
    },
  };
}

// A table with a header row; `columns` are [label, cellOf(item), className?].
export function table(caption, columns, items, rowClass) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, columns.map(([label, , cls]) => h("th", { scope: "col", class: cls }, label)))),
      h(
        "tbody",
        {},
        items.map((item) => h("tr", { class: rowClass }, columns.map(([, cell, cls]) => h("td", { class: cls }, cell(item))))),
      ),
    ),
  );
}

// A definition list of label/value pairs (values may be elements).
export function details(pairs) {
  return h(
    "dl",
    { class: "portal-details" },
    pairs.filter(Boolean).map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]),
  );
}

// Every event type (all pages), for the endpoint form and the test sender.
export async function allEventTypes() {
  const types = [];
  let iterator;
  for (let i = 0; i < 40; i++) {
    const page = await state.api.get("/api/v1/event-type/", { limit: 250, iterator, with_content: true });
    types.push(...page.data);
    if (page.done || !page.iterator || page.data.length === 0) break;
    iterator = page.iterator;
  }
  return types.sort((a, b) => a.name.localeCompare(b.name));
}
