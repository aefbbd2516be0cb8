"""Interop: the official `svix` Python SDK drives hookrelay unchanged, and the deliveries it causes verify
with the official `standardwebhooks` and `svix` verifier libraries."""

import json
from datetime import datetime, timedelta, timezone

import pytest
import standardwebhooks
import svix.webhooks
from svix.api import (
    ApplicationIn,
    ApplicationListOptions,
    ApplicationPatch,
    EndpointHeadersIn,
    EndpointHeadersPatchIn,
    EndpointIn,
    EndpointPatch,
    EndpointSecretRotateIn,
    EventTypeIn,
    MessageAttemptListAttemptedMessagesOptions,
    MessageAttemptListByEndpointOptions,
    MessageCreateOptions,
    MessageGetOptions,
    MessageIn,
    MessageListOptions,
    Svix,
    SvixOptions,
)
from svix.api.errors.http_error import HttpError
from svix.api.message import message_in_raw
from svix.api.errors.http_validation_error import HTTPValidationError

from conftest import TOKEN, Receiver, wait_for


def client(server):
    return Svix(TOKEN, SvixOptions(server_url=server.url))


def verify_with_official_libraries(secret, headers, body):
    """Both official verifiers must accept the delivery; each raises on a bad signature."""
    standardwebhooks.Webhook(secret).verify(body, headers)
    svix.webhooks.Webhook(secret).verify(body, headers)


def test_publish_and_verify_with_official_sdk(server, receiver):
    hr = client(server)
    app = hr.application.create(ApplicationIn(name="Acme", uid="acme", metadata={"tier": "gold"}))
    assert app.id.startswith("app_") and app.uid == "acme"
    assert hr.application.get_or_create(ApplicationIn(name="Acme", uid="acme")).id == app.id
    hr.event_type.create(EventTypeIn(name="invoice.paid", description="An invoice was paid"))

    endpoint = hr.endpoint.create(app.id, EndpointIn(url=receiver.url, event_types=["invoice.paid"], uid="billing"))
    assert endpoint.event_types == ["invoice.paid"]
    secret = hr.endpoint.get_secret(app.id, endpoint.id).key
    assert secret.startswith("whsec_")

    message = hr.message.create("acme", MessageIn(event_type="invoice.paid", event_id="evt_1", payload={"amount": 4200}))
    assert message.id.startswith("msg_")
    (headers, body), = receiver.wait_for(1)
    assert json.loads(body) == {"amount": 4200}
    assert headers["webhook-id"] == message.id
    verify_with_official_libraries(secret, headers, body)

    # The message and its attempt are visible through the SDK.
    assert hr.message.get(app.id, "evt_1").id == message.id
    listed = hr.message.list(app.id, MessageListOptions(with_content=False))
    assert [m.id for m in listed.data] == [message.id] and listed.data[0].payload == {}
    attempts = wait_for(
        "the attempt to be recorded",
        lambda: hr.message_attempt.list_by_endpoint(app.id, endpoint.id).data,
    )
    assert attempts[0].response_status_code == 200 and attempts[0].msg_id == message.id
    destinations = hr.message_attempt.list_attempted_destinations(app.id, message.id).data
    assert [d.id for d in destinations] == [endpoint.id]
    stats = hr.endpoint.get_stats(app.id, endpoint.id)
    assert stats.success == 1 and stats.fail == 0


def test_secret_rotation_keeps_both_secrets_valid(server, receiver):
    hr = client(server)
    app = hr.application.create(ApplicationIn(name="Acme"))
    endpoint = hr.endpoint.create(app.id, EndpointIn(url=receiver.url))
    old_secret = hr.endpoint.get_secret(app.id, endpoint.id).key
    hr.endpoint.rotate_secret(app.id, endpoint.id, EndpointSecretRotateIn())
    new_secret = hr.endpoint.get_secret(app.id, endpoint.id).key
    assert new_secret != old_secret

    hr.message.create(app.id, MessageIn(event_type="user.created", payload={"id": 1}))
    (headers, body), = receiver.wait_for(1)
    verify_with_official_libraries(old_secret, headers, body)
    verify_with_official_libraries(new_secret, headers, body)


