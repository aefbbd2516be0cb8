//! Configuration of `hookrelay serve`. Every setting is declared once, in [`ServeArgs`], and read from four
//! layers, later ones winning: built-in defaults < the TOML file (`--config`/`HOOKRELAY_CONFIG`) <
//! `HOOKRELAY_*` environment variables < command-line flags. File keys are the flag names with underscores;
//! unknown keys are rejected.
//!
//! A boolean flag alone means true (`--https-only`); `--https-only false`, `--https-only=false`, the variable
//! (`HOOKRELAY_HTTPS_ONLY=false`) and the file (`https_only = false`) say either value.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use hookrelay_core::cipher::SecretCipher;
use hookrelay_core::netpolicy::{self, IpNet};
use hookrelay_core::retry::RetrySchedule;
use hookrelay_core::signing::EndpointSecret;
use hookrelay_engine::operational::{Format, OperationalConfig};
use serde::Deserialize;

/// Settings of `hookrelay serve` (and `migrate`).
#[derive(clap::Args, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct ServeArgs {
    /// TOML file with any of these settings (keys as the flag names, with underscores)
    #[arg(long, env = "HOOKRELAY_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address and port to listen on: an IP address or a host name (`localhost:8071`; a name is resolved at
    /// start and its first IPv4 address used, else its first address) [default: 127.0.0.1:8071]
    #[arg(long, env = "HOOKRELAY_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<String>,

    /// Directory for the embedded database and the generated admin token [default: ./hookrelay-data]
    #[arg(long, env = "HOOKRELAY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Database: `postgres://user:password@host:5432/db` to share one PostgreSQL among several processes, or
    /// `sqlite://path/to/hookrelay.db` [default: SQLite file hookrelay.db in the data directory]
    #[arg(long, env = "HOOKRELAY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Most connections one process opens to PostgreSQL [default: 16]
    #[arg(long, env = "HOOKRELAY_DATABASE_POOL_SIZE")]
    pub database_pool_size: Option<usize>,

    /// Bearer token for the API [default: generated once and stored in the data directory]
    #[arg(long, env = "HOOKRELAY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// API requests per second each token may send (admin and application tokens alike; health and ingest are
    /// not limited); 0 turns the limit off [default: 0]
    #[arg(long, env = "HOOKRELAY_API_RATE_LIMIT")]
    pub api_rate_limit: Option<u32>,

    /// Requests a token may send at once before the rate limit applies; 0 means one second's worth
    /// [default: 0]
    #[arg(long, env = "HOOKRELAY_API_RATE_LIMIT_BURST")]
    pub api_rate_limit_burst: Option<u32>,

    /// Base URL of an app portal you host; app portal tokens come with `<this>/app-portal#key=<token>`
    /// [default: http://<the request's Host>]
    #[arg(long, env = "HOOKRELAY_PORTAL_URL")]
    pub portal_url: Option<String>,

    /// Origins allowed to embed the app portal in an iframe, space- or comma-separated, e.g.
    /// "https://app.example.com 'self'" [default: none, the portal cannot be framed]
    #[arg(long, env = "HOOKRELAY_PORTAL_FRAME_ANCESTORS")]
    pub portal_frame_ancestors: Option<String>,

    /// Title shown in the app portal's header and the browser tab [default: hookrelay]
    #[arg(long, env = "HOOKRELAY_UI_TITLE")]
    pub ui_title: Option<String>,

    /// Accent colour of the dashboard and the portal, #rgb or #rrggbb [default: hookrelay's indigo]
    #[arg(long, env = "HOOKRELAY_UI_ACCENT_COLOR")]
    pub ui_accent_color: Option<String>,

    /// Logo image shown in the app portal's header: a .png, .jpg, .svg, .webp or .gif file of at most 256 KiB
    #[arg(long, env = "HOOKRELAY_UI_LOGO")]
    pub ui_logo: Option<PathBuf>,

    /// Serve the dashboard's and portal's files from this folder (a checkout's crates/api/ui) instead of the
    /// copy built into the binary: for working on the UI without rebuilding
    #[arg(long, env = "HOOKRELAY_UI_DIR")]
    pub ui_dir: Option<PathBuf>,

    /// Seconds to wait after each failed attempt, comma-separated; one entry per retry (in the file also an
    /// array, `[5, 300, 1800]`) [default: 5,300,1800,7200,18000,36000,36000]
    #[arg(long, env = "HOOKRELAY_RETRY_SCHEDULE")]
    #[serde(default, deserialize_with = "retry_schedule_text")]
    pub retry_schedule: Option<String>,

    /// Retry 4xx answers other than 408, 409, 425 and 429; false stops at the first such answer [default: true]
    #[arg(long, env = "HOOKRELAY_RETRY_CLIENT_ERRORS", num_args = 0..=1, default_missing_value = "true")]
    pub retry_client_errors: Option<bool>,

    /// Timeout of one delivery request, in seconds [default: 15]
    #[arg(long, env = "HOOKRELAY_DELIVERY_TIMEOUT_SECS")]
    pub delivery_timeout_secs: Option<u64>,

    /// Deliver to loopback, private and link-local addresses (local development and tests only) [default: false]
    #[arg(long, env = "HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS", num_args = 0..=1, default_missing_value = "true")]
    pub allow_private_endpoints: Option<bool>,

    /// Comma-separated CIDR ranges deliveries may reach even though they are private, e.g.
    /// `10.0.0.0/8,127.0.0.1/32` [default: none]
    #[arg(long, env = "HOOKRELAY_WHITELIST_SUBNETS")]
    pub whitelist_subnets: Option<String>,

    /// Refuse endpoint URLs that are not https:// (at create/update and again at delivery) [default: false]
    #[arg(long, env = "HOOKRELAY_HTTPS_ONLY", num_args = 0..=1, default_missing_value = "true")]
    pub https_only: Option<bool>,

    /// An http:// or https:// proxy every delivery goes through; it resolves endpoint names itself, so it must do
    /// its own address filtering [default: none]
    #[arg(long, env = "HOOKRELAY_EGRESS_PROXY", hide_env_values = true)]
    pub egress_proxy: Option<String>,

    /// Key that encrypts endpoint and source secrets in the database: 32 random bytes in base64
    /// (`openssl rand -base64 32`) [default: none, secrets stored in plaintext]
    #[arg(long, env = "HOOKRELAY_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,

    /// Older encryption keys, comma-separated, still used to read secrets written before a key change
    /// [default: none]
    #[arg(long, env = "HOOKRELAY_ENCRYPTION_KEY_PREVIOUS", hide_env_values = true)]
    pub encryption_key_previous: Option<String>,

    /// Consecutive failed attempts after which an endpoint is paused and probed (circuit breaker) [default: 10]
    #[arg(long, env = "HOOKRELAY_BREAKER_THRESHOLD")]
    pub breaker_threshold: Option<u32>,

    /// Seconds an endpoint stays paused before the first probe; doubles after each failed probe [default: 30]
    #[arg(long, env = "HOOKRELAY_BREAKER_PAUSE_SECS")]
    pub breaker_pause_secs: Option<u64>,

    /// Seconds an endpoint may fail without a single success before it is disabled (0 never disables)
    /// [default: 432000, 5 days]
    #[arg(long, env = "HOOKRELAY_DISABLE_FAILING_AFTER_SECS")]
    pub disable_failing_after_secs: Option<u64>,

    /// URL that receives operational events (endpoint created/updated/disabled/deleted, message attempts
    /// failing/exhausted/recovered) [default: none]
    #[arg(long, env = "HOOKRELAY_OPERATIONAL_WEBHOOK_URL")]
    pub operational_webhook_url: Option<String>,

    /// Secret (`whsec_…`) that signs operational events; required with the URL
    #[arg(long, env = "HOOKRELAY_OPERATIONAL_WEBHOOK_SECRET", hide_env_values = true)]
    pub operational_webhook_secret: Option<String>,

    /// Body of operational events: standard (Svix JSON), slack or discord [default: standard]
    #[arg(long, env = "HOOKRELAY_OPERATIONAL_WEBHOOK_FORMAT")]
    pub operational_webhook_format: Option<String>,

    /// Days message payloads and inbound event-log entries are kept; older payloads are emptied and older
    /// entries deleted (0 keeps them forever) [default: 90]
    #[arg(long, env = "HOOKRELAY_PAYLOAD_RETENTION_DAYS")]
    pub payload_retention_days: Option<u64>,

    /// Most deliveries in flight at once, across all endpoints [default: 1024]
    #[arg(long, env = "HOOKRELAY_MAX_IN_FLIGHT")]
    pub max_in_flight: Option<usize>,

    /// Most concurrent requests to one endpoint [default: 10]
    #[arg(long, env = "HOOKRELAY_ENDPOINT_CONCURRENCY")]
    pub endpoint_concurrency: Option<usize>,

    /// Most endpoints one application may have; creating one more answers 422 [default: 200]
    #[arg(long, env = "HOOKRELAY_MAX_ENDPOINTS_PER_APP")]
    pub max_endpoints_per_app: Option<usize>,

    /// Largest accepted API request body, in bytes [default: 1048576]
    #[arg(long, env = "HOOKRELAY_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,

    /// Largest accepted body on the inbound `/ingest/…` route, in bytes [default: 1048576]
    #[arg(long, env = "HOOKRELAY_INGEST_MAX_BODY_BYTES")]
    pub ingest_max_body_bytes: Option<usize>,

    /// Most API connections open at once; further ones wait in the listen backlog
    /// [default: what the open-file limit leaves after deliveries and the database, 64..=10000]
    #[arg(long, env = "HOOKRELAY_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Seconds a new connection has to send its first request's headers before it is closed [default: 10]
    #[arg(long, env = "HOOKRELAY_HEADER_READ_TIMEOUT_SECS")]
    pub header_read_timeout_secs: Option<u64>,

    /// Seconds a kept-alive connection may stay idle (until its next request's headers are in); keep it above
    /// the idle timeout of a load balancer that reuses connections to hookrelay [default: 75]
    #[arg(long, env = "HOOKRELAY_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,

    /// Log filter, e.g. `info` or `hookrelay_engine=debug` [default: info]
    #[arg(long, env = "HOOKRELAY_LOG")]
    pub log: Option<String>,

    /// Log format: pretty or json [default: pretty]
    #[arg(long, env = "HOOKRELAY_LOG_FORMAT")]
    pub log_format: Option<String>,

    /// Bearer token `GET /metrics` requires; without one, /metrics is open to whoever reaches the port
    #[arg(long, env = "HOOKRELAY_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

