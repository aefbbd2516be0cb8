"""Interop: operational webhooks (endpoint and failing-delivery events) arrive with Svix's payload shapes and
verify with the official `standardwebhooks` library."""

import json

import standardwebhooks
from svix.api import ApplicationIn, EndpointIn, EndpointPatch, MessageIn, Svix, SvixOptions

from conftest import TOKEN, Receiver, Server, wait_for

OPS_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def events_of(receiver, kind):
    """The verified operational events of one type received so far."""
    found = []
    for headers, body in list(receiver.requests):
        # Raises if the signature does not verify: every event must be signed.
        payload = standardwebhooks.Webhook(OPS_SECRET).verify(body, headers)
        if payload["type"] == kind:
            found.append(payload["data"])
    return found


def test_operational_events_are_signed_and_shaped_like_svix(tmp_path):
    ops = Receiver()
    failing = Receiver(statuses=[500] * 10)
    server = Server(
        tmp_path / "data",
        {
            "HOOKRELAY_OPERATIONAL_WEBHOOK_URL": ops.url,
            "HOOKRELAY_OPERATIONAL_WEBHOOK_SECRET": OPS_SECRET,
            "HOOKRELAY_RETRY_SCHEDULE": "0,0,0,0",
        },
    )
    try:
        hr = Svix(TOKEN, SvixOptions(server_url=server.url))
        app = hr.application.create(ApplicationIn(name="Acme", uid="acme"))
        endpoint = hr.endpoint.create(app.id, EndpointIn(url=failing.url, uid="billing"))
        created = wait_for("endpoint.created", lambda: events_of(ops, "endpoint.created"))
        assert created[0] == {"appId": app.id, "appUid": "acme", "endpointId": endpoint.id, "endpointUid": "billing"}

        message = hr.message.create(app.id, MessageIn(event_type="invoice.paid", event_id="evt_9", payload={"a": 1}))
        failing_events = wait_for("message.attempt.failing", lambda: events_of(ops, "message.attempt.failing"))
        exhausted = wait_for("message.attempt.exhausted", lambda: events_of(ops, "message.attempt.exhausted"))
        for data in (failing_events[0], exhausted[0]):
            assert data["appId"] == app.id and data["endpointId"] == endpoint.id
            assert data["msgId"] == message.id and data["msgEventId"] == "evt_9"
            assert data["lastAttempt"]["responseStatusCode"] == 500
            assert data["lastAttempt"]["id"].startswith("atmpt_")
        assert len(failing.requests) == 5, "4 retries after the first attempt"

        hr.endpoint.patch(app.id, endpoint.id, EndpointPatch(disabled=True))
        disabled = wait_for("endpoint.disabled", lambda: events_of(ops, "endpoint.disabled"))
        assert disabled[0]["trigger"] == "manual" and disabled[0]["endpointId"] == endpoint.id
        hr.endpoint.delete(app.id, endpoint.id)
        wait_for("endpoint.deleted", lambda: events_of(ops, "endpoint.deleted"))
        # Each event carries its own webhook-id; the types seen are exactly the expected ones.
        kinds = [json.loads(body)["type"] for _, body in ops.requests]
        assert sorted(set(kinds)) == sorted(
            {"endpoint.created", "message.attempt.failing", "message.attempt.exhausted", "endpoint.disabled",
             "endpoint.updated", "endpoint.deleted"}
        ), kinds
    finally:
        server.stop()
        ops.stop()
        failing.stop()
