// Deliveries: an endpoint's messages and attempts (cursor-paged, filtered by status), one message's attempts at
// the endpoint with its payload, one attempt's response, and resending.

import { ApiError, path } from "../shared/api.js";
import { ago, h, notify, pretty, replace, statusBadge, when } from "../shared/dom.js";
import { action, canWrite, crumbs, details, heading, isCurrent, mount, pageError, pager, route, state, table } from "./common.js";

const PAGE = 25;
// While something is still on its way, lists refresh themselves this often.
const LIVE_EVERY_MS = 2000;
const STATUSES = [
  ["", "All statuses"],
  ["0", "Succeeded"],
  ["1", "Pending"],
  ["3", "Sending"],
  ["2", "Failed"],
];

function time(iso) {
  return h("time", { datetime: iso, title: when(iso) }, ago(iso));
}

function responseCode(attempt) {
  return attempt.responseStatusCode === 0
    ? h("span", { class: "muted" }, "no response")
    : h("code", {}, String(attempt.responseStatusCode));
}

function trigger(attempt) {
  return attempt.triggerType === 1 ? "manual" : "scheduled";
}

function stillMoving(items) {
  return (items || []).some((item) => item.status === 1 || item.status === 3);
}

// Re-runs `refresh` every few seconds while the view is shown and `refresh` says something is still moving
// (it resolves with the items it shows).
function keepFresh(view, anchor, refresh, items) {
  if (!stillMoving(items)) return;
  setTimeout(async () => {
    if (!isCurrent(view) || !anchor.isConnected) return;
    keepFresh(view, anchor, refresh, await refresh());
  }, LIVE_EVERY_MS);
}

async function resend(msgId, endpointId) {
  await state.api.post(path`/api/v1/app/${state.appId}/msg/${msgId}/endpoint/${endpointId}/resend`, {});
  notify("Resend scheduled: a new attempt is on its way");
}

// The endpoint page's "Deliveries" section: tabs for its messages and its attempts.
export function deliveriesSection(ep) {
  let tab = "messages";
  let view = null;
  const status = h("select", { id: "delivery-status" }, STATUSES.map(([value, label]) => h("option", { value }, label)));
  const messages = pager({
    label: "Messages",
    empty: "No messages were sent to this endpoint yet.",
    load: (iterator) =>
      state.api.get(path`/api/v1/app/${state.appId}/endpoint/${ep.id}/msg`, {
        limit: PAGE,
        iterator,
        status: status.value,
        with_content: false,
      }),
    render: (items) =>
      table(
        "Messages sent to this endpoint",
        [
          ["Message", (m) => h("a", { href: route("endpoints", ep.id, "msg", m.id), class: "mono" }, m.id)],
          ["Event type", (m) => h("code", {}, m.eventType)],
          ["Status", (m) => statusBadge(m.status)],
          ["Sent", (m) => time(m.timestamp), "hide-narrow"],
          ["Next attempt", (m) => (m.nextAttempt ? time(m.nextAttempt) : h("span", { class: "muted" }, "—")), "hide-narrow"],
        ],
        items,
      ),
  });
  const attempts = pager({
    label: "Attempts",
    empty: "No delivery attempts to this endpoint yet.",
    load: (iterator) =>
      state.api.get(path`/api/v1/app/${state.appId}/attempt/endpoint/${ep.id}`, {
        limit: PAGE,
        iterator,
        status: status.value,
        with_msg: true,
      }),
    render: (items) =>
      table(
        "Delivery attempts to this endpoint",
        [
          ["Time", (a) => h("a", { href: route("endpoints", ep.id, "msg", a.msgId, "attempt", a.id) }, ago(a.timestamp))],
          ["Status", (a) => statusBadge(a.status)],
          ["Response", responseCode],
          ["Duration", (a) => `${a.responseDurationMs} ms`, "hide-narrow"],
          ["Event type", (a) => (a.msg ? h("code", {}, a.msg.eventType) : "—"), "hide-narrow"],
          ["Trigger", trigger, "hide-narrow"],
        ],
        items,
      ),
  });
  const lists = { messages, attempts };
  const panels = {};
  const tabs = {};
  for (const [name, label] of [
    ["messages", "Messages"],
    ["attempts", "Attempts"],
  ]) {
    tabs[name] = h(
      "button",
      {
        type: "button",
        role: "tab",
        id: `tab-${name}`,
        "aria-controls": `panel-${name}`,
        "aria-selected": name === tab ? "true" : "false",
        tabindex: name === tab ? "0" : "-1",
        onclick: () => select(name, true),
      },
      label,
    );
    panels[name] = h(
      "div",
      { role: "tabpanel", id: `panel-${name}`, "aria-labelledby": `tab-${name}`, hidden: name !== tab },
      lists[name].el,
    );
  }
  const tablist = h("div", { class: "tabs", role: "tablist", "aria-label": "Deliveries" }, tabs.messages, tabs.attempts);
  // Arrow keys move between the tabs, as the ARIA tabs pattern has it.
  tablist.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    const next = tab === "messages" ? "attempts" : "messages";
    select(next, true);
    tabs[next].focus();
  });

  async function show() {
    const list = lists[tab];
    const items = await list.reset();
    if (view) keepFresh(view, list.el, () => (tab === "messages" ? messages : attempts).refresh(), items);
  }

  function select(name, load) {
    tab = name;
    for (const key of Object.keys(tabs)) {
      tabs[key].setAttribute("aria-selected", key === name ? "true" : "false");
      tabs[key].tabIndex = key === name ? 0 : -1;
      panels[key].hidden = key !== name;
    }
    if (load) show();
  }

  status.addEventListener("change", () => show());
  const refresh = h("button", { type: "button", class: "secondary small", onclick: () => show() }, "Refresh");
  const el = h(
    "section",
    { class: "panel", "aria-labelledby": "deliveries-heading" },
    h(
      "div",
      { class: "spread" },
      h("h2", { id: "deliveries-heading" }, "Deliveries"),
      h("div", { class: "row" }, h("label", { for: "delivery-status" }, "Status"), status, refresh),
    ),
    tablist,
    panels.messages,
    panels.attempts,
  );
  return {
    el,
    start(v) {
      view = v;
      show();
    },
    refresh: () => show(),
  };
}

