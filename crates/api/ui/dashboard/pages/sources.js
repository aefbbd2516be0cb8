// Inbound sources: the list and creation, and one source with its ingest URL (to paste into the provider's
// dashboard), request counts, recent verified events and rejections by minute and reason.

import { ApiError, path } from "../../shared/api.js";
import { h, when, ago, field, formValues, notify, copyButton, pretty } from "../../shared/dom.js";
import { pageHeader, pagedList, table, link, href, mono, act, facts, section, card, select, splitList, parseJson, messageOf, submitter } from "../ui.js";

const PAGE = 25;
const PROVIDERS = [
  ["stripe", "Stripe"],
  ["svix", "Svix / Standard Webhooks (Clerk, …)"],
  ["github", "GitHub"],
  ["shopify", "Shopify"],
  ["slack", "Slack"],
  ["hmac-sha256", "Generic HMAC-SHA256"],
];

export function ingestUrl(source) {
  return new URL(source.ingestUrl, location.origin).href;
}

function ingestCell(source) {
  const url = ingestUrl(source);
  return h("span", { class: "row nowrap" }, mono(url), copyButton(() => url, "Copy URL"));
}

export async function sourcesPage(ctx) {
  const { api } = ctx;
  const list = pagedList({
    label: "Sources",
    load: (iterator) => api.get("/api/v1/source/", { limit: PAGE, iterator }),
    render: (sources) =>
      table(
        [
          { label: "Name", cell: (s) => link(s.name, "sources", s.id) },
          { label: "Provider", cell: (s) => s.provider },
          { label: "Application", cell: (s) => link(s.appId, "apps", s.appId), wide: true },
          { label: "Ingest URL", cell: ingestCell },
        ],
        sources,
        { caption: "Sources", empty: "No sources yet." },
      ),
  });

  const problem = h("p", { class: "error-text", role: "alert" });
  const form = h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        problem.textContent = "";
        const v = formValues(event.target);
        let body;
        try {
          const options = v.options.trim() ? parseJson(v.options, "The provider options") : {};
          if (typeof options !== "object" || Array.isArray(options) || options === null) throw new Error("The provider options must be a JSON object");
          body = { ...options, name: v.name.trim(), provider: v.provider, secret: v.secret, appId: v.appId.trim() };
          if (v.uid.trim()) body.uid = v.uid.trim();
          if (v.tolerance) body.toleranceSecs = Number(v.tolerance);
          if (v.rateLimit) body.rateLimit = Number(v.rateLimit);
          const forward = splitList(v.forwardHeaders);
          if (forward.length) body.forwardHeaders = forward;
        } catch (error) {
          problem.textContent = error.message;
          return;
        }
        const button = submitter(event);
        button.disabled = true;
        try {
          const source = await api.post("/api/v1/source/", body);
          notify("Source created");
          ctx.go(href("sources", source.id));
        } catch (error) {
          if (!(error instanceof ApiError && error.status === 401)) problem.textContent = messageOf(error);
        } finally {
          button.disabled = false;
        }
      },
    },
    h(
      "div",
      { class: "fields" },
      field("Name", h("input", { name: "name", required: true })),
      field("Provider", select("provider", PROVIDERS, "stripe")),
      field("Application id or UID", h("input", { name: "appId", required: true, spellcheck: "false" }), "Where its events are published."),
    ),
    h(
      "div",
      { class: "fields" },
      field("Signing secret", h("input", { name: "secret", type: "password", required: true, autocomplete: "off" }), "From the provider's dashboard; never shown again."),
      field("UID (optional)", h("input", { name: "uid", spellcheck: "false" })),
    ),
    h(
      "details",
      {},
      h("summary", {}, "More settings"),
      h(
        "div",
        { class: "fields" },
        field("Timestamp tolerance (seconds)", h("input", { name: "tolerance", type: "number", min: "1", max: "604800", placeholder: "300" })),
        field("Rate limit (requests per second)", h("input", { name: "rateLimit", type: "number", min: "1" })),
      ),
      field("Forwarded headers", h("input", { name: "forwardHeaders", spellcheck: "false" }), "Comma-separated request headers sent on with every delivery, e.g. Stripe-Signature."),
      field(
        "Provider options (JSON)",
        h("textarea", { name: "options", rows: "3", spellcheck: "false", class: "code" }),
        'For Slack and generic HMAC, e.g. {"signatureHeader": "X-Signature", "signatureEncoding": "hex"}.',
      ),
    ),
    problem,
    h("button", { type: "submit" }, "Create source"),
  );

  return [
    pageHeader("Sources"),
    h("p", { class: "muted" }, "Providers' webhooks (Stripe, GitHub, …) received at an ingest URL, verified, and published to an application."),
    h("section", { class: "panel" }, h("h2", {}, "New source"), form),
    h("section", { class: "panel" }, h("h2", {}, "All sources"), list),
  ];
}

function countsCards(counts) {
  return h(
    "div",
    { class: "grid-cards" },
    card(counts.received, "received"),
    card(counts.verified, "verified"),
    card(counts.rejected, "rejected"),
    card(counts.duplicates, "duplicates"),
  );
}

