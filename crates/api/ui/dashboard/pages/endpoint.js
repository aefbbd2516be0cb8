// One endpoint: its settings and delivery counts, enable/disable/delete, its signing secret (reveal, copy,
// rotate), a test send, its messages by delivery status and its attempts; and the form that creates or edits it.

import { ApiError, path } from "../../shared/api.js";
import { h, replace, when, statusBadge, ago, field, formValues, notify } from "../../shared/dom.js";
import {
  pageHeader, pagedList, table, link, href, mono, act, facts, listText, card, enabledBadge, revealed, section, select,
  splitList, parseJson, messageOf, localToIso, submitter,
} from "../ui.js";
import { eventTypeNames, datalist, attemptColumns } from "./messages.js";

const PAGE = 25;

export async function loadEndpoint(api, appRef, epRef) {
  const [app, endpoint] = await Promise.all([
    api.get(path`/api/v1/app/${appRef}/`),
    api.get(path`/api/v1/app/${appRef}/endpoint/${epRef}/`),
  ]);
  return { app, endpoint };
}

export function endpointCrumbs(app, endpoint) {
  const crumbs = [
    ["Applications", href("apps")],
    [app.name, href("apps", app.id)],
  ];
  if (endpoint) crumbs.push([endpoint.description || endpoint.id, href("apps", app.id, "endpoints", endpoint.id)]);
  return crumbs;
}

function retryText(endpoint) {
  if (!endpoint.retrySchedule) return "the server's schedule";
  if (!endpoint.retrySchedule.length) return "never retried";
  return endpoint.retrySchedule.map((s) => `${s} s`).join(", ");
}

export async function endpointPage(ctx) {
  const { api } = ctx;
  const [appRef, epRef] = ctx.params;
  const { app, endpoint } = await loadEndpoint(api, appRef, epRef);
  const base = path`/api/v1/app/${app.id}/endpoint/${endpoint.id}`;

  const counts = section("Deliveries", async () => {
    const stats = await api.get(`${base}/stats/`);
    return h(
      "div",
      { class: "grid-cards" },
      card(stats.success, "delivered"),
      card(stats.pending, "pending"),
      card(stats.sending, "sending"),
      card(stats.fail, "failed"),
    );
  });

  const toggle = h("button", { type: "button", class: "secondary" }, endpoint.disabled ? "Enable" : "Disable");
  toggle.addEventListener("click", async () => {
    const disabled = !endpoint.disabled;
    if (disabled && !confirm("Disable this endpoint? Its deliveries stop until it is enabled again.")) return;
    const updated = await act(toggle, () => api.patch(`${base}/`, { disabled }), {
      success: disabled ? "Endpoint disabled" : "Endpoint enabled",
    });
    if (updated) ctx.refresh();
  });
  const remove = h("button", { type: "button", class: "danger" }, "Delete");
  remove.addEventListener("click", async () => {
    if (!confirm(`Delete the endpoint ${endpoint.url}? Its pending deliveries are dropped. This cannot be undone.`)) return;
    const done = await act(remove, () => api.delete(`${base}/`), { success: "Endpoint deleted" });
    if (done !== undefined) ctx.go(href("apps", app.id));
  });

  const settings = h(
    "section",
    { class: "panel" },
    h("h2", {}, "Settings"),
    facts([
      ["Status", enabledBadge(endpoint.disabled)],
      ["ID", mono(endpoint.id)],
      ["UID", endpoint.uid ? mono(endpoint.uid) : null],
      ["URL", mono(endpoint.url)],
      ["Description", endpoint.description || null],
      ["Event types", listText(endpoint.filterTypes)],
      ["Channels", listText(endpoint.channels)],
      ["Rate limit", endpoint.rateLimit ? `${endpoint.rateLimit} per second` : "none"],
      ["Ordering", endpoint.ordering],
      ["Signature schemes", endpoint.signatureSchemes.join(", ")],
      ["Standard headers", endpoint.standardHeaders],
      [
        "Signature headers",
        endpoint.signatureHeaders.length
          ? endpoint.signatureHeaders.map((s) => `${s.header} (${s.algorithm}, ${s.encoding}${s.prefix ? `, prefix ${s.prefix}` : ""})`).join("; ")
          : null,
      ],
      ["Retry schedule", retryText(endpoint)],
      ["Retry 4xx answers", endpoint.retryClientErrors === null ? "the server's rule" : endpoint.retryClientErrors ? "yes" : "no"],
      ["Held back by", endpoint.blockedBy ? link(endpoint.blockedBy.msgId, "apps", app.id, "messages", endpoint.blockedBy.msgId) : null],
      ["Created", when(endpoint.createdAt)],
      ["Updated", when(endpoint.updatedAt)],
    ]),
    h(
      "div",
      { class: "row" },
      h("a", { class: "button", href: href("apps", app.id, "endpoints", endpoint.id, "edit") }, "Edit"),
      h("a", { class: "button secondary", href: href("apps", app.id, "endpoints", endpoint.id, "transformation") }, "Transformation"),
      h("a", { class: "button secondary", href: href("apps", app.id, "endpoints", endpoint.id, "recover") }, "Recover or replay"),
      toggle,
      remove,
    ),
  );

  return [
    pageHeader(endpoint.description || endpoint.url, endpointCrumbs(app)),
    h("p", { class: "mono subtitle" }, endpoint.url),
    settings,
    counts,
    secretPanel(api, base),
    testSendPanel(ctx, app, endpoint, base),
    endpointMessages(api, app, endpoint),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "Attempts"),
      pagedList({
        label: "Attempts",
        load: (iterator) => api.get(path`/api/v1/app/${app.id}/attempt/endpoint/${endpoint.id}/`, { limit: PAGE, iterator }),
        render: (list) =>
          table(attemptColumns(app.id, { withEndpoint: false, withMessage: true }), list, {
            caption: "The endpoint's attempts",
            empty: "No attempt yet.",
          }),
      }),
    ),
  ];
}

