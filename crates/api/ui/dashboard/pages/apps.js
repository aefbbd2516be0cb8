// Applications: the list (with creation) and one application's page (its endpoints, a portal link, deletion).

import { path } from "../../shared/api.js";
import { h, replace, when, field, formValues } from "../../shared/dom.js";
import { pageHeader, pagedList, table, link, href, mono, enabledBadge, listText, act, revealed, facts, submitter } from "../ui.js";

const PAGE = 25;

export async function appsPage(ctx) {
  const { api } = ctx;
  const list = pagedList({
    label: "Applications",
    load: (iterator) => api.get("/api/v1/app/", { limit: PAGE, iterator }),
    render: (apps) =>
      table(
        [
          { label: "Name", cell: (a) => link(a.name, "apps", a.id) },
          { label: "ID", cell: (a) => mono(a.id) },
          { label: "UID", cell: (a) => (a.uid ? mono(a.uid) : "—"), wide: true },
          { label: "Created", cell: (a) => when(a.createdAt), wide: true },
        ],
        apps,
        { caption: "Applications", empty: "No applications yet: create the first one above." },
      ),
  });

  const create = h(
    "form",
    {
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        const values = formValues(event.target);
        const body = { name: values.name.trim() };
        if (values.uid.trim()) body.uid = values.uid.trim();
        const app = await act(submitter(event), () => api.post("/api/v1/app/", body), { success: "Application created" });
        if (app) ctx.go(href("apps", app.id));
      },
    },
    field("Name", h("input", { name: "name", required: true })),
    field("UID (optional)", h("input", { name: "uid", pattern: "[a-zA-Z0-9\\-_.]+", spellcheck: "false" })),
    h("div", { class: "field" }, h("button", { type: "submit" }, "Create application")),
  );

  const jump = h(
    "form",
    {
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        const ref = formValues(event.target).ref.trim();
        if (!ref) return;
        const app = await act(submitter(event), () => api.get(path`/api/v1/app/${ref}/`));
        if (app) ctx.go(href("apps", app.id));
      },
    },
    field("Application id or UID", h("input", { name: "ref", spellcheck: "false" })),
    h("div", { class: "field" }, h("button", { type: "submit", class: "secondary" }, "Open")),
  );

  return [
    pageHeader("Applications"),
    h("section", { class: "panel" }, h("h2", {}, "New application"), create),
    h("section", { class: "panel" }, h("div", { class: "spread" }, h("h2", {}, "All applications"), jump), list),
  ];
}

// The tabs of an application's pages.
export function appTabs(app, current) {
  const tab = (key, text, target) => h("a", { href: target, "aria-current": key === current ? "page" : false }, text);
  return h(
    "nav",
    { class: "subnav", "aria-label": "Application" },
    tab("endpoints", "Endpoints", href("apps", app.id)),
    tab("messages", "Messages", href("apps", app.id, "messages")),
  );
}

export async function appPage(ctx) {
  const { api } = ctx;
  const [appRef] = ctx.params;
  const app = await api.get(path`/api/v1/app/${appRef}/`);

  const endpoints = pagedList({
    label: "Endpoints",
    load: (iterator) => api.get(path`/api/v1/app/${app.id}/endpoint/`, { limit: PAGE, iterator }),
    render: (list) =>
      table(
        [
          { label: "URL", cell: (e) => link(e.url, "apps", app.id, "endpoints", e.id) },
          { label: "Status", cell: (e) => enabledBadge(e.disabled) },
          { label: "Description", cell: (e) => e.description || "—", wide: true },
          { label: "Event types", cell: (e) => listText(e.filterTypes), wide: true },
          { label: "ID", cell: (e) => mono(e.id), wide: true },
        ],
        list,
        { caption: "Endpoints", empty: "No endpoints yet." },
      ),
  });

  const portalOut = h("div", {});
  const portalButton = h(
    "button",
    {
      type: "button",
      class: "secondary",
      onclick: async () => {
        const readOnly = portalReadOnly.checked;
        const access = await act(portalButton, () => api.post(path`/api/v1/auth/app-portal-access/${app.id}/`, { readOnly }), {
          success: "Portal link created",
        });
        if (access) {
          replace(
            portalOut,
            revealed("Portal link", access.url, "Valid for 7 days. Anyone with this link can manage this application's endpoints."),
          );
        }
      },
    },
    "Create portal link",
  );
  const portalReadOnly = h("input", { type: "checkbox", name: "readOnly" });

  const deleteButton = h(
    "button",
    {
      type: "button",
      class: "danger",
      onclick: async () => {
        if (!confirm(`Delete application “${app.name}” with all its endpoints and messages? This cannot be undone.`)) return;
        const done = await act(deleteButton, () => api.delete(path`/api/v1/app/${app.id}/`), { success: "Application deleted" });
        if (done !== undefined) ctx.go(href("apps"));
      },
    },
    "Delete application",
  );

  return [
    pageHeader(app.name, [["Applications", href("apps")]]),
    appTabs(app, "endpoints"),
    h(
      "section",
      { class: "panel" },
      facts([
        ["ID", mono(app.id)],
        ["UID", app.uid ? mono(app.uid) : null],
        ["Rate limit", app.rateLimit ? `${app.rateLimit} per second` : null],
        ["Created", when(app.createdAt)],
      ]),
    ),
    h(
      "section",
      { class: "panel" },
      h("div", { class: "spread" }, h("h2", {}, "Endpoints"), h("a", { class: "button", href: href("apps", app.id, "endpoints", "new") }, "Add endpoint")),
      endpoints,
    ),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "Application portal"),
      h("p", {}, "A link that lets this application's owner manage its endpoints and see its deliveries, and nothing else."),
      h("div", { class: "row" }, h("label", { class: "check" }, portalReadOnly, " Read-only"), portalButton),
      portalOut,
    ),
    h("section", { class: "panel" }, h("h2", {}, "Danger zone"), deleteButton),
  ];
}
