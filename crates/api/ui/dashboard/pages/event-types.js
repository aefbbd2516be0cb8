// Event types: the list (archived ones on request), creation, and one event type's editor with its JSON schema and
// the examples test sends use; archive, unarchive, delete.

import { ApiError, path } from "../../shared/api.js";
import { h, when, field, formValues, notify, pretty } from "../../shared/dom.js";
import { pageHeader, pagedList, table, link, href, act, parseJson, messageOf, submitter } from "../ui.js";

const PAGE = 50;

// The newest schema version of `schemas` ({"1": {…}}): [version, schema without examples, examples].
function newestSchema(schemas) {
  const versions = Object.keys(schemas || {})
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  if (!versions.length) return ["1", null, null];
  const { examples, ...schema } = schemas[versions[0]] || {};
  return [versions[0], Object.keys(schema).length ? schema : null, examples || null];
}

// `schemas` with the newest version replaced by the form's schema and examples (other versions kept); `undefined`
// when both are empty and there were none.
function schemasFrom(existing, version, schemaText, examplesText) {
  const schema = schemaText.trim() ? parseJson(schemaText, "The schema") : {};
  if (typeof schema !== "object" || Array.isArray(schema) || schema === null) throw new Error("The schema must be a JSON object");
  const examples = examplesText.trim() ? parseJson(examplesText, "The examples") : null;
  if (examples !== null && !Array.isArray(examples)) throw new Error("The examples must be a JSON array of payloads, e.g. [{\"id\": 1}]");
  const versionBody = { ...schema };
  if (examples) versionBody.examples = examples;
  const others = { ...(existing || {}) };
  delete others[version];
  if (!Object.keys(versionBody).length) return Object.keys(others).length ? others : existing ? null : undefined;
  return { ...others, [version]: versionBody };
}

function schemaFields(schema, examples, version) {
  return [
    field(
      `Schema (JSON Schema of the payload, version ${version})`,
      h("textarea", { name: "schema", rows: "6", spellcheck: "false", class: "code" }, schema ? pretty(schema) : ""),
      'Optional, e.g. {"type": "object", "properties": {"id": {"type": "string"}}}.',
    ),
    field(
      "Examples (JSON array of payloads)",
      h("textarea", { name: "examples", rows: "5", spellcheck: "false", class: "code" }, examples ? pretty(examples) : ""),
      'Test sends use the first one unless told otherwise, e.g. [{"id": "inv_1", "amount": 100}].',
    ),
  ];
}

export async function eventTypesPage(ctx) {
  const { api } = ctx;
  const showArchived = h("input", { type: "checkbox", name: "archived" });
  const list = pagedList({
    label: "Event types",
    load: (iterator) => api.get("/api/v1/event-type/", { limit: PAGE, iterator, include_archived: showArchived.checked, with_content: false }),
    render: (types) =>
      table(
        [
          { label: "Name", cell: (t) => link(t.name, "event-types", t.name) },
          { label: "Description", cell: (t) => t.description || "—" },
          { label: "Group", cell: (t) => t.groupName || "—", wide: true },
          {
            label: "State",
            cell: (t) => [
              t.archived ? h("span", { class: "badge badge-disabled" }, "archived") : h("span", { class: "badge badge-success" }, "active"),
              t.deprecated ? [" ", h("span", { class: "badge badge-pending" }, "deprecated")] : null,
            ],
          },
          { label: "Updated", cell: (t) => when(t.updatedAt), wide: true },
        ],
        types,
        { caption: "Event types", empty: "No event types yet." },
      ),
  });
  showArchived.addEventListener("change", () => list.firstPage());

  const problem = h("p", { class: "error-text", role: "alert" });
  const form = h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        problem.textContent = "";
        const values = formValues(event.target);
        const body = { name: values.name.trim(), description: values.description.trim() };
        if (values.group.trim()) body.groupName = values.group.trim();
        try {
          const schemas = schemasFrom(null, "1", values.schema, values.examples);
          if (schemas) body.schemas = schemas;
        } catch (error) {
          problem.textContent = error.message;
          return;
        }
        const created = await act(submitter(event), () => api.post("/api/v1/event-type/", body), { success: "Event type created" });
        if (created) {
          event.target.reset();
          list.firstPage();
        }
      },
    },
    h(
      "div",
      { class: "fields" },
      field("Name", h("input", { name: "name", required: true, pattern: "[a-zA-Z0-9\\-_.]+", spellcheck: "false", placeholder: "invoice.paid" })),
      field("Description", h("input", { name: "description" })),
      field("Group (optional)", h("input", { name: "group", spellcheck: "false" })),
    ),
    h("details", {}, h("summary", {}, "Schema and examples"), schemaFields(null, null, "1")),
    problem,
    h("button", { type: "submit" }, "Create event type"),
  );

  return [
    pageHeader("Event types"),
    h("section", { class: "panel" }, h("h2", {}, "New event type"), form),
    h(
      "section",
      { class: "panel" },
      h("div", { class: "spread" }, h("h2", {}, "All event types"), h("label", { class: "check" }, showArchived, " Show archived")),
      list,
    ),
  ];
}

