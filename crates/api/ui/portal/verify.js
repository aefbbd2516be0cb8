// "Verifying signatures": what a delivery carries and copy-paste receivers for Node, Python, Go, Ruby and PHP with
// the official Standard Webhooks and Svix libraries. The snippets are plain text in <pre><code>, never markup.

import { copyButton, h } from "../shared/dom.js";
import { heading, mount } from "./common.js";

export const SNIPPETS = [
  {
    id: "node",
    language: "Node.js",
    library: "standardwebhooks (npm)",
    code: `// npm install standardwebhooks express
import express from "express";
import { Webhook } from "standardwebhooks";

// The endpoint's signing secret (whsec_…), from this portal.
const webhook = new Webhook(process.env.WEBHOOK_SECRET);
const app = express();

// The signature covers the exact bytes sent: read the body raw, and parse it only once verified.
app.post("/webhooks", express.raw({ type: "application/json" }), (req, res) => {
  let event;
  try {
    event = webhook.verify(req.body, req.headers);
  } catch (err) {
    return res.status(400).send("invalid signature");
  }
  // Handle the event; the same webhook-id may arrive more than once, so skip ids already handled.
  console.log(req.headers["webhook-id"], event);
  res.sendStatus(204);
});

app.listen(3000);
`,
  },
  {
    id: "python",
    language: "Python",
    library: "standardwebhooks (PyPI)",
    code: `# pip install standardwebhooks flask
import os

from flask import Flask, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

# The endpoint's signing secret (whsec_…), from this portal.
webhook = Webhook(os.environ["WEBHOOK_SECRET"])
app = Flask(__name__)


@app.post("/webhooks")
def receive_webhook():
    # The signature covers the exact bytes sent: verify the raw body, not re-serialized JSON.
    try:
        event = webhook.verify(request.get_data(), dict(request.headers))
    except WebhookVerificationError:
        return "invalid signature", 400
    # Handle the event; the same webhook-id may arrive more than once, so skip ids already handled.
    print(request.headers["webhook-id"], event)
    return "", 204
`,
  },
  {
    id: "go",
    language: "Go",
    library: "github.com/svix/svix-webhooks/go",
    code: `// go get github.com/svix/svix-webhooks/go
package main

import (
	"io"
	"log"
	"net/http"
	"os"

	svix "github.com/svix/svix-webhooks/go"
)

func main() {
	// The endpoint's signing secret (whsec_…), from this portal.
	wh, err := svix.NewWebhook(os.Getenv("WEBHOOK_SECRET"))
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/webhooks", func(w http.ResponseWriter, r *http.Request) {
		// The signature covers the exact bytes sent: verify the raw body.
		payload, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "cannot read the body", http.StatusBadRequest)
			return
		}
		if err := wh.Verify(payload, r.Header); err != nil {
			http.Error(w, "invalid signature", http.StatusBadRequest)
			return
		}
		// Handle the JSON payload; the same webhook-id may arrive more than once, so skip ids already handled.
		log.Println(r.Header.Get("webhook-id"), string(payload))
		w.WriteHeader(http.StatusNoContent)
	})
	log.Fatal(http.ListenAndServe(":3000", nil))
}
`,
  },
  {
    id: "ruby",
    language: "Ruby",
    library: "svix (RubyGems)",
    code: `# gem install svix sinatra
require "sinatra"
require "svix"

# The endpoint's signing secret (whsec_…), from this portal.
WEBHOOK = Svix::Webhook.new(ENV.fetch("WEBHOOK_SECRET"))

post "/webhooks" do
  # The signature covers the exact bytes sent: verify the raw body.
  payload = request.body.read
  headers = {
    "webhook-id" => request.env["HTTP_WEBHOOK_ID"],
    "webhook-timestamp" => request.env["HTTP_WEBHOOK_TIMESTAMP"],
    "webhook-signature" => request.env["HTTP_WEBHOOK_SIGNATURE"],
  }
  begin
    event = WEBHOOK.verify(payload, headers)
  rescue Svix::WebhookVerificationError
    halt 400, "invalid signature"
  end
  # Handle the event; the same webhook-id may arrive more than once, so skip ids already handled.
  logger.info("#{headers["webhook-id"]} #{event}")
  status 204
end
`,
  },
  {
    id: "php",
    language: "PHP",
    library: "svix/svix (Composer)",
    code: `<?php
// composer require svix/svix
require __DIR__ . "/vendor/autoload.php";

// The signature covers the exact bytes sent: verify the raw body.
$payload = file_get_contents("php://input");
$headers = array_change_key_case(getallheaders(), CASE_LOWER);

// The endpoint's signing secret (whsec_…), from this portal.
$webhook = new \\Svix\\Webhook(getenv("WEBHOOK_SECRET"));

try {
    $event = $webhook->verify($payload, $headers);
} catch (\\Svix\\Exception\\WebhookVerificationException $e) {
    http_response_code(400);
    echo "invalid signature";
    exit;
}

// Handle the event (an array); the same webhook-id may arrive more than once, so skip ids already handled.
error_log($headers["webhook-id"] . " " . json_encode($event));
http_response_code(204);
`,
  },
];

function snippet({ id, language, library, code }) {
  const headingId = `snippet-${id}`;
  return h(
    "section",
    { class: "panel portal-snippet", "aria-labelledby": headingId, dataset: { language: id } },
    h(
      "div",
      { class: "spread" },
      h("h2", { id: headingId }, language, " ", h("span", { class: "muted portal-library" }, `with ${library}`)),
      copyButton(() => code, `Copy ${language} code`),
    ),
    h("pre", { tabindex: "0", "aria-label": `${language} example` }, h("code", {}, code)),
  );
}

export function verifyPage(view) {
  mount(
    view,
    heading("Verifying signatures"),
    h(
      "section",
      { class: "panel" },
      h(
        "p",
        {},
        "Each webhook is an HTTP POST of a JSON body with three headers that prove it comes from us and was not changed on the way:",
      ),
      h(
        "ul",
        {},
        h("li", {}, h("code", {}, "webhook-id"), ": the message's id, the same on every retry, so you can skip duplicates;"),
        h("li", {}, h("code", {}, "webhook-timestamp"), ": when it was sent (Unix seconds); reject anything more than 5 minutes away from your clock;"),
        h(
          "li",
          {},
          h("code", {}, "webhook-signature"),
          ": ",
          h("code", {}, "v1,"),
          " and the base64 HMAC-SHA256 of ",
          h("code", {}, "{webhook-id}.{webhook-timestamp}.{body}"),
          ", keyed with your endpoint's signing secret. During a secret rotation it holds several space-separated signatures; one matching is enough.",
        ),
      ),
      h(
        "p",
        {},
        "The same values are also sent as ",
        h("code", {}, "svix-id"),
        ", ",
        h("code", {}, "svix-timestamp"),
        " and ",
        h("code", {}, "svix-signature"),
        ", so any ",
        h("a", { href: "https://www.standardwebhooks.com/", rel: "noopener noreferrer", target: "_blank" }, "Standard Webhooks"),
        " or Svix library verifies them. Each example below reads the secret (",
        h("code", {}, "whsec_…"),
        ", shown on the endpoint's page) from the ",
        h("code", {}, "WEBHOOK_SECRET"),
        " environment variable, and must be given the raw request body, byte for byte: parsing the JSON and serializing it again breaks the signature.",
      ),
    ),
    SNIPPETS.map(snippet),
  );
}