/// Which database a server uses.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded database file (one process at a time).
    Sqlite(PathBuf),
    /// A PostgreSQL server shared by any number of processes; `url` may carry a password.
    Postgres { url: String, pool_size: usize },
}

impl Database {
    /// Reads `HOOKRELAY_DATABASE_URL`: `postgres://`/`postgresql://` URLs, `sqlite://<path>`, or nothing (the
    /// file in the data directory).
    fn parse(url: Option<String>, data_dir: &Path, pool_size: usize) -> anyhow::Result<Self> {
        let Some(url) = url else {
            return Ok(Self::Sqlite(data_dir.join(DATABASE_FILE)));
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres { url, pool_size });
        }
        match url.strip_prefix("sqlite://") {
            Some(path) if !path.is_empty() => Ok(Self::Sqlite(PathBuf::from(path))),
            _ => anyhow::bail!(
                "invalid HOOKRELAY_DATABASE_URL: use postgres://user:password@host:5432/database or \
                 sqlite://path/to/hookrelay.db"
            ),
        }
    }

    /// Where the data is, for logs and messages: the file, or the PostgreSQL URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres { url, .. } => redact_password(url),
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The URL with its password (in the user part or a `password=` parameter) masked, fit for a terminal or a log.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query = query
                .split('&')
                .map(|pair| if pair.starts_with("password=") { "password=***" } else { pair })
                .collect::<Vec<_>>()
                .join("&");
            format!("{path}?{query}")
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Most connections `HOOKRELAY_MAX_CONNECTIONS` may allow (Linux's default ceiling on open files, `fs.nr_open`).
const MAX_CONNECTIONS: usize = 1 << 20;

/// File name of the embedded database inside the data directory.
pub const DATABASE_FILE: &str = "hookrelay.db";

/// The resolved configuration of a server.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: Database,
    pub admin_token: Option<String>,
    /// Per-token rate limit and the app portal URL.
    pub auth: hookrelay_api::auth::AuthSettings,
    /// The UI's title, colour and logo, and who may embed the portal.
    pub ui: hookrelay_api::ui::UiSettings,
    pub retry_schedule: RetrySchedule,
    pub retry_client_errors: bool,
    pub delivery_timeout: Duration,
    pub allow_private_endpoints: bool,
    /// Private ranges deliveries may reach anyway.
    pub whitelist_subnets: Vec<IpNet>,
    pub https_only: bool,
    pub egress_proxy: Option<String>,
    /// Seals secrets in the database (plaintext without a key).
    pub cipher: SecretCipher,
    pub breaker_threshold: u32,
    pub breaker_pause: Duration,
    /// Where operational events go, if anywhere.
    pub operational_webhook: Option<OperationalConfig>,
    /// `None` never disables failing endpoints.
    pub disable_failing_after: Option<Duration>,
    /// `None` keeps payloads forever.
    pub payload_retention: Option<Duration>,
    pub max_in_flight: usize,
    pub endpoint_concurrency: usize,
    /// Most endpoints per application.
    pub max_endpoints_per_app: usize,
    pub max_body_bytes: usize,
    pub ingest_max_body_bytes: usize,
    /// `None`: derived at start from the open-file limit.
    pub max_connections: Option<usize>,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub log: String,
    pub log_format: String,
    /// The bearer token `/metrics` requires, if any.
    pub metrics_token: Option<String>,
}

