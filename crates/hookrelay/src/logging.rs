//! Log output: `tracing` to stderr, filtered by `HOOKRELAY_LOG` (default `info`), formatted as
//! `HOOKRELAY_LOG_FORMAT=pretty|json`.
//!
//! `json` is for log tools: one object per line with every field at the top level — `timestamp`, `level`,
//! `target`, `message`, the event's own fields and those of the spans it happened in (an API request's
//! `request_id`, see `hookrelay_api::access_log`), with no nested `fields` or `span` object. tracing-subscriber's
//! JSON format flattens an event's fields but nests its spans' fields, so [`FlatJson`] writes the line itself.
//! Numbers logged as numbers stay JSON numbers; hookrelay logs values as strings and numbers, not Rust `Debug`
//! text.
//!
//! `HOOKRELAY_LOG` sets the level of hookrelay's own code only. Every other crate is capped at `info`, whatever
//! the filter says: at `debug` and `trace` dependencies print what hookrelay promises never to log —
//! `tokio_postgres` each statement's parameters (endpoint and source secrets, header values, payloads), hyper and
//! h2 the headers and bodies of requests and deliveries, rustls the handshake. hookrelay's own debug and trace
//! lines name ids, statuses and durations, never a secret, header value or payload.

use std::fmt;

use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterExt, Targets};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt as subscriber_fmt};

/// The most a dependency may log, whatever `HOOKRELAY_LOG` asks for.
const DEPENDENCY_CEILING: LevelFilter = LevelFilter::INFO;

/// Installs the global subscriber; later calls (e.g. from tests starting several servers) are no-ops.
pub fn init(filter: &str, format: &str) {
    let requested = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let filter = requested.and(ceiling());
    let output = if format == "json" {
        flat_json(std::io::stderr).with_filter(filter).boxed()
    } else {
        // Colours only on a terminal: a journal, `docker logs` or a file would keep the escape codes.
        let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
        subscriber_fmt::layer().with_writer(std::io::stderr).with_ansi(colours).with_filter(filter).boxed()
    };
    let _ = tracing_subscriber::registry().with(output).try_init();
}

/// hookrelay's own targets pass at any level; every other target stops at [`DEPENDENCY_CEILING`].
fn ceiling() -> Targets {
    Targets::new().with_default(DEPENDENCY_CEILING).with_target("hookrelay", LevelFilter::TRACE)
}

/// The `json` output layer, writing to `writer`: spans keep their fields as JSON ([`JsonFields`]), which
/// [`FlatJson`] merges into each line.
fn flat_json<S, W>(writer: W) -> subscriber_fmt::Layer<S, JsonFields, FlatJson, W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    subscriber_fmt::layer().with_writer(writer).fmt_fields(JsonFields::new()).event_format(FlatJson)
}

/// One JSON object per event with every field at the top level. When names clash, the first one wins in this
/// order: `timestamp`, `level`, `target`, the event's fields, then the fields of its spans from the innermost
/// out (so an event's own `status` is not hidden by a span's).
struct FlatJson;

impl<S> FormatEvent<S, JsonFields> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut fields = FlatFields::default();
        event.record(&mut fields);
        let metadata = event.metadata();
        // A `log` record (from a dependency) arrives with target `log` and its real one in `log.target`.
        let target = fields.log_target.take().unwrap_or_else(|| metadata.target().to_owned());
        let mut line = vec![
            ("timestamp".to_owned(), Value::String(timestamp)),
            ("level".to_owned(), Value::from(metadata.level().as_str())),
            ("target".to_owned(), Value::String(target)),
        ];
        let mut add = |name: String, value: Value| {
            if !line.iter().any(|(taken, _)| *taken == name) {
                line.push((name, value));
            }
        };
        for (name, value) in fields.values {
            add(name, value);
        }
        for span in ctx.event_scope().into_iter().flatten() {
            let extensions = span.extensions();
            let Some(formatted) = extensions.get::<FormattedFields<JsonFields>>() else { continue };
            if let Ok(Value::Object(span_fields)) = serde_json::from_str::<Value>(&formatted.fields) {
                for (name, value) in span_fields {
                    add(name, value);
                }
            }
        }
        let object: Vec<String> =
            line.iter().map(|(name, value)| format!("{}:{value}", Value::String(name.clone()))).collect();
        writeln!(writer, "{{{}}}", object.join(","))
    }
}

/// An event's fields as JSON values: numbers and booleans as themselves, everything else as text.
#[derive(Default)]
struct FlatFields {
    values: Vec<(String, Value)>,
    log_target: Option<String>,
}

impl FlatFields {
    fn push(&mut self, field: &Field, value: Value) {
        match field.name() {
            "log.target" => self.log_target = value.as_str().map(str::to_owned),
            // Where in a dependency's source a `log` record came from: noise for an operator.
            "log.module_path" | "log.file" | "log.line" => {}
            name => self.values.push((name.to_owned(), value)),
        }
    }
}

