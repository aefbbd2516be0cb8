// What the browser tests share: Debian's Chromium (/usr/bin/chromium, or $CHROMIUM) started headless by
// playwright-core, pages that fail the test on any console error or Content-Security-Policy violation, and
// screenshots saved to screenshots/ (or $HOOKRELAY_SCREENSHOTS) for docs/dashboard.md. The server and webhook
// receiver come from the JavaScript interop tests' harness.

import { mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export { startServer, startReceiver, waitFor, TOKEN } from "../js/harness.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SCREENSHOTS = process.env.HOOKRELAY_SCREENSHOTS || path.join(HERE, "screenshots");

/** Chromium as the machine has it, with nothing that reaches beyond loopback. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
}

/**
 * A page in a fresh context (its own session storage) whose console errors, uncaught exceptions and CSP
 * violations are collected in `page.problems`; `assertClean(page)` fails the test if there were any.
 */
export async function newPage(browser, { width = 1280, height = 860 } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  page.problems = [];
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const text = message.text();
    // A failed API call the test provoked on purpose (a 404 or 403) is logged by the browser as a resource
    // error; the page shows it to the user, which the test checks itself.
    if (/Failed to load resource: the server responded with a status of (4\d\d)/.test(text)) return;
    page.problems.push(`console: ${text}`);
  });
  page.on("pageerror", (error) => page.problems.push(`exception: ${error.message}`));
  return page;
}

/**
 * Fails on any console error or CSP violation the page logged, and on what makes a page unusable without a mouse
 * or a screen: a form control without a label, a button or link without a name, an image without alt text, a
 * page without exactly one <h1>. (Frames are checked by their own test.)
 */
export async function assertClean(page) {
  const unusable = await page.evaluate(() => {
    const problems = [];
    const name = (el) => (el.getAttribute("aria-label") || el.textContent || el.getAttribute("title") || "").trim();
    for (const control of document.querySelectorAll("input, select, textarea")) {
      if (control.type === "hidden") continue;
      const labelled = control.labels?.length || control.getAttribute("aria-label") || control.getAttribute("aria-labelledby");
      if (!labelled) problems.push(`unlabelled ${control.tagName.toLowerCase()} ${control.name || control.id || ""}`);
    }
    for (const el of document.querySelectorAll("button, a[href]")) {
      if (!name(el) && !el.querySelector("img[alt]:not([alt=''])")) problems.push(`nameless ${el.tagName.toLowerCase()}`);
    }
    for (const img of document.querySelectorAll("img")) {
      if (!img.hasAttribute("alt")) problems.push(`image without alt: ${img.src}`);
    }
    const h1s = document.querySelectorAll("h1").length;
    if (h1s !== 1) problems.push(`${h1s} <h1> elements`);
    return problems;
  });
  const all = [...page.problems, ...unusable.map((p) => `accessibility: ${p}`)];
  if (all.length) {
    throw new Error(`the page at ${page.url()} has problems:\n${all.join("\n")}`);
  }
}

export async function screenshot(page, name) {
  await mkdir(SCREENSHOTS, { recursive: true });
  // Passing notices ("Endpoint created") would cover the page in the picture.
  await page.evaluate(() => document.getElementById("notices")?.replaceChildren());
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}
