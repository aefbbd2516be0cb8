// Endpoints: the list, the add/edit form, and an endpoint's page (details, signing secret, test event, deliveries).

import { path } from "../shared/api.js";
import { ago, field, h, notify, replace, when } from "../shared/dom.js";
import {
  action,
  allEventTypes,
  canWrite,
  confirmDialog,
  crumbs,
  details,
  fail,
  go,
  heading,
  isCurrent,
  mount,
  pageError,
  pager,
  route,
  state,
  table,
} from "./common.js";
import { deliveriesSection } from "./deliveries.js";

const endpointsPath = () => path`/api/v1/app/${state.appId}/endpoint`;
const endpointPath = (id) => path`/api/v1/app/${state.appId}/endpoint/${id}`;

function stateBadge(ep) {
  return ep.disabled
    ? h("span", { class: "badge badge-disabled" }, "disabled")
    : h("span", { class: "badge badge-success" }, "enabled");
}

function eventTypesText(ep) {
  const types = ep.filterTypes || ep.eventTypes;
  return types && types.length ? types.join(", ") : "all event types";
}

export function endpointList(view) {
  const list = pager({
    label: "Endpoints",
    empty: canWrite()
      ? "No endpoints yet. Add one to start receiving webhooks."
      : "No endpoints yet.",
    load: (iterator) => state.api.get(endpointsPath(), { limit: 50, iterator }),
    render: (items) =>
      table(
        "Endpoints",
        [
          ["URL", (ep) => h("a", { href: route("endpoints", ep.id), class: "mono endpoint-url" }, ep.url)],
          ["Status", stateBadge],
          ["Event types", (ep) => h("span", { class: "muted" }, eventTypesText(ep)), "hide-narrow"],
          ["Description", (ep) => ep.description || h("span", { class: "muted" }, "—"), "hide-narrow"],
        ],
        items,
      ),
  });
  mount(
    view,
    h(
      "div",
      { class: "spread" },
      heading("Endpoints"),
      canWrite() ? h("a", { class: "button", href: "#/endpoints/new" }, "Add endpoint") : null,
    ),
    h(
      "p",
      { class: "muted" },
      "Webhooks are sent to these URLs as HTTP POST requests, signed with each endpoint's secret. ",
      h("a", { href: "#/verify" }, "How to verify the signatures"),
      ".",
    ),
    list.el,
  );
  list.refresh();
}

// The event types as checkboxes with their descriptions; none checked means every event type.
function eventTypePicker(types, selected) {
  const chosen = new Set(selected || []);
  // Types the endpoint filters on that are no longer listed (archived) stay, so saving does not drop them.
  const known = new Set(types.map((t) => t.name));
  const extra = [...chosen].filter((name) => !known.has(name)).map((name) => ({ name, description: "(archived)" }));
  const all = [...types, ...extra];
  const hintId = "event-types-hint";
  return h(
    "fieldset",
    { class: "portal-event-types", "aria-describedby": hintId },
    h("legend", {}, "Event types"),
    h("small", { id: hintId, class: "muted" }, "Leave every box unchecked to receive all event types."),
    all.length === 0
      ? h("p", { class: "muted" }, "No event types are defined: this endpoint receives every message.")
      : h(
          "ul",
          { class: "portal-checklist" },
          all.map((type, i) => {
            const id = `et-${i}`;
            return h(
              "li",
              {},
              h("input", { type: "checkbox", id, name: "eventType", value: type.name, checked: chosen.has(type.name) }),
              h(
                "label",
                { for: id },
                h("code", {}, type.name),
                type.deprecated ? h("span", { class: "badge badge-pending" }, "deprecated") : null,
                type.description ? h("span", { class: "muted portal-type-description" }, type.description) : null,
              ),
            );
          }),
        ),
  );
}

