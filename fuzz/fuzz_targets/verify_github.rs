//! Fuzzes the github verifier's header parsing and checking.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookrelay_fuzz::check("github", data));
