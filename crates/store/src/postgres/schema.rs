//! The PostgreSQL schema, as an ordered list of migrations recorded in `hookrelay_schema`. It mirrors the SQLite
//! schema table for table and column for column (integers are `BIGINT`, flags `BIGINT` 0/1, JSON `TEXT`, bytes
//! `BYTEA`), so the two backends share their meaning and `copy` can move rows from one to the other unchanged.
//! What only a shared database needs is added: which process holds a delivery's lease (`deliveries.claimed_by`)
//! and which processes are alive (`instances`).
//!
//! Ids, and event type names, are `COLLATE "C"`: they must compare byte by byte, as SQLite compares them, because
//! ids sort by creation time only in byte order (`0-9A-Za-z`) and everything relies on that order (cursors,
//! time windows as id ranges, FIFO order). A database's default collation (`en_US.UTF-8`, …) would interleave
//! upper and lower case.
//!
//! Several processes may start at once: the migration runs under a transaction-scoped advisory lock, so one
//! applies it and the others wait, then find nothing to do.

use tokio_postgres::Client;

use super::pg_error;
use crate::store::StoreResult;

/// Serializes migrations across processes (an arbitrary constant: "hookrelay" in ASCII, truncated).
const MIGRATION_LOCK: i64 = 0x686f_6f6b_7265_6c61;

/// Each entry moves the schema one version forward; never edit a released entry, append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: everything the SQLite schema has after its migration 7, plus lease owners and live instances.
    r#"
