//! Log output: `tracing` to stderr, filtered by `HOOKRELAY_LOG` (default `info`), formatted as
//! `HOOKRELAY_LOG_FORMAT=pretty|json`.
//!
//! `HOOKRELAY_LOG` sets the level of hookrelay's own code only. Every other crate is capped at `info`, whatever
//! the filter says: at `debug` and `trace` dependencies print what hookrelay promises never to log —
//! `tokio_postgres` each statement's parameters (endpoint and source secrets, header values, payloads), hyper and
//! h2 the headers and bodies of requests and deliveries, rustls the handshake. hookrelay's own debug and trace
//! lines name ids, statuses and durations, never a secret, header value or payload.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterExt, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// The most a dependency may log, whatever `HOOKRELAY_LOG` asks for.
const DEPENDENCY_CEILING: LevelFilter = LevelFilter::INFO;

/// Installs the global subscriber; later calls (e.g. from tests starting several servers) are no-ops.
pub fn init(filter: &str, format: &str) {
    let requested = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let filter = requested.and(ceiling());
    let output = fmt::layer().with_writer(std::io::stderr);
    let output =
        if format == "json" { output.json().with_filter(filter).boxed() } else { output.with_filter(filter).boxed() };
    let _ = tracing_subscriber::registry().with(output).try_init();
}

/// hookrelay's own targets pass at any level; every other target stops at [`DEPENDENCY_CEILING`].
fn ceiling() -> Targets {
    Targets::new().with_default(DEPENDENCY_CEILING).with_target("hookrelay", LevelFilter::TRACE)
}

#[cfg(test)]
mod tests {
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
}
