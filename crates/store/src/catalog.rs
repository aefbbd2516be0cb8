//! The catalog role: what the API manages on behalf of users — applications, event types and endpoints.

use async_trait::async_trait;
use hookrelay_core::model::{Application, Endpoint, EventType};
use hookrelay_core::{AppId, EndpointId};

use crate::{Page, PageRequest, StoreResult};

/// Applications, event types and endpoints. Each method is atomic.
#[async_trait]
pub trait Catalog: Send + Sync + 'static {
    /// Fails with `Conflict` when the uid is taken.
    async fn create_app(&self, app: &Application) -> StoreResult<()>;
    /// Finds an application by id or uid.
    async fn get_app(&self, id_or_uid: &str) -> StoreResult<Application>;
    async fn list_apps(&self, page: &PageRequest) -> StoreResult<Page<Application>>;
    /// Replaces the stored application with the same id. Fails with `Conflict` when the uid is taken.
    async fn update_app(&self, app: &Application) -> StoreResult<()>;
    /// Deletes the application with everything it owns.
    async fn delete_app(&self, id: &AppId) -> StoreResult<()>;
    /// Fails with `Conflict` when the name is taken.
    async fn create_event_type(&self, event_type: &EventType) -> StoreResult<()>;
    async fn get_event_type(&self, name: &str) -> StoreResult<EventType>;
    async fn list_event_types(&self, page: &PageRequest, include_archived: bool) -> StoreResult<Page<EventType>>;
    async fn update_event_type(&self, event_type: &EventType) -> StoreResult<()>;
    /// Removes the event type for good (`?expunge=true`); a plain delete is an update that archives.
    async fn expunge_event_type(&self, name: &str) -> StoreResult<()>;
    /// Which of `names` are not known event types (archived ones count as known).
    async fn unknown_event_types(&self, names: &[String]) -> StoreResult<Vec<String>>;
    /// Fails with `Conflict` when the uid is taken within the application.
    async fn create_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()>;
    /// Finds an endpoint of the application by id or uid.
    async fn get_endpoint(&self, app_id: &AppId, id_or_uid: &str) -> StoreResult<Endpoint>;
    async fn list_endpoints(&self, app_id: &AppId, page: &PageRequest) -> StoreResult<Page<Endpoint>>;
    /// How many endpoints the application has (for the per-application limit).
    async fn count_endpoints(&self, app_id: &AppId) -> StoreResult<u64>;
    /// Replaces the stored endpoint with the same id (secrets and headers included).
    async fn update_endpoint(&self, endpoint: &Endpoint) -> StoreResult<()>;
    /// Deletes the endpoint, its deliveries and its attempts.
    async fn delete_endpoint(&self, app_id: &AppId, id: &EndpointId) -> StoreResult<()>;
}