function resendButton(msgId, endpointId, after) {
  if (!canWrite()) return null;
  return h(
    "button",
    {
      type: "button",
      onclick: action(async () => {
        await resend(msgId, endpointId);
        after();
      }),
    },
    "Resend",
  );
}

function payloadBlock(msg) {
  const text = msg.rawPayload !== undefined && msg.rawPayload !== null ? msg.rawPayload : pretty(msg.payload);
  return h("pre", { class: "portal-payload", tabindex: "0", "aria-label": "Message payload" }, h("code", {}, text));
}

// One message at one endpoint: where its delivery stands, its attempts there, its payload.
export async function messagePage(view, endpointId, msgId) {
  let ep, msg, destinations;
  try {
    [ep, msg] = await Promise.all([
      state.api.get(path`/api/v1/app/${state.appId}/endpoint/${endpointId}`),
      state.api.get(path`/api/v1/app/${state.appId}/msg/${msgId}`),
    ]);
    destinations = await state.api.get(path`/api/v1/app/${state.appId}/msg/${msg.id}/endpoint`, { limit: 250 });
  } catch (err) {
    return pageError(view, err, ep ? "message" : "endpoint or message", ["Endpoints", "#/endpoints"]);
  }
  if (!isCurrent(view)) return;
  const delivery = destinations.data.find((d) => d.id === ep.id);
  const attempts = pager({
    label: "Attempts",
    empty: "No attempt yet.",
    load: (iterator) =>
      state.api.get(path`/api/v1/app/${state.appId}/attempt/msg/${msg.id}`, { limit: PAGE, iterator, endpoint_id: ep.id }),
    render: (items) =>
      table(
        "Attempts of this message at this endpoint",
        [
          ["Time", (a) => h("a", { href: route("endpoints", ep.id, "msg", msg.id, "attempt", a.id) }, when(a.timestamp))],
          ["Status", (a) => statusBadge(a.status)],
          ["Response", responseCode],
          ["Duration", (a) => `${a.responseDurationMs} ms`, "hide-narrow"],
          ["Trigger", trigger, "hide-narrow"],
        ],
        items,
      ),
  });
  const statusCell = h("span", {}, delivery ? statusBadge(delivery.status) : h("span", { class: "muted" }, "not sent to this endpoint"));
  // While the delivery is on its way (and for a moment after a resend), the status and the attempts refresh.
  let polling = false;
  const poll = async (atLeast = 0) => {
    if (polling) return;
    polling = true;
    try {
      for (let round = 0; round < 60 && isCurrent(view); round++) {
        await new Promise((resolve) => setTimeout(resolve, round === 0 ? 300 : LIVE_EVERY_MS));
        if (!isCurrent(view)) return;
        const items = await attempts.refresh();
        const fresh = await state.api.get(path`/api/v1/app/${state.appId}/msg/${msg.id}/endpoint`, { limit: 250 });
        const now = fresh.data.find((d) => d.id === ep.id);
        if (now) replace(statusCell, statusBadge(now.status));
        const moving = (now && (now.status === 1 || now.status === 3)) || stillMoving(items);
        if (!moving && round + 1 >= atLeast) return;
      }
    } catch {
      // The attempts list reports its own errors; the status stays as it was.
    } finally {
      polling = false;
    }
  };
  mount(
    view,
    crumbs(["Endpoints", "#/endpoints"], [ep.url, route("endpoints", ep.id)], ["Message"]),
    heading("Message ", h("span", { class: "mono" }, msg.id)),
    h("div", { class: "row portal-actions" }, resendButton(msg.id, ep.id, () => poll(2))),
    h(
      "section",
      { class: "panel", "aria-labelledby": "message-heading" },
      h("h2", { id: "message-heading" }, "Summary"),
      details([
        ["Event type", h("code", {}, msg.eventType)],
        msg.eventId ? ["Event id", h("code", {}, msg.eventId)] : null,
        ["Status at this endpoint", statusCell],
        delivery?.nextAttempt ? ["Next attempt", time(delivery.nextAttempt)] : null,
        ["Sent", h("span", {}, when(msg.timestamp))],
        msg.channels?.length ? ["Channels", msg.channels.join(", ")] : null,
      ]),
    ),
    h("section", { class: "panel", "aria-labelledby": "attempts-heading" }, h("h2", { id: "attempts-heading" }, "Attempts"), attempts.el),
    h("section", { class: "panel", "aria-labelledby": "payload-heading" }, h("h2", { id: "payload-heading" }, "Payload"), payloadBlock(msg)),
  );
  const items = await attempts.refresh();
  if (state.followResend === msg.id) {
    state.followResend = null;
    poll(3);
  } else if ((delivery && (delivery.status === 1 || delivery.status === 3)) || stillMoving(items)) {
    poll();
  }
}