export async function eventTypePage(ctx) {
  const { api } = ctx;
  const [name] = ctx.params;
  const type = await api.get(path`/api/v1/event-type/${name}/`);
  const [version, schema, examples] = newestSchema(type.schemas);
  const base = path`/api/v1/event-type/${type.name}/`;
  const problem = h("p", { class: "error-text", role: "alert" });

  const form = h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        problem.textContent = "";
        const values = formValues(event.target);
        const body = {
          description: values.description.trim(),
          groupName: values.group.trim() || null,
          deprecated: values.deprecated,
        };
        try {
          const schemas = schemasFrom(type.schemas, version, values.schema, values.examples);
          if (schemas !== undefined) body.schemas = schemas;
        } catch (error) {
          problem.textContent = error.message;
          return;
        }
        const button = submitter(event);
        button.disabled = true;
        try {
          await api.patch(base, body);
          notify("Event type saved");
          ctx.refresh();
        } catch (error) {
          if (!(error instanceof ApiError && error.status === 401)) problem.textContent = messageOf(error);
        } finally {
          button.disabled = false;
        }
      },
    },
    field("Description", h("input", { name: "description", value: type.description, class: "wide" })),
    field("Group", h("input", { name: "group", value: type.groupName || "", spellcheck: "false" })),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "deprecated", checked: type.deprecated }), " Deprecated"),
    schemaFields(schema, examples, version),
    problem,
    h("button", { type: "submit" }, "Save event type"),
  );

  const archive = h("button", { type: "button", class: "secondary" }, type.archived ? "Unarchive" : "Archive");
  archive.addEventListener("click", async () => {
    if (!type.archived && !confirm(`Archive ${type.name}? It stays usable but is hidden from lists and the portal.`)) return;
    const done = await act(archive, () => (type.archived ? api.patch(base, { archived: false }) : api.delete(base)), {
      success: type.archived ? "Event type unarchived" : "Event type archived",
    });
    if (done !== undefined) ctx.refresh();
  });
  const expunge = h("button", { type: "button", class: "danger" }, "Delete permanently");
  expunge.addEventListener("click", async () => {
    if (!confirm(`Delete ${type.name} permanently? Endpoints filtering on it keep the name. This cannot be undone.`)) return;
    const done = await act(expunge, () => api.request("DELETE", base, { query: { expunge: true } }), { success: "Event type deleted" });
    if (done !== undefined) ctx.go(href("event-types"));
  });

  return [
    pageHeader(type.name, [["Event types", href("event-types")]]),
    h(
      "p",
      {},
      type.archived ? h("span", { class: "badge badge-disabled" }, "archived") : h("span", { class: "badge badge-success" }, "active"),
      " Created ",
      when(type.createdAt),
      ", updated ",
      when(type.updatedAt),
    ),
    h("section", { class: "panel" }, h("h2", {}, "Edit"), form),
    h("section", { class: "panel" }, h("h2", {}, "Archive or delete"), h("div", { class: "row" }, archive, expunge)),
    examples && examples.length
      ? h("section", { class: "panel" }, h("h2", {}, "Examples"), examples.map((example, i) => [h("h3", {}, `Example ${i}`), h("pre", { tabindex: "0" }, pretty(example))]))
      : null,
    type.schemas ? h("section", { class: "panel" }, h("h2", {}, "All schema versions"), h("pre", { tabindex: "0", "aria-label": "Schemas" }, pretty(type.schemas))) : null,
  ];
}
