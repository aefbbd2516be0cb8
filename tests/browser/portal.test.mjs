// The consumer app portal (/app-portal#key=<app token>) in headless Chromium: the link the API hands out, the token
// leaving the URL at once and never reaching a request URL, adding an endpoint with event types, the signing
// secret, deliveries and attempts of a published message, resend, a test event, the verification snippets, the
// isolation of one application from another (also by editing the fragment and by calling the API directly), a
// read-only portal, embedding in another origin's iframe, theming, and a phone-width screen.
//
// One server serves every test: it is started with a title, an accent colour, a logo and the origin of a tiny
// loopback page server allowed to frame the portal, so the screenshots show a themed portal.

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { assertClean, launchBrowser, newPage, screenshot, startReceiver, startServer, waitFor } from "./browser.mjs";

const TITLE = "Acme Webhooks";
const ACCENT = "#0f766e";
const ACCENT_RGB = "rgb(15, 118, 110)";
// A 96×32 logo; as SVG it has a natural size, so naturalWidth > 0 proves the image loaded (not just the <img>).
const LOGO_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="96" height="32" viewBox="0 0 96 32">
<rect width="96" height="32" rx="6" fill="#0f766e"/><circle cx="16" cy="16" r="9" fill="#ffffff"/></svg>
`;

let server;
let receiver;
let browser;
let embedder;
let tempDir;

// What the tests share as they go: application A (the customer) with its portal page, and application B.
const A = { name: "Acme Corp", page: null, token: null, requests: [], endpoint: null, channel: null, msgId: null };
const B = { name: "Bravo Industries (must stay hidden)", url: null, endpointId: null, msgId: null, attemptId: null };

async function admin(method, route, body) {
  const response = await fetch(`${server.url}${route}`, {
    method,
    headers: { Authorization: `Bearer ${server.token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

function asApp(token, method, route, body) {
  return fetch(`${server.url}${route}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function portalLink(appId, options = {}) {
  return admin("POST", `/api/v1/auth/app-portal-access/${appId}`, options);
}

/** A loopback page on another origin that embeds whatever `src` it is given in an iframe. */
async function startEmbedder() {
  let src = "about:blank";
  const pages = http.createServer((request, response) => {
    const html = `<!doctype html><html><head><meta charset="utf-8"><title>Customer app</title></head>
<body><h1>Customer app</h1><p>Our webhooks settings:</p>
<iframe title="Webhooks portal" src="${src.replace(/"/g, "&quot;")}" width="1180" height="760"></iframe></body></html>`;
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end(html);
  });
  await new Promise((resolve) => pages.listen(0, "127.0.0.1", resolve));
  return {
    origin: `http://127.0.0.1:${pages.address().port}`,
    embed(url) {
      src = url;
    },
    stop() {
      pages.closeAllConnections();
      return new Promise((resolve) => pages.close(resolve));
    },
  };
}

/** Opens a portal link in a fresh page and waits for the endpoint list. */
async function openPortal(link, viewport) {
  const page = await newPage(browser, viewport);
  page.sentUrls = [];
  page.on("request", (request) => page.sentUrls.push({ url: request.url(), referer: request.headers().referer || "" }));
  await page.goto(link.url);
  await page.getByRole("heading", { level: 1, name: "Endpoints" }).waitFor();
  return page;
}

/** A screenshot for the docs, without the passing notices of earlier steps. */
async function shot(page, name) {
  await page.evaluate(() => document.getElementById("notices")?.replaceChildren());
  for (const frame of page.frames()) {
    await frame.evaluate(() => document.getElementById("notices")?.replaceChildren()).catch(() => {});
  }
  await screenshot(page, name);
}

async function h1(page) {
  return (await page.locator("main h1").innerText()).trim();
}

/**
 * Changes the fragment as a reader editing the URL would, and waits until the page for it has been shown (its
 * <h1> is a new one), so checks never look at the previous page.
 */
async function go(page, fragment) {
  const changed = await page.evaluate((hash) => {
    if (location.hash === hash) return false;
    document.querySelector("main h1")?.setAttribute("data-stale", "");
    location.hash = hash;
    return true;
  }, fragment);
  if (changed) await page.locator("main h1:not([data-stale])").waitFor();
}

