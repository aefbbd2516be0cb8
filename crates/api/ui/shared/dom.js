// Building the page from data without ever parsing data as HTML: `h()` makes elements, and every string it
// is given becomes a text node, so a payload or an endpoint description cannot inject markup or script.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// A date as the reader's local time, and how long ago.
export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function ago(iso) {
  if (!iso) return "—";
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  const future = seconds < 0;
  const s = Math.abs(seconds);
  const text = s < 60 ? `${s}s` : s < 3600 ? `${Math.round(s / 60)}m` : s < 86400 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86400)}d`;
  return future ? `in ${text}` : `${text} ago`;
}

// Delivery and attempt statuses as Svix numbers them.
const STATUS = { 0: "success", 1: "pending", 2: "fail", 3: "sending" };

export function statusBadge(code) {
  const name = STATUS[code] ?? String(code);
  return h("span", { class: `badge badge-${name}` }, name);
}

export function pretty(value) {
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

// A message in the page's live region (read out by screen readers), gone after a few seconds.
export function notify(text, kind = "info") {
  let region = document.getElementById("notices");
  if (!region) {
    region = h("div", { id: "notices", role: "status", "aria-live": "polite" });
    document.body.append(region);
  }
  const notice = h("p", { class: `notice notice-${kind}` }, text);
  region.append(notice);
  setTimeout(() => notice.remove(), kind === "error" ? 10000 : 4000);
}

// A copy button for a value (secret, URL, snippet).
export function copyButton(getText, label = "Copy") {
  return h(
    "button",
    {
      type: "button",
      class: "secondary small",
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(getText());
          notify("Copied to the clipboard");
        } catch {
          notify("The browser refused the clipboard; select the text and copy it", "error");
        }
      },
    },
    label,
  );
}

// A form field with its label, so every input is named for assistive technology.
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 10)}`;
  input.id = id;
  const hintId = hint ? `${id}-hint` : undefined;
  if (hintId) input.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hint && h("small", { id: hintId }, hint));
}

// The values of a form's named inputs.
export function formValues(form) {
  const values = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    if (el.type === "checkbox") values[el.name] = el.checked;
    else if (el.multiple) values[el.name] = [...el.selectedOptions].map((o) => o.value);
    else values[el.name] = el.value;
  }
  return values;
}