function splitList(text) {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

// Add (`id` null) or edit an endpoint.
export async function endpointForm(view, id) {
  let ep = null;
  let types;
  try {
    [ep, types] = await Promise.all([id ? state.api.get(endpointPath(id)) : null, allEventTypes()]);
  } catch (err) {
    return pageError(view, err, "endpoint");
  }
  const url = h("input", { type: "url", name: "url", required: true, value: ep?.url || "", placeholder: "https://example.com/webhooks", autocomplete: "off" });
  const description = h("input", { type: "text", name: "description", value: ep?.description || "", maxlength: 8192 });
  const channels = h("input", { type: "text", name: "channels", value: (ep?.channels || []).join(", "), placeholder: "e.g. project-1, eu" });
  const rate = h("input", { type: "number", name: "rateLimit", min: 1, step: 1, inputmode: "numeric", value: ep?.throttleRate ?? "" });
  const problem = h("p", { class: "error-text", role: "alert" });
  const submit = h("button", { type: "submit" }, id ? "Save" : "Add endpoint");
  const cancelHref = id ? route("endpoints", id) : "#/endpoints";
  const form = h(
    "form",
    { class: "panel portal-form" },
    field("Endpoint URL", url, "Where webhooks are sent, as HTTP POST requests."),
    field("Description", description, "Optional: what this endpoint is for."),
    eventTypePicker(types, ep?.filterTypes || ep?.eventTypes),
    h(
      "details",
      { class: "portal-advanced", open: Boolean(ep?.channels?.length || ep?.throttleRate) },
      h("summary", {}, "Advanced"),
      field("Channels", channels, "Optional: only messages sent on one of these channels (comma-separated, at most 10)."),
      field("Rate limit (deliveries per second)", rate, "Optional: leave empty for no limit."),
    ),
    problem,
    h("div", { class: "row" }, submit, h("a", { class: "button secondary", href: cancelHref }, "Cancel")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    if (!form.reportValidity()) return;
    const eventTypes = [...form.querySelectorAll('input[name="eventType"]:checked')].map((input) => input.value);
    const channelList = splitList(channels.value);
    const rateValue = rate.value.trim() === "" ? null : Number(rate.value);
    const body = {
      url: url.value.trim(),
      description: description.value,
      eventTypes: eventTypes.length ? eventTypes : null,
      channels: channelList.length ? channelList : null,
      throttleRate: rateValue,
    };
    submit.disabled = true;
    try {
      if (id) {
        await state.api.patch(endpointPath(id), body);
        notify("Endpoint saved");
        go("endpoints", id);
      } else {
        for (const key of ["eventTypes", "channels", "throttleRate"]) if (body[key] === null) delete body[key];
        const created = await state.api.post(endpointsPath(), body);
        notify("Endpoint added");
        go("endpoints", created.id);
      }
    } catch (err) {
      problem.textContent = err.message;
      fail(err);
    } finally {
      submit.disabled = false;
    }
  });
  mount(
    view,
    crumbs(["Endpoints", "#/endpoints"], ...(id ? [[ep.url, route("endpoints", id)]] : []), [id ? "Edit" : "Add endpoint"]),
    heading(id ? "Edit endpoint" : "Add endpoint"),
    form,
  );
}

// The signing secret: hidden until revealed, copyable, and (with a writing token) rotatable.
function secretPanel(id) {
  const masked = "••••••••••••••••••••••••••••••";
  let secret = null;
  const value = h("code", { id: "secret-value", class: "mono portal-secret", "aria-live": "polite" }, masked);
  const fetchSecret = async () => {
    if (secret === null) secret = (await state.api.get(`${endpointPath(id)}/secret`)).key;
    return secret;
  };
  const reveal = h("button", { type: "button", class: "secondary small", "aria-pressed": "false" }, "Reveal");
  reveal.addEventListener(
    "click",
    action(async () => {
      if (reveal.getAttribute("aria-pressed") === "true") {
        value.textContent = masked;
        reveal.textContent = "Reveal";
        reveal.setAttribute("aria-pressed", "false");
        return;
      }
      value.textContent = await fetchSecret();
      reveal.textContent = "Hide";
      reveal.setAttribute("aria-pressed", "true");
    }),
  );
  const copy = h(
    "button",
    {
      type: "button",
      class: "secondary small",
      onclick: action(async () => {
        const key = await fetchSecret();
        try {
          await navigator.clipboard.writeText(key);
          notify("Secret copied to the clipboard");
        } catch {
          notify("The browser refused the clipboard; reveal the secret and copy it by hand", "error");
        }
      }),
    },
    "Copy",
  );
  const rotate = canWrite()
    ? h(
        "button",
        {
          type: "button",
          class: "secondary small",
          onclick: action(async () => {
            const ok = await confirmDialog({
              title: "Rotate the signing secret?",
              text: "A new secret is made at once. The current one keeps signing deliveries for 24 hours, so your receivers can switch to the new one without missing a webhook.",
              confirm: "Rotate secret",
            });
            if (!ok) return;
            const rotated = await state.api.post(`${endpointPath(id)}/secret/rotate`, {});
            secret = rotated?.key ?? null;
            if (reveal.getAttribute("aria-pressed") === "true") value.textContent = await fetchSecret();
            notify("The secret was rotated; the previous one keeps working for 24 hours");
          }),
        },
        "Rotate…",
      )
    : null;
  return h(
    "section",
    { class: "panel", "aria-labelledby": "secret-heading" },
    h("h2", { id: "secret-heading" }, "Signing secret"),
    h(
      "p",
      { class: "muted" },
      "Every webhook to this endpoint is signed with this secret. ",
      h("a", { href: "#/verify" }, "Verify the signatures"),
      " to be sure a request comes from us. Keep it private.",
    ),
    h("div", { class: "row portal-secret-row" }, value, reveal, copy, rotate),
  );
}

// The newest schema's first example of an event type, if any, as the test payload.
function exampleOf(type) {
  const versions = type?.schemas && typeof type.schemas === "object" ? Object.entries(type.schemas) : [];
  const newest = versions
    .filter(([version]) => /^\d+$/.test(version))
    .sort(([a], [b]) => Number(b) - Number(a))[0];
  const example = newest?.[1]?.examples?.[0];
  return example && typeof example === "object" && !Array.isArray(example) ? example : null;
}

// "Send test event": one message to this endpoint alone, whatever its filters.
function testPanel(ep, onSent) {
  const panel = h("section", { class: "panel", "aria-labelledby": "test-heading", hidden: true });
  const typeSelect = h("select", { name: "eventType" });
  const typeInput = h("input", { type: "text", name: "eventTypeName", value: "test.event", pattern: "[a-zA-Z0-9\\-_.]+", required: true });
  const payload = h("textarea", { name: "payload", rows: 8, spellcheck: "false" });
  const problem = h("p", { class: "error-text", role: "alert" });
  const send = h("button", { type: "submit" }, "Send test event");
  let types = [];
  const typeField = h("div");
  const form = h(
    "form",
    {},
    typeField,
    field("Payload (a JSON object)", payload),
    problem,
    h("div", { class: "row" }, send, h("button", { type: "button", class: "secondary", onclick: () => (panel.hidden = true) }, "Close")),
  );
  const fillExample = () => {
    const type = types.find((t) => t.name === typeSelect.value);
    const example = exampleOf(type);
    payload.value = JSON.stringify(example || { test: true, sentAt: new Date().toISOString() }, null, 2);
  };
  typeSelect.addEventListener("change", fillExample);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.textContent = "";
    if (!form.reportValidity()) return;
    let body;
    try {
      body = JSON.parse(payload.value);
    } catch (err) {
      problem.textContent = `The payload is not valid JSON: ${err.message}`;
      return;
    }
    if (!body || typeof body !== "object" || Array.isArray(body)) {
      problem.textContent = "The payload must be a JSON object, such as {\"id\": 1}.";
      return;
    }
    const eventType = types.length ? typeSelect.value : typeInput.value.trim();
    send.disabled = true;
    try {
      const message = await state.api.post(`${endpointPath(ep.id)}/send-example`, { eventType, payload: body });
      notify(`Test event ${message.id} sent`);
      panel.hidden = true;
      onSent();
    } catch (err) {
      problem.textContent = err.message;
      fail(err);
    } finally {
      send.disabled = false;
    }
  });
  panel.append(
    h("h2", { id: "test-heading" }, "Send a test event"),
    h("p", { class: "muted" }, "Sends one message to this endpoint only, so you can check your receiver."),
    form,
  );
  return {
    el: panel,
    async open() {
      panel.hidden = false;
      if (!typeField.childElementCount) {
        try {
          const all = await allEventTypes();
          const filter = ep.filterTypes || ep.eventTypes;
          types = filter && filter.length ? all.filter((t) => filter.includes(t.name)) : all;
        } catch (err) {
          fail(err);
          types = [];
        }
        if (types.length) {
          replace(typeSelect, types.map((t) => h("option", { value: t.name }, t.name)));
          typeField.append(field("Event type", typeSelect));
        } else {
          typeField.append(field("Event type", typeInput));
        }
        fillExample();
      }
      (types.length ? typeSelect : typeInput).focus();
    },
  };
}

