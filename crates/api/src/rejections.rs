//! Rejected ingest requests, counted in memory per source, reason and minute and written to the store every
//! few seconds ([`RejectionLog`]), so that a flood of forged requests costs a counter increment each, not a row.
//!
//! What is kept of a rejected request is one [`sample`] per source, reason and minute: why it was refused, its
//! header names and (truncated) values with signatures and credentials replaced by their length, and its body's
//! size, never the body. Memory is bounded ([`MAX_PENDING`] counters between two writes); a crash loses at most
//! the counts of the last few seconds, which is acceptable since nothing was acknowledged for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use hookrelay_core::SourceId;
use hookrelay_core::model::{InboundRejections, minute_of};
use hookrelay_core::time::UnixMillis;
use hookrelay_store::Inbound;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How often counted rejections are written to the store.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);
/// Most (source, reason, minute) counters held between two writes. Sources are the operator's and reasons a
/// fixed set, so this is only reached with thousands of sources flooded at once; beyond it rejections are
/// dropped from the statistics (and the number dropped is logged), never from memory bounds.
pub const MAX_PENDING: usize = 4096;
/// Most bytes of header names and values one sample keeps; the headers beyond are only counted.
pub const SAMPLE_HEADER_BYTES: usize = 1024;
/// Most characters of one header value kept in a sample.
const SAMPLE_VALUE_CHARS: usize = 128;
/// Most characters of the refusal's detail kept in a sample.
const SAMPLE_DETAIL_CHARS: usize = 256;
/// Parts of header names whose values are credentials or signatures: a sample keeps only their length.
const SECRET_HEADER_PARTS: &[&str] =
    &["auth", "sig", "token", "secret", "key", "cookie", "hmac", "hash", "digest", "password", "session", "credential"];

type Key = (SourceId, &'static str, UnixMillis);

struct Tally {
    count: u64,
    first_seen: UnixMillis,
    last_seen: UnixMillis,
    sample: String,
}

#[derive(Default)]
struct Pending {
    tallies: HashMap<Key, Tally>,
    /// Rejections not counted because [`MAX_PENDING`] counters were already held.
    dropped: u64,
}

/// Counts of rejected requests not yet written, and the writer of them.
pub struct RejectionLog {
    store: Arc<dyn Inbound>,
    pending: Mutex<Pending>,
    /// Held while a batch is on its way to the store, so that a reader who flushed first sees every count.
    flushing: tokio::sync::Mutex<()>,
}

impl RejectionLog {
    pub fn new(store: Arc<dyn Inbound>) -> Self {
        Self { store, pending: Mutex::default(), flushing: tokio::sync::Mutex::new(()) }
    }

    /// Counts one rejected request received at `at`. `sample` is called only for the first request of its
    /// source, reason and minute since the last write. Returns whether this was such a first request (the
    /// caller logs those, so a flood does not flood the log either).
    pub fn add(
        &self,
        source_id: &SourceId,
        reason: &'static str,
        at: UnixMillis,
        sample: impl FnOnce() -> String,
    ) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = (source_id.clone(), reason, minute_of(at));
        if let Some(tally) = pending.tallies.get_mut(&key) {
            tally.count += 1;
            tally.first_seen = tally.first_seen.min(at);
            tally.last_seen = tally.last_seen.max(at);
            return false;
        }
        if pending.tallies.len() >= MAX_PENDING {
            pending.dropped += 1;
            return false;
        }
        pending.tallies.insert(key, Tally { count: 1, first_seen: at, last_seen: at, sample: sample() });
        true
    }

    /// Writes the counts held so far to the store. A failed write is logged and its counts are dropped: they are
    /// statistics of requests that were refused anyway, and retrying them could hold memory while the database
    /// is down.
    pub async fn flush(&self) {
        let _one_at_a_time = self.flushing.lock().await;
        let (tallies, dropped) = {
            let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let taken = std::mem::take(&mut *pending);
            (taken.tallies, taken.dropped)
        };
        if dropped > 0 {
            tracing::warn!(
                dropped,
                limit = MAX_PENDING,
                "rejected inbound requests not counted: too many sources were rejecting requests at once"
            );
        }
        if tallies.is_empty() {
            return;
        }
        let rows: Vec<InboundRejections> = tallies
            .into_iter()
            .map(|((source_id, reason, minute), tally)| InboundRejections {
                source_id,
                reason: reason.to_owned(),
                minute,
                count: tally.count,
                first_seen: tally.first_seen,
                last_seen: tally.last_seen,
                sample: Some(tally.sample),
            })
            .collect();
        if let Err(err) = self.store.record_rejections(&rows).await {
            let lost: u64 = rows.iter().map(|row| row.count).sum();
            tracing::warn!(error = %err, lost, "writing the counts of rejected inbound requests failed");
        }
    }

    /// Writes the counts every [`FLUSH_EVERY`] until the returned handle is stopped, which writes them once more.
    pub fn spawn_flusher(self: &Arc<Self>) -> Flusher {
        let stop = Arc::new(Notify::new());
        let (log, stopped) = (self.clone(), stop.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(FLUSH_EVERY) => log.flush().await,
                    () = stopped.notified() => {
                        log.flush().await;
                        return;
                    }
                }
            }
        });
        Flusher { stop, task }
    }
}

