// The operator dashboard (/ui/) driven in headless Chromium as a user would: signing in, creating an application
// and an endpoint through the forms, a published message showing up with its attempt, resending it, a test
// send, simulating a transformation, recovering a failing endpoint with live progress, event types, sources,
// admin tokens and a portal link, and a phone-width pass. Every page must stay free of console errors and CSP
// violations. Screenshots of each main page go to screenshots/ for docs/dashboard.md.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  assertClean, launchBrowser, newPage, screenshot, startReceiver, startServer, waitFor, TOKEN,
} from "./browser.mjs";

let server;
let receiver;
let browser;

before(async () => {
  [server, receiver, browser] = await Promise.all([startServer(), startReceiver(), launchBrowser()]);
});

after(async () => {
  await Promise.allSettled([browser?.close(), receiver?.stop(), server?.stop()]);
});

async function api(method, path, body, token = TOKEN) {
  const response = await fetch(server.url + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A page at the dashboard's sign-in, confirming every dialog (destructive actions ask first). */
async function openDashboard(size) {
  const page = await newPage(browser, size);
  page.on("dialog", (dialog) => dialog.accept());
  await page.goto(`${server.url}/ui/`);
  return page;
}

async function signIn(page, token = TOKEN) {
  await page.getByLabel("Admin token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
}

/** A link of the main navigation. */
function nav(page, name) {
  return page.getByRole("navigation", { name: "Main" }).getByRole("link", { name, exact: true });
}

function h1(page, name) {
  return page.getByRole("heading", { level: 1, name });
}

/** The application, endpoint and message the tests after the first share. */
const shared = {};

test("sign-in refuses a wrong token and an application token, and the admin token reaches the overview", async () => {
  const page = await openDashboard();
  await h1(page, "Sign in to hookrelay").waitFor();
  await screenshot(page, "signin");

  await page.getByLabel("Admin token").fill("not-the-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "not accepted" }).waitFor();

  const app = await api("POST", "/api/v1/app/", { name: "Portal only" });
  const portal = await api("POST", `/api/v1/auth/app-portal-access/${app.id}/`, {});
  await page.getByLabel("Admin token").fill(portal.token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "application token" }).waitFor();

  await signIn(page);
  assert.equal(await nav(page, "Overview").getAttribute("aria-current"), "page");
  // The heading has focus after navigation, for keyboard and screen-reader users.
  assert.equal(await page.evaluate(() => document.activeElement?.tagName), "H1");
  await page.getByRole("img", { name: /^Messages:/ }).waitFor();
  await page.getByRole("img", { name: /^Delivery attempts:/ }).waitFor();
  await page.getByLabel("Time range").selectOption("7d");
  await page.getByText("messages, last 7 days").waitFor();
  await page.getByRole("heading", { name: "Open circuit breakers" }).waitFor();
  await screenshot(page, "overview-empty");

  await page.getByRole("button", { name: "Sign out" }).click();
  await h1(page, "Sign in to hookrelay").waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  await assertClean(page);
  await page.context().close();
});

test("an endpoint created in the form gets a published message; its attempt shows, resend and a test send deliver again", async () => {
  const channel = receiver.channel("orders");
  await api("POST", "/api/v1/event-type/", {
    name: "order.created",
    description: "An order was placed",
    schemas: { 1: { type: "object", examples: [{ orderId: "example-1", total: 42 }] } },
  });
  await api("POST", "/api/v1/event-type/", { name: "order.cancelled", description: "An order was cancelled" });

  const page = await openDashboard();
  await signIn(page);
  await nav(page, "Applications").click();
  await h1(page, "Applications").waitFor();
  await page.getByLabel("Name").fill("Acme Shop");
  await page.getByLabel("UID (optional)").fill("acme-shop");
  await page.getByRole("button", { name: "Create application" }).click();
  await h1(page, "Acme Shop").waitFor();

  await page.getByRole("link", { name: "Add endpoint" }).click();
  await h1(page, "New endpoint").waitFor();
  await page.getByLabel("URL").fill(channel.url);
  await page.getByLabel("Description").fill("Orders receiver");
  await page.getByLabel("order.created").check();
  await page.getByRole("button", { name: "Create endpoint" }).click();
  await h1(page, "Orders receiver").waitFor();
  const endpointUrl = page.url();
  const [, appId, endpointId] = /#\/apps\/([^/]+)\/endpoints\/([^/?]+)/.exec(endpointUrl);
  const endpoint = await api("GET", `/api/v1/app/${appId}/endpoint/${endpointId}/`);
  assert.deepEqual(endpoint.filterTypes, ["order.created"]);
  Object.assign(shared, { appId, endpointId, endpointUrl, channel });

  // The secret is revealed on demand and matches the API's.
  await page.getByRole("button", { name: "Reveal secret" }).click();
  const secret = await api("GET", `/api/v1/app/${appId}/endpoint/${endpointId}/secret/`);
  assert.equal(await page.getByRole("textbox", { name: "Signing secret" }).inputValue(), secret.key);

  const msg = await api("POST", `/api/v1/app/${appId}/msg/`, {
    eventType: "order.created",
    eventId: "order-1001",
    payload: { orderId: "1001", total: 99.5 },
    channels: ["eu"],
  });
  await channel.waitFor(1);

  // Find it by its event id from the messages tab.
  await page.getByRole("link", { name: "Acme Shop" }).click();
  await h1(page, "Acme Shop").waitFor();
  await page.getByRole("navigation", { name: "Application" }).getByRole("link", { name: "Messages" }).click();
  await h1(page, "Messages of Acme Shop").waitFor();
  await page.getByRole("group", { name: "Messages" }).getByRole("link", { name: msg.id }).waitFor();
  await page.getByLabel("Message id or event id").fill("order-1001");
  await page.getByRole("button", { name: "Open message" }).click();
  await h1(page, `Message ${msg.id}`).waitFor();
  const attempts = page.getByRole("group", { name: "Attempts" });
  await attempts.getByRole("row").filter({ hasText: "success" }).filter({ hasText: "200" }).waitFor();
  await page.getByLabel("Payload", { exact: true }).getByText('"orderId": "1001"').waitFor();
  await screenshot(page, "message");

  // Resend from the UI: a second delivery arrives and a manual attempt is listed.
  await page.getByRole("button", { name: `Resend to ${channel.url}` }).click();
  await channel.waitFor(2);
  await attempts.getByRole("row").filter({ hasText: "manual" }).waitFor();
  assert.equal(channel.deliveries[1].headers["webhook-id"], msg.id);

  // The attempt's page: request and response.
  await attempts.getByRole("row").filter({ hasText: "manual" }).getByRole("link").first().click();
  await h1(page, /^Attempt atmpt_/).waitFor();
  const response = page.getByRole("region", { name: "Response" });
  await response.getByText("200", { exact: true }).waitFor();
  await response.getByText("manual (resend)").waitFor();
  assert.equal(await page.getByRole("region", { name: "Response" }).getByLabel("Response body").textContent(), "ok");
  await page.getByRole("region", { name: "Request" }).getByText(channel.url, { exact: true }).waitFor();
  await page.getByLabel("Request payload").getByText('"total": 99.5').waitFor();
  await screenshot(page, "attempt");

  // A test send from the endpoint page uses the event type's example.
  await page.goto(endpointUrl);
  await h1(page, "Orders receiver").waitFor();
  await page.getByLabel("Event type").first().fill("order.created");
  await page.getByRole("button", { name: "Send test event" }).click();
  await page.getByText("Sent as message").waitFor();
  const deliveries = await channel.waitFor(3);
  assert.deepEqual(JSON.parse(deliveries[2].body), { orderId: "example-1", total: 42 });

  // The endpoint's messages list, filtered by delivery status.
  await page.getByLabel("Delivery status").selectOption("0");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.getByRole("group", { name: "Messages of this endpoint" }).getByRole("link", { name: msg.id }).waitFor();
  await page.getByRole("region", { name: "Deliveries" }).getByText("delivered").waitFor();
  await screenshot(page, "endpoint");

  await page.getByRole("link", { name: "Acme Shop" }).click();
  await h1(page, "Acme Shop").waitFor();
  await page.getByRole("link", { name: channel.url }).waitFor();
  await screenshot(page, "app");

  // A portal link for the application, shown with a copy button.
  await page.getByRole("button", { name: "Create portal link" }).click();
  const portal = await page.getByLabel("Portal link").inputValue();
  assert.match(portal, /\/app-portal#key=hr_app_/);
  await page.getByRole("button", { name: "Copy portal link" }).waitFor();

  await nav(page, "Applications").click();
  await page.getByRole("link", { name: "Acme Shop" }).waitFor();
  await screenshot(page, "apps");
  await assertClean(page);
  await page.context().close();
});

test("a transformation typed in the editor is simulated, then saved", async () => {
  assert.ok(shared.endpointUrl, "the endpoint test ran first");
  const page = await openDashboard();
  await signIn(page);
  await page.goto(shared.endpointUrl);
  await h1(page, "Orders receiver").waitFor();
  await page.getByRole("link", { name: "Transformation" }).click();
  await h1(page, "Transformation").waitFor();
  await page.getByText("This endpoint has no transformation.").waitFor();

  await page.getByLabel("Transformation code").fill(
    [
      "function handler(webhook) {",
      "  webhook.payload = { kind: webhook.eventType, order: webhook.payload.orderId };",
      '  webhook.headers = { "X-Shop-Event": webhook.eventType };',
      "  return webhook;",
      "}",
    ].join("\n"),
  );
  await page.getByLabel("Event type").fill("order.created");
  await page.getByLabel("Payload (JSON)").fill('{"orderId": "A-7"}');
  await page.getByRole("button", { name: "Simulate" }).click();
  const result = page.getByLabel("Transformed payload");
  await result.waitFor();
  assert.deepEqual(JSON.parse(await result.textContent()), { kind: "order.created", order: "A-7" });
  await page.getByText("X-Shop-Event", { exact: true }).waitFor();

  // A broken handler is reported with the sandbox's message, not a blank result.
  await page.getByLabel("Transformation code").fill("function handler(webhook) { throw new Error('boom'); }");
  await page.getByRole("button", { name: "Simulate" }).click();
  await page.getByText(/The transformation failed: .*boom/).waitFor();

  await page.getByLabel("Transformation code").fill("function handler(webhook) {\n  webhook.headers = { \"X-Shop\": \"acme\" };\n  return webhook;\n}\n");
  await page.getByRole("button", { name: "Simulate" }).click();
  await page.getByText("X-Shop", { exact: true }).waitFor();
  await page.getByRole("button", { name: "Save transformation" }).click();
  await page.getByText("A transformation is saved but disabled.").waitFor();
  const stored = await api("GET", `/api/v1/app/${shared.appId}/endpoint/${shared.endpointId}/transformation/`);
  assert.match(stored.code, /X-Shop/);
  assert.equal(stored.enabled, false);
  await screenshot(page, "transformation");
  await assertClean(page);
  await page.context().close();
});

test("an endpoint's settings are edited in the form, then it is disabled and deleted", async () => {
  assert.ok(shared.appId, "the endpoint test ran first");
  const channel = receiver.channel("edited");
  const endpoint = await api("POST", `/api/v1/app/${shared.appId}/endpoint/`, { url: channel.url, description: "To edit" });
  const page = await openDashboard();
  await signIn(page);
  await page.goto(`${server.url}/ui/#/apps/${shared.appId}/endpoints/${endpoint.id}`);
  await h1(page, "To edit").waitFor();
  await page.getByRole("link", { name: "Edit", exact: true }).click();
  await h1(page, "Edit endpoint").waitFor();
  await page.getByLabel("Description").fill("Edited receiver");
  await page.getByLabel("order.cancelled").check();
  await page.getByLabel("Channels").fill("eu, us");
  await page.getByLabel("Rate limit (deliveries per second)").fill("20");
  await page.getByLabel("Standard headers").selectOption("webhook");
  await page.getByLabel("Also sign with hex HMAC").check();
  await page.getByRole("button", { name: "Add signature header" }).click();
  await page.getByLabel("Header name").fill("X-Shop-Signature");
  await page.getByLabel("Prefix").fill("sha256=");
  await page.getByLabel("Retry schedule (seconds)").fill("5, 60");
  await page.getByLabel("Retry 4xx answers").selectOption("no");
  await page.getByLabel("Headers sent with every delivery").fill("X-Tenant: acme");
  await page.getByRole("button", { name: "Save endpoint" }).click();
  await h1(page, "Edited receiver").waitFor();
  const saved = await api("GET", `/api/v1/app/${shared.appId}/endpoint/${endpoint.id}/`);
  assert.deepEqual(
    {
      filterTypes: saved.filterTypes, channels: saved.channels, rateLimit: saved.rateLimit, standardHeaders: saved.standardHeaders,
      signatureSchemes: saved.signatureSchemes, signatureHeaders: saved.signatureHeaders, retrySchedule: saved.retrySchedule,
      retryClientErrors: saved.retryClientErrors,
    },
    {
      filterTypes: ["order.cancelled"], channels: ["eu", "us"], rateLimit: 20, standardHeaders: "webhook",
      signatureSchemes: ["standard", "hmac-hex"],
      signatureHeaders: [{ header: "X-Shop-Signature", algorithm: "sha256", encoding: "hex", prefix: "sha256=" }],
      retrySchedule: [5, 60], retryClientErrors: false,
    },
  );
  assert.deepEqual((await api("GET", `/api/v1/app/${shared.appId}/endpoint/${endpoint.id}/headers/`)).headers, { "X-Tenant": "acme" });

  // A bad value is refused with the server's message, shown in the form.
  await page.getByRole("link", { name: "Edit", exact: true }).click();
  await page.getByLabel("URL").fill("ftp://example.com/hook");
  await page.getByRole("button", { name: "Save endpoint" }).click();
  await page.getByRole("alert").filter({ hasText: /url/i }).waitFor();
  await page.getByRole("link", { name: "Cancel" }).click();
  await h1(page, "Edited receiver").waitFor();

  await page.getByRole("button", { name: "Disable" }).click();
  await page.getByRole("button", { name: "Enable" }).waitFor();
  assert.equal((await api("GET", `/api/v1/app/${shared.appId}/endpoint/${endpoint.id}/`)).disabled, true);
  await page.getByRole("button", { name: "Delete" }).click();
  await h1(page, "Acme Shop").waitFor();
  await assert.rejects(api("GET", `/api/v1/app/${shared.appId}/endpoint/${endpoint.id}/`), /404/);
  await assertClean(page);
  await page.context().close();
});

test("recover re-sends a failing endpoint's window with live progress", async () => {
  const channel = receiver.channel("flaky");
  channel.status = 500;
  const app = await api("POST", "/api/v1/app/", { name: "Flaky Corp" });
  const endpoint = await api("POST", `/api/v1/app/${app.id}/endpoint/`, { url: channel.url, description: "Flaky receiver" });
  const msg = await api("POST", `/api/v1/app/${app.id}/msg/`, { eventType: "order.created", payload: { orderId: "2002" } });
  // The first attempt and both retries of the "1,1" schedule fail; then the delivery has failed for good.
  await channel.waitFor(3);
  await waitFor("the delivery to fail for good", async () => {
    const page = await api("GET", `/api/v1/app/${app.id}/endpoint/${endpoint.id}/msg/?status=2`);
    return page.data.some((m) => m.id === msg.id);
  });
  channel.status = 200;

  const page = await openDashboard();
  await signIn(page);
  await page.goto(`${server.url}/ui/#/apps/${app.id}/endpoints/${endpoint.id}`);
  await h1(page, "Flaky receiver").waitFor();
  await page.getByRole("region", { name: "Deliveries" }).getByText("failed").waitFor();
  await page.getByRole("link", { name: "Recover or replay" }).click();
  await h1(page, "Recover or replay").waitFor();
  assert.ok(await page.getByLabel("Since").inputValue(), "the window starts 24 hours ago by default");
  await page.getByRole("button", { name: "Recover failed deliveries" }).click();
  const progress = page.getByRole("progressbar", { name: "Progress" });
  await progress.waitFor();
  await page.getByText(/^Finished: 1 of 1 messages looked at, 1 sent again\.$/).waitFor();
  assert.equal(await progress.getAttribute("value"), "1");
  const deliveries = await channel.waitFor(4);
  assert.equal(deliveries[3].answered, 200);
  assert.equal(deliveries[3].headers["webhook-id"], msg.id);
  await screenshot(page, "recover");

  // The endpoint's messages show it delivered now.
  await page.getByRole("link", { name: "endpoint's messages" }).click();
  await h1(page, "Flaky receiver").waitFor();
  await page.getByRole("group", { name: "Messages of this endpoint" }).getByRole("row").filter({ hasText: msg.id }).filter({ hasText: "success" }).waitFor();
  await assertClean(page);
  await page.context().close();
});

test("event types, sources and admin tokens are managed from their pages; a revoked token signs the page out", async () => {
  const page = await openDashboard();
  await signIn(page);

  // Event types: create one with an example, then archive it.
  await nav(page, "Event types").click();
  await h1(page, "Event types").waitFor();
  await page.getByLabel("Name").fill("invoice.paid");
  await page.getByLabel("Description").fill("An invoice was paid");
  await page.getByText("Schema and examples").click();
  await page.getByLabel("Examples (JSON array of payloads)").fill('[{"invoice": "inv_1", "amount": 1200}]');
  await page.getByRole("button", { name: "Create event type" }).click();
  await page.getByRole("link", { name: "invoice.paid" }).waitFor();
  const created = await api("GET", "/api/v1/event-type/invoice.paid/");
  assert.deepEqual(created.schemas, { 1: { examples: [{ invoice: "inv_1", amount: 1200 }] } });
  await screenshot(page, "event-types");
  await page.getByRole("link", { name: "invoice.paid" }).click();
  await h1(page, "invoice.paid").waitFor();
  await page.getByRole("button", { name: "Archive" }).click();
  await page.getByRole("button", { name: "Unarchive" }).waitFor();
  assert.equal((await api("GET", "/api/v1/event-type/invoice.paid/")).archived, true);

  // Sources: create one through the form; a request without a signature shows as a rejection.
  const app = await api("POST", "/api/v1/app/", { name: "Billing", uid: "billing" });
  await nav(page, "Sources").click();
  await h1(page, "Sources").waitFor();
  await page.getByLabel("Name").fill("Stripe live");
  await page.getByLabel("Provider", { exact: true }).selectOption("stripe");
  await page.getByLabel("Application id or UID").fill("billing");
  await page.getByLabel("Signing secret").fill("whsec_0123456789abcdefghij");
  await page.getByRole("button", { name: "Create source" }).click();
  await h1(page, "Stripe live").waitFor();
  const ingest = await page.getByText(/\/ingest\/src_/).first().textContent();
  assert.ok(ingest.startsWith(server.url), ingest);
  await page.getByRole("button", { name: "Copy ingest URL" }).waitFor();
  const rejected = await fetch(ingest, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  assert.equal(rejected.status, 400);
  await waitFor("the rejection to be counted", async () => {
    const [source] = (await api("GET", "/api/v1/source/")).data;
    return (await api("GET", `/api/v1/source/${source.id}/stats/`)).rejected > 0;
  });
  await page.reload();
  await page.getByRole("region", { name: "Rejections" }).getByText("missing_header").waitFor();
  await nav(page, "Sources").click();
  await page.getByRole("link", { name: "Stripe live" }).waitFor();
  assert.equal((await api("GET", "/api/v1/source/")).data[0].appId, app.id);
  await screenshot(page, "sources");

  // Admin tokens: created (shown once), used, and revoked.
  await nav(page, "Admin tokens").click();
  await h1(page, "Admin tokens").waitFor();
  await page.getByLabel("Name").fill("ci-deploy");
  await page.getByRole("button", { name: "Create token" }).click();
  const token = await page.getByLabel("New admin token").inputValue();
  assert.match(token, /^hr_admin_/);
  await page.getByRole("cell", { name: "ci-deploy", exact: true }).waitFor();
  await screenshot(page, "tokens");

  // A second browser signed in with the new token is sent back to sign-in once it is revoked.
  const other = await openDashboard();
  await signIn(other, token);
  await other.getByRole("heading", { name: "Open circuit breakers" }).waitFor();
  await other.getByRole("region", { name: /Inbound rejections/ }).getByRole("link", { name: "Stripe live" }).waitFor();
  await other.getByRole("img", { name: /^Messages:/ }).waitFor();
  await page.getByRole("button", { name: "Revoke ci-deploy" }).click();
  await page.getByText("No named admin tokens yet.").waitFor();
  await nav(other, "Applications").click();
  await h1(other, "Sign in to hookrelay").waitFor();
  await other.getByRole("alert").filter({ hasText: "Signed out" }).waitFor();
  await assertClean(other);
  await other.context().close();
  await assertClean(page);
  await page.context().close();
});

test("at phone width the overview and an endpoint page fit the screen", async () => {
  assert.ok(shared.endpointUrl, "the endpoint test ran first");
  const page = await openDashboard({ width: 390, height: 844 });
  await signIn(page);
  const fits = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  await page.getByRole("img", { name: /^Messages:/ }).waitFor();
  await page.getByRole("heading", { name: "Failing endpoints" }).waitFor();
  assert.ok(await fits(), "the overview scrolls sideways");
  await screenshot(page, "overview-phone");
  await page.goto(shared.endpointUrl);
  await h1(page, "Orders receiver").waitFor();
  await page.getByRole("group", { name: "Attempts" }).getByRole("table").waitFor();
  assert.ok(await fits(), "the endpoint page scrolls sideways");
  await screenshot(page, "endpoint-phone");
  await assertClean(page);
  await page.context().close();
});

test("the overview charts the traffic: messages and attempts over the last hour, failures apart", async () => {
  const channel = receiver.channel("overview");
  const app = await api("POST", "/api/v1/app/", { name: "Busy customer" });
  await api("POST", `/api/v1/app/${app.id}/endpoint/`, { url: channel.url, description: "Busy receiver" });
  const publish = (n) =>
    Promise.all(
      Array.from({ length: n }, (_, i) =>
        api("POST", `/api/v1/app/${app.id}/msg/`, { eventType: "load.test", payload: { i } }),
      ),
    );
  await publish(30);
  await channel.waitFor(30);
  channel.status = 500;
  await publish(6);
  await channel.waitFor(36);

  const page = await openDashboard();
  await signIn(page);
  await page.getByLabel("Time range").selectOption("1h");
  // At least this test's messages and attempts (earlier tests published some too), drawn from the statistics.
  const chart = page.getByRole("img", { name: /^Delivery attempts:/ });
  await waitFor("the attempts chart to count the failures", async () => {
    const label = (await chart.getAttribute("aria-label")) || "";
    const total = Number(/: (\d+) in/.exec(label)?.[1] || 0);
    return total >= 36;
  });
  const messagesLabel = await page.getByRole("img", { name: /^Messages:/ }).getAttribute("aria-label");
  assert.ok(Number(/: (\d+) in/.exec(messagesLabel)[1]) >= 36, messagesLabel);
  assert.ok((await chart.locator("rect.bad").count()) > 0, "failed attempts are drawn apart");
  await screenshot(page, "overview");
  await assertClean(page);
  await page.context().close();
});

test("the keyboard alone signs in and moves between pages", async () => {
  const page = await openDashboard();
  await h1(page, "Sign in to hookrelay").waitFor();
  // The token field is reachable by Tab from the top of the page (after the skip link) and Enter submits.
  for (let i = 0; i < 10 && !(await page.evaluate(() => document.activeElement?.type === "password")); i++) {
    await page.keyboard.press("Tab");
  }
  await page.keyboard.type(TOKEN);
  await page.keyboard.press("Enter");
  await h1(page, "Overview").waitFor();
  // Tab until the Applications link of the main navigation has focus, then follow it with Enter.
  for (let i = 0; i < 20; i++) {
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => document.activeElement?.textContent?.trim());
    if (focused === "Applications") break;
  }
  await page.keyboard.press("Enter");
  await h1(page, "Applications").waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.tagName), "H1", "focus moves to the new page's heading");
  await assertClean(page);
  await page.context().close();
});