impl ServeArgs {
    /// Reads the config file (if any) under these flags/env values and applies the defaults.
    pub fn resolve(self) -> anyhow::Result<ServeConfig> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => ServeArgs::default(),
        };
        let merged = self.over(file);
        let retry_schedule = match merged.retry_schedule.as_deref() {
            Some(text) => RetrySchedule::parse(text).context("invalid HOOKRELAY_RETRY_SCHEDULE")?,
            None => RetrySchedule::default(),
        };
        let log = merged.log.unwrap_or_else(|| "info".into());
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&log) {
            anyhow::bail!(
                "invalid HOOKRELAY_LOG `{log}`: {err}; use a level or `tracing` directives, e.g. \
                 `info` or `info,hookrelay_engine=debug`"
            );
        }
        let log_format = merged.log_format.unwrap_or_else(|| "pretty".into());
        if !matches!(log_format.as_str(), "pretty" | "json") {
            anyhow::bail!("invalid HOOKRELAY_LOG_FORMAT `{log_format}`: use `pretty` or `json`");
        }
        let positive = |value: Option<usize>, default: usize, name: &str| -> anyhow::Result<usize> {
            match value.unwrap_or(default) {
                0 => anyhow::bail!("{name} must be at least 1"),
                n => Ok(n),
            }
        };
        let delivery_timeout = Duration::from_secs(positive(
            merged.delivery_timeout_secs.map(|s| s as usize),
            15,
            "HOOKRELAY_DELIVERY_TIMEOUT_SECS",
        )? as u64);
        let operational_webhook = operational_webhook(
            merged.operational_webhook_url,
            merged.operational_webhook_secret,
            merged.operational_webhook_format,
            delivery_timeout,
        )?;
        let cipher =
            SecretCipher::from_settings(merged.encryption_key.as_deref(), merged.encryption_key_previous.as_deref())?;
        let whitelist_subnets = match merged.whitelist_subnets.as_deref() {
            Some(text) => netpolicy::parse_subnets(text).context("invalid HOOKRELAY_WHITELIST_SUBNETS")?,
            None => Vec::new(),
        };
        let egress_proxy = merged.egress_proxy.filter(|url| !url.trim().is_empty());
        if let Some(url) = &egress_proxy
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            anyhow::bail!("HOOKRELAY_EGRESS_PROXY must be an http:// or https:// proxy URL");
        }
        let data_dir = merged.data_dir.unwrap_or_else(|| PathBuf::from("hookrelay-data"));
        let pool_size = positive(merged.database_pool_size, 16, "HOOKRELAY_DATABASE_POOL_SIZE")?;
        let database = Database::parse(merged.database_url, &data_dir, pool_size)?;
        Ok(ServeConfig {
            listen: match merged.listen.as_deref() {
                Some(text) => listen_address(text)?,
                None => SocketAddr::from(([127, 0, 0, 1], 8071)),
            },
            database,
            data_dir,
            admin_token: merged.admin_token,
            auth: hookrelay_api::auth::AuthSettings {
                rate_limit_per_sec: merged.api_rate_limit.unwrap_or(0),
                rate_limit_burst: merged.api_rate_limit_burst.unwrap_or(0),
                portal_url: portal_url(merged.portal_url)?,
            },
            ui: hookrelay_api::ui::UiSettings {
                files_dir: merged.ui_dir,
                ..ui_settings(merged.ui_title, merged.ui_accent_color, merged.ui_logo, merged.portal_frame_ancestors)?
            },
            retry_schedule,
            retry_client_errors: merged.retry_client_errors.unwrap_or(true),
            delivery_timeout,
            operational_webhook,
            allow_private_endpoints: merged.allow_private_endpoints.unwrap_or(false),
            whitelist_subnets,
            https_only: merged.https_only.unwrap_or(false),
            egress_proxy,
            cipher,
            breaker_threshold: positive(
                merged.breaker_threshold.map(|n| n as usize),
                10,
                "HOOKRELAY_BREAKER_THRESHOLD",
            )? as u32,
            breaker_pause: Duration::from_secs(positive(
                merged.breaker_pause_secs.map(|s| s as usize),
                30,
                "HOOKRELAY_BREAKER_PAUSE_SECS",
            )? as u64),
            disable_failing_after: match merged.disable_failing_after_secs.unwrap_or(5 * 24 * 3600) {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            },
            payload_retention: match merged.payload_retention_days.unwrap_or(90) {
                0 => None,
                days => Some(Duration::from_secs(days.saturating_mul(24 * 3600))),
            },
            max_in_flight: positive(merged.max_in_flight, 1024, "HOOKRELAY_MAX_IN_FLIGHT")?,
            endpoint_concurrency: positive(merged.endpoint_concurrency, 10, "HOOKRELAY_ENDPOINT_CONCURRENCY")?,
            max_endpoints_per_app: positive(
                merged.max_endpoints_per_app,
                hookrelay_api::validate::DEFAULT_MAX_ENDPOINTS_PER_APP,
                "HOOKRELAY_MAX_ENDPOINTS_PER_APP",
            )?,
            max_body_bytes: positive(merged.max_body_bytes, 1024 * 1024, "HOOKRELAY_MAX_BODY_BYTES")?,
            ingest_max_body_bytes: positive(
                merged.ingest_max_body_bytes,
                1024 * 1024,
                "HOOKRELAY_INGEST_MAX_BODY_BYTES",
            )?,
            max_connections: match merged.max_connections {
                Some(0) => anyhow::bail!("HOOKRELAY_MAX_CONNECTIONS must be at least 1"),
                Some(n) if n > MAX_CONNECTIONS => {
                    anyhow::bail!("HOOKRELAY_MAX_CONNECTIONS must be at most {MAX_CONNECTIONS}")
                }
                other => other,
            },
            header_read_timeout: Duration::from_secs(positive(
                merged.header_read_timeout_secs.map(|s| s as usize),
                10,
                "HOOKRELAY_HEADER_READ_TIMEOUT_SECS",
            )? as u64),
            idle_timeout: Duration::from_secs(positive(
                merged.idle_timeout_secs.map(|s| s as usize),
                75,
                "HOOKRELAY_IDLE_TIMEOUT_SECS",
            )? as u64),
            log,
            log_format,
            // An empty token would be one anybody can present.
            metrics_token: merged.metrics_token.filter(|token| !token.is_empty()),
        })
    }

    /// `self`'s values where set, else `lower`'s.
    fn over(self, lower: ServeArgs) -> ServeArgs {
        ServeArgs {
            config: self.config,
            listen: self.listen.or(lower.listen),
            data_dir: self.data_dir.or(lower.data_dir),
            database_url: self.database_url.or(lower.database_url),
            database_pool_size: self.database_pool_size.or(lower.database_pool_size),
            admin_token: self.admin_token.or(lower.admin_token),
            api_rate_limit: self.api_rate_limit.or(lower.api_rate_limit),
            api_rate_limit_burst: self.api_rate_limit_burst.or(lower.api_rate_limit_burst),
            portal_url: self.portal_url.or(lower.portal_url),
            portal_frame_ancestors: self.portal_frame_ancestors.or(lower.portal_frame_ancestors),
            ui_title: self.ui_title.or(lower.ui_title),
            ui_accent_color: self.ui_accent_color.or(lower.ui_accent_color),
            ui_logo: self.ui_logo.or(lower.ui_logo),
            ui_dir: self.ui_dir.or(lower.ui_dir),
            retry_schedule: self.retry_schedule.or(lower.retry_schedule),
            retry_client_errors: self.retry_client_errors.or(lower.retry_client_errors),
            delivery_timeout_secs: self.delivery_timeout_secs.or(lower.delivery_timeout_secs),
            allow_private_endpoints: self.allow_private_endpoints.or(lower.allow_private_endpoints),
            whitelist_subnets: self.whitelist_subnets.or(lower.whitelist_subnets),
            https_only: self.https_only.or(lower.https_only),
            egress_proxy: self.egress_proxy.or(lower.egress_proxy),
            encryption_key: self.encryption_key.or(lower.encryption_key),
            encryption_key_previous: self.encryption_key_previous.or(lower.encryption_key_previous),
            breaker_threshold: self.breaker_threshold.or(lower.breaker_threshold),
            breaker_pause_secs: self.breaker_pause_secs.or(lower.breaker_pause_secs),
            disable_failing_after_secs: self.disable_failing_after_secs.or(lower.disable_failing_after_secs),
            operational_webhook_url: self.operational_webhook_url.or(lower.operational_webhook_url),
            operational_webhook_secret: self.operational_webhook_secret.or(lower.operational_webhook_secret),
            operational_webhook_format: self.operational_webhook_format.or(lower.operational_webhook_format),
            payload_retention_days: self.payload_retention_days.or(lower.payload_retention_days),
            max_in_flight: self.max_in_flight.or(lower.max_in_flight),
            endpoint_concurrency: self.endpoint_concurrency.or(lower.endpoint_concurrency),
            max_endpoints_per_app: self.max_endpoints_per_app.or(lower.max_endpoints_per_app),
            max_body_bytes: self.max_body_bytes.or(lower.max_body_bytes),
            ingest_max_body_bytes: self.ingest_max_body_bytes.or(lower.ingest_max_body_bytes),
            max_connections: self.max_connections.or(lower.max_connections),
            header_read_timeout_secs: self.header_read_timeout_secs.or(lower.header_read_timeout_secs),
            idle_timeout_secs: self.idle_timeout_secs.or(lower.idle_timeout_secs),
            log: self.log.or(lower.log),
            log_format: self.log_format.or(lower.log_format),
            metrics_token: self.metrics_token.or(lower.metrics_token),
        }
    }
}