/** Clicks the deliveries' "Refresh" until `check()` holds, letting each reload finish before the next. */
async function refreshUntil(page, what, check) {
  await waitFor(what, async () => {
    if (await check()) return true;
    await page.getByRole("button", { name: "Refresh" }).click();
    await page.locator('section[aria-labelledby="deliveries-heading"] [role="tabpanel"]:not([hidden]) .pager-body[aria-busy="false"]').waitFor();
    return check();
  });
}

before(async () => {
  tempDir = await mkdtemp(path.join(tmpdir(), "hookrelay-portal-"));
  const logo = path.join(tempDir, "logo.svg");
  await writeFile(logo, LOGO_SVG);
  embedder = await startEmbedder();
  receiver = await startReceiver();
  server = await startServer({
    HOOKRELAY_UI_TITLE: TITLE,
    HOOKRELAY_UI_ACCENT_COLOR: ACCENT,
    HOOKRELAY_UI_LOGO: logo,
    HOOKRELAY_PORTAL_FRAME_ANCESTORS: embedder.origin,
  });
  browser = await launchBrowser();

  for (const [name, description, example] of [
    ["invoice.paid", "An invoice was paid in full.", { invoice: "in_1001", amount: 4200, currency: "EUR" }],
    ["invoice.failed", "A payment attempt for an invoice failed.", null],
    ["customer.created", "A new customer signed up.", { customer: "cus_77" }],
  ]) {
    await admin("POST", "/api/v1/event-type", {
      name,
      description,
      ...(example ? { schemas: { 1: { type: "object", examples: [example] } } } : {}),
    });
  }

  const appA = await admin("POST", "/api/v1/app", { name: A.name });
  A.id = appA.id;
  // A second endpoint of A's, made through the API, so the list has more than one row.
  A.channel = receiver.channel("acme-main");
  A.other = receiver.channel("acme-billing");
  await admin("POST", `/api/v1/app/${A.id}/endpoint`, {
    url: A.other.url,
    description: "Billing system",
    eventTypes: ["invoice.failed"],
  });

  // B: another customer's application, with an endpoint, a delivered message and its attempt.
  const appB = await admin("POST", "/api/v1/app", { name: B.name });
  B.id = appB.id;
  const channelB = receiver.channel("bravo-private-endpoint");
  B.url = channelB.url;
  B.endpointId = (await admin("POST", `/api/v1/app/${B.id}/endpoint`, { url: B.url, description: "Bravo secret system" })).id;
  B.msgId = (await admin("POST", `/api/v1/app/${B.id}/msg`, { eventType: "invoice.paid", payload: { bravo: true } })).id;
  await channelB.waitFor(1);
  B.attemptId = await waitFor("B's attempt", async () => {
    const attempts = await admin("GET", `/api/v1/app/${B.id}/attempt/endpoint/${B.endpointId}`);
    return attempts.data[0]?.id;
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await receiver?.stop();
  await embedder?.stop();
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
});

describe("the app portal", () => {
  test("opens from the link the API returns; the token leaves the URL and is never sent in one", async () => {
    const link = await portalLink(A.id);
    assert.match(link.url, /\/app-portal#key=hr_app_/);
    A.token = link.token;
    const page = await openPortal(link);
    A.page = page;

    assert.ok(!page.url().includes("key="), `the fragment is gone: ${page.url()}`);
    assert.ok(page.url().endsWith("/app-portal#/endpoints"), page.url());
    // Nor is it left in the history: the entry before the portal is the blank page the test started from.
    await page.goBack();
    assert.equal(page.url(), "about:blank");
    await page.goForward();
    await page.getByRole("heading", { level: 1, name: "Endpoints" }).waitFor();
    assert.ok(page.url().endsWith("/app-portal#/endpoints"), page.url());
    // The header: the operator's title and logo, and the application's name.
    await page.locator("header .portal-app-name", { hasText: A.name }).waitFor();
    assert.equal((await page.locator("header .brand").innerText()).trim(), TITLE);
    // The list shows A's endpoint made through the API.
    await page.getByRole("link", { name: A.other.url }).waitFor();

    // A reload keeps working from session storage.
    await page.reload();
    await page.getByRole("heading", { level: 1, name: "Endpoints" }).waitFor();
    await page.getByRole("link", { name: A.other.url }).waitFor();

    for (const { url, referer } of page.sentUrls) {
      assert.ok(!url.includes(link.token), `the token appears in a request URL: ${url}`);
      assert.ok(!referer.includes(link.token), `the token appears in a Referer: ${referer}`);
    }
    assert.ok(page.sentUrls.some(({ url }) => url.includes(`/api/v1/app/${A.id}`)), "the page called the API");
    await assertClean(page);
  });

  test("a missing, unknown or admin token shows that the link expired", async () => {
    for (const url of [
      `${server.url}/app-portal`,
      `${server.url}/app-portal#key=hr_app_not-a-real-token`,
      `${server.url}/app-portal#key=${server.token}`,
    ]) {
      const page = await newPage(browser);
      await page.goto(url);
      await page.getByRole("heading", { level: 1, name: "This link has expired" }).waitFor();
      assert.match(await page.locator("main").innerText(), /Ask the service that sent it to you for a new one/);
      assert.ok(!page.url().includes("key="), page.url());
      await assertClean(page);
      await page.context().close();
    }
  });

  test("adds an endpoint with event types through the form", async () => {
    const page = A.page;
    await page.getByRole("link", { name: "Add endpoint" }).click();
    await page.getByRole("heading", { level: 1, name: "Add endpoint" }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.tagName), "H1", "focus moves to the new page's heading");
    await page.getByLabel("Endpoint URL").fill(A.channel.url);
    await page.getByLabel("Description").fill("Main receiver");
    // Each event type is a checkbox with its description.
    await page.getByText("An invoice was paid in full.").waitFor();
    await page.getByRole("checkbox", { name: /invoice\.paid/ }).check();
    await page.getByRole("checkbox", { name: /customer\.created/ }).check();
    await page.getByRole("button", { name: "Add endpoint" }).click();

    await page.locator("main h1", { hasText: A.channel.url }).waitFor();
    const endpoints = await admin("GET", `/api/v1/app/${A.id}/endpoint`);
    const created = endpoints.data.find((ep) => ep.url === A.channel.url);
    assert.ok(created, "the endpoint exists");
    assert.deepEqual([...created.filterTypes].sort(), ["customer.created", "invoice.paid"]);
    assert.equal(created.description, "Main receiver");
    A.endpoint = created;
    assert.ok(page.url().endsWith(`#/endpoints/${created.id}`), page.url());
    await shot(page, "portal-endpoint");

    await page.getByRole("link", { name: "Endpoints", exact: true }).first().click();
    await page.getByRole("link", { name: A.channel.url }).waitFor();
    await shot(page, "portal-endpoints");
    await assertClean(page);
  });

  test("reveals the signing secret, which is the API's", async () => {
    const page = A.page;
    await go(page, `#/endpoints/${A.endpoint.id}`);
    const value = page.locator("#secret-value");
    await value.waitFor();
    assert.ok(!(await value.innerText()).includes("whsec_") || (await value.innerText()).includes("•"), "hidden by default");
    await page.getByRole("button", { name: "Reveal" }).click();
    const { key } = await admin("GET", `/api/v1/app/${A.id}/endpoint/${A.endpoint.id}/secret`);
    await waitFor("the secret to show", async () => (await value.innerText()).trim() === key);
    assert.match(key, /^whsec_/);
    await shot(page, "portal-secret");
    await page.getByRole("button", { name: "Hide" }).click();
    await waitFor("the secret to hide again", async () => !(await value.innerText()).includes(key));
    // "Copy" puts the secret on the clipboard without revealing it.
    await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
    await page.getByRole("button", { name: "Copy", exact: true }).click();
    await waitFor("the secret on the clipboard", async () => (await page.evaluate(() => navigator.clipboard.readText())) === key);
    assert.ok(!(await value.innerText()).includes(key), "copying did not reveal it");

    // Rotating (after a confirmation) makes a new secret, which "Reveal" then shows.
    await page.getByRole("button", { name: "Rotate…" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Rotate secret" }).click();
    const rotated = await waitFor("the rotation", async () => {
      const now = (await admin("GET", `/api/v1/app/${A.id}/endpoint/${A.endpoint.id}/secret`)).key;
      return now !== key && now;
    });
    await page.getByRole("button", { name: "Reveal" }).click();
    await waitFor("the new secret to show", async () => (await value.innerText()).trim() === rotated);
    await page.getByRole("button", { name: "Hide" }).click();
    await assertClean(page);
  });

  test("a published message appears in the endpoint's deliveries with its attempt", async () => {
    const page = A.page;
    const published = await admin("POST", `/api/v1/app/${A.id}/msg`, {
      eventType: "invoice.paid",
      payload: { invoice: "in_4711", amount: 1999 },
    });
    A.msgId = published.id;
    await A.channel.waitFor(1);

    const row = page.locator("#panel-messages tr", { hasText: published.id });
    await refreshUntil(page, "the delivered message in the deliveries", async () => (await row.locator(".badge-success").count()) > 0);
    assert.match(await row.innerText(), /invoice\.paid/);
    await page.locator("#deliveries-heading").scrollIntoViewIfNeeded();
    await shot(page, "portal-deliveries");

    // The status filter: no failed deliveries.
    await page.getByLabel("Status").selectOption({ label: "Failed" });
    await page.locator("#panel-messages .empty").waitFor();
    await page.getByLabel("Status").selectOption({ label: "All statuses" });
    await row.waitFor();

    // The attempts tab, then the attempt: response status, duration and the message's payload.
    await page.getByRole("tab", { name: "Attempts" }).click();
    const attemptRow = page.locator("#panel-attempts tbody tr").first();
    await attemptRow.waitFor();
    assert.match(await attemptRow.innerText(), /200/);
    await attemptRow.getByRole("link").click();
    await page.locator("main h1", { hasText: "Attempt" }).waitFor();
    assert.equal(await page.locator("#attempt-status-code").innerText(), "200");
    const main = await page.locator("main").innerText();
    assert.match(main, /\d+ ms/);
    assert.match(main, /in_4711/);
    assert.match(main, /Response body/);
    await shot(page, "portal-attempt");
    await assertClean(page);
  });

  test("resend delivers the message again", async () => {
    const page = A.page;
    await page.getByRole("button", { name: "Resend" }).click();
    const deliveries = await A.channel.waitFor(2);
    assert.equal(deliveries[1].headers["webhook-id"], A.msgId, "the same message again");
    assert.deepEqual(JSON.parse(deliveries[1].body.toString()), { invoice: "in_4711", amount: 1999 });
    // The message's page follows the new attempt: two attempts, one of them manual.
    await page.locator("main h1", { hasText: A.msgId }).waitFor();
    const rows = page.locator("main table tbody tr");
    await waitFor("two attempts on the message page", async () => (await rows.count()) === 2);
    await page.locator("main table tbody tr", { hasText: "manual" }).waitFor();
    await assertClean(page);
  });

  test("sends a test event to the endpoint", async () => {
    const page = A.page;
    await go(page, `#/endpoints/${A.endpoint.id}`);
    await page.getByRole("button", { name: "Send test event" }).click();
    await page.getByLabel("Event type").selectOption("invoice.paid");
    // The payload starts as the event type's example.
    assert.match(await page.getByLabel("Payload (a JSON object)").inputValue(), /in_1001/);
    await page.getByRole("button", { name: "Send test event" }).last().click();
    const deliveries = await A.channel.waitFor(3);
    assert.deepEqual(JSON.parse(deliveries[2].body.toString()), { invoice: "in_1001", amount: 4200, currency: "EUR" });
    await assertClean(page);
  });

  test("pages through an endpoint's deliveries with the API's cursors", async () => {
    const page = A.page;
    // 30 messages for A's billing endpoint: more than one page of 25.
    const ids = [];
    for (let i = 0; i < 30; i++) {
      ids.push((await admin("POST", `/api/v1/app/${A.id}/msg`, { eventType: "invoice.failed", payload: { n: i } })).id);
    }
    const billing = (await admin("GET", `/api/v1/app/${A.id}/endpoint`)).data.find((ep) => ep.url === A.other.url);
    await go(page, `#/endpoints/${billing.id}`);
    const rows = page.locator("#panel-messages tbody tr");
    await waitFor("the first page", async () => (await rows.count()) === 25);
    // Newest first: the last published is on top.
    assert.match(await rows.first().innerText(), new RegExp(ids[29]));
    await page.getByRole("button", { name: "Next page ›" }).click();
    await waitFor("the second page", async () => (await rows.count()) === 5);
    assert.match(await rows.last().innerText(), new RegExp(ids[0]));
    await page.getByRole("button", { name: "‹ Previous page" }).click();
    await waitFor("the first page again", async () => (await rows.count()) === 25);
    assert.match(await rows.first().innerText(), new RegExp(ids[29]));
    await assertClean(page);
  });

  test("the verification page has copy-paste snippets for Node, Python, Go, Ruby and PHP", async () => {
    const page = A.page;
    await page.getByRole("link", { name: "Verifying signatures" }).first().click();
    await page.getByRole("heading", { level: 1, name: "Verifying signatures" }).waitFor();
    const expected = {
      "Node.js": /import \{ Webhook \} from "standardwebhooks"/,
      Python: /from standardwebhooks\.webhooks import Webhook/,
      Go: /svix "github\.com\/svix\/svix-webhooks\/go"/,
      Ruby: /Svix::Webhook\.new\(/,
      PHP: /new \\Svix\\Webhook\(/,
    };
    for (const [language, code] of Object.entries(expected)) {
      const section = page.locator(".portal-snippet", { has: page.getByRole("heading", { level: 2, name: new RegExp(`^${language}`) }) });
      assert.match(await section.locator("pre code").innerText(), code, language);
      await section.getByRole("button", { name: `Copy ${language} code` }).waitFor();
    }
    assert.equal(await page.locator(".portal-snippet pre code").count(), 5);
    assert.match(await page.locator("main").innerText(), /webhook-signature/);
    await shot(page, "portal-snippets");
    await assertClean(page);
  });

  test("isolation: A's portal never shows B's application, even when the fragment names B's ids", async () => {
    const page = A.page;
    const leaks = async () => {
      const text = await page.locator("body").innerText();
      for (const secret of [B.url, "bravo-private-endpoint", B.name, "Bravo secret system"]) {
        assert.ok(!text.includes(secret), `B's data (${secret}) appears in A's portal`);
      }
    };
    await go(page, "#/endpoints");
    await page.getByRole("link", { name: A.channel.url }).waitFor();
    await leaks();

    for (const fragment of [
      `#/endpoints/${B.endpointId}`,
      `#/endpoints/${B.endpointId}/edit`,
      `#/endpoints/${B.endpointId}/msg/${B.msgId}`,
      `#/endpoints/${A.endpoint.id}/msg/${B.msgId}`,
      `#/endpoints/${B.endpointId}/msg/${B.msgId}/attempt/${B.attemptId}`,
      `#/endpoints/${A.endpoint.id}/msg/${B.msgId}/attempt/${B.attemptId}`,
    ]) {
      await go(page, fragment);
      await waitFor(`"Not found" for ${fragment}`, async () => (await h1(page)) === "Not found");
      await leaks();
    }
    // A route naming B's application is no page of this portal.
    for (const fragment of [`#/app/${B.id}/endpoints`, `#/app/${B.id}/endpoint/${B.endpointId}`]) {
      await go(page, fragment);
      await waitFor(`"Page not found" for ${fragment}`, async () => (await h1(page)) === "Page not found");
      await leaks();
    }

    // The API says the same to A's token: B's paths are 404, organisation routes 403.
    const expectations = [
      ["GET", `/api/v1/app/${B.id}`, 404],
      ["GET", `/api/v1/app/${B.id}/endpoint`, 404],
      ["GET", `/api/v1/app/${B.id}/endpoint/${B.endpointId}`, 404],
      ["GET", `/api/v1/app/${B.id}/endpoint/${B.endpointId}/secret`, 404],
      ["GET", `/api/v1/app/${A.id}/endpoint/${B.endpointId}`, 404],
      ["GET", `/api/v1/app/${A.id}/endpoint/${B.endpointId}/secret`, 404],
      ["GET", `/api/v1/app/${A.id}/msg/${B.msgId}`, 404],
      ["GET", `/api/v1/app/${A.id}/msg/${B.msgId}/attempt/${B.attemptId}`, 404],
      ["POST", `/api/v1/app/${B.id}/msg`, 404, { eventType: "invoice.paid", payload: {} }],
      ["POST", `/api/v1/app/${A.id}/msg/${B.msgId}/endpoint/${B.endpointId}/resend`, 404, {}],
      ["PATCH", `/api/v1/app/${B.id}/endpoint/${B.endpointId}`, 404, { disabled: true }],
      ["GET", "/api/v1/app", 403],
      ["POST", `/api/v1/auth/app-portal-access/${B.id}`, 403, {}],
    ];
    for (const [method, route, status, body] of expectations) {
      const response = await asApp(A.token, method, route, body);
      assert.equal(response.status, status, `${method} ${route}`);
      assert.ok(!(await response.text()).includes(B.url));
    }
    const stillB = await admin("GET", `/api/v1/app/${B.id}/endpoint/${B.endpointId}`);
    assert.equal(stillB.disabled, false, "B's endpoint was not changed");
    await assertClean(page);
  });

  test("a read-only portal has no buttons that change anything", async () => {
    const link = await portalLink(A.id, { readOnly: true });
    const page = await openPortal(link);
    await page.getByText("read-only access").first().waitFor();
    const writes = /^(Add endpoint|Edit|Disable|Enable|Delete|Delete…|Rotate…|Resend|Send test event|Save)$/;
    const noWrites = async (where) => {
      assert.equal(await page.getByRole("button", { name: writes }).count(), 0, `write buttons on ${where}`);
      assert.equal(await page.getByRole("link", { name: writes }).count(), 0, `write links on ${where}`);
    };
    await page.getByRole("link", { name: A.channel.url }).waitFor();
    await noWrites("the endpoint list");

    await page.getByRole("link", { name: A.channel.url }).click();
    await page.locator("main h1", { hasText: A.channel.url }).waitFor();
    await page.locator("#panel-messages tbody tr").first().waitFor();
    await noWrites("the endpoint page");
    // The secret is still viewable (Svix's ViewEndpointSecret is part of read-only access).
    await page.getByRole("button", { name: "Reveal" }).click();
    await waitFor("the secret", async () => (await page.locator("#secret-value").innerText()).startsWith("whsec_"));
    await shot(page, "portal-readonly");

    await go(page, `#/endpoints/${A.endpoint.id}/msg/${A.msgId}`);
    await page.locator("main h1", { hasText: A.msgId }).waitFor();
    await page.locator("main table tbody tr").first().waitFor();
    await noWrites("the message page");
    await page.locator("main table tbody tr a").first().click();
    await page.locator("main h1", { hasText: "Attempt" }).waitFor();
    await noWrites("the attempt page");

    await go(page, "#/endpoints/new");
    await waitFor("no form for a read-only token", async () => (await h1(page)) === "Page not found");
    // And the API refuses the writes anyway.
    const refused = await asApp(link.token, "POST", `/api/v1/app/${A.id}/endpoint`, { url: A.channel.url });
    assert.equal(refused.status, 403);
    await assertClean(page);
    await page.context().close();
  });

  test("embeds in an iframe of an allowed origin", async () => {
    const link = await portalLink(A.id);
    const response = await fetch(`${server.url}/app-portal`);
    const policy = response.headers.get("content-security-policy");
    assert.match(policy, new RegExp(`frame-ancestors ${embedder.origin.replace(/[.]/g, "\\.")}(;|$)`), policy);
    assert.equal(response.headers.get("x-frame-options"), null, "no X-Frame-Options DENY on an embeddable portal");

    embedder.embed(link.url);
    const page = await newPage(browser, { width: 1280, height: 960 });
    await page.goto(`${embedder.origin}/`);
    const frame = page.frameLocator("iframe");
    await frame.getByRole("heading", { level: 1, name: "Endpoints" }).waitFor();
    await frame.getByRole("link", { name: A.channel.url }).click();
    await frame.locator("main h1", { hasText: A.channel.url }).waitFor();
    assert.equal(page.url(), `${embedder.origin}/`, "the embedding page did not navigate");
    const inner = page.frames().find((f) => f.url().startsWith(server.url));
    assert.ok(inner && !inner.url().includes("key="), inner?.url());
    await frame.getByRole("link", { name: "Endpoints", exact: true }).first().click();
    await frame.getByRole("link", { name: A.channel.url }).waitFor();
    await shot(page, "portal-embedded");
    await assertClean(page);
    await page.context().close();
  });

  test("is themed: title, logo and accent colour from configuration", async () => {
    const page = A.page;
    await go(page, "#/endpoints");
    await page.getByRole("heading", { level: 1, name: "Endpoints" }).waitFor();
    const logo = page.locator("header .brand img");
    assert.equal(await logo.getAttribute("alt"), `${TITLE} logo`);
    await waitFor("the logo to load", () => logo.evaluate((img) => img.complete && img.naturalWidth > 0));
    assert.equal(await logo.evaluate((img) => img.naturalWidth), 96);
    assert.match(await page.locator("header .brand").innerText(), new RegExp(TITLE));
    const border = await page.locator("header.top").evaluate((el) => getComputedStyle(el).borderBottomColor);
    assert.equal(border, ACCENT_RGB);
    const button = await page.getByRole("link", { name: "Add endpoint" }).evaluate((el) => getComputedStyle(el).backgroundColor);
    assert.equal(button, ACCENT_RGB);
    assert.match(await page.title(), new RegExp(TITLE));
    await assertClean(page);
  });

  test("works at phone width", async () => {
    const link = await portalLink(A.id);
    const page = await openPortal(link, { width: 390, height: 844 });
    await page.getByRole("link", { name: A.channel.url }).waitFor();
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok((await overflow()) <= 0, `the page scrolls sideways by ${await overflow()} px`);
    await shot(page, "portal-phone");
    await page.getByRole("link", { name: A.channel.url }).click();
    await page.locator("main h1", { hasText: A.channel.url }).waitFor();
    await page.locator("#panel-messages tbody tr").first().waitFor();
    assert.ok((await overflow()) <= 0, `the endpoint page scrolls sideways by ${await overflow()} px`);
    await assertClean(page);
    await page.context().close();
  });

  test("edits, disables and deletes an endpoint", async () => {
    const page = A.page;
    await go(page, `#/endpoints/${A.endpoint.id}`);
    await page.getByRole("link", { name: "Edit" }).click();
    await page.getByRole("heading", { level: 1, name: "Edit endpoint" }).waitFor();
    assert.ok(await page.getByRole("checkbox", { name: /invoice\.paid/ }).isChecked());
    await page.getByLabel("Description").fill("Main receiver, edited");
    await page.getByRole("checkbox", { name: /customer\.created/ }).uncheck();
    await page.getByRole("button", { name: "Save" }).click();
    await page.locator("main h1", { hasText: A.channel.url }).waitFor();
    let ep = await admin("GET", `/api/v1/app/${A.id}/endpoint/${A.endpoint.id}`);
    assert.equal(ep.description, "Main receiver, edited");
    assert.deepEqual(ep.filterTypes, ["invoice.paid"]);

    await page.getByRole("button", { name: "Disable" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Disable" }).click();
    await page.getByRole("button", { name: "Enable" }).waitFor();
    ep = await admin("GET", `/api/v1/app/${A.id}/endpoint/${A.endpoint.id}`);
    assert.equal(ep.disabled, true);
    await page.getByRole("button", { name: "Enable" }).click();
    await page.getByRole("button", { name: "Disable" }).waitFor();

    // A server-side refusal shows the server's message.
    await page.getByRole("link", { name: "Edit" }).click();
    await page.getByLabel("Endpoint URL").fill("ftp://example.com/hook");
    await page.getByRole("button", { name: "Save" }).click();
    await page.locator("form [role=alert]", { hasText: /url/i }).waitFor();
    await page.locator("#notices .notice-error").first().waitFor();
    await page.getByRole("link", { name: "Cancel" }).click();

    await page.locator("main h1", { hasText: A.channel.url }).waitFor();
    await page.getByRole("button", { name: "Delete…" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete endpoint" }).click();
    await page.getByRole("heading", { level: 1, name: "Endpoints" }).waitFor();
    const left = await admin("GET", `/api/v1/app/${A.id}/endpoint`);
    assert.ok(!left.data.some((e) => e.id === A.endpoint.id), "the endpoint is gone");
    await assertClean(page);
  });
});
