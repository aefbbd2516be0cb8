// An application's messages (searchable, paginated), one message with its deliveries and attempts, and one
// attempt's request and response.

import { ApiError, path } from "../../shared/api.js";
import { h, when, ago, statusBadge, pretty, field, formValues } from "../../shared/dom.js";
import {
  pageHeader, pagedList, table, link, href, mono, act, facts, listText, localToIso, isoToLocal, messageOf, section, submitter,
} from "../ui.js";
import { appTabs } from "./apps.js";

const PAGE = 25;

// Event type names for a <datalist>, so filters and forms can offer them (the first page is enough to help).
export async function eventTypeNames(api) {
  try {
    const page = await api.get("/api/v1/event-type/", { limit: 250, with_content: false });
    return page.data.map((t) => t.name);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) throw error;
    return [];
  }
}

export function datalist(id, names) {
  return h("datalist", { id }, names.map((name) => h("option", { value: name })));
}

// The form that opens a message by its id or its eventId.
export function jumpToMessage(ctx, appId) {
  const problem = h("p", { class: "error-text", role: "alert" });
  return h(
    "form",
    {
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        const ref = formValues(event.target).ref.trim();
        if (!ref) return;
        problem.textContent = "";
        const button = submitter(event);
        button.disabled = true;
        try {
          const msg = await ctx.api.get(path`/api/v1/app/${appId}/msg/${ref}/`, { with_content: false });
          ctx.go(href("apps", appId, "messages", msg.id));
        } catch (error) {
          problem.textContent = messageOf(error);
        } finally {
          button.disabled = false;
        }
      },
    },
    field("Message id or event id", h("input", { name: "ref", spellcheck: "false", autocomplete: "off" })),
    h("div", { class: "field" }, h("button", { type: "submit", class: "secondary" }, "Open message")),
    problem,
  );
}

export function messageColumns(appId) {
  return [
    { label: "Message", cell: (m) => link(m.id, "apps", appId, "messages", m.id) },
    { label: "Event type", cell: (m) => mono(m.eventType) },
    { label: "Event id", cell: (m) => (m.eventId ? mono(m.eventId) : "—"), wide: true },
    { label: "Channels", cell: (m) => listText(m.channels, "—"), wide: true },
    { label: "Tags", cell: (m) => listText(m.tags, "—"), wide: true },
    { label: "Created", cell: (m) => h("span", { title: when(m.timestamp) }, ago(m.timestamp)) },
  ];
}

export async function messagesPage(ctx) {
  const { api, query } = ctx;
  const [appRef] = ctx.params;
  const [app, names] = await Promise.all([api.get(path`/api/v1/app/${appRef}/`), eventTypeNames(api)]);
  const filters = {
    eventType: query.get("eventType") || "",
    channel: query.get("channel") || "",
    tag: query.get("tag") || "",
    after: query.get("after") || "",
    before: query.get("before") || "",
  };

  const list = pagedList({
    label: "Messages",
    load: (iterator) =>
      api.get(path`/api/v1/app/${app.id}/msg/`, {
        limit: PAGE,
        iterator,
        with_content: false,
        event_types: filters.eventType || undefined,
        channel: filters.channel,
        tag: filters.tag,
        after: filters.after,
        before: filters.before,
      }),
    render: (messages) => table(messageColumns(app.id), messages, { caption: "Messages", empty: "No messages match." }),
  });

  const search = h(
    "form",
    {
      class: "inline",
      onsubmit: (event) => {
        event.preventDefault();
        const values = formValues(event.target);
        filters.eventType = values.eventType.trim();
        filters.channel = values.channel.trim();
        filters.tag = values.tag.trim();
        filters.after = localToIso(values.after) || "";
        filters.before = localToIso(values.before) || "";
        ctx.setQuery(filters);
        list.firstPage();
      },
    },
    field("Event type", h("input", { name: "eventType", value: filters.eventType, list: "event-type-names", spellcheck: "false" })),
    datalist("event-type-names", names),
    field("Channel", h("input", { name: "channel", value: filters.channel, spellcheck: "false" })),
    field("Tag", h("input", { name: "tag", value: filters.tag, spellcheck: "false" })),
    field("Created after", h("input", { name: "after", type: "datetime-local", value: isoToLocal(filters.after) })),
    field("Created before", h("input", { name: "before", type: "datetime-local", value: isoToLocal(filters.before) })),
    h("div", { class: "field" }, h("button", { type: "submit" }, "Search")),
  );

  return [
    pageHeader(`Messages of ${app.name}`, [
      ["Applications", href("apps")],
      [app.name, href("apps", app.id)],
    ]),
    appTabs(app, "messages"),
    h("section", { class: "panel" }, h("h2", {}, "Find a message"), jumpToMessage(ctx, app.id)),
    h("section", { class: "panel" }, h("h2", {}, "Messages"), search, list),
  ];
}

