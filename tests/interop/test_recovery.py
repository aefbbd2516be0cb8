"""Interop: the official `svix` Python SDK starts recover and replay-missing tasks on hookrelay and follows them
through the background-task API, parsing every answer with the SDK's own models."""

import json
from datetime import datetime, timedelta, timezone

from svix.api import (
    ApplicationIn,
    BackgroundTaskListOptions,
    EndpointIn,
    MessageIn,
    RecoverIn,
    ReplayIn,
    Svix,
    SvixOptions,
)
from svix.models import BackgroundTaskStatus, BackgroundTaskType

from conftest import TOKEN, Receiver, wait_for


def finished(hr, task_id):
    """Polls the task through the SDK until it is no longer running."""
    task = wait_for(
        f"task {task_id} to end",
        lambda: (lambda t: t if t.status != BackgroundTaskStatus.RUNNING else None)(hr.background_task.get(task_id)),
    )
    assert task.status == BackgroundTaskStatus.FINISHED, task
    return task


def test_recover_and_replay_missing_through_the_sdk(server):
    hr = Svix(TOKEN, SvixOptions(server_url=server.url))
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    app = hr.application.create(ApplicationIn(name="Acme"))

    # Three failures exhaust the server's "1,1" schedule; the receiver answers 200 after that.
    flaky = Receiver(statuses=[500, 500, 500])
    try:
        endpoint = hr.endpoint.create(app.id, EndpointIn(url=flaky.url))
        message = hr.message.create(app.id, MessageIn(event_type="invoice.paid", payload={"n": 1}))
        wait_for(
            "the delivery to fail for good",
            lambda: hr.message_attempt.list_attempted_destinations(app.id, message.id).data[0].status == 2,
        )
        started = hr.endpoint.recover(app.id, endpoint.id, RecoverIn(since=since))
        assert started.id.startswith("qtask_")
        assert started.status == BackgroundTaskStatus.RUNNING
        assert started.task == BackgroundTaskType.ENDPOINT_RECOVER
        task = finished(hr, started.id)
        assert task.task == BackgroundTaskType.ENDPOINT_RECOVER and task.data["messagesSent"] == 1
        (headers, body) = flaky.wait_for(4)[3]
        assert headers["webhook-id"] == message.id and json.loads(body) == {"n": 1}
    finally:
        flaky.stop()

    # A new endpoint gets the message it never had.
    late = Receiver()
    try:
        newcomer = hr.endpoint.create(app.id, EndpointIn(url=late.url))
        started = hr.endpoint.replay_missing(app.id, newcomer.id, ReplayIn(since=since))
        assert started.task == BackgroundTaskType.ENDPOINT_REPLAY
        task = finished(hr, started.id)
        assert task.data["messagesSent"] == 1
        (headers, _), = late.wait_for(1)
        assert headers["webhook-id"] == message.id
    finally:
        late.stop()

    listed = hr.background_task.list(BackgroundTaskListOptions(task=BackgroundTaskType.ENDPOINT_REPLAY))
    assert [t.id for t in listed.data] == [started.id] and listed.done