/// The UI settings, each checked: a title of at most 100 characters, a colour, a logo file read now (so a
/// missing or oversized file stops the start), origins allowed to frame the portal.
fn ui_settings(
    title: Option<String>,
    accent_color: Option<String>,
    logo: Option<PathBuf>,
    frame_ancestors: Option<String>,
) -> anyhow::Result<hookrelay_api::ui::UiSettings> {
    use hookrelay_api::ui;
    let title = title.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    if let Some(title) = &title
        && (title.chars().count() > 100 || title.chars().any(char::is_control))
    {
        anyhow::bail!("HOOKRELAY_UI_TITLE must be at most 100 characters, without control characters");
    }
    let accent_color = accent_color
        .filter(|c| !c.trim().is_empty())
        .map(|c| ui::parse_accent_color(c.trim()))
        .transpose()
        .map_err(|err| anyhow::anyhow!("invalid HOOKRELAY_UI_ACCENT_COLOR: {err}"))?;
    let logo = match logo {
        Some(path) => {
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read HOOKRELAY_UI_LOGO {}", path.display()))?;
            let logo = ui::Logo::from_file(&path.display().to_string(), bytes)
                .map_err(|err| anyhow::anyhow!("invalid HOOKRELAY_UI_LOGO: {err}"))?;
            Some(logo)
        }
        None => None,
    };
    let portal_frame_ancestors = ui::parse_frame_ancestors(frame_ancestors.as_deref().unwrap_or(""))
        .map_err(|err| anyhow::anyhow!("invalid HOOKRELAY_PORTAL_FRAME_ANCESTORS: {err}"))?;
    Ok(ui::UiSettings { title, accent_color, logo, portal_frame_ancestors, files_dir: None })
}

