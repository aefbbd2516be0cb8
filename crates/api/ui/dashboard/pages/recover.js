// Recover (re-send an endpoint's failed deliveries of a window) and replay-missing (send it the window's messages
// it never had), each a background task whose progress is polled and shown live.

import { ApiError, path } from "../../shared/api.js";
import { h, replace, field, when } from "../../shared/dom.js";
import { pageHeader, localToIso, isoToLocal, messageOf, facts, link } from "../ui.js";
import { loadEndpoint, endpointCrumbs } from "./endpoint.js";

const POLL_MS = 500;

export async function recoverPage(ctx) {
  const { api } = ctx;
  const [appRef, epRef] = ctx.params;
  const { app, endpoint } = await loadEndpoint(api, appRef, epRef);
  const base = path`/api/v1/app/${app.id}/endpoint/${endpoint.id}`;

  const since = h("input", { type: "datetime-local", name: "since", required: true, value: isoToLocal(new Date(Date.now() - 86400_000).toISOString()) });
  const until = h("input", { type: "datetime-local", name: "until" });
  const problem = h("p", { class: "error-text", role: "alert" });
  const progress = h("section", { class: "panel task", hidden: true, "aria-labelledby": "task-heading" });

  const start = async (kind, button) => {
    problem.textContent = "";
    const sinceIso = localToIso(since.value);
    if (!sinceIso) {
      problem.textContent = "Choose the start of the window.";
      since.focus();
      return;
    }
    const body = { since: sinceIso };
    const untilIso = localToIso(until.value);
    if (untilIso) body.until = untilIso;
    buttons.forEach((b) => (b.disabled = true));
    try {
      const task = await api.post(`${base}/${kind === "recover" ? "recover" : "replay-missing"}/`, body);
      await follow(task);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) problem.textContent = messageOf(error);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  };

  const recover = h("button", { type: "button" }, "Recover failed deliveries");
  const replay = h("button", { type: "button", class: "secondary" }, "Replay missing messages");
  const buttons = [recover, replay];
  recover.addEventListener("click", () => start("recover", recover));
  replay.addEventListener("click", () => start("replay", replay));

  // Polls the task until it finishes or fails, or the user leaves the page.
  async function follow(task) {
    const bar = h("progress", { id: "task-progress", max: "1" });
    const status = h("p", { role: "status", "aria-live": "polite" });
    progress.hidden = false;
    replace(
      progress,
      h("h2", { id: "task-heading" }, task.task === "endpoint.recover" ? "Recovering" : "Replaying"),
      h("label", { for: "task-progress" }, "Progress"),
      bar,
      status,
    );
    for (;;) {
      const current = await api.get(path`/api/v1/background-task/${task.id}/`);
      const { messagesSent = 0, messagesScanned = 0, messagesTotal = 0, error } = current.data || {};
      if (messagesTotal > 0) {
        bar.max = messagesTotal;
        bar.value = Math.min(messagesScanned, messagesTotal);
      } else if (current.status !== "running") {
        bar.max = 1;
        bar.value = 1;
      } else {
        bar.removeAttribute("value");
      }
      const counts = `${messagesScanned} of ${messagesTotal} messages looked at, ${messagesSent} sent again`;
      if (current.status === "running") status.textContent = `Running: ${counts}.`;
      else if (current.status === "finished") status.textContent = `Finished: ${counts}.`;
      else status.textContent = `Failed: ${error || "the task stopped"} (${counts}).`;
      if (current.status !== "running") {
        progress.append(
          facts([
            ["Task", current.id],
            ["Updated", when(current.updatedAt)],
          ]),
          h("p", {}, "Watch the deliveries arrive in the ", link("endpoint's messages", "apps", app.id, "endpoints", endpoint.id), "."),
        );
        return;
      }
      if (!ctx.alive()) return;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      if (!ctx.alive()) return;
    }
  }

  return [
    pageHeader("Recover or replay", endpointCrumbs(app, endpoint)),
    h("p", { class: "mono subtitle" }, endpoint.url),
    h(
      "section",
      { class: "panel" },
      h("h2", {}, "Window"),
      h(
        "ul",
        {},
        h("li", {}, h("strong", {}, "Recover"), " sends again every delivery to this endpoint that failed for good, of the messages created in the window, with a fresh retry schedule."),
        h("li", {}, h("strong", {}, "Replay missing"), " sends this endpoint the window's messages it never had a delivery of (it did not exist yet, or filtered them out then)."),
      ),
      h(
        "div",
        { class: "fields" },
        field("Since", since, "At most 14 days ago."),
        field("Until (optional)", until, "Empty: now."),
      ),
      problem,
      h("div", { class: "row" }, recover, replay),
    ),
    progress,
  ];
}