def test_retries_and_attempt_log_through_sdk(server):
    failing_twice = Receiver(statuses=[500, 500])
    try:
        hr = client(server)
        app = hr.application.create(ApplicationIn(name="Acme"))
        endpoint = hr.endpoint.create(app.id, EndpointIn(url=failing_twice.url))
        secret = hr.endpoint.get_secret(app.id, endpoint.id).key
        hr.message.create(app.id, MessageIn(event_type="a", payload={"n": 1}))
        deliveries = failing_twice.wait_for(3)
        for headers, body in deliveries:
            verify_with_official_libraries(secret, headers, body)
        attempts = wait_for(
            "three recorded attempts",
            lambda: (lambda data: data if len(data) == 3 else None)(
                hr.message_attempt.list_by_endpoint(app.id, endpoint.id).data
            ),
        )
        assert sorted(a.response_status_code for a in attempts) == [200, 500, 500]
        failed = hr.message_attempt.list_by_endpoint(
            app.id, endpoint.id, MessageAttemptListByEndpointOptions(status=2)
        ).data
        assert len(failed) == 2
    finally:
        failing_twice.stop()


def test_an_endpoints_messages_with_their_delivery_status(server):
    """`message_attempt.list_attempted_messages`: what one endpoint received, as support tools show it."""
    receiver = Receiver(statuses=[200, 500, 500, 500])
    try:
        hr = client(server)
        app = hr.application.create(ApplicationIn(name="Acme"))
        endpoint = hr.endpoint.create(app.id, EndpointIn(url=receiver.url))
        first = hr.message.create(app.id, MessageIn(event_type="a", payload={"n": 1}))
        receiver.wait_for(1)
        second = hr.message.create(app.id, MessageIn(event_type="b", payload={"n": 2}))
        receiver.wait_for(2)

        def listed(**options):
            return hr.message_attempt.list_attempted_messages(
                app.id, endpoint.id, MessageAttemptListAttemptedMessagesOptions(**options)
            ).data

        def settled():
            data = listed(with_content=True)
            return data if [m.status for m in data] == [1, 0] else None

        messages = wait_for("both messages with a settled status", settled)
        assert [m.id for m in messages] == [second.id, first.id], "newest first"
        assert messages[1].payload == {"n": 1} and messages[1].status_text == "success"
        assert messages[0].next_attempt is not None, "the failed one is due again"
        assert [m.id for m in listed(status=0)] == [first.id]
        assert [m.id for m in listed(limit=1)] == [second.id]
    finally:
        receiver.stop()


def test_idempotency_key_returns_the_same_message(server, receiver):
    hr = client(server)
    app = hr.application.create(ApplicationIn(name="Acme"))
    hr.endpoint.create(app.id, EndpointIn(url=receiver.url))
    options = MessageCreateOptions(idempotency_key="order-42")
    first = hr.message.create(app.id, MessageIn(event_type="a", payload={"n": 1}), options)
    second = hr.message.create(app.id, MessageIn(event_type="a", payload={"n": 1}), options)
    assert first.id == second.id
    assert len(hr.message.list(app.id).data) == 1


def test_pagination_follows_iterator_until_done(server):
    hr = client(server)
    created = {hr.application.create(ApplicationIn(name=f"app {n}")).id for n in range(7)}
    seen, iterator = [], None
    while True:
        page = hr.application.list(ApplicationListOptions(limit=3, iterator=iterator))
        seen.extend(a.id for a in page.data)
        if page.done:
            break
        iterator = page.iterator
    assert sorted(seen) == sorted(created)


