// The pieces the JavaScript interop tests share, mirroring tests/interop/conftest.py: a real `hookrelay serve`
// process on a free loopback port with a fresh data directory, and a loopback webhook receiver that records
// every request with its exact bytes. The binary comes from $HOOKRELAY_BIN (set by .ci/run), else
// target/debug/hookrelay at the repository root.

import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const TOKEN = "js-interop-admin-token";
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` (sync or async) until it returns something truthy; throws after `timeoutMs`. */
export async function waitFor(what, check, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      if (error?.fatal) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    }
    await sleep(50);
  }
}

/** A port nobody listens on right now: the OS picks it, we release it and hand it to the server. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts `hookrelay serve` and resolves once `GET /api/v1/health/` answers 200. Returns
 * `{ url, token, stop() }`; `stop()` terminates the process (SIGKILL after 20 s) and removes the data directory.
 */
export async function startServer(extraEnv = {}) {
  const binary = process.env.HOOKRELAY_BIN || path.join(ROOT, "target", "debug", "hookrelay");
  const dataDir = await mkdtemp(path.join(tmpdir(), "hookrelay-js-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(binary, ["serve"], {
    env: {
      ...process.env,
      HOOKRELAY_LISTEN: `127.0.0.1:${port}`,
      HOOKRELAY_DATA_DIR: path.join(dataDir, "data"),
      HOOKRELAY_ADMIN_TOKEN: TOKEN,
      HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS: "true",
      HOOKRELAY_RETRY_SCHEDULE: "1,1",
      HOOKRELAY_LOG: "warn",
      ...extraEnv,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // Keep the last few kilobytes of output for the error message; draining also keeps the pipes from filling.
  let output = "";
  const keep = (chunk) => {
    output = (output + chunk.toString()).slice(-8_000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  let exited = null;
  const exitedPromise = new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
    child.on("error", (error) => {
      exited = { error };
      resolve(exited);
    });
  });
  // Never leave the server behind, even when the test process dies without running its `after` hooks.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);

  const stop = async () => {
    process.removeListener("exit", killOnExit);
    if (exited === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      await exitedPromise;
      clearTimeout(timer);
    }
    await rm(dataDir, { recursive: true, force: true });
  };

  try {
    await waitFor(
      `hookrelay to answer GET ${url}/api/v1/health/`,
      async () => {
        if (exited !== null) {
          throw Object.assign(new Error(`hookrelay (${binary}) exited early: ${JSON.stringify(exited)}\n${output}`), {
            fatal: true,
          });
        }
        try {
          const response = await fetch(`${url}/api/v1/health/`, { signal: AbortSignal.timeout(2_000) });
          return response.status === 200;
        } catch {
          return false;
        }
      },
      30_000,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, token: TOKEN, stop, output: () => output };
}

/**
 * A loopback HTTP server that records every request. Each test takes its own channel (`/hook/<name>`), whose
 * `status` it may change (e.g. 500 to make deliveries fail); each recorded delivery is
 * `{ method, headers, body: Buffer, receivedAt }` with the body's exact bytes.
 */
export async function startReceiver() {
  const channels = new Map();
  const server = http.createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      const channel = channels.get(request.url);
      const status = channel ? channel.status : 404;
      if (channel) {
        channel.deliveries.push({
          method: request.method,
          headers: request.headers,
          body: Buffer.concat(chunks),
          receivedAt: Date.now(),
          answered: status,
        });
      }
      response.writeHead(status, { "content-type": "text/plain", "content-length": "2" });
      response.end("ok");
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    channel(name) {
      const route = `/hook/${name}`;
      const channel = {
        url: base + route,
        status: 200,
        deliveries: [],
        /** Resolves with the deliveries once at least `count` have arrived. */
        waitFor(count, timeoutMs = 20_000) {
          return waitFor(
            `${count} deliveries at ${route} (have ${channel.deliveries.length})`,
            () => (channel.deliveries.length >= count ? [...channel.deliveries] : null),
            timeoutMs,
          );
        },
      };
      channels.set(route, channel);
      return channel;
    },
    stop() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