/// `HOOKRELAY_PORTAL_URL`: an http(s) URL, or nothing.
fn portal_url(url: Option<String>) -> anyhow::Result<Option<String>> {
    let Some(url) = url.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        anyhow::bail!("HOOKRELAY_PORTAL_URL must be an http:// or https:// URL, e.g. https://portal.example.com");
    }
    Ok(Some(url))
}

/// The operational webhook settings: all or nothing, and never echoing the secret in an error.
fn operational_webhook(
    url: Option<String>,
    secret: Option<String>,
    format: Option<String>,
    timeout: Duration,
) -> anyhow::Result<Option<OperationalConfig>> {
    let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
        return Ok(None);
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        anyhow::bail!("HOOKRELAY_OPERATIONAL_WEBHOOK_URL must be an http:// or https:// URL");
    }
    let Some(secret) = secret else {
        anyhow::bail!(
            "HOOKRELAY_OPERATIONAL_WEBHOOK_URL is set but HOOKRELAY_OPERATIONAL_WEBHOOK_SECRET is not: give a \
             `whsec_…` secret so the receiver can verify events"
        );
    };
    let secret = EndpointSecret::parse(secret.trim())
        .map_err(|err| anyhow::anyhow!("invalid HOOKRELAY_OPERATIONAL_WEBHOOK_SECRET: {err}"))?;
    let format = match format.as_deref() {
        None => Format::Standard,
        Some(text) => Format::parse(text).ok_or_else(|| {
            anyhow::anyhow!("invalid HOOKRELAY_OPERATIONAL_WEBHOOK_FORMAT `{text}`: use standard, slack or discord")
        })?,
    };
    Ok(Some(OperationalConfig { url, secret, format, timeout }))
}

