// Interop: the official Svix JavaScript SDK (npm `svix`, pinned in package.json) drives a real hookrelay server
// unchanged, and every delivery it causes verifies with the SDK's own `Webhook` class. Each test takes its own
// application and receiver channel, so one failing check does not hide the others.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { ApiException, MessageStatus, Svix, Webhook, messageInRaw } from "svix";

import { startReceiver, startServer, waitFor } from "./harness.mjs";

let server;
let receiver;
let hr;

before(async () => {
  server = await startServer();
  receiver = await startReceiver();
  hr = explaining(new Svix(server.token, { serverUrl: server.url }));
});

after(async () => {
  await receiver?.stop();
  await server?.stop();
});

/**
 * The client with one change for the test report: a failed call's `ApiException` names the answer's body (the
 * SDK's own message gives only the status code), e.g. which field a 422 refused.
 */
function explaining(client) {
  return new Proxy(client, {
    get(target, resourceName) {
      const resource = target[resourceName];
      if (resource === null || typeof resource !== "object") return resource;
      return new Proxy(resource, {
        get(api, name) {
          const member = api[name];
          if (typeof member !== "function") return member;
          return (...args) =>
            member.apply(api, args).catch((error) => {
              if (error instanceof ApiException) {
                error.message = `HTTP ${error.code} from ${String(resourceName)}.${String(name)}: ${JSON.stringify(error.body)}`;
              }
              throw error;
            });
        },
      });
    },
  });
}

/** The SDK's own verifier must accept the delivery (it throws on a bad signature); returns the parsed body. */
function verified(secret, delivery) {
  return new Webhook(secret).verify(delivery.body, delivery.headers);
}

let counter = 0;
/** A fresh application with one endpoint pointing at a fresh receiver channel, and that endpoint's secret. */
async function appWithEndpoint(name, endpointIn = {}) {
  const unique = `${name}-${++counter}`;
  const channel = receiver.channel(unique);
  const app = await hr.application.create({ name: `JS ${unique}`, uid: `js-${unique}` });
  const endpoint = await hr.endpoint.create(app.id, { url: channel.url, uid: `ep-${unique}`, ...endpointIn });
  const { key: secret } = await hr.endpoint.getSecret(app.id, endpoint.id);
  return { app, endpoint, channel, secret };
}

/** Waits until the attempt log holds `count` attempts for the message and returns them. */
function attemptsOf(appId, msgId, count) {
  return waitFor(`${count} recorded attempts of ${msgId}`, async () => {
    const { data } = await hr.messageAttempt.listByMsg(appId, msgId);
    return data.length >= count ? data : null;
  });
}

test("applications: create, get, list, update, delete", async () => {
  const created = await hr.application.create({ name: "Acme", uid: "js-acme", metadata: { tier: "gold" } });
  assert.match(created.id, /^app_/);
  assert.equal(created.uid, "js-acme");
  assert.deepEqual(created.metadata, { tier: "gold" });
  assert.ok(created.createdAt instanceof Date && !Number.isNaN(created.createdAt.getTime()));

  assert.equal((await hr.application.get("js-acme")).id, created.id, "get by uid");
  assert.equal((await hr.application.get(created.id)).name, "Acme", "get by id");

  const listed = await hr.application.list({ limit: 250 });
  assert.ok(listed.data.some((a) => a.id === created.id), "the new application is listed");
  assert.equal(typeof listed.done, "boolean");

  const updated = await hr.application.update(created.id, { name: "Acme Corp", uid: "js-acme" });
  assert.equal(updated.name, "Acme Corp");
  assert.equal((await hr.application.get(created.id)).name, "Acme Corp");

  await hr.application.delete(created.id);
  await assert.rejects(hr.application.get(created.id), (error) => {
    assert.ok(error instanceof ApiException, String(error));
    assert.equal(error.code, 404);
    return true;
  });
});

test("event types: create, list", async () => {
  const created = await hr.eventType.create({ name: "js.invoice.paid", description: "An invoice was paid" });
  assert.equal(created.name, "js.invoice.paid");
  assert.equal(created.description, "An invoice was paid");
  const listed = await hr.eventType.list({ limit: 250 });
  const found = listed.data.find((e) => e.name === "js.invoice.paid");
  assert.ok(found, "the new event type is listed");
  assert.equal(found.description, "An invoice was paid");
});

