"""Interop: ed25519 endpoint keys, as Svix offers them. An endpoint created with the official `svix` SDK and a
`whsk_` secret signs its deliveries `v1a,<base64 ed25519 signature>`; the signature verifies with the `whpk_`
public key that `GET …/secret` shows, checked with Python's `cryptography` (an implementation independent of
hookrelay's). Settings that need an HMAC keyed with the secret are refused for such a key."""

import base64
import json

import standardwebhooks
import svix.webhooks
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from svix.api import ApplicationIn, EndpointIn, EndpointSecretRotateIn, MessageIn, Svix, SvixOptions

from conftest import TOKEN, call


def client(server):
    return Svix(TOKEN, SvixOptions(server_url=server.url))


def new_key():
    """A fresh ed25519 key: (its 32-byte seed, its 32-byte public key)."""
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return seed, public


def b64(data):
    return base64.b64encode(data).decode()


def whsk(seed, public=b""):
    """Svix's form (seed ‖ public key) when `public` is given, else the seed alone."""
    return "whsk_" + b64(seed + public)


def verify_v1a(whpk, headers, body):
    """Verifies the delivery's `v1a` signature with the `whpk_` key, as a receiver would; returns how many
    `v1a` signatures the header carried. Raises InvalidSignature when one does not verify."""
    assert whpk.startswith("whpk_")
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(whpk.removeprefix("whpk_")))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    found = 0
    for part in headers["webhook-signature"].split(" "):
        version, signature = part.split(",", 1)
        if version == "v1a":
            public.verify(base64.b64decode(signature), signed)
            found += 1
    return found


def test_ed25519_endpoint_signs_v1a_verified_with_its_public_key(server, receiver):
    hr = client(server)
    app = hr.application.create(ApplicationIn(name="Acme"))
    seed, public = new_key()
    endpoint = hr.endpoint.create(app.id, EndpointIn(url=receiver.url, secret=whsk(seed, public)))
    shown = hr.endpoint.get_secret(app.id, endpoint.id).key
    assert shown == "whpk_" + b64(public)

    message = hr.message.create(app.id, MessageIn(event_type="invoice.paid", payload={"amount": 4200}))
    ((headers, body),) = receiver.wait_for(1)
    assert json.loads(body) == {"amount": 4200}
    assert headers["webhook-id"] == message.id
    assert headers["webhook-signature"].startswith("v1a,")
    assert " " not in headers["webhook-signature"]
    assert headers["svix-signature"] == headers["webhook-signature"]
    assert verify_v1a(shown, headers, body) == 1

    # The signature covers the id, the timestamp and the exact body.
    tampered = dict(headers, **{"webhook-timestamp": str(int(headers["webhook-timestamp"]) + 1)})
    try:
        verify_v1a(shown, tampered, body)
        raise AssertionError("a signature over another timestamp verified")
    except InvalidSignature:
        pass
    # Nothing in the delivery carries the seed.
    assert all(b64(seed) not in value for value in headers.values())

    # The 32-byte seed alone (the Standard Webhooks libraries' form) is the same key.
    status, by_seed = call(server, "POST", f"/api/v1/app/{app.id}/endpoint/", {"url": receiver.url, "secret": whsk(seed)})
    assert status == 201, by_seed
    status, secret = call(server, "GET", f"/api/v1/app/{app.id}/endpoint/{by_seed['id']}/secret/")
    assert status == 200 and secret == {"key": shown}

    # A 64-byte key whose second half is not the seed's public key is refused, naming the field.
    _, other_public = new_key()
    status, error = call(
        server, "POST", f"/api/v1/app/{app.id}/endpoint/", {"url": receiver.url, "secret": whsk(seed, other_public)}
    )
    assert status == 422, error
    assert error["detail"][0]["loc"] == ["body", "secret"]
    assert "public key" in error["detail"][0]["msg"]
    # So is a public key given as the secret.
    status, error = call(server, "POST", f"/api/v1/app/{app.id}/endpoint/", {"url": receiver.url, "secret": shown})
    assert status == 422 and error["detail"][0]["loc"] == ["body", "secret"], error


