// A typed client generated from hookrelay's own OpenAPI document compiles against ordinary usage: the document
// is fetched from a running server (GET /api/v1/openapi.json), openapi-typescript (pinned in package.json) turns
// it into generated/schema.d.ts, and `tsc --noEmit --strict` compiles typed-usage.ts against those types.
// generated/ is git-ignored; it is left in place after a run for a look at what was generated.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { before, test } from "node:test";

import { startServer } from "./harness.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const GENERATED = path.join(HERE, "generated");
const OPENAPI_JSON = path.join(GENERATED, "openapi.json");
const SCHEMA_D_TS = path.join(GENERATED, "schema.d.ts");
const OPENAPI_TYPESCRIPT = path.join(HERE, "node_modules", "openapi-typescript", "bin", "cli.js");
const TSC = path.join(HERE, "node_modules", "typescript", "bin", "tsc");

/** Runs a Node script of a dev dependency; resolves with its exit code and output instead of throwing. */
async function run(script, args) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [script, ...args], {
      cwd: HERE,
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    if (typeof error.code !== "number") throw error;
    return { code: error.code, output: `${error.stdout ?? ""}${error.stderr ?? ""}` };
  }
}

before(async () => {
  await rm(GENERATED, { recursive: true, force: true });
  await mkdir(GENERATED, { recursive: true });
  const server = await startServer();
  try {
    const response = await fetch(`${server.url}/api/v1/openapi.json`);
    assert.equal(response.status, 200, "GET /api/v1/openapi.json");
    const document = await response.json();
    assert.match(String(document.openapi), /^3\./, "an OpenAPI 3 document");
    await writeFile(OPENAPI_JSON, `${JSON.stringify(document, null, 2)}\n`);
  } finally {
    await server.stop();
  }
});

test("openapi-typescript generates types from GET /api/v1/openapi.json", async () => {
  const { code, output } = await run(OPENAPI_TYPESCRIPT, [OPENAPI_JSON, "--output", SCHEMA_D_TS]);
  assert.equal(code, 0, `openapi-typescript failed:\n${output}`);
});

test("typed-usage.ts compiles against the generated types with tsc --noEmit --strict", async () => {
  const { code, output } = await run(TSC, [
    "--noEmit",
    "--strict",
    "--target",
    "es2022",
    "--module",
    "nodenext",
    "--moduleResolution",
    "nodenext",
    "typed-usage.ts",
  ]);
  assert.equal(code, 0, `tsc reported type errors in typed-usage.ts:\n${output}`);
});
