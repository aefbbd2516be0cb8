//! The storage contract: what every `Store` backend must do, written once against `dyn Store` and run per
//! backend (see the `backend_tests!` invocations at the bottom).

use std::collections::BTreeMap;
use std::sync::Arc;

use hookrelay_core::cipher::SecretCipher;
use hookrelay_core::inbound::Provider;
use hookrelay_core::model::minute_of;
use hookrelay_core::model::{
    Application, Attempt, BackgroundTask, Delivery, DeliveryOrder, DeliveryStatus, Endpoint, EventType, InboundEvent,
    InboundRejections, InboundStatus, Message, SecretSet, SignatureScheme, Source, SourceSecrets, TaskKind,
    TaskProgress, TaskStatus, TimeWindow, Transformation, TriggerType,
};
use hookrelay_core::retry::{EndpointRetry, NextStep, RetrySchedule};
use hookrelay_core::signature_headers::{HmacAlgorithm, SignatureEncoding, SignatureHeader, StandardHeaders};
use hookrelay_core::signing::EndpointSecret;
use hookrelay_core::time::now_ms;
use hookrelay_core::token::{self, ApiToken, TokenScope};
use hookrelay_core::{AppId, AttemptId, EndpointId, InboundEventId, MessageId, SourceId, TaskId, TokenId};
use hookrelay_store::*;
use hookrelay_testkit::postgres::{ScratchSchema, test_database_url};

fn app(uid: Option<&str>) -> Application {
    let now = now_ms();
    Application {
        id: AppId::new(),
        uid: uid.map(str::to_owned),
        name: "Acme".into(),
        rate_limit: None,
        metadata: BTreeMap::from([("plan".into(), "pro".into())]),
        created_at: now,
        updated_at: now,
    }
}

fn endpoint(app_id: &AppId, filter: Option<&[&str]>, channels: Option<&[&str]>) -> Endpoint {
    let now = now_ms();
    Endpoint {
        id: EndpointId::new(),
        app_id: app_id.clone(),
        uid: None,
        url: "https://example.com/hook".into(),
        description: String::new(),
        filter_types: filter.map(|f| f.iter().map(|s| s.to_string()).collect()),
        channels: channels.map(|c| c.iter().map(|s| s.to_string()).collect()),
        rate_limit: None,
        disabled: false,
        metadata: BTreeMap::new(),
        version: 1,
        headers: BTreeMap::from([("x-tenant".into(), "42".into())]),
        secrets: SecretSet::new(EndpointSecret::generate()),
        signature_schemes: vec![SignatureScheme::Standard, SignatureScheme::HmacHex],
        ordering: DeliveryOrder::Unordered,
        signature_headers: Vec::new(),
        standard_headers: Default::default(),
        retry: Default::default(),
        transformation: None,
        created_at: now,
        updated_at: now,
    }
}

