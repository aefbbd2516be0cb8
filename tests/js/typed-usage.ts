// What a TypeScript user writes against a client generated from hookrelay's own OpenAPI document
// (GET /api/v1/openapi.json → openapi-typescript → generated/schema.d.ts). typed-client.test.mjs generates the
// types from a running server and compiles this file with `tsc --noEmit --strict`; a type error here means the
// document describes the API too loosely or too narrowly for ordinary, valid requests.

import type { components, paths } from "./generated/schema.js";

type Schemas = components["schemas"];
type MessageCreate = paths["/api/v1/app/{app_id}/msg/"]["post"];
type MessageCreateHeaders = NonNullable<MessageCreate["parameters"]["header"]>;
type MessageCreated = MessageCreate["responses"][202]["content"]["application/json"];

// A message whose payload is an ordinary JSON object, with its event type, tags and channels.
export const message: Schemas["MessageIn"] = {
  eventType: "invoice.paid",
  eventId: "evt_1001",
  payload: { a: 1, nested: { b: [1, 2] } },
  tags: ["vip", "region-eu"],
  channels: ["billing"],
};

// The operation's request body is that same schema.
export const createBody: MessageCreate["requestBody"]["content"]["application/json"] = message;

// Sending it again with the same idempotency key returns the first message instead of a second one.
export const idempotencyKey: MessageCreateHeaders["idempotency-key"] = "order-42";
export const createHeaders: MessageCreateHeaders & { authorization: string; "content-type": "application/json" } = {
  authorization: "Bearer <token>",
  "content-type": "application/json",
  "idempotency-key": idempotencyKey,
};

// What the 202 answer carries back: the message's id, its payload and its tags.
export function describe(created: MessageCreated): string {
  const tags: readonly string[] = created.tags ?? [];
  const amount: unknown = created.payload["a"];
  return `${created.id} ${created.eventType} [${tags.join(",")}] a=${String(amount)}`;
}

export const endpoint: Schemas["EndpointIn"] = {
  url: "https://hooks.acme.example/hookrelay",
  uid: "acme-main",
  description: "Acme's billing webhooks",
  eventTypes: ["invoice.paid"],
  channels: ["billing"],
  metadata: { team: "payments" },
};

export const application: Schemas["ApplicationIn"] = {
  name: "Acme Corp",
  uid: "acme",
  metadata: { tier: "gold" },
};