function secretPanel(api, base) {
  const out = h("div", {});
  const reveal = h("button", { type: "button", class: "secondary" }, "Reveal secret");
  const show = (key) => replace(out, revealed("Signing secret", key, "Receivers verify signatures with it; keep it private."));
  reveal.addEventListener("click", async () => {
    if (out.childElementCount) {
      replace(out);
      reveal.textContent = "Reveal secret";
      return;
    }
    const secret = await act(reveal, () => api.get(`${base}/secret/`));
    if (secret) {
      show(secret.key);
      reveal.textContent = "Hide secret";
    }
  });
  const grace = h("input", { type: "number", name: "graceHours", min: "0", max: "168", value: "24", class: "narrow" });
  const rotate = h("button", { type: "button", class: "secondary" }, "Rotate secret");
  rotate.addEventListener("click", async () => {
    const hours = Number(grace.value || 0);
    if (!confirm(`Rotate the signing secret? The old one keeps signing for ${hours} hour(s).`)) return;
    const secret = await act(rotate, () => api.post(`${base}/secret/rotate/`, { gracePeriodSeconds: Math.round(hours * 3600) }), {
      success: "Secret rotated",
    });
    if (secret) {
      show(secret.key);
      reveal.textContent = "Hide secret";
    }
  });
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "Signing secret"),
    h("div", { class: "row" }, reveal),
    h("div", { class: "row align-end rotate" }, field("Old secret valid for (hours)", grace), rotate),
    out,
  );
}

function testSendPanel(ctx, app, endpoint, base) {
  const { api } = ctx;
  const names = datalist("test-event-types", []);
  eventTypeNames(api).then((list) => replace(names, list.map((name) => h("option", { value: name }))));
  const result = h("div", { role: "status" });
  const form = h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        const values = formValues(event.target);
        const body = { eventType: values.eventType.trim() };
        try {
          if (values.payload.trim()) body.payload = parseJson(values.payload, "The payload");
        } catch (error) {
          notify(error.message, "error");
          return;
        }
        const msg = await act(submitter(event), () => api.post(`${base}/send-example/`, body), { success: "Test event sent" });
        if (msg) replace(result, h("p", {}, "Sent as message ", link(msg.id, "apps", app.id, "messages", msg.id), "."));
      },
    },
    field("Event type", h("input", { name: "eventType", required: true, list: "test-event-types", spellcheck: "false" })),
    names,
    field(
      "Payload (JSON, optional)",
      h("textarea", { name: "payload", rows: "4", spellcheck: "false" }),
      "Leave empty to send the first example of the event type's schema.",
    ),
    h("button", { type: "submit", disabled: endpoint.disabled }, "Send test event"),
    endpoint.disabled ? h("p", { class: "muted" }, "Enable the endpoint to send it a test event.") : null,
    result,
  );
  return h("section", { class: "panel" }, h("h2", {}, "Send a test event"), form);
}