/// `HOOKRELAY_LISTEN`: `IP:PORT`, or `HOST:PORT` with a name resolved now. A name may resolve to several
/// addresses (`localhost` to 127.0.0.1 and ::1); the server listens on one, the first IPv4 address (what most
/// clients try first, and what a machine without IPv6 can bind), else the first address.
fn listen_address(text: &str) -> anyhow::Result<SocketAddr> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let usage = "use IP:PORT or HOST:PORT, e.g. 127.0.0.1:8071, [::1]:8071 or localhost:8071";
    if text.rsplit_once(':').is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err()) {
        anyhow::bail!("invalid HOOKRELAY_LISTEN `{text}`: {usage}");
    }
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .with_context(|| format!("invalid HOOKRELAY_LISTEN `{text}`: the host name does not resolve ({usage})"))?
        .collect();
    addrs
        .iter()
        .find(|addr| addr.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| anyhow::anyhow!("invalid HOOKRELAY_LISTEN `{text}`: the host name has no address"))
}

/// The file's `retry_schedule`: the variable's text (`"5,300,1800"`) or an array of seconds (`[5, 300, 1800]`),
/// either way kept as the text [`RetrySchedule::parse`] reads.
fn retry_schedule_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    struct Schedule;
    impl<'de> serde::de::Visitor<'de> for Schedule {
        type Value = Option<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str(r#"seconds as a string ("5,300,1800") or an array of whole seconds ([5, 300, 1800])"#)
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Ok(Some(text.to_owned()))
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut secs = Vec::new();
            while let Some(wait) = seq.next_element::<u64>()? {
                secs.push(wait.to_string());
            }
            Ok(Some(secs.join(",")))
        }
    }
    deserializer.deserialize_any(Schedule)
}

fn read_file(path: &Path) -> anyhow::Result<ServeArgs> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    parse_file(&text).with_context(|| format!("invalid config file {}", path.display()))
}

