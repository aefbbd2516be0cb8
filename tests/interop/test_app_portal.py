"""Interop: the official `svix` SDK asks hookrelay for an app portal token (`authentication.app_portal_access`),
parses the answer, and uses the token as its own API key, confined to that one application."""

import pytest
from svix.api import (
    AppPortalAccessIn,
    AppPortalAccessOut,
    ApplicationIn,
    EndpointIn,
    EventTypeIn,
    MessageIn,
    Svix,
    SvixOptions,
)
from svix.api.errors.http_error import HttpError
from svix.api.errors.http_validation_error import HTTPValidationError

from conftest import TOKEN


def status_of(call):
    with pytest.raises(HttpError) as error:
        call()
    return error.value.status_code


def test_app_portal_token_is_an_sdk_token_for_one_application(server, receiver):
    admin = Svix(TOKEN, SvixOptions(server_url=server.url))
    acme = admin.application.create(ApplicationIn(name="Acme", uid="acme"))
    other = admin.application.create(ApplicationIn(name="Other", uid="other"))
    admin.event_type.create(EventTypeIn(name="invoice.paid", description="An invoice was paid"))
    other_endpoint = admin.endpoint.create(other.id, EndpointIn(url=receiver.url))

    access = admin.authentication.app_portal_access("acme", AppPortalAccessIn())
    assert isinstance(access, AppPortalAccessOut)
    assert access.token and access.url.endswith("#key=" + access.token)

    portal = Svix(access.token, SvixOptions(server_url=server.url))
    assert portal.application.get("acme").id == acme.id
    endpoint = portal.endpoint.create(acme.id, EndpointIn(url=receiver.url, event_types=["invoice.paid"]))
    message = portal.message.create("acme", MessageIn(event_type="invoice.paid", payload={"amount": 1}))
    assert [m.id for m in portal.message.list(acme.id).data] == [message.id]
    receiver.wait_for(1)
    assert [e.id for e in portal.endpoint.list("acme").data] == [endpoint.id]
    assert [t.name for t in portal.event_type.list().data] == ["invoice.paid"]

    # Another application's resources do not exist for it; admin routes are forbidden.
    assert status_of(lambda: portal.endpoint.list(other.id)) == 404
    assert status_of(lambda: portal.endpoint.get("other", other_endpoint.id)) == 404
    assert status_of(lambda: portal.message.create(other.id, MessageIn(event_type="invoice.paid", payload={}))) == 404
    assert status_of(lambda: portal.application.list()) == 403
    assert status_of(lambda: portal.application.create(ApplicationIn(name="Mine"))) == 403
    assert status_of(lambda: portal.event_type.create(EventTypeIn(name="x.y", description=""))) == 403
    assert status_of(lambda: portal.authentication.app_portal_access(acme.id, AppPortalAccessIn())) == 403


def test_read_only_tokens_and_creating_the_application_on_the_way(server, receiver):
    admin = Svix(TOKEN, SvixOptions(server_url=server.url))
    access = admin.authentication.app_portal_access(
        "newco", AppPortalAccessIn(application=ApplicationIn(name="NewCo"), read_only=True, expiry=3600)
    )
    reader = Svix(access.token, SvixOptions(server_url=server.url))
    app = reader.application.get("newco")
    assert app.name == "NewCo"
    assert reader.endpoint.list(app.id).data == []
    assert status_of(lambda: reader.endpoint.create(app.id, EndpointIn(url=receiver.url))) == 403


def test_capabilities_give_a_read_only_or_full_token_and_never_more_than_asked(server, receiver):
    """Svix's `capabilities`: viewing only is a read-only token; a set hookrelay cannot grant exactly is a 422
    rather than a token that can do more than asked."""
    admin = Svix(TOKEN, SvixOptions(server_url=server.url))
    app = admin.application.create(ApplicationIn(name="Acme"))
    viewer = admin.authentication.app_portal_access(
        app.id, AppPortalAccessIn(capabilities=["ViewBase", "ViewEndpointSecret"])
    )
    reader = Svix(viewer.token, SvixOptions(server_url=server.url))
    assert reader.endpoint.list(app.id).data == []
    assert status_of(lambda: reader.endpoint.create(app.id, EndpointIn(url=receiver.url))) == 403
    everything = ["ViewBase", "ViewEndpointSecret", "ManageEndpointSecret", "ManageTransformations",
                  "CreateAttempts", "ManageEndpoint"]
    full = admin.authentication.app_portal_access(app.id, AppPortalAccessIn(capabilities=everything))
    Svix(full.token, SvixOptions(server_url=server.url)).endpoint.create(app.id, EndpointIn(url=receiver.url))
    for capabilities in (["ViewBase"], ["ViewBase", "ViewEndpointSecret", "CreateAttempts"]):
        with pytest.raises(HTTPValidationError) as refused:
            admin.authentication.app_portal_access(app.id, AppPortalAccessIn(capabilities=capabilities))
        assert refused.value.detail[0].loc == ["body", "capabilities"]
