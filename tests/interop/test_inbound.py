"""Interop: inbound sources verify what the providers really send. Stripe and Svix/Clerk requests are signed
by the providers' official libraries (`stripe`, `svix`); GitHub, Shopify, Slack and home-grown senders, which
publish no Python library, are signed with the standard library's `hmac` exactly as their docs describe (their
documented test vectors are checked in the Rust verifiers' unit tests). Every provider goes through the same
matrix: valid, tampered body, wrong secret, stale timestamp, missing header, duplicate, rotated secret. The
forwarded event must then verify at the application's endpoint with `standardwebhooks`."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import time
import uuid
from datetime import datetime, timezone

import pytest
import standardwebhooks
import stripe
import svix.webhooks

from conftest import ROOT, TOKEN, Server, call, wait_for


def hmac_sha256(secret, content):
    return hmac.new(secret.encode(), content, hashlib.sha256).digest()


class Stripe:
    name, options, timestamped = "stripe", {}, True
    secret, other_secret = "whsec_stripe_interop_secret", "whsec_stripe_other_secret"

    def body(self, event_id):
        return json.dumps({"id": event_id, "object": "event", "type": "invoice.paid", "data": {"object": {}}}).encode()

    event_type = "invoice.paid"
    signature_header = "Stripe-Signature"

    def sign(self, body, secret, ts, event_id):
        header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=ts)
        return {"Stripe-Signature": header}


class Clerk:
    """Clerk signs with Svix: Standard Webhooks with `svix-*` headers."""

    name, options, timestamped = "svix", {}, True
    secret = "whsec_" + base64.b64encode(b"clerk-interop-secret-key-32bytes").decode()
    other_secret = "whsec_" + base64.b64encode(b"another-secret-key-of-32-bytes!!").decode()
    event_type = "user.created"
    signature_header = "svix-signature"

    def body(self, event_id):
        return json.dumps({"type": "user.created", "object": "event", "data": {"id": "user_29w83sxmDNGwOuEthce5gg56FcC"}}).encode()

    def sign(self, body, secret, ts, event_id):
        signature = svix.webhooks.Webhook(secret).sign(event_id, datetime.fromtimestamp(ts, tz=timezone.utc), body.decode())
        return {"svix-id": event_id, "svix-timestamp": str(ts), "svix-signature": signature}


class StandardWebhooksSender(Clerk):
    """Any Standard Webhooks sender, with `webhook-*` headers, signed by the `standardwebhooks` library."""

    signature_header = "webhook-signature"

    def sign(self, body, secret, ts, event_id):
        signature = standardwebhooks.Webhook(secret).sign(event_id, datetime.fromtimestamp(ts, tz=timezone.utc), body.decode())
        return {"webhook-id": event_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


class GitHub:
    name, options, timestamped = "github", {}, False
    secret, other_secret = "github-interop-secret", "github-other-secret"
    event_type = "issues.opened"
    signature_header = "X-Hub-Signature-256"

    def body(self, event_id):
        return json.dumps({"action": "opened", "issue": {"number": 1}}).encode()

    def sign(self, body, secret, ts, event_id):
        return {
            "X-Hub-Signature-256": "sha256=" + hmac_sha256(secret, body).hex(),
            "X-GitHub-Event": "issues",
            "X-GitHub-Delivery": event_id,
        }


class Shopify:
    name, options, timestamped = "shopify", {}, False
    secret, other_secret = "shopify-interop-secret", "shopify-other-secret"
    event_type = "orders.create"
    signature_header = "X-Shopify-Hmac-Sha256"

    def body(self, event_id):
        return json.dumps({"id": 820982911946154508, "email": "jon@example.com"}).encode()

    def sign(self, body, secret, ts, event_id):
        return {
            "X-Shopify-Hmac-Sha256": base64.b64encode(hmac_sha256(secret, body)).decode(),
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Webhook-Id": event_id,
        }


class Slack:
    name, options, timestamped = "slack", {"eventTypeField": "event.type"}, True
    secret, other_secret = "8f742231b10e8888abcd99yyyzzz85a5", "00000000000000000000000000000000"
    event_type = "app_mention"
    signature_header = "X-Slack-Signature"

    def body(self, event_id):
        return json.dumps({"type": "event_callback", "event_id": event_id, "event": {"type": "app_mention"}}).encode()

    def sign(self, body, secret, ts, event_id):
        signature = "v0=" + hmac_sha256(secret, f"v0:{ts}:".encode() + body).hex()
        return {"X-Slack-Signature": signature, "X-Slack-Request-Timestamp": str(ts)}


class HomeGrown:
    """A sender like the ones in the seeds: `X-Webhook-Signature: sha256=<hex HMAC of the body>`."""

    name, timestamped = "hmac-sha256", False
    options = {"eventIdField": "id"}
    secret, other_secret = "home-grown-secret", "home-grown-other"
    event_type = "user.created"
    signature_header = "X-Webhook-Signature"

    def body(self, event_id):
        return json.dumps({"type": "user.created", "id": event_id}).encode()

    def sign(self, body, secret, ts, event_id):
        return {"X-Webhook-Signature": "sha256=" + hmac_sha256(secret, body).hex()}


class HomeGrownTimestamped(HomeGrown):
    """A home-grown sender that signs `{timestamp}.{body}` in base64 with its own header names."""

    timestamped = True
    options = {
        "signatureHeader": "X-Corp-Signature",
        "signatureEncoding": "base64",
        "signaturePrefix": "",
        "timestampHeader": "X-Corp-Timestamp",
        "eventIdHeader": "X-Corp-Event-Id",
    }
    signature_header = "X-Corp-Signature"

    def sign(self, body, secret, ts, event_id):
        signature = base64.b64encode(hmac_sha256(secret, f"{ts}.".encode() + body)).decode()
        return {"X-Corp-Signature": signature, "X-Corp-Timestamp": str(ts), "X-Corp-Event-Id": event_id}


PROVIDERS = [Stripe(), Clerk(), StandardWebhooksSender(), GitHub(), Shopify(), Slack(), HomeGrown(), HomeGrownTimestamped()]
TIMESTAMPED = [p for p in PROVIDERS if p.timestamped]


def ids(provider):
    return type(provider).__name__


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("inbound") / "data")
    yield running
    running.stop()


def new_source(server, provider):
    """A fresh app and a source of `provider` publishing to it; returns (app id, source)."""
    status, app = call(server, "POST", "/api/v1/app/", {"name": f"inbound {provider.name}"})
    assert status == 201, app
    body = {"name": provider.name, "provider": provider.name, "secret": provider.secret, "appId": app["id"], **provider.options}
    status, source = call(server, "POST", "/api/v1/source/", body)
    assert status == 201, source
    return app["id"], source


def send(server, source, provider, secret=None, ts=None, event_id=None, body=None, drop=None, tamper=False):
    event_id = event_id or f"evt_{uuid.uuid4().hex}"
    body = body if body is not None else provider.body(event_id)
    headers = provider.sign(body, secret or provider.secret, ts if ts is not None else int(time.time()), event_id)
    if drop:
        headers.pop(drop)
    if tamper:
        body = body.replace(b"}", b', "tampered": true}', 1)
    return call(server, "POST", source["ingestUrl"], raw=body, headers=headers, token=False)


def messages(server, app_id):
    status, page = call(server, "GET", f"/api/v1/app/{app_id}/msg/")
    assert status == 200, page
    return page["data"]


@pytest.mark.parametrize("provider", PROVIDERS, ids=ids)
def test_valid_then_duplicate(shared_server, provider):
    app_id, source = new_source(shared_server, provider)
    status, first = send(shared_server, source, provider, event_id="evt_dup_1")
    assert status == 200, first
    assert first["received"] is True and first["duplicate"] is False and first["messageId"].startswith("msg_")
    # The provider retries the same event later: a new signature over the same event id.
    status, again = send(shared_server, source, provider, event_id="evt_dup_1", ts=int(time.time()) + 1)
    assert status == 200, again
    assert again["duplicate"] is True
    published = messages(shared_server, app_id)
    assert [m["id"] for m in published] == [first["messageId"]]
    assert published[0]["eventType"] == provider.event_type


@pytest.mark.parametrize("provider", PROVIDERS, ids=ids)
def test_tampered_body_and_wrong_secret_are_401(shared_server, provider):
    app_id, source = new_source(shared_server, provider)
    status, answer = send(shared_server, source, provider, tamper=True)
    assert (status, answer["code"]) == (401, "signature_mismatch"), answer
    status, answer = send(shared_server, source, provider, secret=provider.other_secret)
    assert (status, answer["code"]) == (401, "signature_mismatch"), answer
    assert provider.secret not in json.dumps(answer)
    assert messages(shared_server, app_id) == []


@pytest.mark.parametrize("provider", TIMESTAMPED, ids=ids)
def test_stale_timestamp_is_401(shared_server, provider):
    app_id, source = new_source(shared_server, provider)
    status, answer = send(shared_server, source, provider, ts=int(time.time()) - 3600)
    assert (status, answer["code"]) == (401, "timestamp_outside_tolerance"), answer
    assert messages(shared_server, app_id) == []


@pytest.mark.parametrize("provider", PROVIDERS, ids=ids)
def test_missing_signature_header_is_400(shared_server, provider):
    app_id, source = new_source(shared_server, provider)
    status, answer = send(shared_server, source, provider, drop=provider.signature_header)
    assert (status, answer["code"]) == (400, "missing_header"), answer
    assert messages(shared_server, app_id) == []
    status, stats = call(shared_server, "GET", f"/api/v1/source/{source['id']}/stats/")
    assert (stats["received"], stats["rejected"], stats["rejectedByReason"]) == (1, 1, {"missing_header": 1}), stats


@pytest.mark.parametrize("provider", PROVIDERS, ids=ids)
def test_rotated_secret(shared_server, provider):
    _, source = new_source(shared_server, provider)
    new_secret = provider.other_secret
    status, patched = call(shared_server, "PATCH", f"/api/v1/source/{source['id']}/", {"secret": new_secret})
    assert status == 200, patched
    assert send(shared_server, source, provider, secret=new_secret)[0] == 200
    assert send(shared_server, source, provider, secret=provider.secret)[0] == 200, "old secret within its grace period"
    status, patched = call(
        shared_server, "PATCH", f"/api/v1/source/{source['id']}/", {"secret": provider.secret, "secretGraceSecs": 0}
    )
    assert status == 200, patched
    assert send(shared_server, source, provider, secret=new_secret)[0] == 401, "revoked at once with no grace"
    assert send(shared_server, source, provider, secret=provider.secret)[0] == 200


def test_ingested_event_reaches_the_endpoint_verifiable_by_standardwebhooks(shared_server, receiver):
    provider = Stripe()
    app_id, source = new_source(shared_server, provider)
    status, endpoint = call(shared_server, "POST", f"/api/v1/app/{app_id}/endpoint/", {"url": receiver.url})
    assert status == 201, endpoint
    _, secret = call(shared_server, "GET", f"/api/v1/app/{app_id}/endpoint/{endpoint['id']}/secret/")

    body = b'{"id": "evt_e2e",  "type": "invoice.paid", "data": {"object": {"amount_paid": 4200}}}'
    status, answer = send(shared_server, source, provider, body=body)
    assert status == 200, answer
    (headers, delivered), = receiver.wait_for(1)
    assert delivered == body, "the provider's bytes reach the endpoint unchanged"
    assert headers["webhook-id"] == answer["messageId"]
    standardwebhooks.Webhook(secret["key"]).verify(delivered, headers)
    svix.webhooks.Webhook(secret["key"]).verify(delivered, headers)


def test_a_stripe_handler_downstream_verifies_the_forwarded_signature(server, receiver):
    """AIGuards forwards Stripe events to handlers that call `stripe.Webhook.construct_event(body, sig, secret)`:
    with `forwardHeaders`, they keep working unchanged behind hookrelay."""
    provider = Stripe()
    app_id, source = new_source(server, provider)
    status, source = call(server, "PATCH", f"/api/v1/source/{source['id']}/", {"forwardHeaders": ["Stripe-Signature"]})
    assert status == 200 and source["forwardHeaders"] == ["Stripe-Signature"], source
    status, endpoint = call(server, "POST", f"/api/v1/app/{app_id}/endpoint/", {"url": receiver.url})
    assert status == 201, endpoint

    body = b'{"id": "evt_forwarded", "object": "event", "type": "invoice.paid", "data": {"object": {"amount_paid": 4200}}}'
    status, answer = send(server, source, provider, body=body)
    assert status == 200, answer
    (headers, delivered), = receiver.wait_for(1)
    # The handler, as AIGuards' guide writes it, with the provider's secret: hookrelay's own headers are there too.
    event = stripe.Webhook.construct_event(delivered.decode(), headers["stripe-signature"], provider.secret)
    assert event["id"] == "evt_forwarded" and "webhook-signature" in headers

    status, error = call(server, "PATCH", f"/api/v1/source/{source['id']}/", {"forwardHeaders": ["webhook-id"]})
    assert status == 422 and error["detail"][0]["loc"] == ["body", "forwardHeaders", "0"], error


def hookrelay(*args, stdin=b""):
    binary = os.environ.get("HOOKRELAY_BIN", str(ROOT / "target" / "debug" / "hookrelay"))
    return subprocess.run([binary, *args], input=stdin, capture_output=True, timeout=30)


def test_cli_sign_is_accepted_by_the_official_libraries():
    body = b'{"id": "evt_cli", "type": "invoice.paid"}'
    result = hookrelay("sign", "--provider", "stripe", "--secret", Stripe.secret, stdin=body)
    assert result.returncode == 0, result.stderr
    header = result.stdout.decode().strip().split(": ", 1)[1]
    event = stripe.Webhook.construct_event(body.decode(), header, Stripe.secret)
    assert event["id"] == "evt_cli"

    result = hookrelay("sign", "--provider", "svix", "--secret", Clerk.secret, "--event-id", "msg_cli", stdin=body)
    assert result.returncode == 0, result.stderr
    headers = dict(line.split(": ", 1) for line in result.stdout.decode().strip().splitlines())
    svix.webhooks.Webhook(Clerk.secret).verify(body, headers)


def test_trigger_sends_a_stripe_event_the_official_library_accepts(server, receiver):
    """`hookrelay trigger --source` builds a Stripe event and has the server sign it with the source's secret
    (`POST /api/v1/source/{id}/sign/`): `stripe.Webhook.construct_event` accepts both the route's signature and the
    event as forwarded to a handler, and reads it as a Stripe event."""
    provider = Stripe()
    app_id, source = new_source(server, provider)
    body = '{"id": "evt_signed_by_route", "object": "event", "type": "customer.created", "data": {"object": {}}}'
    status, signed = call(server, "POST", f"/api/v1/source/{source['id']}/sign/", {"body": body})
    assert status == 200 and provider.secret not in json.dumps(signed), signed
    event = stripe.Webhook.construct_event(body, signed["headers"]["Stripe-Signature"], provider.secret)
    assert event["id"] == "evt_signed_by_route"

    status, source = call(server, "PATCH", f"/api/v1/source/{source['id']}/", {"forwardHeaders": ["Stripe-Signature"]})
    assert status == 200, source
    status, endpoint = call(server, "POST", f"/api/v1/app/{app_id}/endpoint/", {"url": receiver.url})
    assert status == 201, endpoint
    result = hookrelay("trigger", "--source", source["id"], "invoice.paid", "--url", server.url, "--token", TOKEN)
    assert result.returncode == 0, result.stderr
    (headers, delivered), = receiver.wait_for(1)
    event = stripe.Webhook.construct_event(delivered.decode(), headers["stripe-signature"], provider.secret)
    assert (event["object"], event["type"], event["livemode"]) == ("event", "invoice.paid", False)
    assert event["id"].startswith("evt_") and event["data"]["object"]["object"] == "invoice"
    assert headers["webhook-id"] in result.stdout.decode()


def test_cli_verify_accepts_official_signatures_and_names_the_failure():
    body = b'{"id": "evt_cli", "type": "invoice.paid"}'
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), Stripe.secret)
    ok = hookrelay("verify", "--provider", "stripe", "--secret", Stripe.secret, "--header", f"Stripe-Signature: {header}", stdin=body)
    assert ok.returncode == 0 and ok.stdout.startswith(b"ok"), ok
    bad = hookrelay("verify", "--provider", "stripe", "--secret", Stripe.other_secret, "--header", f"Stripe-Signature: {header}", stdin=body)
    assert bad.returncode == 1 and b"signature_mismatch" in bad.stdout, bad
    stale = stripe.WebhookSignature.generate_signature_header(body.decode(), Stripe.secret, timestamp=int(time.time()) - 900)
    old = hookrelay("verify", "--provider", "stripe", "--secret", Stripe.secret, "--header", f"Stripe-Signature: {stale}", stdin=body)
    assert old.returncode == 1 and b"timestamp_outside_tolerance" in old.stdout, old
