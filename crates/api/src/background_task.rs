//! The recovery tools and their background tasks: `POST …/endpoint/{endpoint_id}/recover` (re-send an
//! endpoint's failed deliveries of a window), `POST …/replay-missing` (send it the messages of a window it
//! never got), and `GET /api/v1/background-task[/{task_id}]` to follow them. The work itself runs in
//! [`crate::task_runner`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use hookrelay_core::TaskId;
use hookrelay_core::model::{BackgroundTask, TaskKind, TaskProgress, TaskStatus};
use hookrelay_core::recovery::recovery_window;
use hookrelay_core::time::now_ms;
use hookrelay_store::{Order, TaskFilter};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::app::find_app;
use crate::endpoint::find_endpoint;
use crate::error::{ApiError, OrNotFound};
use crate::extract::{ApiJson, ApiPath, QueryParams};
use crate::openapi::{AdminBodyErrors, AdminErrors, EndpointPath, NotFound, PageParams};
use crate::pagination::{ListOut, page_request};
use crate::time::Rfc3339;
use crate::{ApiState, Routes};

/// Every `BackgroundTaskType` of the Svix API. hookrelay runs only the endpoint ones; listing by another
/// type is valid and finds nothing.
const SVIX_TASK_TYPES: &[&str] = &[
    "endpoint.replay",
    "endpoint.recover",
    "application.stats",
    "message.broadcast",
    "sdk.generate",
    "event-type.aggregate",
    "application.purge_content",
    "endpoint.bulk-replay",
];

pub fn routes() -> axum::Router<ApiState> {
    const ONE: &str = "/api/v1/app/{app_id}/endpoint/{endpoint_id}";
    axum::Router::new()
        .route_both(&format!("{ONE}/recover"), post(recover))
        .route_both(&format!("{ONE}/replay-missing"), post(replay_missing))
        .route_both("/api/v1/background-task", get(list))
        .route_both("/api/v1/background-task/{task_id}", get(read))
}

/// `RecoverIn` and `ReplayIn`: RFC 3339 times; `until` defaults to now.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = RecoverIn)]
struct WindowIn {
    /// Start of the window: messages created at or after it; at most 14 days ago.
    #[schema(format = DateTime)]
    since: String,
    /// End of the window (default: now).
    #[serde(default)]
    #[schema(format = DateTime)]
    until: Option<String>,
}

/// `RecoverOut` and `ReplayOut`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = RecoverOut)]
struct TaskStartedOut {
    /// The background task (`qtask_…`) to follow.
    id: String,
    /// `running`.
    status: &'static str,
    /// `endpoint.recover` or `endpoint.replay`.
    task: &'static str,
    updated_at: Rfc3339,
}

/// `BackgroundTaskOut`. `data` follows Svix's completed payload (`messagesSent`) and adds, while the task
/// runs, how many candidates it has looked at and how many the window held when it started.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct BackgroundTaskOut {
    id: String,
    /// `running`, `finished` or `failed`.
    status: &'static str,
    /// `endpoint.recover` or `endpoint.replay`.
    task: &'static str,
    /// `{messagesSent, messagesScanned, messagesTotal}`, and `error` when the task failed.
    #[schema(value_type = Object)]
    data: serde_json::Value,
    updated_at: Rfc3339,
}

fn task_data(progress: &TaskProgress) -> serde_json::Value {
    let mut data = json!({
        "messagesSent": progress.sent,
        "messagesScanned": progress.scanned,
        "messagesTotal": progress.total,
    });
    if let (Some(error), Some(object)) = (&progress.error, data.as_object_mut()) {
        object.insert("error".into(), json!(error));
    }
    data
}

impl From<BackgroundTask> for BackgroundTaskOut {
    fn from(task: BackgroundTask) -> Self {
        Self {
            data: task_data(&task.progress),
            id: task.id.into_string(),
            status: task.status.name(),
            task: task.kind.name(),
            updated_at: Rfc3339(task.updated_at),
        }
    }
}

/// Parses one RFC 3339 field of the body.
fn body_time(field: &str, text: &str) -> Result<i64, ApiError> {
    crate::time::parse(text).map_err(|msg| ApiError::body(&[field], format!("not an RFC 3339 timestamp: {msg}")))
}

/// Checks the window, finds the endpoint, records the task and starts it.
async fn start(
    state: &ApiState,
    kind: TaskKind,
    app_id: &str,
    endpoint_id: &str,
    input: WindowIn,
) -> Result<(StatusCode, Json<TaskStartedOut>), ApiError> {
    let since = body_time("since", &input.since)?;
    let until = input.until.as_deref().map(|text| body_time("until", text)).transpose()?;
    let now = now_ms();
    let window = recovery_window(since, until, now).map_err(|err| ApiError::body(&[err.field()], err))?;

    let app = find_app(state, app_id).await?;
    let endpoint = find_endpoint(state, &app.id, endpoint_id).await?;
    let total = match kind {
        TaskKind::Recover => state.store.recovery.count_failed_deliveries(&endpoint.id, window).await,
        TaskKind::ReplayMissing => state.store.recovery.count_messages(&app.id, window).await,
    }?;
    let task = BackgroundTask {
        id: TaskId::at(now),
        kind,
        app_id: app.id,
        endpoint_id: endpoint.id,
        status: TaskStatus::Running,
        window,
        cursor: None,
        progress: TaskProgress { total, ..TaskProgress::default() },
        created_at: now,
        updated_at: now,
    };
    state.store.recovery.create_background_task(&task).await?;
    let out = TaskStartedOut {
        id: task.id.to_string(),
        status: task.status.name(),
        task: kind.name(),
        updated_at: Rfc3339(task.updated_at),
    };
    // Recovering says the endpoint works again: don't let a paused circuit breaker hold the re-sends back.
    (state.on_endpoint_changed)(&task.endpoint_id);
    state.tasks.spawn(task);
    Ok((StatusCode::ACCEPTED, Json(out)))
}