// One attempt: the receiver's answer, how long it took, and the message's payload.
export async function attemptPage(view, endpointId, msgId, attemptId) {
  let ep, msg, attempt;
  try {
    [ep, msg, attempt] = await Promise.all([
      state.api.get(path`/api/v1/app/${state.appId}/endpoint/${endpointId}`),
      state.api.get(path`/api/v1/app/${state.appId}/msg/${msgId}`),
      state.api.get(path`/api/v1/app/${state.appId}/msg/${msgId}/attempt/${attemptId}`),
    ]);
  } catch (err) {
    return pageError(view, err, "attempt");
  }
  if (!isCurrent(view)) return;
  // The route names an endpoint: an attempt of another endpoint is not shown under it.
  if (attempt.endpointId !== ep.id) {
    return pageError(view, new ApiError(404, { detail: "not found" }), "attempt");
  }
  mount(
    view,
    crumbs(["Endpoints", "#/endpoints"], [ep.url, route("endpoints", ep.id)], ["Message", route("endpoints", ep.id, "msg", msg.id)], ["Attempt"]),
    heading("Attempt ", h("span", { class: "mono" }, attempt.id)),
    h(
      "div",
      { class: "row portal-actions" },
      resendButton(msg.id, ep.id, () => {
        // The message's page follows the new attempt.
        state.followResend = msg.id;
        location.hash = route("endpoints", ep.id, "msg", msg.id);
      }),
    ),
    h(
      "section",
      { class: "panel", "aria-labelledby": "attempt-heading" },
      h("h2", { id: "attempt-heading" }, "Response"),
      details([
        ["Status", statusBadge(attempt.status)],
        [
          "Response status",
          attempt.responseStatusCode === 0
            ? h("span", {}, "no response (the connection failed or timed out)")
            : h("code", { id: "attempt-status-code" }, String(attempt.responseStatusCode)),
        ],
        ["Duration", `${attempt.responseDurationMs} ms`],
        ["Time", when(attempt.timestamp)],
        ["Trigger", trigger(attempt)],
        ["URL", h("code", { class: "mono" }, attempt.url)],
        ["Message", h("a", { href: route("endpoints", ep.id, "msg", msg.id), class: "mono" }, msg.id)],
        ["Event type", h("code", {}, msg.eventType)],
      ]),
      h("h3", {}, "Response body"),
      attempt.response
        ? h("pre", { class: "portal-response", tabindex: "0", "aria-label": "Response body" }, h("code", {}, pretty(attempt.response)))
        : h("p", { class: "muted" }, "The receiver sent no body."),
    ),
    h("section", { class: "panel", "aria-labelledby": "payload-heading" }, h("h2", { id: "payload-heading" }, "Payload"), payloadBlock(msg)),
  );
}