def test_rotation_from_hmac_to_ed25519_signs_with_both(server, receiver):
    hr = client(server)
    app = hr.application.create(ApplicationIn(name="Acme"))
    endpoint = hr.endpoint.create(app.id, EndpointIn(url=receiver.url))
    old_secret = hr.endpoint.get_secret(app.id, endpoint.id).key
    assert old_secret.startswith("whsec_")

    seed, public = new_key()
    rotated = hr.endpoint.rotate_secret(app.id, endpoint.id, EndpointSecretRotateIn(key=whsk(seed, public)))
    assert rotated.key == "whpk_" + b64(public)
    shown = hr.endpoint.get_secret(app.id, endpoint.id).key
    assert shown == rotated.key

    hr.message.create(app.id, MessageIn(event_type="user.created", payload={"id": 1}))
    ((headers, body),) = receiver.wait_for(1)
    versions = [part.split(",", 1)[0] for part in headers["webhook-signature"].split(" ")]
    assert versions == ["v1", "v1a"], headers["webhook-signature"]
    # Receivers that still hold the old secret verify with the official libraries, which skip `v1a`.
    standardwebhooks.Webhook(old_secret).verify(body, headers)
    svix.webhooks.Webhook(old_secret).verify(body, headers)
    assert verify_v1a(shown, headers, body) == 1


def test_ed25519_keys_refuse_hmac_only_settings(server, receiver):
    status, app = call(server, "POST", "/api/v1/app/", {"name": "Acme"})
    assert status == 201
    endpoints = f"/api/v1/app/{app['id']}/endpoint/"
    seed, public = new_key()
    key = whsk(seed, public)
    legacy = {"signatureSchemes": ["standard", "hmac-hex"]}
    own = {"signatureHeaders": [{"header": "X-Corp-Signature", "algorithm": "sha256", "encoding": "hex"}]}

    def refused(answer, field):
        status, error = answer
        assert status == 422, error
        assert error["detail"][0]["loc"] == ["body", field], error
        assert "public key" in error["detail"][0]["msg"], error

    # On create.
    refused(call(server, "POST", endpoints, {"url": receiver.url, "secret": key, **legacy}), "signatureSchemes")
    refused(call(server, "POST", endpoints, {"url": receiver.url, "secret": key, **own}), "signatureHeaders")

    # On PATCH and PUT of an ed25519 endpoint.
    status, endpoint = call(server, "POST", endpoints, {"url": receiver.url, "secret": key})
    assert status == 201, endpoint
    one = f"{endpoints}{endpoint['id']}/"
    refused(call(server, "PATCH", one, legacy), "signatureSchemes")
    refused(call(server, "PATCH", one, own), "signatureHeaders")
    refused(call(server, "PUT", one, {"url": receiver.url, **legacy}), "signatureSchemes")
    refused(call(server, "PUT", one, {"url": receiver.url, **own}), "signatureHeaders")
    status, unchanged = call(server, "GET", one)
    assert status == 200 and unchanged["signatureSchemes"] == ["standard"] and unchanged["signatureHeaders"] == []

    # On rotation to an ed25519 key while such settings exist; the secret stays as it was.
    for settings in (legacy, own):
        status, hmac_endpoint = call(server, "POST", endpoints, {"url": receiver.url, **settings})
        assert status == 201, hmac_endpoint
        secret_path = f"{endpoints}{hmac_endpoint['id']}/secret/"
        _, before = call(server, "GET", secret_path)
        refused(call(server, "POST", f"{secret_path}rotate/", {"key": key}), "key")
        assert call(server, "GET", secret_path) == (200, before)

    # Rotating the ed25519 endpoint back to an HMAC secret makes those settings possible again.
    status, _ = call(server, "POST", f"{one}secret/rotate/", {"gracePeriodSeconds": 0})
    assert status == 200
    status, patched = call(server, "PATCH", one, legacy)
    assert status == 200 and patched["signatureSchemes"] == ["standard", "hmac-hex"], patched