function reasonsTable(byReason) {
  return table(
    [
      { label: "Reason", cell: ([reason]) => mono(reason) },
      { label: "Rejected", cell: ([, count]) => String(count) },
    ],
    Object.entries(byReason || {}),
    { caption: "Rejections by reason", empty: "No rejections." },
  );
}

export async function sourcePage(ctx) {
  const { api } = ctx;
  const [ref] = ctx.params;
  const source = await api.get(path`/api/v1/source/${ref}/`);
  const base = path`/api/v1/source/${source.id}`;
  const url = ingestUrl(source);
  const { id, uid, name, provider, appId, ingestUrl: _ingest, toleranceSecs, rateLimit, forwardHeaders, createdAt, updatedAt, ...options } = source;

  const stats = section("Requests", async () => {
    const s = await api.get(`${base}/stats/`);
    return [
      h("h3", {}, "Last 24 hours"),
      countsCards(s.last24h),
      reasonsTable(s.last24h.rejectedByReason),
      h("h3", {}, "Since the source was created"),
      countsCards(s),
      reasonsTable(s.rejectedByReason),
    ];
  });

  const events = pagedList({
    label: "Recent events",
    load: (iterator) => api.get(`${base}/event/`, { limit: PAGE, iterator }),
    render: (list) =>
      table(
        [
          { label: "Received", cell: (e) => h("span", { title: when(e.receivedAt) }, ago(e.receivedAt)) },
          { label: "Status", cell: (e) => h("span", { class: `badge ${e.status === "verified" ? "badge-success" : "badge-pending"}` }, e.status) },
          { label: "Event type", cell: (e) => (e.eventType ? mono(e.eventType) : "—") },
          { label: "Event id", cell: (e) => (e.eventId ? mono(e.eventId) : "—"), wide: true },
          { label: "Message", cell: (e) => (e.messageId ? link(e.messageId, "apps", source.appId, "messages", e.messageId) : "—") },
        ],
        list,
        { caption: "Verified requests", empty: "No verified request yet." },
      ),
  });

  const rejections = pagedList({
    label: "Rejections",
    load: (iterator) => api.get(`${base}/rejection/`, { limit: PAGE, iterator }),
    render: (list) =>
      table(
        [
          { label: "Minute", cell: (r) => when(r.minute) },
          { label: "Reason", cell: (r) => mono(r.reason) },
          { label: "Count", cell: (r) => String(r.count) },
          { label: "Last seen", cell: (r) => ago(r.lastSeen), wide: true },
          {
            label: "Sample",
            cell: (r) => (r.sample ? h("details", {}, h("summary", {}, "Show"), h("pre", {}, pretty(r.sample))) : "—"),
          },
        ],
        list,
        { caption: "Rejected requests by minute and reason", empty: "No rejected request." },
      ),
  });

  const remove = h("button", { type: "button", class: "danger" }, "Delete source");
  remove.addEventListener("click", async () => {
    if (!confirm(`Delete the source ${source.name}? Its ingest URL stops accepting requests at once.`)) return;
    const done = await act(remove, () => api.delete(`${base}/`), { success: "Source deleted" });
    if (done !== undefined) ctx.go(href("sources"));
  });

  const rotateForm = h(
    "form",
    {
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        const v = formValues(event.target);
        const done = await act(
          submitter(event),
          () => api.patch(`${base}/`, { secret: v.secret, secretGraceSecs: Math.round(Number(v.grace || 0) * 3600) }),
          { success: "Secret replaced" },
        );
        if (done) event.target.reset();
      },
    },
    field("New signing secret", h("input", { name: "secret", type: "password", required: true, autocomplete: "off" })),
    field("Old secret accepted for (hours)", h("input", { name: "grace", type: "number", min: "0", max: "168", value: "24", class: "narrow" })),
    h("div", { class: "field" }, h("button", { type: "submit", class: "secondary" }, "Replace secret")),
  );

  return [
    pageHeader(source.name, [["Sources", href("sources")]]),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "Ingest URL"),
      h("p", {}, "Paste it into the provider's webhook settings."),
      h("div", { class: "row" }, h("code", { class: "ingest" }, url), copyButton(() => url, "Copy ingest URL")),
      facts([
        ["ID", mono(id)],
        ["UID", uid ? mono(uid) : null],
        ["Provider", provider],
        ["Application", link(appId, "apps", appId)],
        ["Timestamp tolerance", `${toleranceSecs} s`],
        ["Rate limit", rateLimit ? `${rateLimit} per second` : "none"],
        ["Forwarded headers", forwardHeaders.length ? forwardHeaders.join(", ") : null],
        ["Options", Object.keys(options).length ? h("pre", {}, pretty(options)) : null],
        ["Created", when(createdAt)],
        ["Updated", when(updatedAt)],
      ]),
    ),
    stats,
    h("section", { class: "panel" }, h("h2", {}, "Recent events"), events),
    h("section", { class: "panel" }, h("h2", {}, "Rejections"), rejections),
    h("section", { class: "panel" }, h("h2", {}, "Settings"), rotateForm, h("div", { class: "row" }, remove)),
  ];
}
