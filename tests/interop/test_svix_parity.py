"""Interop: what a Svix publisher can ask of a message beyond its JSON payload, driven with the official `svix`
Python SDK — raw payloads, tags, scheduled delivery, a payload retention, content expunge — is honoured, or
refused with a 422 naming the field; nothing is dropped in silence."""

from datetime import datetime, timedelta, timezone

import pytest
import standardwebhooks
import svix.webhooks
from svix.api import (
    ApplicationIn,
    EndpointIn,
    EventTypeIn,
    EventTypePatch,
    MessageAttemptListAttemptedMessagesOptions,
    MessageAttemptListByEndpointOptions,
    MessageAttemptListByMsgOptions,
    MessageGetOptions,
    MessageIn,
    MessageListOptions,
    Svix,
    SvixOptions,
)
from svix.api.errors.http_error import HttpError
from svix.api.errors.http_validation_error import HTTPValidationError
from svix.api.message import message_in_raw

from conftest import TOKEN, Receiver, call, wait_for


def client(server):
    return Svix(TOKEN, SvixOptions(server_url=server.url))


def app_with_endpoint(hr, receiver):
    app = hr.application.create(ApplicationIn(name="Acme"))
    endpoint = hr.endpoint.create(app.id, EndpointIn(url=receiver.url))
    return app, endpoint, hr.endpoint.get_secret(app.id, endpoint.id).key


def test_a_raw_payload_is_delivered_byte_for_byte_with_its_content_type(server, receiver):
    hr = client(server)
    app, _, secret = app_with_endpoint(hr, receiver)
    xml = '<?xml version="1.0"?>\n<invoice id="42">  spaced   &amp; raw </invoice>'
    msg = hr.message.create(app.id, message_in_raw(event_type="invoice.paid", payload=xml, content_type="application/xml"))
    # Not minified either: a JSON text keeps its spacing and key order.
    json_text = '{ "b" : 1,   "a": [1.50, 1e3] }'
    hr.message.create(app.id, message_in_raw(event_type="invoice.paid", payload=json_text))
    (xml_headers, xml_body), (json_headers, json_body) = receiver.wait_for(2)
    assert xml_body == xml.encode() and xml_headers["content-type"] == "application/xml"
    assert json_body == json_text.encode() and json_headers["content-type"] == "application/json"
    standardwebhooks.Webhook(secret).verify(json_body, json_headers)
    svix.webhooks.Webhook(secret).verify(json_body, json_headers)
    # The verifiers parse what they verified as JSON, which XML is not: their signing function checks it instead.
    sent_at = datetime.fromtimestamp(int(xml_headers["webhook-timestamp"]), tz=timezone.utc)
    for library in (standardwebhooks.Webhook, svix.webhooks.Webhook):
        expected = library(secret).sign(xml_headers["webhook-id"], sent_at, xml_body.decode())
        assert expected in xml_headers["webhook-signature"].split(" "), library
    # Read back: a raw payload that is not a JSON object keeps the SDK's model valid (payload {}), and its text
    # is there as an extension field.
    read = call(server, "GET", f"/api/v1/app/{app.id}/msg/{msg.id}/")[1]
    assert read["payload"] == {} and read["rawPayload"] == xml


@pytest.mark.parametrize(
    "params, field",
    [
        ({"rawPayload": "x", "headers": {"x-other": "1"}}, ["transformationsParams", "headers", "x-other"]),
        ({"rawPayload": "x", "template": "t"}, ["transformationsParams", "template"]),
        ({"rawPayload": 42}, ["transformationsParams", "rawPayload"]),
    ],
)
def test_transformation_params_that_cannot_be_honoured_are_refused(server, receiver, params, field):
    hr = client(server)
    app, _, _ = app_with_endpoint(hr, receiver)
    status, body = call(
        server, "POST", f"/api/v1/app/{app.id}/msg/", {"eventType": "a", "payload": {}, "transformationsParams": params}
    )
    assert status == 422 and body["detail"][0]["loc"] == ["body", *field], body
    assert hr.message.list(app.id).data == []