test("endpoints: create, get, list, update, getSecret, rotateSecret", async () => {
  await hr.eventType.create({ name: "js.user.created", description: "A user signed up" });
  const { app, endpoint, channel, secret } = await appWithEndpoint("endpoints", {
    description: "first",
    filterTypes: ["js.user.created"],
  });
  assert.match(endpoint.id, /^ep_/);
  assert.equal(endpoint.url, channel.url);
  assert.deepEqual(endpoint.filterTypes, ["js.user.created"]);
  assert.match(secret, /^whsec_/);

  assert.equal((await hr.endpoint.get(app.id, endpoint.id)).description, "first");
  assert.equal((await hr.endpoint.get(app.id, endpoint.uid)).id, endpoint.id, "get by uid");
  const listed = await hr.endpoint.list(app.id);
  assert.deepEqual(
    listed.data.map((e) => e.id),
    [endpoint.id],
  );

  const updated = await hr.endpoint.update(app.id, endpoint.id, {
    url: channel.url,
    description: "second",
    filterTypes: ["js.user.created"],
  });
  assert.equal(updated.description, "second");
  assert.equal((await hr.endpoint.get(app.id, endpoint.id)).description, "second");

  await hr.endpoint.rotateSecret(app.id, endpoint.id, {});
  const { key: rotated } = await hr.endpoint.getSecret(app.id, endpoint.id);
  assert.match(rotated, /^whsec_/);
  assert.notEqual(rotated, secret);

  // After a rotation both secrets sign (for 24 hours): a receiver with either one accepts the delivery.
  const message = await hr.message.create(app.id, { eventType: "js.user.created", payload: { id: 1 } });
  const [delivery] = await channel.waitFor(1);
  assert.deepEqual(verified(rotated, delivery), { id: 1 });
  assert.deepEqual(verified(secret, delivery), { id: 1 });
  assert.equal(delivery.headers["webhook-id"], message.id);
});

test("message.create: delivered signed, then message get and list", async () => {
  const { app, channel, secret } = await appWithEndpoint("messages");
  const message = await hr.message.create(app.id, {
    eventType: "invoice.paid",
    eventId: "evt_js_1",
    payload: { amount: 4200, nested: { b: [1, 2] } },
  });
  assert.match(message.id, /^msg_/);
  assert.equal(message.eventType, "invoice.paid");
  assert.equal(message.eventId, "evt_js_1");

  const [delivery] = await channel.waitFor(1);
  assert.equal(delivery.method, "POST");
  assert.equal(delivery.headers["webhook-id"], message.id);
  assert.equal(delivery.headers["svix-id"], message.id);
  assert.match(delivery.headers["content-type"], /^application\/json/);
  assert.deepEqual(verified(secret, delivery), { amount: 4200, nested: { b: [1, 2] } });

  const fetched = await hr.message.get(app.id, message.id, { withContent: true });
  assert.equal(fetched.id, message.id);
  assert.deepEqual(fetched.payload, { amount: 4200, nested: { b: [1, 2] } });
  assert.equal((await hr.message.get(app.id, "evt_js_1")).id, message.id, "get by eventId");

  const listed = await hr.message.list(app.id, { withContent: true });
  assert.deepEqual(
    listed.data.map((m) => m.id),
    [message.id],
  );
  assert.deepEqual(listed.data[0].payload, { amount: 4200, nested: { b: [1, 2] } });
});

