"""Interop: receivers written exactly as the teams' own documents write them (Smart AI Hub's and BrainSAIT's
webhook guides) accept deliveries configured through hookrelay's API alone: a secret the user picked, the
signature header the receiver checks, only the headers it expects, and its own retry rules. The verification
code below is the documents' own (Python versions), not hookrelay's."""

import base64
import hashlib
import hmac
import json

import standardwebhooks
from svix.api import EndpointTransformationPatch, EventExampleIn, Svix, SvixOptions

from conftest import TOKEN, Receiver, call, wait_for


def smart_ai_hub_verify_signature(payload, signature, secret):
    """Smart AI Hub's guide, Python (Flask) example."""
    expected_signature = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest()
    return f"sha256={expected_signature}" == signature


def brainsait_verify_webhook_signature(payload, signature, webhook_secret):
    """BrainSAIT's guide, Python Flask implementation."""
    expected_signature = hmac.new(webhook_secret.encode(), payload, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature, expected_signature)


def corp_astro_verify_webhook_signature(body, headers, webhook_secret):
    """Corp Astro's Express middleware: the HMAC of `JSON.stringify(req.body)` after body-parser, in Python."""
    payload = json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False)
    expected_signature = hmac.new(webhook_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return headers.get("x-corp-astro-signature") == expected_signature


CORP_ASTRO_ENVELOPE = """
function handler(webhook) {
  webhook.payload = {
    id: webhook.msgId,
    timestamp: webhook.timestamp,
    event_type: webhook.eventType,
    data: webhook.payload,
  };
  webhook.headers = {
    "X-Corp-Astro-Event": webhook.eventType,
    "X-Corp-Astro-Webhook-ID": webhook.msgId,
  };
  return webhook;
}
"""


def created(server, path, body):
    status, answer = call(server, "POST", path, body)
    assert status in (200, 201, 202), f"{path}: {status} {answer}"
    return answer


def test_smart_ai_hub_registers_url_event_types_and_its_own_secret(server):
    receiver = Receiver()
    secret = "your_webhook_secret"
    created(server, "/api/v1/event-type/", {"name": "model.trained", "description": "A model finished training"})
    created(server, "/api/v1/app/", {"name": "Smart AI Hub", "uid": "hub"})
    endpoint = created(
        server,
        "/api/v1/app/hub/endpoint/",
        {"url": receiver.url, "eventTypes": ["model.trained"], "secret": secret, "signatureSchemes": ["standard", "hmac-hex"]},
    )
    status, shown = call(server, "GET", f"/api/v1/app/hub/endpoint/{endpoint['id']}/secret/")
    assert (status, shown) == (200, {"key": secret}), "the secret reads back as the user gave it"

    created(server, "/api/v1/app/hub/msg/", {"eventType": "model.trained", "payload": {"model": "m1", "accuracy": 0.93}})
    headers, body = receiver.wait_for(1)[0]
    assert smart_ai_hub_verify_signature(body, headers["x-webhook-signature"], secret), headers
    # The Standard Webhooks headers are keyed with the same bytes: a Standard Webhooks library verifies them
    # with `whsec_` + base64 of the plain secret.
    standard = "whsec_" + base64.b64encode(secret.encode()).decode()
    assert json.loads(body)["model"] == "m1"
    assert standardwebhooks.Webhook(standard).verify(body, headers)["accuracy"] == 0.93
    receiver.stop()


def test_brainsait_gets_its_own_header_only_and_its_own_retry_policy(server):
    # The first request is refused with 429 (retried at once, as BrainSAIT's policy says); the second message
    # is refused with 400, which that policy makes final.
    receiver = Receiver(statuses=[429, 200, 400])
    secret = "brainsait_store_webhook_secret"
    created(server, "/api/v1/app/", {"name": "BrainSAIT Store", "uid": "brainsait"})
    endpoint = created(
        server,
        "/api/v1/app/brainsait/endpoint/",
        {
            "url": receiver.url,
            "secret": secret,
            "signatureHeaders": [{"header": "X-BrainSAIT-Signature", "algorithm": "sha256", "encoding": "hex"}],
            "standardHeaders": "none",
            "retrySchedule": [0, 300, 1800, 7200, 43200, 86400],
            "retryClientErrors": False,
        },
    )
    assert endpoint["signatureHeaders"] == [
        {"header": "X-BrainSAIT-Signature", "algorithm": "sha256", "encoding": "hex", "prefix": ""}
    ]
    assert (endpoint["standardHeaders"], endpoint["retrySchedule"]) == ("none", [0, 300, 1800, 7200, 43200, 86400])

    first = created(server, "/api/v1/app/brainsait/msg/", {"eventType": "order.created", "payload": {"order": 1}})
    requests = receiver.wait_for(2, timeout=10)
    for headers, body in requests:
        assert brainsait_verify_webhook_signature(body, headers["x-brainsait-signature"], secret), headers
        assert not any(name.startswith(("webhook-", "svix-")) for name in headers), headers
    assert requests[0][1] == requests[1][1], "the retry after the 429 carries the same body"

    second = created(server, "/api/v1/app/brainsait/msg/", {"eventType": "order.created", "payload": {"order": 2}})
    receiver.wait_for(3, timeout=10)

    def status_of(msg):
        status, deliveries = call(server, "GET", f"/api/v1/app/brainsait/msg/{msg['id']}/endpoint/")
        assert status == 200, deliveries
        return deliveries["data"][0]["status"]

    assert wait_for("the first message delivered", lambda: status_of(first) == 0)
    # 2 = failed: the 400 ended the delivery although the schedule had five more waits.
    assert wait_for("the 400 to be final", lambda: status_of(second) == 2)
    assert len(receiver.requests) == 3
    receiver.stop()


def test_a_test_send_reaches_one_endpoint_whatever_its_filters(server):
    """Smart AI Hub's "test this webhook" call, made with the official Svix SDK's `send_example`."""
    receiver = Receiver()
    other = Receiver()
    secret = "your_webhook_secret"
    example = {"event": "webhook.test", "message": "It works"}
    created(server, "/api/v1/event-type/", {"name": "model.trained", "description": "A model finished training"})
    created(
        server,
        "/api/v1/event-type/",
        {"name": "webhook.test", "description": "A test", "schemas": {"1": {"type": "object", "examples": [example]}}},
    )
    created(server, "/api/v1/event-type/", {"name": "no.example", "description": "No schema"})
    created(server, "/api/v1/app/", {"name": "Smart AI Hub", "uid": "hub"})
    endpoint = created(
        server,
        "/api/v1/app/hub/endpoint/",
        {
            "url": receiver.url,
            "eventTypes": ["model.trained"],
            "secret": secret,
            "signatureHeaders": [{"header": "X-Webhook-Signature", "algorithm": "sha256", "encoding": "hex", "prefix": "sha256="}],
        },
    )
    created(server, "/api/v1/app/hub/endpoint/", {"url": other.url})

    hr = Svix(TOKEN, SvixOptions(server_url=server.url))
    message = hr.endpoint.send_example("hub", endpoint["id"], EventExampleIn(event_type="webhook.test"))
    assert message.event_type == "webhook.test"
    headers, body = receiver.wait_for(1)[0]
    assert json.loads(body) == example
    assert smart_ai_hub_verify_signature(body, headers["x-webhook-signature"], secret), headers

    # hookrelay's form: a payload of the caller's own.
    status, sent = call(
        server, "POST", f"/api/v1/app/hub/endpoint/{endpoint['id']}/send-example", {"eventType": "model.trained", "payload": {"ping": 1}}
    )
    assert status == 202, sent
    headers, body = receiver.wait_for(2)[1]
    assert json.loads(body) == {"ping": 1}

    # The attempt is recorded once the receiver has answered, a moment after it got the request.
    def both_attempts():
        status, attempts = call(server, "GET", f"/api/v1/app/hub/attempt/endpoint/{endpoint['id']}/")
        return status == 200 and len(attempts["data"]) == 2

    wait_for("both attempts recorded", both_attempts)
    assert other.requests == [], "a test send goes to its endpoint alone"

    status, error = call(server, "POST", f"/api/v1/app/hub/endpoint/{endpoint['id']}/send-example/", {"eventType": "no.example"})
    assert status == 422 and "add `examples` to its schema" in error["detail"][0]["msg"], error
    status, error = call(
        server, "POST", f"/api/v1/app/hub/endpoint/{endpoint['id']}/send-example/", {"eventType": "webhook.test", "exampleIndex": 3}
    )
    assert status == 422 and error["detail"][0]["loc"] == ["body", "exampleIndex"], error
    receiver.stop()
    other.stop()


def test_corp_astro_gets_its_envelope_headers_and_signature(server):
    """The envelope is built by a transformation set with the official Svix SDK; the signature is Corp Astro's."""
    receiver = Receiver()
    secret = "corp_astro_webhook_secret"
    created(server, "/api/v1/app/", {"name": "Corp Astro", "uid": "astro"})
    endpoint = created(
        server,
        "/api/v1/app/astro/endpoint/",
        {
            "url": receiver.url,
            "secret": secret,
            "signatureHeaders": [{"header": "X-Corp-Astro-Signature", "algorithm": "sha256", "encoding": "hex"}],
        },
    )
    hr = Svix(TOKEN, SvixOptions(server_url=server.url))
    hr.endpoint.transformation.patch(
        "astro", endpoint["id"], EndpointTransformationPatch(code=CORP_ASTRO_ENVELOPE, enabled=True)
    )
    shown = hr.endpoint.transformation.get("astro", endpoint["id"])
    assert shown.code == CORP_ASTRO_ENVELOPE and shown.enabled

    message = created(server, "/api/v1/app/astro/msg/", {"eventType": "chart.generated", "payload": {"chart": "natal", "user": 42}})
    headers, body = receiver.wait_for(1)[0]
    assert corp_astro_verify_webhook_signature(body, headers, secret), headers
    event = json.loads(body)
    assert headers["x-corp-astro-event"] == "chart.generated" and headers["x-corp-astro-webhook-id"] == message["id"]
    assert (event["id"], event["event_type"], event["data"]) == (message["id"], "chart.generated", {"chart": "natal", "user": 42})
    assert event["timestamp"] == message["timestamp"]

    status, simulated = call(
        server,
        "POST",
        f"/api/v1/app/astro/endpoint/{endpoint['id']}/transformation/simulate/",
        {"code": CORP_ASTRO_ENVELOPE, "eventType": "chart.generated", "payload": {"chart": "solar"}},
    )
    assert status == 200 and simulated["payload"]["data"] == {"chart": "solar"}, simulated
    assert simulated["headers"]["X-Corp-Astro-Event"] == "chart.generated" and simulated["method"] == "POST"
    receiver.stop()
