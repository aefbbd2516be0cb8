//! Fuzzes the hmac-sha256 verifier's header parsing and checking.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookrelay_fuzz::check("hmac-sha256", data));