const STATUSES = [
  ["", "Any status"],
  ["0", "Succeeded"],
  ["1", "Pending"],
  ["2", "Failed"],
  ["3", "Sending"],
];

function endpointMessages(api, app, endpoint) {
  const filters = { status: "", eventType: "", channel: "", after: "", before: "" };
  const list = pagedList({
    label: "Messages of this endpoint",
    load: (iterator) =>
      api.get(path`/api/v1/app/${app.id}/endpoint/${endpoint.id}/msg/`, {
        limit: PAGE,
        iterator,
        with_content: false,
        status: filters.status,
        event_types: filters.eventType || undefined,
        channel: filters.channel,
        after: filters.after,
        before: filters.before,
      }),
    render: (messages) =>
      table(
        [
          { label: "Message", cell: (m) => link(m.id, "apps", app.id, "messages", m.id) },
          { label: "Event type", cell: (m) => mono(m.eventType) },
          { label: "Delivery", cell: (m) => statusBadge(m.status) },
          { label: "Next attempt", cell: (m) => (m.nextAttempt ? ago(m.nextAttempt) : "—"), wide: true },
          { label: "Created", cell: (m) => h("span", { title: when(m.timestamp) }, ago(m.timestamp)) },
        ],
        messages,
        { caption: "Messages of this endpoint", empty: "No messages match." },
      ),
  });
  const form = h(
    "form",
    {
      class: "inline",
      onsubmit: (event) => {
        event.preventDefault();
        const values = formValues(event.target);
        filters.status = values.status;
        filters.eventType = values.eventType.trim();
        filters.channel = values.channel.trim();
        filters.after = localToIso(values.after) || "";
        filters.before = localToIso(values.before) || "";
        list.firstPage();
      },
    },
    field("Delivery status", select("status", STATUSES, "")),
    field("Event type", h("input", { name: "eventType", spellcheck: "false" })),
    field("Channel", h("input", { name: "channel", spellcheck: "false" })),
    field("Created after", h("input", { name: "after", type: "datetime-local" })),
    field("Created before", h("input", { name: "before", type: "datetime-local" })),
    h("div", { class: "field" }, h("button", { type: "submit" }, "Filter")),
  );
  return h("section", { class: "panel" }, h("h2", {}, "Messages"), form, list);
}

// ---- the create / edit form ----

const ALGORITHMS = [["sha256", "SHA-256"], ["sha1", "SHA-1"], ["sha512", "SHA-512"]];
const ENCODINGS = [["hex", "hex"], ["base64", "base64"]];

function signatureHeaderRow(entry = {}, index) {
  const row = h(
    "fieldset",
    { class: "sig-row" },
    h("legend", {}, `Signature header ${index + 1}`),
    h(
      "div",
      { class: "fields" },
      field("Header name", h("input", { name: "sigHeader", value: entry.header || "", spellcheck: "false", placeholder: "X-Signature" })),
      field("Algorithm", select("sigAlgorithm", ALGORITHMS, entry.algorithm || "sha256")),
      field("Encoding", select("sigEncoding", ENCODINGS, entry.encoding || "hex")),
      field("Prefix", h("input", { name: "sigPrefix", value: entry.prefix || "", spellcheck: "false", placeholder: "sha256=" })),
    ),
  );
  const removeButton = h("button", { type: "button", class: "secondary small" }, `Remove signature header ${index + 1}`);
  removeButton.addEventListener("click", () => row.remove());
  row.append(removeButton);
  return row;
}

function headersToText(headers) {
  return Object.entries(headers || {})
    .map(([name, value]) => `${name}: ${value}`)
    .join("\n");
}

function textToHeaders(text) {
  const headers = {};
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const at = line.indexOf(":");
    if (at < 1) throw new Error(`Custom headers: “${line.trim()}” is not “Name: value”`);
    headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return headers;
}

