//! Several `hookrelay serve` processes on one PostgreSQL database: 10,000 messages published round-robin through
//! three of them while one is killed with SIGKILL half-way. Every acknowledged message must reach the endpoint
//! (the survivors take back the dead process's leases), each message is stored once (idempotency keys hold across
//! processes), and the duplicate deliveries the kill causes are counted and must stay under 1%.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{Receiver, ServerProcess, TOKEN};
use hookrelay_testkit::http::{Publication, publish_until_accepted};
use hookrelay_testkit::postgres::ScratchSchema;
use serde_json::json;

const MESSAGES: usize = 10_000;
const INSTANCES: usize = 3;
const PUBLISHERS: usize = 24;
/// The instance killed, once this many messages are acknowledged.
const VICTIM: usize = 1;
const KILL_AT: usize = MESSAGES / 2;
const DEADLINE: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_the_work_and_lose_nothing_when_one_is_killed() {
    let started = Instant::now();
    let schema = ScratchSchema::for_test().await;
    // A receiver that takes 20 ms per request, so that the killed instance holds leased deliveries, some of
    // them in flight: the survivors must take those back (waiting for the lease to expire would miss the
    // deadline).
    let receiver = Receiver::start(Arc::new(|_| (StatusCode::OK, Duration::from_millis(20)))).await;
    let env = [
        ("HOOKRELAY_DATABASE_URL", schema.url()),
        ("HOOKRELAY_RETRY_SCHEDULE", "1,1,1,1,1"),
        ("HOOKRELAY_DELIVERY_TIMEOUT_SECS", "5"),
        // Shows the survivors taking back the killed instance's leases.
        ("HOOKRELAY_LOG", "warn"),
    ];
    let data_dirs: Vec<_> = (0..INSTANCES).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let mut servers: Vec<ServerProcess> = data_dirs.iter().map(|dir| ServerProcess::spawn(dir.path(), &env)).collect();
    let bases: Vec<String> = servers.iter().map(|server| server.base.clone()).collect();

    let http = common::http_client();
    let app = common::create(&http, &format!("{}/api/v1/app/", bases[0]), json!({"name": "shared"})).await;
    // Created through another instance: every instance serves the same data.
    common::create(&http, &format!("{}/api/v1/app/{app}/endpoint/", bases[2]), json!({"url": receiver.url()})).await;

    let dead = Arc::new(Mutex::new(HashSet::new()));
    let acknowledged: Arc<Mutex<HashMap<usize, String>>> = Arc::default();
    let retried = Arc::new(AtomicUsize::new(0));
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|worker| {
            let publisher = Publisher {
                http: http.clone(),
                bases: bases.clone(),
                dead: dead.clone(),
                app: app.clone(),
                acknowledged: acknowledged.clone(),
                retried: retried.clone(),
            };
            tokio::spawn(publisher.run(worker))
        })
        .collect();

    while acknowledged.lock().expect("acks").len() < KILL_AT {
        assert!(started.elapsed() < DEADLINE, "publishing stalled at {}", acknowledged.lock().expect("acks").len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    dead.lock().expect("dead").insert(VICTIM);
    tokio::task::block_in_place(|| servers[VICTIM].kill());
    let killed_after = acknowledged.lock().expect("acks").len();
    for publisher in publishers {
        publisher.await.expect("publisher");
    }
    let published_in = started.elapsed();
    let acknowledged = acknowledged.lock().expect("acks").clone();
    let expected: HashSet<String> = acknowledged.values().cloned().collect();
    assert_eq!(acknowledged.len(), MESSAGES);
    assert_eq!(expected.len(), MESSAGES, "two publishes were acknowledged with the same message id");

    let delivered = |receiver: &Receiver| -> (usize, HashSet<String>) {
        let all = receiver.all();
        let ids = all.iter().map(|request| request.header("webhook-id").to_owned()).collect();
        (all.len(), ids)
    };
    loop {
        let (_, ids) = delivered(&receiver);
        let missing = expected.difference(&ids).count();
        if missing == 0 {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "after {:.0} s, {missing} of {MESSAGES} acknowledged messages were never delivered",
            started.elapsed().as_secs_f64()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered_in = started.elapsed();
    // Let deliveries still in flight arrive, so the duplicate count is complete.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (requests, ids) = delivered(&receiver);
    assert!(ids.is_subset(&expected), "a delivery carried an id that was never acknowledged");

    let stored = common::list_message_ids(&http, &bases[0], &app).await;
    assert_eq!(stored.len(), MESSAGES, "the database holds {} messages for {MESSAGES} publishes", stored.len());
    let duplicates = requests - ids.len();
    println!(
        "{MESSAGES} messages through {INSTANCES} instances; instance {VICTIM} SIGKILLed after {killed_after} \
         acknowledgements; {} publish requests retried on another instance with their idempotency key",
        retried.load(Ordering::Relaxed)
    );
    println!(
        "published in {:.1} s, all delivered in {:.1} s; {requests} deliveries, {duplicates} duplicates ({:.2}%)",
        published_in.as_secs_f64(),
        delivered_in.as_secs_f64(),
        duplicates as f64 * 100.0 / MESSAGES as f64
    );
    assert!(duplicates * 100 < MESSAGES, "{duplicates} duplicate deliveries is 1% or more");
    drop(servers);
}

/// Publishes its share round-robin across the instances, each message with an idempotency key; a publish that
/// fails (its instance died, perhaps after committing) is retried on the next live instance with the same key.
struct Publisher {
    http: reqwest::Client,
    bases: Vec<String>,
    dead: Arc<Mutex<HashSet<usize>>>,
    app: String,
    acknowledged: Arc<Mutex<HashMap<usize, String>>>,
    retried: Arc<AtomicUsize>,
}

impl Publisher {
    async fn run(self, worker: usize) {
        for seq in (worker..MESSAGES).step_by(PUBLISHERS) {
            let id = self.publish(seq).await;
            let previous = self.acknowledged.lock().expect("acks").insert(seq, id);
            assert!(previous.is_none(), "message {seq} acknowledged twice");
        }
    }

    async fn publish(&self, seq: usize) -> String {
        let body = json!({"eventType": "shared.test", "payload": {"seq": seq}});
        let key = format!("multi-{seq}");
        let publication = Publication { token: TOKEN, app: &self.app, body: &body, idempotency_key: &key };
        // Round-robin from this message's own instance, skipping the dead; a 409 means the same key is being
        // processed by another instance right now.
        let live_base = |attempt: usize| {
            let instance = (seq + attempt) % self.bases.len();
            (!self.dead.lock().expect("dead").contains(&instance)).then(|| self.bases[instance].clone())
        };
        publish_until_accepted(&self.http, &publication, live_base, |_| {
            self.retried.fetch_add(1, Ordering::Relaxed);
        })
        .await
    }
}
