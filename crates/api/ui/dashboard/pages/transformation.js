// An endpoint's transformation: the JavaScript `handler(webhook)` in a text editor, saved (checked by the
// server's sandbox), enabled or removed, and simulated on a payload to see the delivery it would make.

import { ApiError, path } from "../../shared/api.js";
import { h, replace, pretty, field, notify } from "../../shared/dom.js";
import { pageHeader, act, facts, mono, table, parseJson, messageOf } from "../ui.js";
import { loadEndpoint, endpointCrumbs } from "./endpoint.js";
import { eventTypeNames, datalist } from "./messages.js";

const TEMPLATE = `function handler(webhook) {
  // webhook: { method, url, payload, eventType, headers, cancel, msgId, eventId, timestamp }
  // Change what is sent, e.g.:
  // webhook.payload = { type: webhook.eventType, data: webhook.payload };
  // webhook.headers = { "X-Event-Type": webhook.eventType };
  return webhook;
}
`;

export async function transformationPage(ctx) {
  const { api } = ctx;
  const [appRef, epRef] = ctx.params;
  const { app, endpoint } = await loadEndpoint(api, appRef, epRef);
  const base = path`/api/v1/app/${app.id}/endpoint/${endpoint.id}/transformation/`;
  const [current, names] = await Promise.all([api.get(base), eventTypeNames(api)]);

  const code = h("textarea", { name: "code", rows: "16", spellcheck: "false", class: "code" }, current.code ?? TEMPLATE);
  const enabled = h("input", { type: "checkbox", name: "enabled", checked: current.enabled });
  const state = h("p", { class: "muted", role: "status" }, describe(current));
  const saveProblem = h("p", { class: "error-text", role: "alert" });

  const save = h("button", { type: "button" }, "Save transformation");
  save.addEventListener("click", async () => {
    saveProblem.textContent = "";
    save.disabled = true;
    try {
      await api.patch(base, { code: code.value, enabled: enabled.checked });
      const stored = await api.get(base);
      state.textContent = describe(stored);
      remove.hidden = false;
      notify("Transformation saved");
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      saveProblem.textContent = messageOf(error);
    } finally {
      save.disabled = false;
    }
  });
  const remove = h("button", { type: "button", class: "danger", hidden: current.code === null }, "Remove transformation");
  remove.addEventListener("click", async () => {
    if (!confirm("Remove this endpoint's transformation? Deliveries are then sent as published.")) return;
    const done = await act(remove, () => api.patch(base, { code: null }), { success: "Transformation removed" });
    if (done !== undefined) {
      code.value = TEMPLATE;
      enabled.checked = false;
      state.textContent = describe({ code: null, enabled: false });
      remove.hidden = true;
    }
  });

  const eventType = h("input", { name: "eventType", value: names[0] || "example.event", list: "simulate-event-types", spellcheck: "false" });
  const payload = h("textarea", { name: "payload", rows: "6", spellcheck: "false", class: "code" }, '{\n  "id": 1\n}');
  const result = h("div", { class: "simulation", role: "status", "aria-live": "polite" });
  const simulate = h("button", { type: "button", class: "secondary" }, "Simulate");
  simulate.addEventListener("click", async () => {
    let body;
    try {
      body = { code: code.value, eventType: eventType.value.trim(), payload: parseJson(payload.value, "The payload") };
    } catch (error) {
      replace(result, h("p", { class: "error-text" }, error.message));
      return;
    }
    simulate.disabled = true;
    replace(result, h("p", { class: "muted" }, "Running…"));
    try {
      const out = await api.post(`${base}simulate/`, body);
      replace(result, simulation(out));
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      replace(result, h("p", { class: "error-text" }, `The transformation failed: ${messageOf(error)}`));
    } finally {
      simulate.disabled = false;
    }
  });

  return [
    pageHeader("Transformation", endpointCrumbs(app, endpoint)),
    h("p", { class: "mono subtitle" }, endpoint.url),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "Code"),
      state,
      field("Transformation code", code, "JavaScript declaring function handler(webhook); it runs before each delivery is signed."),
      h("label", { class: "check" }, enabled, " Enabled: run it on every delivery of this endpoint"),
      saveProblem,
      h("div", { class: "row" }, save, remove),
    ),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "Simulate"),
      h("p", { class: "muted" }, "Runs the code in the editor (saved or not) on this message, without sending anything."),
      field("Event type", eventType),
      datalist("simulate-event-types", names),
      field("Payload (JSON)", payload),
      simulate,
      result,
    ),
  ];
}

function describe(transformation) {
  if (transformation.code === null || transformation.code === undefined) return "This endpoint has no transformation.";
  return transformation.enabled ? "A transformation is saved and runs on every delivery." : "A transformation is saved but disabled.";
}

function simulation(out) {
  return h(
    "div",
    {},
    h("h3", {}, "Result"),
    out.cancel
      ? h("p", {}, h("strong", {}, "Cancelled: "), "this delivery would not be sent.")
      : facts([
          ["Method", out.method],
          ["URL", mono(out.url)],
        ]),
    Object.keys(out.headers || {}).length
      ? table(
          [
            { label: "Header", cell: ([name]) => mono(name) },
            { label: "Value", cell: ([, value]) => mono(value) },
          ],
          Object.entries(out.headers),
          { caption: "Extra headers" },
        )
      : h("p", { class: "muted" }, "No extra headers."),
    h("h3", {}, "Payload sent"),
    h("pre", { tabindex: "0", "aria-label": "Transformed payload", class: "simulated-payload" }, pretty(out.payload)),
  );
}
