//! SQL of applications, event types, endpoints, messages, deliveries and attempts as the API reads them, idempotency records and background tasks.

use deadpool_postgres::Client;
#[allow(unused_imports)]
use hookrelay_core::model::*;
#[allow(unused_imports)]
use hookrelay_core::time::UnixMillis;
#[allow(unused_imports)]
use hookrelay_core::{AppId, EndpointId, MessageId, SourceId};

#[allow(unused_imports)]
use super::pg_error;
#[allow(unused_imports)]
use crate::store::*;
#[allow(unused_imports)]
use crate::{Page, PageRequest, StoreError};

pub async fn create_app(db: &mut Client, app: &Application) -> StoreResult<()> {
    todo!("PostgreSQL create_app")
}

pub async fn get_app(db: &mut Client, id_or_uid: &str) -> StoreResult<Application> {
    todo!("PostgreSQL get_app")
}

pub async fn list_apps(db: &mut Client, page: &PageRequest) -> StoreResult<Page<Application>> {
    todo!("PostgreSQL list_apps")
}

pub async fn update_app(db: &mut Client, app: &Application) -> StoreResult<()> {
    todo!("PostgreSQL update_app")
}

pub async fn delete_app(db: &mut Client, id: &AppId) -> StoreResult<()> {
    todo!("PostgreSQL delete_app")
}

pub async fn create_event_type(db: &mut Client, event_type: &EventType) -> StoreResult<()> {
    todo!("PostgreSQL create_event_type")
}

pub async fn get_event_type(db: &mut Client, name: &str) -> StoreResult<EventType> {
    todo!("PostgreSQL get_event_type")
}

pub async fn list_event_types(
    db: &mut Client,
    page: &PageRequest,
    include_archived: bool,
) -> StoreResult<Page<EventType>> {
    todo!("PostgreSQL list_event_types")
}

pub async fn update_event_type(db: &mut Client, event_type: &EventType) -> StoreResult<()> {
    todo!("PostgreSQL update_event_type")
}

pub async fn expunge_event_type(db: &mut Client, name: &str) -> StoreResult<()> {
    todo!("PostgreSQL expunge_event_type")
}

pub async fn unknown_event_types(db: &mut Client, names: &[String]) -> StoreResult<Vec<String>> {
    todo!("PostgreSQL unknown_event_types")
}

pub async fn create_endpoint(db: &mut Client, endpoint: &Endpoint) -> StoreResult<()> {
    todo!("PostgreSQL create_endpoint")
}

pub async fn get_endpoint(db: &mut Client, app_id: &AppId, id_or_uid: &str) -> StoreResult<Endpoint> {
    todo!("PostgreSQL get_endpoint")
}

pub async fn list_endpoints(db: &mut Client, app_id: &AppId, page: &PageRequest) -> StoreResult<Page<Endpoint>> {
    todo!("PostgreSQL list_endpoints")
}

pub async fn update_endpoint(db: &mut Client, endpoint: &Endpoint) -> StoreResult<()> {
    todo!("PostgreSQL update_endpoint")
}

pub async fn delete_endpoint(db: &mut Client, app_id: &AppId, id: &EndpointId) -> StoreResult<()> {
    todo!("PostgreSQL delete_endpoint")
}

pub async fn endpoint_delivery_counts(db: &mut Client, id: &EndpointId) -> StoreResult<DeliveryCounts> {
    todo!("PostgreSQL endpoint_delivery_counts")
}

pub async fn oldest_open_delivery(db: &mut Client, id: &EndpointId) -> StoreResult<Option<Delivery>> {
    todo!("PostgreSQL oldest_open_delivery")
}

pub async fn publish_message(
    db: &mut Client,
    message: &Message,
    idempotent: Option<&IdempotentResponse>,
) -> StoreResult<PublishedMessage> {
    todo!("PostgreSQL publish_message")
}

pub async fn get_message(db: &mut Client, app_id: &AppId, id_or_event_id: &str) -> StoreResult<Message> {
    todo!("PostgreSQL get_message")
}

pub async fn list_messages(
    db: &mut Client,
    app_id: &AppId,
    filter: &MessageFilter,
    page: &PageRequest,
) -> StoreResult<Page<Message>> {
    todo!("PostgreSQL list_messages")
}

pub async fn list_message_deliveries(
    db: &mut Client,
    msg_id: &MessageId,
    page: &PageRequest,
) -> StoreResult<Page<(Endpoint, Delivery)>> {
    todo!("PostgreSQL list_message_deliveries")
}

pub async fn resend(db: &mut Client, msg_id: &MessageId, endpoint_id: &EndpointId) -> StoreResult<()> {
    todo!("PostgreSQL resend")
}

pub async fn list_attempts_for_endpoint(
    db: &mut Client,
    endpoint_id: &EndpointId,
    filter: &AttemptFilter,
    page: &PageRequest,
) -> StoreResult<Page<Attempt>> {
    todo!("PostgreSQL list_attempts_for_endpoint")
}

pub async fn list_attempts_for_message(
    db: &mut Client,
    msg_id: &MessageId,
    filter: &AttemptFilter,
    page: &PageRequest,
) -> StoreResult<Page<Attempt>> {
    todo!("PostgreSQL list_attempts_for_message")
}

pub async fn get_attempt(db: &mut Client, msg_id: &MessageId, attempt_id: &str) -> StoreResult<Attempt> {
    todo!("PostgreSQL get_attempt")
}

pub async fn get_idempotent(db: &mut Client, key: &str) -> StoreResult<Option<IdempotentResponse>> {
    todo!("PostgreSQL get_idempotent")
}

pub async fn put_idempotent(db: &mut Client, response: &IdempotentResponse) -> StoreResult<()> {
    todo!("PostgreSQL put_idempotent")
}

pub async fn create_background_task(db: &mut Client, task: &BackgroundTask) -> StoreResult<()> {
    todo!("PostgreSQL create_background_task")
}

pub async fn get_background_task(db: &mut Client, id: &str) -> StoreResult<BackgroundTask> {
    todo!("PostgreSQL get_background_task")
}

pub async fn list_background_tasks(
    db: &mut Client,
    filter: &TaskFilter,
    page: &PageRequest,
) -> StoreResult<Page<BackgroundTask>> {
    todo!("PostgreSQL list_background_tasks")
}

pub async fn update_background_task(db: &mut Client, task: &BackgroundTask) -> StoreResult<()> {
    todo!("PostgreSQL update_background_task")
}