export function attemptColumns(appId, { withEndpoint = true, withMessage = false } = {}) {
  return [
    { label: "Attempt", cell: (a) => link(when(a.timestamp), "apps", appId, "messages", a.msgId, "attempts", a.id) },
    withMessage ? { label: "Message", cell: (a) => link(a.msgId, "apps", appId, "messages", a.msgId), wide: true } : null,
    withEndpoint ? { label: "Endpoint", cell: (a) => link(a.url, "apps", appId, "endpoints", a.endpointId), wide: true } : null,
    { label: "Status", cell: (a) => statusBadge(a.status) },
    { label: "Response", cell: (a) => (a.responseStatusCode ? String(a.responseStatusCode) : "none") },
    { label: "Duration", cell: (a) => `${a.responseDurationMs} ms` },
    { label: "Trigger", cell: (a) => (a.triggerType === 1 ? "manual" : "scheduled"), wide: true },
  ].filter(Boolean);
}

const WAITING = new Set([1, 3]);

export async function messagePage(ctx) {
  const { api } = ctx;
  const [appRef, msgRef] = ctx.params;
  const [app, msg] = await Promise.all([api.get(path`/api/v1/app/${appRef}/`), api.get(path`/api/v1/app/${appRef}/msg/${msgRef}/`)]);
  let waiting = false;

  const destinations = pagedList({
    label: "Deliveries",
    load: async (iterator) => {
      const page = await api.get(path`/api/v1/app/${app.id}/msg/${msg.id}/endpoint/`, { limit: PAGE, iterator });
      waiting = page.data.some((d) => WAITING.has(d.status));
      return page;
    },
    render: (list) =>
      table(
        [
          { label: "Endpoint", cell: (d) => link(d.url, "apps", app.id, "endpoints", d.id) },
          { label: "Status", cell: (d) => statusBadge(d.status) },
          { label: "Next attempt", cell: (d) => (d.nextAttempt ? ago(d.nextAttempt) : "—"), wide: true },
          {
            label: "Actions",
            cell: (d) => {
              const button = h("button", { type: "button", class: "secondary small", "aria-label": `Resend to ${d.url}` }, "Resend");
              button.addEventListener("click", async () => {
                const done = await act(button, () => api.post(path`/api/v1/app/${app.id}/msg/${msg.id}/endpoint/${d.id}/resend/`), {
                  success: "Resend scheduled: a new attempt is due now",
                });
                if (done !== undefined) follow();
              });
              return button;
            },
          },
        ],
        list,
        { caption: "Where this message is delivered", empty: "No endpoint was due this message." },
      ),
  });

  const attempts = pagedList({
    label: "Attempts",
    load: (iterator) => api.get(path`/api/v1/app/${app.id}/attempt/msg/${msg.id}/`, { limit: PAGE, iterator }),
    render: (list) => table(attemptColumns(app.id), list, { caption: "Delivery attempts", empty: "No attempt yet." }),
  });

  // While a delivery is pending or being sent, the lists refresh themselves (on their first page only).
  let following = 0;
  async function follow() {
    const run = ++following;
    const deadline = Date.now() + 120_000;
    await new Promise((r) => setTimeout(r, 400));
    while (ctx.alive() && run === following && Date.now() < deadline) {
      if (destinations.onFirstPage()) await destinations.reload();
      if (attempts.onFirstPage()) await attempts.reload();
      if (!waiting) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  follow();

  const payload = msg.rawPayload !== undefined ? msg.rawPayload : pretty(msg.payload);
  return [
    pageHeader(`Message ${msg.id}`, [
      ["Applications", href("apps")],
      [app.name, href("apps", app.id)],
      ["Messages", href("apps", app.id, "messages")],
    ]),
    h(
      "section",
      { class: "panel" },
      facts([
        ["Event type", mono(msg.eventType)],
        ["Event id", msg.eventId ? mono(msg.eventId) : null],
        ["Channels", msg.channels && msg.channels.length ? msg.channels.join(", ") : null],
        ["Tags", msg.tags && msg.tags.length ? msg.tags.join(", ") : null],
        ["Created", when(msg.timestamp)],
        ["Deliver at", msg.deliverAt ? when(msg.deliverAt) : null],
      ]),
      h("h2", {}, "Payload"),
      h("pre", { tabindex: "0", "aria-label": "Payload" }, payload),
    ),
    h(
      "section",
      { class: "panel" },
      h("div", { class: "spread" }, h("h2", {}, "Deliveries"), refreshButton(() => follow())),
      destinations,
    ),
    h("section", { class: "panel" }, h("h2", {}, "Attempts"), attempts),
  ];
}

function refreshButton(onclick) {
  return h("button", { type: "button", class: "secondary small", onclick }, "Refresh");
}

export async function attemptPage(ctx) {
  const { api } = ctx;
  const [appRef, msgRef, attemptRef] = ctx.params;
  const [app, msg, attempt] = await Promise.all([
    api.get(path`/api/v1/app/${appRef}/`),
    api.get(path`/api/v1/app/${appRef}/msg/${msgRef}/`),
    api.get(path`/api/v1/app/${appRef}/msg/${msgRef}/attempt/${attemptRef}/`),
  ]);
  const headers = section(
    "Headers",
    async () => {
      let custom = {};
      try {
        custom = (await api.get(path`/api/v1/app/${app.id}/endpoint/${attempt.endpointId}/headers/`)).headers || {};
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 404)) throw error;
      }
      const rows = [
        ["webhook-id", msg.id],
        ["webhook-timestamp", "the time of the attempt, in seconds"],
        ["webhook-signature", "v1,… signed with the endpoint's secret"],
        ["content-type", "application/json"],
        ...Object.entries(custom),
      ];
      return [
        h(
          "p",
          { class: "muted" },
          "hookrelay does not record each attempt's request headers. Every delivery carries the Standard Webhooks headers (and their svix-* copies unless the endpoint turned them off) and the endpoint's custom headers, current values shown:",
        ),
        table(
          [
            { label: "Header", cell: ([name]) => mono(name) },
            { label: "Value", cell: ([, value]) => mono(value) },
          ],
          rows,
          { caption: "Request headers" },
        ),
      ];
    },
    { headingLevel: "h3", plain: true },
  );
  return [
    pageHeader(`Attempt ${attempt.id}`, [
      ["Applications", href("apps")],
      [app.name, href("apps", app.id)],
      ["Messages", href("apps", app.id, "messages")],
      [msg.id, href("apps", app.id, "messages", msg.id)],
    ]),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "Response"),
      facts([
        ["Status", statusBadge(attempt.status)],
        ["Response status code", attempt.responseStatusCode ? String(attempt.responseStatusCode) : "none (no response)"],
        ["Duration", `${attempt.responseDurationMs} ms`],
        ["Trigger", attempt.triggerType === 1 ? "manual (resend)" : "scheduled"],
        ["Time", when(attempt.timestamp)],
      ]),
      h("h3", {}, "Response body"),
      attempt.response ? h("pre", { tabindex: "0", "aria-label": "Response body" }, pretty(attempt.response)) : h("p", { class: "muted" }, "Empty."),
    ),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "Request"),
      facts([
        ["Method", "POST"],
        ["URL", mono(attempt.url)],
        ["Endpoint", link(attempt.endpointId, "apps", app.id, "endpoints", attempt.endpointId)],
        ["Event type", mono(msg.eventType)],
      ]),
      headers,
      h("h3", {}, "Payload"),
      h("p", { class: "muted" }, "The message's payload; an endpoint's transformation may have changed what was sent."),
      h("pre", { tabindex: "0", "aria-label": "Request payload" }, msg.rawPayload !== undefined ? msg.rawPayload : pretty(msg.payload)),
    ),
  ];
}
