//! Log output: `tracing` to stderr, filtered by `HOOKRELAY_LOG` (default `info`), formatted as
//! `HOOKRELAY_LOG_FORMAT=pretty|json`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; later calls (e.g. from tests starting several servers) are no-ops.
pub fn init(filter: &str, format: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if format == "json" { builder.json().try_init() } else { builder.try_init() };
}
