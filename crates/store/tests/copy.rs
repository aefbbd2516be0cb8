//! `copy::sqlite_to_postgres` against a real SQLite file and the real PostgreSQL server: every table arrives row
//! for row (compared with plain SQL on both sides), and the refusals (a target with data, a database a server
//! holds, a missing file, a file that is not hookrelay's, mismatched columns) say what to do and change nothing.
//!
//! PostgreSQL is `postgres://postgres@127.0.0.1:5432/test` unless `HOOKRELAY_TEST_DATABASE_URL` says otherwise;
//! each test works in a schema of its own, dropped at the end. An unreachable server fails the tests: a skipped
//! copy test would pass without testing anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use hookrelay_core::inbound::Provider;
use hookrelay_core::model::minute_of;
use hookrelay_core::model::{
    Application, Attempt, BackgroundTask, DeliveryOrder, DeliveryStatus, Endpoint, EventType, InboundEvent,
    InboundRejections, InboundStatus, Message, SecretSet, SignatureScheme, Source, SourceSecrets, TaskKind,
    TaskProgress, TaskStatus, TimeWindow, Transformation, TriggerType,
};
use hookrelay_core::retry::{EndpointRetry, NextStep, RetrySchedule};
use hookrelay_core::signature_headers::{HmacAlgorithm, SignatureEncoding, SignatureHeader, StandardHeaders};
use hookrelay_core::signing::EndpointSecret;
use hookrelay_core::time::now_ms;
use hookrelay_core::token::{self, ApiToken, TokenScope};
use hookrelay_core::{AppId, AttemptId, EndpointId, InboundEventId, MessageId, SourceId, TaskId, TokenId};
use hookrelay_store::copy::{CopyReport, TABLES, sqlite_to_postgres, sqlite_to_postgres_reporting};
use hookrelay_store::sqlite::SqliteStore;
use hookrelay_store::*;
use hookrelay_testkit::postgres::ScratchSchema;
use rusqlite::types::ValueRef;
use tokio_postgres::Client;
use tokio_postgres::types::Type;

/// Each table's primary key, for a deterministic row order on both sides.
const PRIMARY_KEYS: [(&str, &str); 14] = [
    ("applications", "id"),
    ("event_types", "name"),
    ("endpoints", "id"),
    ("messages", "id"),
    ("deliveries", "msg_id, endpoint_id"),
    ("attempts", "id"),
    ("idempotency", "key"),
    ("background_tasks", "id"),
    ("sources", "id"),
    ("inbound_events", "id"),
    ("inbound_rejections", "source_id, minute, reason"),
    ("api_tokens", "id"),
    ("activity_minutes", "minute, writer"),
    ("endpoint_failure_minutes", "minute, endpoint_id, writer"),
];

/// More messages than one copy batch holds (1,000 rows), so several batches per table are exercised.
const BULK_MESSAGES: usize = 2_345;

// ---------------------------------------------------------------------------------------------------------------
// Populating a SQLite store through its Store methods.

fn app(uid: Option<&str>, metadata: &[(&str, &str)]) -> Application {
    let now = now_ms();
    Application {
        id: AppId::new(),
        uid: uid.map(str::to_owned),
        name: "Acme \"quoted\" ☃".into(),
        rate_limit: uid.map(|_| 50),
        metadata: metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        created_at: now,
        updated_at: now,
    }
}

fn endpoint(app_id: &AppId) -> Endpoint {
    let now = now_ms();
    Endpoint {
        id: EndpointId::new(),
        app_id: app_id.clone(),
        uid: None,
        url: "https://example.com/hook".into(),
        description: String::new(),
        filter_types: None,
        channels: None,
        rate_limit: None,
        disabled: false,
        metadata: BTreeMap::new(),
        version: 1,
        headers: BTreeMap::new(),
        secrets: SecretSet::new(EndpointSecret::generate()),
        signature_schemes: vec![SignatureScheme::Standard],
        ordering: DeliveryOrder::Unordered,
        signature_headers: vec![SignatureHeader {
            header: "X-Signature".into(),
            algorithm: HmacAlgorithm::Sha1,
            encoding: SignatureEncoding::Hex,
            prefix: "sha1=".into(),
        }],
        standard_headers: StandardHeaders::Webhook,
        retry: EndpointRetry { schedule: Some(RetrySchedule::from_secs(&[0, 60])), client_errors: Some(false) },
        transformation: Some(Transformation { code: "function handler(w) { return w; }".into(), enabled: true }),
        created_at: now,
        updated_at: now,
    }
}