export async function endpointFormPage(ctx) {
  const { api } = ctx;
  const [appRef, epRef] = ctx.params;
  const editing = epRef !== undefined;
  const [app, endpoint, types, headers] = await Promise.all([
    api.get(path`/api/v1/app/${appRef}/`),
    editing ? api.get(path`/api/v1/app/${appRef}/endpoint/${epRef}/`) : null,
    api.get("/api/v1/event-type/", { limit: 250, with_content: false }).then((p) => p.data),
    editing ? api.get(path`/api/v1/app/${appRef}/endpoint/${epRef}/headers/`).then((r) => r.headers) : {},
  ]);
  const ep = endpoint || {};
  const chosen = new Set(ep.filterTypes || []);
  const problem = h("p", { class: "error-text", role: "alert" });

  const typeChecks = types.length
    ? h(
        "div",
        { class: "checks" },
        types.map((t) =>
          h(
            "label",
            {},
            h("input", { type: "checkbox", name: "type", value: t.name, checked: chosen.has(t.name), dataset: { eventType: t.name } }),
            ` ${t.name}`,
            t.archived ? h("span", { class: "muted" }, " (archived)") : null,
          ),
        ),
      )
    : h("p", { class: "muted" }, "No event types exist yet, so the endpoint receives every message. ", link("Create event types", "event-types"), " to filter.");

  const sigRows = h("div", {}, (ep.signatureHeaders || []).map((entry, i) => signatureHeaderRow(entry, i)));
  const addSig = h("button", { type: "button", class: "secondary small" }, "Add signature header");
  addSig.addEventListener("click", () => {
    if (sigRows.children.length >= 4) {
      notify("An endpoint has at most 4 signature headers of its own", "error");
      return;
    }
    const row = signatureHeaderRow({}, sigRows.children.length);
    sigRows.append(row);
    row.querySelector("input").focus();
  });

  const clientErrors = ep.retryClientErrors === true ? "yes" : ep.retryClientErrors === false ? "no" : "";

  const form = h(
    "form",
    { class: "endpoint-form", novalidate: false },
    h(
      "fieldset",
      {},
      h("legend", {}, "Delivery"),
      field("URL", h("input", { name: "url", type: "url", required: true, value: ep.url || "", class: "wide", spellcheck: "false" })),
      field("Description", h("input", { name: "description", value: ep.description || "", class: "wide" })),
      field("UID (optional)", h("input", { name: "uid", value: ep.uid || "", spellcheck: "false" })),
      field("Channels", h("input", { name: "channels", value: (ep.channels || []).join(", "), spellcheck: "false" }), "Comma-separated; empty: every channel."),
      field("Rate limit (deliveries per second)", h("input", { name: "rateLimit", type: "number", min: "1", value: ep.rateLimit ?? "" }), "Empty: no limit."),
      field("Ordering", select("ordering", [["unordered", "Unordered (concurrent)"], ["fifo", "FIFO (one at a time, in order)"]], ep.ordering || "unordered")),
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "disabled", checked: !!ep.disabled }), " Disabled"),
    ),
    h(
      "fieldset",
      {},
      h("legend", {}, "Event types"),
      h("p", { class: "muted", id: "types-hint" }, "Only the checked event types are delivered; none checked: every event type."),
      typeChecks,
    ),
    h(
      "fieldset",
      {},
      h("legend", {}, "Signatures"),
      editing
        ? null
        : field(
            "Signing secret (optional)",
            h("input", { name: "secret", spellcheck: "false", autocomplete: "off" }),
            "whsec_… or a plain secret of 16–256 characters; generated when empty.",
          ),
      field(
        "Standard headers",
        select("standardHeaders", [["both", "webhook-* and svix-*"], ["webhook", "webhook-* only"], ["svix", "svix-* only"], ["none", "none"]], ep.standardHeaders || "both"),
      ),
      h(
        "label",
        { class: "check" },
        h("input", { type: "checkbox", name: "hmacHex", checked: (ep.signatureSchemes || []).includes("hmac-hex") }),
        " Also sign with hex HMAC (X-Webhook-Signature)",
      ),
      h("p", { class: "group-label" }, "Signature headers of its own"),
      sigRows,
      addSig,
    ),
    h(
      "fieldset",
      {},
      h("legend", {}, "Retries"),
      field(
        "Retry schedule (seconds)",
        h("input", { name: "retrySchedule", value: ep.retrySchedule ? ep.retrySchedule.join(", ") || "none" : "", spellcheck: "false" }),
        "Seconds before each retry, comma-separated (e.g. 5, 300, 1800). Empty: the server's schedule; “none”: never retry.",
      ),
      field("Retry 4xx answers", select("retryClientErrors", [["", "The server's rule"], ["yes", "Yes"], ["no", "No (a 4xx ends the delivery)"]], clientErrors)),
    ),
    h(
      "fieldset",
      {},
      h("legend", {}, "Custom headers"),
      field(
        "Headers sent with every delivery",
        h("textarea", { name: "headers", rows: "3", spellcheck: "false" }, headersToText(headers)),
        "One “Name: value” per line.",
      ),
    ),
    problem,
    h(
      "div",
      { class: "row" },
      h("button", { type: "submit" }, editing ? "Save endpoint" : "Create endpoint"),
      h("a", { class: "button secondary", href: editing ? href("apps", app.id, "endpoints", ep.id) : href("apps", app.id) }, "Cancel"),
    ),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    let body;
    let customHeaders;
    try {
      ({ body, customHeaders } = endpointBody(form, editing));
    } catch (error) {
      problem.textContent = error.message;
      return;
    }
    const button = submitter(event);
    button.disabled = true;
    try {
      let saved;
      if (editing) {
        saved = await api.patch(path`/api/v1/app/${app.id}/endpoint/${ep.id}/`, body);
        await api.put(path`/api/v1/app/${app.id}/endpoint/${ep.id}/headers/`, { headers: customHeaders });
        notify("Endpoint saved");
      } else {
        body.headers = customHeaders;
        saved = await api.post(path`/api/v1/app/${app.id}/endpoint/`, body);
        notify("Endpoint created");
      }
      ctx.go(href("apps", app.id, "endpoints", saved.id));
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      problem.textContent = messageOf(error);
      notify(messageOf(error), "error");
    } finally {
      button.disabled = false;
    }
  });

  return [
    pageHeader(editing ? "Edit endpoint" : "New endpoint", endpointCrumbs(app, endpoint)),
    h("section", { class: "panel" }, form),
  ];
}

