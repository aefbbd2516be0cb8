use std::sync::Arc;

use serde_json::value::RawValue;

use super::*;
use crate::{MAX_CODE_BYTES, Method};

const CORP_ASTRO: &str = r#"
function handler(webhook) {
  webhook.payload = { id: webhook.msgId, timestamp: webhook.timestamp, event_type: webhook.eventType, data: webhook.payload };
  webhook.headers = { "X-Corp-Astro-Event": webhook.eventType, "X-Corp-Astro-Webhook-ID": webhook.msgId };
  return webhook;
}
"#;

async fn run(sandbox: &Sandbox, code: &str, payload: &str) -> Result<Transformed, TransformError> {
    let payload = RawValue::from_string(payload.to_owned()).expect("JSON");
    let webhook = Webhook {
        method: Method::Post,
        url: "http://127.0.0.1:9/hook",
        payload: &payload,
        event_type: "order.created",
        msg_id: "msg_1",
        event_id: None,
        timestamp: "2026-12-07T15:00:00.000Z",
    };
    sandbox.run(Arc::from(code), &webhook).await
}

#[tokio::test]
async fn a_handler_reshapes_the_payload_and_adds_headers() {
    let sandbox = Sandbox::start(1).unwrap();
    let out = run(&sandbox, CORP_ASTRO, r#"{"order": 1}"#).await.unwrap();
    assert_eq!(
        out.payload,
        r#"{"id":"msg_1","timestamp":"2026-12-07T15:00:00.000Z","event_type":"order.created","data":{"order":1}}"#
    );
    assert_eq!(out.headers["X-Corp-Astro-Event"], "order.created");
    assert_eq!((out.method, out.url.as_str(), out.cancel), (Method::Post, "http://127.0.0.1:9/hook", false));
    // Returning nothing keeps the (changed) webhook passed in; cancel and method are read back.
    let out = run(&sandbox, "function handler(w) { w.method = 'PUT'; w.cancel = true; }", "{}").await.unwrap();
    assert_eq!((out.method, out.cancel, out.payload.as_str()), (Method::Put, true, "{}"));
}

#[tokio::test]
async fn runaway_code_is_stopped_and_the_worker_keeps_working() {
    let sandbox = Sandbox::start(1).unwrap();
    let started = std::time::Instant::now();
    let looping = run(&sandbox, "function handler(w) { while (true) {} }", "{}").await;
    assert_eq!(looping, Err(TransformError::TimedOut));
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "stopped after {:?}", started.elapsed());
    // Four megabytes a step (zeroed by the allocator, not by script): the heap limit is reached in eight steps,
    // long before the time limit, even in a debug build on a busy machine.
    let hungry = "function handler(w) { const a = []; while (true) a.push(new ArrayBuffer(4 << 20)); }";
    assert_eq!(run(&sandbox, hungry, "{}").await, Err(TransformError::OutOfMemory));
    let deep = "function handler(w) { function f(n) { return f(n + 1) + 1; } return f(0); }";
    assert!(matches!(run(&sandbox, deep, "{}").await, Err(TransformError::Threw { .. })));
    // The same worker then runs a good handler.
    assert!(run(&sandbox, CORP_ASTRO, "{}").await.is_ok());
    // Top-level code is under the same limit when the handler is compiled.
    assert_eq!(
        sandbox.check("while (true) {}\nfunction handler(w) { return w; }").await,
        Err(TransformError::TimedOut)
    );
}

#[tokio::test]
async fn errors_name_the_line_of_the_handler() {
    let sandbox = Sandbox::start(1).unwrap();
    let thrown = run(&sandbox, "function handler(w) {\n  const x = 1;\n  throw new Error('no order');\n}", "{}").await;
    assert_eq!(thrown, Err(TransformError::Threw { message: "Error: no order".into(), line: Some(3) }));
    let syntax = sandbox.check("function handler(w) {\n  return w\n  }}\n").await.unwrap_err();
    assert!(
        matches!(&syntax, TransformError::Syntax { message, .. } if message.starts_with("SyntaxError")),
        "{syntax:?}"
    );
    assert_eq!(syntax.line(), Some(3), "{syntax}");
    assert_eq!(sandbox.check("function other(w) { return w; }").await, Err(TransformError::NoHandler));
    let thrown_string = run(&sandbox, "function handler(w) { throw 'plain'; }", "{}").await;
    assert_eq!(thrown_string, Err(TransformError::Threw { message: "plain".into(), line: None }));
}

#[tokio::test]
async fn code_over_the_size_limit_is_refused_before_running() {
    let sandbox = Sandbox::start(1).unwrap();
    let big = format!("function handler(w) {{ return w; }}\n//{}", "x".repeat(MAX_CODE_BYTES));
    assert!(matches!(sandbox.check(&big).await, Err(TransformError::TooLarge { .. })));
    assert!(matches!(run(&sandbox, &big, "{}").await, Err(TransformError::TooLarge { .. })));
}

#[tokio::test]
async fn what_a_handler_returns_is_checked() {
    let sandbox = Sandbox::start(1).unwrap();
    for (code, says) in [
        ("function handler(w) { w.method = 'GET'; return w; }", "POST"),
        ("function handler(w) { return 'text'; }", "webhook object"),
        ("function handler(w) { delete w.payload; return w; }", "payload"),
        ("function handler(w) { w.payload = [1, 2]; return w; }", "JSON object"),
        ("function handler(w) { w.headers = { 'X-N': 5 }; return w; }", "must be a string"),
        ("function handler(w) { w.headers = { 'X N': 'v' }; return w; }", "not a valid header name"),
        ("function handler(w) { w.headers = { 'X-N': 'a\\nb' }; return w; }", "control character"),
        ("function handler(w) { w.url = 7; return w; }", "webhook object"),
    ] {
        let err = run(&sandbox, code, "{}").await.unwrap_err();
        assert!(matches!(&err, TransformError::BadResult(msg) if msg.contains(says)), "{code}: {err}");
    }
}

#[tokio::test]
async fn there_is_no_io_timer_or_module_to_reach() {
    let sandbox = Sandbox::start(1).unwrap();
    let probe = "function handler(w) { w.payload = { timers: typeof setTimeout, fetch: typeof fetch, \
                 require: typeof require, std: typeof std, os: typeof os }; return w; }";
    let out = run(&sandbox, probe, "{}").await.unwrap();
    assert_eq!(
        out.payload,
        r#"{"timers":"undefined","fetch":"undefined","require":"undefined","std":"undefined","os":"undefined"}"#
    );
}