fn message(app_id: &AppId, event_type: &str, channels: Option<&[&str]>) -> Message {
    Message {
        id: MessageId::new(),
        channels: channels.map(|c| c.iter().map(|s| s.to_string()).collect()),
        ..Message::new(app_id.clone(), event_type.into(), r#"{"b": 1,  "a": [2]}"#.into(), now_ms())
    }
}

fn attempt_for(claimed: &ClaimedDelivery, status: DeliveryStatus, code: u16) -> Attempt {
    Attempt {
        id: AttemptId::new(),
        app_id: claimed.app_id.clone(),
        msg_id: claimed.msg_id.clone(),
        endpoint_id: claimed.endpoint_id.clone(),
        url: claimed.url.clone(),
        // Kept exactly, whatever the receiver answered: quotes, escapes, line breaks, any script.
        response: "{\"ok\": \"é\\n\"}\r\n\t✓ 0x7f\u{7f} 𝄞".into(),
        response_status_code: code,
        response_duration_ms: 3,
        status,
        trigger_type: TriggerType::Scheduled,
        created_at: now_ms(),
    }
}

async fn app_with_endpoints(store: &Store, endpoints: &[Endpoint]) {
    for ep in endpoints {
        store.catalog.create_endpoint(ep).await.unwrap();
    }
}

async fn applications_are_found_by_id_or_uid_and_uids_are_unique(store: Store) {
    let acme = app(Some("acme"));
    store.catalog.create_app(&acme).await.unwrap();
    assert_eq!(store.catalog.get_app(acme.id.as_str()).await.unwrap(), acme);
    assert_eq!(store.catalog.get_app("acme").await.unwrap(), acme);
    assert!(matches!(store.catalog.create_app(&app(Some("acme"))).await, Err(StoreError::Conflict(_))));
    assert!(matches!(store.catalog.get_app("nope").await, Err(StoreError::NotFound)));

    let mut renamed = acme.clone();
    renamed.name = "Acme Inc".into();
    renamed.uid = None;
    store.catalog.update_app(&renamed).await.unwrap();
    assert_eq!(store.catalog.get_app(acme.id.as_str()).await.unwrap().name, "Acme Inc");
    assert!(matches!(store.catalog.get_app("acme").await, Err(StoreError::NotFound)));

    store.catalog.delete_app(&acme.id).await.unwrap();
    assert!(matches!(store.catalog.get_app(acme.id.as_str()).await, Err(StoreError::NotFound)));
    assert!(matches!(store.catalog.delete_app(&acme.id).await, Err(StoreError::NotFound)));
}

async fn lists_page_forwards_and_backwards(store: Store) {
    let mut ids = Vec::new();
    for i in 0..7 {
        let mut a = app(None);
        a.id = AppId::at(1_700_000_000_000 + i);
        store.catalog.create_app(&a).await.unwrap();
        ids.push(a.id.to_string());
    }
    let mut seen = Vec::new();
    let mut request = PageRequest::first(3, Order::Ascending);
    loop {
        let page = store.catalog.list_apps(&request).await.unwrap();
        seen.extend(page.items.iter().map(|a| a.id.to_string()));
        if page.done {
            break;
        }
        request.cursor = page.items.last().map(|a| a.id.to_string());
    }
    assert_eq!(seen, ids);

    let newest_first = store.catalog.list_apps(&PageRequest::first(2, Order::Descending)).await.unwrap();
    assert_eq!(
        newest_first.items.iter().map(|a| a.id.to_string()).collect::<Vec<_>>(),
        vec![ids[6].clone(), ids[5].clone()]
    );
    assert!(!newest_first.done);

    // Backwards from the 5th item: the two before it, still in list order.
    let back = PageRequest { limit: 2, cursor: Some(ids[4].clone()), backwards: true, order: Order::Ascending };
    let page = store.catalog.list_apps(&back).await.unwrap();
    assert_eq!(page.items.iter().map(|a| a.id.to_string()).collect::<Vec<_>>(), vec![ids[2].clone(), ids[3].clone()]);
    assert!(!page.done);
}

async fn event_types_archive_and_report_unknown_names(store: Store) {
    let now = now_ms();
    let mut et = EventType {
        name: "invoice.paid".into(),
        description: "An invoice was paid".into(),
        archived: false,
        deprecated: false,
        schemas: Some(serde_json::json!({"1": {"type": "object"}})),
        feature_flag: None,
        group_name: None,
        created_at: now,
        updated_at: now,
    };
    store.catalog.create_event_type(&et).await.unwrap();
    assert!(matches!(store.catalog.create_event_type(&et).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.catalog.get_event_type("invoice.paid").await.unwrap(), et);
    et.archived = true;
    store.catalog.update_event_type(&et).await.unwrap();
    let visible = store.catalog.list_event_types(&PageRequest::first(10, Order::Ascending), false).await.unwrap();
    assert!(visible.items.is_empty());
    let all = store.catalog.list_event_types(&PageRequest::first(10, Order::Ascending), true).await.unwrap();
    assert_eq!(all.items.len(), 1);
    let unknown = store.catalog.unknown_event_types(&["invoice.paid".into(), "user.created".into()]).await.unwrap();
    assert_eq!(unknown, vec!["user.created".to_string()]);
    store.catalog.expunge_event_type("invoice.paid").await.unwrap();
    assert!(matches!(store.catalog.get_event_type("invoice.paid").await, Err(StoreError::NotFound)));
}

async fn endpoints_round_trip_with_secrets_and_headers(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let mut ep = endpoint(&acme.id, Some(&["a"]), Some(&["c1"]));
    ep.uid = Some("primary".into());
    store.catalog.create_endpoint(&ep).await.unwrap();
    assert_eq!(store.catalog.get_endpoint(&acme.id, "primary").await.unwrap(), ep);
    let mut dup = endpoint(&acme.id, None, None);
    dup.uid = Some("primary".into());
    assert!(matches!(store.catalog.create_endpoint(&dup).await, Err(StoreError::Conflict(_))));

    ep.secrets.rotate(EndpointSecret::generate(), now_ms(), 60_000);
    ep.headers.insert("x-other".into(), "1".into());
    store.catalog.update_endpoint(&ep).await.unwrap();
    assert_eq!(store.catalog.get_endpoint(&acme.id, ep.id.as_str()).await.unwrap(), ep);

    let other_app = app(None);
    store.catalog.create_app(&other_app).await.unwrap();
    assert!(matches!(store.catalog.get_endpoint(&other_app.id, ep.id.as_str()).await, Err(StoreError::NotFound)));

    store.catalog.delete_endpoint(&acme.id, &ep.id).await.unwrap();
    assert!(matches!(store.catalog.get_endpoint(&acme.id, ep.id.as_str()).await, Err(StoreError::NotFound)));
}

async fn publishing_routes_to_matching_enabled_endpoints(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let all = endpoint(&acme.id, None, None);
    let only_b = endpoint(&acme.id, Some(&["b"]), None);
    let channel = endpoint(&acme.id, None, Some(&["eu"]));
    let mut disabled = endpoint(&acme.id, None, None);
    disabled.disabled = true;
    app_with_endpoints(&store, &[all.clone(), only_b.clone(), channel.clone(), disabled]).await;

    let published = store.messages.publish_message(&message(&acme.id, "a", None), None).await.unwrap();
    assert_eq!(published.deliveries, 1);
    let published = store.messages.publish_message(&message(&acme.id, "b", Some(&["eu"])), None).await.unwrap();
    assert_eq!(published.deliveries, 3);

    let page = store
        .messages
        .list_message_deliveries(&published.message.id, &PageRequest::first(10, Order::Ascending))
        .await
        .unwrap();
    let mut routed: Vec<_> = page.items.iter().map(|(ep, d)| (ep.id.clone(), d.status)).collect();
    routed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (all.id.clone(), DeliveryStatus::Pending),
        (only_b.id.clone(), DeliveryStatus::Pending),
        (channel.id.clone(), DeliveryStatus::Pending),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(routed, expected);
    assert_eq!(store.messages.endpoint_delivery_counts(&all.id).await.unwrap().pending, 2);
}

async fn messages_keep_payload_bytes_and_event_ids_are_unique(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let mut msg = message(&acme.id, "a", None);
    msg.event_id = Some("evt-1".into());
    store.messages.publish_message(&msg, None).await.unwrap();
    assert_eq!(store.messages.get_message(&acme.id, msg.id.as_str()).await.unwrap(), msg);
    assert_eq!(store.messages.get_message(&acme.id, "evt-1").await.unwrap().payload, r#"{"b": 1,  "a": [2]}"#);
    let mut again = message(&acme.id, "a", None);
    again.event_id = Some("evt-1".into());
    assert!(matches!(store.messages.publish_message(&again, None).await, Err(StoreError::Conflict(_))));
    // Event ids are unique per application, not globally.
    let other = app(None);
    store.catalog.create_app(&other).await.unwrap();
    let mut elsewhere = message(&other.id, "a", None);
    elsewhere.event_id = Some("evt-1".into());
    store.messages.publish_message(&elsewhere, None).await.unwrap();
}

async fn message_lists_filter_by_type_channel_and_time(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let mut early = message(&acme.id, "a", Some(&["eu"]));
    early.created_at = 1_000;
    early.id = MessageId::at(1_000);
    let late = message(&acme.id, "b", Some(&["us"]));
    store.messages.publish_message(&early, None).await.unwrap();
    store.messages.publish_message(&late, None).await.unwrap();

    let first = PageRequest::first(10, Order::Descending);
    let list = |filter: MessageFilter| {
        let store = store.clone();
        let (app_id, first) = (acme.id.clone(), first.clone());
        async move {
            store
                .messages
                .list_messages(&app_id, &filter, &first)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|m| m.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(MessageFilter::default()).await, vec![late.id.clone(), early.id.clone()]);
    assert_eq!(
        list(MessageFilter { event_types: Some(vec!["a".into()]), ..Default::default() }).await,
        vec![early.id.clone()]
    );
    assert_eq!(list(MessageFilter { channel: Some("us".into()), ..Default::default() }).await, vec![late.id.clone()]);
    assert_eq!(list(MessageFilter { before: Some(2_000), ..Default::default() }).await, vec![early.id.clone()]);
    assert_eq!(list(MessageFilter { after: Some(2_000), ..Default::default() }).await, vec![late.id.clone()]);
}

async fn idempotent_responses_commit_with_the_message_and_expire(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let remembered = IdempotentResponse {
        key: "k1".into(),
        status: 202,
        body: b"{\"id\":1}".to_vec(),
        expires_at: now_ms() + 60_000,
    };
    store.messages.publish_message(&message(&acme.id, "a", None), Some(&remembered)).await.unwrap();
    assert_eq!(store.messages.get_idempotent("k1").await.unwrap(), Some(remembered.clone()));

    // A message that fails (duplicate event id) leaves no remembered response behind.
    let mut first = message(&acme.id, "a", None);
    first.event_id = Some("dup".into());
    store.messages.publish_message(&first, None).await.unwrap();
    let mut second = message(&acme.id, "a", None);
    second.event_id = Some("dup".into());
    let k2 = IdempotentResponse { key: "k2".into(), ..remembered.clone() };
    assert!(store.messages.publish_message(&second, Some(&k2)).await.is_err());
    assert_eq!(store.messages.get_idempotent("k2").await.unwrap(), None);

    // The first response wins; an expired one is invisible and replaceable.
    store.messages.put_idempotent(&IdempotentResponse { status: 500, ..remembered.clone() }).await.unwrap();
    assert_eq!(store.messages.get_idempotent("k1").await.unwrap().unwrap().status, 202);
    let expired = IdempotentResponse { key: "k3".into(), expires_at: now_ms() - 1, ..remembered.clone() };
    store.messages.put_idempotent(&expired).await.unwrap();
    assert_eq!(store.messages.get_idempotent("k3").await.unwrap(), None);
    let fresh = IdempotentResponse { key: "k3".into(), ..remembered };
    store.messages.put_idempotent(&fresh).await.unwrap();
    assert_eq!(store.messages.get_idempotent("k3").await.unwrap(), Some(fresh));
}

async fn claims_lease_deliveries_until_recorded(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let ep = endpoint(&acme.id, None, None);
    app_with_endpoints(&store, std::slice::from_ref(&ep)).await;
    let msg = message(&acme.id, "a", None);
    store.messages.publish_message(&msg, None).await.unwrap();
    let now = now_ms();
    assert!(store.queue.next_due_at().await.unwrap().is_some_and(|due| due <= now));

    let claimed = store.queue.claim_due(now, 10, now + 60_000, &[]).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let delivery = &claimed[0];
    assert_eq!((delivery.msg_id.clone(), delivery.endpoint_id.clone()), (msg.id.clone(), ep.id.clone()));
    assert_eq!(&*delivery.payload, msg.payload);
    assert_eq!(delivery.secrets, ep.secrets);
    assert_eq!(*delivery.headers, ep.headers);
    assert_eq!(delivery.signature_schemes, ep.signature_schemes);
    assert_eq!(delivery.event_id, msg.event_id);
    assert_eq!(delivery.attempts, 0);
    assert!(!delivery.taken_over, "nobody held it before");
    // Leased: not claimable again until the lease ends; then the claim says it took the lease over.
    assert!(store.queue.claim_due(now, 10, now + 60_000, &[]).await.unwrap().is_empty());
    let lapsed = store.queue.claim_due(now + 60_000, 10, now + 120_000, &[]).await.unwrap();
    assert_eq!(lapsed.len(), 1);
    assert!(lapsed[0].taken_over);

    // A failed attempt with a retry planned.
    let failed = attempt_for(delivery, DeliveryStatus::Fail, 500);
    store
        .queue
        .record_outcomes(&[AttemptOutcome {
            attempt: failed.clone(),
            next: NextStep::RetryAt(now + 5_000),
            disable_endpoint: false,
        }])
        .await
        .unwrap();
    assert_eq!(store.queue.next_due_at().await.unwrap(), Some(now + 5_000));
    assert!(store.queue.claim_due(now, 10, now + 60_000, &[]).await.unwrap().is_empty());
    let retry = store.queue.claim_due(now + 5_000, 10, now + 65_000, &[]).await.unwrap();
    assert_eq!(retry[0].attempts, 1);

    let ok = attempt_for(&retry[0], DeliveryStatus::Success, 200);
    store
        .queue
        .record_outcomes(&[AttemptOutcome { attempt: ok.clone(), next: NextStep::Succeeded, disable_endpoint: false }])
        .await
        .unwrap();
    assert_eq!(store.queue.next_due_at().await.unwrap(), None);
    let counts = store.messages.endpoint_delivery_counts(&ep.id).await.unwrap();
    assert_eq!(counts, DeliveryCounts { success: 1, ..Default::default() });

    let page = PageRequest::first(10, Order::Descending);
    let attempts = store.messages.list_attempts_for_message(&msg.id, &AttemptFilter::default(), &page).await.unwrap();
    assert_eq!(attempts.items.iter().map(|a| a.id.clone()).collect::<Vec<_>>(), vec![ok.id.clone(), failed.id.clone()]);
    let only_failed = AttemptFilter { status: Some(DeliveryStatus::Fail), ..Default::default() };
    let attempts = store.messages.list_attempts_for_endpoint(&ep.id, &only_failed, &page).await.unwrap();
    assert_eq!(attempts.items, vec![failed.clone()]);
    let class_5xx = AttemptFilter { status_code_class: Some(500), ..Default::default() };
    assert_eq!(
        store.messages.list_attempts_for_endpoint(&ep.id, &class_5xx, &page).await.unwrap().items,
        vec![failed.clone()]
    );
    assert_eq!(store.messages.get_attempt(&msg.id, ok.id.as_str()).await.unwrap(), ok);
}

/// The deliveries of one endpoint claimed together share one parsed copy of its headers, so what a claim holds
/// does not grow with headers × deliveries; another endpoint has its own.
async fn claimed_deliveries_share_their_endpoints_headers(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let mut first = endpoint(&acme.id, None, None);
    first.headers = (0..50).map(|i| (format!("x-h{i}"), "v".repeat(300))).collect();
    let code = format!("function handler(w) {{ return w; }}\n//{}", "x".repeat(60_000));
    first.transformation = Some(Transformation { code: code.clone(), enabled: true });
    let second = endpoint(&acme.id, None, None);
    app_with_endpoints(&store, &[first.clone(), second.clone()]).await;
    for _ in 0..3 {
        store.messages.publish_message(&message(&acme.id, "a", None), None).await.unwrap();
    }
    let now = now_ms();
    let claimed = store.queue.claim_due(now, 10, now + 60_000, &[]).await.unwrap();
    assert_eq!(claimed.len(), 6);
    let of = |ep: &Endpoint| claimed.iter().filter(|d| d.endpoint_id == ep.id).collect::<Vec<_>>();
    let (of_first, of_second) = (of(&first), of(&second));
    assert_eq!((of_first.len(), of_second.len()), (3, 3));
    assert_eq!(*of_first[0].headers, first.headers);
    assert_eq!(*of_second[0].headers, second.headers);
    assert!(of_first.iter().all(|d| Arc::ptr_eq(&d.headers, &of_first[0].headers)), "one copy per endpoint");
    assert!(of_second.iter().all(|d| Arc::ptr_eq(&d.headers, &of_second[0].headers)), "one copy per endpoint");
    assert!(!Arc::ptr_eq(&of_first[0].headers, &of_second[0].headers));
    // So is its transformation's code.
    let transformation = of_first[0].transformation.as_ref().expect("the enabled transformation");
    assert_eq!(&**transformation, code.as_str());
    assert!(of_first.iter().all(|d| d.transformation.as_ref().is_some_and(|t| Arc::ptr_eq(t, transformation))));
    assert!(of_second.iter().all(|d| d.transformation.is_none()));
}

/// Endpoints are counted per application (the API's per-application limit reads this).
async fn endpoints_are_counted_per_application(store: Store) {
    let (acme, other) = (app(None), app(None));
    store.catalog.create_app(&acme).await.unwrap();
    store.catalog.create_app(&other).await.unwrap();
    assert_eq!(store.catalog.count_endpoints(&acme.id).await.unwrap(), 0);
    let endpoints: Vec<Endpoint> = (0..3).map(|_| endpoint(&acme.id, None, None)).collect();
    app_with_endpoints(&store, &endpoints).await;
    app_with_endpoints(&store, &[endpoint(&other.id, None, None)]).await;
    assert_eq!(store.catalog.count_endpoints(&acme.id).await.unwrap(), 3);
    assert_eq!(store.catalog.count_endpoints(&other.id).await.unwrap(), 1);
    store.catalog.delete_endpoint(&acme.id, &endpoints[0].id).await.unwrap();
    assert_eq!(store.catalog.count_endpoints(&acme.id).await.unwrap(), 2);
    assert_eq!(store.catalog.count_endpoints(&AppId::new()).await.unwrap(), 0);
}

async fn claims_skip_busy_endpoints_and_releases_keep_the_due_time(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let busy = endpoint(&acme.id, None, None);
    let idle = endpoint(&acme.id, None, None);
    app_with_endpoints(&store, &[busy.clone(), idle.clone()]).await;
    let msg = message(&acme.id, "a", None);
    store.messages.publish_message(&msg, None).await.unwrap();
    let now = now_ms();
    let claimed = store.queue.claim_due(now, 10, now + 60_000, std::slice::from_ref(&busy.id)).await.unwrap();
    assert_eq!(claimed.iter().map(|d| d.endpoint_id.clone()).collect::<Vec<_>>(), vec![idle.id.clone()]);

    let claimed = store.queue.claim_due(now, 10, now + 60_000, &[]).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let release = Release { msg_id: msg.id.clone(), endpoint_id: busy.id.clone(), due_at: claimed[0].due_at };
    store.queue.release(&[release]).await.unwrap();
    assert_eq!(store.queue.next_due_at().await.unwrap(), Some(msg.created_at));
}

async fn a_paused_endpoint_is_skipped_until_its_pause_ends_or_is_lifted(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let paused = endpoint(&acme.id, None, None);
    let healthy = endpoint(&acme.id, None, None);
    app_with_endpoints(&store, &[paused.clone(), healthy.clone()]).await;
    store.messages.publish_message(&message(&acme.id, "a", None), None).await.unwrap();
    let now = now_ms();
    store.queue.pause_endpoint(&paused.id, now + 60_000).await.unwrap();

    let claimed = store.queue.claim_due(now, 10, now + 1_000, &[]).await.unwrap();
    assert_eq!(claimed.iter().map(|d| d.endpoint_id.clone()).collect::<Vec<_>>(), vec![healthy.id.clone()]);
    // Its lease (1 s) expired long before the pause ends: only the healthy endpoint's delivery comes back.
    let later = store.queue.claim_due(now + 30_000, 10, now + 31_000, &[]).await.unwrap();
    assert_eq!(later.iter().map(|d| d.endpoint_id.clone()).collect::<Vec<_>>(), vec![healthy.id.clone()]);
    let after_pause = store.queue.claim_due(now + 60_000, 10, now + 61_000, &[]).await.unwrap();
    assert_eq!(after_pause.len(), 2, "the pause is over");

    store.queue.pause_endpoint(&paused.id, now + 600_000).await.unwrap();
    store.queue.pause_endpoint(&paused.id, 0).await.unwrap();
    let lifted = store.queue.claim_due(now + 62_000, 10, now + 63_000, &[]).await.unwrap();
    assert_eq!(lifted.len(), 2, "a pause in the past is lifted");
    // Pausing an endpoint that is gone is not an error.
    store.queue.pause_endpoint(&EndpointId::new(), now).await.unwrap();
}

async fn a_blocked_endpoints_backlog_does_not_hide_other_endpoints_due_deliveries(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let busy = endpoint(&acme.id, None, None);
    let other = endpoint(&acme.id, Some(&["b"]), None);
    let mut ordered = endpoint(&acme.id, Some(&["b"]), None);
    ordered.ordering = DeliveryOrder::Fifo;
    app_with_endpoints(&store, &[busy.clone(), other.clone(), ordered.clone()]).await;
    // The busy endpoint's backlog is older than anything else, and longer than any claim's look at the due index.
    let base = now_ms() - 100_000;
    let backlog: Vec<Message> = (0..40).map(|i| message_at(&acme.id, "a", None, base + i)).collect();
    let later: Vec<Message> = (0..3).map(|i| message_at(&acme.id, "b", None, base + 1_000 + i)).collect();
    for msg in backlog.iter().chain(&later) {
        store.messages.publish_message(msg, None).await.unwrap();
    }
    let now = now_ms();
    let keys = |claimed: &[ClaimedDelivery]| -> Vec<(EndpointId, MessageId)> {
        let mut keys: Vec<_> = claimed.iter().map(|d| (d.endpoint_id.clone(), d.msg_id.clone())).collect();
        keys.sort();
        keys
    };

    let claimed = store.queue.claim_due(now, 10, now + 600_000, std::slice::from_ref(&busy.id)).await.unwrap();
    let mut expected: Vec<_> = later.iter().map(|m| (other.id.clone(), m.id.clone())).collect();
    expected.push((ordered.id.clone(), later[0].id.clone()));
    expected.sort();
    assert_eq!(keys(&claimed), expected, "the other endpoints' due deliveries, and only the FIFO head");
    assert!(claimed.windows(2).all(|pair| pair[0].due_at <= pair[1].due_at), "oldest first");

    // Paused, the busy endpoint still holds the head of the queue; everything else is leased or FIFO-blocked.
    store.queue.pause_endpoint(&busy.id, now + 60_000).await.unwrap();
    assert!(store.queue.claim_due(now, 1, now + 600_000, &[]).await.unwrap().is_empty());
    assert!(store.queue.claim_due(now, 10, now + 600_000, &[]).await.unwrap().is_empty());

    // Once the pause is over, its backlog comes oldest first.
    let resumed = store.queue.claim_due(now + 60_000, 10, now + 600_000, &[]).await.unwrap();
    let expected: Vec<_> = backlog[..10].iter().map(|m| (busy.id.clone(), m.id.clone())).collect();
    assert_eq!(resumed.iter().map(|d| (d.endpoint_id.clone(), d.msg_id.clone())).collect::<Vec<_>>(), expected);
}

async fn interrupted_and_manual_deliveries_are_due_again(db: &mut TestDatabase) {
    let store = db.open().await;
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let ep = endpoint(&acme.id, None, None);
    app_with_endpoints(&store, std::slice::from_ref(&ep)).await;
    let msg = message(&acme.id, "a", None);
    store.messages.publish_message(&msg, None).await.unwrap();
    let now = now_ms();
    let claimed = store.queue.claim_due(now, 10, now + 600_000, &[]).await.unwrap();
    assert_eq!(claimed.len(), 1);

    // The process dies with the delivery leased for ten minutes; the next one makes it due again long before.
    let restarted = db.restart_after_crash(store).await;
    assert_eq!(restarted.requeued, 1, "the crashed process's lease is taken back");
    let store = restarted.store;
    let again = store.queue.claim_due(restarted.now, 10, restarted.now + 600_000, &[]).await.unwrap();
    assert_eq!(again.len(), 1);
    let ok = attempt_for(&again[0], DeliveryStatus::Success, 200);
    store
        .queue
        .record_outcomes(&[AttemptOutcome { attempt: ok, next: NextStep::Succeeded, disable_endpoint: false }])
        .await
        .unwrap();

    store.messages.resend(&msg.id, &ep.id).await.unwrap();
    let manual = store.queue.claim_due(now_ms(), 10, now_ms() + 600_000, &[]).await.unwrap();
    assert_eq!(manual.len(), 1);
    assert!(manual[0].manual);
    assert!(matches!(store.messages.resend(&MessageId::new(), &ep.id).await, Err(StoreError::NotFound)));
}

async fn an_outcome_can_disable_its_endpoint(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let ep = endpoint(&acme.id, None, None);
    app_with_endpoints(&store, std::slice::from_ref(&ep)).await;
    let first = message(&acme.id, "a", None);
    store.messages.publish_message(&first, None).await.unwrap();
    let now = now_ms();
    let claimed = store.queue.claim_due(now, 10, now + 60_000, &[]).await.unwrap();
    store.messages.publish_message(&message(&acme.id, "a", None), None).await.unwrap();
    let gone = attempt_for(&claimed[0], DeliveryStatus::Fail, 410);
    store
        .queue
        .record_outcomes(&[AttemptOutcome { attempt: gone, next: NextStep::GiveUp, disable_endpoint: true }])
        .await
        .unwrap();
    assert!(store.catalog.get_endpoint(&acme.id, ep.id.as_str()).await.unwrap().disabled);
    // The delivery queued behind it is not attempted: it fails when claimed.
    assert!(store.queue.claim_due(now_ms(), 10, now + 60_000, &[]).await.unwrap().is_empty());
    assert_eq!(store.messages.endpoint_delivery_counts(&ep.id).await.unwrap().fail, 2);
    // New messages are not routed to a disabled endpoint.
    assert_eq!(store.messages.publish_message(&message(&acme.id, "a", None), None).await.unwrap().deliveries, 0);
}

async fn old_payloads_are_purged_unless_still_being_delivered(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let old_at = now_ms() - 100 * 24 * 3_600_000;
    let old = || {
        let mut msg = message(&acme.id, "a", None);
        msg.id = MessageId::at(old_at);
        msg.created_at = old_at;
        msg
    };
    let (done, recent) = (old(), message(&acme.id, "a", None));
    store.messages.publish_message(&done, None).await.unwrap();
    store.messages.publish_message(&recent, None).await.unwrap();
    // An old message still owed to an endpoint keeps its payload.
    let ep = endpoint(&acme.id, None, None);
    app_with_endpoints(&store, std::slice::from_ref(&ep)).await;
    let owed = old();
    store.messages.publish_message(&owed, None).await.unwrap();

    let cutoff = now_ms() - 90 * 24 * 3_600_000;
    assert_eq!(store.recovery.purge_payloads(Some(cutoff), now_ms(), 100).await.unwrap(), 1);
    let purged = store.messages.get_message(&acme.id, done.id.as_str()).await.unwrap();
    assert!(purged.is_expunged());
    assert_eq!(purged.event_type, "a");
    assert_eq!(store.messages.get_message(&acme.id, recent.id.as_str()).await.unwrap().payload, recent.payload);
    assert_eq!(store.messages.get_message(&acme.id, owed.id.as_str()).await.unwrap().payload, owed.payload);
    assert_eq!(store.recovery.purge_payloads(Some(cutoff), now_ms(), 100).await.unwrap(), 0);
}

/// Publishes that arrive together (on PostgreSQL they share one transaction) each get their own outcome: a
/// repeated eventId or idempotency key, a missing application or a disabled endpoint fails that message alone.
async fn concurrent_publishes_each_get_their_own_outcome(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let ep = endpoint(&acme.id, None, None);
    let mut off = endpoint(&acme.id, None, None);
    off.disabled = true;
    app_with_endpoints(&store, &[ep.clone(), off.clone()]).await;
    let gone = AppId::new();
    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum Outcome {
        Routed(usize),
        Conflict,
        NotFound,
    }
    let mut tasks = Vec::new();
    for n in 0..60 {
        let store = store.clone();
        let mut msg = message(&acme.id, "a", None);
        let mut only = None;
        let mut idempotent = None;
        match n % 6 {
            // Each eventId twice: one of the two is stored.
            0 | 1 => msg.event_id = Some(format!("evt-{}", n / 6)),
            2 => msg.app_id = gone.clone(),
            3 => only = Some(off.id.clone()),
            // Ten publishes of one idempotency key: one is stored.
            4 => {
                idempotent = Some(IdempotentResponse {
                    key: "together".into(),
                    status: 202,
                    body: msg.id.as_str().as_bytes().to_vec(),
                    expires_at: now_ms() + 60_000,
                })
            }
            _ => only = Some(ep.id.clone()),
        }
        tasks.push(tokio::spawn(async move {
            let published = match &only {
                Some(only) => store.messages.publish_to_endpoint(&msg, only, idempotent.as_ref()).await,
                None => store.messages.publish_message(&msg, idempotent.as_ref()).await,
            };
            match published {
                Ok(published) => Outcome::Routed(published.deliveries),
                Err(StoreError::Conflict(_)) => Outcome::Conflict,
                Err(StoreError::NotFound) => Outcome::NotFound,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let (keyed, others): (Vec<_>, Vec<_>) = outcomes.into_iter().enumerate().partition(|(n, _)| n % 6 == 4);
    let count = |of: &[(usize, Outcome)], wanted: &Outcome| of.iter().filter(|(_, o)| o == wanted).count();
    // 10 eventIds stored once + 10 conflicts; 10 missing apps; 10 to a disabled endpoint; 10 test sends.
    assert_eq!(count(&others, &Outcome::Routed(1)), 10 + 10, "{others:?}");
    assert_eq!(count(&others, &Outcome::Conflict), 10, "{others:?}");
    assert_eq!(count(&others, &Outcome::NotFound), 10 + 10, "{others:?}");
    // One key: at least one of its publishes is stored. (A single process's API serialises a key's requests, so
    // SQLite stores each; PostgreSQL refuses the ones another transaction holds the key for.)
    let keyed_stored = count(&keyed, &Outcome::Routed(1));
    assert!(keyed_stored >= 1 && keyed_stored + count(&keyed, &Outcome::Conflict) == 10, "{keyed:?}");
    let page = PageRequest::first(100, Order::Descending);
    let stored = store.messages.list_messages(&acme.id, &MessageFilter::default(), &page).await.unwrap();
    assert_eq!(stored.items.len(), 20 + keyed_stored);
    let kept = store.messages.get_idempotent("together").await.unwrap().expect("the key's response");
    let keyed_msg = String::from_utf8(kept.body).unwrap();
    assert!(stored.items.iter().any(|m| m.id.as_str() == keyed_msg), "the stored response is the stored message's");
    assert_eq!(store.messages.endpoint_delivery_counts(&ep.id).await.unwrap().pending, 20 + keyed_stored as u64);
    // The activity counters hold exactly the messages stored: no conflict, missing application or endpoint, nor a
    // key another transaction held, counts.
    let now = now_ms();
    let series = store.operations.activity_series(now - HOUR, now + HOUR, HOUR).await.unwrap();
    assert_eq!(series_totals(&series), (20 + keyed_stored as u64, 0, 0));
}

/// A message's own retention replaces the server's, shorter or longer, and works with none on the server.
async fn a_message_keeps_its_payload_for_its_own_retention(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let now = now_ms();
    let at = |created_at: i64, expires_at: Option<i64>| {
        let mut msg = message(&acme.id, "a", None);
        msg.id = MessageId::at(created_at);
        msg.created_at = created_at;
        msg.payload_expires_at = expires_at;
        msg
    };
    let day = 24 * 3_600_000;
    // Old, but kept for longer than the server's retention.
    let kept_longer = at(now - 100 * day, Some(now + day));
    // Recent, but its own retention is over.
    let expired = at(now - 2 * day, Some(now - day));
    let server_default = at(now - 100 * day, None);
    for msg in [&kept_longer, &expired, &server_default] {
        store.messages.publish_message(msg, None).await.unwrap();
    }
    let payload_of = |msg: &Message| {
        let (store, app_id, id) = (store.clone(), acme.id.clone(), msg.id.clone());
        async move { store.messages.get_message(&app_id, id.as_str()).await.unwrap().payload }
    };
    // No server retention: only the message that asked for it is purged.
    assert_eq!(store.recovery.purge_payloads(None, now, 100).await.unwrap(), 1);
    assert_eq!(payload_of(&expired).await, "");
    assert_eq!(payload_of(&server_default).await, server_default.payload);
    assert_eq!(store.recovery.purge_payloads(Some(now - 90 * day), now, 100).await.unwrap(), 1);
    assert_eq!(payload_of(&server_default).await, "");
    assert_eq!(payload_of(&kept_longer).await, kept_longer.payload);
    assert_eq!(store.recovery.purge_payloads(Some(now - 90 * day), now + 2 * day, 100).await.unwrap(), 1);
    assert_eq!(payload_of(&kept_longer).await, "");
}

/// What a Svix publisher can ask of one message is stored and read back: tags (filterable), a raw payload's
/// content type, a later first attempt; an expunge empties the payload and an attempt's response.
async fn publish_options_are_kept_and_content_can_be_expunged(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let ep = endpoint(&acme.id, None, None);
    app_with_endpoints(&store, std::slice::from_ref(&ep)).await;
    let now = now_ms();
    let mut tagged = message(&acme.id, "a", None);
    tagged.tags = Some(vec!["t1".into(), "t2".into()]);
    tagged.payload = "plain text, not JSON".into();
    tagged.content_type = Some("text/plain; charset=utf-8".into());
    tagged.deliver_at = Some(now + 3_600_000);
    let untagged = message(&acme.id, "a", None);
    store.messages.publish_message(&tagged, None).await.unwrap();
    store.messages.publish_message(&untagged, None).await.unwrap();

    let read = store.messages.get_message(&acme.id, tagged.id.as_str()).await.unwrap();
    assert_eq!(read, tagged);
    let by_tag = MessageFilter { tag: Some("t2".into()), ..Default::default() };
    let listed =
        store.messages.list_messages(&acme.id, &by_tag, &PageRequest::first(10, Order::Descending)).await.unwrap();
    assert_eq!(listed.items.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), vec![tagged.id.clone()]);
    let to_endpoint = store
        .messages
        .list_endpoint_messages(&ep.id, &by_tag, None, &PageRequest::first(10, Order::Descending))
        .await
        .unwrap();
    assert_eq!(to_endpoint.items.len(), 1);
    // Scheduled for later: not claimed now, and its delivery says when it is due.
    assert_eq!(to_endpoint.items[0].1.next_attempt_at, Some(now + 3_600_000));
    // (Leased past the scheduled time, so the second claim finds only the scheduled delivery.)
    let claimed = store.queue.claim_due(now_ms(), 10, now + 4_000_000, &[]).await.unwrap();
    assert_eq!(claimed.iter().map(|d| d.msg_id.clone()).collect::<Vec<_>>(), vec![untagged.id.clone()]);
    let later = store.queue.claim_due(now + 3_600_000, 10, now + 3_700_000, &[]).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].content_type.as_deref(), Some("text/plain; charset=utf-8"));
    assert_eq!(&*later[0].payload, "plain text, not JSON");

    store.messages.expunge_message_content(&tagged.id).await.unwrap();
    assert!(store.messages.get_message(&acme.id, tagged.id.as_str()).await.unwrap().is_expunged());
    assert!(matches!(store.messages.expunge_message_content(&MessageId::new()).await, Err(StoreError::NotFound)));
    assert!(matches!(
        store.messages.expunge_attempt_content(&tagged.id, "atmpt_missing").await,
        Err(StoreError::NotFound)
    ));
}

async fn endpoints_failing_for_too_long_are_disabled(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let (failing, recovered) = (endpoint(&acme.id, None, None), endpoint(&acme.id, None, None));
    app_with_endpoints(&store, &[failing.clone(), recovered.clone()]).await;
    store.messages.publish_message(&message(&acme.id, "a", None), None).await.unwrap();
    let now = now_ms();
    let claimed = store.queue.claim_due(now, 10, now + 60_000, &[]).await.unwrap();
    let outcome = |claimed: &ClaimedDelivery, ok: bool, at: i64| {
        let mut attempt = attempt_for(claimed, if ok { DeliveryStatus::Success } else { DeliveryStatus::Fail }, 500);
        attempt.created_at = at;
        AttemptOutcome { attempt, next: NextStep::RetryAt(at + 1_000), disable_endpoint: false }
    };
    let day = 24 * 3_600_000;
    // Both fail six days ago; one succeeds later, which ends its streak.
    let outcomes: Vec<_> = claimed.iter().map(|c| outcome(c, false, now - 6 * day)).collect();
    store.queue.record_outcomes(&outcomes).await.unwrap();
    let later: Vec<_> = claimed.iter().map(|c| outcome(c, c.endpoint_id == recovered.id, now - 2 * day)).collect();
    store.queue.record_outcomes(&later).await.unwrap();

    let disabled = store.recovery.disable_failing_endpoints(now - 5 * day).await.unwrap();
    let expected =
        DisabledEndpoint { app_id: acme.id.clone(), endpoint_id: failing.id.clone(), failing_since: now - 6 * day };
    assert_eq!(disabled, vec![expected]);
    assert!(store.catalog.get_endpoint(&acme.id, failing.id.as_str()).await.unwrap().disabled);
    assert!(!store.catalog.get_endpoint(&acme.id, recovered.id.as_str()).await.unwrap().disabled);
    assert!(store.recovery.disable_failing_endpoints(now - 5 * day).await.unwrap().is_empty());

    // Re-enabling forgets the streak, so the endpoint is not disabled again at once.
    let mut enabled = store.catalog.get_endpoint(&acme.id, failing.id.as_str()).await.unwrap();
    enabled.disabled = false;
    store.catalog.update_endpoint(&enabled).await.unwrap();
    assert!(store.recovery.disable_failing_endpoints(now).await.unwrap().is_empty());
}

async fn an_endpoints_delivery_options_round_trip_and_reach_its_claimed_deliveries(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let mut own = endpoint(&acme.id, None, None);
    own.retry =
        EndpointRetry { schedule: Some(RetrySchedule::from_secs(&[0, 300, 86_400])), client_errors: Some(false) };
    own.secrets = SecretSet::new(EndpointSecret::plain("a_secret_the_user_picked").unwrap());
    own.signature_headers = vec![SignatureHeader {
        header: "X-Corp-Astro-Signature".into(),
        algorithm: HmacAlgorithm::Sha512,
        encoding: SignatureEncoding::Base64,
        prefix: "v1=".into(),
    }];
    own.standard_headers = StandardHeaders::Svix;
    own.transformation = Some(Transformation { code: "function handler(w) { return w; }".into(), enabled: true });
    let mut never = endpoint(&acme.id, None, None);
    never.retry = EndpointRetry { schedule: Some(RetrySchedule::from_secs(&[])), client_errors: Some(true) };
    never.standard_headers = StandardHeaders::None;
    never.transformation =
        Some(Transformation { code: "function handler(w) { w.cancel = true; }".into(), enabled: false });
    let server = endpoint(&acme.id, None, None);
    app_with_endpoints(&store, &[own.clone(), never.clone(), server.clone()]).await;
    for ep in [&own, &never, &server] {
        assert_eq!(&store.catalog.get_endpoint(&acme.id, ep.id.as_str()).await.unwrap(), ep);
    }
    let published = message(&acme.id, "a", None);
    store.messages.publish_message(&published, None).await.unwrap();
    let now = now_ms();
    let claimed = store.queue.claim_due(now, 10, now + 60_000, &[]).await.unwrap();
    assert_eq!(claimed.len(), 3);
    for delivery in &claimed {
        let ep = [&own, &never, &server].into_iter().find(|ep| ep.id == delivery.endpoint_id).unwrap();
        assert_eq!(delivery.retry, ep.retry, "the claimed delivery carries its endpoint's rules");
        assert_eq!(
            (&delivery.signature_headers, delivery.standard_headers, &delivery.secrets),
            (&ep.signature_headers, ep.standard_headers, &ep.secrets)
        );
        let running = ep.transformation.as_ref().filter(|t| t.enabled).map(|t| t.code.as_str());
        assert_eq!(delivery.transformation.as_deref(), running, "only an enabled transformation is claimed");
        assert_eq!(delivery.msg_created_at, published.created_at);
    }
    // Back to the server's rules.
    let mut reset = own.clone();
    reset.retry = EndpointRetry::default();
    store.catalog.update_endpoint(&reset).await.unwrap();
    assert_eq!(store.catalog.get_endpoint(&acme.id, own.id.as_str()).await.unwrap().retry, EndpointRetry::default());
}

async fn a_test_send_goes_to_one_enabled_endpoint_whatever_its_filters(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let filtered = endpoint(&acme.id, Some(&["other.type"]), Some(&["elsewhere"]));
    let everything = endpoint(&acme.id, None, None);
    let mut disabled = endpoint(&acme.id, None, None);
    disabled.disabled = true;
    app_with_endpoints(&store, &[filtered.clone(), everything.clone(), disabled.clone()]).await;

    let msg = message(&acme.id, "a", None);
    let published = store.messages.publish_to_endpoint(&msg, &filtered.id, None).await.unwrap();
    assert_eq!(published.deliveries, 1);
    let now = now_ms();
    let claimed = store.queue.claim_due(now, 10, now + 60_000, &[]).await.unwrap();
    assert_eq!(claimed.iter().map(|c| &c.endpoint_id).collect::<Vec<_>>(), vec![&filtered.id]);

    let refused = store.messages.publish_to_endpoint(&message(&acme.id, "a", None), &disabled.id, None).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    let other_app = app(None);
    store.catalog.create_app(&other_app).await.unwrap();
    let foreign = store.messages.publish_to_endpoint(&message(&other_app.id, "a", None), &everything.id, None).await;
    assert!(matches!(foreign, Err(StoreError::NotFound)), "another application's endpoint: {foreign:?}");
}

async fn an_endpoints_messages_are_listed_newest_first_with_their_delivery(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let (ep, other) = (endpoint(&acme.id, None, None), endpoint(&acme.id, Some(&["b"]), None));
    app_with_endpoints(&store, &[ep.clone(), other.clone()]).await;
    let base = now_ms() - 10_000;
    let msgs: Vec<Message> =
        (0..5).map(|i| message_at(&acme.id, if i < 3 { "a" } else { "b" }, None, base + i)).collect();
    for msg in &msgs {
        store.messages.publish_message(msg, None).await.unwrap();
    }
    // One delivery to `ep` succeeds; the rest stay pending.
    let now = now_ms();
    let claimed = store.queue.claim_due(now, 20, now + 60_000, &[]).await.unwrap();
    let first = claimed.iter().find(|d| d.endpoint_id == ep.id && d.msg_id == msgs[0].id).unwrap();
    let done = AttemptOutcome {
        attempt: attempt_for(first, DeliveryStatus::Success, 200),
        next: NextStep::Succeeded,
        disable_endpoint: false,
    };
    store.queue.record_outcomes(&[done]).await.unwrap();

    let page = |limit| PageRequest::first(limit, Order::Descending);
    let all = store.messages.list_endpoint_messages(&ep.id, &MessageFilter::default(), None, &page(10)).await.unwrap();
    let ids: Vec<_> = all.items.iter().map(|(m, _)| m.id.clone()).collect();
    assert_eq!(ids, msgs.iter().rev().map(|m| m.id.clone()).collect::<Vec<_>>(), "newest first");
    assert_eq!(all.items.last().unwrap().1.status, DeliveryStatus::Success);
    assert_eq!(all.items.last().unwrap().0, msgs[0]);

    let (any, ten) = (MessageFilter::default(), page(10));
    let succeeded = store.messages.list_endpoint_messages(&ep.id, &any, Some(DeliveryStatus::Success), &ten).await;
    assert_eq!(succeeded.unwrap().items.len(), 1);
    let only_b = MessageFilter { event_types: Some(vec!["b".into()]), ..Default::default() };
    let of_other = store.messages.list_endpoint_messages(&other.id, &only_b, None, &page(10)).await.unwrap();
    assert_eq!(of_other.items.len(), 2, "the other endpoint got only the `b` messages");
    let first_two =
        store.messages.list_endpoint_messages(&ep.id, &MessageFilter::default(), None, &page(2)).await.unwrap();
    assert_eq!((first_two.items.len(), first_two.done), (2, false));
    let next = PageRequest { cursor: Some(first_two.items[1].0.id.to_string()), ..page(2) };
    let rest = store.messages.list_endpoint_messages(&ep.id, &MessageFilter::default(), None, &next).await.unwrap();
    assert_eq!(rest.items[0].0.id, msgs[2].id, "the next page goes on where the first stopped");
}

/// Walks `list_endpoint_messages` page by page from `request` (forwards or, when it says so, backwards), as a
/// client follows iterators, and returns every message id seen with its delivery's status, in list order.
async fn every_endpoint_message(
    store: &Store,
    endpoint_id: &EndpointId,
    filter: &MessageFilter,
    mut request: PageRequest,
) -> Vec<(MessageId, DeliveryStatus)> {
    let mut seen = Vec::new();
    for _ in 0..100 {
        let page = store.messages.list_endpoint_messages(endpoint_id, filter, None, &request).await.unwrap();
        assert!(page.items.len() <= request.limit, "a page holds at most its limit");
        let items: Vec<_> = page.items.iter().map(|(m, d)| (m.id.clone(), d.status)).collect();
        if !page.done {
            assert_eq!(items.len(), request.limit, "only the last page may be short");
        }
        let next = if request.backwards { items.first() } else { items.last() };
        request.cursor = next.map(|(id, _)| id.to_string());
        if request.backwards {
            seen.splice(0..0, items);
        } else {
            seen.extend(items);
        }
        if page.done {
            return seen;
        }
    }
    panic!("the list never ended");
}

async fn an_endpoints_messages_in_mixed_statuses_page_in_message_id_order_both_ways(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let (ep, other) = (endpoint(&acme.id, None, None), endpoint(&acme.id, None, None));
    app_with_endpoints(&store, &[ep.clone(), other.clone()]).await;
    let base = now_ms() - 60_000;
    // Every third message is a `b`; the statuses of `ep`'s deliveries take turns, so each page mixes them.
    let msgs: Vec<Message> =
        (0..14).map(|i| message_at(&acme.id, if i % 3 == 0 { "b" } else { "a" }, None, base + i)).collect();
    for msg in &msgs {
        store.messages.publish_message(msg, None).await.unwrap();
    }
    let status_of = |index: usize| match index % 4 {
        0 => DeliveryStatus::Success,
        1 => DeliveryStatus::Fail,
        2 => DeliveryStatus::Pending,
        _ => DeliveryStatus::Sending,
    };
    let now = now_ms();
    let claimed = store.queue.claim_due(now, 100, now + 600_000, &[]).await.unwrap();
    assert_eq!(claimed.len(), 28);
    let mut outcomes = Vec::new();
    for delivery in claimed.iter().filter(|d| d.endpoint_id == ep.id) {
        let index = msgs.iter().position(|m| m.id == delivery.msg_id).unwrap();
        let (status, next) = match status_of(index) {
            DeliveryStatus::Success => (DeliveryStatus::Success, NextStep::Succeeded),
            DeliveryStatus::Fail => (DeliveryStatus::Fail, NextStep::GiveUp),
            DeliveryStatus::Pending => (DeliveryStatus::Fail, NextStep::RetryAt(now + 3_600_000)),
            // Left claimed: still being sent.
            DeliveryStatus::Sending => continue,
        };
        outcomes.push(AttemptOutcome { attempt: attempt_for(delivery, status, 500), next, disable_endpoint: false });
    }
    store.queue.record_outcomes(&outcomes).await.unwrap();

    let expected = |order: Order, keep: &dyn Fn(usize) -> bool| {
        let mut all: Vec<_> =
            (0..msgs.len()).filter(|&i| keep(i)).map(|i| (msgs[i].id.clone(), status_of(i))).collect();
        if order == Order::Descending {
            all.reverse();
        }
        all
    };
    let any = MessageFilter::default();
    let every = |_: usize| true;
    for order in [Order::Descending, Order::Ascending] {
        // Forwards from the start: every message once, in id order, with its own delivery's status.
        for limit in [1, 3, 5, 14, 20] {
            let forwards = every_endpoint_message(&store, &ep.id, &any, PageRequest::first(limit, order)).await;
            assert_eq!(forwards, expected(order, &every), "{order:?} by {limit}");
        }
        // Backwards from the last message of the list: every one before it.
        let all = expected(order, &every);
        let (last, before_last) = all.split_last().unwrap();
        let back = PageRequest { limit: 3, cursor: Some(last.0.to_string()), backwards: true, order };
        assert_eq!(every_endpoint_message(&store, &ep.id, &any, back).await, before_last, "{order:?} backwards");
        // A page from the middle, both ways from the same cursor, meets without a gap or an overlap.
        let cursor = Some(all[6].0.to_string());
        let after = PageRequest { limit: 4, cursor: cursor.clone(), backwards: false, order };
        let before = PageRequest { limit: 4, cursor, backwards: true, order };
        let after = store.messages.list_endpoint_messages(&ep.id, &any, None, &after).await.unwrap();
        let before = store.messages.list_endpoint_messages(&ep.id, &any, None, &before).await.unwrap();
        let ids = |page: &Page<(Message, Delivery)>| page.items.iter().map(|(m, _)| m.id.clone()).collect::<Vec<_>>();
        let around: Vec<_> = all[2..6].iter().chain(&all[7..11]).map(|(id, _)| id.clone()).collect();
        assert_eq!([ids(&before), ids(&after)].concat(), around, "{order:?} around the 7th");
        assert!(!before.done && !after.done);
    }

    // A filter on the messages is honoured in every status, forwards and backwards.
    let only_a = MessageFilter { event_types: Some(vec!["a".into()]), ..Default::default() };
    let of_a = |i: usize| !i.is_multiple_of(3);
    let forwards = every_endpoint_message(&store, &ep.id, &only_a, PageRequest::first(2, Order::Descending)).await;
    assert_eq!(forwards, expected(Order::Descending, &of_a));
    let oldest_a = expected(Order::Descending, &of_a).pop().unwrap();
    let back =
        PageRequest { limit: 2, cursor: Some(oldest_a.0.to_string()), backwards: true, order: Order::Descending };
    let mut newer_than_oldest = expected(Order::Descending, &of_a);
    newer_than_oldest.pop();
    assert_eq!(every_endpoint_message(&store, &ep.id, &only_a, back).await, newer_than_oldest);
    let recent = MessageFilter { after: Some(base + 9), ..Default::default() };
    let newest = every_endpoint_message(&store, &ep.id, &recent, PageRequest::first(2, Order::Ascending)).await;
    assert_eq!(newest, expected(Order::Ascending, &|i| i > 9));
}

async fn fifo_endpoints_release_one_delivery_at_a_time_in_publish_order(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let mut fifo = endpoint(&acme.id, None, None);
    fifo.ordering = DeliveryOrder::Fifo;
    let free = endpoint(&acme.id, None, None);
    app_with_endpoints(&store, &[fifo.clone(), free.clone()]).await;
    assert_eq!(store.catalog.get_endpoint(&acme.id, fifo.id.as_str()).await.unwrap().ordering, DeliveryOrder::Fifo);
    let msgs: Vec<Message> = (0..3).map(|_| message(&acme.id, "a", None)).collect();
    for msg in &msgs {
        store.messages.publish_message(msg, None).await.unwrap();
    }
    let lease = now_ms() + 60_000;
    let claimed = store.queue.claim_due(now_ms(), 10, lease, &[]).await.unwrap();
    let to_fifo: Vec<_> = claimed.iter().filter(|d| d.endpoint_id == fifo.id).map(|d| d.msg_id.clone()).collect();
    assert_eq!(to_fifo, vec![msgs[0].id.clone()], "only the head of a FIFO endpoint is claimable");
    assert_eq!(claimed.iter().filter(|d| d.endpoint_id == free.id).count(), 3);

    // The head fails and waits for its retry: everything behind it waits too.
    let head = claimed.iter().find(|d| d.endpoint_id == fifo.id).unwrap();
    let failed = attempt_for(head, DeliveryStatus::Fail, 500);
    let retry_at = now_ms() + 5_000;
    store
        .queue
        .record_outcomes(&[AttemptOutcome {
            attempt: failed,
            next: NextStep::RetryAt(retry_at),
            disable_endpoint: false,
        }])
        .await
        .unwrap();
    assert!(store.queue.claim_due(now_ms(), 10, lease, &[]).await.unwrap().is_empty());
    let blocker = store.messages.oldest_open_delivery(&fifo.id).await.unwrap().unwrap();
    assert_eq!((blocker.msg_id, blocker.attempts), (msgs[0].id.clone(), 1));

    // It succeeds: the next one (and only it) becomes claimable.
    let retried = store.queue.claim_due(retry_at, 10, retry_at + 60_000, &[]).await.unwrap();
    assert_eq!(retried.iter().map(|d| d.msg_id.clone()).collect::<Vec<_>>(), vec![msgs[0].id.clone()]);
    let ok = attempt_for(&retried[0], DeliveryStatus::Success, 200);
    store
        .queue
        .record_outcomes(&[AttemptOutcome { attempt: ok, next: NextStep::Succeeded, disable_endpoint: false }])
        .await
        .unwrap();
    let next = store.queue.claim_due(retry_at, 10, retry_at + 60_000, &[]).await.unwrap();
    assert_eq!(next.iter().map(|d| d.msg_id.clone()).collect::<Vec<_>>(), vec![msgs[1].id.clone()]);
}

async fn deleting_an_app_removes_what_it_owns(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let ep = endpoint(&acme.id, None, None);
    app_with_endpoints(&store, std::slice::from_ref(&ep)).await;
    let msg = message(&acme.id, "a", None);
    store.messages.publish_message(&msg, None).await.unwrap();
    let stripe = source(&acme.id, Some("stripe"));
    store.inbound.create_source(&stripe).await.unwrap();
    store.inbound.record_rejections(&[rejected(&stripe.id, "signature_mismatch", now_ms())]).await.unwrap();
    store.catalog.delete_app(&acme.id).await.unwrap();
    assert!(matches!(store.messages.get_message(&acme.id, msg.id.as_str()).await, Err(StoreError::NotFound)));
    assert_eq!(store.queue.next_due_at().await.unwrap(), None);
    assert!(matches!(store.inbound.get_source("stripe").await, Err(StoreError::NotFound)));
    assert_eq!(store.inbound.inbound_counts(&stripe.id, None).await.unwrap(), InboundCounts::default());
    assert_eq!(rejection_rows(&store, &stripe.id).await, vec![]);
    // A publisher that looked the application up before it was deleted (the API caches that for a second) is
    // told it is gone, not that its eventId conflicts.
    let late = message(&acme.id, "a", None);
    assert!(matches!(store.messages.publish_message(&late, None).await, Err(StoreError::NotFound)));
    // The uid is free again.
    let other = app(None);
    store.catalog.create_app(&other).await.unwrap();
    store.inbound.create_source(&source(&other.id, Some("stripe"))).await.unwrap();
}

/// A message created at `at`, with an id stamped with the same time, as the API makes them.
fn message_at(app_id: &AppId, event_type: &str, channels: Option<&[&str]>, at: i64) -> Message {
    Message { id: MessageId::at(at), created_at: at, ..message(app_id, event_type, channels) }
}

fn task(kind: TaskKind, app_id: &AppId, endpoint_id: &EndpointId, at: i64) -> BackgroundTask {
    BackgroundTask {
        id: TaskId::at(at),
        kind,
        app_id: app_id.clone(),
        endpoint_id: endpoint_id.clone(),
        status: TaskStatus::Running,
        window: TimeWindow { since: at - 60_000, until: at },
        cursor: None,
        progress: TaskProgress::default(),
        created_at: at,
        updated_at: at,
    }
}

async fn background_tasks_round_trip_and_list_by_status_and_kind(store: Store) {
    let acme = app(None);
    let ep = EndpointId::new();
    let now = now_ms();
    let recover = task(TaskKind::Recover, &acme.id, &ep, now - 2);
    let mut replay = task(TaskKind::ReplayMissing, &acme.id, &ep, now - 1);
    store.recovery.create_background_task(&recover).await.unwrap();
    store.recovery.create_background_task(&replay).await.unwrap();
    assert!(matches!(store.recovery.create_background_task(&recover).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.recovery.get_background_task(recover.id.as_str()).await.unwrap(), recover);
    assert!(matches!(store.recovery.get_background_task("qtask_missing").await, Err(StoreError::NotFound)));

    replay.status = TaskStatus::Failed;
    replay.cursor = Some(MessageId::new());
    replay.progress = TaskProgress { sent: 3, scanned: 5, total: 9, error: Some("endpoint deleted".into()) };
    replay.updated_at = now + 1;
    store.recovery.update_background_task(&replay).await.unwrap();
    assert_eq!(store.recovery.get_background_task(replay.id.as_str()).await.unwrap(), replay);
    let unknown = task(TaskKind::Recover, &acme.id, &ep, now);
    assert!(matches!(store.recovery.update_background_task(&unknown).await, Err(StoreError::NotFound)));

    let list = |filter: TaskFilter, page: PageRequest| {
        let store = store.clone();
        async move {
            let page = store.recovery.list_background_tasks(&filter, &page).await.unwrap();
            (page.items.into_iter().map(|t| t.id).collect::<Vec<_>>(), page.done)
        }
    };
    let first = PageRequest::first(10, Order::Ascending);
    assert_eq!(list(TaskFilter::default(), first.clone()).await, (vec![recover.id.clone(), replay.id.clone()], true));
    let running = TaskFilter { status: Some(TaskStatus::Running), ..Default::default() };
    assert_eq!(list(running, first.clone()).await, (vec![recover.id.clone()], true));
    let replays = TaskFilter { kind: Some(TaskKind::ReplayMissing), ..Default::default() };
    assert_eq!(list(replays, first).await, (vec![replay.id.clone()], true));
    let newest = PageRequest::first(1, Order::Descending);
    assert_eq!(list(TaskFilter::default(), newest).await, (vec![replay.id.clone()], false));
}

/// Publishes the messages and lets every delivery fail for good.
async fn publish_and_fail(store: &Store, messages: &[Message]) {
    for msg in messages {
        store.messages.publish_message(msg, None).await.unwrap();
    }
    let now = now_ms();
    let claimed = store.queue.claim_due(now, 100, now + 60_000, &[]).await.unwrap();
    let outcomes: Vec<_> = claimed
        .iter()
        .map(|d| AttemptOutcome {
            attempt: attempt_for(d, DeliveryStatus::Fail, 500),
            next: NextStep::GiveUp,
            disable_endpoint: false,
        })
        .collect();
    store.queue.record_outcomes(&outcomes).await.unwrap();
}

async fn recover_requeues_only_failed_deliveries_of_the_window_in_batches(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let ep = endpoint(&acme.id, None, None);
    let other = endpoint(&acme.id, None, None);
    app_with_endpoints(&store, &[ep.clone(), other.clone()]).await;
    let base = now_ms() - 10 * 3_600_000;
    let window = TimeWindow { since: base, until: base + 4 * 3_600_000 };
    let before = message_at(&acme.id, "a", None, base - 1);
    let inside: Vec<_> = (0..3).map(|i| message_at(&acme.id, "a", None, base + i * 60_000)).collect();
    let after = message_at(&acme.id, "a", None, window.until);
    let mut all = vec![before.clone(), after.clone()];
    all.extend(inside.iter().cloned());
    publish_and_fail(&store, &all).await;
    assert_eq!(store.recovery.count_failed_deliveries(&ep.id, window).await.unwrap(), 3);

    let first = store.recovery.requeue_failed(&ep.id, window, 2, None).await.unwrap();
    assert_eq!(
        first,
        BatchDone { scanned: 2, queued: 2, last: Some(inside[1].id.clone()), done: false },
        "the first batch takes the two oldest"
    );
    let second = store.recovery.requeue_failed(&ep.id, window, 2, first.last.as_ref()).await.unwrap();
    assert_eq!(second, BatchDone { scanned: 1, queued: 1, last: Some(inside[2].id.clone()), done: true });
    assert_eq!(store.recovery.count_failed_deliveries(&ep.id, window).await.unwrap(), 0);
    // Running it again finds nothing: re-queued deliveries are pending, not failed.
    assert_eq!(store.recovery.requeue_failed(&ep.id, window, 2, None).await.unwrap().queued, 0);

    let counts = store.messages.endpoint_delivery_counts(&ep.id).await.unwrap();
    assert_eq!((counts.pending, counts.fail), (3, 2), "only the window's failures are pending again");
    assert_eq!(
        store.messages.endpoint_delivery_counts(&other.id).await.unwrap().fail,
        5,
        "other endpoints are untouched"
    );
    let mut claimed = store.queue.claim_due(now_ms(), 100, now_ms() + 60_000, &[]).await.unwrap();
    claimed.sort_by(|a, b| a.msg_id.cmp(&b.msg_id));
    assert_eq!(
        claimed.iter().map(|d| d.msg_id.clone()).collect::<Vec<_>>(),
        inside.iter().map(|m| m.id.clone()).collect::<Vec<_>>()
    );
    assert!(
        claimed.iter().all(|d| d.attempts == 0 && !d.manual && d.endpoint_id == ep.id),
        "the full schedule applies again"
    );
}

/// A replay does not send a scheduled message early: its new delivery is due at the message's `deliverAt`.
async fn a_replayed_scheduled_message_waits_for_its_time(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let base = now_ms() - 60_000;
    let mut scheduled = message_at(&acme.id, "a", None, base);
    let deliver_at = now_ms() + 3_600_000;
    scheduled.deliver_at = Some(deliver_at);
    store.messages.publish_message(&scheduled, None).await.unwrap();
    let ep = endpoint(&acme.id, None, None);
    app_with_endpoints(&store, std::slice::from_ref(&ep)).await;
    let window = TimeWindow { since: base - 1, until: base + 1 };
    assert_eq!(store.recovery.insert_missing_deliveries(&ep.id, window, 10, None).await.unwrap().queued, 1);
    let listed = store
        .messages
        .list_endpoint_messages(&ep.id, &MessageFilter::default(), None, &PageRequest::first(10, Order::Descending))
        .await
        .unwrap();
    assert_eq!(listed.items[0].1.next_attempt_at, Some(deliver_at));
    assert!(store.queue.claim_due(now_ms(), 10, now_ms() + 60_000, &[]).await.unwrap().is_empty());
}

async fn replay_creates_deliveries_only_for_accepted_messages_the_endpoint_never_had(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let base = now_ms() - 3_600_000;
    let window = TimeWindow { since: base, until: base + 60_000 };
    let outside = message_at(&acme.id, "a", None, base - 1);
    let wanted = message_at(&acme.id, "a", None, base + 1);
    let wrong_type = message_at(&acme.id, "b", None, base + 2);
    let on_channel = message_at(&acme.id, "a", Some(&["eu"]), base + 3);
    for msg in [&outside, &wanted, &wrong_type, &on_channel] {
        store.messages.publish_message(msg, None).await.unwrap();
    }
    let ep = endpoint(&acme.id, Some(&["a"]), None);
    app_with_endpoints(&store, std::slice::from_ref(&ep)).await;
    let already = message_at(&acme.id, "a", None, base + 4);
    store.messages.publish_message(&already, None).await.unwrap();
    assert_eq!(store.recovery.count_messages(&acme.id, window).await.unwrap(), 4);

    let first = store.recovery.insert_missing_deliveries(&ep.id, window, 2, None).await.unwrap();
    assert_eq!(first, BatchDone { scanned: 2, queued: 1, last: Some(wrong_type.id.clone()), done: false });
    let second = store.recovery.insert_missing_deliveries(&ep.id, window, 2, first.last.as_ref()).await.unwrap();
    assert_eq!(second, BatchDone { scanned: 2, queued: 1, last: Some(already.id.clone()), done: false });
    let third = store.recovery.insert_missing_deliveries(&ep.id, window, 2, second.last.as_ref()).await.unwrap();
    assert_eq!(third, BatchDone { scanned: 0, queued: 0, last: None, done: true });
    // Idempotent: every message of the window now has its delivery.
    assert_eq!(store.recovery.insert_missing_deliveries(&ep.id, window, 10, None).await.unwrap().queued, 0);

    let mut claimed: Vec<_> = store
        .queue
        .claim_due(now_ms(), 100, now_ms() + 60_000, &[])
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.msg_id)
        .collect();
    claimed.sort();
    assert_eq!(claimed, vec![wanted.id.clone(), on_channel.id.clone(), already.id.clone()]);

    let mut disabled = endpoint(&acme.id, None, None);
    disabled.disabled = true;
    app_with_endpoints(&store, std::slice::from_ref(&disabled)).await;
    let nothing = store.recovery.insert_missing_deliveries(&disabled.id, window, 10, None).await.unwrap();
    assert_eq!((nothing.queued, nothing.done), (0, true));
    assert!(matches!(
        store.recovery.insert_missing_deliveries(&EndpointId::new(), window, 10, None).await,
        Err(StoreError::NotFound)
    ));
}

fn source(app_id: &AppId, uid: Option<&str>) -> Source {
    let now = now_ms();
    Source {
        id: SourceId::new(),
        uid: uid.map(str::to_owned),
        name: "Stripe payments".into(),
        app_id: app_id.clone(),
        provider: Provider::Stripe,
        secrets: SourceSecrets::new("whsec_c2VjcmV0".into()),
        tolerance_secs: 300,
        rate_limit: None,
        forward_headers: vec!["Stripe-Signature".into()],
        created_at: now,
        updated_at: now,
    }
}

/// A verified request received at `at`, with an id stamped with the same time, as the API makes them.
fn verified(source_id: &SourceId, event_id: Option<&str>, at: i64) -> InboundEvent {
    InboundEvent {
        id: InboundEventId::at(at),
        source_id: source_id.clone(),
        status: InboundStatus::Verified,
        reason: None,
        event_id: event_id.map(str::to_owned),
        event_type: Some("invoice.paid".into()),
        msg_id: None,
        received_at: at,
    }
}

/// One rejected request at `at`, counted as the API counts it.
fn rejected(source_id: &SourceId, reason: &str, at: i64) -> InboundRejections {
    InboundRejections {
        source_id: source_id.clone(),
        reason: reason.into(),
        minute: minute_of(at),
        count: 1,
        first_seen: at,
        last_seen: at,
        sample: None,
    }
}

async fn rejection_rows(store: &Store, source_id: &SourceId) -> Vec<InboundRejections> {
    store.inbound.list_inbound_rejections(source_id, &PageRequest::first(100, Order::Descending)).await.unwrap().items
}

async fn ingest_new(store: &Store, event: &InboundEvent, message: Option<&Message>) -> Option<PublishedMessage> {
    match store.inbound.ingest(event, message).await.unwrap() {
        IngestOutcome::Recorded(published) => published.map(|published| *published),
        other => panic!("expected the event to be recorded as new, got {other:?}"),
    }
}

async fn sources_round_trip_and_uids_are_unique_across_applications(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let options = serde_json::json!({
        "signatureHeader": "X-Corp-Signature", "signatureEncoding": "base64", "signaturePrefix": "",
        "timestampHeader": "X-Corp-Timestamp", "eventTypeField": "event", "eventIdHeader": "X-Corp-Id",
        "eventIdField": "data.id"
    });
    let mut corp = source(&acme.id, Some("corp"));
    corp.provider = Provider::from_options("hmac-sha256", options.as_object().unwrap()).unwrap();
    corp.secrets.rotate("second-secret".into(), now_ms(), 3_600_000);
    corp.tolerance_secs = 60;
    store.inbound.create_source(&corp).await.unwrap();
    assert_eq!(store.inbound.get_source(corp.id.as_str()).await.unwrap(), corp);
    assert_eq!(store.inbound.get_source("corp").await.unwrap(), corp);
    let stored_options = store.inbound.get_source("corp").await.unwrap().provider.options();
    assert_eq!(serde_json::Value::Object(stored_options), options);
    assert!(matches!(store.inbound.get_source("nope").await, Err(StoreError::NotFound)));
    assert!(matches!(store.inbound.get_source(SourceId::new().as_str()).await, Err(StoreError::NotFound)));

    // Uids name the public ingest URL, so they are unique across applications.
    let other = app(None);
    store.catalog.create_app(&other).await.unwrap();
    match store.inbound.create_source(&source(&other.id, Some("corp"))).await {
        Err(StoreError::Conflict(message)) => assert!(message.contains("corp"), "{message}"),
        got => panic!("expected a uid conflict, got {got:?}"),
    }
    assert!(matches!(store.inbound.create_source(&source(&AppId::new(), None)).await, Err(StoreError::NotFound)));

    let mut slack = source(&other.id, None);
    slack.provider =
        Provider::from_options("slack", serde_json::json!({"eventTypeField": "event.type"}).as_object().unwrap())
            .unwrap();
    store.inbound.create_source(&slack).await.unwrap();
    let mut taken = slack.clone();
    taken.uid = Some("corp".into());
    assert!(matches!(store.inbound.update_source(&taken).await, Err(StoreError::Conflict(_))));

    corp.name = "Corp billing".into();
    corp.uid = Some("billing".into());
    corp.provider = Provider::Github;
    corp.secrets.rotate("third-secret".into(), now_ms(), 3_600_000);
    corp.updated_at += 1;
    store.inbound.update_source(&corp).await.unwrap();
    assert_eq!(store.inbound.get_source("billing").await.unwrap(), corp);
    assert!(matches!(store.inbound.get_source("corp").await, Err(StoreError::NotFound)));
    assert!(matches!(store.inbound.update_source(&source(&acme.id, None)).await, Err(StoreError::NotFound)));

    let all = store.inbound.list_sources(&PageRequest::first(10, Order::Ascending)).await.unwrap();
    assert_eq!((all.items, all.done), (vec![corp.clone(), slack.clone()], true));
    let newest = store.inbound.list_sources(&PageRequest::first(1, Order::Descending)).await.unwrap();
    assert_eq!((newest.items, newest.done), (vec![slack.clone()], false));

    store.inbound.delete_source(&corp.id).await.unwrap();
    assert!(matches!(store.inbound.get_source(corp.id.as_str()).await, Err(StoreError::NotFound)));
    assert!(matches!(store.inbound.delete_source(&corp.id).await, Err(StoreError::NotFound)));
}

async fn deleting_a_source_removes_its_events_but_keeps_their_messages(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let stripe = source(&acme.id, None);
    store.inbound.create_source(&stripe).await.unwrap();
    let msg = message(&acme.id, "invoice.paid", None);
    ingest_new(&store, &verified(&stripe.id, Some("evt_1"), now_ms()), Some(&msg)).await;
    store.inbound.record_rejections(&[rejected(&stripe.id, "signature_mismatch", now_ms())]).await.unwrap();
    assert_eq!(rejection_rows(&store, &stripe.id).await.len(), 1);

    store.inbound.delete_source(&stripe.id).await.unwrap();
    let first = PageRequest::first(10, Order::Descending);
    assert!(store.inbound.list_inbound_events(&stripe.id, None, &first).await.unwrap().items.is_empty());
    assert_eq!(rejection_rows(&store, &stripe.id).await, vec![]);
    assert_eq!(store.messages.get_message(&acme.id, msg.id.as_str()).await.unwrap(), msg);
    // Requests that reach a source deleted meanwhile find it gone; counts of its rejections are dropped along
    // with the others of their batch kept.
    let late = verified(&stripe.id, Some("evt_2"), now_ms());
    assert!(matches!(store.inbound.ingest(&late, None).await, Err(StoreError::NotFound)));
    let other = source(&acme.id, None);
    store.inbound.create_source(&other).await.unwrap();
    let batch = [rejected(&stripe.id, "signature_mismatch", now_ms()), rejected(&other.id, "missing_header", now_ms())];
    store.inbound.record_rejections(&batch).await.unwrap();
    assert_eq!(rejection_rows(&store, &stripe.id).await, vec![]);
    assert_eq!(rejection_rows(&store, &other.id).await, vec![batch[1].clone()]);
}

async fn ingest_publishes_new_events_once_and_records_repeats_as_duplicates(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let ep = endpoint(&acme.id, Some(&["invoice.paid"]), None);
    app_with_endpoints(&store, std::slice::from_ref(&ep)).await;
    let (stripe, github) = (source(&acme.id, None), source(&acme.id, None));
    store.inbound.create_source(&stripe).await.unwrap();
    store.inbound.create_source(&github).await.unwrap();

    let mut first_msg = message(&acme.id, "invoice.paid", None);
    first_msg.forwarded_headers = BTreeMap::from([(
        "Stripe-Signature".to_owned(),
        "t=1700000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd".to_owned(),
    )]);
    let first = verified(&stripe.id, Some("evt_1"), now_ms());
    let published = ingest_new(&store, &first, Some(&first_msg)).await;
    assert_eq!(published, Some(PublishedMessage { message: first_msg.clone(), deliveries: 1, to_claim: 1 }));
    assert_eq!(store.messages.get_message(&acme.id, first_msg.id.as_str()).await.unwrap(), first_msg);
    let claimed = store.queue.claim_due(now_ms(), 10, now_ms() + 60_000, &[]).await.unwrap();
    assert_eq!(
        claimed.iter().map(|d| (d.msg_id.clone(), d.endpoint_id.clone())).collect::<Vec<_>>(),
        vec![(first_msg.id.clone(), ep.id.clone())]
    );
    assert_eq!(claimed[0].forwarded_headers, first_msg.forwarded_headers, "the source's forwarded headers go along");

    // The provider retries: a duplicate pointing at the first message, and nothing published.
    let retry_msg = message(&acme.id, "invoice.paid", None);
    let retry = verified(&stripe.id, Some("evt_1"), now_ms());
    let outcome = store.inbound.ingest(&retry, Some(&retry_msg)).await.unwrap();
    assert_eq!(outcome, IngestOutcome::Duplicate { original_msg_id: Some(first_msg.id.clone()) });
    assert!(matches!(store.messages.get_message(&acme.id, retry_msg.id.as_str()).await, Err(StoreError::NotFound)));
    assert_eq!(store.messages.endpoint_delivery_counts(&ep.id).await.unwrap().sending, 1);

    // A verified event without a message: its repeats point at no message.
    let bare = verified(&stripe.id, Some("evt_2"), now_ms());
    assert_eq!(ingest_new(&store, &bare, None).await, None);
    let bare_again = verified(&stripe.id, Some("evt_2"), now_ms());
    assert_eq!(
        store.inbound.ingest(&bare_again, None).await.unwrap(),
        IngestOutcome::Duplicate { original_msg_id: None }
    );

    // Without a provider event id there is nothing to deduplicate on.
    for _ in 0..2 {
        let msg = message(&acme.id, "invoice.paid", None);
        assert!(ingest_new(&store, &verified(&stripe.id, None, now_ms()), Some(&msg)).await.is_some());
    }
    // Event ids are the provider's, so only unique per source.
    let elsewhere_msg = message(&acme.id, "invoice.paid", None);
    let elsewhere = verified(&github.id, Some("evt_1"), now_ms());
    assert!(ingest_new(&store, &elsewhere, Some(&elsewhere_msg)).await.is_some());

    let page = PageRequest::first(10, Order::Ascending);
    let events = store.inbound.list_inbound_events(&stripe.id, None, &page).await.unwrap().items;
    let summary: Vec<_> = events.iter().map(|e| (e.id.clone(), e.status, e.msg_id.clone())).collect();
    assert_eq!(
        summary[..4],
        [
            (first.id.clone(), InboundStatus::Verified, Some(first_msg.id.clone())),
            (retry.id.clone(), InboundStatus::Duplicate, Some(first_msg.id.clone())),
            (bare.id.clone(), InboundStatus::Verified, None),
            (bare_again.id.clone(), InboundStatus::Duplicate, None),
        ]
    );
    assert_eq!(events.len(), 6);
    assert_eq!(events[1], InboundEvent { status: InboundStatus::Duplicate, msg_id: Some(first_msg.id), ..retry });
    let counts = store.inbound.inbound_counts(&stripe.id, None).await.unwrap();
    assert_eq!((counts.verified, counts.duplicates, counts.received()), (4, 2, 6));
    assert_eq!(store.inbound.inbound_counts(&github.id, None).await.unwrap().verified, 1);
}

async fn inbound_event_lists_are_newest_first_and_filter_by_status(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let (stripe, other) = (source(&acme.id, None), source(&acme.id, None));
    store.inbound.create_source(&stripe).await.unwrap();
    store.inbound.create_source(&other).await.unwrap();
    let base = now_ms() - 60_000;
    let mut events = Vec::new();
    // New events and, in between, repeats of the first (duplicates).
    for i in 0..5 {
        let event = if i % 2 == 0 {
            let event = verified(&stripe.id, Some(&format!("evt_{i}")), base + i);
            ingest_new(&store, &event, None).await;
            event
        } else {
            let event = verified(&stripe.id, Some("evt_0"), base + i);
            store.inbound.ingest(&event, None).await.unwrap();
            InboundEvent { status: InboundStatus::Duplicate, ..event }
        };
        events.push(event);
    }
    ingest_new(&store, &verified(&other.id, Some("evt_0"), base), None).await;
    store.inbound.record_rejections(&[rejected(&stripe.id, "signature_mismatch", base)]).await.unwrap();
    let stored =
        store.inbound.list_inbound_events(&stripe.id, None, &PageRequest::first(10, Order::Descending)).await.unwrap();
    assert_eq!(stored.items.iter().rev().cloned().collect::<Vec<_>>(), events, "newest first, every field kept");

    let ids = |page: Page<InboundEvent>| (page.items.into_iter().map(|e| e.id).collect::<Vec<_>>(), page.done);
    let mut request = PageRequest::first(2, Order::Descending);
    let first = store.inbound.list_inbound_events(&stripe.id, None, &request).await.unwrap();
    assert_eq!(ids(first.clone()), (vec![events[4].id.clone(), events[3].id.clone()], false));
    request.cursor = first.items.last().map(|e| e.id.to_string());
    let second = store.inbound.list_inbound_events(&stripe.id, None, &request).await.unwrap();
    assert_eq!(ids(second), (vec![events[2].id.clone(), events[1].id.clone()], false));

    let verified_only = store
        .inbound
        .list_inbound_events(&stripe.id, Some(InboundStatus::Verified), &PageRequest::first(10, Order::Descending))
        .await
        .unwrap();
    assert_eq!(ids(verified_only), (vec![events[4].id.clone(), events[2].id.clone(), events[0].id.clone()], true));
    let duplicates = store
        .inbound
        .list_inbound_events(&stripe.id, Some(InboundStatus::Duplicate), &PageRequest::first(1, Order::Descending))
        .await
        .unwrap();
    assert_eq!(ids(duplicates), (vec![events[3].id.clone()], false));
    // Rejected requests are counted, never listed as events.
    let rejected_page = store
        .inbound
        .list_inbound_events(&stripe.id, Some(InboundStatus::Rejected), &PageRequest::first(10, Order::Descending))
        .await
        .unwrap();
    assert_eq!(ids(rejected_page), (vec![], true));
}

async fn rejections_are_counted_per_source_reason_and_minute(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let (stripe, other) = (source(&acme.id, None), source(&acme.id, None));
    store.inbound.create_source(&stripe).await.unwrap();
    store.inbound.create_source(&other).await.unwrap();
    let minute = minute_of(now_ms()) - 10 * 60_000;
    let counted = |reason: &str, minute: i64, count: u64, seen: (i64, i64), sample: Option<&str>| InboundRejections {
        source_id: stripe.id.clone(),
        reason: reason.into(),
        minute,
        count,
        first_seen: minute + seen.0,
        last_seen: minute + seen.1,
        sample: sample.map(str::to_owned),
    };
    // Two writes of the same source, reason and minute add up; the first seen is the earliest, the last seen
    // the latest, and the newest sample wins. Other reasons, minutes and sources are rows of their own.
    store
        .inbound
        .record_rejections(&[
            counted("signature_mismatch", minute, 3, (10_000, 20_000), Some(r#"{"detail":"a"}"#)),
            counted("missing_header", minute, 1, (15_000, 15_000), None),
            InboundRejections { source_id: other.id.clone(), ..counted("signature_mismatch", minute, 9, (1, 2), None) },
        ])
        .await
        .unwrap();
    store
        .inbound
        .record_rejections(&[
            counted("signature_mismatch", minute, 2, (5_000, 30_000), Some(r#"{"detail":"b"}"#)),
            counted("signature_mismatch", minute + 60_000, 1, (0, 0), Some(r#"{"detail":"c"}"#)),
        ])
        .await
        .unwrap();
    // A late write about earlier requests keeps the newer sample, and one without a sample keeps the old one.
    store
        .inbound
        .record_rejections(&[counted("signature_mismatch", minute, 1, (1_000, 2_000), Some("{}"))])
        .await
        .unwrap();
    store.inbound.record_rejections(&[counted("missing_header", minute, 1, (50_000, 50_000), None)]).await.unwrap();

    let expected = vec![
        counted("signature_mismatch", minute + 60_000, 1, (0, 0), Some(r#"{"detail":"c"}"#)),
        counted("signature_mismatch", minute, 6, (1_000, 30_000), Some(r#"{"detail":"b"}"#)),
        counted("missing_header", minute, 2, (15_000, 50_000), None),
    ];
    assert_eq!(rejection_rows(&store, &stripe.id).await, expected, "newest minute first");
    let counts = store.inbound.inbound_counts(&stripe.id, None).await.unwrap();
    let by_reason = BTreeMap::from([("missing_header".into(), 2), ("signature_mismatch".into(), 7)]);
    assert_eq!(counts, InboundCounts { rejected_by_reason: by_reason, ..InboundCounts::default() });
    assert_eq!(store.inbound.inbound_counts(&other.id, None).await.unwrap().rejected(), 9);

    // Pages by (minute, reason), both ways.
    let mut request = PageRequest::first(2, Order::Descending);
    let first = store.inbound.list_inbound_rejections(&stripe.id, &request).await.unwrap();
    assert_eq!((first.items.clone(), first.done), (expected[..2].to_vec(), false));
    request.cursor = first.items.last().map(rejection_cursor);
    let second = store.inbound.list_inbound_rejections(&stripe.id, &request).await.unwrap();
    assert_eq!((second.items, second.done), (expected[2..].to_vec(), true));
    let back = PageRequest { cursor: Some(rejection_cursor(&expected[2])), backwards: true, ..request.clone() };
    let back = store.inbound.list_inbound_rejections(&stripe.id, &back).await.unwrap();
    assert_eq!((back.items, back.done), (expected[..2].to_vec(), true));
    let ascending = PageRequest::first(10, Order::Ascending);
    let ascending = store.inbound.list_inbound_rejections(&stripe.id, &ascending).await.unwrap().items;
    assert_eq!(ascending, expected.iter().rev().cloned().collect::<Vec<_>>());
    let bad = PageRequest { cursor: Some("yesterday".into()), ..request };
    assert!(matches!(store.inbound.list_inbound_rejections(&stripe.id, &bad).await, Err(StoreError::Invalid(_))));
}

async fn inbound_counts_split_by_outcome_and_reason_since_a_time(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let stripe = source(&acme.id, None);
    store.inbound.create_source(&stripe).await.unwrap();
    let day = 24 * 3_600_000;
    let (old, recent) = (now_ms() - 2 * day, now_ms() - 1_000);
    ingest_new(&store, &verified(&stripe.id, Some("evt_old"), old), None).await;
    store.inbound.record_rejections(&[rejected(&stripe.id, "signature_mismatch", old)]).await.unwrap();
    ingest_new(&store, &verified(&stripe.id, Some("evt_new"), recent), None).await;
    store.inbound.ingest(&verified(&stripe.id, Some("evt_new"), recent + 1), None).await.unwrap();
    store.inbound.ingest(&verified(&stripe.id, Some("evt_old"), recent + 2), None).await.unwrap();
    for reason in ["signature_mismatch", "missing_header", "signature_mismatch"] {
        store.inbound.record_rejections(&[rejected(&stripe.id, reason, recent + 3)]).await.unwrap();
    }

    let all = store.inbound.inbound_counts(&stripe.id, None).await.unwrap();
    let expected_all = InboundCounts {
        verified: 2,
        duplicates: 2,
        rejected_by_reason: BTreeMap::from([("missing_header".into(), 1), ("signature_mismatch".into(), 3)]),
    };
    assert_eq!(all, expected_all);
    assert_eq!((all.rejected(), all.received()), (4, 8));

    let since = store.inbound.inbound_counts(&stripe.id, Some(recent)).await.unwrap();
    let expected_since = InboundCounts {
        verified: 1,
        duplicates: 2,
        rejected_by_reason: BTreeMap::from([("missing_header".into(), 1), ("signature_mismatch".into(), 2)]),
    };
    assert_eq!(since, expected_since);
    assert_eq!(store.inbound.inbound_counts(&stripe.id, Some(recent + 4)).await.unwrap(), InboundCounts::default());
    assert_eq!(store.inbound.inbound_counts(&SourceId::new(), None).await.unwrap(), InboundCounts::default());
}

async fn old_inbound_events_are_purged_in_batches(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let stripe = source(&acme.id, None);
    store.inbound.create_source(&stripe).await.unwrap();
    let day = 24 * 3_600_000;
    let old_at = now_ms() - 100 * day;
    let old_msg = message_at(&acme.id, "invoice.paid", None, old_at);
    ingest_new(&store, &verified(&stripe.id, Some("evt_old"), old_at), Some(&old_msg)).await;
    // Two minutes of old rejections, and a recent one.
    let old_rejections = [
        rejected(&stripe.id, "signature_mismatch", old_at - 60_000),
        rejected(&stripe.id, "signature_mismatch", old_at - 120_000),
    ];
    store.inbound.record_rejections(&old_rejections).await.unwrap();
    let recent_rejection = rejected(&stripe.id, "signature_mismatch", now_ms());
    store.inbound.record_rejections(std::slice::from_ref(&recent_rejection)).await.unwrap();
    let recent = verified(&stripe.id, Some("evt_new"), now_ms());
    ingest_new(&store, &recent, None).await;

    let cutoff = now_ms() - 90 * day;
    assert_eq!(store.recovery.purge_inbound_events(cutoff, 2).await.unwrap(), 2);
    assert_eq!(store.recovery.purge_inbound_events(cutoff, 2).await.unwrap(), 1);
    assert_eq!(store.recovery.purge_inbound_events(cutoff, 2).await.unwrap(), 0);
    let left =
        store.inbound.list_inbound_events(&stripe.id, None, &PageRequest::first(10, Order::Descending)).await.unwrap();
    assert_eq!(left.items.into_iter().map(|e| e.id).collect::<Vec<_>>(), vec![recent.id]);
    assert_eq!(rejection_rows(&store, &stripe.id).await, vec![recent_rejection]);
    // The messages stay: the payload purge has its own rules.
    assert_eq!(store.messages.get_message(&acme.id, old_msg.id.as_str()).await.unwrap(), old_msg);
}

async fn queue_stats_count_open_deliveries_and_their_earliest_due_time(store: Store) {
    assert_eq!(store.operations.queue_stats().await.unwrap(), QueueStats { depth: 0, oldest_due_at: None });
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let ep = endpoint(&acme.id, None, None);
    app_with_endpoints(&store, std::slice::from_ref(&ep)).await;
    let before = now_ms();
    for _ in 0..2 {
        store.messages.publish_message(&message(&acme.id, "a", None), None).await.unwrap();
    }
    let stats = store.operations.queue_stats().await.unwrap();
    assert_eq!(stats.depth, 2);
    assert!(stats.oldest_due_at.is_some_and(|due| due >= before && due <= now_ms()), "{stats:?}");

    // Being sent still counts; a finished delivery, delivered or given up, does not.
    let now = now_ms();
    let claimed = store.queue.claim_due(now, 10, now + 60_000, &[]).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(
        store.operations.queue_stats().await.unwrap(),
        QueueStats { depth: 2, oldest_due_at: Some(now + 60_000) }
    );
    let outcome = |claimed: &ClaimedDelivery, status, next| AttemptOutcome {
        attempt: attempt_for(claimed, status, if status == DeliveryStatus::Success { 200 } else { 500 }),
        next,
        disable_endpoint: false,
    };
    store
        .queue
        .record_outcomes(&[outcome(&claimed[0], DeliveryStatus::Fail, NextStep::RetryAt(now + 5_000))])
        .await
        .unwrap();
    assert_eq!(
        store.operations.queue_stats().await.unwrap(),
        QueueStats { depth: 2, oldest_due_at: Some(now + 5_000) }
    );
    store
        .queue
        .record_outcomes(&[
            outcome(&claimed[1], DeliveryStatus::Success, NextStep::Succeeded),
            outcome(&claimed[0], DeliveryStatus::Fail, NextStep::GiveUp),
        ])
        .await
        .unwrap();
    assert_eq!(store.operations.queue_stats().await.unwrap(), QueueStats { depth: 0, oldest_due_at: None });
}

async fn a_working_store_is_writable_and_its_write_probe_succeeds(store: Store) {
    assert_eq!(store.operations.unwritable(), None);
    for _ in 0..3 {
        store.operations.probe_write().await.unwrap();
    }
    assert_eq!(store.operations.unwritable(), None);
}

async fn activity_stats_cover_the_window_with_percentiles_and_the_most_failing_endpoints(store: Store) {
    const DAY: i64 = 24 * 3600 * 1000;
    let now = now_ms();
    let empty = store.operations.activity_stats(now - DAY, 10).await.unwrap();
    assert_eq!(empty, ActivityStats::default());

    let (acme, other) = (app(None), app(None));
    store.catalog.create_app(&acme).await.unwrap();
    store.catalog.create_app(&other).await.unwrap();
    let (ep_a, ep_b, ep_other) =
        (endpoint(&acme.id, None, None), endpoint(&acme.id, None, None), endpoint(&other.id, None, None));
    app_with_endpoints(&store, &[ep_a.clone(), ep_b.clone(), ep_other.clone()]).await;
    // A message from two days ago (outside the window) and three recent ones, to both endpoints of acme; one
    // recent message of another application.
    let mut old = message(&acme.id, "a", None);
    old.id = MessageId::at(now - 2 * DAY);
    old.created_at = now - 2 * DAY;
    store.messages.publish_message(&old, None).await.unwrap();
    for _ in 0..3 {
        store.messages.publish_message(&message(&acme.id, "a", None), None).await.unwrap();
    }
    let other_msg = message(&other.id, "a", None);
    store.messages.publish_message(&other_msg, None).await.unwrap();

    let claimed = store.queue.claim_due(now_ms(), 100, now_ms() + 60_000, &[]).await.unwrap();
    assert_eq!(claimed.len(), 9);
    let mut recent_a_durations = vec![10, 20, 30].into_iter();
    let mut recent_b_durations = vec![100, 200, 300].into_iter();
    let mut outcomes = Vec::new();
    let mut old_b_attempt = None;
    for delivery in &claimed {
        let (status, duration, at) = if delivery.msg_id == old.id {
            // The old message's attempts: to A made now (in the window), to B made two days ago (not).
            if delivery.endpoint_id == ep_a.id {
                (DeliveryStatus::Fail, 50, now)
            } else {
                (DeliveryStatus::Fail, 7, old.created_at)
            }
        } else if delivery.endpoint_id == ep_a.id {
            (DeliveryStatus::Success, recent_a_durations.next().unwrap(), now)
        } else if delivery.endpoint_id == ep_b.id {
            (DeliveryStatus::Fail, recent_b_durations.next().unwrap(), now)
        } else {
            (DeliveryStatus::Success, 10, now)
        };
        let mut attempt = attempt_for(delivery, status, if status == DeliveryStatus::Success { 200 } else { 500 });
        attempt.id = AttemptId::at(at);
        attempt.created_at = at;
        attempt.response_duration_ms = duration;
        if delivery.msg_id == old.id && delivery.endpoint_id == ep_b.id {
            old_b_attempt = Some(attempt.clone());
        }
        let next = if status == DeliveryStatus::Success { NextStep::Succeeded } else { NextStep::GiveUp };
        outcomes.push(AttemptOutcome { attempt, next, disable_endpoint: false });
    }
    store.queue.record_outcomes(&outcomes).await.unwrap();

    let stats = store.operations.activity_stats(now - DAY, 10).await.unwrap();
    assert_eq!(stats.messages, 4);
    assert_eq!(stats.deliveries, DeliveryCounts { success: 4, fail: 3, ..Default::default() });
    assert_eq!(stats.attempts, AttemptCounts { success: 4, fail: 4 });
    // Durations in the window: 10, 10, 20, 30, 50, 100, 200, 300.
    assert_eq!((stats.attempt_duration_p50_ms, stats.attempt_duration_p99_ms), (Some(30), Some(300)));
    let failures =
        |ep: &Endpoint, failures| EndpointFailures { app_id: ep.app_id.clone(), endpoint_id: ep.id.clone(), failures };
    assert_eq!(stats.failing_endpoints, vec![failures(&ep_b, 3), failures(&ep_a, 1)]);
    let top_one = store.operations.activity_stats(now - DAY, 1).await.unwrap();
    assert_eq!(top_one.failing_endpoints, vec![failures(&ep_b, 3)]);

    // The app-wide attempt list: every endpoint of the app, no other app's attempts, filters as elsewhere.
    let page = PageRequest::first(50, Order::Descending);
    let failed = AttemptFilter { status: Some(DeliveryStatus::Fail), ..Default::default() };
    let listed = store.messages.list_attempts_for_app(&acme.id, &failed, &page).await.unwrap();
    assert_eq!(listed.items.len(), 5);
    assert!(listed.items.iter().all(|a| a.app_id == acme.id && a.status == DeliveryStatus::Fail));
    assert_eq!(listed.items.last(), old_b_attempt.as_ref());
    let all = store.messages.list_attempts_for_app(&acme.id, &AttemptFilter::default(), &page).await.unwrap();
    assert_eq!(all.items.len(), 8);
    let only_a = AttemptFilter { endpoint_id: Some(ep_a.id.clone()), ..Default::default() };
    assert_eq!(store.messages.list_attempts_for_app(&acme.id, &only_a, &page).await.unwrap().items.len(), 4);
    let two = store
        .messages
        .list_attempts_for_app(&acme.id, &failed, &PageRequest::first(2, Order::Descending))
        .await
        .unwrap();
    assert_eq!(two.items, listed.items[..2].to_vec());
    assert!(!two.done);
    let elsewhere = store.messages.list_attempts_for_app(&other.id, &AttemptFilter::default(), &page).await.unwrap();
    assert_eq!(elsewhere.items.iter().map(|a| a.msg_id.clone()).collect::<Vec<_>>(), vec![other_msg.id.clone()]);
}

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

/// Publishes one message per `(endpoint, time, success)` to that endpoint alone, and records its attempt as made
/// at that time: a failure gives up, a success succeeds.
async fn attempts_at(store: &Store, app_id: &AppId, attempts: &[(&EndpointId, i64, bool)]) {
    let mut made = BTreeMap::new();
    for &(endpoint_id, at, success) in attempts {
        let msg = message(app_id, "a", None);
        store.messages.publish_to_endpoint(&msg, endpoint_id, None).await.unwrap();
        made.insert(msg.id, (at, success));
    }
    let now = now_ms();
    let claimed = store.queue.claim_due(now, 100, now + 60_000, &[]).await.unwrap();
    assert_eq!(claimed.len(), attempts.len());
    let outcomes: Vec<_> = claimed
        .iter()
        .map(|delivery| {
            let (at, success) = made[&delivery.msg_id];
            let status = if success { DeliveryStatus::Success } else { DeliveryStatus::Fail };
            let mut attempt = attempt_for(delivery, status, if success { 200 } else { 500 });
            (attempt.id, attempt.created_at) = (AttemptId::at(at), at);
            let next = if success { NextStep::Succeeded } else { NextStep::GiveUp };
            AttemptOutcome { attempt, next, disable_endpoint: false }
        })
        .collect();
    store.queue.record_outcomes(&outcomes).await.unwrap();
}

async fn failing_endpoints_are_summed_from_the_failure_counters_and_deleted_endpoints_drop_out(store: Store) {
    let now = now_ms();
    let since = now - 24 * HOUR;
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let (three, one, healthy, gone_later, gone_in_flight) = (
        endpoint(&acme.id, None, None),
        endpoint(&acme.id, None, None),
        endpoint(&acme.id, None, None),
        endpoint(&acme.id, None, None),
        endpoint(&acme.id, None, None),
    );
    app_with_endpoints(&store, &[three.clone(), one.clone(), healthy.clone(), gone_later.clone()]).await;
    // `three` fails in three different minutes (two batches); `one` fails once in the window and once the day
    // before; `healthy` never fails; `gone_later` fails five times, then is deleted.
    attempts_at(
        &store,
        &acme.id,
        &[
            (&three.id, now - 2 * MINUTE, false),
            (&three.id, now - MINUTE, false),
            (&one.id, since - HOUR, false),
            (&one.id, now, false),
            (&one.id, now, true),
            (&healthy.id, now, true),
        ],
    )
    .await;
    attempts_at(&store, &acme.id, &[(&three.id, now, false), (&gone_later.id, now - MINUTE, false)]).await;
    attempts_at(&store, &acme.id, &[(&gone_later.id, now, false); 4]).await;
    let failures =
        |ep: &Endpoint, failures| EndpointFailures { app_id: ep.app_id.clone(), endpoint_id: ep.id.clone(), failures };
    let stats = store.operations.activity_stats(since, 10).await.unwrap();
    assert_eq!(stats.failing_endpoints, vec![failures(&gone_later, 5), failures(&three, 3), failures(&one, 1)]);
    assert_eq!(stats.attempts, AttemptCounts { success: 2, fail: 9 });

    // Deleted afterwards: it drops out of the list (its attempts were made, so the totals keep them).
    store.catalog.delete_endpoint(&acme.id, &gone_later.id).await.unwrap();
    // Deleted while its attempt was in flight: the attempt is not stored, so it counts nowhere.
    store.catalog.create_endpoint(&gone_in_flight).await.unwrap();
    store.messages.publish_to_endpoint(&message(&acme.id, "a", None), &gone_in_flight.id, None).await.unwrap();
    let claimed = store.queue.claim_due(now_ms(), 10, now_ms() + 60_000, &[]).await.unwrap();
    assert_eq!(claimed.len(), 1);
    store.catalog.delete_endpoint(&acme.id, &gone_in_flight.id).await.unwrap();
    let lost = AttemptOutcome {
        attempt: attempt_for(&claimed[0], DeliveryStatus::Fail, 500),
        next: NextStep::GiveUp,
        disable_endpoint: false,
    };
    store.queue.record_outcomes(&[lost]).await.unwrap();

    let stats = store.operations.activity_stats(since, 10).await.unwrap();
    assert_eq!(stats.failing_endpoints, vec![failures(&three, 3), failures(&one, 1)]);
    assert_eq!(stats.attempts, AttemptCounts { success: 2, fail: 9 });
    assert_eq!(store.operations.activity_stats(since, 1).await.unwrap().failing_endpoints, vec![failures(&three, 3)]);
    // A window that starts inside a minute takes that whole minute: `three`'s failure of two minutes ago counts.
    let recent = store.operations.activity_stats(minute_of(now - 2 * MINUTE) + 59_999, 10).await.unwrap();
    assert_eq!(recent.failing_endpoints, vec![failures(&three, 3), failures(&one, 1)]);
    // Ties in endpoint id order (`three` was created first).
    let latest = store.operations.activity_stats(minute_of(now), 10).await.unwrap();
    assert_eq!(latest.failing_endpoints, vec![failures(&three, 1), failures(&one, 1)]);
}

async fn endpoint_failure_counters_are_purged_after_their_minute_ends_in_batches(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let ep = endpoint(&acme.id, None, None);
    store.catalog.create_endpoint(&ep).await.unwrap();
    let base = now_ms() / HOUR * HOUR - 24 * HOUR;
    attempts_at(&store, &acme.id, &[(&ep.id, base, false), (&ep.id, base + MINUTE, false)]).await;
    attempts_at(&store, &acme.id, &[(&ep.id, base + 2 * MINUTE + 59_999, false)]).await;
    let failures = || async {
        let stats = store.operations.activity_stats(base, 10).await.unwrap();
        stats.failing_endpoints.iter().map(|f| f.failures).sum::<u64>()
    };
    assert_eq!(failures().await, 3);
    // Only minutes that ended by the cutoff go, oldest first, at most `limit` rows a call.
    assert_eq!(store.recovery.purge_endpoint_failures(base + 2 * MINUTE + 1, 1).await.unwrap(), 1);
    assert_eq!(failures().await, 2);
    assert_eq!(store.recovery.purge_endpoint_failures(base + 2 * MINUTE + 1, 100).await.unwrap(), 1);
    assert_eq!(store.recovery.purge_endpoint_failures(base + 2 * MINUTE + 1, 100).await.unwrap(), 0);
    assert_eq!(failures().await, 1);
    // The other counters are not theirs to purge.
    assert_eq!(
        store.operations.activity_stats(base, 10).await.unwrap().attempts,
        AttemptCounts { success: 0, fail: 3 }
    );
}

/// A bucket of an activity series, as data: `(start, messages, successful attempts, failed attempts)`.
fn bucket(start: i64, messages: u64, success: u64, fail: u64) -> ActivityBucket {
    ActivityBucket { start, messages, attempts: AttemptCounts { success, fail } }
}

/// Messages and attempts of the whole series.
fn series_totals(series: &[ActivityBucket]) -> (u64, u64, u64) {
    series.iter().fold((0, 0, 0), |(m, s, f), b| (m + b.messages, s + b.attempts.success, f + b.attempts.fail))
}

async fn activity_series_counts_what_was_stored_per_bucket_with_empty_buckets_as_zeros(store: Store) {
    // Three hours ago, on the hour, so every time below is a fixed offset into known buckets.
    let base = now_ms() / HOUR * HOUR - 3 * HOUR;
    let quiet = store.operations.activity_series(base, base + 3 * MINUTE, MINUTE).await.unwrap();
    assert_eq!(quiet, vec![bucket(base, 0, 0, 0), bucket(base + MINUTE, 0, 0, 0), bucket(base + 2 * MINUTE, 0, 0, 0)]);

    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let (kept, deleted) = (endpoint(&acme.id, None, None), endpoint(&acme.id, None, None));
    app_with_endpoints(&store, &[kept.clone(), deleted.clone()]).await;
    // Minute 1: two messages. Minute 2: one with an eventId, and a second publish of that eventId, which stores
    // nothing and so counts nothing.
    for offset in [MINUTE + 1_000, 2 * MINUTE - 1] {
        store.messages.publish_message(&message_at(&acme.id, "a", None, base + offset), None).await.unwrap();
    }
    let mut first = message_at(&acme.id, "a", None, base + 2 * MINUTE + 5_000);
    first.event_id = Some("evt-once".into());
    store.messages.publish_message(&first, None).await.unwrap();
    let mut again = message_at(&acme.id, "a", None, base + 2 * MINUTE + 6_000);
    again.event_id = first.event_id.clone();
    assert!(matches!(store.messages.publish_message(&again, None).await, Err(StoreError::Conflict(_))));
    // Minute 4: an ingested event counts as a message; the provider's retry of it does not.
    let stripe = source(&acme.id, None);
    store.inbound.create_source(&stripe).await.unwrap();
    let ingested = message_at(&acme.id, "a", None, base + 4 * MINUTE);
    ingest_new(&store, &verified(&stripe.id, Some("in_1"), base + 4 * MINUTE), Some(&ingested)).await;
    let repeat = message_at(&acme.id, "a", None, base + 4 * MINUTE + 1);
    let retried = verified(&stripe.id, Some("in_1"), base + 4 * MINUTE + 1);
    let outcome = store.inbound.ingest(&retried, Some(&repeat)).await.unwrap();
    assert!(matches!(outcome, IngestOutcome::Duplicate { .. }), "{outcome:?}");

    // Attempts in minutes 2 and 3: each kept delivery succeeds or fails by turn; the attempts to the deleted
    // endpoint are not stored (it went while they were in flight), so they are not counted either.
    let claimed = store.queue.claim_due(now_ms(), 100, now_ms() + 60_000, &[]).await.unwrap();
    assert_eq!(claimed.len(), 8, "four messages to two endpoints");
    store.catalog.delete_endpoint(&acme.id, &deleted.id).await.unwrap();
    let mut outcomes = Vec::new();
    for (n, delivery) in claimed.iter().enumerate() {
        let status = if n % 2 == 0 { DeliveryStatus::Success } else { DeliveryStatus::Fail };
        let mut attempt = attempt_for(delivery, status, if status == DeliveryStatus::Success { 200 } else { 500 });
        let at = base + if delivery.endpoint_id == kept.id { 2 * MINUTE + 30_000 } else { 3 * MINUTE + 1 };
        (attempt.id, attempt.created_at) = (AttemptId::at(at), at);
        outcomes.push(AttemptOutcome { attempt, next: NextStep::GiveUp, disable_endpoint: false });
    }
    store.queue.record_outcomes(&outcomes).await.unwrap();
    let kept_outcomes: Vec<_> = outcomes.iter().filter(|o| o.attempt.endpoint_id == kept.id).collect();
    let kept_success = kept_outcomes.iter().filter(|o| o.attempt.status == DeliveryStatus::Success).count() as u64;
    assert_eq!(kept_outcomes.len(), 4);

    let minutes = store.operations.activity_series(base, base + 6 * MINUTE, MINUTE).await.unwrap();
    assert_eq!(
        minutes,
        vec![
            bucket(base, 0, 0, 0),
            bucket(base + MINUTE, 2, 0, 0),
            bucket(base + 2 * MINUTE, 1, kept_success, 4 - kept_success),
            bucket(base + 3 * MINUTE, 0, 0, 0),
            bucket(base + 4 * MINUTE, 1, 0, 0),
            bucket(base + 5 * MINUTE, 0, 0, 0),
        ]
    );
    // A range that starts and ends inside minutes gets those whole minutes.
    let inside = store.operations.activity_series(base + MINUTE + 1, base + 2 * MINUTE + 1, MINUTE).await.unwrap();
    assert_eq!(inside, minutes[1..3].to_vec());
    // Longer buckets sum their minutes and start on a multiple of their length.
    let hours = store.operations.activity_series(base + 30 * MINUTE, base + 2 * HOUR, HOUR).await.unwrap();
    assert_eq!(hours, vec![bucket(base, 4, kept_success, 4 - kept_success), bucket(base + HOUR, 0, 0, 0)]);
    let five = store.operations.activity_series(base, base + 10 * MINUTE, 5 * MINUTE).await.unwrap();
    assert_eq!(five, vec![bucket(base, 4, kept_success, 4 - kept_success), bucket(base + 5 * MINUTE, 0, 0, 0)]);
    assert_eq!(store.operations.activity_series(base, base, MINUTE).await.unwrap(), vec![]);

    for (since, until, bucket_ms) in [(base, base + HOUR, 90_000), (base, base + HOUR, 0), (base + 1, base, MINUTE)] {
        let refused = store.operations.activity_series(since, until, bucket_ms).await;
        assert!(matches!(refused, Err(StoreError::Invalid(_))), "{since}..{until} by {bucket_ms}: {refused:?}");
    }
    let too_long = store.operations.activity_series(base - 8 * 24 * HOUR, base, MINUTE).await;
    assert!(matches!(too_long, Err(StoreError::Invalid(_))), "{too_long:?}");
}

async fn activity_counters_are_purged_after_their_minute_ends_in_batches(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let base = now_ms() / HOUR * HOUR - 24 * HOUR;
    for at in [base, base + MINUTE, base + 2 * MINUTE + 59_999] {
        store.messages.publish_message(&message_at(&acme.id, "a", None, at), None).await.unwrap();
    }
    let series = || store.operations.activity_series(base, base + 3 * MINUTE, MINUTE);
    // Only minutes that ended by the cutoff go, oldest first, at most `limit` rows a call.
    assert_eq!(store.recovery.purge_activity(base + 2 * MINUTE + 1, 1).await.unwrap(), 1);
    assert_eq!(
        series().await.unwrap(),
        vec![bucket(base, 0, 0, 0), bucket(base + MINUTE, 1, 0, 0), bucket(base + 2 * MINUTE, 1, 0, 0)]
    );
    assert_eq!(store.recovery.purge_activity(base + 2 * MINUTE + 1, 100).await.unwrap(), 1);
    assert_eq!(store.recovery.purge_activity(base + 2 * MINUTE + 1, 100).await.unwrap(), 0);
    assert_eq!(series_totals(&series().await.unwrap()), (1, 0, 0));
}

async fn paused_endpoints_lists_open_circuit_breakers_soonest_to_close_first(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let (long, short, ended, never) = (
        endpoint(&acme.id, None, None),
        endpoint(&acme.id, None, None),
        endpoint(&acme.id, None, None),
        endpoint(&acme.id, None, None),
    );
    app_with_endpoints(&store, &[long.clone(), short.clone(), ended.clone(), never.clone()]).await;
    let now = now_ms();
    assert_eq!(store.operations.paused_endpoints(now, 10).await.unwrap(), vec![]);
    for (ep, until) in [(&long, now + 600_000), (&short, now + 10_000), (&ended, now - 1)] {
        store.queue.pause_endpoint(&ep.id, until).await.unwrap();
    }
    let paused = |ep: &Endpoint, paused_until| PausedEndpoint {
        app_id: acme.id.clone(),
        endpoint_id: ep.id.clone(),
        paused_until,
    };
    let open = store.operations.paused_endpoints(now, 10).await.unwrap();
    assert_eq!(open, vec![paused(&short, now + 10_000), paused(&long, now + 600_000)]);
    assert_eq!(store.operations.paused_endpoints(now, 1).await.unwrap(), vec![paused(&short, now + 10_000)]);
    // Once a pause has ended (or was lifted), its breaker is no longer open.
    assert_eq!(store.operations.paused_endpoints(now + 10_000, 10).await.unwrap(), vec![paused(&long, now + 600_000)]);
    store.queue.pause_endpoint(&long.id, 0).await.unwrap();
    assert_eq!(store.operations.paused_endpoints(now, 10).await.unwrap(), vec![paused(&short, now + 10_000)]);
}

/// Reads every row's value of one text column straight from the database, bypassing the store.
async fn raw_column(database: &TestDatabase, table: &str, column: &str) -> Vec<String> {
    database.raw_text(&format!("SELECT {column} FROM {table} ORDER BY id")).await
}

/// Runs re-encryption passes over both tables in batches of `batch` and returns how many rows were rewritten.
async fn reencrypt_all(store: &Store, batch: usize) -> u64 {
    let mut rewritten = 0;
    for table in [SecretTable::Endpoints, SecretTable::Sources] {
        let mut after = None;
        loop {
            let done = store.credentials.reencrypt_secrets(table, after.as_deref(), batch).await.unwrap();
            rewritten += done.rewritten;
            match done.last {
                Some(last) => after = Some(last),
                None => break,
            }
        }
    }
    rewritten
}

fn open_error(result: Result<Store, StoreError>) -> String {
    match result {
        Ok(_) => panic!("the store opened with a key that cannot read its secrets"),
        Err(err) => err.to_string(),
    }
}

async fn secrets_are_sealed_at_rest_and_move_to_a_new_key(database: &mut TestDatabase) {
    let (old_key, new_key) = ([1u8; 32], [2u8; 32]);
    // A database written before encryption was turned on.
    let plain = database.open().await;
    let acme = app(None);
    plain.catalog.create_app(&acme).await.unwrap();
    let mut legacy = endpoint(&acme.id, None, None);
    legacy.secrets.rotate(EndpointSecret::generate(), now_ms(), 3_600_000);
    app_with_endpoints(&plain, std::slice::from_ref(&legacy)).await;
    let mut stripe = source(&acme.id, None);
    stripe.secrets.rotate("whsec_b2xkIHNvdXJjZQ".into(), now_ms(), 3_600_000);
    plain.inbound.create_source(&stripe).await.unwrap();
    assert_eq!(raw_column(database, "endpoints", "secret").await, vec![legacy.secrets.current.to_text()]);
    drop(plain);

    // With a key: old plaintext rows still read, new rows are sealed, in every secret column.
    let sealed = database.open_with(SecretCipher::with_key(&old_key)).await.unwrap();
    assert_eq!(sealed.catalog.get_endpoint(&acme.id, legacy.id.as_str()).await.unwrap(), legacy);
    assert_eq!(sealed.inbound.get_source(stripe.id.as_str()).await.unwrap(), stripe);
    let mut fresh = endpoint(&acme.id, None, None);
    fresh.secrets.rotate(EndpointSecret::generate(), now_ms(), 3_600_000);
    app_with_endpoints(&sealed, std::slice::from_ref(&fresh)).await;
    let stored =
        database.raw_text(&format!("SELECT secret || previous_secrets FROM endpoints WHERE id = '{}'", fresh.id)).await;
    assert!(stored[0].starts_with("enc:v1:"), "{}", stored[0]);
    assert!(!stored[0].contains("whsec_"), "a secret is stored in plaintext: {}", stored[0]);
    assert_eq!(sealed.catalog.get_endpoint(&acme.id, fresh.id.as_str()).await.unwrap(), fresh);
    let msg = message(&acme.id, "a", None);
    sealed.messages.publish_message(&msg, None).await.unwrap();
    let claimed = sealed.queue.claim_due(now_ms(), 10, now_ms() + 60_000, &[]).await.unwrap();
    let fresh_claim = claimed.iter().find(|d| d.endpoint_id == fresh.id).expect("the new endpoint's delivery");
    assert_eq!(fresh_claim.secrets, fresh.secrets);
    // A remembered response may carry a secret (a rotated key): it is sealed too.
    let remembered = IdempotentResponse {
        key: "scope-1".into(),
        status: 200,
        body: format!(r#"{{"key":"{}"}}"#, fresh.secrets.current.to_text()).into_bytes(),
        expires_at: now_ms() + 60_000,
    };
    sealed.messages.put_idempotent(&remembered).await.unwrap();
    assert_eq!(sealed.messages.get_idempotent("scope-1").await.unwrap(), Some(remembered.clone()));
    let raw_bodies = database.raw_text(database.idempotency_bodies_sql()).await;
    assert!(raw_bodies.iter().all(|body| body.starts_with("enc:v1:") && !body.contains("whsec_")), "{raw_bodies:?}");
    // Re-encryption seals the rows written before the key, and only those.
    assert_eq!(reencrypt_all(&sealed, 1).await, 2, "the legacy endpoint and the source");
    assert_eq!(reencrypt_all(&sealed, 1).await, 0);
    for text in raw_column(database, "endpoints", "secret || previous_secrets").await {
        assert!(!text.contains("whsec_"), "{text}");
    }
    let sources = raw_column(database, "sources", "secrets").await;
    assert!(!sources[0].contains("c2VjcmV0") && !sources[0].contains("b2xkIHNvdXJjZQ"), "{}", sources[0]);
    drop(sealed);

    // Without the key, or with another one, the store refuses to start and says which setting to fix.
    let err = open_error(database.open_with(SecretCipher::plaintext()).await);
    assert!(err.contains("HOOKRELAY_ENCRYPTION_KEY is not set"), "{err}");
    let err = open_error(database.open_with(SecretCipher::with_key(&new_key)).await);
    assert!(err.contains("HOOKRELAY_ENCRYPTION_KEY_PREVIOUS"), "{err}");

    // Rotation: the new key with the old one as previous reads everything, then re-encryption moves it all over.
    let rotated = database.open_with(SecretCipher::with_key(&new_key).with_previous(&old_key)).await.unwrap();
    assert_eq!(rotated.catalog.get_endpoint(&acme.id, legacy.id.as_str()).await.unwrap(), legacy);
    assert_eq!(reencrypt_all(&rotated, 2).await, 3);
    drop(rotated);
    let only_new = database.open_with(SecretCipher::with_key(&new_key)).await.unwrap();
    assert_eq!(only_new.catalog.get_endpoint(&acme.id, legacy.id.as_str()).await.unwrap(), legacy);
    assert_eq!(only_new.catalog.get_endpoint(&acme.id, fresh.id.as_str()).await.unwrap(), fresh);
    assert_eq!(only_new.inbound.get_source(stripe.id.as_str()).await.unwrap(), stripe);
    // A remembered response sealed with a key that is gone is forgotten (the request runs again), not an error.
    assert_eq!(only_new.messages.get_idempotent("scope-1").await.unwrap(), None);
}

fn admin_token(name: &str) -> (String, ApiToken) {
    let (secret, digest) = token::generate("hr_admin_");
    let token = ApiToken {
        id: TokenId::new(),
        name: name.into(),
        scope: TokenScope::Admin,
        digest,
        created_at: now_ms(),
        expires_at: None,
    };
    (secret, token)
}

fn app_token(app_id: &AppId, read_only: bool, expires_at: i64) -> ApiToken {
    let (_, digest) = token::generate("hr_app_");
    ApiToken {
        id: TokenId::new(),
        name: app_id.as_str().into(),
        scope: TokenScope::App { app_id: app_id.clone(), read_only },
        digest,
        created_at: now_ms(),
        expires_at: Some(expires_at),
    }
}

async fn tokens_are_found_by_digest_and_admin_names_are_unique(store: Store) {
    let (secret, ci) = admin_token("ci");
    store.credentials.create_token(&ci).await.unwrap();
    assert_eq!(store.credentials.find_token(&token::digest(&secret)).await.unwrap(), Some(ci.clone()));
    assert_eq!(store.credentials.find_token(&token::digest("hr_admin_wrong")).await.unwrap(), None);
    let (_, again) = admin_token("ci");
    assert!(
        matches!(store.credentials.create_token(&again).await, Err(StoreError::Conflict(detail)) if detail.contains("`ci`"))
    );

    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let portal = app_token(&acme.id, true, now_ms() + 60_000);
    store.credentials.create_token(&portal).await.unwrap();
    assert_eq!(store.credentials.find_token(&portal.digest).await.unwrap(), Some(portal.clone()));
    // Many portal tokens may share their application's id as a name; only admin names are unique.
    store.credentials.create_token(&app_token(&acme.id, false, now_ms() + 60_000)).await.unwrap();
    // A token for an application that does not exist is refused.
    assert!(matches!(
        store.credentials.create_token(&app_token(&AppId::new(), false, now_ms() + 60_000)).await,
        Err(StoreError::NotFound)
    ));
    // Only admin tokens are listed, oldest first.
    let (_, deploy) = admin_token("deploy");
    store.credentials.create_token(&deploy).await.unwrap();
    let listed = store.credentials.list_admin_tokens().await.unwrap();
    assert_eq!(listed, vec![ci, deploy]);
}

async fn revoking_an_admin_token_deletes_it_by_id_or_name(store: Store) {
    let (_, ci) = admin_token("ci");
    let (_, deploy) = admin_token("deploy");
    store.credentials.create_token(&ci).await.unwrap();
    store.credentials.create_token(&deploy).await.unwrap();
    assert_eq!(store.credentials.revoke_admin_token("ci").await.unwrap(), ci);
    assert_eq!(store.credentials.revoke_admin_token(deploy.id.as_str()).await.unwrap(), deploy);
    assert!(matches!(store.credentials.revoke_admin_token("ci").await, Err(StoreError::NotFound)));
    assert_eq!(store.credentials.find_token(&ci.digest).await.unwrap(), None);
    assert!(store.credentials.list_admin_tokens().await.unwrap().is_empty());
    // The name is free again.
    store.credentials.create_token(&admin_token("ci").1).await.unwrap();
    // App tokens are not revoked through the admin route, even when named like one.
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    store.credentials.create_token(&app_token(&acme.id, false, now_ms() + 60_000)).await.unwrap();
    assert!(matches!(store.credentials.revoke_admin_token(acme.id.as_str()).await, Err(StoreError::NotFound)));
}

async fn app_tokens_go_with_their_app_and_expired_ones_are_swept(store: Store) {
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    let expired = app_token(&acme.id, false, now_ms() - 1);
    store.credentials.create_token(&expired).await.unwrap();
    // Still found (the caller refuses it by its expiry) until the next token is created.
    assert_eq!(store.credentials.find_token(&expired.digest).await.unwrap(), Some(expired.clone()));
    let live = app_token(&acme.id, false, now_ms() + 60_000);
    store.credentials.create_token(&live).await.unwrap();
    assert_eq!(store.credentials.find_token(&expired.digest).await.unwrap(), None);
    assert_eq!(store.credentials.find_token(&live.digest).await.unwrap(), Some(live.clone()));
    store.catalog.delete_app(&acme.id).await.unwrap();
    assert_eq!(store.credentials.find_token(&live.digest).await.unwrap(), None);
}

/// Generates one `#[tokio::test]` per contract case for a backend, given an async expression that makes a fresh,
/// empty [`TestDatabase`]. Most cases take a store on it; those under `database:` take the database itself (to
/// open several stores, or to simulate a crash).
macro_rules! backend_tests {
    ($backend:ident, $new_database:expr) => {
        mod $backend {
            use super::*;
            backend_tests!(@stores $new_database;
                applications_are_found_by_id_or_uid_and_uids_are_unique,
                lists_page_forwards_and_backwards,
                event_types_archive_and_report_unknown_names,
                endpoints_round_trip_with_secrets_and_headers,
                publishing_routes_to_matching_enabled_endpoints,
                messages_keep_payload_bytes_and_event_ids_are_unique,
                message_lists_filter_by_type_channel_and_time,
                idempotent_responses_commit_with_the_message_and_expire,
                claims_lease_deliveries_until_recorded,
                claims_skip_busy_endpoints_and_releases_keep_the_due_time,
                claimed_deliveries_share_their_endpoints_headers,
                endpoints_are_counted_per_application,
                a_paused_endpoint_is_skipped_until_its_pause_ends_or_is_lifted,
                a_blocked_endpoints_backlog_does_not_hide_other_endpoints_due_deliveries,
                an_outcome_can_disable_its_endpoint,
                old_payloads_are_purged_unless_still_being_delivered,
                a_message_keeps_its_payload_for_its_own_retention,
                concurrent_publishes_each_get_their_own_outcome,
                publish_options_are_kept_and_content_can_be_expunged,
                endpoints_failing_for_too_long_are_disabled,
                fifo_endpoints_release_one_delivery_at_a_time_in_publish_order,
                an_endpoints_delivery_options_round_trip_and_reach_its_claimed_deliveries,
                a_test_send_goes_to_one_enabled_endpoint_whatever_its_filters,
                an_endpoints_messages_are_listed_newest_first_with_their_delivery,
                an_endpoints_messages_in_mixed_statuses_page_in_message_id_order_both_ways,
                deleting_an_app_removes_what_it_owns,
                background_tasks_round_trip_and_list_by_status_and_kind,
                recover_requeues_only_failed_deliveries_of_the_window_in_batches,
                replay_creates_deliveries_only_for_accepted_messages_the_endpoint_never_had,
                a_replayed_scheduled_message_waits_for_its_time,
                sources_round_trip_and_uids_are_unique_across_applications,
                deleting_a_source_removes_its_events_but_keeps_their_messages,
                ingest_publishes_new_events_once_and_records_repeats_as_duplicates,
                inbound_event_lists_are_newest_first_and_filter_by_status,
                inbound_counts_split_by_outcome_and_reason_since_a_time,
                rejections_are_counted_per_source_reason_and_minute,
                old_inbound_events_are_purged_in_batches,
                queue_stats_count_open_deliveries_and_their_earliest_due_time,
                a_working_store_is_writable_and_its_write_probe_succeeds,
                activity_stats_cover_the_window_with_percentiles_and_the_most_failing_endpoints,
                activity_series_counts_what_was_stored_per_bucket_with_empty_buckets_as_zeros,
                activity_counters_are_purged_after_their_minute_ends_in_batches,
                failing_endpoints_are_summed_from_the_failure_counters_and_deleted_endpoints_drop_out,
                endpoint_failure_counters_are_purged_after_their_minute_ends_in_batches,
                paused_endpoints_lists_open_circuit_breakers_soonest_to_close_first,
                tokens_are_found_by_digest_and_admin_names_are_unique,
                revoking_an_admin_token_deletes_it_by_id_or_name,
                app_tokens_go_with_their_app_and_expired_ones_are_swept,
            );
            backend_tests!(@databases $new_database;
                interrupted_and_manual_deliveries_are_due_again,
                secrets_are_sealed_at_rest_and_move_to_a_new_key,
            );
        }
    };
    (@stores $new_database:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let database = $new_database.await;
                super::$case(database.open().await).await;
                database.remove().await;
            }
        )*
    };
    (@databases $new_database:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let mut database = $new_database.await;
                super::$case(&mut database).await;
                database.remove().await;
            }
        )*
    };
}

/// A fresh, empty database for one test, and what differs between backends in reaching it. `remove` deletes it;
/// so does dropping it, best effort, when a test fails before.
enum TestDatabase {
    Sqlite { dir: tempfile::TempDir },
    Postgres(ScratchSchema),
}

/// A store opened by the next process after a crash, and what that start did.
struct Restarted {
    store: Store,
    /// The time the restart happened at (for PostgreSQL, a simulated time past the crashed instance's TTL).
    now: i64,
    /// How many leased deliveries the restart made due again.
    requeued: u64,
}

impl TestDatabase {
    /// Deletes the database, once every store on it is gone.
    async fn remove(self) {
        match self {
            Self::Sqlite { dir } => drop(dir),
            Self::Postgres(schema) => drop_schema(schema).await,
        }
    }

    /// Opens a store whose secrets pass through `cipher`; fails as a starting process would.
    async fn open_with(&self, cipher: SecretCipher) -> Result<Store, StoreError> {
        Ok(match self {
            Self::Sqlite { dir } => {
                Store::new(sqlite::SqliteStore::open_with_cipher(&dir.path().join("test.db"), cipher)?)
            }
            Self::Postgres(schema) => {
                Store::new(postgres::PostgresStore::connect_with_cipher(schema.url(), 4, cipher).await?)
            }
        })
    }

    /// The first column of every row `sql` returns, as text, read without the store.
    async fn raw_text(&self, sql: &str) -> Vec<String> {
        match self {
            Self::Sqlite { dir } => {
                let conn = rusqlite::Connection::open(dir.path().join("test.db")).unwrap();
                let mut stmt = conn.prepare(sql).unwrap();
                stmt.query_map([], |row| row.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
            }
            Self::Postgres(schema) => {
                let rows = schema.client().await.query(sql, &[]).await.unwrap();
                rows.iter().map(|row| row.get(0)).collect()
            }
        }
    }

    /// SQL that reads the bodies of remembered responses as text.
    fn idempotency_bodies_sql(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "SELECT CAST(body AS TEXT) FROM idempotency",
            Self::Postgres(_) => "SELECT convert_from(body, 'UTF8') FROM idempotency",
        }
    }

    /// Opens a store on the database, as a process starting would.
    async fn open(&self) -> Store {
        match self {
            Self::Sqlite { dir } => {
                Store::new(sqlite::SqliteStore::open(&dir.path().join("test.db")).expect("open the SQLite store"))
            }
            Self::Postgres(schema) => Store::new(open_postgres(schema).await),
        }
    }

    /// Simulates the process that owns `crashed` dying (it never runs again) and the next process starting, and
    /// returns the new store after its start-up duties: on SQLite, which only one process may open, the new
    /// process takes back every lease at once (`requeue_interrupted`); on PostgreSQL, where other processes may
    /// be running, a surviving process's `keep_alive` takes back the leases of one that has not renewed for
    /// `INSTANCE_TTL_MS`, so the time is moved past that.
    async fn restart_after_crash(&mut self, crashed: Store) -> Restarted {
        // One reference per role of this `Store` and none elsewhere.
        assert_eq!(Arc::strong_count(&crashed.queue), 7, "the crashed store must not be used again");
        drop(crashed);
        let store = self.open().await;
        match self {
            Self::Sqlite { .. } => {
                let requeued = store.queue.requeue_interrupted().await.unwrap();
                Restarted { store, now: now_ms(), requeued }
            }
            Self::Postgres(_) => {
                assert_eq!(
                    store.queue.requeue_interrupted().await.unwrap(),
                    0,
                    "other processes' leases are not touched"
                );
                let now = now_ms() + postgres::INSTANCE_TTL_MS + 1;
                let requeued = store.queue.keep_alive(now).await.unwrap().requeued;
                Restarted { store, now, requeued }
            }
        }
    }
}

async fn new_sqlite_database() -> TestDatabase {
    TestDatabase::Sqlite { dir: tempfile::tempdir().expect("temp dir") }
}

async fn new_postgres_database() -> TestDatabase {
    TestDatabase::Postgres(ScratchSchema::for_test().await)
}

backend_tests!(sqlite_backend, new_sqlite_database());
backend_tests!(postgres_backend, new_postgres_database());

/// A store on `schema`, a scratch schema of the test's own, so tests run in parallel on one database without
/// seeing each other.
async fn open_postgres(schema: &ScratchSchema) -> postgres::PostgresStore {
    match postgres::PostgresStore::connect(schema.url(), 4).await {
        Ok(store) => store,
        Err(err) => panic!("cannot open a PostgresStore on scratch schema {}: {err}", schema.name()),
    }
}

/// Drops `schema` once every store on it is gone; a schema left behind is reported, not a failure.
async fn drop_schema(schema: ScratchSchema) {
    let name = schema.name().to_owned();
    if let Err(err) = schema.drop_now().await {
        eprintln!("could not drop scratch schema {name} (left behind): {err}");
    }
}

// --- PostgreSQL only: several processes on one database ---
//
// SQLite allows one process per database file (a lock file enforces it), so these cases have no SQLite
// counterpart. Each store below stands for one hookrelay process.

async fn two_postgres_stores() -> (ScratchSchema, Store, Store) {
    let schema = ScratchSchema::for_test().await;
    let first: Store = Store::new(open_postgres(&schema).await);
    let second: Store = Store::new(open_postgres(&schema).await);
    (schema, first, second)
}

async fn succeed(store: &Store, claimed: &ClaimedDelivery) {
    let ok = attempt_for(claimed, DeliveryStatus::Success, 200);
    store
        .queue
        .record_outcomes(&[AttemptOutcome { attempt: ok, next: NextStep::Succeeded, disable_endpoint: false }])
        .await
        .unwrap();
}

/// A dispatcher as a store sees it, with a fixed room and endpoints it skips, keeping what it is handed.
struct TestIntake {
    room: usize,
    skip: Vec<EndpointId>,
    lease_until: i64,
    handed: std::sync::Mutex<Vec<(usize, Vec<ClaimedDelivery>)>>,
}

impl Intake for TestIntake {
    fn reserve(&self, wanted: usize) -> Reservation {
        Reservation { granted: wanted.min(self.room), skip: self.skip.clone(), lease_until: self.lease_until }
    }

    fn hand_over(&self, reserved: usize, deliveries: Vec<ClaimedDelivery>) {
        self.handed.lock().unwrap().push((reserved, deliveries));
    }
}

#[tokio::test]
async fn postgres_new_deliveries_are_leased_to_the_publishing_stores_dispatcher_as_far_as_it_has_room() {
    let (schema, first, second) = two_postgres_stores().await;
    let acme = app(None);
    first.catalog.create_app(&acme).await.unwrap();
    let (plain, skipped, mut fifo, paused) = (
        endpoint(&acme.id, None, None),
        endpoint(&acme.id, None, None),
        endpoint(&acme.id, None, None),
        endpoint(&acme.id, None, None),
    );
    fifo.ordering = DeliveryOrder::Fifo;
    app_with_endpoints(&first, &[plain.clone(), skipped.clone(), fifo.clone(), paused.clone()]).await;
    let now = now_ms();
    first.queue.pause_endpoint(&paused.id, now + 600_000).await.unwrap();
    let intake = Arc::new(TestIntake {
        room: 10,
        skip: vec![skipped.id.clone()],
        lease_until: now + 1_000,
        handed: Default::default(),
    });
    first.queue.hand_new_work_to(intake.clone());

    // Due now: the plain endpoint's delivery is leased and handed over once committed; the skipped, FIFO and
    // paused endpoints' deliveries wait for a claim, as does a message scheduled for later.
    let msg = message(&acme.id, "a", None);
    let published = first.messages.publish_message(&msg, None).await.unwrap();
    assert_eq!((published.deliveries, published.to_claim), (4, 3));
    let later = Message { deliver_at: Some(now + 3_600_000), ..message(&acme.id, "b", None) };
    let scheduled = first.messages.publish_message(&later, None).await.unwrap();
    assert_eq!((scheduled.deliveries, scheduled.to_claim), (4, 4));
    {
        let handed = intake.handed.lock().unwrap();
        // Room for the two that could be leased (plain and skipped), one used; nothing reserved for the second.
        assert_eq!(handed.len(), 1);
        let (reserved, deliveries) = &handed[0];
        assert_eq!((*reserved, deliveries.len()), (2, 1));
        let delivery = &deliveries[0];
        assert_eq!((&delivery.msg_id, &delivery.endpoint_id), (&msg.id, &plain.id));
        assert_eq!(
            (&*delivery.payload, &delivery.url, &*delivery.headers),
            (msg.payload.as_str(), &plain.url, &plain.headers)
        );
        assert_eq!((&delivery.secrets, &delivery.signature_schemes), (&plain.secrets, &plain.signature_schemes));
        assert_eq!(
            (delivery.attempts, delivery.manual, delivery.taken_over, delivery.due_at),
            (0, false, false, msg.created_at)
        );
    }
    // Another process claims what waits (the FIFO endpoint's delivery is its oldest open one), not the lease.
    let at = now_ms();
    let claimed = second.queue.claim_due(at, 10, at + 60_000, &[]).await.unwrap();
    let mut endpoints: Vec<&EndpointId> = claimed.iter().map(|d| &d.endpoint_id).collect();
    endpoints.sort();
    let mut expected = vec![&skipped.id, &fifo.id];
    expected.sort();
    assert_eq!(endpoints, expected);
    // The lease runs out unrecorded (the publisher stopped): another process takes the delivery over.
    let lapsed = second.queue.claim_due(at + 1_000, 10, at + 60_000, &[]).await.unwrap();
    assert_eq!(lapsed.iter().map(|d| (&d.endpoint_id, d.taken_over)).collect::<Vec<_>>(), vec![(&plain.id, true)]);

    // No room: everything waits for a claim, and the reservation is not handed anything.
    let full =
        Arc::new(TestIntake { room: 0, skip: Vec::new(), lease_until: now + 60_000, handed: Default::default() });
    first.queue.hand_new_work_to(full.clone());
    let published = first.messages.publish_message(&message(&acme.id, "c", None), None).await.unwrap();
    assert_eq!((published.deliveries, published.to_claim), (4, 4));
    assert!(full.handed.lock().unwrap().iter().all(|(_, deliveries)| deliveries.is_empty()));
    drop((first, second));
    drop_schema(schema).await;
}

#[tokio::test]
async fn postgres_a_stopped_publishers_leases_are_taken_back_by_the_others() {
    let (schema, first, second) = two_postgres_stores().await;
    let acme = app(None);
    first.catalog.create_app(&acme).await.unwrap();
    app_with_endpoints(&first, &[endpoint(&acme.id, None, None)]).await;
    let now = now_ms();
    let intake =
        Arc::new(TestIntake { room: 10, skip: Vec::new(), lease_until: now + 600_000, handed: Default::default() });
    first.queue.hand_new_work_to(intake.clone());
    let published = first.messages.publish_message(&message(&acme.id, "a", None), None).await.unwrap();
    assert_eq!(published.to_claim, 0);
    // The publisher never beats again: once its registration expires, a survivor's heartbeat re-queues its lease.
    drop(first);
    let liveness = second.queue.keep_alive(now + postgres::INSTANCE_TTL_MS + 1_000).await.unwrap();
    assert_eq!(liveness.requeued, 1);
    assert_eq!(
        second.queue.claim_due(now + postgres::INSTANCE_TTL_MS + 1_000, 10, now + 600_000, &[]).await.unwrap().len(),
        1
    );
    drop(second);
    drop_schema(schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_stores_claiming_at_once_never_take_the_same_delivery() {
    let (schema, first, second) = two_postgres_stores().await;
    let acme = app(None);
    first.catalog.create_app(&acme).await.unwrap();
    let endpoints: Vec<_> = (0..5).map(|_| endpoint(&acme.id, None, None)).collect();
    app_with_endpoints(&first, &endpoints).await;
    for _ in 0..100 {
        first.messages.publish_message(&message(&acme.id, "a", None), None).await.unwrap();
    }

    let now = now_ms();
    let claim_until_empty = |store: Store| {
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store.queue.claim_due(now, 7, now + 60_000, &[]).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|d| (d.msg_id, d.endpoint_id)));
            }
        })
    };
    let (by_first, by_second) = (claim_until_empty(first.clone()), claim_until_empty(second.clone()));
    let (by_first, by_second) = (by_first.await.unwrap(), by_second.await.unwrap());

    let mut all: Vec<_> = by_first.iter().chain(&by_second).cloned().collect();
    assert_eq!(all.len(), 500, "every delivery claimed ({} + {})", by_first.len(), by_second.len());
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 500, "no delivery claimed twice");
    for ep in &endpoints {
        assert_eq!(first.messages.endpoint_delivery_counts(&ep.id).await.unwrap().sending, 100);
    }
    drop((first, second));
    drop_schema(schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_fifo_endpoint_has_one_delivery_in_flight_across_stores_in_publish_order() {
    let (schema, first, second) = two_postgres_stores().await;
    let acme = app(None);
    first.catalog.create_app(&acme).await.unwrap();
    let mut fifo = endpoint(&acme.id, None, None);
    fifo.ordering = DeliveryOrder::Fifo;
    app_with_endpoints(&first, std::slice::from_ref(&fifo)).await;
    let mut published = Vec::new();
    for _ in 0..20 {
        published.push(first.messages.publish_message(&message(&acme.id, "a", None), None).await.unwrap().message.id);
    }

    // Each store sends what it claims: in flight from its claim until its outcome is recorded.
    let in_flight = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
    let dispatch = |store: Store| {
        let (in_flight, sent) = (in_flight.clone(), sent.clone());
        tokio::spawn(async move {
            while sent.lock().unwrap().len() < 20 {
                let batch = store.queue.claim_due(now_ms(), 5, now_ms() + 60_000, &[]).await.unwrap();
                assert!(batch.len() <= 1, "two deliveries of a FIFO endpoint claimed at once");
                for delivery in batch {
                    assert!(!in_flight.swap(true, std::sync::atomic::Ordering::SeqCst), "two in flight at once");
                    sent.lock().unwrap().push(delivery.msg_id.clone());
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    // No longer in flight from here: the other store cannot claim the next one before the
                    // outcome below commits.
                    in_flight.store(false, std::sync::atomic::Ordering::SeqCst);
                    succeed(&store, &delivery).await;
                }
            }
        })
    };
    let run = async {
        let (a, b) = (dispatch(first.clone()), dispatch(second.clone()));
        a.await.unwrap();
        b.await.unwrap();
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), run).await.expect("the FIFO queue drains");
    assert_eq!(*sent.lock().unwrap(), published, "sent in publish order");
    drop((first, second));
    drop_schema(schema).await;
}

#[tokio::test]
async fn postgres_an_older_message_committed_late_waits_for_the_fifo_delivery_in_flight() {
    let (schema, first, second) = two_postgres_stores().await;
    let acme = app(None);
    first.catalog.create_app(&acme).await.unwrap();
    let mut fifo = endpoint(&acme.id, None, None);
    fifo.ordering = DeliveryOrder::Fifo;
    app_with_endpoints(&first, std::slice::from_ref(&fifo)).await;
    let newer = message(&acme.id, "a", None);
    first.messages.publish_message(&newer, None).await.unwrap();
    let claimed = first.queue.claim_due(now_ms(), 10, now_ms() + 60_000, &[]).await.unwrap();
    assert_eq!(claimed.len(), 1);

    // Another process, whose clock is a second behind, commits a message that sorts before the one in flight.
    let older = message_at(&acme.id, "a", None, now_ms() - 1_000);
    second.messages.publish_message(&older, None).await.unwrap();
    assert!(second.queue.claim_due(now_ms(), 10, now_ms() + 60_000, &[]).await.unwrap().is_empty(), "one in flight");

    succeed(&first, &claimed[0]).await;
    let next = second.queue.claim_due(now_ms(), 10, now_ms() + 60_000, &[]).await.unwrap();
    assert_eq!(next.iter().map(|d| d.msg_id.clone()).collect::<Vec<_>>(), vec![older.id]);
    drop((first, second));
    drop_schema(schema).await;
}

/// A drained queue leaves dead row versions in `deliveries`; `tidy_queue` vacuums them once there are enough,
/// whatever autovacuum does (the test server runs without it).
#[tokio::test]
async fn postgres_tidy_queue_vacuums_the_deliveries_the_queue_churned() {
    let schema = ScratchSchema::for_test().await;
    let store = Store::new(open_postgres(&schema).await);
    assert!(!store.recovery.tidy_queue().await.unwrap(), "nothing to reclaim yet");
    let acme = app(None);
    store.catalog.create_app(&acme).await.unwrap();
    app_with_endpoints(&store, &[endpoint(&acme.id, None, None)]).await;
    let mut publishes = Vec::new();
    for _ in 0..6_000 {
        let (store, msg) = (store.clone(), message(&acme.id, "a", None));
        publishes.push(tokio::spawn(async move { store.messages.publish_message(&msg, None).await.unwrap() }));
    }
    for publish in publishes {
        publish.await.unwrap();
    }
    // Claimed and recorded: two updates, two dead versions per delivery.
    let now = now_ms();
    loop {
        let claimed = store.queue.claim_due(now, 1_000, now + 60_000, &[]).await.unwrap();
        if claimed.is_empty() {
            break;
        }
        let outcomes: Vec<_> = claimed
            .iter()
            .map(|d| AttemptOutcome {
                attempt: attempt_for(d, DeliveryStatus::Success, 200),
                next: NextStep::Succeeded,
                disable_endpoint: false,
            })
            .collect();
        store.queue.record_outcomes(&outcomes).await.unwrap();
    }
    // PostgreSQL's statistics arrive within a second or so of the commits.
    let started = std::time::Instant::now();
    while !store.recovery.tidy_queue().await.unwrap() {
        assert!(started.elapsed() < std::time::Duration::from_secs(15), "the churned queue was never vacuumed");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    schema.drop_now().await.unwrap();
}

#[tokio::test]
async fn postgres_activity_counted_by_several_stores_is_summed_from_rows_of_their_own() {
    let (schema, first, second) = two_postgres_stores().await;
    let acme = app(None);
    first.catalog.create_app(&acme).await.unwrap();
    app_with_endpoints(&first, &[endpoint(&acme.id, None, None)]).await;
    let at = now_ms() / MINUTE * MINUTE - 10 * MINUTE;
    for (store, messages) in [(&first, 2), (&second, 3)] {
        for n in 0..messages {
            store.messages.publish_message(&message_at(&acme.id, "a", None, at + n), None).await.unwrap();
        }
    }
    let claimed = second.queue.claim_due(now_ms(), 10, now_ms() + 60_000, &[]).await.unwrap();
    assert_eq!(claimed.len(), 5);
    for delivery in &claimed {
        succeed(&second, delivery).await;
    }
    let now = now_ms();
    let series = first.operations.activity_series(at, now + MINUTE, 60 * MINUTE).await.unwrap();
    assert_eq!(series_totals(&series), (5, 5, 0), "{series:?}");
    assert_eq!(series_totals(&first.operations.activity_series(at, at + MINUTE, MINUTE).await.unwrap()), (5, 0, 0));
    // Each store's publishes and attempt records went to rows of their own: nobody waited on anybody's row.
    let client = schema.client().await;
    let writers: i64 =
        client.query_one("SELECT COUNT(DISTINCT writer) FROM activity_minutes", &[]).await.unwrap().get(0);
    assert_eq!(writers, 3, "the first store's publishes, the second's publishes and its attempts");
    drop((first, second, client));
    drop_schema(schema).await;
}

#[tokio::test]
async fn postgres_a_release_leaves_a_lease_another_store_took_over() {
    let (schema, first, second) = two_postgres_stores().await;
    let acme = app(None);
    first.catalog.create_app(&acme).await.unwrap();
    app_with_endpoints(&first, &[endpoint(&acme.id, None, None)]).await;
    first.messages.publish_message(&message(&acme.id, "a", None), None).await.unwrap();
    let now = now_ms();
    let stale = first.queue.claim_due(now, 10, now + 1_000, &[]).await.unwrap();
    // The first store's lease ran out (it was stuck); the second one took the delivery over.
    let taken = second.queue.claim_due(now + 1_000, 10, now + 60_000, &[]).await.unwrap();
    assert_eq!(taken.len(), 1);
    first.queue.release(&stale.into_iter().map(ClaimedDelivery::into_release).collect::<Vec<_>>()).await.unwrap();
    assert!(first.queue.claim_due(now + 1_000, 10, now + 60_000, &[]).await.unwrap().is_empty(), "still leased");
    drop((first, second));
    drop_schema(schema).await;
}

#[tokio::test]
async fn postgres_a_publish_whose_idempotency_key_another_store_answered_commits_nothing() {
    let (schema, first, second) = two_postgres_stores().await;
    let acme = app(None);
    first.catalog.create_app(&acme).await.unwrap();
    let ep = endpoint(&acme.id, None, None);
    app_with_endpoints(&first, std::slice::from_ref(&ep)).await;
    let response =
        IdempotentResponse { key: "k1".into(), status: 202, body: b"{}".to_vec(), expires_at: now_ms() + 60_000 };
    first.messages.publish_message(&message(&acme.id, "a", None), Some(&response)).await.unwrap();

    // The same request reached another process, whose in-process lock on the key could not see the first one.
    let again = message(&acme.id, "a", None);
    assert!(matches!(second.messages.publish_message(&again, Some(&response)).await, Err(StoreError::Conflict(_))));
    assert!(matches!(second.messages.get_message(&acme.id, again.id.as_str()).await, Err(StoreError::NotFound)));
    assert_eq!(
        second.messages.endpoint_delivery_counts(&ep.id).await.unwrap().pending,
        1,
        "only the first one's delivery"
    );
    drop((first, second));
    drop_schema(schema).await;
}

#[tokio::test]
async fn postgres_new_work_wakes_the_other_stores() {
    let (schema, first, second) = two_postgres_stores().await;
    let wake = Arc::new(tokio::sync::Notify::new());
    second.queue.watch_new_work(wake.clone()).await.unwrap();
    let within = std::time::Duration::from_secs(10);
    // The watch wakes once when it starts listening, in case work arrived before.
    tokio::time::timeout(within, wake.notified()).await.expect("the watch starts listening");

    let acme = app(None);
    first.catalog.create_app(&acme).await.unwrap();
    let ep = endpoint(&acme.id, None, None);
    app_with_endpoints(&first, std::slice::from_ref(&ep)).await;
    let msg = message(&acme.id, "a", None);
    first.messages.publish_message(&msg, None).await.unwrap();
    tokio::time::timeout(within, wake.notified()).await.expect("a publish wakes the other store");
    first.messages.resend(&msg.id, &ep.id).await.unwrap();
    tokio::time::timeout(within, wake.notified()).await.expect("a resend wakes the other store");
    drop((first, second));
    drop_schema(schema).await;
}

#[tokio::test]
async fn postgres_ids_compare_byte_by_byte_whatever_the_database_collation() {
    let schema = ScratchSchema::for_test().await;
    let _store = open_postgres(&schema).await;
    // Ids sort by creation time only in byte order (`0-9A-Za-z`); every id column must say so itself.
    let (client, connection) = tokio_postgres::connect(&test_database_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = $1 \
             AND data_type = 'text' AND (column_name IN ('id', 'cursor', 'claimed_by') OR column_name LIKE '%\\_id') \
             AND table_name <> 'hookrelay_schema' AND collation_name IS DISTINCT FROM 'C' \
             AND (table_name, column_name) NOT IN (('inbound_events', 'event_id'), ('messages', 'event_id'))",
            &[&schema.name()],
        )
        .await
        .unwrap();
    let loose: Vec<String> =
        rows.iter().map(|row| format!("{}.{}", row.get::<_, String>(0), row.get::<_, String>(1))).collect();
    assert!(loose.is_empty(), "id columns without COLLATE \"C\": {loose:?}");
    drop(_store);
    drop_schema(schema).await;
}

#[tokio::test]
async fn postgres_heartbeats_delete_expired_idempotency_records() {
    let schema = ScratchSchema::for_test().await;
    let store = open_postgres(&schema).await;
    let now = now_ms();
    let expired = IdempotentResponse { key: "old".into(), status: 202, body: b"{}".to_vec(), expires_at: now - 1 };
    let live = IdempotentResponse { key: "new".into(), status: 202, body: b"{}".to_vec(), expires_at: now + 60_000 };
    store.put_idempotent(&expired).await.unwrap();
    store.put_idempotent(&live).await.unwrap();
    store.keep_alive(now).await.unwrap();

    let (client, connection) = tokio_postgres::connect(&test_database_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let keys: Vec<String> = client
        .query(&format!("SELECT key FROM {}.idempotency ORDER BY key", schema.name()), &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(keys, ["new"], "the expired record is gone, the live one kept");
    drop(store);
    drop_schema(schema).await;
}

#[tokio::test]
async fn postgres_text_with_nul_is_refused_as_invalid_input() {
    let schema = ScratchSchema::for_test().await;
    let store = open_postgres(&schema).await;
    let mut named = app(None);
    named.name = "a\0b".into();
    // PostgreSQL text cannot hold NUL; the API turns this into a 422 rather than a 500.
    assert!(matches!(store.create_app(&named).await, Err(StoreError::Invalid(_))));
    drop(store);
    drop_schema(schema).await;
}