/// The settings a config file's TOML text sets (the keys of [`ServeArgs`]); unknown keys are refused.
pub fn parse_file(text: &str) -> anyhow::Result<ServeArgs> {
    Ok(toml::from_str(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = ServeArgs::default().resolve().unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8071");
        assert_eq!(config.data_dir, PathBuf::from("hookrelay-data"));
        assert_eq!(config.retry_schedule, RetrySchedule::default());
        assert_eq!(config.delivery_timeout, Duration::from_secs(15));
        assert!(!config.allow_private_endpoints);
        assert_eq!(config.payload_retention, Some(Duration::from_secs(90 * 24 * 3600)));
        assert_eq!(config.max_endpoints_per_app, 200);
        let forever = ServeArgs { payload_retention_days: Some(0), ..Default::default() }.resolve().unwrap();
        assert_eq!(forever.payload_retention, None);
    }

    #[test]
    fn the_database_url_selects_the_backend_and_hides_its_password() {
        let database = |url: Option<&str>| {
            let args = ServeArgs { database_url: url.map(str::to_owned), ..Default::default() };
            args.resolve().map(|config| config.database)
        };
        assert_eq!(database(None).unwrap(), Database::Sqlite(PathBuf::from("hookrelay-data/hookrelay.db")));
        assert_eq!(database(Some("sqlite:///var/lib/h.db")).unwrap(), Database::Sqlite(PathBuf::from("/var/lib/h.db")));
        let args = ServeArgs {
            database_url: Some("postgres://hr:s3cret@db:5432/hookrelay".into()),
            admin_token: Some("token".into()),
            ..Default::default()
        };
        let postgres = args.resolve().unwrap().database;
        assert_eq!(
            postgres,
            Database::Postgres { url: "postgres://hr:s3cret@db:5432/hookrelay".into(), pool_size: 16 }
        );
        assert_eq!(postgres.describe(), "postgres://hr:***@db:5432/hookrelay");
        assert!(!format!("{postgres:?}").contains("s3cret"));
        assert!(database(Some("mysql://db/x")).is_err());
        assert!(database(Some("sqlite://")).is_err());
    }

    #[test]
    fn flags_win_over_the_file_and_unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hookrelay.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nretry_schedule = \"1,2\"\n").unwrap();
        let args = ServeArgs { config: Some(file.clone()), retry_schedule: Some("7".into()), ..Default::default() };
        let config = args.resolve().unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(config.retry_schedule, RetrySchedule::from_secs(&[7]));

        std::fs::write(&file, "listen_on = \"127.0.0.1:9000\"\n").unwrap();
        let err = ServeArgs { config: Some(file), ..Default::default() }.resolve().unwrap_err();
        assert!(format!("{err:#}").contains("listen_on"), "{err:#}");
    }

    #[test]
    fn the_operational_webhook_needs_a_valid_secret_that_errors_never_echo() {
        let with = |secret: Option<&str>, format: Option<&str>| ServeArgs {
            operational_webhook_url: Some("https://ops.example.com/hooks".into()),
            operational_webhook_secret: secret.map(str::to_owned),
            operational_webhook_format: format.map(str::to_owned),
            ..Default::default()
        };
        let err = with(None, None).resolve().unwrap_err();
        assert!(err.to_string().contains("HOOKRELAY_OPERATIONAL_WEBHOOK_SECRET"), "{err}");
        let err = with(Some("hunter2-not-a-whsec"), None).resolve().unwrap_err();
        assert!(!format!("{err:#}").contains("hunter2"), "the secret leaked into: {err:#}");
        let err = with(Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Some("teams")).resolve().unwrap_err();
        assert!(err.to_string().contains("teams"));
        let ok = with(Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Some("slack")).resolve().unwrap();
        assert_eq!(ok.operational_webhook.map(|o| o.format), Some(Format::Slack));
    }

    #[test]
    fn the_metrics_token_is_read_from_the_file_and_an_empty_one_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hookrelay.toml");
        std::fs::write(&file, "metrics_token = \"from-file\"\n").unwrap();
        let from_file = ServeArgs { config: Some(file.clone()), ..Default::default() }.resolve().unwrap();
        assert_eq!(from_file.metrics_token.as_deref(), Some("from-file"));
        let emptied = ServeArgs { config: Some(file), metrics_token: Some(String::new()), ..Default::default() }
            .resolve()
            .unwrap();
        assert_eq!(emptied.metrics_token, None);
    }

    #[test]
    fn encryption_keys_are_checked_and_never_echoed() {
        let key = hookrelay_core::cipher::generate_key();
        let args = ServeArgs {
            encryption_key: Some(key.clone()),
            encryption_key_previous: Some(hookrelay_core::cipher::generate_key()),
            ..Default::default()
        };
        let config = args.resolve().unwrap();
        assert!(config.cipher.encrypts());
        assert!(!format!("{config:?}").contains(&key), "the key leaked into the debug output");
        assert!(!ServeArgs::default().resolve().unwrap().cipher.encrypts());
        let err =
            ServeArgs { encryption_key: Some("dG9vIHNob3J0".into()), ..Default::default() }.resolve().unwrap_err();
        assert!(err.to_string().contains("HOOKRELAY_ENCRYPTION_KEY"), "{err}");
        assert!(!format!("{err:#}").contains("dG9vIHNob3J0"), "{err:#}");
    }

    #[test]
    fn egress_settings_are_parsed() {
        let args = ServeArgs {
            whitelist_subnets: Some("10.0.0.0/8, 127.0.0.1/32".into()),
            https_only: Some(true),
            egress_proxy: Some("http://proxy.internal:3128".into()),
            ..Default::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(config.whitelist_subnets.len(), 2);
        assert!(config.https_only);
        assert_eq!(config.egress_proxy.as_deref(), Some("http://proxy.internal:3128"));
        let err =
            ServeArgs { whitelist_subnets: Some("10.0.0.0/33".into()), ..Default::default() }.resolve().unwrap_err();
        assert!(format!("{err:#}").contains("HOOKRELAY_WHITELIST_SUBNETS"), "{err:#}");
        let err =
            ServeArgs { egress_proxy: Some("socks5://proxy:1080".into()), ..Default::default() }.resolve().unwrap_err();
        assert!(err.to_string().contains("HOOKRELAY_EGRESS_PROXY"), "{err}");
    }

    #[test]
    fn token_settings_default_to_no_rate_limit_and_the_request_host() {
        let config = ServeArgs::default().resolve().unwrap();
        assert_eq!((config.auth.rate_limit_per_sec, config.auth.rate_limit_burst), (0, 0));
        assert_eq!(config.auth.portal_url, None);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hookrelay.toml");
        std::fs::write(
            &file,
            "api_rate_limit = 50\napi_rate_limit_burst = 100\nportal_url = \"https://portal.example.com\"\n",
        )
        .unwrap();
        let config = ServeArgs { config: Some(file), ..Default::default() }.resolve().unwrap();
        assert_eq!((config.auth.rate_limit_per_sec, config.auth.rate_limit_burst), (50, 100));
        assert_eq!(config.auth.portal_url.as_deref(), Some("https://portal.example.com"));
        let err =
            ServeArgs { portal_url: Some("portal.example.com".into()), ..Default::default() }.resolve().unwrap_err();
        assert!(err.to_string().contains("HOOKRELAY_PORTAL_URL"), "{err}");
    }

    #[test]
    fn listener_limits_have_defaults_and_refuse_zero() {
        let config = ServeArgs::default().resolve().unwrap();
        assert_eq!(config.max_connections, None, "derived from the open-file limit at start");
        assert_eq!(config.header_read_timeout, Duration::from_secs(10));
        assert_eq!(config.idle_timeout, Duration::from_secs(75));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hookrelay.toml");
        std::fs::write(&file, "max_connections = 500\nheader_read_timeout_secs = 3\nidle_timeout_secs = 90\n").unwrap();
        let config = ServeArgs { config: Some(file), ..Default::default() }.resolve().unwrap();
        assert_eq!(config.max_connections, Some(500));
        assert_eq!(
            (config.header_read_timeout, config.idle_timeout),
            (Duration::from_secs(3), Duration::from_secs(90))
        );
        for (args, name) in [
            (ServeArgs { max_connections: Some(0), ..Default::default() }, "HOOKRELAY_MAX_CONNECTIONS"),
            (ServeArgs { max_connections: Some(usize::MAX), ..Default::default() }, "HOOKRELAY_MAX_CONNECTIONS"),
            (
                ServeArgs { header_read_timeout_secs: Some(0), ..Default::default() },
                "HOOKRELAY_HEADER_READ_TIMEOUT_SECS",
            ),
            (ServeArgs { idle_timeout_secs: Some(0), ..Default::default() }, "HOOKRELAY_IDLE_TIMEOUT_SECS"),
        ] {
            let err = args.resolve().unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    /// The serve settings `hookrelay serve <args>` parses, or clap's error.
    fn serve_flags(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        use clap::Parser;
        match crate::cmd::Cli::try_parse_from([&["hookrelay", "serve"], args].concat())?.command {
            crate::cmd::Command::Serve(args) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn a_boolean_flag_alone_means_true_and_still_takes_a_value() {
        let check = |args: &[&str], expected: Option<bool>| {
            let parsed = serve_flags(args).unwrap_or_else(|err| panic!("{args:?}: {err}"));
            assert_eq!(parsed.allow_private_endpoints, expected, "{args:?}");
        };
        check(&[], None);
        check(&["--allow-private-endpoints"], Some(true));
        check(&["--allow-private-endpoints", "true"], Some(true));
        check(&["--allow-private-endpoints", "false"], Some(false));
        check(&["--allow-private-endpoints=false"], Some(false));
        // The next flag is not taken for the boolean's value.
        let parsed = serve_flags(&["--https-only", "--listen", "127.0.0.1:0", "--retry-client-errors"]).unwrap();
        assert_eq!(
            (parsed.https_only, parsed.listen.as_deref(), parsed.retry_client_errors),
            (Some(true), Some("127.0.0.1:0"), Some(true))
        );
        assert!(serve_flags(&["--https-only", "maybe"]).is_err());
    }

    #[test]
    fn the_file_takes_the_retry_schedule_as_text_or_an_array() {
        let schedule = |toml: &str| parse_file(toml).map(|args| args.retry_schedule);
        assert_eq!(schedule("retry_schedule = \"5,300,1800\"").unwrap().as_deref(), Some("5,300,1800"));
        assert_eq!(schedule("retry_schedule = [5, 300, 1800]").unwrap().as_deref(), Some("5,300,1800"));
        assert_eq!(schedule("retry_schedule = []").unwrap().as_deref(), Some(""), "an empty array never retries");
        assert_eq!(schedule("https_only = true").unwrap(), None);
        for bad in ["retry_schedule = 5", "retry_schedule = [5, -1]", "retry_schedule = [5, \"30\"]"] {
            let err = format!("{:#}", schedule(bad).unwrap_err());
            assert!(err.contains("retry_schedule"), "{bad}: {err}");
        }
        let err = format!("{:#}", schedule("retry_schedule = 5").unwrap_err());
        assert!(err.contains("[5, 300, 1800]"), "the error shows both forms: {err}");
    }

    #[test]
    fn listen_takes_an_address_or_a_host_name() {
        let listen = |text: &str| ServeArgs { listen: Some(text.into()), ..Default::default() }.resolve();
        assert_eq!(listen("127.0.0.1:9000").unwrap().listen.to_string(), "127.0.0.1:9000");
        assert_eq!(listen("[::1]:9000").unwrap().listen.to_string(), "[::1]:9000");
        let local = listen("localhost:9000").unwrap().listen;
        assert!(local.ip().is_loopback() && local.port() == 9000, "{local}");
        assert!(local.is_ipv4(), "localhost resolves to 127.0.0.1 first: {local}");
        for bad in ["localhost", "9000", ":9000", "localhost:http", "localhost:70000"] {
            let err = listen(bad).unwrap_err();
            assert!(err.to_string().contains("HOOKRELAY_LISTEN"), "{bad}: {err}");
        }
    }

    #[test]
    fn bad_values_say_what_to_fix() {
        let err = ServeArgs { retry_schedule: Some("5,soon".into()), ..Default::default() }.resolve().unwrap_err();
        assert!(format!("{err:#}").contains("soon"));
        let err = ServeArgs { max_in_flight: Some(0), ..Default::default() }.resolve().unwrap_err();
        assert!(err.to_string().contains("HOOKRELAY_MAX_IN_FLIGHT"));
        let err = ServeArgs { log: Some("info,hookrelay=loud".into()), ..Default::default() }.resolve().unwrap_err();
        assert!(err.to_string().contains("HOOKRELAY_LOG"), "{err}");
        let ok = ServeArgs { log: Some("warn,hookrelay_engine=debug".into()), ..Default::default() }.resolve();
        assert!(ok.is_ok());
    }
}
