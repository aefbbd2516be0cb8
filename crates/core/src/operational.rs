//! Operational events: what hookrelay tells the operator about (endpoints created, changed, disabled or
//! deleted; deliveries failing, exhausted or recovered), with Svix's operational-webhook payload shapes, and
//! the [`EventSink`] the API and the engine emit them into. Sending them is the engine's job.

use serde_json::{Value, json};

use crate::rfc3339::format as rfc3339;
use crate::time::UnixMillis;

/// Who an endpoint event is about.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointRef {
    pub app_id: String,
    pub app_uid: Option<String>,
    pub endpoint_id: String,
    pub endpoint_uid: Option<String>,
}

/// Which delivery an attempt event is about, and how its last attempt went.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptRef {
    pub app_id: String,
    pub endpoint_id: String,
    pub msg_id: String,
    pub msg_event_id: Option<String>,
    pub attempt_id: String,
    pub response_status_code: u16,
    pub timestamp: UnixMillis,
}

/// Why an endpoint was disabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisableTrigger {
    /// By hookrelay: the endpoint answered 410 Gone, or failed for too long.
    Automatic,
    /// By a user, through the API.
    Manual,
}

#[derive(Clone, Debug, PartialEq)]
pub enum OperationalEvent {
    EndpointCreated(EndpointRef),
    EndpointUpdated(EndpointRef),
    EndpointDeleted(EndpointRef),
    EndpointDisabled {
        endpoint: EndpointRef,
        trigger: DisableTrigger,
        fail_since: Option<UnixMillis>,
    },
    /// The 4th failed attempt of a delivery.
    AttemptFailing(AttemptRef),
    /// The last attempt the schedule allows failed.
    AttemptExhausted(AttemptRef),
    /// Delivered after 4 or more failed attempts.
    AttemptRecovered(AttemptRef),
}

/// Where operational events go. Emitting never blocks or fails: a sink that cannot keep up drops events
/// and says so in the logs.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: OperationalEvent);
}

/// A sink for when no operational webhook is configured.
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _: OperationalEvent) {}
}

impl OperationalEvent {
    /// The event type, as in Svix (`endpoint.disabled`, `message.attempt.exhausted`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::EndpointCreated(_) => "endpoint.created",
            Self::EndpointUpdated(_) => "endpoint.updated",
            Self::EndpointDeleted(_) => "endpoint.deleted",
            Self::EndpointDisabled { .. } => "endpoint.disabled",
            Self::AttemptFailing(_) => "message.attempt.failing",
            Self::AttemptExhausted(_) => "message.attempt.exhausted",
            Self::AttemptRecovered(_) => "message.attempt.recovered",
        }
    }

    /// The Svix-shaped body: `{"type": …, "data": {…}}`.
    pub fn to_json(&self) -> Value {
        let data = match self {
            Self::EndpointCreated(ep) | Self::EndpointUpdated(ep) | Self::EndpointDeleted(ep) => endpoint_json(ep),
            Self::EndpointDisabled { endpoint, trigger, fail_since } => {
                let mut data = endpoint_json(endpoint);
                data["trigger"] = json!(match trigger {
                    DisableTrigger::Automatic => "automatic",
                    DisableTrigger::Manual => "manual",
                });
                if let Some(since) = fail_since {
                    data["failSince"] = json!(rfc3339(*since));
                }
                data
            }
            Self::AttemptFailing(attempt) | Self::AttemptExhausted(attempt) | Self::AttemptRecovered(attempt) => {
                json!({
                    "appId": attempt.app_id,
                    "endpointId": attempt.endpoint_id,
                    "msgId": attempt.msg_id,
                    "msgEventId": attempt.msg_event_id,
                    "lastAttempt": {
                        "id": attempt.attempt_id,
                        "responseStatusCode": attempt.response_status_code,
                        "timestamp": rfc3339(attempt.timestamp),
                    },
                })
            }
        };
        json!({ "type": self.kind(), "data": data })
    }

    /// One line for a chat channel (Slack or Discord incoming webhooks).
    pub fn summary(&self) -> String {
        match self {
            Self::EndpointCreated(ep) => format!("hookrelay: endpoint {} created in app {}", ep.endpoint_id, ep.app_id),
            Self::EndpointUpdated(ep) => format!("hookrelay: endpoint {} updated in app {}", ep.endpoint_id, ep.app_id),
            Self::EndpointDeleted(ep) => {
                format!("hookrelay: endpoint {} deleted from app {}", ep.endpoint_id, ep.app_id)
            }
            Self::EndpointDisabled { endpoint, trigger, .. } => format!(
                "hookrelay: endpoint {} in app {} was disabled ({})",
                endpoint.endpoint_id,
                endpoint.app_id,
                match trigger {
                    DisableTrigger::Automatic => "it kept failing or answered 410 Gone",
                    DisableTrigger::Manual => "by a user",
                }
            ),
            Self::AttemptFailing(a) => format!(
                "hookrelay: message {} keeps failing to reach endpoint {} (last status {})",
                a.msg_id,
                a.endpoint_id,
                status_text(a.response_status_code)
            ),
            Self::AttemptExhausted(a) => format!(
                "hookrelay: gave up delivering message {} to endpoint {} (last status {})",
                a.msg_id,
                a.endpoint_id,
                status_text(a.response_status_code)
            ),
            Self::AttemptRecovered(a) => {
                format!("hookrelay: message {} reached endpoint {} after failing", a.msg_id, a.endpoint_id)
            }
        }
    }
}

fn endpoint_json(ep: &EndpointRef) -> Value {
    json!({
        "appId": ep.app_id,
        "appUid": ep.app_uid,
        "endpointId": ep.endpoint_id,
        "endpointUid": ep.endpoint_uid,
    })
}

fn status_text(code: u16) -> String {
    if code == 0 { "no response".into() } else { code.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_events_have_svix_shape() {
        let event = OperationalEvent::AttemptExhausted(AttemptRef {
            app_id: "app_1".into(),
            endpoint_id: "ep_1".into(),
            msg_id: "msg_1".into(),
            msg_event_id: Some("evt_1".into()),
            attempt_id: "atmpt_1".into(),
            response_status_code: 500,
            timestamp: 0,
        });
        assert_eq!(
            event.to_json(),
            json!({"type": "message.attempt.exhausted", "data": {"appId": "app_1", "endpointId": "ep_1",
                "msgId": "msg_1", "msgEventId": "evt_1",
                "lastAttempt": {"id": "atmpt_1", "responseStatusCode": 500, "timestamp": "1970-01-01T00:00:00.000Z"}}})
        );
    }

    #[test]
    fn disabled_events_say_why() {
        let endpoint =
            EndpointRef { app_id: "app_1".into(), app_uid: None, endpoint_id: "ep_1".into(), endpoint_uid: None };
        let event =
            OperationalEvent::EndpointDisabled { endpoint, trigger: DisableTrigger::Automatic, fail_since: Some(0) };
        let body = event.to_json();
        assert_eq!(body["type"], "endpoint.disabled");
        assert_eq!(body["data"]["trigger"], "automatic");
        assert_eq!(body["data"]["failSince"], "1970-01-01T00:00:00.000Z");
        assert!(event.summary().contains("ep_1"));
    }
}