/// The background writer of a [`RejectionLog`].
pub struct Flusher {
    stop: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Flusher {
    /// Writes what is still counted and ends the writer (when the server stops, after the last request).
    pub async fn stop(self) {
        // `notify_one` keeps the wake-up for a writer that is busy flushing rather than waiting.
        self.stop.notify_one();
        let _ = self.task.await;
    }
}

/// What an operator sees of one rejected request: `{"detail", "headers": {name: value}, "headersOmitted",
/// "bodyBytes"}`. Values of headers that carry signatures or credentials (by name, plus `signature_header`, the
/// one the source's provider reads) become `[redacted, N bytes]`; other values are cut to 128 characters, and
/// headers beyond [`SAMPLE_HEADER_BYTES`] are only counted. `body_bytes` is `None` when the body was not read.
pub fn sample(detail: &str, headers: &HeaderMap, signature_header: Option<&str>, body_bytes: Option<usize>) -> String {
    let mut kept = Map::new();
    let (mut budget, mut omitted) = (SAMPLE_HEADER_BYTES, 0_usize);
    for (name, value) in headers {
        let name = name.as_str();
        let secret = SECRET_HEADER_PARTS.iter().any(|part| name.contains(part))
            || signature_header.is_some_and(|header| header.eq_ignore_ascii_case(name));
        let value = if secret {
            format!("[redacted, {} bytes]", value.len())
        } else {
            match value.to_str() {
                Ok(text) => truncate(text, SAMPLE_VALUE_CHARS),
                Err(_) => format!("[not visible ASCII, {} bytes]", value.len()),
            }
        };
        // Quotes and backslashes double when the sample is written as JSON.
        let cost = name.len() + value.len() + value.matches(['"', '\\']).count();
        if kept.contains_key(name) || cost > budget {
            omitted += 1;
            continue;
        }
        budget -= cost;
        kept.insert(name.to_owned(), Value::String(value));
    }
    json!({
        "detail": truncate(detail, SAMPLE_DETAIL_CHARS),
        "headers": kept,
        "headersOmitted": omitted,
        "bodyBytes": body_bytes,
    })
    .to_string()
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                value.parse().expect("a header value"),
            );
        }
        map
    }

    fn parsed(sample: &str) -> Value {
        serde_json::from_str(sample).expect("a sample is JSON")
    }

    #[test]
    fn signatures_and_credentials_keep_only_their_length() {
        let got = parsed(&sample(
            "no signature matches",
            &headers(&[
                ("stripe-signature", "t=1,v1=abcdef"),
                ("authorization", "Bearer sk_live_1"),
                ("x-corp-mac", "0123456789"),
                ("x-api-key", "k"),
                ("user-agent", "Stripe/1.0"),
                ("content-type", "application/json"),
            ]),
            Some("X-Corp-Mac"),
            Some(42),
        ));
        assert_eq!(
            got,
            json!({
                "detail": "no signature matches",
                "headers": {
                    "stripe-signature": "[redacted, 13 bytes]", "authorization": "[redacted, 16 bytes]",
                    "x-corp-mac": "[redacted, 10 bytes]", "x-api-key": "[redacted, 1 bytes]",
                    "user-agent": "Stripe/1.0", "content-type": "application/json"
                },
                "headersOmitted": 0,
                "bodyBytes": 42
            })
        );
    }

    #[test]
    fn a_sample_stays_small_whatever_the_request() {
        let long = "x".repeat(8000);
        let many: Vec<(String, String)> = (0..200).map(|i| (format!("x-filler-{i}"), long.clone())).collect();
        let pairs: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let text = sample(&"d".repeat(10_000), &headers(&pairs), None, None);
        assert!(text.len() < SAMPLE_HEADER_BYTES + 600, "{} bytes", text.len());
        let got = parsed(&text);
        let kept = got["headers"].as_object().expect("headers");
        assert!(!kept.is_empty() && kept.values().all(|v| v.as_str().is_some_and(|v| v.chars().count() <= 129)));
        assert_eq!(got["headersOmitted"].as_u64(), Some(200 - kept.len() as u64));
        assert_eq!(got["bodyBytes"], Value::Null);
    }

    /// A store in a fresh file under the temp directory, with one source; removed by the caller.
    async fn store_with_source() -> (hookrelay_store::Store, SourceId, std::path::PathBuf) {
        use hookrelay_core::AppId;
        use hookrelay_core::inbound::Provider;
        use hookrelay_core::model::{Application, Source, SourceSecrets};
        use hookrelay_store::sqlite::SqliteStore;

        let dir = std::env::temp_dir().join(format!("hookrelay-rejections-{}", SourceId::new()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let store = hookrelay_store::Store::new(SqliteStore::open(&dir.join("test.db")).expect("a store"));
        let app = Application {
            id: AppId::new(),
            uid: None,
            name: "a".into(),
            rate_limit: None,
            metadata: Default::default(),
            created_at: 0,
            updated_at: 0,
        };
        store.catalog.create_app(&app).await.expect("an app");
        let source = Source {
            id: SourceId::new(),
            uid: None,
            name: "s".into(),
            app_id: app.id,
            provider: Provider::Stripe,
            secrets: SourceSecrets::new("whsec_x".into()),
            tolerance_secs: 300,
            rate_limit: None,
            forward_headers: Vec::new(),
            created_at: 0,
            updated_at: 0,
        };
        store.inbound.create_source(&source).await.expect("a source");
        (store, source.id, dir)
    }

    #[tokio::test]
    async fn rejections_are_counted_in_memory_and_written_per_source_reason_and_minute() {
        let (store, source, dir) = store_with_source().await;
        let log = RejectionLog::new(store.inbound.clone());
        let minute = minute_of(hookrelay_core::time::now_ms());
        let samples = std::cell::Cell::new(0);
        let add = |reason, at: i64| {
            log.add(&source, reason, at, || {
                samples.set(samples.get() + 1);
                format!(r#"{{"detail":"{reason} at +{}"}}"#, at - minute)
            })
        };
        let firsts = [
            add("signature_mismatch", minute + 5),
            add("signature_mismatch", minute + 1),
            add("signature_mismatch", minute + 9),
            add("missing_header", minute + 2),
            add("signature_mismatch", minute + 60_000),
        ];
        assert_eq!(firsts, [true, false, false, true, true], "the first of each source, reason and minute");
        assert_eq!(samples.get(), 3, "one sample per counter");
        log.flush().await;

        let rows = store
            .inbound
            .list_inbound_rejections(
                &source,
                &hookrelay_store::PageRequest::first(10, hookrelay_store::Order::Descending),
            )
            .await
            .expect("the rows")
            .items;
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.reason.as_str(), r.minute - minute, r.count, r.first_seen - minute, r.last_seen - minute))
            .collect();
        assert_eq!(
            got,
            [
                ("signature_mismatch", 60_000, 1, 60_000, 60_000),
                ("signature_mismatch", 0, 3, 1, 9),
                ("missing_header", 0, 1, 2, 2)
            ]
        );
        assert_eq!(rows[1].sample.as_deref(), Some(r#"{"detail":"signature_mismatch at +5"}"#));
        // Written counts are gone from memory: the next request of the same minute starts a new counter, which
        // adds up in the store.
        assert!(log.add(&source, "signature_mismatch", minute + 10, String::new));
        log.flush().await;
        assert_eq!(store.inbound.inbound_counts(&source, None).await.expect("counts").rejected(), 6);
        drop((log, store));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn the_counters_held_in_memory_are_bounded() {
        let (store, source, dir) = store_with_source().await;
        let log = RejectionLog::new(store.inbound.clone());
        for minute in 0..MAX_PENDING as i64 {
            assert!(log.add(&source, "signature_mismatch", minute * 60_000, String::new));
        }
        assert!(!log.add(&source, "missing_header", 0, String::new), "a new counter beyond the bound");
        assert!(!log.add(&source, "signature_mismatch", 0, String::new), "an existing counter");
        {
            let pending = log.pending.lock().expect("not poisoned");
            assert_eq!((pending.tallies.len(), pending.dropped), (MAX_PENDING, 1));
            assert_eq!(pending.tallies[&(source.clone(), "signature_mismatch", 0)].count, 2);
        }
        log.flush().await;
        assert_eq!(
            store.inbound.inbound_counts(&source, None).await.expect("counts").rejected(),
            MAX_PENDING as u64 + 1
        );
        let pending = log.pending.lock().expect("not poisoned");
        assert_eq!((pending.tallies.len(), pending.dropped), (0, 0), "a write starts over");
        drop(pending);
        drop((log, store));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn repeated_header_names_are_kept_once() {
        let got = parsed(&sample("d", &headers(&[("x-a", "1"), ("x-a", "2")]), None, Some(0)));
        assert_eq!((&got["headers"], &got["headersOmitted"]), (&json!({"x-a": "1"}), &json!(1)));
    }
}