test("message.create with messageInRaw: the raw bytes and their content-type are delivered exactly", async () => {
  const { app, channel, secret } = await appWithEndpoint("raw");
  // Not JSON, with characters JSON re-encoding would change: it must arrive byte for byte.
  const xml = '<?xml version="1.0"?>\n<invoice id="in_1" total="42.00">caf\u00e9 &amp; \u2603</invoice>\n';
  // JSON text whose spacing, key order and number spelling a JSON re-encoding would change.
  const json = '{"z": 1.50,  "a": [1e3, "\\u00e9"],\n "nested": {"b": null}}';
  const xmlMessage = await hr.message.create(app.id, messageInRaw("invoice.raw", xml, "application/xml"));
  const jsonMessage = await hr.message.create(app.id, messageInRaw("invoice.raw", json, "application/vnd.acme+json"));
  assert.match(xmlMessage.id, /^msg_/);
  assert.equal(xmlMessage.eventType, "invoice.raw");

  const deliveries = await channel.waitFor(2);
  const received = (message) => deliveries.find((d) => d.headers["webhook-id"] === message.id);
  const xmlDelivery = received(xmlMessage);
  const jsonDelivery = received(jsonMessage);
  assert.ok(xmlDelivery && jsonDelivery, "both raw messages delivered");

  assert.equal(xmlDelivery.headers["content-type"], "application/xml");
  assert.ok(
    xmlDelivery.body.equals(Buffer.from(xml, "utf8")),
    `raw XML delivered byte for byte; got ${JSON.stringify(xmlDelivery.body.toString("utf8"))}`,
  );
  // The SDK's verifier parses the body as JSON once the signature matched, which XML cannot pass: a SyntaxError
  // (not a WebhookVerificationError) means the signature over the raw bytes was valid. `sign`, from the same
  // class, checks it directly, as a receiver of raw payloads does.
  const webhook = new Webhook(secret);
  assert.throws(() => webhook.verify(xmlDelivery.body, xmlDelivery.headers), SyntaxError);
  const timestamp = new Date(Number(xmlDelivery.headers["webhook-timestamp"]) * 1000);
  const expected = webhook.sign(xmlMessage.id, timestamp, xmlDelivery.body);
  assert.ok(
    xmlDelivery.headers["webhook-signature"].split(" ").includes(expected),
    `a signature over the raw bytes: expected ${expected} in ${xmlDelivery.headers["webhook-signature"]}`,
  );

  assert.equal(jsonDelivery.headers["content-type"], "application/vnd.acme+json");
  assert.ok(
    jsonDelivery.body.equals(Buffer.from(json, "utf8")),
    `raw JSON text delivered byte for byte; got ${JSON.stringify(jsonDelivery.body.toString("utf8"))}`,
  );
  assert.deepEqual(verified(secret, jsonDelivery), JSON.parse(json));
});

test("message.create with tags: tags come back in MessageOut and filter the message list", async () => {
  const { app, channel, secret } = await appWithEndpoint("tags");
  const message = await hr.message.create(app.id, {
    eventType: "invoice.paid",
    payload: { n: 1 },
    tags: ["vip", "region-eu"],
  });
  assert.deepEqual([...(message.tags ?? [])].sort(), ["region-eu", "vip"], "tags in the create answer");
  const fetched = await hr.message.get(app.id, message.id);
  assert.deepEqual([...(fetched.tags ?? [])].sort(), ["region-eu", "vip"], "tags in message.get");
  const untagged = await hr.message.create(app.id, { eventType: "invoice.paid", payload: { n: 2 } });

  const byTag = await hr.message.list(app.id, { tag: "vip" });
  assert.deepEqual(
    byTag.data.map((m) => m.id),
    [message.id],
  );
  const all = await hr.message.list(app.id);
  assert.deepEqual(all.data.map((m) => m.id).sort(), [message.id, untagged.id].sort());

  for (const delivery of await channel.waitFor(2)) verified(secret, delivery);
});

test("message.create with deliverAt: not delivered before that time", async () => {
  const { app, channel, secret } = await appWithEndpoint("deliver-at");
  const deliverAt = new Date(Math.ceil((Date.now() + 3_000) / 1000) * 1000); // a whole second, 3-4 s ahead
  const message = await hr.message.create(app.id, { eventType: "invoice.paid", payload: { n: 1 }, deliverAt });
  assert.equal(message.deliverAt?.getTime(), deliverAt.getTime(), "deliverAt in the create answer");
  assert.equal((await hr.message.get(app.id, message.id)).deliverAt?.getTime(), deliverAt.getTime());

  const [delivery] = await channel.waitFor(1, 30_000);
  assert.ok(
    delivery.receivedAt >= deliverAt.getTime(),
    `delivered ${deliverAt.getTime() - delivery.receivedAt} ms before deliverAt`,
  );
  assert.deepEqual(verified(secret, delivery), { n: 1 });
});