fn message(app_id: &AppId, event_type: &str, payload: &str) -> Message {
    Message { id: MessageId::new(), ..Message::new(app_id.clone(), event_type.into(), payload.into(), now_ms()) }
}

fn attempt_for(claimed: &ClaimedDelivery, status: DeliveryStatus, code: u16, response: &str) -> Attempt {
    Attempt {
        id: AttemptId::new(),
        app_id: claimed.app_id.clone(),
        msg_id: claimed.msg_id.clone(),
        endpoint_id: claimed.endpoint_id.clone(),
        url: claimed.url.clone(),
        response: response.into(),
        response_status_code: code,
        response_duration_ms: 42,
        status,
        trigger_type: TriggerType::Scheduled,
        created_at: now_ms(),
    }
}

fn outcome(attempt: Attempt, next: NextStep) -> AttemptOutcome {
    AttemptOutcome { attempt, next, disable_endpoint: false }
}

/// Fills a database with something of every kind, deliveries in every state (one left `sending`), and
/// `BULK_MESSAGES` more messages with a pending delivery each; returns when every write is durable.
async fn populate(path: &Path) {
    let store = Store::new(SqliteStore::open(path).expect("open the SQLite store"));
    let acme = app(Some("acme"), &[("plan", "pro"), ("région", "eu-west")]);
    let bulk = app(None, &[]);
    store.catalog.create_app(&acme).await.unwrap();
    store.catalog.create_app(&bulk).await.unwrap();

    let now = now_ms();
    for (name, archived) in [("invoice.paid", false), ("user.created", true)] {
        let event_type = EventType {
            name: name.into(),
            description: format!("{name} happened"),
            archived,
            deprecated: archived,
            schemas: Some(serde_json::json!({"1": {"type": "object", "required": ["id"]}})),
            feature_flag: archived.then(|| "beta".to_owned()),
            group_name: archived.then(|| "billing".to_owned()),
            created_at: now,
            updated_at: now,
        };
        store.catalog.create_event_type(&event_type).await.unwrap();
    }

    // The primary endpoint: filters, a channel, custom headers, both signature schemes, FIFO, a rotated secret.
    let mut primary = endpoint(&acme.id);
    primary.uid = Some("primary".into());
    primary.description = "Billing service".into();
    primary.filter_types = Some(vec!["invoice.paid".into()]);
    primary.channels = Some(vec!["eu".into()]);
    primary.rate_limit = Some(10);
    primary.metadata = BTreeMap::from([("team".into(), "billing".into())]);
    primary.headers = BTreeMap::from([("x-tenant".into(), "42".into()), ("x-env".into(), "prod".into())]);
    primary.signature_schemes = vec![SignatureScheme::Standard, SignatureScheme::HmacHex];
    primary.ordering = DeliveryOrder::Fifo;
    store.catalog.create_endpoint(&primary).await.unwrap();
    primary.secrets.rotate(EndpointSecret::generate(), now_ms(), 86_400_000);
    primary.version = 2;
    store.catalog.update_endpoint(&primary).await.unwrap();
    let everything = endpoint(&acme.id);
    store.catalog.create_endpoint(&everything).await.unwrap();
    let bulk_endpoint = endpoint(&bulk.id);
    store.catalog.create_endpoint(&bulk_endpoint).await.unwrap();

    // Payloads are kept byte for byte: odd spacing, escapes, non-ASCII.
    let paid = Message {
        event_id: Some("evt_1".into()),
        channels: Some(vec!["eu".into()]),
        forwarded_headers: BTreeMap::from([("X-Corp-Signature".to_owned(), "sha256=ab01".to_owned())]),
        // What a publisher can ask of a message is copied too.
        content_type: Some("application/json; charset=utf-8".into()),
        tags: Some(vec!["vip".into()]),
        // A deliverAt a minute ago, as the API takes it: due at once, so the claims below find it.
        deliver_at: Some(now_ms() - 60_000),
        payload_expires_at: Some(now_ms() + 86_400_000),
        ..message(&acme.id, "invoice.paid", "{\"b\": 1,  \"a\": [2],\n\t\"s\": \"é \\u00e9 ☃ \\\"q\\\"\"}")
    };
    let remembered = IdempotentResponse {
        key: "token:/api/v1/app/acme/msg/:key-1".into(),
        status: 202,
        body: vec![b'{', 0, 0x9f, 0x92, 0x96, 0xff, b'}'],
        expires_at: now_ms() + 3_600_000,
    };
    store.messages.publish_message(&paid, Some(&remembered)).await.unwrap();
    let created = message(&acme.id, "user.created", "{}");
    let retried = message(&acme.id, "invoice.paid", "[1, 2, 3]");
    let in_flight = message(&acme.id, "invoice.paid", "\"just a string\"");
    for msg in [&created, &retried, &in_flight] {
        store.messages.publish_message(msg, None).await.unwrap();
    }
    store
        .messages
        .put_idempotent(&IdempotentResponse {
            key: "token:/api/v1/app/:key-2".into(),
            status: 201,
            body: b"{\"id\":\"app_1\"}".to_vec(),
            expires_at: now_ms() + 60_000,
        })
        .await
        .unwrap();

    // Deliveries in every state: succeeded (then resent by hand: manual), failed for good, retrying, released,
    // and one left claimed (`sending`), as after a server stopped while sending it.
    let now = now_ms();
    let claimed =
        store.queue.claim_due(now, 100, now + 600_000, std::slice::from_ref(&bulk_endpoint.id)).await.unwrap();
    assert_eq!(claimed.len(), 5, "paid ×2, created, retried and in-flight deliveries");
    let find = |msg: &Message, ep: &Endpoint| {
        claimed.iter().find(|d| d.msg_id == msg.id && d.endpoint_id == ep.id).cloned().expect("a claimed delivery")
    };
    let outcomes = vec![
        outcome(attempt_for(&find(&paid, &primary), DeliveryStatus::Success, 200, "ok"), NextStep::Succeeded),
        // A receiver's binary answer leaves NULs in the response, which PostgreSQL text cannot hold.
        outcome(
            attempt_for(&find(&paid, &everything), DeliveryStatus::Fail, 500, "bin\0ary\0"),
            NextStep::RetryAt(now + 300_000),
        ),
        outcome(attempt_for(&find(&created, &everything), DeliveryStatus::Fail, 410, "gone"), NextStep::GiveUp),
    ];
    store.queue.record_outcomes(&outcomes).await.unwrap();
    let released = find(&retried, &everything);
    store.queue.release(&[released.into_release()]).await.unwrap();
    store.messages.resend(&paid.id, &primary.id).await.unwrap();
    let _still_sending = find(&in_flight, &everything);

    let task = BackgroundTask {
        id: TaskId::new(),
        kind: TaskKind::Recover,
        app_id: acme.id.clone(),
        endpoint_id: everything.id.clone(),
        status: TaskStatus::Running,
        window: TimeWindow { since: now - 3_600_000, until: now },
        cursor: None,
        progress: TaskProgress::default(),
        created_at: now,
        updated_at: now,
    };
    store.recovery.create_background_task(&task).await.unwrap();
    let progressed = BackgroundTask {
        status: TaskStatus::Failed,
        cursor: Some(paid.id.clone()),
        progress: TaskProgress { sent: 1, scanned: 2, total: 3, error: Some("endpoint deleted".into()) },
        updated_at: now + 1,
        ..task
    };
    store.recovery.update_background_task(&progressed).await.unwrap();

    // An inbound source with options, a rotated secret and a rate limit; a verified event (published), its
    // duplicate, and counted rejections.
    let options = serde_json::json!({
        "signatureHeader": "X-Corp-Signature", "signatureEncoding": "base64", "signaturePrefix": "",
        "timestampHeader": "X-Corp-Timestamp", "eventTypeField": "event", "eventIdHeader": "X-Corp-Id",
        "eventIdField": "data.id"
    });
    let mut secrets = SourceSecrets::new("first-secret".into());
    secrets.rotate("second-secret".into(), now, 3_600_000);
    let source = Source {
        id: SourceId::new(),
        uid: Some("corp".into()),
        name: "Corp billing".into(),
        app_id: acme.id.clone(),
        provider: Provider::from_options("hmac-sha256", options.as_object().expect("an object")).unwrap(),
        secrets,
        tolerance_secs: 300,
        rate_limit: Some(25),
        forward_headers: vec!["X-Corp-Signature".into(), "X-Corp-Timestamp".into()],
        created_at: now,
        updated_at: now,
    };
    store.inbound.create_source(&source).await.unwrap();
    let inbound = |status, event_id: Option<&str>, reason: Option<&str>| InboundEvent {
        id: InboundEventId::new(),
        source_id: source.id.clone(),
        status,
        reason: reason.map(str::to_owned),
        event_id: event_id.map(str::to_owned),
        event_type: event_id.map(|_| "invoice.paid".to_owned()),
        msg_id: None,
        received_at: now_ms(),
    };
    let published = message(&acme.id, "invoice.paid", r#"{"data":{"id":"inv_9"}}"#);
    let first = inbound(InboundStatus::Verified, Some("inv_9"), None);
    store.inbound.ingest(&first, Some(&published)).await.unwrap();
    let again = inbound(InboundStatus::Verified, Some("inv_9"), None);
    let repeat = message(&acme.id, "invoice.paid", r#"{"data":{"id":"inv_9"}}"#);
    assert!(matches!(store.inbound.ingest(&again, Some(&repeat)).await.unwrap(), IngestOutcome::Duplicate { .. }));
    let at = now_ms();
    let counted = InboundRejections {
        source_id: source.id.clone(),
        reason: "signature_mismatch".into(),
        minute: minute_of(at),
        count: 7,
        first_seen: at,
        last_seen: at,
        sample: Some(r#"{"detail":"no signature matches"}"#.into()),
    };
    store.inbound.record_rejections(&[counted]).await.unwrap();

    // API tokens: a named admin token (no application, no expiry) and a read-only application token (the digest
    // is a blob).
    for (name, scope, expires_at) in [
        ("ci".to_owned(), TokenScope::Admin, None),
        (acme.id.as_str().to_owned(), TokenScope::App { app_id: acme.id.clone(), read_only: true }, Some(now + 60_000)),
    ] {
        let (_, digest) = token::generate("hr_test_");
        let token = ApiToken { id: TokenId::new(), name, scope, digest, created_at: now, expires_at };
        store.credentials.create_token(&token).await.unwrap();
    }

    // The bulk: published concurrently so group commit keeps it quick.
    let mut publishing = tokio::task::JoinSet::new();
    for i in 0..BULK_MESSAGES {
        let store = store.clone();
        let msg = message(&bulk.id, "invoice.paid", &format!("{{\"n\":{i}}}"));
        publishing.spawn(async move { store.messages.publish_message(&msg, None).await });
    }
    while let Some(published) = publishing.join_next().await {
        published.expect("a publish task").expect("a publish");
    }
}

/// A second, different database (for the "target not empty" case).
async fn populate_other(path: &Path) {
    let store = SqliteStore::open(path).expect("open the SQLite store");
    let other = app(Some("other"), &[]);
    store.create_app(&other).await.unwrap();
    store.publish_message(&message(&other.id, "x", "{}"), None).await.unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Reading both sides with plain SQL.

/// A value after the copy's type mapping: SQLite integer/text/blob/null, PostgreSQL BIGINT/TEXT/BYTEA/NULL.
#[derive(Clone, Debug, PartialEq)]
enum V {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

type Row = BTreeMap<String, V>;

fn sqlite_rows(path: &Path, table: &str) -> Vec<Row> {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the SQLite file read-only");
    let key = primary_key(table);
    let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY {key}")).expect("prepare");
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let mut rows = stmt.query([]).expect("query");
    let mut out = Vec::new();
    while let Some(row) = rows.next().expect("a row") {
        let mut values = Row::new();
        for (index, name) in names.iter().enumerate() {
            let value = match row.get_ref(index).expect("a value") {
                ValueRef::Null => V::Null,
                ValueRef::Integer(n) => V::Int(n),
                ValueRef::Text(bytes) => V::Text(String::from_utf8(bytes.to_vec()).expect("UTF-8 text")),
                ValueRef::Blob(bytes) => V::Bytes(bytes.to_vec()),
                ValueRef::Real(r) => panic!("{table}.{name}: hookrelay stores no REAL values, found {r}"),
            };
            values.insert(name.clone(), value);
        }
        out.push(values);
    }
    out
}

async fn postgres_rows(client: &Client, table: &str) -> Vec<Row> {
    // "C" collation: byte order, as SQLite's default BINARY, whatever the database's locale (text columns only:
    // `inbound_rejections.minute` is a number).
    let key = primary_key(table)
        .split(", ")
        .map(|c| if c == "minute" { c.to_owned() } else { format!("{c} COLLATE \"C\"") })
        .collect::<Vec<_>>()
        .join(", ");
    let rows = client.query(&format!("SELECT * FROM {table} ORDER BY {key}"), &[]).await.expect("select");
    rows.iter()
        .map(|row| {
            row.columns()
                .iter()
                .enumerate()
                .map(|(index, column)| {
                    let value = match *column.type_() {
                        Type::INT8 => row.get::<_, Option<i64>>(index).map_or(V::Null, V::Int),
                        Type::TEXT => row.get::<_, Option<String>>(index).map_or(V::Null, V::Text),
                        Type::BYTEA => row.get::<_, Option<Vec<u8>>>(index).map_or(V::Null, V::Bytes),
                        ref other => panic!("{table}.{}: unexpected PostgreSQL type {other}", column.name()),
                    };
                    (column.name().to_owned(), value)
                })
                .collect()
        })
        .collect()
}

fn primary_key(table: &str) -> &'static str {
    PRIMARY_KEYS.iter().find(|(t, _)| *t == table).map(|(_, key)| *key).expect("a known table")
}

/// Asserts PostgreSQL holds exactly the SQLite database's rows, after the copy's mapping: `sending` deliveries
/// pending and due at a time in `due_between`, NULs in text replaced, `claimed_by` NULL.
async fn assert_same_rows(sqlite: &Path, pg: &Client, due_between: (i64, i64)) {
    for table in TABLES {
        let expected = sqlite_rows(sqlite, table);
        let mut actual = postgres_rows(pg, table).await;
        assert_eq!(actual.len(), expected.len(), "{table}: row count");
        for (index, (want, got)) in expected.into_iter().zip(actual.iter_mut()).enumerate() {
            let mut want: Row = want
                .into_iter()
                .map(|(column, value)| match value {
                    V::Text(text) => (column, V::Text(text.replace('\0', "\u{FFFD}"))),
                    other => (column, other),
                })
                .collect();
            if table == "deliveries" {
                assert_eq!(got.remove("claimed_by"), Some(V::Null), "deliveries row {index}: claimed_by");
                if want["status"] == V::Int(3) {
                    want.insert("status".into(), V::Int(1));
                    let due = got.get("next_attempt_at").cloned();
                    assert!(
                        matches!(due, Some(V::Int(at)) if at >= due_between.0 && at <= due_between.1),
                        "a sending delivery must be due at the time of the copy, got {due:?}"
                    );
                    want.insert("next_attempt_at".into(), due.unwrap_or(V::Null));
                }
            }
            assert_eq!(
                want.keys().collect::<BTreeSet<_>>(),
                got.keys().collect::<BTreeSet<_>>(),
                "{table}: column names"
            );
            assert_eq!(&want, got, "{table} row {index}");
        }
    }
}

fn sqlite_count(path: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.query_row(sql, [], |row| row.get(0)).unwrap()
}

fn assert_report_matches(report: &CopyReport, sqlite: &Path) {
    assert_eq!(report.tables.iter().map(|t| t.table).collect::<Vec<_>>(), TABLES.to_vec());
    for table in TABLES {
        let rows = sqlite_count(sqlite, &format!("SELECT COUNT(*) FROM {table}"));
        assert_eq!(report.rows(table), rows as u64, "{table}: rows in the report");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The cases.

#[tokio::test]
async fn every_table_arrives_row_for_row_and_sending_deliveries_become_due() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hookrelay.db");
    populate(&db).await;
    let schema = ScratchSchema::for_test().await;

    let before = now_ms();
    let reported = std::sync::Mutex::new(Vec::new());
    let report = sqlite_to_postgres_reporting(&db, schema.url(), &|table, rows| {
        reported.lock().unwrap().push((table, rows));
    })
    .await
    .expect("the copy");
    let after = now_ms();

    assert_report_matches(&report, &db);
    // Progress came batch by batch, table by table in copy order, ending at each non-empty table's count.
    let reported = reported.into_inner().unwrap();
    assert!(reported.iter().filter(|(table, _)| *table == "messages").count() > 1, "{reported:?}");
    let order = |table: &str| TABLES.iter().position(|t| *t == table).unwrap();
    assert!(reported.windows(2).all(|w| (order(w[0].0), w[0].1) < (order(w[1].0), w[1].1)), "{reported:?}");
    for copied in report.tables.iter().filter(|t| t.rows > 0) {
        let last = reported.iter().rev().find(|(table, _)| *table == copied.table);
        assert_eq!(last, Some(&(copied.table, copied.rows)), "{reported:?}");
    }
    assert_eq!(report.rows("messages"), BULK_MESSAGES as u64 + 5);
    assert_eq!(report.requeued_deliveries, 1);
    let nul = report.tables.iter().map(|t| (t.table, t.nul_replaced)).filter(|(_, n)| *n > 0).collect::<Vec<_>>();
    assert_eq!(nul, vec![("attempts", 1)]);
    // Every kind of row is there (a state the fixture failed to create would make the comparison weaker).
    for (what, sql) in [
        ("a sending delivery", "SELECT COUNT(*) FROM deliveries WHERE status = 3"),
        ("a failed delivery", "SELECT COUNT(*) FROM deliveries WHERE status = 2"),
        ("a manual resend", "SELECT COUNT(*) FROM deliveries WHERE manual = 1"),
        ("a retry planned", "SELECT COUNT(*) FROM deliveries WHERE status = 1 AND attempts = 1 AND manual = 0"),
        ("a rotated endpoint secret", "SELECT COUNT(*) FROM endpoints WHERE previous_secrets <> '[]'"),
        ("a duplicate inbound event", "SELECT COUNT(*) FROM inbound_events WHERE status = 'duplicate'"),
        ("counted rejections", "SELECT COUNT(*) FROM inbound_rejections WHERE count = 7"),
        ("a source's rate limit", "SELECT COUNT(*) FROM sources WHERE rate_limit = 25"),
        (
            "every message counted",
            "SELECT (SELECT SUM(messages) FROM activity_minutes) = (SELECT COUNT(*) FROM messages)",
        ),
        (
            "every attempt counted",
            "SELECT (SELECT SUM(attempts_success + attempts_fail) FROM activity_minutes) = \
             (SELECT COUNT(*) FROM attempts)",
        ),
        (
            "every failed attempt counted by endpoint",
            "SELECT (SELECT SUM(failures) FROM endpoint_failure_minutes) = \
             (SELECT COUNT(*) FROM attempts WHERE status <> 0) AND EXISTS (SELECT 1 FROM endpoint_failure_minutes)",
        ),
    ] {
        assert_eq!(sqlite_count(&db, sql), 1, "the fixture should hold {what}");
    }

    let pg = schema.client().await;
    assert_same_rows(&db, &pg, (before, after)).await;
}

#[tokio::test]
async fn a_target_with_data_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.db");
    let second = dir.path().join("second.db");
    populate_other(&first).await;
    populate_other(&second).await;
    let schema = ScratchSchema::for_test().await;
    let before = now_ms();
    sqlite_to_postgres(&first, schema.url()).await.expect("the first copy");
    let after = now_ms();

    match sqlite_to_postgres(&second, schema.url()).await {
        Err(StoreError::Conflict(text)) => {
            assert!(text.contains("already holds hookrelay data") && text.contains("applications"), "{text}");
            assert!(text.contains("never merges"), "{text}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let pg = schema.client().await;
    assert_same_rows(&first, &pg, (before, after)).await;

    // An event type alone is data too: the copy would otherwise collide with it or merge into it.
    let schema = ScratchSchema::for_test().await;
    let mut client = schema.client().await;
    hookrelay_store::postgres::schema::migrate(&mut client).await.unwrap();
    client
        .batch_execute(
            "INSERT INTO event_types (name, description, archived, deprecated, created_at, updated_at) \
             VALUES ('x', '', 0, 0, 0, 0)",
        )
        .await
        .unwrap();
    let err = sqlite_to_postgres(&second, schema.url()).await.expect_err("a refusal");
    assert!(err.to_string().contains("event_types"), "{err}");
    assert_eq!(postgres_rows(&client, "applications").await.len(), 0);
}

#[tokio::test]
async fn a_database_a_server_holds_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hookrelay.db");
    let running = SqliteStore::open(&db).expect("open the SQLite store");
    let schema = ScratchSchema::for_test().await;
    match sqlite_to_postgres(&db, schema.url()).await {
        Err(StoreError::Unavailable(text)) => assert!(text.contains("stop the server"), "{text}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    drop(running);
    sqlite_to_postgres(&db, schema.url()).await.expect("once the server is stopped, the copy runs");
}

#[tokio::test]
async fn a_missing_or_foreign_sqlite_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let schema = ScratchSchema::for_test().await;

    let missing = dir.path().join("nope").join("hookrelay.db");
    match sqlite_to_postgres(&missing, schema.url()).await {
        Err(StoreError::Unavailable(text)) => {
            assert!(text.contains("no SQLite database at") && text.contains("nope"), "{text}");
            assert!(text.contains("check the path"), "{text}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!missing.exists(), "the copy must not create the file it was asked to read");

    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let err = sqlite_to_postgres(&empty, schema.url()).await.expect_err("a refusal");
    assert!(err.to_string().contains("not a hookrelay database"), "{err}");
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0, "the foreign file must stay untouched");

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"this is not a SQLite database, just some text long enough to be read").unwrap();
    let err = sqlite_to_postgres(&garbage, schema.url()).await.expect_err("a refusal");
    assert!(err.to_string().contains("cannot read") && err.to_string().contains("garbage.db"), "{err}");

    let err = sqlite_to_postgres(dir.path(), schema.url()).await.expect_err("a refusal");
    assert!(err.to_string().contains("is a directory"), "{err}");
}

#[tokio::test]
async fn mismatched_columns_are_refused_before_anything_is_copied() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hookrelay.db");
    populate_other(&db).await;
    let schema = ScratchSchema::for_test().await;
    let mut client = schema.client().await;
    hookrelay_store::postgres::schema::migrate(&mut client).await.unwrap();
    client.batch_execute("ALTER TABLE attempts ADD COLUMN retried_by TEXT").await.unwrap();

    match sqlite_to_postgres(&db, schema.url()).await {
        Err(StoreError::Internal(text)) => {
            assert!(text.contains("table attempts") && text.contains("only in PostgreSQL: [retried_by]"), "{text}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(postgres_rows(&client, "applications").await.len(), 0);
}

#[tokio::test]
async fn an_unreachable_postgres_is_reported_with_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hookrelay.db");
    populate_other(&db).await;
    // Port 1 on loopback: nothing listens there.
    match sqlite_to_postgres(&db, "postgres://hookrelay:s3cret-pw@127.0.0.1:1/none").await {
        Err(StoreError::Unavailable(text)) => {
            assert!(text.contains("cannot connect to PostgreSQL"), "{text}");
            assert!(!text.contains("s3cret-pw"), "the password leaked into: {text}");
        }
        other => panic!("expected a connection failure, got {other:?}"),
    }
    // The lock is released: a server (or another copy) can open the file again.
    drop(SqliteStore::open(&db).expect("the SQLite file is free again"));
}

#[tokio::test]
async fn a_failure_half_way_leaves_postgres_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hookrelay.db");
    populate_other(&db).await;
    // A delivery whose message is gone: impossible through the store (foreign keys are on), possible in a file
    // edited by hand. PostgreSQL refuses it after applications and messages were already copied.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
    conn.execute(
        "INSERT INTO deliveries (msg_id, endpoint_id, status, attempts, manual, next_attempt_at) \
         VALUES ('msg_gone', 'ep_gone', 1, 0, 0, 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let schema = ScratchSchema::for_test().await;

    match sqlite_to_postgres(&db, schema.url()).await {
        Err(StoreError::Internal(text)) => {
            assert!(text.contains("copying into table deliveries failed") && text.contains("msg_gone"), "{text}");
            assert!(text.contains("delete that row from the SQLite file"), "{text}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    let pg = schema.client().await;
    for table in TABLES {
        assert_eq!(postgres_rows(&pg, table).await, vec![], "{table} must be empty after a failed copy");
    }
}
