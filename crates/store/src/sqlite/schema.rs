//! The SQLite schema, as an ordered list of migrations tracked in `PRAGMA user_version`.

use rusqlite::Connection;

/// Each entry moves the schema one version forward; never edit a released entry, append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the core schema.
    r#"
CREATE TABLE applications (
    id TEXT PRIMARY KEY,
    uid TEXT UNIQUE,
    name TEXT NOT NULL,
    rate_limit INTEGER,
    metadata TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE event_types (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    archived INTEGER NOT NULL,
    deprecated INTEGER NOT NULL,
    schemas TEXT,
    feature_flag TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE endpoints (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    uid TEXT,
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    filter_types TEXT,
    channels TEXT,
    rate_limit INTEGER,
    disabled INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    version INTEGER NOT NULL,
    headers TEXT NOT NULL,
    secret TEXT NOT NULL,
    previous_secrets TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (app_id, uid)
);
CREATE INDEX endpoints_by_app ON endpoints(app_id, id);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    event_id TEXT,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    channels TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (app_id, event_id)
);
CREATE INDEX messages_by_app ON messages(app_id, id);

-- The queue: one row per (message, endpoint). Pending (1) and sending (3) rows are due at next_attempt_at;
-- for a sending row that time is the end of its lease.
CREATE TABLE deliveries (
    msg_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    endpoint_id TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    status INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    manual INTEGER NOT NULL,
    next_attempt_at INTEGER,
    PRIMARY KEY (msg_id, endpoint_id)
) WITHOUT ROWID;
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status IN (1, 3);
CREATE INDEX deliveries_by_endpoint ON deliveries(endpoint_id, status);

CREATE TABLE attempts (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    msg_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    endpoint_id TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    response TEXT NOT NULL,
    response_status_code INTEGER NOT NULL,
    response_duration_ms INTEGER NOT NULL,
    status INTEGER NOT NULL,
    trigger_type INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX attempts_by_msg ON attempts(msg_id, id);
CREATE INDEX attempts_by_endpoint ON attempts(endpoint_id, id);

CREATE TABLE idempotency (
    key TEXT PRIMARY KEY,
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX idempotency_expiry ON idempotency(expires_at);
"#,
    // 2: signature schemes per endpoint (a JSON array of names), for receivers written to HMAC-hex conventions.
    r#"
ALTER TABLE endpoints ADD COLUMN signature_schemes TEXT NOT NULL DEFAULT '["standard"]';
"#,
    // 3: when an endpoint's current run of failed attempts began (NULL while it is healthy), for auto-disable.
    r#"
ALTER TABLE endpoints ADD COLUMN failing_since INTEGER;
"#,
    // 4: background tasks (recover, replay-missing). No foreign keys: a task that failed because its endpoint
    // was deleted stays readable. `data` is the progress as JSON; `cursor` the last message id handled.
    r#"
CREATE TABLE background_tasks (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    app_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    status TEXT NOT NULL,
    since INTEGER NOT NULL,
    until INTEGER NOT NULL,
    cursor TEXT,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX background_tasks_by_status ON background_tasks(status, id);
"#,
    // 5: FIFO endpoints. The endpoint index gains msg_id so "is an earlier delivery still open?" is one seek.
    r#"
ALTER TABLE endpoints ADD COLUMN fifo INTEGER NOT NULL DEFAULT 0;
DROP INDEX deliveries_by_endpoint;
CREATE INDEX deliveries_by_endpoint ON deliveries(endpoint_id, status, msg_id);
"#,
    // 6: inbound sources and the requests that reached them. A source's uid is unique across all applications:
    // it names the public ingest URL. `options` is the provider's options as a JSON object, `secrets` the current
    // secret and the previous ones still accepted (JSON). Inbound event ids are stamped with the receive time, so
    // paging and purging by id is by time. The partial unique index is what deduplicates provider event ids,
    // however many writers share the database: a second verified row for the same event cannot exist.
    // `msg_id` has no foreign key: deleting a source keeps the messages it published, and the app's deletion
    // takes both.
    r#"
CREATE TABLE sources (
    id TEXT PRIMARY KEY,
    uid TEXT UNIQUE,
    name TEXT NOT NULL,
    app_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    options TEXT NOT NULL,
    secrets TEXT NOT NULL,
    tolerance_secs INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
-- Deleting an application finds its sources through this index (the cascade would scan the table otherwise).
CREATE INDEX sources_by_app ON sources(app_id);

CREATE TABLE inbound_events (
    id TEXT PRIMARY KEY,
    source_id TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('verified', 'duplicate', 'rejected')),
    reason TEXT,
    event_id TEXT,
    event_type TEXT,
    msg_id TEXT,
    received_at INTEGER NOT NULL
);
CREATE INDEX inbound_events_by_source ON inbound_events(source_id, id);
CREATE UNIQUE INDEX inbound_events_verified_once ON inbound_events(source_id, event_id)
    WHERE status = 'verified' AND event_id IS NOT NULL;
"#,
    // 7: a circuit breaker's pause, shared with every process through the claim query.
    r#"
ALTER TABLE endpoints ADD COLUMN paused_until INTEGER;
"#,
    // 8: API tokens, kept as SHA-256 digests: named admin tokens (`app_id` NULL, no expiry) and application-scoped
    // portal tokens (deleted with their application).
    r#"
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    digest BLOB NOT NULL UNIQUE,
    app_id TEXT REFERENCES applications(id) ON DELETE CASCADE,
    read_only INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
CREATE UNIQUE INDEX api_tokens_admin_name ON api_tokens(name) WHERE app_id IS NULL;
CREATE INDEX api_tokens_by_app ON api_tokens(app_id);
CREATE INDEX api_tokens_by_expiry ON api_tokens(expires_at) WHERE expires_at IS NOT NULL;
"#,
    // 9: open deliveries by endpoint and due time. A claim reads through it, one seek per endpoint, when endpoints
    // that cannot take more (full, paused, FIFO-blocked) hold the head of the due index with their backlog.
    r#"
CREATE INDEX deliveries_due_by_endpoint ON deliveries(endpoint_id, next_attempt_at) WHERE status IN (1, 3);
"#,
    // 10: rejected inbound requests are counted per source, reason and minute instead of stored one row each (a
    // flood of forged requests must cost nothing durable per request); the rows already stored are folded into
    // the counts. A source may limit the requests per second its ingest URL accepts (NULL: no limit).
    r#"
CREATE TABLE inbound_rejections (
    source_id TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    minute INTEGER NOT NULL,
    count INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    sample TEXT,
    PRIMARY KEY (source_id, minute, reason)
);
CREATE INDEX inbound_rejections_by_minute ON inbound_rejections(minute);
INSERT INTO inbound_rejections (source_id, reason, minute, count, first_seen, last_seen, sample)
    SELECT source_id, COALESCE(reason, 'unknown'), received_at - received_at % 60000, COUNT(*), MIN(received_at),
        MAX(received_at), NULL
    FROM inbound_events WHERE status = 'rejected' GROUP BY 1, 2, 3;
DELETE FROM inbound_events WHERE status = 'rejected';
ALTER TABLE sources ADD COLUMN rate_limit INTEGER;
"#,
    // 11: the one row the write probe rewrites every few seconds, so health learns without traffic that writes
    // fail, or work again.
    r#"
CREATE TABLE write_probe (id INTEGER PRIMARY KEY CHECK (id = 1), probed_at INTEGER NOT NULL);
INSERT INTO write_probe (id, probed_at) VALUES (1, 0);
"#,
    // 12: what an endpoint's receivers were written for: its own retry rules, NULL for the server's (the schedule
    // in the `HOOKRELAY_RETRY_SCHEDULE` form, `0,300,1800`, empty for never; whether a final 4xx is retried, 0/1),
    // its own signature headers (a JSON array) and which Standard Webhooks header families it gets; the request
    // headers a source forwards (JSON array of names) and, on its messages, their values (JSON object, or NULL);
    // an endpoint's transformation (its code, NULL when it has none, and whether it runs).
    r#"
ALTER TABLE endpoints ADD COLUMN retry_schedule TEXT;
ALTER TABLE endpoints ADD COLUMN retry_client_errors INTEGER;
ALTER TABLE endpoints ADD COLUMN signature_headers TEXT NOT NULL DEFAULT '[]';
ALTER TABLE endpoints ADD COLUMN standard_headers TEXT NOT NULL DEFAULT 'both';
ALTER TABLE sources ADD COLUMN forward_headers TEXT NOT NULL DEFAULT '[]';
ALTER TABLE messages ADD COLUMN forwarded_headers TEXT;
ALTER TABLE endpoints ADD COLUMN transformation_code TEXT;
ALTER TABLE endpoints ADD COLUMN transformation_enabled INTEGER NOT NULL DEFAULT 0;
"#,
    // 13: an event type's group (Svix's groupName); what a Svix publisher can ask of one message: its tags (JSON array, or NULL), a raw payload's content
    // type (NULL for JSON), when it is first due (NULL: at once) and when its payload is purged (NULL: after the
    // server's retention). A payload emptied by an expunge or a purge is ''.
    r#"
ALTER TABLE event_types ADD COLUMN group_name TEXT;
ALTER TABLE messages ADD COLUMN tags TEXT;
ALTER TABLE messages ADD COLUMN content_type TEXT;
ALTER TABLE messages ADD COLUMN deliver_at INTEGER;
ALTER TABLE messages ADD COLUMN payload_expires_at INTEGER;
CREATE INDEX messages_payload_expiry ON messages(payload_expires_at)
    WHERE payload_expires_at IS NOT NULL AND payload != '';
"#,
    // 14: activity counted per minute for the dashboard's charts, so a chart of 30 days reads one row per minute
    // instead of every message and attempt. Each transaction that stores messages or attempts adds to its
    // minute's row (`minute`: the minute's first millisecond). `writer` is '' here (one writer thread); PostgreSQL
    // gives each process (and each of its kinds of writes) rows of its own, so they never wait on one row;
    // readers sum over writers. Minutes are purged after 90 days (`ACTIVITY_KEPT_MS`). The pause-time index lists
    // open circuit breakers without reading every endpoint (pauses are never cleared, only overtaken by time).
    r#"
CREATE TABLE activity_minutes (
    minute INTEGER NOT NULL,
    writer TEXT NOT NULL,
    messages INTEGER NOT NULL,
    attempts_success INTEGER NOT NULL,
    attempts_fail INTEGER NOT NULL,
    PRIMARY KEY (minute, writer)
) WITHOUT ROWID;
CREATE INDEX endpoints_paused ON endpoints(paused_until) WHERE paused_until IS NOT NULL;
"#,
    // 15: failed attempts counted per minute and endpoint, so the statistics' most failing endpoints sum one row
    // per minute and failing endpoint instead of reading every failed attempt of the window. Written with
    // `activity_minutes`, by the transaction that records the attempts; `writer` as there. No foreign key: the
    // statistics join the endpoints (so a deleted endpoint drops out) and rows go after two days
    // (`ENDPOINT_FAILURES_KEPT_MS`). Counting starts with this version: failures recorded before it are not in
    // the statistics.
    r#"
CREATE TABLE endpoint_failure_minutes (
    minute INTEGER NOT NULL,
    endpoint_id TEXT NOT NULL,
    writer TEXT NOT NULL,
    failures INTEGER NOT NULL,
    PRIMARY KEY (minute, endpoint_id, writer)
) WITHOUT ROWID;
"#,
];

/// Brings the database to the newest schema, one transaction per migration.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
        tracing::info!(version = index + 1, "applied SQLite migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rejected requests stored one row each by older versions become counts per source, reason and minute.
    #[test]
    fn stored_rejections_are_folded_into_counts() {
        let mut conn = Connection::open_in_memory().expect("an in-memory database");
        let folding = MIGRATIONS
            .iter()
            .position(|sql| sql.contains("CREATE TABLE inbound_rejections"))
            .expect("the migration that adds the counts");
        for sql in &MIGRATIONS[..folding] {
            conn.execute_batch(sql).expect("an older migration");
        }
        conn.pragma_update(None, "user_version", folding as i64).expect("the version");
        // The source's application is left out: only the inbound rows matter here.
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO sources (id, name, app_id, provider, options, secrets, tolerance_secs, created_at, updated_at)
                 VALUES ('src_a', 'a', 'app_a', 'stripe', '{}', '{}', 300, 0, 0);
             INSERT INTO inbound_events (id, source_id, status, reason, received_at) VALUES
                 ('e1', 'src_a', 'rejected', 'signature_mismatch', 120001),
                 ('e2', 'src_a', 'rejected', 'signature_mismatch', 179999),
                 ('e3', 'src_a', 'rejected', 'missing_header', 120500),
                 ('e4', 'src_a', 'rejected', 'signature_mismatch', 180000),
                 ('e5', 'src_a', 'verified', NULL, 120002);",
        )
        .expect("rows of the older version");

        migrate(&mut conn).expect("the migrations");
        let mut stmt = conn
            .prepare(
                "SELECT reason, minute, count, first_seen, last_seen, sample FROM inbound_rejections \
                 ORDER BY minute, reason",
            )
            .expect("a query");
        let rows: Vec<(String, i64, i64, i64, i64, Option<String>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            .expect("rows")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        assert_eq!(
            rows,
            vec![
                ("missing_header".into(), 120000, 1, 120500, 120500, None),
                ("signature_mismatch".into(), 120000, 2, 120001, 179999, None),
                ("signature_mismatch".into(), 180000, 1, 180000, 180000, None),
            ]
        );
        let events: Vec<String> = conn
            .prepare("SELECT id FROM inbound_events")
            .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect())
            .expect("events");
        assert_eq!(events, vec!["e5".to_owned()], "only verified events stay rows");
    }
}
