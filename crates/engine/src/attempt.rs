//! One delivery attempt, from request to outcome: send it (`send`), decide what happens next (`hookrelay_core::retry`),
//! tell the operator when it matters (operational events), and build the attempt record.

use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::AttemptId;
use hookrelay_core::model::{Attempt, DeliveryStatus, TriggerType};
use hookrelay_core::netpolicy::AddressPolicy;
use hookrelay_core::operational::{AttemptRef, DisableTrigger, EndpointRef, EventSink, OperationalEvent};
use hookrelay_core::retry::{self, Answer, Decision, NextStep, RetryPolicy};
use hookrelay_core::time::now_ms;
use hookrelay_core::{rfc3339, text};
use hookrelay_live::Live;
use hookrelay_live::feed::{self, AttemptEvent};
use hookrelay_metrics::{AttemptResult, DisableReason, Metrics};
use hookrelay_store::{AttemptOutcome, ClaimedDelivery};
use hookrelay_transform::{Method, Sandbox, Transformed, Webhook};
use serde_json::value::RawValue;

use crate::{DispatcherConfig, EngineError, egress, send};

/// Everything an attempt needs besides the delivery itself.
pub struct Attempter {
    client: reqwest::Client,
    /// The server's policy; an endpoint's own rules replace parts of it.
    policy: RetryPolicy,
    url_rules: egress::UrlRules,
    events: Arc<dyn EventSink>,
    metrics: Arc<Metrics>,
    /// Where endpoints' transformations run; `None` on a dispatcher started without one.
    sandbox: Option<Sandbox>,
    /// `hookrelay listen` sessions, and the feed of attempts `hookrelay tail` follows.
    live: Arc<Live>,
    delivery_timeout: Duration,
}

/// What the endpoint's transformation (if any) made of a delivery.
enum Prepared {
    Stored,
    Transformed(Transformed),
    /// The transformation set `cancel`: nothing is sent, and the delivery is done.
    Cancelled,
    /// The transformation failed; the attempt fails with this reason and is retried like any failure.
    Failed(String),
    /// The message's content was expunged or purged: nothing can be sent, now or later.
    Expunged,
}

/// The response recorded for a delivery its transformation cancelled.
pub const CANCELLED: &str = "not sent: cancelled by the endpoint's transformation";
/// The response recorded for a delivery whose message's content is gone.
pub const EXPUNGED: &str = "not sent: the message's content was expunged or its retention ended";

impl Attempter {
    pub fn new(config: &DispatcherConfig, events: Arc<dyn EventSink>) -> Result<Self, EngineError> {
        Ok(Self {
            client: build_client(config)?,
            policy: RetryPolicy { retry: config.retry.clone(), retry_client_errors: config.retry_client_errors },
            url_rules: egress::UrlRules { policy: address_policy(config), https_only: config.https_only },
            events,
            metrics: config.metrics.clone(),
            sandbox: config.sandbox.clone(),
            live: config.live.clone(),
            delivery_timeout: config.delivery_timeout,
        })
    }

    /// Runs the endpoint's transformation on the delivery, if it has one.
    async fn prepare(&self, delivery: &ClaimedDelivery) -> Prepared {
        if delivery.payload.is_empty() {
            return Prepared::Expunged;
        }
        let Some(code) = &delivery.transformation else { return Prepared::Stored };
        let Some(sandbox) = &self.sandbox else {
            return Prepared::Failed("the endpoint has a transformation, but this server runs none".into());
        };
        let Ok(payload) = RawValue::from_string(delivery.payload.to_string()) else {
            return Prepared::Failed("the transformation needs a JSON payload".into());
        };
        let timestamp = rfc3339::format(delivery.msg_created_at);
        let webhook = Webhook {
            method: Method::Post,
            url: &delivery.url,
            payload: &payload,
            event_type: &delivery.event_type,
            msg_id: delivery.msg_id.as_str(),
            event_id: delivery.event_id.as_deref(),
            timestamp: &timestamp,
        };
        match sandbox.run(code.clone(), &webhook).await {
            Ok(transformed) if transformed.cancel => Prepared::Cancelled,
            Ok(transformed) => Prepared::Transformed(transformed),
            Err(err) => Prepared::Failed(err.to_string()),
        }
    }