CREATE TABLE applications (
    id TEXT COLLATE "C" PRIMARY KEY,
    uid TEXT UNIQUE,
    name TEXT NOT NULL,
    rate_limit BIGINT,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE event_types (
    name TEXT COLLATE "C" PRIMARY KEY,
    description TEXT NOT NULL,
    archived BIGINT NOT NULL,
    deprecated BIGINT NOT NULL,
    schemas TEXT,
    feature_flag TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE endpoints (
    id TEXT COLLATE "C" PRIMARY KEY,
    app_id TEXT COLLATE "C" NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    uid TEXT,
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    filter_types TEXT,
    channels TEXT,
    rate_limit BIGINT,
    disabled BIGINT NOT NULL,
    metadata TEXT NOT NULL,
    version BIGINT NOT NULL,
    headers TEXT NOT NULL,
    secret TEXT NOT NULL,
    previous_secrets TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    signature_schemes TEXT NOT NULL DEFAULT '["standard"]',
    failing_since BIGINT,
    fifo BIGINT NOT NULL DEFAULT 0,
    paused_until BIGINT,
    UNIQUE (app_id, uid)
);
CREATE INDEX endpoints_by_app ON endpoints(app_id, id);

CREATE TABLE messages (
    id TEXT COLLATE "C" PRIMARY KEY,
    app_id TEXT COLLATE "C" NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    event_id TEXT,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    channels TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (app_id, event_id)
);
CREATE INDEX messages_by_app ON messages(app_id, id);

-- The queue: one row per (message, endpoint). Pending (1) and sending (3) rows are due at next_attempt_at;
-- for a sending row that time is the end of its lease, and claimed_by the instance holding it.
CREATE TABLE deliveries (
    msg_id TEXT COLLATE "C" NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    endpoint_id TEXT COLLATE "C" NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    status BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    manual BIGINT NOT NULL,
    next_attempt_at BIGINT,
    claimed_by TEXT COLLATE "C",
    PRIMARY KEY (msg_id, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status IN (1, 3);
CREATE INDEX deliveries_by_endpoint ON deliveries(endpoint_id, status, msg_id);
CREATE INDEX deliveries_by_claimer ON deliveries(claimed_by) WHERE status = 3;

CREATE TABLE attempts (
    id TEXT COLLATE "C" PRIMARY KEY,
    app_id TEXT COLLATE "C" NOT NULL,
    msg_id TEXT COLLATE "C" NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    endpoint_id TEXT COLLATE "C" NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    response TEXT NOT NULL,
    response_status_code BIGINT NOT NULL,
    response_duration_ms BIGINT NOT NULL,
    status BIGINT NOT NULL,
    trigger_type BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX attempts_by_msg ON attempts(msg_id, id);
CREATE INDEX attempts_by_endpoint ON attempts(endpoint_id, id);

CREATE TABLE idempotency (
    key TEXT PRIMARY KEY,
    status BIGINT NOT NULL,
    body BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX idempotency_expiry ON idempotency(expires_at);

CREATE TABLE background_tasks (
    id TEXT COLLATE "C" PRIMARY KEY,
    kind TEXT NOT NULL,
    app_id TEXT COLLATE "C" NOT NULL,
    endpoint_id TEXT COLLATE "C" NOT NULL,
    status TEXT NOT NULL,
    since BIGINT NOT NULL,
    until BIGINT NOT NULL,
    cursor TEXT COLLATE "C",
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX background_tasks_by_status ON background_tasks(status, id);

CREATE TABLE sources (
    id TEXT COLLATE "C" PRIMARY KEY,
    uid TEXT UNIQUE,
    name TEXT NOT NULL,
    app_id TEXT COLLATE "C" NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    options TEXT NOT NULL,
    secrets TEXT NOT NULL,
    tolerance_secs BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX sources_by_app ON sources(app_id);

CREATE TABLE inbound_events (
    id TEXT COLLATE "C" PRIMARY KEY,
    source_id TEXT COLLATE "C" NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('verified', 'duplicate', 'rejected')),
    reason TEXT,
    event_id TEXT,
    event_type TEXT,
    msg_id TEXT COLLATE "C",
    received_at BIGINT NOT NULL
);
CREATE INDEX inbound_events_by_source ON inbound_events(source_id, id);
CREATE UNIQUE INDEX inbound_events_verified_once ON inbound_events(source_id, event_id)
    WHERE status = 'verified' AND event_id IS NOT NULL;

-- Processes serving this database. Each renews alive_until while it runs; the leases of one that stopped
-- renewing (killed, frozen, cut off) are taken back by the others.
CREATE TABLE instances (
    id TEXT COLLATE "C" PRIMARY KEY,
    started_at BIGINT NOT NULL,
    alive_until BIGINT NOT NULL
);
"#,
    // 2 (SQLite's 8): API tokens, kept as SHA-256 digests: named admin tokens (`app_id` NULL, no expiry) and
    // application-scoped portal tokens (deleted with their application).
    r#"
CREATE TABLE api_tokens (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    digest BYTEA NOT NULL UNIQUE,
    app_id TEXT COLLATE "C" REFERENCES applications(id) ON DELETE CASCADE,
    read_only BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);
CREATE UNIQUE INDEX api_tokens_admin_name ON api_tokens(name) WHERE app_id IS NULL;
CREATE INDEX api_tokens_by_app ON api_tokens(app_id);
CREATE INDEX api_tokens_by_expiry ON api_tokens(expires_at) WHERE expires_at IS NOT NULL;
"#,
    // 3 (SQLite's 9): open deliveries by endpoint and due time. A claim reads through it, endpoint by endpoint,
    // when endpoints that cannot take more (full, paused, FIFO-blocked) hold the head of the due index.
    r#"
CREATE INDEX deliveries_due_by_endpoint ON deliveries(endpoint_id, next_attempt_at) WHERE status IN (1, 3);
"#,
    // 4 (SQLite's 10): rejected inbound requests counted per source, reason and minute rather than stored one
    // row each, the stored ones folded in; a source's optional ingest rate limit.
    r#"
CREATE TABLE inbound_rejections (
    source_id TEXT COLLATE "C" NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    reason TEXT COLLATE "C" NOT NULL,
    minute BIGINT NOT NULL,
    count BIGINT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    sample TEXT,
    PRIMARY KEY (source_id, minute, reason)
);
CREATE INDEX inbound_rejections_by_minute ON inbound_rejections(minute);
INSERT INTO inbound_rejections (source_id, reason, minute, count, first_seen, last_seen, sample)
    SELECT source_id, COALESCE(reason, 'unknown'), received_at - received_at % 60000, COUNT(*), MIN(received_at),
        MAX(received_at), NULL
    FROM inbound_events WHERE status = 'rejected' GROUP BY 1, 2, 3;
DELETE FROM inbound_events WHERE status = 'rejected';
ALTER TABLE sources ADD COLUMN rate_limit BIGINT;
"#,
    // 5 (SQLite's 11): the one row the write probes of every process rewrite every few seconds, so health learns
    // without traffic that writes fail, or work again.
    r#"
CREATE TABLE write_probe (id SMALLINT PRIMARY KEY CHECK (id = 1), probed_at BIGINT NOT NULL);
INSERT INTO write_probe (id, probed_at) VALUES (1, 0);
"#,
    // 6 (SQLite's 12): what an endpoint's receivers were written for: its own retry rules, NULL for the server's,
    // its own signature headers and which Standard Webhooks header families it gets; the request headers a source
    // forwards and, on its messages, their values; an endpoint's transformation.
    r#"
ALTER TABLE endpoints ADD COLUMN retry_schedule TEXT;
ALTER TABLE endpoints ADD COLUMN retry_client_errors BIGINT;
ALTER TABLE endpoints ADD COLUMN signature_headers TEXT NOT NULL DEFAULT '[]';
ALTER TABLE endpoints ADD COLUMN standard_headers TEXT NOT NULL DEFAULT 'both';
ALTER TABLE sources ADD COLUMN forward_headers TEXT NOT NULL DEFAULT '[]';
ALTER TABLE messages ADD COLUMN forwarded_headers TEXT;
ALTER TABLE endpoints ADD COLUMN transformation_code TEXT;
ALTER TABLE endpoints ADD COLUMN transformation_enabled BIGINT NOT NULL DEFAULT 0;
"#,
    // 7 (SQLite's 13): an event type's group; a message's tags, a raw payload's content type, when it is first due and when its payload
    // is purged; a payload emptied by an expunge or a purge is ''.
    r#"
ALTER TABLE event_types ADD COLUMN group_name TEXT;
ALTER TABLE messages ADD COLUMN tags TEXT;
ALTER TABLE messages ADD COLUMN content_type TEXT;
ALTER TABLE messages ADD COLUMN deliver_at BIGINT;
ALTER TABLE messages ADD COLUMN payload_expires_at BIGINT;
CREATE INDEX messages_payload_expiry ON messages(payload_expires_at)
    WHERE payload_expires_at IS NOT NULL AND payload <> '';
"#,
    // 8 (SQLite's 14): activity counted per minute for the dashboard's charts. `writer` is one process and one
    // kind of its writes (see `postgres/operations.rs`), so that processes, and a process's publishes and attempt
    // records, never wait on each other's row; readers sum over writers. The current minute's rows are updated
    // by every transaction that counts: half-empty pages leave room for those updates to stay on their page
    // (HOT), which keeps the table and its index from bloating between vacuums. The pause-time index lists open
    // circuit breakers without reading every endpoint.
    r#"
CREATE TABLE activity_minutes (
    minute BIGINT NOT NULL,
    writer TEXT COLLATE "C" NOT NULL,
    messages BIGINT NOT NULL,
    attempts_success BIGINT NOT NULL,
    attempts_fail BIGINT NOT NULL,
    PRIMARY KEY (minute, writer)
) WITH (fillfactor = 50);
CREATE INDEX endpoints_paused ON endpoints(paused_until) WHERE paused_until IS NOT NULL;
"#,
    // 9 (SQLite's 15): failed attempts counted per minute and endpoint, for the statistics' most failing
    // endpoints. `writer` as in `activity_minutes` (a process's attempt recorder), so processes recording
    // failures of one endpoint in the same minute never wait on each other's row; half-empty pages for the same
    // reason as there.
    r#"
CREATE TABLE endpoint_failure_minutes (
    minute BIGINT NOT NULL,
    endpoint_id TEXT COLLATE "C" NOT NULL,
    writer TEXT COLLATE "C" NOT NULL,
    failures BIGINT NOT NULL,
    PRIMARY KEY (minute, endpoint_id, writer)
) WITH (fillfactor = 50);
"#,
];

/// Brings the schema of the connection's `search_path` to the newest version, in one transaction.
pub async fn migrate(client: &mut Client) -> StoreResult<()> {
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(pg_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS hookrelay_schema (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .await
    .map_err(pg_error)?;
    let current: i64 =
        tx.query_one("SELECT COALESCE(MAX(version), 0) FROM hookrelay_schema", &[]).await.map_err(pg_error)?.get(0);
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        let version = index as i64 + 1;
        tx.batch_execute(sql).await.map_err(pg_error)?;
        tx.execute(
            "INSERT INTO hookrelay_schema (version, applied_at) VALUES ($1, $2)",
            &[&version, &hookrelay_core::time::now_ms()],
        )
        .await
        .map_err(pg_error)?;
        tracing::info!(version, "applied PostgreSQL migration");
    }
    tx.commit().await.map_err(pg_error)
}