def test_tags_are_returned_and_filter_the_lists(server, receiver):
    hr = client(server)
    app, endpoint, _ = app_with_endpoint(hr, receiver)
    vip = hr.message.create(app.id, MessageIn(event_type="a", payload={"n": 1}, tags=["vip", "eu/west"]))
    plain = hr.message.create(app.id, MessageIn(event_type="a", payload={"n": 2}))
    assert sorted(vip.tags) == ["eu/west", "vip"] and plain.tags is None
    assert sorted(hr.message.get(app.id, vip.id).tags) == ["eu/west", "vip"]
    assert [m.id for m in hr.message.list(app.id, MessageListOptions(tag="vip")).data] == [vip.id]
    assert [m.id for m in hr.message.list(app.id).data] == [plain.id, vip.id]
    receiver.wait_for(2)
    listed = hr.message_attempt.list_attempted_messages(
        app.id, endpoint.id, MessageAttemptListAttemptedMessagesOptions(tag="eu/west")
    ).data
    assert [m.id for m in listed] == [vip.id]
    with pytest.raises(HTTPValidationError) as refused:
        hr.message.create(app.id, MessageIn(event_type="a", payload={}, tags=["a", "b", "c", "d", "e", "f"]))
    assert refused.value.detail[0].loc == ["body", "tags"]


def test_deliver_at_holds_the_delivery_until_its_time(server, receiver):
    hr = client(server)
    app, endpoint, _ = app_with_endpoint(hr, receiver)
    in_an_hour = datetime.now(timezone.utc) + timedelta(hours=1)
    later = hr.message.create(app.id, MessageIn(event_type="a", payload={"n": "later"}, deliver_at=in_an_hour))
    assert abs((later.deliver_at - in_an_hour).total_seconds()) < 0.01
    soon_at = datetime.now(timezone.utc) + timedelta(seconds=3)
    soon = hr.message.create(app.id, MessageIn(event_type="a", payload={"n": "soon"}, deliver_at=soon_at))
    (_, body), = receiver.wait_for(1)
    arrived = datetime.now(timezone.utc)
    assert body == b'{"n":"soon"}' and arrived >= soon_at, f"delivered at {arrived}, due {soon_at}"

    # The hour-later one is pending, due at its time.
    listed = hr.message_attempt.list_attempted_messages(
        app.id, endpoint.id, MessageAttemptListAttemptedMessagesOptions(status=1)
    ).data
    assert [m.id for m in listed] == [later.id]
    assert abs((listed[0].next_attempt - in_an_hour).total_seconds()) < 0.01
    assert len(receiver.requests) == 1 and hr.message.get(app.id, soon.id).deliver_at is not None

    for when, why in [(datetime.now(timezone.utc) - timedelta(hours=2), "past"), (datetime.now(timezone.utc) + timedelta(days=31), "ahead")]:
        with pytest.raises(HTTPValidationError) as refused:
            hr.message.create(app.id, MessageIn(event_type="a", payload={}, deliver_at=when))
        assert refused.value.detail[0].loc == ["body", "deliverAt"], why


def test_payload_retention_is_validated_and_accepted(server, receiver):
    """The purge itself is covered by the store's contract tests; here the SDK's fields reach it."""
    hr = client(server)
    app, _, _ = app_with_endpoint(hr, receiver)
    kept = hr.message.create(app.id, MessageIn(event_type="a", payload={"n": 1}, payload_retention_period=5))
    hours = hr.message.create(app.id, MessageIn(event_type="a", payload={"n": 2}, payload_retention_hours=6))
    assert hr.message.get(app.id, kept.id, MessageGetOptions(with_content=True)).payload == {"n": 1}
    assert hr.message.get(app.id, hours.id, MessageGetOptions(with_content=True)).payload == {"n": 2}
    for fields, field in [
        ({"payload_retention_period": 0}, "payloadRetentionPeriod"),
        ({"payload_retention_period": 91}, "payloadRetentionPeriod"),
        ({"payload_retention_period": 5, "payload_retention_hours": 5}, "payloadRetentionHours"),
    ]:
        with pytest.raises(HTTPValidationError) as refused:
            hr.message.create(app.id, MessageIn(event_type="a", payload={}, **fields))
        assert refused.value.detail[0].loc == ["body", field]