export async function endpointPage(view, id) {
  let ep;
  try {
    ep = await state.api.get(endpointPath(id));
  } catch (err) {
    return pageError(view, err, "endpoint");
  }
  if (!isCurrent(view)) return;
  const deliveries = deliveriesSection(ep);
  const tester = canWrite() ? testPanel(ep, () => deliveries.refresh()) : null;
  const actions = canWrite()
    ? h(
        "div",
        { class: "row portal-actions" },
        h("a", { class: "button secondary", href: route("endpoints", ep.id, "edit") }, "Edit"),
        h(
          "button",
          {
            type: "button",
            class: "secondary",
            onclick: action(async () => {
              if (!ep.disabled) {
                const ok = await confirmDialog({
                  title: "Disable this endpoint?",
                  text: "No webhooks are sent to a disabled endpoint until you enable it again.",
                  confirm: "Disable",
                });
                if (!ok) return;
              }
              await state.api.patch(endpointPath(ep.id), { disabled: !ep.disabled });
              notify(ep.disabled ? "Endpoint enabled" : "Endpoint disabled");
              state.rerender();
            }),
          },
          ep.disabled ? "Enable" : "Disable",
        ),
        ep.disabled
          ? null
          : h("button", { type: "button", class: "secondary", onclick: () => tester.open() }, "Send test event"),
        h(
          "button",
          {
            type: "button",
            class: "danger",
            onclick: action(async () => {
              const ok = await confirmDialog({
                title: "Delete this endpoint?",
                text: `Webhooks will no longer be sent to ${ep.url}, and its delivery history goes with it. This cannot be undone.`,
                confirm: "Delete endpoint",
                danger: true,
              });
              if (!ok) return;
              await state.api.delete(endpointPath(ep.id));
              notify("Endpoint deleted");
              go("endpoints");
            }),
          },
          "Delete…",
        ),
      )
    : null;
  mount(
    view,
    crumbs(["Endpoints", "#/endpoints"], [ep.url]),
    h("div", { class: "portal-title" }, heading(h("span", { class: "visually-hidden" }, "Endpoint "), h("span", { class: "endpoint-url" }, ep.url)), stateBadge(ep)),
    ep.description ? h("p", {}, ep.description) : null,
    actions,
    tester?.el,
    h(
      "section",
      { class: "panel", "aria-labelledby": "details-heading" },
      h("h2", { id: "details-heading" }, "Details"),
      details([
        ["Event types", eventTypesText(ep)],
        ["Channels", ep.channels?.length ? ep.channels.join(", ") : "all channels"],
        ["Rate limit", ep.throttleRate ? `${ep.throttleRate} per second` : "none"],
        ["Endpoint id", h("code", { class: "mono" }, ep.id)],
        ["Created", h("span", { title: when(ep.createdAt) }, ago(ep.createdAt))],
        ["Updated", h("span", { title: when(ep.updatedAt) }, ago(ep.updatedAt))],
      ]),
    ),
    secretPanel(ep.id),
    deliveries.el,
  );
  deliveries.start(view);
}