impl Visit for FlatFields {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::json;
    use tracing::Level;

    use super::*;

    #[test]
    fn dependencies_are_capped_at_info_and_hookrelay_is_not() {
        let ceiling = ceiling();
        for (target, level, passes) in [
            ("hookrelay_store::sqlite", Level::TRACE, true),
            ("hookrelay_engine::attempt", Level::DEBUG, true),
            ("hookrelay", Level::TRACE, true),
            ("tokio_postgres::query", Level::DEBUG, false),
            ("tokio_postgres::query", Level::INFO, true),
            ("hyper::proto::h1::io", Level::TRACE, false),
            ("h2::codec", Level::DEBUG, false),
            ("reqwest::connect", Level::DEBUG, false),
            ("rustls::client", Level::TRACE, false),
            ("axum::rejection", Level::TRACE, false),
            ("postgres_protocol", Level::WARN, true),
        ] {
            assert_eq!(ceiling.would_enable(target, &level), passes, "{target} at {level}");
        }
    }

    /// What the `json` layer writes while `log` runs.
    fn written(log: impl FnOnce()) -> String {
        let written: Arc<Mutex<Vec<u8>>> = Arc::default();
        let sink = written.clone();
        let make_writer = move || Sink(sink.clone());
        let subscriber = tracing_subscriber::registry().with(flat_json(make_writer));
        tracing::subscriber::with_default(subscriber, log);
        String::from_utf8(written.lock().expect("log buffer").clone()).expect("UTF-8 log")
    }

    /// What the `json` layer writes while `log` runs, one parsed object per line.
    fn json_lines(log: impl FnOnce()) -> Vec<serde_json::Map<String, Value>> {
        written(log)
            .lines()
            .map(|line| match serde_json::from_str(line) {
                Ok(Value::Object(object)) => object,
                other => panic!("not a JSON object: {line} ({other:?})"),
            })
            .collect()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_are_flat_with_span_fields_beside_the_event_fields() {
        let lines = json_lines(|| {
            let request = tracing::error_span!("request", request_id = "req-1", status = "span's");
            request.in_scope(|| {
                tracing::info!(msg_id = "msg_1", attempt = 3u64, retry_at_ms = -5i64, ratio = 0.5, ok = true,
                    status = 422u64, error = %"refused", "delivery attempt failed");
            });
            tracing::warn!(instances = 2u64, "outside any span");
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        let line = &lines[0];
        assert!(line["timestamp"].as_str().is_some_and(|t| t.len() >= 20 && t.ends_with('Z')), "{line:?}");
        let mut rest = line.clone();
        rest.remove("timestamp");
        assert_eq!(
            Value::Object(rest),
            json!({
                "level": "INFO",
                "target": "hookrelay::logging::tests",
                "message": "delivery attempt failed",
                "msg_id": "msg_1",
                "attempt": 3,
                "retry_at_ms": -5,
                "ratio": 0.5,
                "ok": true,
                "status": 422,
                "error": "refused",
                "request_id": "req-1",
            })
        );
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["instances"], 2);
        assert!(!lines[1].contains_key("request_id"), "{:?}", lines[1]);
    }

    #[test]
    fn an_inner_span_field_hides_an_outer_one_of_the_same_name() {
        let lines = json_lines(|| {
            let outer = tracing::info_span!("outer", request_id = "outer", app_id = "app_1");
            let inner = tracing::info_span!(parent: &outer, "inner", request_id = "inner", attempt = 2u64);
            inner.in_scope(|| tracing::info!("inside"));
        });
        assert_eq!(lines[0]["request_id"], "inner");
        assert_eq!(lines[0]["app_id"], "app_1");
        assert_eq!(lines[0]["attempt"], 2);
        assert!(!lines[0].contains_key("fields") && !lines[0].contains_key("span") && !lines[0].contains_key("spans"));
    }

    #[test]
    fn a_line_starts_with_time_level_target_and_message() {
        let text = written(|| tracing::warn!(count = 2u64, "hello"));
        let (start, rest) = text.split_once(r#","target":"hookrelay::logging::tests","#).expect("the target");
        assert!(start.starts_with(r#"{"timestamp":""#) && start.ends_with(r#"","level":"WARN""#), "{text}");
        assert_eq!(rest, "\"message\":\"hello\",\"count\":2}\n");
    }

    #[test]
    fn a_log_record_keeps_its_own_target_and_drops_its_source_location() {
        // What `tracing-log` makes of a dependency's `log` record.
        let lines = json_lines(|| {
            tracing::info!(
                log.target = "tokio_postgres::connection",
                log.module_path = "tokio_postgres::connection",
                log.file = "src/connection.rs",
                log.line = 12u64,
                "connection closed"
            );
        });
        assert_eq!(lines[0]["target"], "tokio_postgres::connection");
        assert_eq!(lines[0]["message"], "connection closed");
        assert_eq!(lines[0].len(), 4, "{:?}", lines[0]);
    }
}