def test_updates_headers_and_upserts(server, receiver):
    hr = client(server)
    app = hr.application.upsert("tenant-7", ApplicationIn(name="Tenant 7", uid="tenant-7"))
    assert hr.application.get("tenant-7").id == app.id
    patched = hr.application.patch(app.id, ApplicationPatch(name="Tenant Seven"))
    assert patched.name == "Tenant Seven" and patched.uid == "tenant-7"

    endpoint = hr.endpoint.create(app.id, EndpointIn(url=receiver.url, description="first"))
    assert hr.endpoint.patch(app.id, endpoint.id, EndpointPatch(description="second")).description == "second"
    hr.endpoint.set_headers(app.id, endpoint.id, EndpointHeadersIn(headers={"x-tenant": "7"}))
    hr.endpoint.patch_headers(app.id, endpoint.id, EndpointHeadersPatchIn(headers={"x-extra": "1"}))
    assert hr.endpoint.get_headers(app.id, endpoint.id).headers == {"x-tenant": "7", "x-extra": "1"}

    hr.message.create(app.id, MessageIn(event_type="a", payload={}))
    (headers, _), = receiver.wait_for(1)
    assert headers["x-tenant"] == "7" and headers["x-extra"] == "1"

    after = datetime.now(timezone.utc) + timedelta(hours=1)
    assert hr.message.list(app.id, MessageListOptions(after=after)).data == []

    hr.endpoint.delete(app.id, endpoint.id)
    hr.application.delete(app.id)


def test_errors_surface_as_sdk_exceptions(server):
    hr = client(server)
    with pytest.raises(HttpError) as missing:
        hr.application.get("no-such-app")
    assert missing.value.status_code == 404
    hr.application.create(ApplicationIn(name="Acme", uid="dup"))
    with pytest.raises(HttpError) as conflict:
        hr.application.create(ApplicationIn(name="Acme", uid="dup"))
    assert conflict.value.status_code == 409
    app = hr.application.get("dup")
    with pytest.raises(HTTPValidationError):
        hr.endpoint.create(app.id, EndpointIn(url="https://example.com", event_types=["never.defined"]))
    with pytest.raises(HttpError) as unauthorized:
        Svix("wrong-token", SvixOptions(server_url=server.url)).application.list()
    assert unauthorized.value.status_code == 401


def test_message_creates_its_application(server):
    hr = client(server)
    message = hr.message.create(
        "lazy-corp", MessageIn(event_type="a", payload={"n": 1}, application=ApplicationIn(name="Lazy Corp"))
    )
    assert hr.application.get("lazy-corp").name == "Lazy Corp"
    # The SDK asks for `with_content=false` unless told otherwise.
    assert hr.message.get("lazy-corp", message.id).payload == {}
    assert hr.message.get("lazy-corp", message.id, MessageGetOptions(with_content=True)).payload == {"n": 1}


def test_hmac_hex_signature_scheme_for_legacy_receivers(server, receiver):
    """The `signatureSchemes` extension adds `X-Webhook-Signature: sha256=<hex>` (HMAC-SHA256 of the body,
    keyed with the whole `whsec_…` string), checked here with Python's own hmac module."""
    import hashlib
    import hmac

    import httpx

    hr = client(server)
    app = hr.application.create(ApplicationIn(name="Acme"))
    endpoint = hr.endpoint.create(app.id, EndpointIn(url=receiver.url))
    response = httpx.patch(
        f"{server.url}/api/v1/app/{app.id}/endpoint/{endpoint.id}",
        headers={"authorization": f"Bearer {TOKEN}"},
        json={"signatureSchemes": ["standard", "hmac-hex"]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["signatureSchemes"] == ["standard", "hmac-hex"]
    # The SDK still reads the endpoint (it ignores the extension field).
    assert hr.endpoint.get(app.id, endpoint.id).id == endpoint.id

    secret = hr.endpoint.get_secret(app.id, endpoint.id).key
    hr.message.create(app.id, MessageIn(event_type="invoice.paid", payload={"amount": 4200}))
    (headers, body), = receiver.wait_for(1)
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-webhook-signature"], expected)
    verify_with_official_libraries(secret, headers, body)
