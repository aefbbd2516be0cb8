//! Fuzzes id parsing (every `{app_id}`/`{msg_id}`-style path segment): never panics, an accepted id is exactly
//! the prefix and 27 base62 characters, only one id type accepts it, and ids made for any time parse back.
#![no_main]

use hookrelay_core::id::min_body_at;
use hookrelay_core::{AppId, AttemptId, EndpointId, EventTypeId, InboundEventId, MessageId, SourceId, TaskId};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let accepted: Vec<String> = [
            AppId::parse(text).map(AppId::into_string),
            EndpointId::parse(text).map(EndpointId::into_string),
            MessageId::parse(text).map(MessageId::into_string),
            AttemptId::parse(text).map(AttemptId::into_string),
            EventTypeId::parse(text).map(EventTypeId::into_string),
            TaskId::parse(text).map(TaskId::into_string),
            SourceId::parse(text).map(SourceId::into_string),
            InboundEventId::parse(text).map(InboundEventId::into_string),
        ]
        .into_iter()
        .flatten()
        .collect();
        assert!(accepted.len() <= 1, "{text:?} accepted by {} id types", accepted.len());
        if let Some(id) = accepted.first() {
            assert_eq!(id, text, "parse must keep the text as given");
            let body = &text[text.find('_').expect("prefixed") + 1..];
            assert!(body.len() == 27 && body.bytes().all(|b| b.is_ascii_alphanumeric()), "{text:?}");
        }
    }
    // Ids stamped with any 48-bit time parse back and sort at or after that time's smallest body.
    if let Some(bytes) = data.get(..6) {
        let ms = bytes.iter().fold(0i64, |acc, &b| acc << 8 | i64::from(b));
        let id = MessageId::at(ms);
        assert_eq!(MessageId::parse(id.as_str()), Some(id.clone()));
        assert!(min_body_at(ms).as_str() <= &id.as_str()[4..], "{ms}");
    }
});
