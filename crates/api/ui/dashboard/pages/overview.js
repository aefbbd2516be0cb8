// The overview: activity over a chosen range (charts from the time-bucketed statistics), the last 24 hours'
// summary, the queue, failing endpoints, open circuit breakers and inbound rejections by source.

import { ApiError, path } from "../../shared/api.js";
import { h, replace, ago, when, field } from "../../shared/dom.js";
import { barChart } from "../../shared/chart.js";
import { pageHeader, section, table, card, percent, duration, ms, link, select, loading, errorText, mono } from "../ui.js";

const RANGES = [
  ["1h", "Last hour", 3600],
  ["24h", "Last 24 hours", 86400],
  ["7d", "Last 7 days", 7 * 86400],
  ["30d", "Last 30 days", 30 * 86400],
];

// How many sources the rejection table asks about (one call each).
const SOURCES_SHOWN = 20;

export async function overviewPage(ctx) {
  const { api } = ctx;
  let range = RANGES.find(([key]) => key === ctx.query.get("range")) || RANGES[1];

  const activityBody = h("div", {}, loading());
  const picker = select("range", RANGES.map(([key, text]) => [key, text]), range[0]);
  picker.addEventListener("change", () => {
    range = RANGES.find(([key]) => key === picker.value) || RANGES[1];
    ctx.setQuery({ range: range[0] });
    loadActivity();
  });

  let asked = 0;
  async function loadActivity() {
    const ask = ++asked;
    replace(activityBody, loading());
    const until = new Date();
    const since = new Date(until.getTime() - range[2] * 1000);
    try {
      const series = await api.get("/api/v1/stats/activity", { since: since.toISOString(), until: until.toISOString() });
      if (!ctx.alive() || ask !== asked) return;
      replace(activityBody, activityCharts(series, range[1]));
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) replace(activityBody, errorText(error));
    }
  }
  loadActivity();

  const activity = h(
    "section",
    { class: "panel", "aria-labelledby": "activity-heading" },
    h("div", { class: "spread" }, h("h2", { id: "activity-heading" }, "Activity"), field("Time range", picker)),
    activityBody,
  );

  const summary = section("Last 24 hours", async () => {
    const [stats, health] = await Promise.all([
      api.get("/api/v1/stats/"),
      api.get("/api/v1/health/").catch((error) => ({ error })),
    ]);
    const queue = health.error ? null : health.queue;
    return [
      h(
        "div",
        { class: "grid-cards" },
        card(stats.messages, "messages"),
        card(stats.attempts.total, "delivery attempts"),
        card(percent(stats.failureRate), "of attempts failed"),
        card(ms(stats.attemptDurationMs.p50), "median attempt"),
        card(ms(stats.attemptDurationMs.p99), "99th percentile attempt"),
        queue ? card(queue.depth, "deliveries queued") : card("—", "queue (health check failed)"),
        queue ? card(duration(queue.oldestAgeSeconds), "oldest due delivery waiting") : null,
      ),
      h("h3", {}, "Deliveries of these messages"),
      h(
        "div",
        { class: "grid-cards" },
        card(stats.deliveries.success, "delivered"),
        card(stats.deliveries.pending, "pending"),
        card(stats.deliveries.sending, "sending"),
        card(stats.deliveries.fail, "failed"),
      ),
      health.error ? errorText(health.error) : null,
      h("h3", {}, "Failing endpoints"),
      table(
        [
          { label: "Endpoint", cell: (e) => link(e.endpointId, "apps", e.appId, "endpoints", e.endpointId) },
          { label: "Application", cell: (e) => link(e.appId, "apps", e.appId) },
          { label: "Failed attempts", cell: (e) => String(e.failures) },
        ],
        stats.failingEndpoints,
        { caption: "Endpoints with the most failed attempts", empty: "No endpoint failed in the last 24 hours." },
      ),
      h("h3", {}, "Open circuit breakers"),
      table(
        [
          { label: "Endpoint", cell: (e) => link(e.endpointId, "apps", e.appId, "endpoints", e.endpointId) },
          { label: "Application", cell: (e) => link(e.appId, "apps", e.appId) },
          { label: "Paused until", cell: (e) => h("span", { title: when(e.pausedUntil) }, ago(e.pausedUntil)) },
        ],
        stats.pausedEndpoints || [],
        { caption: "Endpoints whose deliveries are paused", empty: "No endpoint is paused." },
      ),
    ];
  });

  const rejections = section("Inbound rejections (last 24 hours)", async () => {
    const sources = await api.get("/api/v1/source/", { limit: SOURCES_SHOWN });
    const rows = await Promise.all(
      sources.data.map(async (source) => {
        try {
          return { source, stats: await api.get(path`/api/v1/source/${source.id}/stats/`) };
        } catch (error) {
          return { source, error };
        }
      }),
    );
    return [
      table(
        [
          { label: "Source", cell: (r) => link(r.source.name, "sources", r.source.id) },
          { label: "Received", cell: (r) => (r.stats ? String(r.stats.last24h.received) : "—") },
          { label: "Rejected", cell: (r) => (r.stats ? String(r.stats.last24h.rejected) : "—") },
          {
            label: "By reason",
            cell: (r) => {
              if (r.error) return h("span", { class: "error-text" }, r.error.message);
              const reasons = Object.entries(r.stats.last24h.rejectedByReason || {});
              if (!reasons.length) return h("span", { class: "muted" }, "none");
              return h("ul", { class: "plain" }, reasons.map(([reason, count]) => h("li", {}, mono(reason), ` ${count}`)));
            },
          },
        ],
        rows,
        { caption: "Rejected inbound requests by source", empty: "No inbound sources yet." },
      ),
      sources.done ? null : h("p", { class: "muted" }, `Only the first ${SOURCES_SHOWN} sources are shown; see `, link("Sources", "sources"), "."),
    ];
  });

  return [pageHeader("Overview"), activity, summary, rejections];
}

function activityCharts(series, rangeName) {
  const buckets = series.data.map((b) => ({
    start: b.start,
    messages: b.messages,
    success: b.attempts.success,
    fail: b.attempts.fail,
  }));
  const attempts = buckets.reduce((sum, b) => sum + b.success + b.fail, 0);
  const success = buckets.reduce((sum, b) => sum + b.success, 0);
  const messages = buckets.reduce((sum, b) => sum + b.messages, 0);
  if (!buckets.length) return h("p", { class: "muted" }, "No data for this range.");
  return [
    h(
      "div",
      { class: "grid-cards" },
      card(messages, `messages, ${rangeName.toLowerCase()}`),
      card(attempts, "delivery attempts"),
      card(attempts ? percent(success / attempts) : "—", "success rate"),
    ),
    h(
      "div",
      { class: "charts" },
      barChart({
        buckets,
        series: [{ key: "messages", name: "Messages", className: "msg" }],
        bucketSeconds: series.bucketSeconds,
        title: "Messages",
      }),
      barChart({
        buckets,
        series: [
          { key: "success", name: "Succeeded", className: "ok" },
          { key: "fail", name: "Failed", className: "bad" },
        ],
        bucketSeconds: series.bucketSeconds,
        title: "Delivery attempts",
      }),
    ),
  ];
}