def test_content_expunge_erases_the_payload_and_an_attempts_response(server):
    receiver = Receiver(statuses=[500])
    try:
        hr = client(server)
        app, endpoint, _ = app_with_endpoint(hr, receiver)
        msg = hr.message.create(app.id, MessageIn(event_type="a", payload={"card": "4242"}))
        receiver.wait_for(1)
        attempt = wait_for(
            "the failed attempt",
            lambda: next(iter(hr.message_attempt.list_by_msg(app.id, msg.id, MessageAttemptListByMsgOptions()).data), None),
        )
        assert attempt.response == "ok"

        hr.message_attempt.expunge_content(app.id, msg.id, attempt.id)
        assert hr.message_attempt.get(app.id, msg.id, attempt.id).response == "EXPUNGED"
        hr.message.expunge_content(app.id, msg.id)
        assert hr.message.get(app.id, msg.id, MessageGetOptions(with_content=True)).payload == {"expired": True}
        # Nothing left to send: a resend is refused, and the retry still owed gives up unsent.
        with pytest.raises(HttpError) as refused:
            hr.message_attempt.resend(app.id, msg.id, endpoint.id)
        assert refused.value.status_code == 409

        def given_up():
            attempts = hr.message_attempt.list_by_msg(app.id, msg.id, MessageAttemptListByMsgOptions()).data
            return next((a for a in attempts if a.response.startswith("not sent")), None)

        unsent = wait_for("the owed retry, given up unsent", given_up, timeout=15)
        assert unsent.response_status_code == 0 and len(receiver.requests) == 1
        with pytest.raises(HttpError) as missing:
            hr.message.expunge_content(app.id, "msg_doesnotexist")
        assert missing.value.status_code == 404
        status, body = call(server, "POST", f"/api/v1/app/{app.id}/msg/expunge-all-contents/", {})
        assert status == 404 and "not supported" in body["detail"], body
    finally:
        receiver.stop()


def test_an_event_types_group_is_kept(server):
    hr = client(server)
    created = hr.event_type.create(EventTypeIn(name="invoice.paid", description="Paid", group_name="billing"))
    assert created.group_name == "billing"
    assert hr.event_type.get("invoice.paid").group_name == "billing"
    assert hr.event_type.patch("invoice.paid", EventTypePatch(group_name="invoices")).group_name == "invoices"
    with pytest.raises(HTTPValidationError) as refused:
        hr.event_type.create(EventTypeIn(name="x.y", description="", group_name="has space"))
    assert refused.value.detail[0].loc == ["body", "groupName"]


def test_a_patch_cannot_swap_the_secret_behind_the_receivers_back(server, receiver):
    """The JavaScript SDK 1.x sends `secret` in EndpointPatch: the current one is accepted, another is a 422."""
    hr = client(server)
    app, endpoint, secret = app_with_endpoint(hr, receiver)
    path = f"/api/v1/app/{app.id}/endpoint/{endpoint.id}/"
    assert call(server, "PATCH", path, {"secret": secret, "description": "same secret"})[0] == 200
    status, body = call(server, "PATCH", path, {"secret": "whsec_" + "A" * 32})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "secret"], body
    assert hr.endpoint.get_secret(app.id, endpoint.id).key == secret


def test_query_parameters_hookrelay_cannot_honour_are_refused(server, receiver):
    hr = client(server)
    app, endpoint, _ = app_with_endpoint(hr, receiver)
    stats = f"/api/v1/app/{app.id}/endpoint/{endpoint.id}/stats/"
    for path, param in [
        ("/api/v1/app/?exclude_apps_with_no_endpoints=true", "exclude_apps_with_no_endpoints"),
        (stats + "?since=2026-01-01T00:00:00Z", "since"),
    ]:
        status, body = call(server, "GET", path)
        assert status == 422 and body["detail"][0]["loc"] == ["query", param], body
    # Asking for what hookrelay does anyway is fine.
    assert call(server, "GET", "/api/v1/app/?exclude_apps_with_no_endpoints=false")[0] == 200


def test_an_endpoints_attempts_can_carry_their_message(server, receiver):
    hr = client(server)
    app, endpoint, _ = app_with_endpoint(hr, receiver)
    msg = hr.message.create(app.id, MessageIn(event_type="a", payload={"n": 1}, tags=["t"]))
    receiver.wait_for(1)

    def attempts(**options):
        return hr.message_attempt.list_by_endpoint(
            app.id, endpoint.id, MessageAttemptListByEndpointOptions(**options)
        ).data

    listed = wait_for("the attempt", lambda: attempts(with_msg=True) or None)
    assert listed[0].msg.id == msg.id and listed[0].msg.tags == ["t"]
    assert attempts()[0].msg is None