// The request body from the form: on create, absent fields keep the defaults; on edit, an empty field is `null`
// (back to the default), so what the form shows is what the endpoint has.
function endpointBody(form, editing) {
  const v = formValues(form);
  const clear = editing ? null : undefined;
  const body = { url: v.url.trim(), description: v.description.trim() };
  const types = [...form.querySelectorAll('input[name="type"]:checked')].map((input) => input.value);
  body.filterTypes = types.length ? types : clear;
  const channels = splitList(v.channels);
  body.channels = channels.length ? channels : clear;
  body.rateLimit = v.rateLimit ? Number(v.rateLimit) : clear;
  body.uid = v.uid.trim() || clear;
  body.disabled = v.disabled;
  body.ordering = v.ordering;
  body.standardHeaders = v.standardHeaders;
  body.signatureSchemes = v.hmacHex ? ["standard", "hmac-hex"] : ["standard"];
  const sigs = [...form.querySelectorAll(".sig-row")]
    .map((row) => ({
      header: row.querySelector('[name="sigHeader"]').value.trim(),
      algorithm: row.querySelector('[name="sigAlgorithm"]').value,
      encoding: row.querySelector('[name="sigEncoding"]').value,
      prefix: row.querySelector('[name="sigPrefix"]').value,
    }))
    .filter((s) => s.header);
  body.signatureHeaders = sigs.length ? sigs : clear;
  const schedule = v.retrySchedule.trim();
  if (schedule.toLowerCase() === "none") {
    body.retrySchedule = [];
  } else if (schedule) {
    const waits = splitList(schedule).map((s) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 0) throw new Error(`Retry schedule: “${s}” is not a number of seconds`);
      return n;
    });
    body.retrySchedule = waits;
  } else {
    body.retrySchedule = clear;
  }
  body.retryClientErrors = v.retryClientErrors === "yes" ? true : v.retryClientErrors === "no" ? false : clear;
  if (!editing && v.secret && v.secret.trim()) body.secret = v.secret.trim();
  for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
  return { body, customHeaders: textToHeaders(v.headers) };
}