    /// Sends the delivery once and returns what to record: the attempt and the delivery's next step.
    pub async fn attempt(&self, delivery: ClaimedDelivery) -> AttemptOutcome {
        let started_at = now_ms();
        let prepared = self.prepare(&delivery).await;
        let transport =
            send::Transport { client: &self.client, listeners: &self.live.listeners, timeout: self.delivery_timeout };
        let result = match &prepared {
            Prepared::Stored => {
                send::send(&transport, &delivery, &send::Request::stored(&delivery), &self.url_rules).await
            }
            Prepared::Transformed(transformed) => {
                let request = send::Request {
                    method: match transformed.method {
                        Method::Post => reqwest::Method::POST,
                        Method::Put => reqwest::Method::PUT,
                    },
                    url: &transformed.url,
                    body: transformed.payload.as_bytes(),
                    extra_headers: Some(&transformed.headers),
                };
                send::send(&transport, &delivery, &request, &self.url_rules).await
            }
            Prepared::Cancelled => send::SendResult::not_sent(CANCELLED.into()),
            Prepared::Failed(reason) => send::SendResult::not_sent(reason.clone()),
            Prepared::Expunged => send::SendResult::not_sent(EXPUNGED.into()),
        };
        let cancelled = matches!(prepared, Prepared::Cancelled);
        let expunged = matches!(prepared, Prepared::Expunged);
        // The attempt records where it went: the transformation may have changed the URL.
        let sent_to = match prepared {
            Prepared::Transformed(transformed) => Some(transformed.url),
            _ => None,
        };
        let delivered = cancelled || retry::is_success(result.status_code);
        let answer = Answer { status_code: result.status_code, retry_after: result.retry_after };
        let policy = self.policy.for_endpoint(&delivery.retry);
        let decision = if cancelled {
            // Done, as a delivery is when it succeeds: nothing to retry, and nothing the breaker should count.
            Decision { next: NextStep::Succeeded, disable_endpoint: false }
        } else if expunged {
            // A failure no retry can mend.
            Decision { next: NextStep::GiveUp, disable_endpoint: false }
        } else {
            retry::decide(answer, delivery.manual, delivery.attempts, &policy, now_ms(), rand::random::<f64>())
        };
        let next = decision.next;
        self.record_metrics(&result, delivered, decision.disable_endpoint);
        if decision.disable_endpoint {
            tracing::warn!(msg_id = %delivery.msg_id, endpoint_id = %delivery.endpoint_id,
                "endpoint answered 410 Gone; disabling it");
        }
        let attempt_id = AttemptId::at(started_at);
        self.emit_events(&delivery, &attempt_id, result.status_code, started_at, delivered, decision);
        // Successes at debug: at thousands of deliveries a second, a line each would cost more than the
        // delivery. Failures are rarer and what operators look for. No URL, header, payload or signature.
        if delivered {
            tracing::debug!(app_id = %delivery.app_id, msg_id = %delivery.msg_id, endpoint_id = %delivery.endpoint_id,
                attempt_id = %attempt_id, status = result.status_code, duration_ms = result.duration_ms,
                attempt = delivery.attempts + 1, "delivered");
        } else {
            tracing::info!(app_id = %delivery.app_id, msg_id = %delivery.msg_id, endpoint_id = %delivery.endpoint_id,
                attempt_id = %attempt_id, status = result.status_code, duration_ms = result.duration_ms,
                attempt = delivery.attempts + 1, next = next.name(), retry_at_ms = next.retry_at(),
                "delivery attempt failed");
        }
        let attempt = Attempt {
            id: attempt_id,
            app_id: delivery.app_id,
            msg_id: delivery.msg_id,
            endpoint_id: delivery.endpoint_id,
            url: sent_to.unwrap_or(delivery.url),
            response: result.response,
            response_status_code: result.status_code,
            response_duration_ms: result.duration_ms,
            status: if delivered { DeliveryStatus::Success } else { DeliveryStatus::Fail },
            trigger_type: if delivery.manual { TriggerType::Manual } else { TriggerType::Scheduled },
            created_at: started_at,
        };
        if self.live.attempts.is_followed() {
            self.live.attempts.publish(followed(&attempt, &delivery.event_type, delivery.attempts + 1, next));
        }
        AttemptOutcome { attempt, next, disable_endpoint: decision.disable_endpoint }
    }

    /// Counts the attempt by outcome, with its duration, and the endpoint a 410 disables.
    fn record_metrics(&self, result: &send::SendResult, delivered: bool, disables_endpoint: bool) {
        let outcome = match (delivered, result.status_code) {
            (true, _) => AttemptResult::Success,
            (false, 0) => AttemptResult::Unreachable,
            (false, _) => AttemptResult::Fail,
        };
        let duration = Duration::from_millis(u64::try_from(result.duration_ms).unwrap_or(0));
        self.metrics.attempt_finished(outcome, duration);
        if disables_endpoint {
            self.metrics.endpoint_disabled(DisableReason::Gone);
        }
    }