test("attempts: listByMsg, listByEndpoint, listAttemptedMessages, listAttemptedDestinations", async () => {
  const { app, endpoint, channel, secret } = await appWithEndpoint("attempts");
  const message = await hr.message.create(app.id, { eventType: "invoice.paid", payload: { n: 1 } });
  const [delivery] = await channel.waitFor(1);
  verified(secret, delivery);

  const [attempt] = await attemptsOf(app.id, message.id, 1);
  assert.match(attempt.id, /^atmpt_/);
  assert.equal(attempt.msgId, message.id);
  assert.equal(attempt.endpointId, endpoint.id);
  assert.equal(attempt.responseStatusCode, 200);
  assert.equal(attempt.status, MessageStatus.Success);
  assert.equal(attempt.url, channel.url);

  const byEndpoint = await hr.messageAttempt.listByEndpoint(app.id, endpoint.id);
  assert.deepEqual(
    byEndpoint.data.map((a) => a.id),
    [attempt.id],
  );
  const failedOnly = await hr.messageAttempt.listByEndpoint(app.id, endpoint.id, { status: MessageStatus.Fail });
  assert.deepEqual(failedOnly.data, []);

  const attempted = await hr.messageAttempt.listAttemptedMessages(app.id, endpoint.id, { withContent: true });
  assert.equal(attempted.data.length, 1);
  assert.equal(attempted.data[0].id, message.id);
  assert.equal(attempted.data[0].eventType, "invoice.paid");
  assert.equal(attempted.data[0].status, MessageStatus.Success);
  assert.deepEqual(attempted.data[0].payload, { n: 1 });

  const destinations = await hr.messageAttempt.listAttemptedDestinations(app.id, message.id);
  assert.deepEqual(
    destinations.data.map((d) => [d.id, d.status]),
    [[endpoint.id, MessageStatus.Success]],
  );
});

test("messageAttempt.resend: the receiver gets the message again", async () => {
  const { app, endpoint, channel, secret } = await appWithEndpoint("resend");
  const message = await hr.message.create(app.id, { eventType: "invoice.paid", payload: { n: 1 } });
  await channel.waitFor(1);
  await attemptsOf(app.id, message.id, 1);

  await hr.messageAttempt.resend(app.id, message.id, endpoint.id);
  const deliveries = await channel.waitFor(2);
  assert.equal(deliveries.length, 2);
  for (const delivery of deliveries) {
    assert.equal(delivery.headers["webhook-id"], message.id);
    assert.deepEqual(verified(secret, delivery), { n: 1 });
  }
  const attempts = await attemptsOf(app.id, message.id, 2);
  assert.deepEqual(
    attempts.map((a) => a.responseStatusCode),
    [200, 200],
  );
});

test("endpoint.recover: deliveries that failed while the receiver was down arrive after recovery", async () => {
  const since = new Date(Date.now() - 60_000);
  const { app, endpoint, channel, secret } = await appWithEndpoint("recover");
  channel.status = 500;
  const messages = [];
  for (const n of [1, 2]) {
    messages.push(await hr.message.create(app.id, { eventType: "invoice.paid", payload: { n } }));
  }
  // The server's retry schedule is "1,1": three failed attempts each, then the delivery fails for good.
  for (const message of messages) {
    await waitFor(`${message.id} to fail for good`, async () => {
      const { data } = await hr.messageAttempt.listAttemptedDestinations(app.id, message.id);
      return data.length === 1 && data[0].status === MessageStatus.Fail;
    });
  }
  const failed = channel.deliveries.length;
  assert.equal(failed, 6, "three attempts of each message, all answered 500");
  for (const delivery of channel.deliveries) verified(secret, delivery);

  channel.status = 200;
  const started = await hr.endpoint.recover(app.id, endpoint.id, { since });
  assert.match(started.id, /^qtask_/);
  const task = await waitFor(`recover task ${started.id} to end`, async () => {
    const current = await hr.backgroundTask.get(started.id);
    return current.status !== "running" ? current : null;
  });
  assert.equal(task.status, "finished");
  assert.equal(task.task, "endpoint.recover");

  const recovered = (await channel.waitFor(failed + 2)).slice(failed);
  assert.deepEqual(recovered.map((d) => d.headers["webhook-id"]).sort(), messages.map((m) => m.id).sort());
  for (const delivery of recovered) {
    assert.equal(delivery.answered, 200);
    verified(secret, delivery);
  }
  for (const message of messages) {
    await waitFor(`${message.id} to be marked delivered`, async () => {
      const { data } = await hr.messageAttempt.listAttemptedDestinations(app.id, message.id);
      return data[0].status === MessageStatus.Success;
    });
  }
});
