//! Fuzzes JSON payload intake, outbound and inbound.
//! - A publish body (`POST /api/v1/app/{app_id}/msg/`) goes through the exact parse-and-check the handler uses:
//!   never a panic; a refusal is always a 4xx whose error body serializes; an accepted message has a valid event
//!   type, its payload is a JSON object kept byte for byte from the body, and its response can be built.
//! - An inbound body's event type or id is found by a dot path (`body_field`): never a panic, and a value found
//!   is non-empty text without NUL.
#![no_main]

use hookrelay_api::message::{MessageOut, message_from_body};
use hookrelay_core::AppId;
use hookrelay_core::inbound::body_field;
use hookrelay_core::validate::check_name;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match message_from_body(AppId::new(), data) {
        Ok(message) => {
            check_name(&message.event_type).expect("an accepted event type is a valid name");
            if let Some(event_id) = &message.event_id {
                check_name(event_id).expect("an accepted eventId is a valid name");
            }
            let payload: serde_json::Value = serde_json::from_str(&message.payload).expect("the payload is JSON");
            assert!(payload.is_object(), "the payload is an object: {}", message.payload);
            let body = String::from_utf8_lossy(data);
            assert!(body.contains(&message.payload), "the payload is kept byte for byte");
            let out = MessageOut::new(message, true).expect("an accepted message has a response");
            serde_json::to_vec(&out).expect("the response serializes");
        }
        Err(err) => {
            assert!(err.status().is_client_error(), "a bad body is the client's error, got {}: {err:?}", err.status());
            serde_json::to_vec(&err.body_json()).expect("the error body serializes");
        }
    }

    // Inbound: the first line is the dot path, the rest the body.
    let (path, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b"type"[..], data),
    };
    if let Ok(path) = std::str::from_utf8(path)
        && let Some(value) = body_field(body, path)
    {
        assert!(!value.is_empty() && !value.contains('\0'), "{value:?}");
    }
});
