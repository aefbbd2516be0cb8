//! Fuzzes RFC 3339 parsing (`before`/`after` query parameters): never panics, and every accepted timestamp in
//! the four-digit-year range formats back to text that parses to the same instant.
#![no_main]

use hookrelay_core::rfc3339::{format, parse};

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: the instants `format` writes with a four-digit year.
const RANGE: std::ops::RangeInclusive<i64> = -62_167_219_200_000..=253_402_300_799_999;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(ms) = parse(text)
        && RANGE.contains(&ms)
    {
        let formatted = format(ms);
        assert_eq!(parse(&formatted), Ok(ms), "{text:?} parsed to {ms}, formatted as {formatted:?}");
    }
    // The other direction: any instant in range formats to text that parses back to it.
    if let Some(bytes) = data.get(..8) {
        let raw = i64::from_le_bytes(bytes.try_into().expect("eight bytes"));
        let ms = RANGE.start() + raw.rem_euclid(RANGE.end() - RANGE.start() + 1);
        assert_eq!(parse(&format(ms)), Ok(ms), "{ms}");
    }
});