    /// Tells the operator about this attempt when it matters: the 4th failure (`failing`), the last one
    /// (`exhausted`), a success after 4 or more failures (`recovered`), and a 410 that disabled the endpoint.
    fn emit_events(
        &self,
        delivery: &ClaimedDelivery,
        attempt_id: &AttemptId,
        status_code: u16,
        at: i64,
        delivered: bool,
        decision: Decision,
    ) {
        const FAILING_AFTER: u32 = 4;
        let attempt = || AttemptRef {
            app_id: delivery.app_id.to_string(),
            endpoint_id: delivery.endpoint_id.to_string(),
            msg_id: delivery.msg_id.to_string(),
            msg_event_id: delivery.event_id.clone(),
            attempt_id: attempt_id.to_string(),
            response_status_code: status_code,
            timestamp: at,
        };
        let failures = delivery.attempts + 1;
        if delivered {
            if delivery.attempts >= FAILING_AFTER {
                self.events.emit(OperationalEvent::AttemptRecovered(attempt()));
            }
        } else if !delivery.manual {
            if failures == FAILING_AFTER {
                self.events.emit(OperationalEvent::AttemptFailing(attempt()));
            }
            if decision.next == NextStep::GiveUp {
                self.events.emit(OperationalEvent::AttemptExhausted(attempt()));
            }
        }
        if decision.disable_endpoint {
            let endpoint = EndpointRef {
                app_id: delivery.app_id.to_string(),
                app_uid: None,
                endpoint_id: delivery.endpoint_id.to_string(),
                endpoint_uid: None,
            };
            self.events.emit(OperationalEvent::EndpointDisabled {
                endpoint,
                trigger: DisableTrigger::Automatic,
                fail_since: None,
            });
        }
    }
}

fn address_policy(config: &DispatcherConfig) -> Arc<AddressPolicy> {
    egress::address_policy(config.allow_private_endpoints, &config.whitelist_subnets)
}

/// The attempt as `hookrelay tail` shows it.
fn followed(attempt: &Attempt, event_type: &str, attempt_number: u32, next: NextStep) -> AttemptEvent {
    AttemptEvent {
        attempt_id: attempt.id.to_string(),
        app_id: attempt.app_id.to_string(),
        msg_id: attempt.msg_id.to_string(),
        endpoint_id: attempt.endpoint_id.to_string(),
        event_type: event_type.to_owned(),
        url: attempt.url.clone(),
        status_code: attempt.response_status_code,
        succeeded: attempt.status == DeliveryStatus::Success,
        duration_ms: attempt.response_duration_ms,
        at: attempt.created_at,
        attempt_number,
        next,
        response: text::prefix(&attempt.response, feed::MAX_RESPONSE_BYTES).to_owned(),
    }
}

fn build_client(config: &DispatcherConfig) -> Result<reqwest::Client, EngineError> {
    // TLS uses rustls with the ring provider (built with the C compiler every machine has, unlike aws-lc).
    // Installing fails harmlessly when a provider is already set.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .timeout(config.delivery_timeout)
        .connect_timeout(config.delivery_timeout.min(Duration::from_secs(10)))
        // Following a redirect would let an endpoint send us anywhere, private addresses included.
        .redirect(reqwest::redirect::Policy::none())
        // Proxy settings from the environment would route deliveries around the address checks; only the
        // configured egress proxy is used.
        .no_proxy()
        // The pool is keyed by host, and many endpoints often share one (a receiving service with a path per
        // customer): a cap below the requests in flight to that host would close and reopen connections all
        // the time. Idle connections still close after the pool's idle timeout.
        .pool_max_idle_per_host(config.max_in_flight.max(config.endpoint_concurrency));
    let policy = address_policy(config);
    match &config.egress_proxy {
        // The proxy resolves endpoint names itself, and our resolver would only see (and might refuse) the
        // proxy's own, operator-chosen address; IP-literal endpoints are still checked by `UrlRules`.
        Some(proxy) => {
            let proxy = reqwest::Proxy::all(proxy.as_str())
                .map_err(|e| EngineError::HttpClient(format!("invalid HOOKRELAY_EGRESS_PROXY: {e}")))?;
            builder = builder.proxy(proxy);
        }
        None if !policy.allows_everything() => {
            builder = builder.dns_resolver(Arc::new(egress::PolicyResolver::new(policy)));
        }
        None => {}
    }
    // reqwest's own message is only "builder error"; the cause (e.g. no CA certificates on the machine) is below it.
    builder.build().map_err(|err| EngineError::HttpClient(send::with_causes(err.to_string(), &err)))
}