/// Re-queues the endpoint's failed deliveries of messages created in the window, with a fresh retry schedule.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover/",
    operation_id = "v1.endpoint.recover",
    tag = "Endpoint",
    params(EndpointPath),
    request_body = WindowIn,
    responses((status = 202, description = "The task started.", body = TaskStartedOut), (status = 404, response = NotFound), AdminBodyErrors),
)]
async fn recover(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<WindowIn>,
) -> Result<(StatusCode, Json<TaskStartedOut>), ApiError> {
    start(&state, TaskKind::Recover, &app_id, &endpoint_id, input).await
}

/// Sends the endpoint every message of the window it accepts and never had a delivery of.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/replay-missing/",
    operation_id = "v1.endpoint.replay-missing",
    tag = "Endpoint",
    params(EndpointPath),
    request_body = WindowIn,
    responses((status = 202, description = "The task started.", body = TaskStartedOut), (status = 404, response = NotFound), AdminBodyErrors),
)]
async fn replay_missing(
    State(state): State<ApiState>,
    ApiPath((app_id, endpoint_id)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<WindowIn>,
) -> Result<(StatusCode, Json<TaskStartedOut>), ApiError> {
    start(&state, TaskKind::ReplayMissing, &app_id, &endpoint_id, input).await
}

/// Reads the `status` and `task` filters. `None` means the filter can match nothing (a Svix task type
/// hookrelay never runs).
fn task_filter(query: &QueryParams) -> Result<Option<TaskFilter>, ApiError> {
    let status = query
        .get("status")
        .map(|name| {
            TaskStatus::from_name(name).ok_or_else(|| {
                ApiError::query("status", format!("must be `running`, `finished` or `failed`, not `{name}`"))
            })
        })
        .transpose()?;
    let kind = match query.get("task") {
        None => None,
        Some(name) => match TaskKind::from_name(name) {
            Some(kind) => Some(kind),
            None if SVIX_TASK_TYPES.contains(&name) => return Ok(None),
            None => {
                return Err(ApiError::query(
                    "task",
                    format!("must be one of {}, not `{name}`", SVIX_TASK_TYPES.join(", ")),
                ));
            }
        },
    };
    Ok(Some(TaskFilter { status, kind }))
}

#[utoipa::path(
    get,
    path = "/api/v1/background-task/",
    operation_id = "v1.background-task.list",
    tag = "Background Task",
    params(
        PageParams,
        ("status" = Option<String>, Query, description = "`running`, `finished` or `failed`."),
        ("task" = Option<String>, Query, description = "A Svix task type, e.g. `endpoint.recover`, `endpoint.replay`."),
    ),
    responses((status = 200, description = "A page of tasks, newest first.", body = ListOut<BackgroundTaskOut>), AdminErrors),
)]
async fn list(State(state): State<ApiState>, query: QueryParams) -> Result<Json<ListOut<BackgroundTaskOut>>, ApiError> {
    let request = page_request(&query, Order::Descending)?;
    let Some(filter) = task_filter(&query)? else {
        return Ok(Json(ListOut { data: Vec::new(), iterator: None, prev_iterator: None, done: true }));
    };
    let page = state.store.recovery.list_background_tasks(&filter, &request).await?;
    Ok(Json(ListOut::from_page(page, &request, |task| task.id.to_string(), |task| Ok(task.into()))?))
}

#[utoipa::path(
    get,
    path = "/api/v1/background-task/{task_id}/",
    operation_id = "v1.background-task.get",
    tag = "Background Task",
    params(("task_id" = String, Path, description = "The task's id (`qtask_…`).")),
    responses((status = 200, description = "The task and its progress.", body = BackgroundTaskOut), (status = 404, response = NotFound), AdminErrors),
)]
async fn read(
    State(state): State<ApiState>,
    ApiPath(task_id): ApiPath<String>,
) -> Result<Json<BackgroundTaskOut>, ApiError> {
    let task = state.store.recovery.get_background_task(&task_id).await.or_not_found("background task", &task_id)?;
    Ok(Json(task.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> QueryParams {
        QueryParams::from_uri(&format!("/x?{q}").parse().expect("test uri")).expect("parses")
    }

    fn check(q: &str, expected: Result<Option<TaskFilter>, ()>) {
        assert_eq!(task_filter(&query(q)).map_err(|_| ()), expected, "{q}");
    }

    #[test]
    fn list_filters() {
        check("", Ok(Some(TaskFilter::default())));
        check("status=running", Ok(Some(TaskFilter { status: Some(TaskStatus::Running), kind: None })));
        check("task=endpoint.replay", Ok(Some(TaskFilter { status: None, kind: Some(TaskKind::ReplayMissing) })));
        check(
            "task=endpoint.recover&status=failed",
            Ok(Some(TaskFilter { status: Some(TaskStatus::Failed), kind: Some(TaskKind::Recover) })),
        );
        check("task=application.stats", Ok(None));
        check("task=nonsense", Err(()));
        check("status=done", Err(()));
    }

    #[test]
    fn data_carries_svix_messages_sent_and_the_error_of_a_failed_task() {
        let progress = TaskProgress { sent: 2, scanned: 3, total: 4, error: None };
        assert_eq!(task_data(&progress), json!({"messagesSent": 2, "messagesScanned": 3, "messagesTotal": 4}));
        let failed = TaskProgress { error: Some("gone".into()), ..progress };
        assert_eq!(task_data(&failed)["error"], json!("gone"));
    }
}
