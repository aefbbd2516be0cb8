// Named admin tokens: list, create (the token is shown once, with a copy button) and revoke. The bootstrap token
// from the configuration is not listed.

import { path } from "../../shared/api.js";
import { h, replace, when, field, formValues } from "../../shared/dom.js";
import { pageHeader, table, mono, act, revealed, section, submitter } from "../ui.js";

export async function tokensPage(ctx) {
  const { api } = ctx;
  const created = h("div", {});

  const list = section("Tokens", async () => {
    const page = await api.get("/api/v1/auth/token/");
    return table(
      [
        { label: "Name", cell: (t) => t.name },
        { label: "ID", cell: (t) => mono(t.id), wide: true },
        { label: "Created", cell: (t) => when(t.createdAt) },
        {
          label: "Actions",
          cell: (t) => {
            const revoke = h("button", { type: "button", class: "danger small", "aria-label": `Revoke ${t.name}` }, "Revoke");
            revoke.addEventListener("click", async () => {
              if (!confirm(`Revoke the admin token ${t.name}? Whatever uses it stops working at once.`)) return;
              const done = await act(revoke, () => api.delete(path`/api/v1/auth/token/${t.id}/`), { success: `Token ${t.name} revoked` });
              if (done !== undefined) list.reload();
            });
            return revoke;
          },
        },
      ],
      page.data,
      { caption: "Named admin tokens", empty: "No named admin tokens yet." },
    );
  });

  const form = h(
    "form",
    {
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        const name = formValues(event.target).name.trim();
        const token = await act(submitter(event), () => api.post("/api/v1/auth/token/", { name }), { success: "Token created" });
        if (token) {
          event.target.reset();
          replace(
            created,
            h(
              "div",
              { class: "panel highlight" },
              h("h3", {}, `Token ${token.name}`),
              revealed("New admin token", token.token, "Copy it now: it is shown only once. It can do everything the admin token can."),
            ),
          );
          created.querySelector("input").focus();
          list.reload();
        }
      },
    },
    field("Name", h("input", { name: "name", required: true, pattern: "[a-zA-Z0-9\\-_.]+", spellcheck: "false", placeholder: "ci-deploy" })),
    h("div", { class: "field" }, h("button", { type: "submit" }, "Create token")),
  );

  return [
    pageHeader("Admin tokens"),
    h("p", { class: "muted" }, "Named tokens with the admin token's rights, each revocable on its own. The configured HOOKRELAY_ADMIN_TOKEN is not listed."),
    h("section", { class: "panel" }, h("h2", {}, "New token"), form, created),
    list,
  ];
}
