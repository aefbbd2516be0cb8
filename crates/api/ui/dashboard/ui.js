// Building blocks the dashboard's pages share: links into the hash routes, page headings, tables, cursor
// pagination, sections that load on their own, and small formatting helpers. Everything is built with `h()`, so
// no value from the API is ever parsed as HTML.

import { ApiError } from "../shared/api.js";
import { h, replace, notify, copyButton, field } from "../shared/dom.js";

// `#/apps/app_1/endpoints/ep_2`, every segment encoded (ids and uids are user data), with an optional query.
export function href(...segments) {
  let query = null;
  if (segments.length && typeof segments[segments.length - 1] === "object") query = segments.pop();
  let out = "#/" + segments.map((s) => encodeURIComponent(s)).join("/");
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(key, value);
    }
    const text = params.toString();
    if (text) out += "?" + text;
  }
  return out;
}

export function link(text, ...segments) {
  return h("a", { href: href(...segments) }, text);
}

// The page's breadcrumbs and its <h1>, which the router focuses after every navigation.
export function pageHeader(title, crumbs = [], ...extra) {
  return [
    crumbs.length
      ? h(
          "nav",
          { class: "crumbs", "aria-label": "Breadcrumb" },
          crumbs.map(([text, target], i) => [i ? " › " : "", h("a", { href: target }, text)]),
        )
      : null,
    h("div", { class: "spread" }, h("h1", { tabindex: "-1" }, title), extra.length ? h("div", { class: "row" }, extra) : null),
  ];
}

// A <section> with an <h2> whose body loads itself; a failure is shown in place, the rest of the page stays.
export function section(title, load, { headingLevel = "h2", actions, plain = false } = {}) {
  const body = h("div", { class: "section-body" }, loading());
  const el = h("section", { class: plain ? "subsection" : "panel" }, h("div", { class: "spread" }, h(headingLevel, {}, title), actions), body);
  const reload = async () => {
    try {
      const content = await load();
      replace(body, content);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      report(error);
      replace(body, errorText(error));
    }
  };
  el.reload = reload;
  reload();
  return el;
}

export function loading(text = "Loading…") {
  return h("p", { class: "muted", role: "status" }, text);
}

export function errorText(error) {
  return h("p", { class: "error-text", role: "alert" }, messageOf(error));
}

// The button that submitted a form (the default one when Enter was pressed in a field).
export function submitter(event) {
  return event.submitter || event.target.querySelector('button[type="submit"], button:not([type])');
}

// A bug in the page (not an API answer) is also logged, so it is not mistaken for a server's refusal.
export function report(error) {
  if (!(error instanceof ApiError)) console.error(error);
}

export function messageOf(error) {
  if (error instanceof ApiError) return error.message;
  return error && error.message ? error.message : String(error);
}

// Runs an action from a button: disables it meanwhile, reports a failure with the server's message.
export async function act(button, run, { success } = {}) {
  if (button) button.disabled = true;
  try {
    const result = await run();
    if (success) notify(typeof success === "function" ? success(result) : success);
    return result;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) notify(messageOf(error), "error");
    report(error);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

// A table with a header row; `columns` are [{label, cell(row) → node or text, narrow}]; `narrow: false` hides a
// column on phone-width screens.
export function table(columns, rows, { caption, empty = "Nothing here yet." } = {}) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  const hide = (column) => (column.wide ? "hide-narrow" : undefined);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      caption ? h("caption", { class: "visually-hidden" }, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: hide(c) }, c.label)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", { class: hide(c) }, c.cell(row)))))),
    ),
  );
}

// A cursor-paginated list: `load(iterator)` answers a Svix list page; `render(data)` draws its items. Only one
// page is ever held; "Previous page" walks back the cursors seen.
export function pagedList({ load, render, label = "Results" }) {
  const el = h("div", { class: "paged", role: "group", tabindex: "-1", "aria-label": label });
  const stack = [undefined];
  let current = null;
  const draw = async (focus) => {
    if (!current) replace(el, loading());
    try {
      const page = await load(stack[stack.length - 1]);
      current = page;
      const previous = h("button", { type: "button", class: "secondary small", onclick: () => go(-1) }, "Previous page");
      const next = h("button", { type: "button", class: "secondary small", onclick: () => go(1) }, "Next page");
      previous.disabled = stack.length === 1;
      next.disabled = page.done || !page.iterator || !page.data.length;
      const pager =
        stack.length > 1 || !next.disabled
          ? h("div", { class: "row pager" }, previous, h("span", { class: "muted" }, `Page ${stack.length}`), next)
          : null;
      const hadFocus = el.contains(document.activeElement);
      replace(el, render(page.data), pager);
      if (focus || (hadFocus && !el.contains(document.activeElement))) el.focus();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      report(error);
      replace(el, errorText(error));
    }
  };
  const go = (direction) => {
    if (direction > 0 && current?.iterator) stack.push(current.iterator);
    if (direction < 0 && stack.length > 1) stack.pop();
    draw(true);
  };
  el.reload = () => draw(false);
  el.firstPage = () => {
    stack.length = 1;
    return draw(false);
  };
  el.onFirstPage = () => stack.length === 1;
  draw(false);
  return el;
}

// A description list of facts: [[term, value], …]; null values are left out.
export function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.filter(([, value]) => value !== undefined && value !== null && value !== false).map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
}

export function card(value, what) {
  return h("div", { class: "card" }, h("div", { class: "figure" }, value), h("div", { class: "what" }, what));
}

export function mono(text) {
  return h("code", {}, text);
}

export function enabledBadge(disabled) {
  return disabled ? h("span", { class: "badge badge-disabled" }, "disabled") : h("span", { class: "badge badge-success" }, "enabled");
}

// A value shown once (a secret, a token, a URL) in a read-only box with a copy button.
export function revealed(label, value, hint) {
  const input = h("input", { type: "text", readonly: true, value, class: "mono wide", spellcheck: "false" });
  return h("div", { class: "revealed" }, field(label, input, hint), copyButton(() => value, `Copy ${label.toLowerCase()}`));
}

export function listText(values, none = "all") {
  return values && values.length ? values.join(", ") : none;
}

export function splitList(text) {
  return text
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

// `<input type="datetime-local">` value (the reader's local time) to RFC 3339, or undefined when empty.
export function localToIso(value) {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

// RFC 3339 to a `datetime-local` value in the reader's time zone.
export function isoToLocal(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export function percent(fraction) {
  if (fraction === null || fraction === undefined || Number.isNaN(fraction)) return "—";
  return `${(fraction * 100).toFixed(fraction > 0 && fraction < 0.001 ? 2 : 1)}%`;
}

export function duration(seconds) {
  if (!seconds) return "0 s";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

export function ms(value) {
  return value === null || value === undefined ? "—" : `${value} ms`;
}

// Parses a JSON text a user typed; an error names the field.
export function parseJson(text, what) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${what} is not valid JSON: ${error.message}`);
  }
}

export function select(name, options, selected, attrs = {}) {
  return h(
    "select",
    { name, ...attrs },
    options.map(([value, text]) => h("option", { value, selected: String(value) === String(selected ?? "") }, text)),
  );
}
